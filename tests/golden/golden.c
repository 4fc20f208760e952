/* golden.c — golden figures of the single-process engines and workloads (ctest golden.*).
 *
 * What it is for: before the one-engine redesign (issue 16) moves anything, pin what the
 * engines compute today so the redesign can show that its fp32 defaults reproduce it bit
 * for bit: the loss of every training step, val_loss on a fixed slice of the validation
 * text, checksums of the logits of a fixed batch, exact memory plans and bytes per
 * category. One case per run:
 *   golden DATA_DIR PLUGIN_DIR CORPUS CASE [--tolerance]
 * compares with DATA_DIR/CASE.txt (or rewrites it under MT_GOLDEN_UPDATE=1); see README.md.
 * Everything runs on one OpenMP thread, seed 1337, the committed corpus.
 * What it is not for: the distributed engine (golden_dist.c, under mpirun) or any check
 * of the math itself (tests/transformer, tests/train).
 */
#include <dirent.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "data.h"
#include "golden.h"
#include "gpt.h"
#include "tmodel.h"
#include "wlcommon.h"

#define SEED 1337
#define STEPS 20
#define FIXED_B 4 /* windows of the fixed logits batch */

static const char *g_plugins, *g_corpus;

/* ------------------------------------------------------------------ plans */

/* The key keeps ".r0" (gpt.c's recomputation, since removed: checkpointing is the
 * training engine's, its plans are the tmodel.* figures). */
static void gpt_plan(struct golden *g, const char *preset, size_t B, size_t T,
                     enum mt_gpt_mode mode)
{
    static const char *const modes[] = {"weights", "infer", "train"};
    struct mt_gpt_config cfg;
    size_t bytes[MT_MEM_CAT_COUNT];
    char err[256];
    mt_gpt_config_preset(&cfg, preset, err, sizeof err);
    if (T > cfg.seq_len) T = cfg.seq_len;
    size_t total = mt_gpt_memory(&cfg, B, T, mode, bytes, err, sizeof err);
    char key[96];
    snprintf(key, sizeof key, "gpt.%s.%s.B%zu.T%zu.r0", preset, modes[mode], B, T);
    golden_exact(g, total, "%s.total", key);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        if (bytes[c]) golden_exact(g, bytes[c], "%s.%s", key, mt_mem_cat_names[c]);
}

static void tmodel_plan(struct golden *g, const char *preset, size_t micro, enum mt_prec prec,
                        int master, size_t every, int pool)
{
    struct mt_gpt_config cfg;
    struct mt_tmodel_plan plan;
    char err[256];
    mt_gpt_config_preset(&cfg, preset, err, sizeof err);
    if (every > cfg.n_layer) return;
    struct mt_tmodel_opts o = {.micro_batch = micro,
                               .seq = cfg.seq_len < 128 ? cfg.seq_len : 128,
                               .prec = prec,
                               .master_weights = master,
                               .every = every,
                               .pool = pool};
    char key[96];
    snprintf(key, sizeof key, "tmodel.%s.mb%zu.%s.m%d.e%zu.%s", preset, micro, mt_prec_name(prec),
             master, every, pool ? "pool" : "malloc");
    if (mt_tmodel_plan(&cfg, &o, &plan, err, sizeof err)) {
        golden_exact(g, 0, "%s.refused", key);
        return;
    }
    golden_exact(g, plan.total, "%s.total", key);
    golden_exact(g, plan.n_slots, "%s.slots", key);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        if (plan.bytes[c]) golden_exact(g, plan.bytes[c], "%s.%s", key, mt_mem_cat_names[c]);
}

