/* distill_plugin.c — the `distill` workload plugin: train a smaller student against the
 * cached trained baseline as teacher, then serve the student.
 *
 * What it is for: the teacher is the baseline picked by `model` (trained with `steps`,
 * `batch`, `lr`, `seed` and cached, as for every workload) and runs forward only, in
 * inference mode. The student (`student` preset, optionally reshaped by
 * `student_layers` / `student_heads` / `student_channels`; its sequence length is the
 * teacher's) trains `student_steps` steps (0 = `steps`) with the baseline recipe on the
 * same batches the baseline saw, on loss alpha*T^2*KL(teacher_T || student_T) +
 * (1 - alpha)*CE (distill.h). alpha = 0 is the control: the teacher is not even loaded,
 * and the run is exactly the baseline recipe trained on the student's shape (the same
 * init seed, and the one training loop of loop.h: the baseline's batch stream and update
 * order; the distillation term is the loop's loss hook).
 * With teacher_cache = on, the teacher instead runs once over every batch the student
 * will see before training, its logits go to a file in the run's scratch folder (fp32,
 * or bf16 with teacher_cache_dtype = bf16, round to nearest even), the teacher is freed,
 * and each step reads its batch's logits back: neither the teacher's weights nor its
 * activations are resident while the student trains. fp32 gives bit-identical training.
 * What it is not for: distilling into pruned/quantized students.
 *
 * Memory: train_peak_bytes is accounted from the slabs alive during training: the
 * student's training state plus the teacher's inference state, and the teacher's part
 * is also reported per category (teacher_<category>_bytes). With the cache, the training
 * slabs are the student's plus one batch of logits (and its bf16 staging): no teacher
 * categories; teacher_cache_bytes is the file, cache_peak_bytes the pre-pass (teacher
 * inference slabs + batches + logits buffers). The student is then moved
 * to an inference-mode model (training state and teacher freed) and served through the
 * one serving measurement (serving.h): infer_peak_bytes counts its weights, the KV cache
 * of the decode and its scratch; eval_peak_bytes the evaluation batch's slabs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <memtrade/workload.h>

#include "distill.h"
#include "loop.h"
#include "wlcommon.h"
#include "wlplan.h"

#define EVAL_B 8

/* The student configuration: preset, then the explicit overrides, T = the teacher's. */
static int student_config(struct mt_ctx *ctx, const struct mt_gpt_config *teacher,
                          struct mt_gpt_config *s)
{
    char err[256];
    if (mt_gpt_config_preset(s, mt_param_str(ctx, "student"), err, sizeof(err)))
        return mt_error(ctx, "student: %s", err);
    static const char *const keys[3][2] = {
        {"student_layers", "n_layer"}, {"student_heads", "n_head"}, {"student_channels", "n_embd"}};
    for (int i = 0; i < 3; i++) {
        int64_t v = mt_param_int(ctx, keys[i][0]);
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long)v);
        if (v > 0 && mt_gpt_config_set(s, keys[i][1], buf, err, sizeof(err)))
            return mt_error(ctx, "%s: %s", keys[i][0], err);
    }
    s->vocab = teacher->vocab;
    s->seq_len = teacher->seq_len;
    if (mt_gpt_config_check(s, err, sizeof(err))) return mt_error(ctx, "student shape: %s", err);
    return 0;
}

static void report_memory(struct mt_ctx *ctx, const struct mt_gpt *student,
                          const struct mt_gpt *teacher, size_t batch_bytes, const char *no_teacher)
{
    size_t peak = mt_wl_slab_total(student) + batch_bytes;
    if (teacher) {
        peak += mt_wl_slab_total(teacher);
        for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
            if (!teacher->slab_bytes[c]) continue;
            char name[64];
            snprintf(name, sizeof(name), "teacher_%s_bytes", mt_mem_cat_names[c]);
            mt_metric(ctx, name, (double)teacher->slab_bytes[c], "bytes");
        }
        mt_metric(ctx, "teacher_params", (double)teacher->n_params, "count");
    } else {
        mt_metric_na(ctx, "teacher_weights_bytes", "bytes", no_teacher);
    }
    mt_metric(ctx, "train_peak_bytes", (double)peak, "bytes");
}

