/* wlcommon.h — what every workload plugin needs to reach the reference model through
 * its ctx: the model configuration from the `model` parameter, the corpus, the default
 * training recipe, train-or-load-from-cache, and the standard metrics.
 *
 * What it is for: keeping plugins short and their numbers comparable — every plugin
 * trains the same baseline the same way, caches it under the same key, and reports
 * val_loss / val_bpb / val_ppl / val_top1, train_tokens_per_s, eval_tokens_per_s,
 * model_bytes and train_peak_bytes with the same units.
 * What it is not for: the model itself (workloads/transformer), or anything a plugin
 * changes about training (those plugins call the model API directly and may still use
 * the reporting helpers here).
 *
 * Errors: functions return 0, or -1 after recording the message with mt_error(ctx, ...),
 * so a plugin's run() can simply `return -1`. Thread safety: call from the run() thread.
 * Every function sets the OpenMP thread count from ctx->threads first.
 */
#ifndef MT_WLCOMMON_H
#define MT_WLCOMMON_H

#include <stddef.h>
#include <stdint.h>

#include <memtrade/workload.h>

#include "ckpt.h"
#include "data.h"
#include "eval.h"
#include "gpt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Cache file format generation: bump when training changes what a recipe produces. */
#define MT_WL_CACHE_VERSION 1

/* The standard parameter-table rows (name, type, default, range, help) that the baseline
 * recipe reads; plugins that take "the baseline training parameters" list these. */
#define MT_WL_PARAM_MODEL                                                                          \
    {                                                                                              \
        "model", MT_PARAM_CHOICE, "small", 0, 0, "tiny|small|medium|gpt2",                         \
            "reference model preset"                                                               \
    }
#define MT_WL_PARAM_STEPS                                                                          \
    {                                                                                              \
        "steps", MT_PARAM_INT, "300", 1, 1000000, NULL, "training steps of the baseline"           \
    }
#define MT_WL_PARAM_BATCH                                                                          \
    {                                                                                              \
        "batch", MT_PARAM_INT, "16", 1, 4096, NULL, "sequences per training step"                  \
    }
#define MT_WL_PARAM_LR                                                                             \
    {                                                                                              \
        "lr", MT_PARAM_FLOAT, "3e-3", 1e-6, 1.0, NULL, "peak learning rate"                        \
    }
#define MT_WL_PARAM_SEED                                                                           \
    {                                                                                              \
        "seed", MT_PARAM_INT, "1337", 0, 4294967295.0, NULL, "init and batch sampling seed"        \
    }
#define MT_WL_PARAM_EVAL_TOKENS                                                                    \
    {                                                                                              \
        "eval_tokens", MT_PARAM_INT, "0", 0, 1e12, NULL,                                           \
            "validation bytes to score (0 = the whole split)"                                      \
    }
#define MT_WL_PARAM_CORPUS                                                                         \
    {                                                                                              \
        "corpus", MT_PARAM_STRING, "", 0, 0, NULL, "text file or folder (empty = run corpus)"      \
    }

/* Sets the OpenMP thread count from ctx->threads (no-op when it reports <= 0). */
void mt_wl_threads(struct mt_ctx *ctx);

/* Fills *cfg from the preset named by parameter `param` (NULL = "model"). */
int mt_wl_model_config(struct mt_ctx *ctx, const char *param, struct mt_gpt_config *cfg);

/* The baseline recipe (mt_gpt_recipe_default) with `steps`, `batch`, `lr` from the
 * parameters of those names and T = min(128, cfg->seq_len); *seed from `seed`. */
int mt_wl_recipe(struct mt_ctx *ctx, const struct mt_gpt_config *cfg, struct mt_gpt_recipe *r,
                 uint64_t *seed);

/* Loads the corpus: the `corpus` string parameter when the plugin declares it and it is
 * non-empty, else ctx->corpus, else the default fortunes folder. Both splits must hold a
 * window of T + 1 bytes. Free with mt_corpus_free. */