static int case_plans(struct golden *g)
{
    static const char *const presets[] = {"tiny", "small", "medium", "gpt2"};
    for (size_t p = 0; p < 4; p++) {
        gpt_plan(g, presets[p], 0, 0, MT_GPT_WEIGHTS);
        gpt_plan(g, presets[p], 1, 1, MT_GPT_INFER);
        gpt_plan(g, presets[p], 16, 128, MT_GPT_INFER);
        gpt_plan(g, presets[p], 16, 128, MT_GPT_TRAIN);
        gpt_plan(g, presets[p], 4, 1024, MT_GPT_TRAIN);
        struct mt_gpt_config cfg;
        char err[64];
        mt_gpt_config_preset(&cfg, presets[p], err, sizeof err);
        for (size_t n = 16; n; n = n == cfg.seq_len ? 0 : cfg.seq_len) {
            size_t kv = 0, scratch = 0;
            mt_gpt_kv_memory(&cfg, n, &kv, &scratch);
            golden_exact(g, kv, "kv.%s.T%zu.kv_cache", presets[p], n);
            golden_exact(g, scratch, "kv.%s.T%zu.workspace", presets[p], n);
        }
    }
    static const size_t micro[] = {4, 16}, every[] = {1, 2, 4};
    for (size_t p = 0; p < 2; p++)
        for (size_t mb = 0; mb < 2; mb++)
            for (int prec = MT_PREC_FP32; prec <= MT_PREC_FP16; prec++)
                for (int master = 0; master <= (prec != MT_PREC_FP32); master++)
                    for (size_t e = 0; e < 3; e++)
                        for (int pool = 0; pool <= 1; pool++)
                            tmodel_plan(g, presets[p], micro[mb], (enum mt_prec)prec, master,
                                        every[e], pool);
    return 0;
}

/* ------------------------------------------------------------------ logits */

/* The fixed batch: FIXED_B consecutive windows of T bytes from the start of the
 * validation split, each with its next-byte targets. */
static void fixed_batch(const struct mt_corpus *c, size_t T, int *in, int *tg)
{
    for (size_t i = 0; i < FIXED_B * T; i++) {
        in[i] = c->val[i];
        tg[i] = c->val[i + 1];
    }
}

/* Figures of model m on the fixed batch: the loss (float) and the raw logits. */
static int logits_figures(struct golden *g, const char *prefix, struct mt_gpt *m,
                          const struct mt_corpus *c)
{
    size_t T = m->T;
    int in[FIXED_B * 128], tg[FIXED_B * 128];
    char err[256];
    float loss = 0.0f;
    fixed_batch(c, T, in, tg);
    if (mt_gpt_forward(m, in, tg, FIXED_B, T, &loss, err, sizeof err) ||
        mt_gpt_forward(m, in, NULL, FIXED_B, T, NULL, err, sizeof err)) {
        fprintf(stderr, "golden: forward: %s\n", err);
        return -1;
    }
    golden_float(g, loss, "%s.loss", prefix);
    golden_floats(g, prefix, m->act[MT_A_LOGITS], FIXED_B * T * m->cfg.vocab);
    return 0;
}

static int load_corpus(struct mt_corpus *c, size_t T)
{
    char err[512];
    if (mt_corpus_load(c, g_corpus, T, err, sizeof err)) {
        fprintf(stderr, "golden: %s\n", err);
        return -1;
    }
    return 0;
}

/* A model of `preset` for the fixed batch, initialized (mt_gpt_init) or loaded. */
static int infer_model(struct mt_gpt **m, const char *preset, const char *ckpt)
{
    struct mt_gpt_config cfg;
    char err[512];
    mt_gpt_config_preset(&cfg, preset, err, sizeof err);
    size_t T = cfg.seq_len < 128 ? cfg.seq_len : 128;
    int rc = ckpt ? mt_ckpt_load(ckpt, &cfg, MT_GPT_INFER, FIXED_B, T, m, NULL, err, sizeof err)
                  : mt_gpt_create(m, &cfg, MT_GPT_INFER, FIXED_B, T, err, sizeof err);
    if (rc) {
        fprintf(stderr, "golden: model %s: %s\n", preset, err);
        return -1;
    }
    if (!ckpt) mt_gpt_init(*m, SEED);
    return 0;
}

/* ------------------------------------------------------------------ plugin cases */

struct plugin_case {
    const char *name;    /* ctest golden.<name> */
    const char *plugin;  /* <plugin>.so */
    const char *ov[8];   /* overrides besides model, steps, seed, eval_tokens, corpus */
    const char *model;   /* preset */
    int baseline_logits; /* the logits of the model at init and of the cached reference */
};

/* Figures every plugin case shares: 20 steps (post-training references too), seed 1337,
 * 8192 validation bytes, a 16-position serving context. */