/* Teacher logits on disk: one batch of r->batch x r->seq x V values per training step,
 * in step order, stored fp32 or bf16. The file is unlinked once open (gone at close or
 * crash); zt (fp32) and half (bf16 staging) are the only resident parts. */
struct logit_cache {
    FILE *f;
    int bf16;
    size_t n; /* values per batch */
    float *zt;
    uint16_t *half;
};

static uint16_t to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                          /* to nearest even */
    return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof(x));
    return x;
}

/* The resident part of the cache for n values per batch: zt, and half when bf16. */
static size_t cache_bytes(size_t n, int bf16)
{
    return n * sizeof(float) + (bf16 ? n * sizeof(uint16_t) : 0);
}

static size_t cache_buffer_bytes(const struct logit_cache *c)
{
    return cache_bytes(c->n, c->bf16);
}

static void cache_close(struct logit_cache *c)
{
    if (c->f) fclose(c->f);
    free(c->zt);
    free(c->half);
    memset(c, 0, sizeof(*c));
}

/* Runs `teacher` over the r->steps batches of the student's stream and writes the logits;
 * reports teacher_cache_bytes and cache_peak_bytes. 0 or -1 (reported). */
static int cache_fill(struct mt_ctx *ctx, struct logit_cache *c, struct mt_gpt *teacher,
                      const struct mt_gpt_recipe *r, uint64_t seed, const struct mt_corpus *corpus)
{
    const char *dir = ctx->ops->scratch_dir(ctx);
    if (!dir || !dir[0]) return mt_error(ctx, "teacher_cache: no scratch folder");
    char path[600];
    snprintf(path, sizeof(path), "%s/teacher_logits.bin", dir);
    size_t B = r->batch, T = r->seq, V = teacher->cfg.vocab;
    c->n = B * T * V;
    c->bf16 = strcmp(mt_param_str(ctx, "teacher_cache_dtype"), "bf16") == 0;
    c->f = fopen(path, "w+b");
    if (!c->f) return mt_error(ctx, "teacher_cache: cannot create %s", path);
    unlink(path);
    int prev = mt_mem_category(ctx, MT_MEM_DATA);
    c->zt = malloc(c->n * sizeof(float));
    c->half = c->bf16 ? malloc(c->n * sizeof(uint16_t)) : NULL;
    mt_mem_category(ctx, prev);
    int *in = mt_wl_batch_alloc(ctx, B * T);
    if (!c->zt || (c->bf16 && !c->half) || !in) {
        free(in);
        return mt_error(ctx, "teacher_cache: out of memory");
    }
    int *tg = in + B * T;
    struct mt_rng rng;
    mt_rng_seed(&rng, mt_loop_batch_seed(seed)); /* the student's batches, in its order */
    char err[512];
    int rc = 0;
    mt_region_begin(ctx, "teacher_cache");
    for (size_t step = 0; step < r->steps && rc == 0; step++) {
        mt_batch_sample_tokens(&corpus->train_tokens, B, T, &rng, in, tg);
        if (mt_gpt_forward(teacher, in, NULL, B, T, NULL, err, sizeof(err))) {
            rc = mt_error(ctx, "teacher_cache: %s", err);
            break;
        }
        const float *z = teacher->act[MT_A_LOGITS];
        if (c->bf16)
            for (size_t i = 0; i < c->n; i++)
                c->half[i] = to_bf16(z[i]);
        size_t w = c->bf16 ? fwrite(c->half, sizeof(uint16_t), c->n, c->f)
                           : fwrite(z, sizeof(float), c->n, c->f);
        if (w != c->n) rc = mt_error(ctx, "teacher_cache: write to %s failed", path);
    }
    mt_region_end(ctx, "teacher_cache");
    free(in);
    if (rc) return rc;
    if (fflush(c->f) || fseek(c->f, 0, SEEK_END)) return mt_error(ctx, "teacher_cache: flush");
    long bytes = ftell(c->f);
    rewind(c->f);
    mt_metric(ctx, "teacher_cache_bytes", (double)bytes, "bytes");
    mt_metric(ctx, "cache_peak_bytes",
              (double)(mt_wl_slab_total(teacher) + 2 * B * T * sizeof(*in) + cache_buffer_bytes(c)),
              "bytes");
    return 0;
}

