/* shard.h — one rank's piece of the reference GPT: a range of layers (pipeline stages),
 * optionally split Megatron-style over tensor-parallel ranks; its layers run the one
 * transformer block (block.h), whose linear hooks add the tensor-parallel reductions.
 *
 * What it is for: the model state the distributed strategies hold per rank, laid out so
 * each strategy can work on it: all local parameters in one dense flat vector ordered
 * [wte][wpe][layer l0 .. l1-1, 12 tensors each][lnf_w lnf_b] (a layer is a contiguous
 * range, so gradient buckets follow the backward); activations for `slots` micro-batches
 * in flight; a backward that reports each finished gradient range (overlapped all-reduce,
 * ZeRO-2 reduce-scatter). The math equals mt_gpt_forward/backward (the same block, and
 * the same order around it for one unsplit shard); tests compare the two.
 * What it is not for: communication between stages or data-parallel ranks (the
 * strategies in train.c do that), optimizer state, or evaluation (assemble a full
 * struct mt_gpt with mt_shard_map and use eval.h).
 *
 * Tensor parallelism (tp > 1): rank tp_rank holds heads [tp_rank*NH/tp, ...) of q, k and v
 * (rows of qkv_w), the matching columns of attproj_w, rows tp_rank*4C/tp.. of fc_w/fc_b
 * and the matching columns of fcproj_w; LayerNorms, projection biases, embeddings and the
 * LM head are replicated. Per layer the forward all-reduces the two projection outputs and
 * the backward the two LayerNorm-output gradients, through the shard's mt_dist.
 * The tied embedding: a shard holding the first layer (embed) or the head holds wte.
 */
#ifndef MT_DIST_SHARD_H
#define MT_DIST_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "gpt.h"

struct mt_shard_spec {
    struct mt_gpt_config cfg;
    size_t l0, l1;        /* layers [l0, l1) */
    int embed, head;      /* holds the embeddings (first stage) / final LN + LM head (last) */
    size_t tp, tp_rank;   /* tensor-parallel degree (divides n_head) and this rank's index */
    size_t B, T;          /* micro-batch shape */
    size_t slots;         /* micro-batches whose activations are kept at once */
    int grad_window;      /* 1: no full gradient slab, only a one-layer window (ZeRO-2) */
    int bf16_weights;     /* 1: weights stored in bf16 (wbf, MT_MEM_WEIGHTS); params is then
                           * an fp32 window (workspace) of the embeddings, one layer and the
                           * final LayerNorm, decoded from wbf as forward/backward reach them */
    int gathered_weights; /* 1 (ZeRO-3): no full weights; params is the same window (under
                           * MT_MEM_WEIGHTS), filled through the shard's `load` callback
                           * (the owners' all-gather) as forward/backward reach them */
    int prefetch;         /* gathered_weights: two layer windows; while layer i computes,
                           * the next one in pass order (i+1 forward, i-1 backward) is
                           * gathered into the other (load_start .. load_finish) */
};

/* The spec of one rank that holds the whole model (every layer, the embeddings and the
 * head, no tensor split, one slot, full fp32 weights and gradients) for micro-batches of
 * B x T: the single-process engine, and where each strategy's spec starts from. */
struct mt_shard_spec mt_shard_spec_whole(const struct mt_gpt_config *cfg, size_t B, size_t T);

/* Fills dst with the weights of flat range [lo, hi) (gathered_weights shards). */
typedef void (*mt_shard_load_fn)(void *user, size_t lo, size_t hi, float *dst);
/* prefetch: load_start begins filling dst with flat range [lo, hi) and returns at once;
 * load_finish(user) waits until it is there. One is in flight at a time. */
typedef void (*mt_shard_finish_fn)(void *user);

/* Called by mt_shard_backward each time the gradients of flat range [lo, hi) are final
 * for this micro-batch; g holds them (valid until the callback returns when grad_window
 * is set, else g = grads + lo). Ranges arrive in descending flat order. */