static const struct plugin_case cases[] = {
    {"baseline_tiny", "baseline", {NULL}, "tiny", 1},
    {"baseline_small", "baseline", {NULL}, "small", 1},
    {"grad_accum_fp32", "grad_accum", {NULL}, "tiny", 0},
    {"grad_accum_bf16", "grad_accum", {"precision=bf16"}, "tiny", 0},
    {"grad_accum_fp16", "grad_accum", {"precision=fp16"}, "tiny", 0},
    {"mixed_precision_fp32", "mixed_precision", {"precision=fp32"}, "tiny", 0},
    {"mixed_precision_bf16", "mixed_precision", {NULL}, "tiny", 0},
    {"mixed_precision_fp16", "mixed_precision", {"precision=fp16"}, "tiny", 0},
    {"mixed_precision_bf16_nomaster", "mixed_precision", {"master_weights=off"}, "tiny", 0},
    {"checkpointing_fp32", "checkpointing", {NULL}, "tiny", 0},
    {"checkpointing_small", "checkpointing", {NULL}, "small", 0},
    {"checkpointing_bf16", "checkpointing", {"precision=bf16"}, "tiny", 0},
    {"checkpointing_fp16", "checkpointing", {"precision=fp16"}, "tiny", 0},
    {"mempool_fp32", "mempool", {NULL}, "tiny", 0},
    {"mempool_pool", "mempool", {"alloc=pool"}, "tiny", 0},
    {"mempool_bf16", "mempool", {"precision=bf16"}, "tiny", 0},
    {"mempool_fp16", "mempool", {"precision=fp16"}, "tiny", 0},
    {"distill", "distill", {"student_steps=20"}, "tiny", 0},
    {"distill_cache", "distill", {"student_steps=20", "teacher_cache=on"}, "tiny", 0},
    {"prune", "prune", {"finetune_steps=20"}, "tiny", 0},
    {"prune_wanda", "prune", {"finetune_steps=20", "method=wanda"}, "tiny", 0},
    {"quantize", "quantize", {NULL}, "tiny", 0},
};

/* The checkpoint the plugin left in its cache folder (the baseline it trained; not the
 * base distributions kept beside it, <checkpoint>.eval<N>-T<T>.probs). */
static int find_ckpt(const char *dir, char *path, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 7 && !strcmp(e->d_name + len - 7, ".mtckpt")) {
            snprintf(path, n, "%s/%s", dir, e->d_name);
            found = 1;
        }
    }
    if (d) closedir(d);
    return found ? 0 : -1;
}

static int case_plugin(struct golden *g, const struct plugin_case *pc)
{
    char so[4096], tmp[4096], model[64], corpus[4200], ckpt[4400];
    const char *ov[16];
    size_t n = 0;
    snprintf(so, sizeof so, "%s/%s.so", g_plugins, pc->plugin);
    snprintf(model, sizeof model, "model=%s", pc->model);
    snprintf(corpus, sizeof corpus, "corpus=%s", g_corpus);
    ov[n++] = model;
    ov[n++] = "steps=20";
    ov[n++] = "seed=1337";
    ov[n++] = "eval_tokens=8192";
    ov[n++] = "decode_tokens=16";
    ov[n++] = corpus;
    for (size_t i = 0; i < 8 && pc->ov[i]; i++)
        ov[n++] = pc->ov[i];
    if (golden_tmpdir(tmp, sizeof tmp)) return -1;
    int rc = golden_run_plugin(g, pc->plugin, so, ov, n, 1, 0, 1, tmp);
    if (rc == 0 && pc->baseline_logits) {
        struct mt_corpus c;
        struct mt_gpt *m = NULL;
        size_t T = strcmp(pc->model, "tiny") ? 128 : 64;
        rc = load_corpus(&c, T);
        if (rc == 0) {
            rc = infer_model(&m, pc->model, NULL);
            if (rc == 0) rc = logits_figures(g, "init_logits", m, &c);
            mt_gpt_free(m), m = NULL;
            if (rc == 0 && (rc = find_ckpt(tmp, ckpt, sizeof ckpt)))
                fprintf(stderr, "golden: %s left no checkpoint in %s\n", pc->plugin, tmp);
            if (rc == 0) rc = infer_model(&m, pc->model, ckpt);
            if (rc == 0) rc = logits_figures(g, "trained_logits", m, &c);
            mt_gpt_free(m);
            mt_corpus_free(&c);
        }
    }
    golden_rmdir(tmp);
    return rc;
}

/* ------------------------------------------------------------------ the train engine */