/* The next step's teacher logits (fp32) from the file; NULL on a short read. */
static const float *cache_next(struct logit_cache *c)
{
    if (!c->bf16) return fread(c->zt, sizeof(float), c->n, c->f) == c->n ? c->zt : NULL;
    if (fread(c->half, sizeof(uint16_t), c->n, c->f) != c->n) return NULL;
    for (size_t i = 0; i < c->n; i++)
        c->zt[i] = from_bf16(c->half[i]);
    return c->zt;
}

/* The loop's loss hook: the teacher's logits of the batch (from the cache, or a teacher
 * forward; none at alpha = 0) folded into the student's (mt_distill_loss). */
struct distill_term {
    struct mt_ctx *ctx;
    struct mt_gpt *student, *teacher;
    struct logit_cache *cache;
    double alpha, temp;
};

static int distill_loss(void *user, const struct mt_loop_batch *b, double *loss, char *err,
                        size_t errlen)
{
    struct distill_term *d = user;
    struct mt_distill_stats st;
    const float *zt = NULL;
    if (d->cache->f) {
        if (!(zt = cache_next(d->cache))) {
            snprintf(err, errlen, "teacher_cache: short read at step %zu", b->step);
            return -1;
        }
    } else if (d->teacher) {
        if (mt_gpt_forward(d->teacher, b->in, NULL, b->rows, b->T, NULL, err, errlen)) return -1;
        zt = d->teacher->act[MT_A_LOGITS];
    }
    if (mt_distill_loss(d->student, zt, b->tg, b->rows * b->T, d->alpha, d->temp, (float)*loss, &st,
                        err, errlen))
        return -1;
    *loss = st.loss;
    mt_sample(d->ctx, "train_ce", (double)b->step, st.ce);
    if (zt) mt_sample(d->ctx, "train_kl", (double)b->step, st.kl);
    return 0;
}

/* Student training: the one loop (loop.h) on the student with the distillation term. */
static int train(struct mt_ctx *ctx, struct mt_gpt *student, struct mt_gpt *teacher,
                 struct logit_cache *cache, const struct mt_gpt_recipe *r, uint64_t seed,
                 const struct mt_corpus *c, double alpha, double temp, double cache_s)
{
    char err[512];
    struct distill_term term = {ctx, student, teacher, cache, alpha, temp};
    struct mt_loop_engine e;
    struct mt_loop_method me = {.user = &term, .loss = distill_loss};
    struct mt_loop_opts o = {
        .recipe = r, .batch_seed = mt_loop_batch_seed(seed), .series = "train_loss"};
    struct mt_loop_result res;
    mt_loop_gpt_engine(&e, student);
    if (mt_loop_run_tokens(ctx, &o, &e, &me, &c->train_tokens, &res, err, sizeof err))
        return mt_error(ctx, "distillation failed: %s", err);
    size_t B = r->batch, T = r->seq;
    mt_metric(ctx, "train_tokens_per_s", (double)(r->steps * B * T) / (res.seconds + cache_s),
              "tokens/s");
    mt_metric(ctx, "train_loss", res.final_loss, "nats/byte");
    report_memory(ctx, student, teacher, mt_wl_batch_bytes(B, T) + cache_buffer_bytes(cache),
                  cache->f ? "teacher_cache: the teacher is freed before training"
                           : "alpha = 0: no teacher loaded");
    return 0;
}

