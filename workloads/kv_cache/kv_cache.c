/* kv_cache.c — the `kv_cache` workload: the reference model served through a KV cache
 * of the chosen format (fp32, bf16, fp16, int8, KIVI int4/int3/int2) and layout (contiguous,
 * paged).
 *
 * What it is for: train or load the cached reference, run the one serving measurement
 * with the cache (decode tokens/s, kv_cache_bytes, the accounted peaks, val_loss), then
 * what only the cache has: its bytes per token and fixed bytes, the waste (allocated
 * minus used) of a paged and of a contiguous cache holding decode_context tokens, the
 * largest context and the most sequences at `context` that fit `budget` bytes, the
 * accuracy of decoding through the cache against the fp32 cache on the same windows
 * (kv_val_loss, kv_val_loss_fp32, kv_kl: the mean KL divergence of next-token
 * distributions), and a seeded serving simulation of `sim_requests` requests (prompt and
 * output lengths uniform in [16, seq_len / 2]), paged against contiguous at maximum
 * length under the budget.
 * device=cuda: the serving measurement runs on the GPU twin (serving.h struct
 * mt_cuda_serve: decode reading a device KV cache of fp32, bf16 or fp16, the evaluation's
 * forwards; device peaks by category); the accuracy decode (kv_val_loss, kv_kl) and the
 * simulation stay on the CPU.
 * What it is not for: the attention math (kvcache.h), other memory optimizations.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/workload.h>

#include "kvcache.h"
#include "wlcommon.h"
#include "wlplan.h"

#define EVAL_B 8
#define ERRLEN 512

static const struct mt_param_spec params[] = {
    MT_WL_PARAMS_POSTTRAIN,
    MT_WL_PARAM_DECODE_TOKENS,
    MT_WL_PARAMS_KV_CACHE,
    {"budget", MT_PARAM_INT, "8388608", 1, 1e15, NULL,
     "KV memory in bytes for kv_max_context, kv_max_sequences and the simulation"},
    {"context", MT_PARAM_INT, "0", 0, 1000000, NULL,
     "context of kv_max_sequences (0 = the serving context)"},
    {"eval_windows", MT_PARAM_INT, "8", 1, 10000, NULL,
     "validation windows of decode_context tokens decoded through the cache for kv_val_loss"},
    {"sim_requests", MT_PARAM_INT, "64", 1, 100000, NULL, "requests of the serving simulation"},
    MT_WL_ROW("device", MT_PARAM_CHOICE, "cpu", 0, 0, "cpu|cuda",
              "where the serving measurement runs: the CPU engine, or the GPU (CUDA build: "
              "kv_cache fp32, bf16 or fp16, contiguous, one sequence)"),
    MT_WL_ROW("device_precision", MT_PARAM_CHOICE, "fp32", 0, 0, "fp32|tf32|bf16",
              "device=cuda: the GEMMs in fp32, TF32 or bf16 (fp32 accumulation)"),
};

/* Teacher-forced decoding of `windows` windows of n validation bytes through an fp32
 * cache and the run's cache in lockstep: the mean loss of each and the mean KL(fp32 ||
 * format) of the next-token distributions, through the one KL function of the serving
 * measurement (mt_wl_kl_add, on fp32 probabilities). */
static int accuracy(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                    const struct mt_kvc_spec *spec, size_t n, size_t windows)
{
    char err[ERRLEN];
    size_t V = m->cfg.vocab;
    const struct mt_tokens *val = &c->val_tokens;
    if (windows * n + 1 > val->n) windows = (val->n - 1) / n;
    if (!windows) return mt_error(ctx, "validation split shorter than one window of %zu", n);
    struct mt_gpt_kv *ref = NULL, *kv = NULL;
    struct mt_wl_kl kl = {0};
    double *lp = malloc(2 * V * sizeof *lp), loss = 0.0, loss_ref = 0.0;
    float *p = malloc(2 * V * sizeof *p);
    int rc = !lp || !p || mt_gpt_kv_create(&ref, &m->cfg, n, err, sizeof err) ||
             mt_gpt_kv_create_spec(&kv, &m->cfg, n, spec, err, sizeof err);
    if (!lp || !p) snprintf(err, sizeof err, "out of memory");
    mt_region_begin(ctx, "kv_accuracy");
    for (size_t w = 0; !rc && w < windows; w++) {
        size_t x = w * n; /* the window's first token */
        mt_gpt_kv_reset(ref), mt_gpt_kv_reset(kv);
        for (size_t t = 0; !rc && t < n; t++) {
            int in = mt_tokens_at(val, x + t), next = mt_tokens_at(val, x + t + 1);
            rc = mt_gpt_decode_step(m, ref, in, err, sizeof err) ||
                 mt_gpt_decode_step(m, kv, in, err, sizeof err);
            if (rc) break;
            mt_gpt_log_softmax(ref->logits, V, lp), mt_gpt_log_softmax(kv->logits, V, lp + V);
            loss_ref -= lp[next], loss -= lp[V + next];
            for (size_t j = 0; j < 2 * V; j++)
                p[j] = (float)exp(lp[j]);
            if ((rc = mt_wl_kl_add(&kl, p, p + V, 1, V)))
                snprintf(err, sizeof err, "out of memory");
        }
        mt_progress(ctx, (double)(w + 1), (double)windows);
    }
    mt_region_end(ctx, "kv_accuracy");
    mt_gpt_kv_free(ref), mt_gpt_kv_free(kv), free(lp), free(p);
    struct mt_wl_kl_stats st;
    mt_wl_kl_summary(&kl, &st);
    mt_wl_kl_free(&kl);
    if (rc) return mt_error(ctx, "decoding through the cache failed: %s", err);
    double N = (double)(windows * n);
    mt_metric(ctx, "kv_val_loss", loss / N, "nats/byte");
    mt_metric(ctx, "kv_val_loss_fp32", loss_ref / N, "nats/byte");
    mt_metric(ctx, "kv_kl", st.mean, "nats");
    mt_metric(ctx, "kv_eval_bytes", N, "bytes");
    mt_log(ctx, MT_LOG_INFO,
           "%s cache over %zu x %zu bytes: loss %.5f (fp32 cache %.5f), KL mean %.3g p99 %.3g "
           "max %.3g, top-1 agree %.4f",
           mt_kvc_format_name(spec->format), windows, n, loss / N, loss_ref / N, st.mean, st.p99,
           st.max, st.top1_agree);
    return 0;
}

