/* serving.h — the one serving measurement every serving workload uses (baseline,
 * quantize, prune, distill's student), and the one evaluation protocol every workload
 * scores accuracy with.
 *
 * What it is for: measuring a served model the same way whatever the method: batch-1
 * KV-cache decoding of a declared text at a declared context (the deployment), then
 * held-out accuracy on a declared number of validation bytes (the evaluation), each in a
 * region of its own and each with its own accounted peak:
 * - infer_peak_bytes: what a deployment holds while it serves: the weights as stored
 *   (the model's weight slab and whatever the plugin stores in another form), the KV
 *   caches at the declared context of the declared concurrent sequences (decode_sequences,
 *   default 1), their decode steps' scratch, and the
 *   plugin's kernels' scratch as decoding left it. Never the evaluation batch's
 *   activations: a deployment does not evaluate.
 * - eval_peak_bytes: what scoring the validation text holds: every slab of the model (its
 *   activations for the evaluation batch included), the stored weights, the plugin's
 *   scratch at its high-water mark and the evaluation's token buffers.
 * What it is not for: training (wlcommon.h), or the model's own decode step (gpt.h).
 *
 * Errors: functions return 0, or -1 after recording the message with mt_error(ctx, ...).
 * Thread safety: call from the run() thread; every function sets the OpenMP thread count
 * from ctx->threads first.
 */
#ifndef MT_WL_SERVING_H
#define MT_WL_SERVING_H

#include <stddef.h>
#include <stdint.h>

#include <memtrade/workload.h>

#include "data.h"
#include "eval.h"
#include "gpt.h"
#include "kvcache.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mt_qformat;
struct mt_wl_train_stats;

/* `decode_tokens`: the serving context of the one serving measurement (the KV cache's
 * positions, decoded at batch 1); every serving workload takes it with this default. */
#define MT_WL_PARAM_DECODE_TOKENS                                                                  \
    {                                                                                              \
        "decode_tokens", MT_PARAM_INT, "0", 0, 100000, NULL,                                       \
            "serving context: KV-cache positions decoded at batch 1 (0 = the model's context)"     \
    }

/* The KV cache of the one serving measurement (kvcache.h): format, quantization group,
 * KIVI's fp32 residual, the paged layout's block (0 = contiguous at the context) and the
 * concurrent sequences served (each its own cache and decode state, decoded round-robin:
 * what a deployment spends its spare bytes on); every serving workload takes them with
 * these defaults (fp32 contiguous, one sequence: the cache before it had formats). */
/* clang-format off */
#define MT_WL_PARAMS_KV_CACHE                                                                      \
    {"kv_cache", MT_PARAM_CHOICE, "fp32", 0, 0, MT_KVC_FORMAT_CHOICES,                             \
     "KV-cache format: fp32, bf16, fp16, int8 (per token), int4/int3/int2 (KIVI)"},                \
        {"kv_group", MT_PARAM_INT, "32", 16, 64, "16|32|64",                                       \
         "KV-cache quantization group (channels per token scale; tokens per KIVI key scale)"},     \
        {"kv_residual", MT_PARAM_INT, "32", 0, 4096, NULL,                                         \
         "KIVI: most recent tokens kept in fp32"},                                                 \
        {"kv_block", MT_PARAM_INT, "0", 0, 32, "0|16|32",                                          \
         "KV-cache block in tokens (paged); 0 = contiguous at the serving context"},               \
        {"decode_sequences", MT_PARAM_INT, "1", 1, 65536, NULL,                                    \
         "concurrent sequences served, each with its own KV cache at the serving context"},        \
    {                                                                                              \
        "decode_extra_tokens", MT_PARAM_INT, "0", 0, 100000, NULL,                                 \
            "context of one more sequence served beside them, at most the serving context "        \
            "(0 = none): a budget filled finer than a whole sequence"                              \
    }
/* clang-format on */

/* The cache spec of the run's MT_WL_PARAMS_KV_CACHE. */
struct mt_kvc_spec mt_wl_kv_spec(struct mt_ctx *ctx);