typedef void (*mt_shard_ready_fn)(void *user, size_t lo, size_t hi, float *g);

struct mt_shard_layer {
    float *w[MT_P_COUNT]; /* per-layer tensors only (ln1_w .. fcproj_b) */
    float *g[MT_P_COUNT];
};

struct mt_shard {
    struct mt_shard_spec s;
    struct mt_dist *tpd;            /* tensor-parallel communicator (NULL when tp == 1) */
    size_t C, Cl, NHl, F;           /* channels, local channels of q/k/v, local heads, local 4C */
    size_t n;                       /* floats in the flat parameter vector */
    float *params;                  /* (n) MT_MEM_WEIGHTS, or the bf16 decode window */
    size_t params_len;              /* floats allocated for params */
    uint16_t *wbf;                  /* (n) bf16 weights when bf16_weights, else NULL */
    float *grads;                   /* (n), or the window; NULL never */
    size_t grads_len;               /* floats allocated for grads */
    float *wte, *wpe, *lnfw, *lnfb; /* NULL when not held */
    float *gwte, *gwpe, *glnfw, *glnfb;
    struct mt_shard_layer *layer; /* nl = l1 - l0 */
    size_t layer_off, layer_len;  /* flat offset of layer l0, floats per layer */
    size_t head_off;              /* flat offset of lnf_w (n when no head) */
    float *acts, *dacts;          /* slabs: activations, activation gradients */
    size_t acts_len, dacts_len;
    int *tokens;                 /* (slots, 2, B*T) inputs then targets */
    size_t slot_len;             /* floats of activations per slot */
    mt_shard_load_fn load;       /* gathered_weights: set by the caller before the first forward */
    mt_shard_load_fn load_start; /* prefetch: the same, also set by the caller */
    mt_shard_finish_fn load_finish; /* prefetch */
    void *load_user;
    size_t n_win;      /* layer windows: 0 (all layers held), 1, or 2 (prefetch) */
    size_t win_tag[2]; /* local layer now in each layer window (nl: none) */
    size_t pend_layer; /* prefetch: the layer being gathered (nl: none) */
};

/* Visits the local flat vector as runs of the full model's tensors: local floats
 * [loff, loff+n) are global elements [goff, goff+n) of tensor p (mt_gpt layout). Runs
 * come in local order; replicated tensors are visited by every shard. `owner` is 1 for
 * the one shard that counts a replicated run in a global norm (tp_rank 0; for wte the
 * embedding shard). Needs only the spec, so one rank can map every rank's layout. */
typedef void (*mt_shard_visit_fn)(void *user, enum mt_gpt_param p, size_t goff, size_t loff,
                                  size_t n, int owner);
void mt_shard_map(const struct mt_shard_spec *s, mt_shard_visit_fn f, void *user);
/* The same runs grouped: `rows` runs of n floats, the i-th at global goff + i * gstride and
 * local loff + i * n (a column part of attproj_w / fcproj_w is one call of C rows; every
 * other call has rows = 1). mt_shard_map is this with each row visited on its own; the
 * optimizer's plan (doptim.h) sizes a column part from one call, without the C rows. */
typedef void (*mt_shard_rows_fn)(void *user, enum mt_gpt_param p, size_t goff, size_t loff,
                                 size_t n, size_t rows, size_t gstride, int owner);
void mt_shard_map_rows(const struct mt_shard_spec *s, mt_shard_rows_fn f, void *user);
/* Floats in the flat parameter vector of a spec. */
size_t mt_shard_num_params(const struct mt_shard_spec *s);

/* The lengths of a shard's slabs (floats unless said), as mt_shard_create allocates them:
 * the one sizing of the shard, which the memory plan (train.h's mt_dist_plan_rank) reads
 * too. */
