/* trainloop.h — the training-memory workloads (grad_accum, mixed_precision,
 * checkpointing, mempool): the tmodel.h engine in the one training loop
 * (workloads/common/loop.h); each plugin is this with its own defaults, and every plugin
 * accepts every knob, so one run can combine them.
 *
 * What it is for: the baseline recipe (model, steps, batch, lr, seed: the baseline's
 * batches and schedule, the loop's) on the tmodel.h engine with
 * - micro_batch / accum_steps: k micro-batches of batch/k per step, gradients summed,
 *   the loss normalised by the effective batch's tokens (both named with accum_steps =
 *   ceil(batch / micro_batch): micro-batches of micro_batch, the last holding the rest);
 * - precision fp32|bf16|fp16, master_weights on|off, loss_scale auto|dynamic|none|<v>
 *   (dynamic: start 65536, overflow -> step skipped and scale x0.5, x2 after
 *   scale_window good steps; auto = dynamic for fp16, none otherwise);
 * - every: checkpoint interval (an integer 1..n_layer, or sqrt);
 * - alloc pool|malloc;
 * - optimizer adamw|adamw8|adafactor, offload none|optimizer (optim.h);
 * - recompute none|selective (the attention core, beside `every`);
 * - device cpu|cuda, device_precision: cuda runs the same loop on the GPU twin of the
 *   model (loop.h mt_cuda_train_twin, cuda/cgpt.h): micro-batches of micro_batch rows
 *   accumulated on the device, checkpointing by `every` (whole blocks recomputed),
 *   precision=bf16 as bf16 GEMMs with fp32 accumulation, fp32 weights, gradients and
 *   optimizer state (the autocast recipe; device_precision fp32|tf32|bf16 for
 *   precision=fp32); fp16, master_weights=off, alloc=malloc, adamw8/adafactor, offload
 *   and recompute=selective are refused there. The plan is the device's
 *   (mt_cuda_gpt_plan: slabs and extras per category);
 * and the report: val_* (mt_wlcommon), train_peak_bytes, peak_<category>_bytes from the
 * engine's accounting, the train_loss series, train_tokens_per_s, recompute time,
 * skipped steps, gradient underflow, allocation calls, RSS and fragmentation.
 * What it is not for: the steps (loop.h), the model math (tmodel.c) or the descriptors
 * (one file each).
 *
 * Errors go through mt_error(ctx); thread safety: the run() thread only.
 */
#ifndef MT_TRAIN_TRAINLOOP_H
#define MT_TRAIN_TRAINLOOP_H

#include <stddef.h>

#include <memtrade/workload.h>

#include "cuda/cgpt.h"
#include "loop.h"
#include "tmodel.h"
#include "wlcommon.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The parameter table every training-memory plugin declares, with its own defaults
 * (as text): micro_batch, accum_steps, precision, loss_scale, every, alloc. */