/* The one evaluation protocol: scores m on the first max_tokens bytes of the validation
 * split (max_tokens = 0: all of it) inside region "eval" and reports val_loss
 * (nats/byte), val_bpb (bits/byte), val_ppl (ratio), val_top1 (ratio), eval_tokens_per_s
 * (tokens/s) and eval_bytes (the bytes scored: accuracy is comparable only between runs
 * with equal eval_bytes on the same corpus). *res may be NULL. */
int mt_wl_report_eval(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                      size_t max_tokens, struct mt_eval_result *res);

/* Generates n bytes after `prompt` (temperature 0 = greedy) and logs them at INFO level,
 * non-printable bytes escaped. */
int mt_wl_log_sample(struct mt_ctx *ctx, struct mt_gpt *m, const char *prompt, size_t n,
                     float temperature, uint64_t seed);

/* The run's decode_sequences (1 for a caller without MT_WL_PARAMS_KV_CACHE). */
size_t mt_wl_decode_sequences(struct mt_ctx *ctx);

/* The run's decode_extra_tokens (0 for a caller without MT_WL_PARAMS_KV_CACHE): the
 * context of one more sequence served beside the decode_sequences ones, which hold the
 * serving context n; returns (size_t)-1 after mt_error when it is over n. */
size_t mt_wl_decode_extra(struct mt_ctx *ctx, size_t n);

/* The declared serving context `declared` (a decode_tokens value) resolved for a model:
 * 0 or more than the model's context means the model's context (seq_len). */
size_t mt_wl_decode_context(const struct mt_gpt_config *cfg, size_t declared);

/* The one decode measurement: batch-1 decoding with a KV cache of n positions over the
 * first n bytes of the validation split (teacher-forced: the same tokens for every model
 * and workload, no sampling in the timed loop), inside region "decode"; with
 * decode_sequences S > 1, S sequences each with its own cache and decode scratch, decoded
 * round-robin one token each (all the same text); with decode_extra_tokens E > 0 one more
 * sequence, its cache at E positions, decoded over the first E tokens. One untimed
 * warm-up pass, then at least 3 timed passes and 0.2 s, at most 64; reports
 * decode_tokens_per_s (the median pass, tokens/s over all sequences), decode_context (n,
 * tokens), decode_sequences (S, count) and
 * kv_cache_bytes (bytes; the caches as stored in the format of the run's kv_* parameters,
 * allocated in category kv_cache, summed over the sequences, the extra one's included). n must be
 * in [1, min(seq_len, validation bytes)]; errors are reported through mt_error. */
int mt_wl_report_decode(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c, size_t n);

/* The base (unmodified, fp32) model's next-token distributions over the evaluation text,
 * kept in a file: what the KL metrics of a compressed model compare against. */
struct mt_wl_base {
    char path[4096];         /* header + positions x vocab float probabilities */
    size_t positions, vocab; /* scored positions (eval_tokens) and vocabulary */
    double ppl;              /* the base model's val_ppl over the same positions */
};

/* Contract: scores the base model m (before the plugin modifies it; the reference trained
 * with recipe r and seed on corpus c) over `eval_tokens` validation bytes exactly as the
 * evaluation protocol does, in region "base_eval", and stores every position's
 * distribution (fp32) in <reference checkpoint>.eval<N>-T<T>.probs in the model cache
 * (mt_wl_cache_path), written
 * atomically; a file already there with the same header is reused, not recomputed (like
 * distillation's teacher cache, but kept: the base is the cached reference's). Reports
 * base_probs_bytes (the file). Returns 0, or -1 (reported). */
int mt_wl_base_probs(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                     const struct mt_gpt_recipe *r, uint64_t seed, struct mt_wl_base *b);

/* Per-position KL divergence KL(base || model) of next-token distributions, in nats, and
 * top-1 agreement, accumulated batch by batch. Zero-initialize; free with mt_wl_kl_free. */
struct mt_wl_kl {
    double *kl;    /* per position */
    size_t n, cap; /* positions added, capacity */
    size_t agree;  /* positions whose argmax (lowest index on ties) is the base's */
};

/* Contract: the bytes a comparison with a base holds at its high-water mark: the
 * per-position KL array as mt_wl_kl_add grows it for `positions` positions, and one batch
 * of the base's rows (min(rows, positions) x V floats) as the evaluation reads them. Pure. */
size_t mt_wl_kl_bytes(size_t positions, size_t rows, size_t V);

