/* prune_model.h — pruning the reference GPT: calibration, masks, structured shrinking,
 * sparse packing and the linear hook that serves the pruned model.
 *
 * What it is for: the model-level half of the prune workload, callable without the
 * harness so tests can drive it: (1) calibration statistics from a few batches (input
 * activation norms through the linear hook for wanda; a Fisher estimate of the Hessian
 * diagonal from squared mini-batch gradients for OBD), (2) masks for the four linear
 * kinds of every block (q/k/v, attention projection, MLP in, MLP out) by magnitude, OBD,
 * wanda, N:M, or whole heads / MLP neurons, (3) applying and re-applying them (fine-tune
 * with a fixed mask), (4) packing the masked model: unstructured layers go to the
 * smallest mt_sparse format, structured ones to smaller dense matrices plus the indices
 * of the rows/columns they kept, and (5) a struct mt_gpt_linear_hook that multiplies
 * with the packed layers, so the dense linear weights can be freed.
 * What it is not for: the token embedding / LM head (tied, never pruned), LayerNorms and
 * biases (kept dense; structured pruning zeroes the biases of removed rows), reporting to
 * the harness (the plugin does that).
 *
 * Thread-safety: one thread per struct; kernels use OpenMP inside.
 */
#ifndef MT_PRUNE_MODEL_H
#define MT_PRUNE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "calib.h"
#include "gpt.h"
#include "prune_storage.h"
#include "sparse.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The prunable linear kinds of a block, in enum mt_linear order (the LM head is not). */
#define MT_PRUNE_KINDS 4

enum mt_prune_method {
    MT_PRUNE_MAGNITUDE = 0, /* |w| */
    MT_PRUNE_OBD = 1,       /* 0.5 * h * w^2, h = Fisher diagonal */
    MT_PRUNE_WANDA = 2,     /* |w| * ||x_col||_2; scope layer selects per output row */
    MT_PRUNE_HEADS = 3,     /* whole attention heads by summed wanda score */
    MT_PRUNE_NEURONS = 4,   /* whole MLP neurons by summed wanda score */
    MT_PRUNE_NM = 5,        /* N:M by magnitude in every group of M inputs */
    MT_PRUNE_SPARSEGPT = 6  /* OBS saliency w^2/[H^-1]_ii^2, kept weights compensated */
};

/* "magnitude|obd|wanda|heads|neurons|nm|sparsegpt" <-> enum; parse returns -1 when unknown. */
int mt_prune_method_parse(const char *name);
const char *mt_prune_method_name(enum mt_prune_method m);

struct mt_prune_opts {
    enum mt_prune_method method;
    double sparsity; /* fraction of prunable weights (or heads / neurons) to remove */
    int global;      /* 1: one threshold over all layers; 0: per layer (wanda: per row) */
    unsigned n, m;   /* NM, and SPARSEGPT when n > 0 (N:M instead of sparsity) */
};

/* Which statistics a method needs: bit 1 = activation norms, bit 2 = Fisher diagonal,
 * bit 3 = the inputs' Gram matrix (with the norms). */
#define MT_PRUNE_NEED_ACTS 1
#define MT_PRUNE_NEED_FISHER 2
#define MT_PRUNE_NEED_HESSIAN 4
int mt_prune_needs(enum mt_prune_method m);

/* Linear (layer l, kind k) is slot l * MT_PRUNE_KINDS + k in every per-layer array (the
 * slots of calib.h). */
struct mt_prune_calib {
    size_t n_slots;
    struct mt_calib acts; /* activation statistics (calib.h): act_sq, and gram for sparsegpt */
    float **fisher;       /* per slot: out_dim*in_dim mean squared gradient (or NULL) */
    size_t batches;       /* batches averaged into fisher */
};

/* Contract: the activation statistics method `method` needs (mt_prune_needs: sum of x^2
 * per input column, and the Gram matrix sum x x^T for sparsegpt) of every prunable linear
 * over `nbatch` forwards of `inputs` (nbatch x B x T token ids) on model m (INFER or
 * TRAIN), through the one calibration helper (mt_calib_collect). Allocates on first use
 * (workspace memory; free with mt_prune_calib_free). Returns 0 or -1 with a message. */
int mt_prune_calib_acts(struct mt_gpt *m, enum mt_prune_method method, const int *inputs,
                        size_t nbatch, size_t B, size_t T, struct mt_prune_calib *c, char *err,
                        size_t errlen);

/* Contract: Fisher diagonal: for each of the nbatch batches, the gradient of the mean
 * loss (forward + backward on a TRAIN-mode model), squared and averaged into c->fisher.
 * Gradients of m are overwritten; weights are not changed. Returns 0 or -1. */
int mt_prune_calib_fisher(struct mt_gpt *m, const int *inputs, const int *targets, size_t nbatch,
                          size_t B, size_t T, struct mt_prune_calib *c, char *err, size_t errlen);

void mt_prune_calib_free(struct mt_prune_calib *c);

/* A pruning decision for the whole model: one keep mask per slot over the dense weight
 * (out_dim x in_dim bytes), plus for structured methods the units kept. */
