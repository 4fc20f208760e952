/* wlplan.h — the memory plan (workload.h ABI 1.4, struct mt_mem_plan) of the one training
 * loop's reference state and of the one serving measurement, for the plugins' plan() hooks.
 *
 * What it is for: the bytes per category and phase that a run of a workload will hold,
 * computed from its parameters alone by the same functions that size the run's slabs
 * (mt_gpt_memory, mt_gpt_kv_memory, mt_kvc_bytes, mt_wl_batch_bytes), so the plan and the
 * run cannot drift apart. Phases carry the names of the run's regions and accounted
 * metrics: "train" (train_peak_*), "infer" (infer_peak_*), "eval" (eval_peak_*).
 * What it is not for: the engines' own plans (tmodel.h, lora.h, the distributed engine
 * compute theirs and add their phases through mt_wl_plan_add), printing, or allocating.
 *
 * Errors: functions return 0, or -1 after mt_error(ctx, ...). Thread safety: pure.
 */
#ifndef MT_WL_WLPLAN_H
#define MT_WL_WLPLAN_H

#include <stddef.h>

#include <memtrade/workload.h>

#include "gpt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Contract: appends phase `name` of `goal` with bytes[] (per category) to *p. Returns 0,
 * or -1 after mt_error when the plan already holds MT_MEM_PLAN_MAX_PHASES phases. */
int mt_wl_plan_add(struct mt_ctx *ctx, struct mt_mem_plan *p, const char *name, int goal,
                   const size_t bytes[MT_MEM_CAT_COUNT]);

/* Contract: adds to b[] the slabs mt_gpt_create / mt_gpt_set_mode give a model of shape
 * cfg in `mode` at B x T (mt_gpt_memory), per category. Returns 0 or -1 after mt_error. */
int mt_wl_plan_add_slabs(struct mt_ctx *ctx, const struct mt_gpt_config *cfg, size_t B, size_t T,
                         enum mt_gpt_mode mode, size_t b[MT_MEM_CAT_COUNT]);

/* Contract: the reference model's fp32 training state for batch B x T (mt_gpt_memory
 * MT_GPT_TRAIN) plus the batch in flight (data), as phase "train": what
 * mt_wl_train_or_load holds while it trains. Returns 0 or -1 after mt_error. */
int mt_wl_plan_reference_train(struct mt_ctx *ctx, const struct mt_gpt_config *cfg, size_t B,
                               size_t T, struct mt_mem_plan *p);

/* What a serving workload stores beside the model's fp32 slabs (see struct mt_wl_serving). */
struct mt_wl_plan_serving {
    size_t weight_slab; /* the model's weight slab as served (mt_gpt_memory(WEIGHTS) when
                         * nothing is dropped) */
    size_t stored;      /* weights stored in another form (packed, sparse), bytes */
    size_t scratch;     /* the plugin's serving scratch at its high-water mark */
    size_t eval_batch;  /* windows per evaluation forward */
    size_t eval_T;      /* their length */
    size_t eval_data;   /* data beyond the evaluation's inputs and targets */
    int kl;             /* 1: the evaluation is compared with a base (the KL metrics): its
                         * buffers (mt_wl_kl_bytes) join the eval phase's data */
};

/* Contract: the one serving measurement's phases (serving.h): "infer" (the weight slab,
 * the stored weights, the KV cache of the run's kv_* parameters at the decode context
 * (decode_tokens resolved by mt_wl_decode_context) for each of decode_sequences
 * sequences, their decode steps' scratch
 * and the plugin's scratch) and "eval" (the model's inference slabs for eval_batch x
 * eval_T, the stored weights, the plugin's scratch, the evaluation's token buffers, and
 * with s->kl the comparison's buffers for eval_tokens positions: exact when eval_tokens
 * is set and below the validation split, as it is by default; eval_tokens = 0 (the whole
 * split) leaves them out, and the run's eval_unaccounted_bytes shows them).
 * Reads decode_tokens, decode_sequences and kv_* from ctx. Returns 0 or -1 after mt_error. */
int mt_wl_plan_serving(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                       const struct mt_wl_plan_serving *s, struct mt_mem_plan *p);

/* Contract: the phases of a workload that trains the reference with the baseline recipe
 * (when it is not cached) and serves it: "train" (mt_wl_plan_reference_train for the
 * run's model, `batch` and T) then mt_wl_plan_serving with *s, whose eval_T is set to T
 * and whose weight_slab 0 means the full fp32 slab. Reads model, the block options, seq,
 * batch, decode_tokens and kv_* from ctx. Returns 0 or -1 after mt_error. */
int mt_wl_plan_reference(struct mt_ctx *ctx, struct mt_wl_plan_serving *s, struct mt_mem_plan *p);

/* Contract: with device=cuda (mt_wl_cuda_serve_opts), the serving measurement's phases on
 * the device instead (serving.h struct mt_cuda_serve, each phase its device bytes only):
 * "infer" (the weights-only twin mt_cuda_gpt_plan(MT_GPT_WEIGHTS, 1, 1) in the run's
 * device_precision, s->stored packed bytes as weights, the KV cache and its step's scratch
 * of mt_cuda_kv_plan at the decode context) and "eval" (mt_cuda_gpt_plan(MT_GPT_INFER,
 * eval_batch, T)), after the reference's "train" phase as mt_wl_plan_reference has it.
 * Returns 1 when it planned (or -1 after mt_error), 0 with device=cpu (nothing added). */
int mt_wl_plan_reference_cuda(struct mt_ctx *ctx, const struct mt_wl_plan_serving *s,
                              struct mt_mem_plan *p);

/* Model states per rank under ZeRO (Rajbhandari et al., "ZeRO: Memory Optimizations
 * Toward Training Trillion Parameter Models", 2020, section 5 and Figure 1): psi
 * parameters whose weights, gradients and optimizer state take w, g and k bytes each,
 * over `ranks` data-parallel ranks. Stage 0 replicates everything (plain data
 * parallelism); stage 1 shards the optimizer state, 2 also the gradients, 3 also the
 * weights, each 1/ranks. The paper's mixed-precision Adam is w = 2, g = 2, k = 12 (fp32
 * master weights, m and v): 16 bytes per parameter at stage 0. */
struct mt_wl_zero_states {
    double weights, gradients, optimizer;
};
/* Contract: fills *out (bytes per rank, exact arithmetic in double) for stage 0..3 and
 * ranks >= 1. Pure. */
void mt_wl_zero_states(double psi, size_t ranks, int stage, double w, double g, double k,
                       struct mt_wl_zero_states *out);

#ifdef __cplusplus
}
#endif
#endif