struct mt_shard_sizes {
    size_t n;                     /* floats in the flat parameter vector */
    size_t layer_off, layer_len;  /* flat offset of layer l0, floats per layer */
    size_t head_off;              /* flat offset of lnf_w (n when no head) */
    size_t n_win;                 /* layer windows of the weights: 0, 1 or 2 */
    size_t params_len, grads_len; /* params (or its window), grads (or its window) */
    size_t slot_len, acts_len;    /* activations per slot, all slots */
    size_t dacts_len;             /* activation gradients */
    size_t tokens_len;            /* ints of token ids: slots x (inputs, targets) */
};
/* Contract: fills *z for spec s (a spec mt_shard_create accepts). Pure. */
void mt_shard_sizes(const struct mt_shard_spec *s, struct mt_shard_sizes *z);
/* Contract: adds to b[] the bytes per memory category that mt_shard_create books in the
 * ledger for spec s (weights or their window, bf16 weights, gradients or their window,
 * activations, activation gradients, token ids). Pure. */
void mt_shard_bytes(const struct mt_shard_spec *s, size_t b[MT_MEM_CAT_COUNT]);

/* Contract: 0 when mt_shard_create accepts spec s (has_tpd: a tensor-parallel
 * communicator is given), else -1 with its message (the block options the engine does
 * not implement, a bad split). Pure; the plan checks what the run would refuse. */
int mt_shard_check(const struct mt_shard_spec *s, int has_tpd, char *err, size_t errlen);

/* Allocates a shard (every slab through d's ledger, under its category) with zeroed
 * weights. tpd carries the tensor-parallel all-reduces (NULL when tp == 1). Returns 0 or
 * -1 with a message (bad spec, out of memory). */
int mt_shard_create(struct mt_shard **out, const struct mt_shard_spec *s, struct mt_dist *d,
                    struct mt_dist *tpd, char *err, size_t errlen);
void mt_shard_free(struct mt_shard *sh, struct mt_dist *d);

/* The weights mt_gpt_init(seed) gives the full model, restricted to this shard (fp32
 * params only: with bf16_weights, initialise a flat vector and pack it into wbf). */
void mt_shard_init(struct mt_shard *sh, uint64_t seed);
/* The same into flat (mt_shard_num_params(spec) floats, laid out as params). */
void mt_shard_init_flat(const struct mt_shard_spec *spec, float *flat, uint64_t seed);
/* Only flat elements [lo, hi) of it, into dst (hi - lo floats): a ZeRO-3 rank's shard,
 * without ever holding the full vector. */
void mt_shard_init_range(const struct mt_shard_spec *spec, float *dst, size_t lo, size_t hi,
                         uint64_t seed);

/* Forward of micro-batch `slot`. Shards with `embed` read inputs (B*T token ids; others
 * read mt_shard_input()); shards with `head` need targets and add the sum of the losses
 * to *loss_sum (and keep the probabilities for backward); others leave their output in
 * mt_shard_output(). With logits != NULL (head only) the raw logits (B*T*V) are copied
 * out before the loss. Returns 0 or -1 with a message (bad token). */
int mt_shard_forward(struct mt_shard *sh, size_t slot, const int *inputs, const int *targets,
                     double *loss_sum, float *logits, char *err, size_t errlen);
float *mt_shard_input(struct mt_shard *sh, size_t slot);  /* (B, T, C) stage input */
float *mt_shard_output(struct mt_shard *sh, size_t slot); /* (B, T, C) stage output */

/* Backward of micro-batch `slot`, accumulating into the gradients (zero them with
 * mt_shard_zero_grad). Head shards start from the loss with gradient scale dloss (1 / the
 * tokens the loss is averaged over); others start from mt_shard_dres(), which the caller
 * fills with the gradient of the stage output. Afterwards non-embed shards leave the
 * gradient of their input in mt_shard_dres(). `ready` (may be NULL) sees each final
 * range. */
void mt_shard_backward(struct mt_shard *sh, size_t slot, float dloss, mt_shard_ready_fn ready,
                       void *user);
float *mt_shard_dres(struct mt_shard *sh);
void mt_shard_zero_grad(struct mt_shard *sh);

#endif
