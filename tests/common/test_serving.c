/* test_serving.c — the one serving measurement (workloads/common/serving.h) holds what a
 * deployment holds while it decodes, and the model's mode switch under it.
 *
 *   test_serving mode|serving
 *
 * mode     mt_gpt_set_mode: infer -> weights frees the activation and workspace slabs
 *          (slab_bytes equal mt_gpt_memory of weights mode, category by category, and a
 *          forward is refused); weights -> infer gives them back with mt_gpt_memory's
 *          exact bytes and the same logits bit for bit; another shape follows its plan; a
 *          training model, the training mode and a bad shape are refused, the last
 *          leaving the model as it was.
 * serving  mt_wl_report_serving on `tiny` (through a fake ctx): while region "decode"
 *          runs and when region "infer" ends, the model holds no activation or workspace
 *          slab, only its weights, so the model's slabs + the KV cache + the decode scratch
 *          are exactly infer_peak_bytes; the evaluation after the slabs are attached again
 *          gives the same val_loss, bit for bit, as mt_gpt_eval on the model before the
 *          measurement, and eval_peak_bytes is the inference plan plus the batch's tokens.
 * What it is not for: the serving workloads end to end (tests/serving).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "fake_ctx.h"
#include "gpt.h"
#include "mt_check.h"
#include "serving.h"
#include "wlcommon.h"

static int failures;
#define CHECK(cond, ...) MT_CHECK_OR(failures++, cond, #cond, __VA_ARGS__)
#define CHECK_OK(expr, err) CHECK((expr) == 0, "%s", err)

enum { B = 2, T = 16, CTX = 32, EVAL_BYTES = 1024, N_BYTES = 16384 };

static struct mt_gpt *tiny(enum mt_gpt_mode mode, size_t b, size_t t)
{
    char err[256];
    struct mt_gpt_config cfg;
    struct mt_gpt *m = NULL;
    if (mt_gpt_config_preset(&cfg, "tiny", err, sizeof err) ||
        mt_gpt_create(&m, &cfg, mode, b, t, err, sizeof err)) {
        CHECK(0, "creating tiny: %s", err);
        return NULL;
    }
    mt_gpt_init(m, 7);
    return m;
}

/* 1 when every category of m's slabs is what mt_gpt_memory plans for (b, t, mode). */
static int matches_plan(const struct mt_gpt *m, size_t b, size_t t, enum mt_gpt_mode mode)
{
    size_t plan[MT_MEM_CAT_COUNT];
    if (!mt_gpt_memory(&m->cfg, b, t, mode, plan, NULL, 0)) return 0;
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        if (m->slab_bytes[c] != plan[c]) {
            fprintf(stderr, "category %s: %zu bytes, plan %zu\n", mt_mem_cat_names[c],
                    m->slab_bytes[c], plan[c]);
            return 0;
        }
    return m->mode == mode && m->B == (mode == MT_GPT_WEIGHTS ? 0 : b) &&
           m->T == (mode == MT_GPT_WEIGHTS ? 0 : t);
}

static void fill_tokens(int *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        in[i] = (int)((i * 37 + 11) % 256);
}