int mt_wl_corpus(struct mt_ctx *ctx, int has_corpus_param, size_t T, struct mt_corpus *c);

/* Cache file for (cfg, recipe, seed, corpus) in ctx->cache_dir: fills path (capacity n). */
void mt_wl_cache_path(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                      const struct mt_gpt_recipe *r, uint64_t seed, const struct mt_corpus *c,
                      char *path, size_t n);

struct mt_wl_train_stats {
    int from_cache;      /* 1 when the weights came from the cache */
    size_t steps;        /* steps trained in this run */
    double seconds;      /* training wall time in this run */
    double tokens_per_s; /* training throughput in this run */
    float final_loss;    /* mean train loss of the last 10 steps */
    size_t peak_bytes;   /* sum of the training slabs (mt_gpt_memory, TRAIN mode) */
};

/* The default training loop on an already created and initialized TRAIN-mode model:
 * r->steps steps of r->batch x r->seq windows sampled from the train split with a
 * mt_rng seeded by `seed`; regions "train" (whole loop) and "forward" / "backward" /
 * "optimizer" (each step), mt_progress per step, series "train_loss" (x = step). */
int mt_wl_train_loop(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_gpt_recipe *r,
                     uint64_t seed, const struct mt_corpus *c, struct mt_wl_train_stats *st);

/* Returns in *out a model of `mode` for batch B x T (see mt_gpt_create) holding the
 * baseline trained with (cfg, r, seed) on corpus c: loaded from the cache when a valid
 * checkpoint is there, otherwise trained (mt_wl_train_loop from mt_gpt_init(seed)) and
 * written to the cache atomically (temporary file + rename) before being reloaded in
 * `mode`, so the training state is freed first. A corrupt cache file is logged and
 * replaced. st (may be NULL) says what happened. */
int mt_wl_train_or_load(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                        const struct mt_gpt_recipe *r, uint64_t seed, const struct mt_corpus *c,
                        enum mt_gpt_mode mode, size_t B, size_t T, struct mt_gpt **out,
                        struct mt_wl_train_stats *st);

/* Reports train_tokens_per_s and train_peak_bytes from st (as unavailable, with the
 * reason, when the model came from the cache) and train_loss (nats/byte). */
void mt_wl_report_train(struct mt_ctx *ctx, const struct mt_wl_train_stats *st);

/* Evaluates m on the validation split (max_tokens = 0: all of it) inside region "eval"
 * and reports val_loss (nats/byte), val_bpb (bits/byte), val_ppl (ratio), val_top1
 * (ratio), eval_tokens_per_s (tokens/s). *res may be NULL. */
int mt_wl_report_eval(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                      size_t max_tokens, struct mt_eval_result *res);

/* Reports model_bytes (the fp32 weights as stored, bytes) and n_params (count). */
void mt_wl_report_model(struct mt_ctx *ctx, const struct mt_gpt *m);

/* Generates n bytes after `prompt` (temperature 0 = greedy) and logs them at INFO level,
 * non-printable bytes escaped. */
int mt_wl_log_sample(struct mt_ctx *ctx, struct mt_gpt *m, const char *prompt, size_t n,
                     float temperature, uint64_t seed);

/* Decodes n tokens at batch 1 with a KV cache (region "decode") and reports
 * decode_tokens_per_s (tokens/s) and kv_cache_bytes (bytes). */
int mt_wl_report_decode(struct mt_ctx *ctx, struct mt_gpt *m, size_t n);

/* Peak bytes one baseline run needs: training slabs + evaluation activations + corpus
 * + a fixed allowance for code and oneDNN buffers. For mem_estimate hooks. */
size_t mt_wl_estimate_bytes(const struct mt_gpt_config *cfg, size_t B, size_t T);

#ifdef __cplusplus
}
#endif
#endif
