/* wlcommon.h — what every workload plugin needs to reach the reference model through
 * its ctx: the model configuration from the `model` parameter, the corpus, the default
 * training recipe, train-or-load-from-cache, and the standard metrics; and the pieces
 * every plugin file would otherwise repeat: the baseline parameter rows, the exported
 * descriptor, the batch buffers and stream, a clock.
 *
 * What it is for: keeping plugins short and their numbers comparable — every plugin
 * trains the same baseline the same way, caches it under the same key, and reports
 * val_loss / val_bpb / val_ppl / val_top1, train_tokens_per_s, eval_tokens_per_s,
 * model_bytes and train_peak_bytes with the same units.
 * The serving measurement and the evaluation protocol live in serving.h (included here).
 * What it is not for: the model itself (workloads/transformer), or the steps of training
 * (loop.h: the one training loop, with hooks for what a plugin changes).
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
#include "loop.h"    /* mt_cuda_train_twin_fn */
#include "serving.h" /* the serving measurement and the evaluation protocol */

#ifdef __cplusplus
extern "C" {
#endif

/* Cache file format generation: bump when training changes what a recipe produces. */
#define MT_WL_CACHE_VERSION 1

/* One row of a parameter table (struct mt_param_spec: name, type, default, min, max,
 * choices, help), written as a call so that each row reads as one. */
#define MT_WL_ROW(name, type, def, min, max, choices, help)                                        \
    {                                                                                              \
        name, type, def, min, max, choices, help                                                   \
    }

/* The standard parameter-table rows (name, type, default, range, help) that the baseline
 * recipe reads; plugins that take "the baseline training parameters" list these. */
#define MT_WL_PARAM_MODEL                                                                          \
    MT_WL_ROW(                                                                                     \
        "model", MT_PARAM_STRING, "small", 0, 0, NULL,                                             \
        "reference model: a preset (tiny|small|medium|gpt2|long|llama-tiny|llama-1b), "            \
        "optionally with dimensions and options (e.g. llama-1b,L=80,C=8192,H=64,KV=8), or a "      \
        "model file: a Hugging Face folder or a .gguf file")
/* The block's options on top of the preset (gpt.h: attention kind, key/value heads,
 * sliding window) and the training sequence length: separate parameters, so that a
 * sweep can list values of each (`attention = dense, flash`, `seq = 256, 1024`). */
#define MT_WL_PARAMS_ARCH                                                                          \
    MT_WL_ROW(                                                                                     \
        "attention", MT_PARAM_CHOICE, "dense", 0, 0, "dense|flash",                                \
        "attention core: dense (keeps the B*H*T*T probabilities) or flash (tiled, keeps the "      \
        "row log-sum-exp only)"),                                                                  \
        MT_WL_ROW(                                                                                 \
            "n_kv_head", MT_PARAM_INT, "0", 0, 4096, NULL,                                         \
            "key/value heads (grouped-query attention; 0 = the model's own: one per query head "   \
            "unless its preset or spec says KV=)"),                                                \
        MT_WL_ROW("window", MT_PARAM_INT, "0", 0, 1000000, NULL,                                   \
                  "sliding attention window in positions (0 = the model's own: the whole causal "  \
                  "context unless its spec says W=)"),                                             \
        MT_WL_ROW("tokenizer", MT_PARAM_STRING, "auto", 0, 0, NULL,                                \
                  "auto (a model file's own: its tokenizer.json or tokenizer.ggml.*; bytes for a " \
                  "preset), bytes, a tokenizer.json or a Hugging Face model folder holding one"),  \
        MT_WL_ROW("seq", MT_PARAM_INT, "0", 0, 1000000, NULL,                                      \
                  "training sequence length T (0 = min(128, the model's context))")
#define MT_WL_PARAM_STEPS                                                                          \
    MT_WL_ROW("steps", MT_PARAM_INT, "300", 1, 1000000, NULL, "training steps of the baseline")
#define MT_WL_PARAM_BATCH                                                                          \
    MT_WL_ROW("batch", MT_PARAM_INT, "16", 1, 4096, NULL, "sequences per training step")
#define MT_WL_PARAM_LR                                                                             \
    MT_WL_ROW("lr", MT_PARAM_FLOAT, "3e-3", 1e-6, 1.0, NULL, "peak learning rate")
#define MT_WL_PARAM_SEED                                                                           \
    MT_WL_ROW("seed", MT_PARAM_INT, "1337", 0, 4294967295.0, NULL, "init and batch sampling seed")
#define MT_WL_PARAM_EVAL_TOKENS                                                                    \
    MT_WL_ROW("eval_tokens", MT_PARAM_INT, "65536", 0, 1e12, NULL,                                 \
              "validation tokens (bytes by default) to score from the split's start (0 = all)")
#define MT_WL_PARAM_CORPUS                                                                         \
    MT_WL_ROW("corpus", MT_PARAM_STRING, "", 0, 0, NULL, "text file or folder (empty = run corpus)")

/* The seven rows above, in this order: what a plugin lists when it takes "the baseline
 * training parameters" unchanged. */
#define MT_WL_PARAMS_BASELINE                                                                      \
    MT_WL_PARAM_MODEL, MT_WL_PARAMS_ARCH, MT_WL_PARAM_STEPS, MT_WL_PARAM_BATCH, MT_WL_PARAM_LR,    \
        MT_WL_PARAM_SEED, MT_WL_PARAM_EVAL_TOKENS, MT_WL_PARAM_CORPUS

/* The baseline training parameters for a post-training workload (quantize, prune,
 * distill): the same rows, but `steps` (the reference it starts from) defaults to 2000.
 * At 300 steps the reference of `small` is so undertrained that 8-bit, 4-bit and nf4
 * score within 1e-5 bits/byte of fp32 and methods are ordered by noise; at 2000 they
 * separate. Every run stores its `steps`, so each result says how long its base trained. */
#define MT_WL_PARAMS_POSTTRAIN                                                                     \
    MT_WL_PARAM_MODEL, MT_WL_PARAMS_ARCH,                                                          \
        MT_WL_ROW("steps", MT_PARAM_INT, "2000", 1, 1000000, NULL,                                 \
                  "training steps of the reference (cached baseline) this method starts from"),    \
        MT_WL_PARAM_BATCH, MT_WL_PARAM_LR, MT_WL_PARAM_SEED, MT_WL_PARAM_EVAL_TOKENS,              \
        MT_WL_PARAM_CORPUS

/* Defines the exported descriptor `memtrade_workload` of the current ABI from the file's
 * parameter table PARAMS (an array, not a pointer: its length is taken with sizeof),
 * RANKS_PARAM (NULL for single-process plugins) and the two hooks (ESTIMATE may be NULL).
 * Use it once, at the end of the plugin's file. */
#define MT_WL_DESCRIPTOR(NAME, SUMMARY, PARAMS, RANKS_PARAM, ESTIMATE, RUN)                        \
    MT_WL_DESCRIPTOR_CHECK(NAME, SUMMARY, PARAMS, RANKS_PARAM, ESTIMATE, RUN, mt_wl_check_model)

/* The same with a check() hook (ABI 1.1): constraints refused before any child starts. */
#define MT_WL_DESCRIPTOR_CHECK(NAME, SUMMARY, PARAMS, RANKS_PARAM, ESTIMATE, RUN, CHECK)           \
    MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {                              \
        MT_WL_DESCRIPTOR_HEAD(NAME, SUMMARY, PARAMS, RANKS_PARAM, ESTIMATE, RUN), .check = CHECK}

/* The same with a plan() hook (ABI 1.4, wlplan.h): the run's memory plan per phase. */
#define MT_WL_DESCRIPTOR_PLAN(NAME, SUMMARY, PARAMS, RANKS_PARAM, ESTIMATE, RUN, CHECK, PLAN)      \
    MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {                              \
        MT_WL_DESCRIPTOR_HEAD(NAME, SUMMARY, PARAMS, RANKS_PARAM, ESTIMATE, RUN), .check = CHECK,  \
        .plan = PLAN}

/* The descriptor's fields up to run (CHECK is the last argument of the two above, so a
 * caller may pass more initializers through it: distributed/plugin.h does). */
#define MT_WL_DESCRIPTOR_HEAD(NAME, SUMMARY, PARAMS, RANKS_PARAM, ESTIMATE, RUN)                   \
    .abi_major = MEMTRADE_WORKLOAD_ABI_MAJOR, .abi_minor = MEMTRADE_WORKLOAD_ABI_MINOR,            \
    .struct_size = sizeof(struct mt_workload), .name = NAME, .summary = SUMMARY, .params = PARAMS, \
    .n_params = sizeof(PARAMS) / sizeof((PARAMS)[0]), .ranks_param = RANKS_PARAM,                  \
    .mem_estimate = ESTIMATE, .run = RUN

/* Seed xored into the run's seed for the training batch stream (a stream apart from the
 * init's): mt_loop_batch_seed (loop.h) applies it; whatever must see the baseline's
 * batches, in its order, uses that ("batch"). */
#define MT_WL_BATCH_STREAM 0x6261746368ull

/* Monotonic wall-clock time in seconds (an arbitrary origin: subtract two readings).
 * Thread safe. */
double mt_wl_now(void);

/* Sum of m's slabs over every memory category, in bytes: what m holds. */
size_t mt_wl_slab_total(const struct mt_gpt *m);

/* Allocates 2 * n ints tagged MT_MEM_DATA: one batch of n input tokens followed by its n
 * targets (in = p, tg = p + n). Returns NULL when out of memory, with no message recorded,
 * so the caller says what the batch was for. Free with free(). */
int *mt_wl_batch_alloc(struct mt_ctx *ctx, size_t n);

/* Bytes of one training batch of B x T windows as mt_wl_batch_alloc holds it (inputs and
 * targets): the data category of train_peak_bytes. */
size_t mt_wl_batch_bytes(size_t B, size_t T);

/* Sets the OpenMP thread count from ctx->threads (no-op when it reports <= 0). */
void mt_wl_threads(struct mt_ctx *ctx);

/* One metric of a group that is measured, or not, as a whole. */
struct mt_wl_metric {
    const char *name;
    double value;
    const char *unit;
};
/* Contract: reports the n metrics of `group`, or, when `why` is not NULL, each of them
 * unavailable for that reason (never a value then). */
void mt_wl_metrics(struct mt_ctx *ctx, const char *why, const struct mt_wl_metric *group, size_t n);

/* Fills *cfg from the preset named by parameter `param` (NULL = "model"), or from the
 * model file it names (a folder or a .gguf: mt_model_peek reads its shape), then, for the
 * run's own model (param NULL or "model"), the block options of MT_WL_PARAMS_ARCH
 * (`attention`, `n_kv_head`, `window`) where the plugin declares them, and the vocab of a
 * `tokenizer` naming one (not auto or bytes: its mt_tok_vocab) where the plugin declares that.
 * Returns 0, or -1 after mt_error (unknown preset, options the preset cannot take). */
int mt_wl_model_config(struct mt_ctx *ctx, const char *param, struct mt_gpt_config *cfg);

/* The baseline recipe (mt_gpt_recipe_default) with `steps`, `batch`, `lr` from the
 * parameters of those names and T = `seq` when the plugin declares it and it is not 0
 * (at most cfg->seq_len, else an error), else min(128, cfg->seq_len); *seed from `seed`.
 * Reports train_tokens (steps x batch x T), the budget results are compared at. */
int mt_wl_recipe(struct mt_ctx *ctx, const struct mt_gpt_config *cfg, struct mt_gpt_recipe *r,
                 uint64_t *seed);

/* Loads the corpus: the `corpus` string parameter when `has_corpus_param` (the plugin
 * declares it) and it is non-empty, else ctx->corpus, else the default fortunes folder.
 * Both splits must hold a window of T + 1 bytes. The run's tokenizer encodes each split
 * (mt_corpus_tokenize: the corpus's train_tokens / val_tokens, which batches and
 * evaluation read): the `tokenizer` parameter (MT_WL_PARAMS_ARCH): "auto" (the default)
 * is a model file's own (modeltok.h: a folder's tokenizer.json, a GGUF file's
 * tokenizer.ggml.*) when the run's `model` is a file that carries one, else bytes;
 * "bytes" forces bytes; else mt_tok_load (a tokenizer.json, a folder holding one). A
 * tokenizer giving the byte ids (mt_tok_is_bytes) leaves the corpus as bytes. A
 * tokenizer whose vocab the run's model (`model` parameter) does not hold is refused.
 * Free with mt_corpus_free. */
int mt_wl_corpus(struct mt_ctx *ctx, int has_corpus_param, size_t T, struct mt_corpus *c);

/* What a run that serves the reference model resolves first, in this order. */
struct mt_wl_setup {
    struct mt_gpt_config cfg; /* mt_wl_model_config (the `model` parameter) */
    struct mt_gpt_recipe r;   /* mt_wl_recipe */
    uint64_t seed;
    struct mt_corpus corpus; /* mt_wl_corpus (the plugin declares `corpus`), T = r.seq */
};
/* Contract: fills *s (model shape, recipe and seed, corpus) as the three calls above do,
 * stopping at the first error. Returns 0 (free s->corpus with mt_corpus_free), or -1
 * after mt_error, with nothing to free. mt_wl_setup_model makes the first two calls only
 * and zeroes s->corpus, for runs that read options of their own before loading it
 * (mt_wl_corpus(ctx, 1, s->r.seq, &s->corpus)). */
int mt_wl_setup(struct mt_ctx *ctx, struct mt_wl_setup *s);
int mt_wl_setup_model(struct mt_ctx *ctx, struct mt_wl_setup *s);

/* Cache file for (cfg, recipe, seed, corpus) in ctx->cache_dir: fills path (capacity n). */
void mt_wl_cache_path(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                      const struct mt_gpt_recipe *r, uint64_t seed, const struct mt_corpus *c,
                      char *path, size_t n);

struct mt_wl_train_stats {
    int from_cache;      /* 1 when the weights came from the cache */
    int imported;        /* 1 when the weights came from a model file (`model=PATH`) */
    size_t steps;        /* steps trained in this run */
    double seconds;      /* training wall time in this run */
    double tokens_per_s; /* training throughput in this run */
    float final_loss;    /* mean train loss of the last 10 steps */
    size_t peak_bytes;   /* train_peak_bytes: what a training step holds at its peak (below) */
};

/* The baseline's training of an already created and initialized TRAIN-mode model: the
 * one training loop (loop.h) with the reference model's engine, r->steps steps of
 * r->batch x r->seq windows from the train split in the baseline's batch stream
 * (mt_loop_batch_seed(seed)); regions "train" (whole loop) and "forward" / "backward" /
 * "optimizer" (each step), mt_progress per step, series "train_loss" (x = step). */
int mt_wl_train_loop(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_gpt_recipe *r,
                     uint64_t seed, const struct mt_corpus *c, struct mt_wl_train_stats *st);

/* Returns in *out a model of `mode` for batch B x T (see mt_gpt_create) holding the
 * baseline trained with (cfg, r, seed) on corpus c; when the run's `model` is a model file
 * (mt_model_is_path), its weights instead (modelfile.h; mapped, not copied, where the
 * file allows and the mode is not training; region "import"; st->imported): a model whose
 * vocabulary is not the 256 bytes needs c to be tokenized (mt_wl_corpus: the model's own
 * tokenizer or the `tokenizer` parameter's) and is refused, saying why, when it is not.
 * Otherwise: loaded from the cache when a valid
 * checkpoint is there, otherwise trained (mt_wl_train_loop from mt_gpt_init(seed)) and
 * written to the cache atomically (temporary file + rename) before being reloaded in
 * `mode`, so the training state is freed first. A corrupt cache file is logged and
 * replaced. st (may be NULL) says what happened. */
int mt_wl_train_or_load(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                        const struct mt_gpt_recipe *r, uint64_t seed, const struct mt_corpus *c,
                        enum mt_gpt_mode mode, size_t B, size_t T, struct mt_gpt **out,
                        struct mt_wl_train_stats *st);

/* Where the baseline trains: `device` cpu (the CPU engine) or cuda (the GPU twin of the
 * model, cuda/cgpt.h, in the one training loop through mt_loop_cuda_engine; the weights
 * come back to the host model for everything after training), and `device_precision` of
 * the GPU's GEMMs (fp32, tf32, bf16). A model trained on the GPU is cached under its own
 * name. Needs a build with MT_CUDA; the run fails saying so otherwise. */
#define MT_WL_PARAMS_DEVICE                                                                        \
    MT_WL_ROW("device", MT_PARAM_CHOICE, "cpu", 0, 0, "cpu|cuda",                                  \
              "where the reference trains: the CPU engine or the GPU (CUDA build)"),               \
        MT_WL_ROW("device_precision", MT_PARAM_CHOICE, "fp32", 0, 0, "fp32|tf32|bf16",             \
                  "device=cuda: the GEMMs in fp32, TF32 or bf16 (fp32 accumulation)")

struct mt_wl_device {
    const char *device, *precision; /* NULL device: cpu */
};

/* The run's MT_WL_PARAMS_DEVICE (the plugin must declare them). */
void mt_wl_device_params(struct mt_ctx *ctx, struct mt_wl_device *d);

/* device=cuda's trainer (loop.h mt_cuda_train_twin) from libmemtrade-cuda.so beside the
 * plugin folder, opened on first use; NULL with the error recorded (no CUDA backend in
 * this build) naming `device`. */
mt_cuda_train_twin_fn mt_wl_cuda_twin(struct mt_ctx *ctx, const char *device);
/* Symbol `name` of libmemtrade-cuda.so (opened as mt_wl_cuda_twin does); NULL with the
 * error recorded. */
void *mt_wl_cuda_symbol(struct mt_ctx *ctx, const char *device, const char *name);

/* mt_wl_train_or_load, training where dev says (NULL: the CPU). */
int mt_wl_train_or_load_on(struct mt_ctx *ctx, const struct mt_wl_device *dev,
                           const struct mt_gpt_config *cfg, const struct mt_gpt_recipe *r,
                           uint64_t seed, const struct mt_corpus *c, enum mt_gpt_mode mode,
                           size_t B, size_t T, struct mt_gpt **out, struct mt_wl_train_stats *st);

/* mt_wl_train_or_load for a workload that starts from a trained reference (quantize,
 * prune, distill's teacher): the same, inside top-level region "reference". The harness
 * leaves that region's time out of the run's wall_s and stores it as metric reference_s:
 * training a reference the cache lacked is the cache's work, not the method's. */
int mt_wl_reference_or_load(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                            const struct mt_gpt_recipe *r, uint64_t seed, const struct mt_corpus *c,
                            enum mt_gpt_mode mode, size_t B, size_t T, struct mt_gpt **out,
                            struct mt_wl_train_stats *st);

/* Reports train_tokens_per_s and train_peak_bytes from st (as unavailable, with the
 * reason, when the model came from the cache) and train_loss (nats/byte).
 * train_peak_bytes has one definition in every training workload: the accounted bytes a
 * training step holds at its peak, per rank: weights (and master copies), gradients,
 * optimizer state, activations and their gradients, workspace, and the batch in flight
 * (data: inputs and targets, mt_wl_batch_bytes); never the evaluation model's. */
void mt_wl_report_train(struct mt_ctx *ctx, const struct mt_wl_train_stats *st);

/* Reports model_bytes (the fp32 weights as stored, bytes) and n_params (count). */
void mt_wl_report_model(struct mt_ctx *ctx, const struct mt_gpt *m);

/* Contract: what a workload serving the reference m unchanged reports (its weights and
 * the model are the reference's): its training from st (mt_wl_report_train), the model
 * (mt_wl_report_model), then the serving measurement (mt_wl_report_serving) with the
 * reference as its own base (mt_wl_base_probs with c, r and seed), so its KL metrics are
 * 0 (the same forward, when the base file was written at the same thread count).
 * Returns 0, or -1 (reported). Defined in serving.c. */
int mt_wl_report_reference(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                           const struct mt_gpt_recipe *r, uint64_t seed,
                           const struct mt_wl_train_stats *st);

/* Peak bytes one baseline run needs: training slabs + evaluation activations + corpus
 * + a fixed allowance for code and oneDNN buffers. For mem_estimate hooks. */
size_t mt_wl_estimate_bytes(const struct mt_gpt_config *cfg, size_t B, size_t T);

/* check() hook of the plugins that take the model rows (MT_WL_PARAM_MODEL and
 * MT_WL_PARAMS_ARCH, `seq`): the preset with its block options must build and `seq` fit
 * its context, refused before any child starts. Returns 0 or -1 after mt_error. */
int mt_wl_check_model(struct mt_ctx *ctx);

/* For mem_estimate hooks: the run's model (preset and block options) into *cfg and its
 * training sequence length into *T (`seq`, or min(128, seq_len)). Reads parameters only
 * and records no error. Returns 0, or -1 when they do not resolve. */
int mt_wl_estimate_shape(struct mt_ctx *ctx, struct mt_gpt_config *cfg, size_t *T);

/* For mem_estimate hooks of plugins that take MT_WL_PARAMS_BASELINE: fills *cfg (may be
 * NULL) from `model` and returns mt_wl_estimate_bytes for batch max(`batch`, min_batch)
 * and the recipe's T = min(128, seq_len) (what training the baseline when it is not
 * cached needs); 0 (unknown) when the preset does not parse. Uses only the param_* hooks
 * and records no error, as the estimate's ctx allows. */
size_t mt_wl_estimate_baseline(struct mt_ctx *ctx, size_t min_batch, struct mt_gpt_config *cfg);

/* Reports which implementation ran the model's forward matmuls in this process so far
 * (kernels.h, mt_k_matmul_counts): matmul_prims (count, oneDNN primitives) and
 * matmul_fallbacks (count, refused primitives that dnnl_sgemm ran instead), and logs a
 * warning when any fell back. Call at the end of run(). */
void mt_wl_report_kernels(struct mt_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
