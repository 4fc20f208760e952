/* plugin.h — what the four distributed plugins share: their common parameters and the
 * body of run(): MPI start-up, reading the recipe, training through mt_dist_train, the
 * per-rank and run-level metrics, evaluation on rank 0, MPI shut-down.
 *
 * What it is for: keeping data_parallel.c, zero.c, tensor_parallel.c and
 * pipeline_parallel.c down to a parameter table and a descriptor.
 * What it is not for: training itself (train.h) or MPI wrappers (dist.h).
 *
 * Metrics. Every rank (stored with its rank): train_peak_bytes and peak_<category>_bytes
 * from its own slab ledger over the training loop (bytes requested by the shard,
 * optimizer state, batch), the latter also as train_peak_<category>_bytes because the
 * heap profiler's whole-run peak_<category>_bytes replace ours when it runs,
 * comm_bytes_sent / comm_bytes_recv (point-to-point exact, collectives by the ring model,
 * see dist.h), comm_s (also the region "comm"), compute_s, comm_calls, flat_params.
 * Rank 0 only (run-level; the harness takes rank 0's value of non-byte metrics):
 * train_tokens_per_s, train_loss, val_* from the full model assembled on rank 0, and
 * run_sum_train_peak_bytes / run_max_train_peak_bytes / run_sum_comm_bytes_sent over
 * all ranks. ZeRO also reports zero_predicted_optimizer_bytes and
 * zero_predicted_gradients_bytes per rank; runs with a gradient window (ZeRO-2, bf16)
 * grad_window_bytes, bf16 runs weight_window_bytes (the fp32 decode window).
 * Tests: env MT_TEST_CRASH_RANK=r makes rank r raise SIGSEGV in the second step.
 */
#ifndef MT_DIST_PLUGIN_H
#define MT_DIST_PLUGIN_H

#include <stddef.h>

#include <memtrade/workload.h>

#include "wlcommon.h"
#ifndef MT_DIST_STANDIN
#include "train.h"
#endif

#define MT_DIST_PARAM_RANKS                                                                        \
    {                                                                                              \
        "ranks", MT_PARAM_INT, "2", 1, 64, NULL, "MPI ranks (processes) the run is started with"   \
    }

/* `optimizer`: every strategy updates its range with fp32 AdamW, 8-bit AdamW or Adafactor
 * (doptim.h; data_parallel and zero also in bf16, on the fp32 master weights). */
#define MT_DIST_PARAM_OPTIMIZERS                                                                   \
    {                                                                                              \
        "optimizer", MT_PARAM_CHOICE, "adamw", 0, 0, "adamw|adamw8|adafactor",                     \
            "fp32 AdamW, 8-bit block-wise AdamW or Adafactor over the owned range (ZeRO: ranges "  \
            "start on an 8-bit block / an Adafactor matrix; a pipeline stage holds whole "         \
            "matrices, a tensor-parallel rank parts of the split ones; with precision=bf16 "       \
            "beside fp32 master weights)"                                                          \
    }

/* The baseline training parameters, `ranks`, `eval_tokens` and `corpus`, in this order
 * (each plugin adds MT_DIST_PARAM_OPTIMIZERS). Declaring `corpus` lets the harness count
 * the corpus every rank holds whole in the plan's data category, as for other workloads. */
#define MT_DIST_BASE_PARAMS                                                                        \
    MT_WL_PARAM_MODEL, MT_WL_PARAMS_ARCH, MT_WL_PARAM_STEPS,                                       \
        {"batch",                                                                                  \
         MT_PARAM_INT,                                                                             \
         "16",                                                                                     \
         1,                                                                                        \
         4096,                                                                                     \
         NULL,                                                                                     \
         "sequences per step over all ranks (a data-parallel rank trains on batch/ranks)"},        \
        MT_WL_PARAM_LR, MT_WL_PARAM_SEED, MT_DIST_PARAM_RANKS,                                     \
    {                                                                                              \
        "eval_tokens", MT_PARAM_INT, "65536", 0, 1e12, NULL,                                       \
            "validation tokens (bytes by default) scored on rank 0 (0 = the whole split)"          \
    }                                                                                              \
    , MT_WL_PARAM_CORPUS