static void test_mode(void)
{
    char err[256] = "";
    int in[B * T];
    float mean;
    fill_tokens(in, B * T);
    struct mt_gpt *m = tiny(MT_GPT_INFER, B, T);
    if (!m) return;
    size_t nlog = B * T * m->cfg.vocab;
    float *before = malloc(nlog * sizeof *before);
    CHECK_OK(mt_gpt_forward(m, in, NULL, B, T, &mean, err, sizeof err), err);
    memcpy(before, m->act[MT_A_LOGITS], nlog * sizeof *before);

    CHECK_OK(mt_gpt_set_mode(m, MT_GPT_WEIGHTS, 0, 0, err, sizeof err), err);
    CHECK(matches_plan(m, 0, 0, MT_GPT_WEIGHTS), "weights mode is not the weights plan");
    CHECK(!m->acts && !m->work && !m->act[MT_A_LOGITS] && !m->inputs, "slabs still attached");
    CHECK(mt_gpt_forward(m, in, NULL, B, T, &mean, err, sizeof err) != 0,
          "a forward without activations ran");

    CHECK_OK(mt_gpt_set_mode(m, MT_GPT_INFER, B, T, err, sizeof err), err);
    CHECK(matches_plan(m, B, T, MT_GPT_INFER), "infer mode again is not the infer plan");
    CHECK_OK(mt_gpt_forward(m, in, NULL, B, T, &mean, err, sizeof err), err);
    CHECK(memcmp(before, m->act[MT_A_LOGITS], nlog * sizeof *before) == 0,
          "logits after re-attaching differ");

    CHECK_OK(mt_gpt_set_mode(m, MT_GPT_INFER, 3, 8, err, sizeof err), err);
    CHECK(matches_plan(m, 3, 8, MT_GPT_INFER), "another shape is not its plan");
    CHECK(mt_gpt_set_mode(m, MT_GPT_INFER, 1, m->cfg.seq_len + 1, err, sizeof err) != 0,
          "a window longer than the context was accepted");
    CHECK(matches_plan(m, 3, 8, MT_GPT_INFER), "a refused shape changed the model");
    CHECK(mt_gpt_set_mode(m, MT_GPT_TRAIN, B, T, err, sizeof err) != 0,
          "training mode was accepted");
    printf("refused: %s\n", err);
    mt_gpt_free(m);

    struct mt_gpt *t = tiny(MT_GPT_TRAIN, B, T);
    if (t) {
        CHECK(mt_gpt_set_mode(t, MT_GPT_WEIGHTS, 0, 0, err, sizeof err) != 0,
              "a training model dropped its state");
        CHECK(matches_plan(t, B, T, MT_GPT_TRAIN), "a refused switch changed a training model");
    }
    mt_gpt_free(t);
    free(before);
}

/* What the model held when a phase of the serving measurement began or ended. */
struct seen {
    const struct mt_gpt *m;
    int decode_begun, infer_ended;
    size_t acts_bytes, work_bytes, slab_total, weights;
    int acts_attached;
};

static void held(struct seen *s)
{
    const struct mt_gpt *m = s->m;
    size_t total = 0;
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        total += m->slab_bytes[c];
    /* the largest seen: a slab attached at either moment shows */
    if (m->slab_bytes[MT_MEM_ACTIVATIONS] > s->acts_bytes)
        s->acts_bytes = m->slab_bytes[MT_MEM_ACTIVATIONS];
    if (m->slab_bytes[MT_MEM_WORKSPACE] > s->work_bytes)
        s->work_bytes = m->slab_bytes[MT_MEM_WORKSPACE];
    if (total > s->slab_total) s->slab_total = total;
    s->weights = m->slab_bytes[MT_MEM_WEIGHTS];
    s->acts_attached |= m->acts != NULL || m->work != NULL;
}

static void on_region(void *user, const char *name, int begin)
{
    struct seen *s = user;
    if (begin && !strcmp(name, "decode")) {
        s->decode_begun++;
        held(s);
    } else if (!begin && !strcmp(name, "infer")) {
        s->infer_ended++;
        held(s);
    }
}

static int no_run(struct mt_ctx *ctx)
{
    (void)ctx;
    return 0;
}

static const struct mt_param_spec params[] = {
    MT_WL_PARAM_DECODE_TOKENS,
    {"eval_tokens", MT_PARAM_INT, "0", 0, 1e12, NULL, "validation bytes to score"},
};
static const struct mt_workload serving_wl = {.name = "serving_test",
                                              .summary = "the serving measurement",
                                              .params = params,
                                              .n_params = sizeof params / sizeof params[0],
                                              .run = no_run};

static double metric(const struct fake_ctx *f, const char *name)
{
    const struct fake_metric *x = fake_ctx_metric(f, name);
    CHECK(x && !x->na, "metric %s missing", name);
    return x ? x->value : -1.0;
}

