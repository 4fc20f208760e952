/* trainloop.c — the shared training loop of the training-memory plugins (trainloop.h). */
#include "trainloop.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf16mm.h"
#include "loop.h"
#include "wlplan.h"

#define ERRLEN 512
#define EVAL_BATCH 8          /* windows per evaluation forward, as the baseline */
#define DYNAMIC_INIT 65536.0f /* 2^16, the usual first dynamic loss scale */

/* ---------------------------------------------------------------- knobs */

/* device=cuda: what the GPU twin runs of the knobs (trainloop.h), refusing the rest. */
static int resolve_device(struct mt_ctx *ctx, struct mt_train_opts *o, char *err, size_t errlen)
{
    const char *dev = mt_param_str(ctx, "device"), *dp = mt_param_str(ctx, "device_precision");
    const struct mt_tmodel_opts *e = &o->engine;
    o->device = dev && strcmp(dev, "cpu") != 0;
    o->dprec = MT_CUDA_FP32;
    if (!o->device) return 0;
    const char *no = e->prec == MT_PREC_FP16 ? "precision=fp16 (fp32, bf16)"
                     : !e->master_weights && e->prec != MT_PREC_FP32
                         ? "master_weights=off (the device keeps fp32 weights)"
                     : !e->pool ? "alloc=malloc (the device allocates slabs: alloc=pool)"
                     : e->optimizer != MT_OPTIM_ADAMW ? "an optimizer other than adamw"
                     : e->offload                     ? "offload=optimizer"
                     : e->selective ? "recompute=selective (every=N recomputes whole blocks)"
                                    : NULL;
    if (no) return snprintf(err, errlen, "device=%s does not run %s", dev, no), -1;
    if (mt_cuda_precision_parse(dp ? dp : "fp32", &o->dprec, err, errlen)) return -1;
    if (e->prec == MT_PREC_BF16) {
        if (o->dprec == MT_CUDA_TF32)
            return snprintf(err, errlen,
                            "precision=bf16 with device_precision=tf32: one or the "
                            "other"),
                   -1;
        o->dprec = MT_CUDA_BF16;
    }
    return 0;
}

