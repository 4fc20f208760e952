/* tmodel.h — the reference GPT's training state as the memory-saving workloads need it:
 * micro-batches, activation checkpointing, bf16/fp16 storage and pooled or per-step
 * allocation of activations, all in one engine so the knobs compose.
 *
 * What it is for: forward + backward of one micro-batch with the model's own kernels
 * (kernels.h) in the model's own order, so an fp32 engine with every = 1 reproduces
 * mt_gpt_train_step bit for bit; gradients accumulate across micro-batches; one AdamW
 * step. Memory is planned the gpt.c way: mt_tmodel_plan gives every category's bytes
 * without allocating and the pooled engine allocates exactly that.
 * - Checkpointing (`every`): the residual stream (block outputs) is always kept; the
 *   other activations of a block are kept only for every `every`-th block counted from
 *   the top (ceil(L/every) slots); the blocks in between are recomputed from their stored
 *   input during backward, into the slot of their group (which the group's top block has
 *   finished with). every = 1 keeps all, every = L keeps one block.
 * - Precision: fp32, or bf16/fp16 storage of weights, parameter gradients and kept
 *   activations (each stored tensor is rounded when produced, and the forward goes on
 *   with the rounded values, so recomputation is exact); compute is fp32 on unpacked
 *   copies (a 16-bit GEMM with fp32 accumulation, numerically), in a few fp32 buffers
 *   shared by the tensors of a block that are never needed together. Optimizer state stays
 *   fp32; master_weights adds an fp32 copy of the weights the update goes to (counted as
 *   optimizer memory); without it the update is applied to the 16-bit weights.
 *   Activation gradients, LayerNorm statistics, logits and the final LayerNorm output
 *   stay fp32.
 *   With bf16 on a CPU with AVX512-BF16 every linear layer (the LM head included) runs
 *   as oneDNN bf16 GEMMs with fp32 accumulation (bf16mm.h): forward on the bf16 input and
 *   the 16-bit weights in place; backward dinp = bf16(dout) @ W and dW += bf16(dout)^T @
 *   in on the stored bf16 input, into the fp32 gradient stage; bias gradients are fp32
 *   column sums of dout. bf16(dout) lives in a scratch of the workspace.
 * - Allocation: pool = one slab per category, allocated once; malloc = every activation
 *   and activation-gradient tensor malloc'd when produced and freed after its last use,
 *   every step.
 * What it is not for: data, schedules or reporting (trainloop.h), evaluation (export the
 * weights into a mt_gpt and use eval.h).
 *
 * Thread safety: one engine per thread; kernels use OpenMP with the caller's threads.
 */
#ifndef MT_TRAIN_TMODEL_H
#define MT_TRAIN_TMODEL_H

#include <stddef.h>
#include <stdint.h>

#include <memtrade/memcat.h>

#include "gpt.h"
#include "half.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mt_tmodel_opts {
    size_t micro_batch; /* sequences per forward/backward (the activation shape) */
    size_t seq;         /* T <= cfg->seq_len */
    enum mt_prec prec;
    int master_weights; /* with 16-bit storage: keep fp32 master weights */
    size_t every;       /* checkpoint interval, 1..n_layer */
    int pool;           /* 1: pooled slabs; 0: per-step malloc/free of activations */
    /* bf16 GEMMs: 0 = oneDNN's bf16 matmul on the 16-bit weights in place, forward and
     * backward, where the CPU runs it natively (mt_bf16mm_native); 1 = always fp32 GEMMs
     * on unpacked copies (the reference: the forward's products are the same, other
     * summation order; the backward's dout stays fp32 instead of being rounded to bf16). */
    int emulate_bf16_gemm;
    /* Optional phase callback: called with ("recompute", 1) before and (.., 0) after each
     * block recomputation. */
    void (*region)(void *user, const char *name, int begin);
    void *region_user;
    /* The optimizer (optim.h): adamw (default: fp32 m and v in RAM, the reference's
     * update bit for bit), adamw8 or adafactor; offload = 1 keeps its state in a file of
     * scratch_dir (NULL: the working directory), read and written chunk by chunk. */
    enum mt_optim_kind optimizer;
    int offload;
    const char *scratch_dir;
    /* recompute=selective: the attention probabilities (B x NH x T x T a kept block) are
     * not kept; the backward recomputes the attention core from the stored qkv (block.h).
     * fp32: one buffer for all blocks instead of one per slot; 16-bit: no stored copy
     * (the fp32 work buffer suffices). Losses and gradients are bit-identical. With
     * attention=flash there is nothing to drop (valid, no change). */
    int selective;
};

