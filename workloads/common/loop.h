/* loop.h — the one training loop: every plugin that trains (baseline, the training-memory
 * plugins, the distributed strategies, distill's student, prune's fine-tune) runs its steps
 * here, on its engine, through hooks.
 *
 * What it is for: what a training step is, whatever the engine: the batch stream (one
 * mt_rng, one global batch of `batch` x `seq` windows a step, so a global batch is the same
 * tokens whatever the ranks or micro-batches), the learning-rate schedule
 * (mt_gpt_lr_at), gradient accumulation (micro-batches of batch / accum_steps, or of
 * micro_rows with a smaller last one, gradients of
 * the global batch's mean loss), loss scaling (none, fixed, dynamic: halve and skip the
 * step on overflow, double after scale_window good steps), and the reporting: region
 * `region` over the loop and "forward" / "backward" / "optimizer" per step (or "pipeline"
 * where forward and backward interleave), the per-step loss series, progress, a log line
 * every 100 steps, the mean loss of the last 10 steps.
 * What it is not for: the math. The engine's hooks (mt_loop_engine) do forward, backward,
 * the gradient reduction across ranks and the update (clipping and AdamW); the method's
 * hooks (mt_loop_method) add what a method changes: a loss term (distillation), masks
 * (pruning), per-step observations (the training-memory plugins' fragmentation).
 * mt_loop_gpt_engine is the engine of the reference model (struct mt_gpt).
 *
 * Errors: 0, or -1 with a message in err. Thread safety: the run() thread only; hooks are
 * called from it, in the order documented below.
 */
#ifndef MT_LOOP_H
#define MT_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include <memtrade/workload.h>

#include "data.h"
#include "gpt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One micro-batch as the hooks see it. */
struct mt_loop_batch {
    const int *in, *tg; /* its rows x T inputs and targets (rows of the global batch) */
    size_t rows, T;     /* its shape */
    size_t k;           /* which micro-batch of the step, 0 .. accum_steps - 1 */
    size_t step;        /* which step, from 0 */
    size_t tokens;      /* tokens of the whole global batch: the gradient's normaliser */
};

/* What an engine does for the loop. `self` is passed to every hook. Per step the loop
 * calls: zero_grad; for each micro-batch forward, [method loss], backward; reduce;
 * [method masks]; update; [method masks]; [method after_step]. */
struct mt_loop_engine {
    void *self;
    /* Required. Forward of micro-batch b; *loss = its contribution to the step's loss
     * before the loop divides by accum_steps (a local engine: the mean over its tokens). */
    int (*forward)(void *self, const struct mt_loop_batch *b, double *loss, char *err,
                   size_t errlen);
    /* Backward of the last forward, accumulating the gradients of
     * scale * sum(token losses) / b->tokens. NULL: forward did the backward too (a
     * pipeline's interleaved schedule), and the loop's region is "pipeline". */
    int (*backward)(void *self, const struct mt_loop_batch *b, float scale, char *err,
                    size_t errlen);
    /* Optional. Zeroes the gradients before a step's first micro-batch. */
    void (*zero_grad)(void *self);
    /* Optional, collective (several ranks): called every step, also when this rank's
     * forward or backward failed (failed != 0), so that every rank agrees; returns -1 with
     * a message when any rank failed. Otherwise combines the gradients across ranks and
     * may replace *loss (this rank's) by the global batch's. */
    int (*reduce)(void *self, size_t step, int failed, double *loss, char *err, size_t errlen);
    /* Required. The update at learning rate lr on gradients multiplied by `scale` (the loss
     * scale: divide, clip, AdamW). Returns 1 when it skipped the step (non-finite
     * gradients: it zeroes them), else 0. */
    int (*update)(void *self, const struct mt_gpt_recipe *r, float lr, float scale);
};

/* What a method adds (every hook optional). `user` is passed to each. */
struct mt_loop_method {
    void *user;
    /* After each forward, before its backward: may change what the backward
     * differentiates (distillation folds the teacher's term into the logits' gradient) and
     * *loss accordingly. */
    int (*loss)(void *user, const struct mt_loop_batch *b, double *loss, char *err, size_t errlen);
    /* Before the update (on the gradients) and after it (on the weights): sparsity masks. */
    void (*masks)(void *user);
    /* After each step with its loss: per-step observations and series. */
    void (*after_step)(void *user, size_t step, double loss);
};

enum mt_loss_scale { MT_LS_NONE, MT_LS_DYNAMIC, MT_LS_FIXED };