/* Bytes per token, waste, and what fits the budget. */
static void memory(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                   const struct mt_kvc_spec *spec, size_t n, size_t ctx_len, size_t budget)
{
    struct mt_kvc_sizes z;
    struct mt_kvc_spec paged = *spec;
    paged.block = mt_kvc_paged_block(spec);
    mt_kvc_sizes(cfg, spec, &z);
    double per_token = (double)z.unit_bytes / (double)z.unit_tokens;
    size_t stored = mt_kvc_stored_tokens(spec, n), bb = mt_kvc_block_bytes(cfg, &paged);
    size_t lo = cfg->window && n > cfg->window ? n - cfg->window : 0;
    lo = lo / z.unit_tokens * z.unit_tokens;
    stored -= lo < stored ? lo : stored; /* a sliding window keeps its own tokens only */
    double used = (double)z.fixed_bytes + (double)stored * per_token;
    size_t held = mt_kvc_paged_seq_bytes(cfg, spec, n);
    mt_metric(ctx, "kv_bytes_per_token", per_token, "bytes/token");
    mt_metric(ctx, "kv_fixed_bytes", (double)z.fixed_bytes, "bytes");
    mt_metric(ctx, "kv_waste_contiguous_bytes",
              (double)mt_kvc_contiguous_bytes(cfg, spec, cfg->seq_len) - used, "bytes");
    mt_metric(ctx, "kv_waste_paged_bytes", (double)held - used, "bytes");
    if (budget < z.fixed_bytes + bb) {
        mt_metric_na(ctx, "kv_max_context", "tokens", "the budget holds no block");
    } else if (cfg->window && mt_kvc_paged_seq_bytes(cfg, spec, cfg->seq_len) <= budget) {
        mt_metric_na(ctx, "kv_max_context", "tokens",
                     "a sliding-window sequence holds the same bytes at any context once its "
                     "window is full, and the budget holds it");
    } else {
        size_t tokens = (budget - z.fixed_bytes) / bb * paged.block;
        if (mt_kvc_format_kivi(spec->format)) tokens += spec->residual;
        mt_metric(ctx, "kv_max_context", (double)tokens, "tokens");
    }
    size_t one = mt_kvc_paged_seq_bytes(cfg, spec, ctx_len);
    mt_metric(ctx, "kv_max_sequences", (double)(budget / one), "count");
    mt_log(ctx, MT_LOG_INFO, "%s: %.2f bytes/token + %zu fixed; %zu sequences of %zu fit %zu bytes",
           mt_kvc_format_name(spec->format), per_token, z.fixed_bytes, budget / one, ctx_len,
           budget);
}