/* Bytes per memory category (enum mt_mem_cat) of an engine, without allocating; in
 * malloc mode the activation and activation-gradient figures are what the pool would
 * hold (the per-step allocations never hold more). */
struct mt_tmodel_plan {
    size_t bytes[MT_MEM_CAT_COUNT];
    size_t total;
    size_t n_slots;     /* blocks whose activations are kept */
    size_t optim_state; /* optimizer state bytes (in the file when offloaded) */
};
int mt_tmodel_plan(const struct mt_gpt_config *cfg, const struct mt_tmodel_opts *o,
                   struct mt_tmodel_plan *plan, char *err, size_t errlen);

/* What the engine allocated, counted by its own allocator (requested bytes). */
struct mt_tmodel_stats {
    size_t live[MT_MEM_CAT_COUNT], peak[MT_MEM_CAT_COUNT];
    size_t live_total, peak_total;
    size_t alloc_calls, free_calls;
    double recompute_s; /* time spent recomputing blocks */
    size_t recomputed_blocks;
    size_t grad_nonzero, grad_flushed; /* 16-bit gradient contributions, flushed ones */
    size_t bf16_gemms, bf16_fallbacks; /* oneDNN bf16 GEMMs run, and failed (fp32 then) */
    struct mt_optim_io optim_io;       /* offload=1: the file's figures (else zero) */
};

struct mt_tmodel;

/* Creates an engine for cfg and o with weights initialized like mt_gpt_init(seed).
 * Returns 0 and *out (free with mt_tmodel_free), or -1 with a message (bad options, out
 * of memory); nothing stays allocated on failure. */
int mt_tmodel_create(struct mt_tmodel **out, const struct mt_gpt_config *cfg,
                     const struct mt_tmodel_opts *o, uint64_t seed, char *err, size_t errlen);
void mt_tmodel_free(struct mt_tmodel *t);

/* Forward and backward of B <= micro_batch sequences of o->seq tokens, accumulating
 * into the parameter gradients d(loss_scale * sum(losses) / norm_tokens)/dparams
 * (norm_tokens = 0: B * T). Every target must be a valid token. *mean_loss gets the
 * mean loss of these sequences. Returns 0 or -1 with a message (bad token, bad shape). */
int mt_tmodel_forward_backward(struct mt_tmodel *t, const int *inputs, const int *targets, size_t B,
                               float loss_scale, size_t norm_tokens, float *mean_loss, char *err,
                               size_t errlen);
/* Forward only (the timing of the two halves is the caller's: see trainloop.c); the
 * loss is computed, backward must follow before the next forward. */
int mt_tmodel_forward(struct mt_tmodel *t, const int *inputs, const int *targets, size_t B,
                      float *mean_loss, char *err, size_t errlen);
int mt_tmodel_backward(struct mt_tmodel *t, float loss_scale, size_t norm_tokens, char *err,
                       size_t errlen);

/* 1 when an accumulated gradient is inf or NaN (a loss-scale overflow). */
int mt_tmodel_grads_nonfinite(const struct mt_tmodel *t);
/* Sets the accumulated gradients to zero (after a skipped step). */
void mt_tmodel_zero_grad(struct mt_tmodel *t);

/* One optimizer step (as mt_gpt_adamw_step: clipping after dividing by grad_div, bias
 * correction, decoupled decay on 2-D weights; o->optimizer's update) on the accumulated
 * gradients, which are zero afterwards. Returns the gradient norm before clipping (an
 * offload I/O error: see mt_tmodel_failed). */
float mt_tmodel_adamw(struct mt_tmodel *t, const struct mt_gpt_recipe *r, float lr, float grad_div);

/* 0, or -1 with the message of an optimizer step that failed (the offload file's I/O
 * error: the update hook cannot return it, so the engine keeps it, refuses the next
 * forward with it, and the caller checks here after its last step). */
int mt_tmodel_failed(const struct mt_tmodel *t, char *err, size_t errlen);

/* Copies the weights the forward uses (16-bit ones unpacked) into `params`, laid out as
 * a mt_gpt's weight slab of the same configuration (mt_gpt_memory(WEIGHTS) bytes). */
void mt_tmodel_export(const struct mt_tmodel *t, float *params);
/* Copies the accumulated parameter gradients (16-bit ones unpacked) into `grads`, in the
 * same layout (for tests comparing engines). */
void mt_tmodel_export_grads(const struct mt_tmodel *t, float *grads);

const struct mt_tmodel_stats *mt_tmodel_stats(const struct mt_tmodel *t);

#ifdef __cplusplus
}
#endif
#endif
