/* train.h — the four distributed training strategies over model shards (shard.h):
 * data parallel, ZeRO stage 1/2/3, Megatron tensor parallel and GPipe/1F1B pipeline.
 *
 * What it is for: one call trains the reference GPT for a recipe on every rank of an
 * mt_dist communicator and returns what the plugins report and the tests check: the
 * global loss per step (equal on every rank), the final full parameters assembled on
 * rank 0, the logits of the first forward, time split into compute and communication,
 * and the ledger's peaks. Every strategy computes the same mathematical step as one
 * process running mt_gpt_train_step on the global batch: loss averaged over the global
 * batch's tokens, global gradient norm clipped, AdamW with decay on 2-D weights only.
 * The steps run in the one training loop (workloads/common/loop.h): this file is its
 * engine (forward, backward, the reduction across ranks, the update), so the batch
 * stream, schedule, progress and the train_loss series (rank 0) are the loop's.
 * What it is not for: talking to the harness (plugin.c), or evaluation.
 *
 * Data: every step draws the global batch of B windows from the training split with one
 * mt_rng seeded mt_loop_batch_seed(seed), the baseline's batch stream (mt_batch_sample);
 * a data-parallel rank r of N trains on rows [r B/N, (r+1) B/N), so the union of the
 * ranks' batches is the batch the baseline draws: the same model, steps, global batch and
 * seed train the baseline's model.
 *
 * Mixed precision (job.bf16; data parallel and ZeRO): the weights are stored in
 * bf16 (weights), decoded to fp32 one layer at a time for compute (workspace window);
 * backward accumulates a layer's gradients in an fp32 window and rounds them into bf16
 * gradient storage as the layer finishes; the all-reduce (DP) or reduce-scatter (ZeRO)
 * moves bf16 (2 bytes per element; dist.h's bf16 sum; ZeRO-2 rounds each finished range
 * into a bf16 window and reduce-scatters it into a bf16 gradient slice); AdamW decodes the reduced
 * bf16 gradients and updates fp32 master weights of the rank's range (optimizer, next to m and v),
 * which are rounded back into the bf16 weights (ZeRO: then all-gathered as bf16). Final parameters
 * returned are the bf16 weights, decoded. ZeRO-3 in bf16 keeps only its bf16 slice
 * (weights), gathers each range in bf16 into a stage (workspace) and decodes it into the
 * fp32 windows; its update rounds the master into that slice (no all-gather).
 */
#ifndef MT_DIST_TRAIN_H
#define MT_DIST_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "dist.h"
#include "gpt.h"
#include "optim.h"

enum mt_dist_strategy { MT_DIST_DP, MT_DIST_ZERO, MT_DIST_TP, MT_DIST_PP };

struct mt_dist_job {
    enum mt_dist_strategy strategy;
    struct mt_gpt_config cfg;
    struct mt_gpt_recipe recipe; /* batch = global B, seq = T, steps, lr, ... */
    uint64_t seed;               /* weights (as mt_gpt_init) and data */
    struct mt_tokens data;       /* training split (the corpus's train_tokens) */
    double bucket_mb;            /* DP: all-reduce buckets of at most this many MiB; 0 = one */
    int overlap;                 /* DP: start each bucket's MPI_Iallreduce during backward */
    int zero_stage;              /* ZeRO: 1, 2 or 3 (3: weights sharded, gathered per layer) */
    int zero_prefetch;           /* ZeRO-3: gather the next layer (non-blocking) while one computes,
                                  * into a second layer window */
    int bf16;                    /* DP, ZeRO: mixed precision (see above) */
    enum mt_optim_kind optimizer; /* DP, ZeRO (fp32): adamw (default), or adamw8 / adafactor
                                   * over the rank's range (doptim.h: ZeRO's ranges start
                                   * on an 8-bit block / an Adafactor unit) */
    size_t micro_batches;         /* PP: micro-batches per step (divides B) */
    int one_f_one_b;              /* PP: 1F1B schedule instead of GPipe */
    int crash_rank;               /* tests: this rank raises SIGSEGV in step 1; -1 = none */
    struct mt_ctx *ctx;           /* progress reports (may be NULL) */
};