static int simulation(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                      const struct mt_kvc_spec *spec, size_t budget, size_t requests, uint64_t seed)
{
    char err[ERRLEN];
    size_t half = cfg->seq_len / 2 > 16 ? cfg->seq_len / 2 : 16;
    struct mt_kvc_sim sim = {.requests = requests,
                             .prompt_min = 16,
                             .prompt_max = half,
                             .output_min = 16,
                             .output_max = half,
                             .seed = seed,
                             .budget_bytes = budget};
    struct mt_kvc_sim_result c, p;
    mt_region_begin(ctx, "kv_simulation");
    int rc = mt_kvc_simulate(cfg, spec, &sim, &c, &p, err, sizeof err);
    mt_region_end(ctx, "kv_simulation");
    if (rc) {
        static const char *const names[] = {"kv_sim_waste_paged", "kv_sim_waste_contiguous",
                                            "kv_sim_concurrency_gain"};
        for (size_t i = 0; i < 3; i++)
            mt_metric_na(ctx, names[i], "ratio", err);
        return 0;
    }
    mt_metric(ctx, "kv_sim_waste_paged", p.waste_ratio, "ratio");
    mt_metric(ctx, "kv_sim_waste_contiguous", c.waste_ratio, "ratio");
    mt_metric(ctx, "kv_sim_concurrency_gain", p.mean_running / c.mean_running, "ratio");
    mt_metric(ctx, "kv_sim_preemptions", (double)p.preemptions, "count");
    mt_log(ctx, MT_LOG_INFO,
           "simulation of %zu requests in %zu bytes: contiguous %zu steps, %.1f running, "
           "waste %.1f %%; paged %zu steps, %.1f running, waste %.2f %%, %zu preemptions",
           requests, budget, c.steps, c.mean_running, 100 * c.waste_ratio, p.steps, p.mean_running,
           100 * p.waste_ratio, p.preemptions);
    return 0;
}

static int check(struct mt_ctx *ctx)
{
    char err[ERRLEN];
    struct mt_gpt_config cfg;
    struct mt_kvc_spec spec = mt_wl_kv_spec(ctx);
    if (mt_wl_check_model(ctx) || mt_wl_model_config(ctx, NULL, &cfg)) return -1;
    if (mt_kvc_spec_check(&cfg, &spec, err, sizeof err)) return mt_error(ctx, "%s", err);
    struct mt_cuda_serve_opts dev;
    return mt_wl_cuda_serve_opts(ctx, EVAL_B, cfg.seq_len, &dev) < 0 ? -1 : 0;
}

static int run(struct mt_ctx *ctx)
{
    struct mt_wl_setup s;
    struct mt_wl_train_stats st;
    struct mt_gpt *m = NULL;
    if (check(ctx) || mt_wl_setup(ctx, &s)) return -1;
    struct mt_kvc_spec spec = mt_wl_kv_spec(ctx);
    int rc = mt_wl_reference_or_load(ctx, &s.cfg, &s.r, s.seed, &s.corpus, MT_GPT_INFER, EVAL_B,
                                     s.r.seq, &m, &st);
    /* the evaluation protocol runs the whole-window forward, not the cache: its KL metrics
     * against the base are exactly 0 (the weights are the base's); what the cache's format
     * costs is kv_kl, from decoding through it (accuracy) */
    struct mt_cuda_serve_opts dev;
    int on = rc == 0 ? mt_wl_cuda_serve_opts(ctx, EVAL_B, s.r.seq, &dev) : 0;
    if (on < 0) rc = -1;
    if (rc == 0)
        rc = mt_wl_report_reference_on(ctx, m, &s.corpus, &s.r, s.seed, &st, on ? &dev : NULL);
    size_t n = mt_wl_decode_context(&s.cfg, (size_t)mt_param_int(ctx, "decode_tokens"));
    size_t ctx_len = mt_param_int(ctx, "context") ? (size_t)mt_param_int(ctx, "context") : n;
    size_t budget = (size_t)mt_param_int(ctx, "budget");
    if (rc == 0) {
        memory(ctx, &s.cfg, &spec, n, ctx_len, budget);
        rc = accuracy(ctx, m, &s.corpus, &spec, n, (size_t)mt_param_int(ctx, "eval_windows"));
    }
    if (rc == 0)
        rc = simulation(ctx, &s.cfg, &spec, budget, (size_t)mt_param_int(ctx, "sim_requests"),
                        s.seed);
    if (rc == 0) mt_wl_report_kernels(ctx);
    mt_gpt_free(m);
    mt_corpus_free(&s.corpus);
    return rc;
}

static size_t mem_estimate(struct mt_ctx *ctx)
{
    return mt_wl_estimate_baseline(ctx, 0, NULL);
}

/* The reference (trained when not cached) and the one serving measurement through the
 * run's cache; the accuracy decode and the simulation hold less than the serving phase. */
static int plan(struct mt_ctx *ctx, struct mt_mem_plan *p)
{
    struct mt_wl_plan_serving s = {.eval_batch = EVAL_B};
    if (check(ctx)) return -1;
    int dev = mt_wl_plan_reference_cuda(ctx, &s, p);
    return dev ? (dev < 0 ? -1 : 0) : mt_wl_plan_reference(ctx, &s, p);
}

MT_WL_DESCRIPTOR_PLAN("kv_cache",
                      "reference GPT served through a KV cache of a chosen format and layout "
                      "(fp32/bf16/fp16/int8/KIVI int4, int3, int2; contiguous or paged)",
                      params, NULL, mem_estimate, run, check, plan);