/* The knobs without the ctx's error hook (mem_estimate runs where only getters work). */
static int resolve(struct mt_ctx *ctx, const struct mt_gpt_config *cfg, size_t batch, size_t seq,
                   struct mt_train_opts *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    int64_t micro = mt_param_int(ctx, "micro_batch"), accum = mt_param_int(ctx, "accum_steps");
    if (micro < 0 || accum < 0)
        return snprintf(err, errlen, "micro_batch and accum_steps must be >= 0"), -1;
    if (!micro && !accum) accum = 1;
    if (!micro) {
        if (batch % (size_t)accum)
            return snprintf(err, errlen, "accum_steps %lld does not divide batch %zu",
                            (long long)accum, batch),
                   -1;
        micro = (int64_t)(batch / (size_t)accum);
    } else if (!accum) {
        if (batch % (size_t)micro)
            return snprintf(err, errlen, "micro_batch %lld does not divide batch %zu",
                            (long long)micro, batch),
                   -1;
        accum = (int64_t)(batch / (size_t)micro);
    }
    /* both named: micro_batch need not divide the batch when accum_steps is
     * ceil(batch / micro_batch): the last micro-batch holds the rest */
    int ragged = (size_t)(micro * (accum - 1)) < batch && (size_t)(micro * accum) > batch;
    if ((size_t)(micro * accum) != batch && !ragged)
        return snprintf(err, errlen, "micro_batch %lld x accum_steps %lld is not batch %zu",
                        (long long)micro, (long long)accum, batch),
               -1;
    o->engine.micro_batch = (size_t)micro;
    o->accum_steps = (size_t)accum;
    o->engine.seq = seq;
    o->engine.pool = !strcmp(mt_param_str(ctx, "alloc"), "pool");
    o->engine.master_weights = mt_param_bool(ctx, "master_weights");
    if (mt_prec_parse(mt_param_str(ctx, "precision"), &o->engine.prec))
        return snprintf(err, errlen, "precision must be fp32, bf16 or fp16"), -1;
    if (mt_optim_parse(mt_param_str(ctx, "optimizer"), &o->engine.optimizer))
        return snprintf(err, errlen, "optimizer must be adamw, adamw8 or adafactor"), -1;
    o->engine.offload = !strcmp(mt_param_str(ctx, "offload"), "optimizer");
    o->engine.selective = !strcmp(mt_param_str(ctx, "recompute"), "selective");

    const char *ev = mt_param_str(ctx, "every");
    char *end = NULL;
    long long e = ev ? strtoll(ev, &end, 10) : 0;
    if (ev && !strcmp(ev, "sqrt"))
        e = llround(sqrt((double)cfg->n_layer));
    else if (!ev || !ev[0] || *end || e < 1 || (size_t)e > cfg->n_layer)
        return snprintf(err, errlen, "every '%s' is not sqrt or an integer in 1..%zu", ev ? ev : "",
                        cfg->n_layer),
               -1;
    o->engine.every = e < 1 ? 1 : (size_t)e;

    const char *ls = mt_param_str(ctx, "loss_scale");
    o->scale_window = (size_t)mt_param_int(ctx, "scale_window");
    o->ls_value = 1.0f;
    if (!ls || !strcmp(ls, "auto"))
        o->ls = o->engine.prec == MT_PREC_FP16 ? MT_LS_DYNAMIC : MT_LS_NONE;
    else if (!strcmp(ls, "dynamic"))
        o->ls = MT_LS_DYNAMIC;
    else if (!strcmp(ls, "none"))
        o->ls = MT_LS_NONE;
    else {
        double v = strtod(ls, &end);
        if (!ls[0] || *end || !(v > 0.0) || v > 1e30)
            return snprintf(err, errlen,
                            "loss_scale '%s' is not auto, dynamic, none or a "
                            "positive number",
                            ls),
                   -1;
        o->ls = MT_LS_FIXED;
        o->ls_value = (float)v;
    }
    if (o->ls == MT_LS_DYNAMIC) o->ls_value = DYNAMIC_INIT;
    if (!o->scale_window) o->scale_window = 1;
    return resolve_device(ctx, o, err, errlen);
}

int mt_train_opts(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                  const struct mt_gpt_recipe *r, struct mt_train_opts *o)
{
    char err[ERRLEN];
    if (resolve(ctx, cfg, r->batch, r->seq, o, err, sizeof err)) return mt_error(ctx, "%s", err);
    return 0;
}

int mt_train_check(struct mt_ctx *ctx)
{
    struct mt_gpt_config cfg;
    struct mt_gpt_recipe r;
    struct mt_train_opts o;
    uint64_t seed;
    if (mt_wl_model_config(ctx, NULL, &cfg) || mt_wl_recipe(ctx, &cfg, &r, &seed)) return -1;
    return mt_train_opts(ctx, &cfg, &r, &o);
}

size_t mt_train_mem_estimate(struct mt_ctx *ctx)
{
    struct mt_gpt_config cfg;
    struct mt_train_opts o;
    struct mt_tmodel_plan plan;
    char err[ERRLEN];
    size_t T, B = (size_t)mt_param_int(ctx, "batch");
    if (mt_wl_estimate_shape(ctx, &cfg, &T)) return 0;
    if (resolve(ctx, &cfg, B, T, &o, err, sizeof err)) return 0;
    size_t infer = mt_gpt_memory(&cfg, EVAL_BATCH, T, MT_GPT_INFER, NULL, NULL, 0);
    if (o.device) /* the host keeps the weights the twin starts from and comes back to */
        return mt_gpt_memory(&cfg, 0, 0, MT_GPT_WEIGHTS, NULL, NULL, 0) + infer +
               ((size_t)64 << 20);
    if (mt_tmodel_plan(&cfg, &o.engine, &plan, err, sizeof err)) return 0;
    return plan.total + infer + ((size_t)64 << 20); /* corpus, code, oneDNN scratch */
}