struct mt_loop_opts {
    const struct mt_gpt_recipe *recipe; /* steps, batch (global), seq, schedule */
    uint64_t batch_seed;   /* the stream's mt_rng seed (mt_loop_batch_seed: the baseline's) */
    size_t accum_steps;    /* micro-batches a step (must divide batch unless micro_rows); 0 = 1 */
    size_t micro_rows;     /* 0: batch / accum_steps rows each; else this many rows in each
                            * micro-batch but the last, which holds the rest (accum_steps
                            * must be ceil(batch / micro_rows)); each one's loss weighs by
                            * its rows, the gradient's normaliser stays the batch's tokens */
    enum mt_loss_scale ls; /* loss scaling */
    float ls_value;        /* FIXED: the scale; DYNAMIC: the first scale */
    size_t scale_window;   /* DYNAMIC: good steps before the scale doubles (0 = 1) */
    int *batch;            /* the caller's 2 x batch x seq ints (its accounting), or NULL:
                            * the loop allocates them (data category; needs a ctx) */
    const char *region;    /* region over the whole loop; NULL = "train" */
    const char *series;    /* per-step loss series; NULL = none */
    float *losses;         /* NULL, or `steps` floats: each step's loss */
};

struct mt_loop_result {
    size_t steps, skipped; /* steps run; steps skipped by loss scaling */
    double seconds;        /* wall time of the loop */
    double final_loss;     /* mean loss of the last 10 steps */
    float final_scale;     /* the loss scale at the end (1 without scaling) */
};

/* The seed of the baseline's batch stream for a run's `seed`: every loop that must see the
 * baseline's batches, in its order, uses it (a stream apart from the init's). */
uint64_t mt_loop_batch_seed(uint64_t seed);

/* Runs o->recipe->steps steps as described at the top, reporting to ctx (NULL: nothing
 * reported: tests driving an engine directly). The batch of each step comes from the
 * training split `data` (n bytes) with one mt_rng seeded o->batch_seed. *res may be NULL.
 * Returns 0, or -1 with the message in err (a hook's, or the loop's: out of memory, an
 * accum_steps that does not divide the batch). */
int mt_loop_run(struct mt_ctx *ctx, const struct mt_loop_opts *o, const struct mt_loop_engine *e,
                const struct mt_loop_method *method, const uint8_t *data, size_t n,
                struct mt_loop_result *res, char *err, size_t errlen);

/* Contract: mt_loop_run with the batches drawn from token ids (a corpus's train_tokens,
 * any tokenizer; mt_loop_run is this on a byte view, bit for bit). */
int mt_loop_run_tokens(struct mt_ctx *ctx, const struct mt_loop_opts *o,
                       const struct mt_loop_engine *e, const struct mt_loop_method *method,
                       const struct mt_tokens *data, struct mt_loop_result *res, char *err,
                       size_t errlen);

/* The engine of the reference model m (TRAIN mode, batch >= the micro-batch): forward
 * with targets, backward, mt_gpt_zero_grad, mt_gpt_adamw_step. e keeps the pointer. */
void mt_loop_gpt_engine(struct mt_loop_engine *e, struct mt_gpt *m);

/* device=cuda (libmemtrade-cuda.so, built with MT_CUDA; wlcommon.c opens it on demand):
 * trains the GPU twin (cuda/cgpt.h) of host model m (any mode with weights): creates it
 * for o->micro_batch (0: r->batch) x r->seq rows with GEMMs in o->precision (fp32, tf32,
 * bf16; NULL fp32), keeping block activations every o->every blocks (0 or 1: all; more:
 * recomputed in backward), uploads m's weights, calls loop(user, e, info) with the twin's
 * engine (the reference model's hooks on mt_cuda_gpt_forward, _backward, _zero_grad,
 * _adamw_step; the update reports a skipped step on non-finite gradients) and its device
 * bytes, then copies the trained weights back into m and frees the twin.
 * Returns 0; -1 with a message in err (no device, out of device memory), or loop's
 * non-zero return (its error is its own). */
struct mt_cuda_twin_opts {
    const char *precision; /* fp32|tf32|bf16; NULL: fp32 */
    size_t micro_batch;    /* sequences a forward (0: r->batch) */
    size_t every;          /* checkpoint interval (0, 1: every block kept) */
};
struct mt_cuda_twin_info {
    size_t bytes[MT_MEM_CAT_COUNT];  /* device bytes per category: the slabs and extras */
    size_t total;                    /* their sum */
    const size_t *recomputed_blocks; /* blocks recomputed so far (valid during loop) */
};
typedef int (*mt_loop_cuda_fn)(void *user, const struct mt_loop_engine *e,
                               const struct mt_cuda_twin_info *info);
int mt_cuda_train_twin(struct mt_gpt *m, const struct mt_gpt_recipe *r,
                       const struct mt_cuda_twin_opts *o, mt_loop_cuda_fn loop, void *user,
                       char *err, size_t errlen);
typedef int (*mt_cuda_train_twin_fn)(struct mt_gpt *m, const struct mt_gpt_recipe *r,
                                     const struct mt_cuda_twin_opts *o, mt_loop_cuda_fn loop,
                                     void *user, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