static int run(struct mt_ctx *ctx)
{
    struct mt_wl_setup s = {0}; /* s.cfg: the teacher's */
    struct mt_gpt_config scfg;
    struct mt_gpt *teacher = NULL, *student = NULL, *served = NULL;
    char err[512];
    int rc = -1;
    mt_wl_threads(ctx);
    if (mt_wl_setup_model(ctx, &s) || student_config(ctx, &s.cfg, &scfg)) return -1;
    double alpha = mt_param_float(ctx, "alpha"), temp = mt_param_float(ctx, "temperature");
    if (mt_wl_corpus(ctx, 1, s.r.seq, &s.corpus)) return -1;
    /* The teacher is the base the served student's KL metrics compare with: its
     * distributions over the evaluation text (cached beside it) at the evaluation's batch,
     * as every serving workload computes them; then resized for the training batch, or
     * freed at alpha = 0 (the scratch control trains without it). */
    struct mt_wl_base base;
    if (mt_wl_reference_or_load(ctx, &s.cfg, &s.r, s.seed, &s.corpus, MT_GPT_INFER, EVAL_B, s.r.seq,
                                &teacher, NULL) ||
        mt_wl_base_probs(ctx, teacher, &s.corpus, &s.r, s.seed, &base))
        goto out;
    if (alpha == 0.0) {
        mt_gpt_free(teacher);
        teacher = NULL;
    } else if (mt_gpt_set_mode(teacher, MT_GPT_INFER, s.r.batch, s.r.seq, err, sizeof err)) {
        rc = mt_error(ctx, "teacher: %s", err);
        goto out;
    }
    struct mt_gpt_recipe sr = s.r;
    int64_t ss = mt_param_int(ctx, "student_steps");
    if (ss > 0) {
        sr = mt_gpt_recipe_default((size_t)ss);
        sr.batch = s.r.batch;
        sr.seq = s.r.seq;
        sr.lr = s.r.lr;
    }
    if (mt_gpt_create(&student, &scfg, MT_GPT_TRAIN, sr.batch, sr.seq, err, sizeof(err))) {
        rc = mt_error(ctx, "student: %s", err);
        goto out;
    }
    mt_gpt_init(student, s.seed);
    mt_log(ctx, MT_LOG_INFO,
           "student L%zu H%zu C%zu (%zu params) from teacher L%zu H%zu C%zu; alpha %.3g T %.3g",
           scfg.n_layer, scfg.n_head, scfg.n_embd, student->n_params, s.cfg.n_layer, s.cfg.n_head,
           s.cfg.n_embd, alpha, temp);
    struct logit_cache cache = {0};
    double cache_s = 0.0;
    if (teacher && strcmp(mt_param_str(ctx, "teacher_cache"), "on") == 0) {
        double t0 = mt_wl_now();
        if ((rc = cache_fill(ctx, &cache, teacher, &sr, s.seed, &s.corpus))) {
            cache_close(&cache);
            goto out;
        }
        cache_s = mt_wl_now() - t0;
        mt_gpt_free(teacher);
        teacher = NULL;
    }
    rc = train(ctx, student, teacher, &cache, &sr, s.seed, &s.corpus, alpha, temp, cache_s);
    cache_close(&cache);
    if (rc) goto out;
    mt_gpt_free(teacher);
    teacher = NULL;

    /* serve the student: inference-mode copy, training state freed first */
    if (mt_gpt_create(&served, &scfg, MT_GPT_INFER, EVAL_B, sr.seq, err, sizeof(err))) {
        rc = mt_error(ctx, "student (inference): %s", err);
        goto out;
    }
    memcpy(served->params, student->params, served->slab_bytes[MT_MEM_WEIGHTS]);
    mt_gpt_free(student);
    student = NULL;
    mt_wl_report_model(ctx, served);
    struct mt_wl_serving sv = {.base = &base};
    if ((rc = mt_wl_report_serving(ctx, served, &s.corpus, &sv))) goto out;
    rc = 0;
out:
    mt_gpt_free(served);
    mt_gpt_free(student);
    mt_gpt_free(teacher);
    mt_corpus_free(&s.corpus);
    return rc;
}

static size_t mem_estimate(struct mt_ctx *ctx)
{
    /* the teacher's training when not cached dominates; a student is no larger than the
     * presets allow, so count it as a second teacher-sized training state */
    return 2 * mt_wl_estimate_baseline(ctx, 0, NULL);
}

/* The run's phases, per category, from the slabs each holds (mt_gpt_memory):
 *   "teacher_cache" (teacher_cache = on, alpha > 0): the student's training state, the
 *     teacher's inference slabs at the training batch, the pre-pass's batch and the
 *     cache's buffers;
 *   "train": the student's training state, the batch, and either the teacher's inference
 *     slabs (alpha > 0, no cache) or the cache's buffers (data) or nothing (alpha = 0);
 *   "infer" and "eval": the student served (mt_wl_plan_serving, compared with the teacher:
 *     the KL buffers).
 * The teacher's own training, when it is not cached, runs in region "train" too: the
 * plan is the distillation's (on equal shapes it is the larger in every category). */