struct mt_prune_masks {
    size_t n_slots;
    uint8_t **keep;     /* per slot: out_dim*in_dim, 1 = keep */
    uint8_t **row_keep; /* per slot: out_dim, or NULL (structured: rows removed whole) */
    uint8_t **col_keep; /* per slot: in_dim, or NULL (structured: columns removed whole) */
};

/* Contract: chooses masks for model m's current weights per `o`, using `c` where the
 * method needs it (see mt_prune_needs; NULL otherwise). Returns 0, or -1 with a message
 * (missing statistics, N:M that does not divide a layer, allocation, sparsegpt: it
 * changes the weights, see mt_prune_sparsegpt). */
int mt_prune_select_masks(const struct mt_gpt *m, const struct mt_prune_opts *o,
                          const struct mt_prune_calib *c, struct mt_prune_masks *out, char *err,
                          size_t errlen);

#define MT_SPARSEGPT_BLOCK 128 /* columns per lazy block (N:M: rounded down to whole groups) */
#define MT_SPARSEGPT_DAMP 0.01 /* damping of the Hessian, times its mean diagonal */

/* Contract: SparseGPT on one matrix w[n*k] (row-major, out x in), in place: u is the
 * k x k upper factor of the damped inverse Hessian (mt_calib_inverse_factor, perm NULL),
 * dead[k] (may be NULL) its dead inputs (their weights zeroed first). Without N:M
 * (nm_n == 0) each block of MT_SPARSEGPT_BLOCK columns prunes exactly
 * round(sparsity * n * block) weights, lowest w^2 / U_ii^2 first (ties as
 * mt_sparse_select); with nm_n:nm_m (nm_m <= 16 dividing k) every group of nm_m inputs of
 * a row keeps nm_n. Pruned weights become 0 and keep[n*k] 0 there; every kept weight is
 * compensated (see sparsegpt.c). Deterministic for a given thread count. Returns 0, or -1
 * with a message (allocation, an N:M that does not fit, the GEMM). */
int mt_prune_sparsegpt_matrix(float *w, size_t n, size_t k, const float *u, const uint8_t *dead,
                              double sparsity, unsigned nm_n, unsigned nm_m, uint8_t *keep,
                              char *err, size_t errlen);

/* Contract: SparseGPT on every prunable linear of m, in place (method sparsegpt; o->n > 0
 * picks N:M o->n:o->m, else o->sparsity per layer; o->global is not supported): the
 * Gram matrices of c (mt_prune_calib_acts with method sparsegpt) are factored one layer
 * at a time (MT_SPARSEGPT_DAMP) and mt_prune_sparsegpt_matrix prunes and compensates the
 * weights; *out gets the masks (as mt_prune_select_masks; mt_prune_apply is then a
 * no-op on m's weights). Returns 0, or -1 with a message. */
int mt_prune_sparsegpt(struct mt_gpt *m, const struct mt_prune_opts *o,
                       const struct mt_prune_calib *c, struct mt_prune_masks *out, char *err,
                       size_t errlen);

/* Contract: zeroes the pruned weights of m (and the biases of removed rows). When the
 * model has gradients, also zeroes their gradients, so an optimizer step that follows
 * leaves them at zero only after mt_prune_apply runs again (call it after every step). */
void mt_prune_apply(struct mt_gpt *m, const struct mt_prune_masks *k);

void mt_prune_masks_free(struct mt_prune_masks *k);

/* A packed linear: y[:, rows] = x[:, cols] * W^T + b, scattered back to full width. */
struct mt_pruned_linear {
    struct mt_sparse w; /* n_out x n_in, format chosen by size */
    uint32_t *row_idx;  /* kept output rows, n_out of them, or NULL = all */
    uint32_t *col_idx;  /* kept input columns, n_in of them, or NULL = all */
    size_t n_out, n_in; /* packed shape */
    size_t full_out, full_in;
    size_t index_bytes;                      /* bytes of row_idx + col_idx */
    double bench_ns[MT_SPARSE_FORMAT_COUNT]; /* storage=fastest: median batch-1 GEMV time of
                                                each candidate format; -1 = not timed */
};

struct mt_pruned {
    size_t n_slots;
    struct mt_pruned_linear *lin;
    struct mt_gpt *model;  /* the model it serves (biases, LM head) */
    float *ws_in, *ws_out; /* hook workspace, grown on demand (workspace memory) */
    size_t ws_in_len, ws_out_len;
    size_t kernel_scratch_peak;    /* most bytes one sparse kernel call held (see
                                      mt_sparse_matmul_scratch); oneDNN's own is not counted */
    enum mt_prune_storage storage; /* how the formats were chosen */
    /* Serving kernels: `impl` for every sparse multiply (set before serving; AUTO by
     * default), and what ran: multiplies per mt_sparse_path, those of them that fell back
     * to a slower path than the shape's (see mt_sparse_matmul_ex), dense-stored layers. */
    enum mt_sparse_impl impl;
    size_t path_calls[MT_SPARSE_PATH_COUNT];
    size_t fallbacks, dense_calls;
};