/* Contract: adds `rows` positions: base and q are rows x V probabilities. KL is
 * sum_j [p_j log(p_j / q_j) - p_j + q_j] (the p_j = 0 terms are q_j; q_j floored at
 * FLT_MIN in the log, a probability that underflowed), in double: for two distributions
 * it is sum_j p_j log(p_j / q_j), but each term is >= 0 and second order in q_j - p_j, so
 * the fp32 rounding of the probabilities does not swamp a divergence of 1e-9; exactly 0
 * when q equals p bit for bit. Returns 0, or -1 when out of memory. */
int mt_wl_kl_add(struct mt_wl_kl *k, const float *base, const float *q, size_t rows, size_t V);

/* Contract: mean, median, 99th percentile (nearest rank), max of the positions' KL and
 * the share whose top-1 token agrees; all 0 when no position was added. */
struct mt_wl_kl_stats {
    double mean, median, p99, max, top1_agree;
};
void mt_wl_kl_summary(const struct mt_wl_kl *k, struct mt_wl_kl_stats *s);
void mt_wl_kl_free(struct mt_wl_kl *k);

/* What a serving plugin holds beside the model's own slabs, for the accounted peaks of
 * the serving measurement. Zero-initialize (fields may be appended). */
struct mt_wl_serving {
    /* Weights stored outside the model's weight slab (packed or sparse tensors and their
     * indices, scales, codebooks), in bytes; counted in category weights. */
    size_t weight_bytes;
    /* The plugin's serving scratch (its kernels' workspace buffers) at its high-water
     * mark so far, in bytes; counted in category workspace. Called once after decoding
     * and once after the evaluation, so it must only grow (grow-only buffers, a peak
     * counter). NULL = none. */
    size_t (*scratch_bytes)(const void *user);
    const void *user;
    /* The base model's distributions (mt_wl_base_probs) or NULL: with them the
     * evaluation also reports kl_mean, kl_median, kl_p99, kl_max (nats), kl_top1_agree
     * (ratio) and delta_ppl (the served model's perplexity minus the base's, both from
     * the fp32 probabilities of the same positions: exactly 0 for the base itself). */
    const struct mt_wl_base *base;
    /* device=cuda (appended; NULL: the host model serves): the GPU twin of the model
     * serves instead (struct mt_cuda_serve_opts, mt_wl_cuda_serve_opts), and the two
     * phases' peaks are its device bytes. */
    const struct mt_cuda_serve_opts *device;
};

/* device=cuda serving (libmemtrade-cuda.so, workloads/common/serving_cuda.c): the GPU
 * twin of a host model (cuda/cgpt.h) decodes at batch 1 with a device KV cache and scores
 * the evaluation text, phase by phase, each phase freeing the other's device memory first
 * (as the host serving releases the evaluation slabs while it decodes):
 * - decode: a weights-only twin (its fp32 slab, the precision's extras, with qfmt the
 *   packed linears that the decode GEMVs read, the LM head kept unpacked), a KV cache of
 *   kv_type (fp32, bf16, fp16) and its step's scratch;
 * - evaluation: an inference twin for eval_B x eval_T windows whose linear weights are,
 *   with qfmt, the packed codes decoded to fp32 (mt_qtensor_unpack: the values the packed
 *   kernels compute with), its GEMMs in `precision`.
 * bytes[] are the phase's device bytes per category, as allocated (mt_cuda_gpt_plan,
 * mt_cuda_kv_plan and the packed tensors' bytes). */
struct mt_cuda_serve_opts {
    const char *precision;         /* fp32|tf32|bf16 (NULL: fp32) */
    const struct mt_qformat *qfmt; /* packed linears for decoding, or NULL */
    int kv_type;                   /* 0 fp32, 1 bf16, 2 fp16 (cuda/ckernels.h) */
    size_t eval_B, eval_T;         /* the evaluation's windows (the host model's B, T) */
};
struct mt_cuda_serve {
    void *self;
    /* the decode phase for n positions; bytes[] its device bytes */
    int (*decode_open)(void *self, size_t n, size_t bytes[MT_MEM_CAT_COUNT], char *err,
                       size_t errlen);
    void (*decode_reset)(void *self);
    /* queues the step of token (nothing waits for the device: decode_wait does) */
    int (*decode_step)(void *self, int token, char *err, size_t errlen);
    /* waits for the queued steps; errors of the device reported here */
    int (*decode_wait)(void *self, char *err, size_t errlen);
    /* the evaluation phase; *e runs the protocol's forwards on the device */
    int (*eval_open)(void *self, size_t bytes[MT_MEM_CAT_COUNT], struct mt_eval_engine *e,
                     char *err, size_t errlen);
    void (*close)(void *self); /* frees everything, self included */
};
/* libmemtrade-cuda.so's mt_cuda_serve_open: *s for host model m (weights kept by the
 * caller until s->close). Returns 0, or -1 with a message (no device). */