/* `precision` (data_parallel, zero): fp32, or bf16 mixed precision (train.h). */
#define MT_DIST_PARAM_PRECISION                                                                    \
    {                                                                                              \
        "precision", MT_PARAM_CHOICE, "fp32", 0, 0, "fp32|bf16",                                   \
            "bf16: bf16 weights, gradients and gradient traffic; fp32 master weights in AdamW"     \
    }

#ifdef MT_DIST_STANDIN
/* A build without MPI (CMakeLists.txt) compiles each plugin's file with MT_DIST_STANDIN
 * set to the reason: the same name, summary and parameter table, so `memtrade list` and
 * `describe` show the workload and a sweep naming it parses, but the descriptor says it
 * is unavailable (ABI 1.2) and the harness refuses to run it; run() fails with the reason
 * should an older harness try. Nothing here needs MPI. MT_DIST_STANDIN_TAIL is what
 * follows `.check =` in the descriptor (no check(), then the reason); it is expanded
 * before MT_WL_DESCRIPTOR_CHECK substitutes it, so its comma is the initializer's. */
#define MT_DIST_STANDIN_TAIL NULL, .unavailable = MT_DIST_STANDIN
#define MT_DIST_WORKLOAD(NAME, SUMMARY, STRATEGY, PARAMS)                                          \
    static int run(struct mt_ctx *ctx)                                                             \
    {                                                                                              \
        return mt_error(ctx, "workload '%s' is unavailable: %s", NAME, MT_DIST_STANDIN);           \
    }                                                                                              \
    MT_WL_DESCRIPTOR_CHECK(NAME, SUMMARY, PARAMS, "ranks", NULL, run, MT_DIST_STANDIN_TAIL)
#else
/* The body of every distributed plugin's run(): see above. Returns 0 or -1 (with
 * mt_error). Failures are agreed on by every rank before MPI is finalised, so none waits
 * forever for another; a rank that crashes takes the job down (MPI_ERRORS_ARE_FATAL,
 * mpirun). */
int mt_dist_plugin_run(struct mt_ctx *ctx, enum mt_dist_strategy strategy);

/* Per-rank peak estimate for the scheduler: a data-parallel rank's training slabs (an
 * upper bound for the sharded strategies) + corpus + allowance. */
size_t mt_dist_plugin_estimate(struct mt_ctx *ctx);

/* The plan() hook (ABI 1.4) of a distributed plugin: every rank's training ledger per
 * category (train.h's mt_dist_plan_rank, the sizing the run allocates through), as phase
 * "train" for rank 0 and "train_r<k>" for the first rank k of each other distinct plan
 * (pipeline stages, uneven ZeRO slices); more distinct plans than phases fold into
 * "train_max_rest" (per-category maxima). Reads the model rows, steps, batch, ranks,
 * optimizer and the strategy's knobs. Returns 0 or -1 after mt_error (the job's shape
 * errors, as the run would give them). */
int mt_dist_plugin_plan(struct mt_ctx *ctx, enum mt_dist_strategy strategy,
                        struct mt_mem_plan *out);

/* Defines the whole of a distributed plugin after its parameter table PARAMS (an array
 * that starts with MT_DIST_BASE_PARAMS): a static run() that is mt_dist_plugin_run with
 * STRATEGY, a static plan() that is mt_dist_plugin_plan with it, and the exported
 * descriptor with `ranks` as its ranks parameter and mt_dist_plugin_estimate. Use it
 * once, at the end of the plugin's file. */
#define MT_DIST_WORKLOAD(NAME, SUMMARY, STRATEGY, PARAMS)                                          \
    static int run(struct mt_ctx *ctx)                                                             \
    {                                                                                              \
        return mt_dist_plugin_run(ctx, STRATEGY);                                                  \
    }                                                                                              \
    static int plan(struct mt_ctx *ctx, struct mt_mem_plan *out)                                   \
    {                                                                                              \
        return mt_dist_plugin_plan(ctx, STRATEGY, out);                                            \
    }                                                                                              \
    MT_WL_DESCRIPTOR_PLAN(NAME, SUMMARY, PARAMS, "ranks", mt_dist_plugin_estimate, run,            \
                          mt_wl_check_model, plan)
#endif

#endif