int mt_train_plan(struct mt_ctx *ctx, struct mt_mem_plan *p)
{
    struct mt_gpt_config cfg;
    struct mt_train_opts o;
    struct mt_tmodel_plan plan;
    char err[ERRLEN];
    size_t T, B = (size_t)mt_param_int(ctx, "batch");
    if (mt_wl_estimate_shape(ctx, &cfg, &T)) return mt_wl_check_model(ctx);
    if (resolve(ctx, &cfg, B, T, &o, err, sizeof err) ||
        (o.device ? !mt_cuda_gpt_plan(&cfg, MT_GPT_TRAIN, o.engine.micro_batch, T, o.dprec,
                                      o.engine.every, plan.bytes, err, sizeof err)
                  : mt_tmodel_plan(&cfg, &o.engine, &plan, err, sizeof err)))
        return mt_error(ctx, "%s", err);
    /* train_peak_bytes' composition (report_train): the engine's slabs and the batch */
    plan.bytes[MT_MEM_DATA] += mt_wl_batch_bytes(B, T);
    if (mt_wl_plan_add(ctx, p, "train", MT_PLAN_TRAINING, plan.bytes)) return -1;
    size_t b[MT_MEM_CAT_COUNT] = {0};
    if (!mt_gpt_memory(&cfg, EVAL_BATCH, T, MT_GPT_INFER, b, err, sizeof err))
        return mt_error(ctx, "%s", err);
    b[MT_MEM_DATA] += mt_wl_batch_bytes(EVAL_BATCH, T);
    return mt_wl_plan_add(ctx, p, "eval", MT_PLAN_SERVING, b);
}

/* ---------------------------------------------------------------- the loop */

static void region_cb(void *user, const char *name, int begin)
{
    struct mt_ctx *ctx = user;
    if (begin)
        mt_region_begin(ctx, name);
    else
        mt_region_end(ctx, name);
}