typedef int (*mt_cuda_serve_open_fn)(struct mt_cuda_serve *s, const struct mt_gpt *m,
                                     const struct mt_cuda_serve_opts *o, char *err, size_t errlen);
int mt_cuda_serve_open(struct mt_cuda_serve *s, const struct mt_gpt *m,
                       const struct mt_cuda_serve_opts *o, char *err, size_t errlen);

/* Contract: the run's device serving options: 0 when `device` is cpu (or undeclared); 1
 * with *o filled (device_precision, the kv_cache format as kv_type, eval_B, eval_T from
 * the arguments, qfmt NULL) for device=cuda; -1 after mt_error when the run asks for what
 * the device does not serve (kv_cache other than fp32, bf16, fp16; kv_block; more than
 * one decode sequence). */
int mt_wl_cuda_serve_opts(struct mt_ctx *ctx, size_t eval_B, size_t eval_T,
                          struct mt_cuda_serve_opts *o);

/* The one serving measurement of an inference-mode model (its slabs sized for the
 * evaluation batch), the same for every serving workload, in this order:
 * 0. the model's activation and workspace slabs are released (mt_gpt_set_mode to
 *    MT_GPT_WEIGHTS; on glibc the freed pages go back to the kernel with malloc_trim), so
 *    while it decodes the process holds what a deployment holds: pointers into those
 *    slabs (act[], inputs) must not be kept across this call.
 * 1. region "infer" (holding "decode"): mt_wl_report_decode at the declared context
 *    (parameter `decode_tokens`, resolved by mt_wl_decode_context), then
 *    infer_peak_bytes and infer_peak_<category>_bytes: weights = the model's weight
 *    slab + sv->weight_bytes, kv_cache = the cache's keys and values as stored (L * 2 *
 *    context * C floats in fp32; else mt_kvc_contiguous_bytes or the blocks held), workspace = the
 * decode step's scratch + sv->scratch_bytes() as decoding left it. The model holds its weights only
 * meanwhile, so the heap profiler's peak of the region is these parts plus what the process holds
 * beside the model (corpus, kernel libraries' own caches).
 * 2. the evaluation slabs are attached again for the same (B, T), zeroed (mt_gpt_set_mode
 *    to MT_GPT_INFER), so the evaluation is bit for bit what it was without the release.
 * 3. top-level region "eval": mt_wl_report_eval over `eval_tokens` validation bytes,
 *    then eval_peak_bytes and eval_peak_<category>_bytes: every slab of the model +
 *    sv->weight_bytes (weights) + sv->scratch_bytes() (workspace) + mt_gpt_eval's inputs
 *    and targets (data, mt_wl_batch_bytes(m->B, m->T)); with sv->base, the KL metrics
 *    (above) from the same evaluation pass, the base's rows read batch by batch from its
 *    file (their buffer and the per-position KL counted as data).
 * sv may be NULL (an fp32 model served by the model's own kernels). The plugin must
 * declare MT_WL_PARAM_DECODE_TOKENS, MT_WL_PARAMS_KV_CACHE and an eval_tokens parameter. */
int mt_wl_report_serving(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                         const struct mt_wl_serving *sv);

/* Contract: mt_wl_report_reference (wlcommon.h) with the serving measurement on the device
 * when dev is not NULL (struct mt_wl_serving's device). */
int mt_wl_report_reference_on(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                              const struct mt_gpt_recipe *r, uint64_t seed,
                              const struct mt_wl_train_stats *st,
                              const struct mt_cuda_serve_opts *dev);

#ifdef __cplusplus
}
#endif
#endif