/* Contract: packs the (already masked) linear weights of m: slots with row/col masks
 * drop whole rows/columns; every packed matrix takes the smallest mt_sparse format
 * (N:M considered when n > 0). Weights are tagged as weights. Does not modify m.
 * Returns 0 or -1 with a message; free with mt_pruned_free. */
int mt_pruned_build(struct mt_pruned *p, struct mt_gpt *m, const struct mt_prune_masks *k,
                    unsigned n, unsigned m_group, char *err, size_t errlen);

/* How mt_pruned_build_storage picks each layer's format (prune_storage.h). */
struct mt_prune_storage_opts {
    enum mt_prune_storage storage;
    double budget_s; /* fastest: total timing budget; <= 0: mt_prune_bench_budget(weights) */
    unsigned reps;   /* fastest: repetitions per format (median); 0: MT_PRUNE_BENCH_REPS */
};

/* Contract: mt_pruned_build with the format of every packed matrix chosen per `so`
 * (NULL = smallest, which is exactly mt_pruned_build). A forced format applies to every
 * layer, structured ones included; a forced nm fails with a message naming the layer
 * when n == 0 or a layer's inputs are not a multiple of m_group, and packing fails when a
 * mask is not N:M. `fastest` packs every candidate (dense, CSR, bitmap, and N:M when n >
 * 0 and the layer fits) in turn, times it (mt_prune_bench_format, batch 1), fills
 * lin[s].bench_ns, and keeps mt_prune_pick_fastest's choice. Returns 0 or -1. */
int mt_pruned_build_storage(struct mt_pruned *p, struct mt_gpt *m, const struct mt_prune_masks *k,
                            unsigned n, unsigned m_group, const struct mt_prune_storage_opts *so,
                            char *err, size_t errlen);

/* Contract: the linear hook: `user` is a struct mt_pruned *. Prunable kinds run on the
 * packed weights (sparse kernels or oneDNN for dense packed matrices); the LM head runs
 * the model's default. Returns -1 if workspace allocation fails. */
int mt_pruned_matmul(void *user, size_t layer, enum mt_linear which, const float *in, float *out,
                     size_t rows);

/* Contract: replaces m's weight slab by one holding only the tensors the pruned model
 * still reads (everything but the four linear weight kinds; mt_gpt_drop_weights): their
 * param[] pointers become NULL and param_len 0, so m must then run with the mt_pruned
 * hook. The old slab is freed. Returns 0 or -1 (allocation failure, a training model;
 * m unchanged). */
int mt_pruned_slim_model(struct mt_gpt *m, char *err, size_t errlen);

/* Contract: the [out x in] shape of slot s (layer s / MT_PRUNE_KINDS, kind
 * s % MT_PRUNE_KINDS) of a model of shape cfg. Pure. */
void mt_prune_slot_dims(const struct mt_gpt_config *cfg, size_t s, size_t *out_dim,
                        size_t *in_dim);

/* Contract: the weights mt_pruned_slim_model drops (drop[t] = 1: the block linears the
 * packed layers replace), for mt_gpt_drop_weights and the plan's weight slab. */
void mt_pruned_dropped(unsigned char drop[MT_P_COUNT]);

/* Contract: the bytes mt_pruned_build_storage will pack (mt_pruned_bytes after it) for a
 * model of shape cfg pruned per `o` and stored per `storage`, from the shape alone: every
 * slot's non-zeros follow from the per-layer selection rule (round(sparsity x count) per
 * layer, per row for wanda, per MT_SPARSEGPT_BLOCK columns for sparsegpt, n of every m for
 * N:M; heads/neurons: round(sparsity x units) units per layer, never the last, the
 * owning slots compacted with their kept indices), its format from the same rule
 * (mt_sparse_choose_nnz, or the forced one) and its size from mt_sparse_layout_bytes.
 * Exact while no kept weight is exactly 0.0f. Returns 0, or -1 with err for what depends
 * on the trained weights or on timing (scope=global, storage=fastest). Pure. */
int mt_pruned_plan_bytes(const struct mt_gpt_config *cfg, const struct mt_prune_opts *o,
                         enum mt_prune_storage storage, size_t *bytes, char *err, size_t errlen);

/* Contract: bytes of the hook's workspace (ws_in + ws_out) at their high-water mark. */
size_t mt_pruned_workspace_bytes(const struct mt_pruned *p);

/* Contract: bytes of the packed linears (block + index arrays). */
size_t mt_pruned_bytes(const struct mt_pruned *p);

/* Contract: weights of the four prunable kinds in m's dense layout, and how many of them
 * are zero in the packed model (pruned), overall and for slot s. */
size_t mt_pruned_slot_weights(const struct mt_pruned *p, size_t s);
size_t mt_pruned_slot_zeros(const struct mt_pruned *p, size_t s);

void mt_pruned_free(struct mt_pruned *p);

/* Stable short name of a slot: "h<l>.qkv", "h<l>.attproj", "h<l>.fc", "h<l>.fcproj". */
void mt_prune_slot_name(size_t slot, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