static int plan(struct mt_ctx *ctx, struct mt_mem_plan *p)
{
    struct mt_gpt_config tcfg, scfg;
    size_t T;
    if (mt_wl_estimate_shape(ctx, &tcfg, &T)) return mt_wl_check_model(ctx);
    if (student_config(ctx, &tcfg, &scfg)) return -1;
    size_t B = (size_t)mt_param_int(ctx, "batch");
    int teacher = mt_param_float(ctx, "alpha") != 0.0;
    int cached = teacher && strcmp(mt_param_str(ctx, "teacher_cache"), "on") == 0;
    size_t cache = cached ? cache_bytes(B * T * tcfg.vocab,
                                        !strcmp(mt_param_str(ctx, "teacher_cache_dtype"), "bf16"))
                          : 0;
    size_t b[MT_MEM_CAT_COUNT] = {0};
    if (mt_wl_plan_add_slabs(ctx, &scfg, B, T, MT_GPT_TRAIN, b)) return -1;
    b[MT_MEM_DATA] += mt_wl_batch_bytes(B, T) + cache;
    if (cached) {
        size_t c[MT_MEM_CAT_COUNT];
        memcpy(c, b, sizeof c);
        if (mt_wl_plan_add_slabs(ctx, &tcfg, B, T, MT_GPT_INFER, c) ||
            mt_wl_plan_add(ctx, p, "teacher_cache", MT_PLAN_TRAINING, c))
            return -1;
    } else if (teacher && mt_wl_plan_add_slabs(ctx, &tcfg, B, T, MT_GPT_INFER, b)) {
        return -1;
    }
    if (mt_wl_plan_add(ctx, p, "train", MT_PLAN_TRAINING, b)) return -1;
    struct mt_wl_plan_serving s = {
        .weight_slab = mt_gpt_weight_slab_bytes(&scfg, NULL), .eval_batch = EVAL_B, .eval_T = T,
        .kl = 1};
    return mt_wl_plan_serving(ctx, &scfg, &s, p);
}

static const struct mt_param_spec params[] = {
    MT_WL_PARAMS_POSTTRAIN,
    {"student", MT_PARAM_CHOICE, "tiny", 0, 0, "tiny|small|medium|gpt2",
     "student preset (its seq_len is replaced by the teacher's)"},
    {"student_layers", MT_PARAM_INT, "0", 0, 96, NULL, "student n_layer (0 = the preset's)"},
    {"student_heads", MT_PARAM_INT, "0", 0, 96, NULL, "student n_head (0 = the preset's)"},
    {"student_channels", MT_PARAM_INT, "0", 0, 8192, NULL, "student n_embd (0 = the preset's)"},
    {"student_steps", MT_PARAM_INT, "0", 0, 1000000, NULL,
     "student training steps (0 = steps, the teacher's budget)"},
    {"alpha", MT_PARAM_FLOAT, "0.5", 0.0, 1.0, NULL,
     "weight of T^2*KL(teacher||student); 0 = train from scratch (control)"},
    {"temperature", MT_PARAM_FLOAT, "2", 0.1, 100.0, NULL, "softmax temperature T"},
    {"teacher_cache", MT_PARAM_CHOICE, "off", 0, 0, "off|on",
     "on = teacher logits computed once, cached in a scratch file, teacher freed before "
     "training"},
    {"teacher_cache_dtype", MT_PARAM_CHOICE, "fp32", 0, 0, "fp32|bf16",
     "cached logits' type: fp32 (training bit-identical to no cache) or bf16 (half the bytes)"},
    MT_WL_PARAM_DECODE_TOKENS,
    MT_WL_PARAMS_KV_CACHE,
};

MT_WL_DESCRIPTOR_PLAN("distill",
                      "train a smaller student against the cached baseline teacher (KL + CE)",
                      params, NULL, mem_estimate, run, mt_wl_check_model, plan);