/* Resident bytes now (statm) and the peak (VmHWM); 0 when /proc cannot be read. */
static size_t rss_now(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    int n = fscanf(f, "%ld %ld", &pages, &res);
    fclose(f);
    return n == 2 && res > 0 ? (size_t)res * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

static size_t rss_peak(void)
{
    char line[256];
    size_t kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

/* Live heap according to glibc (in use in the arenas plus mmapped blocks), and the free
 * bytes it keeps inside its arenas (holes the allocation pattern leaves). */
static size_t heap_live(size_t *free_bytes)
{
    struct mallinfo2 mi = mallinfo2();
    *free_bytes = mi.fordblks;
    return mi.uordblks + mi.hblkhd;
}

struct loop_out {
    double seconds, final_loss, max_frag, max_free;
    size_t steps, skipped;
    float final_scale;
    int frag_ok;
};

/* ---------------------------------------------------------------- the engine's hooks */

static int t_forward(void *self, const struct mt_loop_batch *b, double *loss, char *err,
                     size_t errlen)
{
    float l = 0.0f;
    int rc = mt_tmodel_forward(self, b->in, b->tg, b->rows, &l, err, errlen);
    *loss = l;
    return rc;
}

static int t_backward(void *self, const struct mt_loop_batch *b, float scale, char *err,
                      size_t errlen)
{
    return mt_tmodel_backward(self, scale, b->tokens, err, errlen);
}

static int t_update(void *self, const struct mt_gpt_recipe *r, float lr, float scale)
{
    if (mt_tmodel_grads_nonfinite(self)) { /* overflow: the loop skips the step */
        mt_tmodel_zero_grad(self);
        return 1;
    }
    mt_tmodel_adamw(self, r, lr, scale);
    return 0;
}

/* After each step: the heap's holes and fragmentation (RSS beyond the live heap). */
static void observe_heap(void *user, size_t step, double loss)
{
    (void)step, (void)loss;
    struct loop_out *out = user;
    size_t free_b, rss = rss_now(), live = heap_live(&free_b);
    if ((double)free_b > out->max_free) out->max_free = (double)free_b;
    if (!rss || !live)
        out->frag_ok = 0;
    else if ((double)rss - (double)live > out->max_frag)
        out->max_frag = (double)rss - (double)live;
}

/* The steps: the one loop (loop.h) on engine e (the tmodel t's, or the GPU twin's with t
 * NULL), batches cut into micro-batches. */
static int train_steps(struct mt_ctx *ctx, const struct mt_loop_engine *e, struct mt_tmodel *t,
                       const struct mt_gpt_recipe *r, const struct mt_train_opts *o, uint64_t seed,
                       const struct mt_corpus *c, struct loop_out *out)
{
    char err[ERRLEN];
    struct mt_loop_method me = {.user = out, .after_step = observe_heap};
    struct mt_loop_opts lo = {.recipe = r,
                              .batch_seed = mt_loop_batch_seed(seed),
                              .accum_steps = o->accum_steps,
                              .micro_rows = o->engine.micro_batch * o->accum_steps != r->batch
                                                ? o->engine.micro_batch
                                                : 0,
                              .ls = o->ls,
                              .ls_value = o->ls_value,
                              .scale_window = o->scale_window,
                              .series = "train_loss"};
    struct mt_loop_result res;
    size_t free0;
    memset(out, 0, sizeof *out);
    out->frag_ok = heap_live(&free0) > 0; /* 0: malloc is not glibc's (a sanitizer's) */
    if (mt_loop_run_tokens(ctx, &lo, e, &me, &c->train_tokens, &res, err, sizeof err) ||
        (t && mt_tmodel_failed(t, err, sizeof err))) /* the last step's optimizer I/O */
        return mt_error(ctx, "training failed: %s", err);
    out->seconds = res.seconds;
    out->steps = res.steps;
    out->skipped = res.skipped;
    out->final_loss = res.final_loss;
    out->final_scale = res.final_scale;
    return 0;
}

/* ---------------------------------------------------------------- reporting */

static void report_train(struct mt_ctx *ctx, const struct mt_train_opts *o,
                         const struct mt_tmodel_stats *s, const struct loop_out *lo,
                         const struct mt_gpt_recipe *r)
{
    static const int cats[] = {MT_MEM_WEIGHTS,     MT_MEM_GRADIENTS, MT_MEM_OPTIMIZER,
                               MT_MEM_ACTIVATIONS, MT_MEM_ACT_GRADS, MT_MEM_WORKSPACE};
    struct mt_wl_train_stats st = {
        .steps = lo->steps,
        .seconds = lo->seconds,
        .tokens_per_s = (double)(lo->steps * r->batch * r->seq) / lo->seconds,
        .final_loss = (float)lo->final_loss,
        .peak_bytes = s->peak_total + mt_wl_batch_bytes(r->batch, r->seq)};
    mt_wl_report_train(ctx, &st);
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++) {
        char name[64];
        /* train_: the engine's exact plan; peak_<category>_bytes is the heap profiler's
         * measured whole-run figure, stored by the harness when it runs */
        snprintf(name, sizeof name, "train_peak_%s_bytes", mt_mem_cat_names[cats[i]]);
        mt_metric(ctx, name, (double)s->peak[cats[i]], "bytes");
    }
    mt_metric(ctx, "train_peak_data_bytes", (double)mt_wl_batch_bytes(r->batch, r->seq), "bytes");
    const struct mt_wl_metric rec[] = {{"recompute_s", s->recompute_s, "s"},
                                       {"recompute_frac", s->recompute_s / lo->seconds, "ratio"}};
    mt_wl_metrics(ctx,
                  o->device ? "device=cuda: recomputation is queued inside the backward, not "
                              "timed apart"
                            : NULL,
                  rec, 2);
    mt_metric(ctx, "recomputed_blocks", (double)s->recomputed_blocks, "count");
    mt_metric(ctx, "skipped_steps", (double)lo->skipped, "count");
    mt_metric(ctx, "loss_scale_final", (double)lo->final_scale, "ratio");
    if (o->device) {
        mt_metric_na(ctx, "grad_underflow_frac", "ratio",
                     "device=cuda keeps fp32 gradients (bf16 is the GEMMs' operands)");
    } else if (o->engine.prec == MT_PREC_FP32) {
        mt_metric_na(ctx, "grad_underflow_frac", "ratio", "fp32 gradients are not rounded");
    } else {
        mt_metric(ctx, "grad_underflow_count", (double)s->grad_flushed, "count");
        if (s->grad_nonzero)
            mt_metric(ctx, "grad_underflow_frac", (double)s->grad_flushed / (double)s->grad_nonzero,
                      "ratio");
        else /* 0/0: 0 would claim that nothing underflowed */
            mt_metric_na(ctx, "grad_underflow_frac", "ratio",
                         "no nonzero gradient contribution reached the 16-bit gradients");
    }
    /* bf16: forward, dinp and dW of every linear layer, over the whole training */
    const struct mt_wl_metric bf16[] = {
        {"bf16_gemms", (double)s->bf16_gemms, "count"},
        {"bf16_gemm_fallbacks", (double)s->bf16_fallbacks, "count"}};
    mt_wl_metrics(ctx,
                  o->device ? "device=cuda: cuBLAS runs the GEMMs (device_precision)"
                  : o->engine.prec != MT_PREC_BF16 ? "precision is not bf16: GEMMs run in fp32"
                  : o->engine.emulate_bf16_gemm    ? "bf16 GEMMs emulated in fp32"
                  : !mt_bf16mm_native()            ? "no native oneDNN bf16 matmul on this CPU"
                                                   : NULL,
                  bf16, 2);
    const struct mt_wl_metric calls[] = {
        {"alloc_calls", (double)s->alloc_calls, "count"},
        {"alloc_calls_per_step", (double)s->alloc_calls / (double)(lo->steps ? lo->steps : 1),
         "count"}};
    mt_wl_metrics(ctx,
                  o->device ? "device=cuda: the slabs are allocated once, on the device" : NULL,
                  calls, 2);
    size_t hwm = rss_peak();
    const struct mt_wl_metric rss[] = {{"train_peak_rss_bytes", (double)hwm, "bytes"}};
    mt_wl_metrics(ctx, hwm ? NULL : "/proc/self/status unreadable", rss, 1);
    const struct mt_wl_metric frag[] = {{"fragmentation_bytes", lo->max_frag, "bytes"},
                                        {"heap_free_bytes", lo->max_free, "bytes"}};
    mt_wl_metrics(ctx, lo->frag_ok ? NULL : "no /proc/self/statm, or malloc is not glibc's", frag,
                  2);
    mt_metric(ctx, "step_ms", 1e3 * lo->seconds / (double)(lo->steps ? lo->steps : 1), "ms");
    const struct mt_optim_io *io = &s->optim_io;
    const struct mt_wl_metric offload[] = {{"offload_file_bytes", (double)io->file_bytes, "bytes"},
                                           {"offload_io_s", io->io_s, "s"},
                                           {"offload_wait_s", io->wait_s, "s"}};
    mt_wl_metrics(ctx, o->engine.offload ? NULL : "offload is none: the optimizer state is in RAM",
                  offload, 3);
}

/* device=cuda: the loop on the GPU twin, its device bytes as the engine's peaks. */
struct gpu_train {
    struct mt_ctx *ctx;
    const struct mt_gpt_recipe *r;
    const struct mt_train_opts *o;
    uint64_t seed;
    const struct mt_corpus *c;
    struct loop_out *lo;
    struct mt_tmodel_stats st;
    int failed; /* the loop failed and said why */
};

static int gpu_steps(void *user, const struct mt_loop_engine *e,
                     const struct mt_cuda_twin_info *info)
{
    struct gpu_train *g = user;
    mt_log(g->ctx, MT_LOG_INFO,
           "training %s on the GPU: batch %zu = %zu x %zu, %s GEMMs, every %zu, %zu device "
           "bytes",
           mt_param_str(g->ctx, "model"), g->r->batch, g->o->accum_steps, g->o->engine.micro_batch,
           mt_cuda_precision_name(g->o->dprec), g->o->engine.every, info->total);
    g->failed = train_steps(g->ctx, e, NULL, g->r, g->o, g->seed, g->c, g->lo) != 0;
    for (int k = 0; k < MT_MEM_CAT_COUNT; k++)
        g->st.peak[k] = g->st.live[k] = info->bytes[k];
    g->st.peak_total = g->st.live_total = info->total;
    g->st.recomputed_blocks = *info->recomputed_blocks;
    return g->failed ? -1 : 0;
}

/* Trains from mt_gpt_init(seed) on the GPU; the trained weights into w (wbytes, a
 * mt_gpt weight slab), the device's bytes into *st. Returns 0 or mt_error's -1. */
static int train_gpu(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                     const struct mt_gpt_recipe *r, const struct mt_train_opts *o, uint64_t seed,
                     const struct mt_corpus *c, struct loop_out *lo, struct mt_tmodel_stats *st,
                     float *w, size_t wbytes)
{
    char err[ERRLEN];
    struct mt_gpt *m = NULL;
    mt_cuda_train_twin_fn twin = mt_wl_cuda_twin(ctx, "cuda");
    if (!twin) return -1;
    if (mt_gpt_create(&m, cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err))
        return mt_error(ctx, "%s", err);
    mt_gpt_init(m, seed); /* tmodel's initial weights */
    struct mt_cuda_twin_opts to = {.precision = mt_cuda_precision_name(o->dprec),
                                   .micro_batch = o->engine.micro_batch,
                                   .every = o->engine.every};
    struct gpu_train g = {.ctx = ctx, .r = r, .o = o, .seed = seed, .c = c, .lo = lo};
    int rc = twin(m, r, &to, gpu_steps, &g, err, sizeof err);
    if (rc == 0) {
        memcpy(w, m->params, wbytes);
        *st = g.st;
    } else if (!g.failed) {
        mt_error(ctx, "device=cuda: %s", err);
    }
    mt_gpt_free(m);
    return rc ? -1 : 0;
}

/* The evaluation of trained weights w (a mt_gpt weight slab of wbytes). */
static int evaluate(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                    const struct mt_gpt_recipe *r, const struct mt_corpus *c, const float *w,
                    size_t wbytes)
{
    char err[ERRLEN];
    struct mt_gpt *m = NULL;
    if (mt_gpt_create(&m, cfg, MT_GPT_INFER, EVAL_BATCH, r->seq, err, sizeof err))
        return mt_error(ctx, "%s", err);
    memcpy(m->params, w, wbytes);
    int rc = mt_wl_report_eval(ctx, m, c, (size_t)mt_param_int(ctx, "eval_tokens"), NULL);
    mt_gpt_free(m);
    return rc;
}

/* mt_train_run with device=cuda: train on the GPU twin, report its device bytes as the
 * engine's, evaluate on the CPU. */
static int run_gpu(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                   const struct mt_gpt_recipe *r, const struct mt_train_opts *o, uint64_t seed,
                   struct mt_corpus *c)
{
    struct loop_out lo;
    struct mt_tmodel_stats st;
    size_t wbytes = mt_gpt_memory(cfg, 0, 0, MT_GPT_WEIGHTS, NULL, NULL, 0);
    int prev = mt_mem_category(ctx, MT_MEM_OTHER); /* as the CPU path's trained weights */
    float *w = malloc(wbytes);
    mt_mem_category(ctx, prev);
    int rc = w ? train_gpu(ctx, cfg, r, o, seed, c, &lo, &st, w, wbytes)
               : mt_error(ctx, "out of memory for the trained weights");
    if (rc == 0) {
        report_train(ctx, o, &st, &lo, r);
        mt_metric(ctx, "model_bytes", (double)wbytes, "bytes");
        rc = evaluate(ctx, cfg, r, c, w, wbytes);
    }
    free(w);
    mt_corpus_free(c);
    return rc;
}

int mt_train_run(struct mt_ctx *ctx)
{
    char err[ERRLEN];
    struct mt_wl_setup s;
    struct mt_train_opts o;
    struct mt_tmodel *t = NULL;
    struct loop_out lo;
    mt_wl_threads(ctx);
    if (mt_wl_setup_model(ctx, &s) || mt_train_opts(ctx, &s.cfg, &s.r, &o)) return -1;
    if (mt_wl_corpus(ctx, 1, s.r.seq, &s.corpus)) return -1;
    if (o.device) return run_gpu(ctx, &s.cfg, &s.r, &o, s.seed, &s.corpus);
    o.engine.region = region_cb;
    o.engine.region_user = ctx;
    o.engine.scratch_dir = ctx->ops->scratch_dir(ctx);
    int rc = mt_tmodel_create(&t, &s.cfg, &o.engine, s.seed, err, sizeof err);
    if (rc) {
        mt_corpus_free(&s.corpus);
        return mt_error(ctx, "%s", err);
    }
    mt_log(ctx, MT_LOG_INFO,
           "training %s: batch %zu = %zu x %zu, precision %s (master %s), every %zu, alloc %s, "
           "optimizer %s%s, recompute %s",
           mt_param_str(ctx, "model"), s.r.batch, o.accum_steps, o.engine.micro_batch,
           mt_prec_name(o.engine.prec), o.engine.master_weights ? "on" : "off", o.engine.every,
           o.engine.pool ? "pool" : "malloc", mt_optim_name(o.engine.optimizer),
           o.engine.offload ? " (offloaded)" : "", o.engine.selective ? "selective" : "none");
    struct mt_loop_engine e = {
        .self = t, .forward = t_forward, .backward = t_backward, .update = t_update};
    rc = train_steps(ctx, &e, t, &s.r, &o, s.seed, &s.corpus, &lo);
    float *w = NULL;
    size_t wbytes = mt_gpt_memory(&s.cfg, 0, 0, MT_GPT_WEIGHTS, NULL, NULL, 0);
    if (rc == 0) {
        report_train(ctx, &o, mt_tmodel_stats(t), &lo, &s.r);
        struct mt_tmodel_plan plan;
        mt_tmodel_plan(&s.cfg, &o.engine, &plan, NULL, 0);
        mt_metric(ctx, "model_bytes", (double)plan.bytes[MT_MEM_WEIGHTS], "bytes");
        /* The trained weights wait in an untagged buffer while the training state goes,
         * so evaluation never coexists with training in any category's peak. */
        int prev = mt_mem_category(ctx, MT_MEM_OTHER);
        w = malloc(wbytes);
        mt_mem_category(ctx, prev);
        if (!w)
            rc = mt_error(ctx, "out of memory for the trained weights");
        else
            mt_tmodel_export(t, w);
    }
    mt_tmodel_free(t);
    if (rc == 0) rc = evaluate(ctx, &s.cfg, &s.r, &s.corpus, w, wbytes);
    free(w);
    mt_corpus_free(&s.corpus);
    return rc;
}