/* The train engine (tmodel.h) on its own, as trainloop.c drives it with one micro-batch
 * per step and no loss scaling: 20 steps of the baseline's batches, then the weights it
 * exports, and their logits of the fixed batch (at init and after training). */
static int case_tmodel(struct golden *g, enum mt_prec prec)
{
    struct mt_gpt_config cfg;
    struct mt_corpus c;
    char err[512];
    mt_gpt_config_preset(&cfg, "tiny", err, sizeof err);
    struct mt_gpt_recipe r = mt_gpt_recipe_default(STEPS);
    r.seq = cfg.seq_len;
    size_t B = r.batch, T = r.seq;
    struct mt_tmodel_opts o = {
        .micro_batch = B, .seq = T, .prec = prec, .master_weights = 1, .every = 1, .pool = 1};
    struct mt_tmodel *t = NULL;
    struct mt_gpt *m = NULL;
    int *in = malloc(2 * B * T * sizeof *in), *tg = in ? in + B * T : NULL;
    int rc = !in || load_corpus(&c, T);
    if (rc) {
        free(in);
        return -1;
    }
    rc = mt_tmodel_create(&t, &cfg, &o, SEED, err, sizeof err) ||
         mt_gpt_create(&m, &cfg, MT_GPT_INFER, FIXED_B, T, err, sizeof err);
    if (rc) fprintf(stderr, "golden: %s\n", err);
    if (rc == 0) {
        mt_tmodel_export(t, m->params);
        rc = logits_figures(g, "init_logits", m, &c);
    }
    struct mt_rng rng;
    mt_rng_seed(&rng, SEED ^ MT_WL_BATCH_STREAM);
    for (size_t step = 0; rc == 0 && step < STEPS; step++) {
        float loss = 0.0f;
        mt_batch_sample(c.train, c.n_train, B, T, &rng, in, tg);
        rc = mt_tmodel_forward(t, in, tg, B, &loss, err, sizeof err) ||
             mt_tmodel_backward(t, 1.0f, B * T, err, sizeof err);
        if (rc) {
            fprintf(stderr, "golden: step %zu: %s\n", step, err);
            break;
        }
        float gnorm = mt_tmodel_adamw(t, &r, mt_gpt_lr_at(&r, step), 1.0f);
        golden_float(g, loss, "train_loss[%zu]", step);
        golden_float(g, gnorm, "grad_norm[%zu]", step);
    }
    if (rc == 0) {
        const struct mt_tmodel_stats *s = mt_tmodel_stats(t);
        for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++)
            if (s->peak[cat]) golden_exact(g, s->peak[cat], "peak.%s", mt_mem_cat_names[cat]);
        golden_exact(g, s->peak_total, "peak.total");
        mt_tmodel_export(t, m->params);
        if (prec == MT_PREC_FP32)
            golden_floats(g, "params", m->params, m->n_params);
        else { /* one bf16 step apart is 0.4 %: single 16-bit weights are no tolerance figure */
            double sum = 0.0;
            for (size_t i = 0; i < m->n_params; i++)
                sum += m->params[i];
            golden_bits(g, golden_fnv_floats(m->params, m->n_params), "params.fnv");
            golden_float(g, sum, "params.sum");
        }
        rc = logits_figures(g, "trained_logits", m, &c);
    }
    mt_gpt_free(m);
    mt_tmodel_free(t);
    mt_corpus_free(&c);
    free(in);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: golden DATA_DIR PLUGIN_DIR CORPUS CASE [--tolerance]\n");
        return 2;
    }
    const char *dir = argv[1], *name = argv[4];
    int tolerance = argc > 5 && !strcmp(argv[5], "--tolerance");
    g_plugins = argv[2], g_corpus = argv[3];
    omp_set_num_threads(1);
    struct golden g = {0};
    int rc = -1;
    if (!strcmp(name, "plans"))
        rc = case_plans(&g);
    else if (!strcmp(name, "tmodel_fp32"))
        rc = case_tmodel(&g, MT_PREC_FP32);
    else if (!strcmp(name, "tmodel_bf16"))
        rc = case_tmodel(&g, MT_PREC_BF16);
    else
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            if (!strcmp(name, cases[i].name)) rc = case_plugin(&g, &cases[i]);
    if (rc) {
        fprintf(stderr, "golden: case %s could not run\n", name);
        free(g.figs);
        return 1;
    }
    return golden_finish(&g, dir, name, tolerance);
}