static void test_serving(void)
{
    char err[256] = "";
    struct mt_corpus c;
    memset(&c, 0, sizeof c);
    c.bytes = malloc(N_BYTES);
    for (size_t i = 0; i < N_BYTES; i++) /* text-like bytes, the same every run */
        c.bytes[i] = (uint8_t)(32 + (i * 7919 + i / 13) % 95);
    c.n = N_BYTES;
    c.train = c.bytes, c.n_train = N_BYTES * 9 / 10;
    c.val = c.bytes + c.n_train, c.n_val = N_BYTES - c.n_train;
    c.train_tokens = mt_tokens_of_bytes(c.train, c.n_train);
    c.val_tokens = mt_tokens_of_bytes(c.val, c.n_val);

    struct mt_gpt *m = tiny(MT_GPT_INFER, B, T);
    if (!m) return;
    struct mt_eval_result ref;
    CHECK_OK(mt_gpt_eval(m, c.val, c.n_val, EVAL_BYTES, &ref, err, sizeof err), err);

    static const char *ov[] = {"decode_tokens=32", "eval_tokens=1024"};
    struct fake_ctx f;
    fake_ctx_init(&f, &serving_wl, ov, sizeof ov / sizeof ov[0]);
    struct seen s = {.m = m};
    f.on_region = on_region;
    f.region_user = &s;
    CHECK(mt_wl_report_serving(&f.base, m, &c, NULL) == 0, "serving failed: %s", f.error);
    CHECK(f.open_regions == 0 && f.region_errors == 0, "regions unbalanced");

    CHECK(s.decode_begun == 1 && s.infer_ended == 1, "decode %d, infer ended %d", s.decode_begun,
          s.infer_ended);
    CHECK(s.acts_bytes == 0 && s.work_bytes == 0 && !s.acts_attached,
          "while decoding the model held %zu activation and %zu workspace bytes", s.acts_bytes,
          s.work_bytes);
    CHECK(s.slab_total == s.weights, "while decoding the model held %zu bytes, its weights %zu",
          s.slab_total, s.weights);
    size_t kv = 0, scratch = 0;
    mt_gpt_kv_memory(&m->cfg, CTX, &kv, &scratch);
    struct mt_kvc_spec fp32 = mt_kvc_spec_default();
    scratch += mt_kvc_table_bytes(&m->cfg, &fp32, CTX, 1, 0); /* the cache's bookkeeping */
    CHECK(mt_kvc_table_bytes(&m->cfg, &fp32, CTX, 1, 0) == 32, "table bytes");
    double infer = metric(&f, "infer_peak_bytes");
    CHECK(infer == (double)(s.slab_total + kv + scratch),
          "infer_peak_bytes %.0f, held while decoding %zu + kv %zu + scratch %zu", infer,
          s.slab_total, kv, scratch);
    CHECK(metric(&f, "infer_peak_weights_bytes") == (double)s.weights, "weights part");
    CHECK(fake_ctx_metric(&f, "infer_peak_activations_bytes") == NULL,
          "infer_peak has activations");

    double loss = metric(&f, "val_loss");
    CHECK(loss == ref.loss, "val_loss %.17g after re-attaching, %.17g before", loss, ref.loss);
    CHECK(metric(&f, "val_top1") == ref.top1, "val_top1 differs");
    CHECK(matches_plan(m, B, T, MT_GPT_INFER), "the model is not back in its inference plan");
    size_t plan = mt_gpt_memory(&m->cfg, B, T, MT_GPT_INFER, NULL, NULL, 0);
    CHECK(metric(&f, "eval_peak_bytes") == (double)(plan + mt_wl_batch_bytes(B, T)),
          "eval_peak_bytes");
    printf("serving: decode held %zu bytes of slabs (weights %zu), infer_peak %.0f, val_loss "
           "%.9g\n",
           s.slab_total, s.weights, infer, loss);
    mt_gpt_free(m);
    free(c.bytes);
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "";
    if (!strcmp(which, "mode"))
        test_mode();
    else if (!strcmp(which, "serving"))
        test_serving();
    else {
        fprintf(stderr, "usage: %s mode|serving\n", argv[0]);
        return 2;
    }
    if (failures) return 1;
    printf("ok: %s\n", which);
    return 0;
}