#define MT_TRAIN_PARAMS(MICRO, ACCUM, PREC, LSCALE, EVERY, ALLOC)                                  \
    MT_WL_PARAMS_BASELINE,                                                                         \
        {"micro_batch",                                                                            \
         MT_PARAM_INT,                                                                             \
         MICRO,                                                                                    \
         0,                                                                                        \
         4096,                                                                                     \
         NULL,                                                                                     \
         "sequences per forward/backward (0 = batch / accum_steps)"},                              \
        {"accum_steps",                                                                            \
         MT_PARAM_INT,                                                                             \
         ACCUM,                                                                                    \
         0,                                                                                        \
         4096,                                                                                     \
         NULL,                                                                                     \
         "micro-batches per optimizer step (0 = batch / micro_batch)"},                            \
        {"precision",                                                                              \
         MT_PARAM_CHOICE,                                                                          \
         PREC,                                                                                     \
         0,                                                                                        \
         0,                                                                                        \
         "fp32|bf16|fp16",                                                                         \
         "storage of weights, gradients and activations (compute is fp32)"},                       \
        {"master_weights",                                                                         \
         MT_PARAM_BOOL,                                                                            \
         "on",                                                                                     \
         0,                                                                                        \
         0,                                                                                        \
         NULL,                                                                                     \
         "fp32 master weights for the update (bf16/fp16)"},                                        \
        {"loss_scale",                                                                             \
         MT_PARAM_STRING,                                                                          \
         LSCALE,                                                                                   \
         0,                                                                                        \
         0,                                                                                        \
         NULL,                                                                                     \
         "auto|dynamic|none|<value> (auto = dynamic for fp16, none otherwise)"},                   \
        {"scale_window",                                                                           \
         MT_PARAM_INT,                                                                             \
         "100",                                                                                    \
         1,                                                                                        \
         1e6,                                                                                      \
         NULL,                                                                                     \
         "good steps before a dynamic loss scale doubles"},                                        \
        {"every",                                                                                  \
         MT_PARAM_STRING,                                                                          \
         EVERY,                                                                                    \
         0,                                                                                        \
         0,                                                                                        \
         NULL,                                                                                     \
         "keep block activations every N blocks: 1 = all, sqrt, n_layer = recompute all"},         \
        {"alloc",                                                                                  \
         MT_PARAM_CHOICE,                                                                          \
         ALLOC,                                                                                    \
         0,                                                                                        \
         0,                                                                                        \
         "pool|malloc",                                                                            \
         "activations in pooled slabs, or malloc/free of every tensor every step"},                \
        {"optimizer",                                                                              \
         MT_PARAM_CHOICE,                                                                          \
         "adamw",                                                                                  \
         0,                                                                                        \
         0,                                                                                        \
         "adamw|adamw8|adafactor",                                                                 \
         "fp32 AdamW, 8-bit block-wise AdamW, or Adafactor (factored v, no m)"},                   \
        {"offload",                                                                                \
         MT_PARAM_CHOICE,                                                                          \
         "none",                                                                                   \
         0,                                                                                        \
         0,                                                                                        \
         "none|optimizer",                                                                         \
         "optimizer: the optimizer state in a scratch file, streamed per chunk"},                  \
        {"recompute",                                                                              \
         MT_PARAM_CHOICE,                                                                          \
         "none",                                                                                   \
         0,                                                                                        \
         0,                                                                                        \
         "none|selective",                                                                         \
         "selective: recompute the attention core in backward, drop its B*NH*T*T probabilities"},  \
        MT_WL_PARAMS_DEVICE

/* Defines the exported descriptor of a training-memory plugin: its name, summary and
 * knob defaults (see MT_TRAIN_PARAMS); run and mem_estimate are the shared ones. */
#define MT_TRAIN_WORKLOAD(NAME, SUMMARY, MICRO, ACCUM, PREC, LSCALE, EVERY, ALLOC)                 \
    static const struct mt_param_spec params[] = {                                                 \
        MT_TRAIN_PARAMS(MICRO, ACCUM, PREC, LSCALE, EVERY, ALLOC)};                                \
    MT_WL_DESCRIPTOR_PLAN(NAME, SUMMARY, params, NULL, mt_train_mem_estimate, mt_train_run,        \
                          mt_train_check, mt_train_plan)

/* Everything the knobs resolve to. */
struct mt_train_opts {
    struct mt_tmodel_opts engine; /* micro_batch, seq, prec, master, every, pool */
    size_t accum_steps;
    enum mt_loss_scale ls;
    float ls_value;               /* FIXED: the scale; DYNAMIC: the initial scale */
    size_t scale_window;          /* DYNAMIC: good steps before doubling */
    int device;                   /* 1: device=cuda (the GPU twin) */
    enum mt_cuda_precision dprec; /* device=cuda: the GEMMs' precision */
};

/* Resolves the knobs for cfg and recipe r (r->batch is the effective batch). Returns 0,
 * or -1 with the message recorded (micro_batch alone that does not divide batch, an
 * accum_steps that is neither batch / micro_batch nor ceil(batch / micro_batch), a bad
 * `every` or `loss_scale`). */
int mt_train_opts(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                  const struct mt_gpt_recipe *r, struct mt_train_opts *o);

/* The whole run of a training-memory plugin: train, report, evaluate. */
int mt_train_run(struct mt_ctx *ctx);

/* mem_estimate hook: the engine's plan, the evaluation model and a fixed allowance. */
size_t mt_train_mem_estimate(struct mt_ctx *ctx);
/* plan() hook (ABI 1.4): phase "train" (mt_tmodel_plan of the knobs plus the batch, the
 * composition of train_peak_bytes) and "eval" (the evaluation model's inference slabs and
 * its token buffers). */
int mt_train_plan(struct mt_ctx *ctx, struct mt_mem_plan *p);

/* The descriptor's check() hook: the model, the recipe and the knobs (every, loss_scale,
 * micro_batch x accum_steps = batch) resolve as run() would resolve them; the harness
 * calls it before any child starts. Returns 0 or mt_error's -1. */
int mt_train_check(struct mt_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