struct mt_dist_result {
    float *losses;    /* in: NULL or steps floats; out: global mean loss per step */
    float *params;    /* in: NULL or (rank 0) mt_gpt_num_params floats; out: final
                       * weights in mt_gpt layout, assembled on rank 0 */
    float *logits;    /* in: NULL or B*T*V floats on ranks that hold the LM head
                       * (TP: all, PP: the last stage); out: raw logits of step 0 */
    double train_s;   /* wall time of the training loop */
    double compute_s; /* train_s minus time inside MPI calls */
    size_t tokens;    /* tokens trained on (global) */
    float final_loss; /* mean global loss of the last 10 steps (the loop's train_loss) */
    /* predictions of the ZeRO paper's formula for this rank (bytes; fp32 Adam: K = 8) */
    double zero_pred_optimizer, zero_pred_gradients;
    double zero_pred_weights;   /* ZeRO-3: 4 psi / N (0 otherwise: the whole model, 4 psi) */
    size_t grad_window_bytes;   /* ZeRO-2, 3, bf16: the one-layer gradient window (workspace) */
    size_t weight_window_bytes; /* bf16: the fp32 decode window of the weights (workspace);
                                 * ZeRO-3: the gather window, same shape (weights) */
    double allgather_per_step;  /* ZeRO-3: bytes this rank sent in the layer all-gathers per
                                 * step (ring model, see dist.h); 0 otherwise */
    size_t flat_params;         /* floats in this rank's flat parameter vector */
    /* this rank's ledger and communication over the training loop only (before the
     * parameters are assembled on rank 0) */
    size_t peak[MT_MEM_CAT_COUNT], peak_total;
    double comm_s, bytes_sent, bytes_recv;
    uint64_t comm_calls;
};

/* The optimizer state rank `rank` of `nranks` holds for job, exactly as mt_dist_train
 * allocates it: its flat range [lo, hi), the bytes under MT_MEM_OPTIMIZER (adamw: m and v,
 * 8 a float, with bf16 also the fp32 master, 12; adamw8 / adafactor: doptim.h's state)
 * and under MT_MEM_WORKSPACE (adafactor's column sums). Pure (no MPI). Returns 0, or -1
 * with a message (the job's shape errors, as mt_dist_train gives them; its data is not
 * read). */
struct mt_dist_optim_plan {
    size_t lo, hi, state_bytes, scratch_bytes;
};
int mt_dist_optim_plan(const struct mt_dist_job *job, int nranks, int rank,
                       struct mt_dist_optim_plan *p, char *err, size_t errlen);

/* The memory plan of rank `rank` of `nranks` for job: adds to bytes[] what its ledger
 * holds through the training loop per category (mt_dist_result's peak[], the plugins'
 * train_peak_<category>_bytes): the shard's slabs (mt_shard_bytes), the optimizer state,
 * the ZeRO slices and gather/gradient windows, the bf16 copies, the batch and the
 * communication buffers under the category they are booked in (bf16 gradient window,
 * bf16 gather stage, the pipeline's tied-embedding gradient: workspace). The same
 * functions size run_setup's allocations, so the plan is exact; nothing of the model is
 * allocated (O(units) for adamw8/adafactor's layout). The job's data is not read: its
 * errors are the shape's (mt_dist_train's others). Pure (no MPI). Returns 0, or -1 with a
 * message. The same holds for mt_dist_optim_plan above. */
int mt_dist_plan_rank(const struct mt_dist_job *job, int nranks, int rank,
                      size_t bytes[MT_MEM_CAT_COUNT], char *err, size_t errlen);

/* Trains as described above. Collective: every rank of d calls it with the same job.
 * Checks the job against d->nranks first (e.g. ranks must divide the batch for DP/ZeRO,
 * the heads for TP, the layers for PP) and fails on every rank alike. Returns 0, or -1
 * with a message. */
int mt_dist_train(struct mt_dist *d, const struct mt_dist_job *job, struct mt_dist_result *res,
                  char *err, size_t errlen);

#endif
