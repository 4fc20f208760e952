/* block.h — the one transformer block: forward and backward of a pre-LayerNorm GPT block
 * (causal multi-head attention, 4x GELU MLP) over plain pointers.
 *
 * What it is for: the single implementation of the block's math that every engine runs:
 * the model of gpt.h (slabs, inference and simple training), the training engine of
 * workloads/train (16-bit storage, checkpointing, pools) and the sharded engine of
 * workloads/distributed (pipeline stages, tensor parallelism). An engine supplies where
 * the block's tensors live and four hooks:
 *   - linear / linear_bwd run the block's four linear layers (the engine's weights, GEMM
 *     kind, quantized or sparse forms, tensor-parallel reductions);
 *   - produced (optional) is told each stored activation right after it is written (a
 *     16-bit engine rounds it and keeps its packed copy);
 *   - use (optional) hands backward the values of a stored activation (a 16-bit engine
 *     unpacks it).
 * Kernels (kernels.h) are called in one fixed order, so every engine that stores fp32 and
 * runs fp32 linears gets bit-identical results.
 * What it is not for: embeddings, the final LayerNorm and LM head, losses, memory layout,
 * checkpointing policy (which blocks keep activations; recompute is running this forward
 * again with out = NULL), or anything of the harness.
 *
 * Batch-1 decoding (decode.c) runs the same forward with T = 1, an attention hook over its
 * KV cache and its buffers in place (residuals into x, GELU into the fc output, no
 * LayerNorm statistics: act[MT_A_LN*_MEAN/RSTD] = NULL).
 *
 * Shapes: x, out, proj and the LayerNorm outputs are (B, T, C); q is Ca wide with NH heads
 * of hs = Ca / NH channels, k and v are Ckv wide each (Ckv / hs key/value heads; query
 * head h uses key/value head h / (NH hs / Ckv)), so QKV is (B, T, Ca + 2 Ckv); the MLP
 * hidden layer is F wide. Without tensor parallelism Ca = C, Ckv = mt_gpt_kv_dim and
 * F = 4C; a tensor-parallel rank holds a slice of heads (Ca = C / tp, Ckv / tp) and of
 * the MLP (F = 4C / tp). The attention kind and sliding window are the configuration's
 * (gpt.h): dense keeps the probabilities in act[MT_A_ATT] and uses d[MT_D_ATT] as
 * scratch; flash keeps the log-sum-exp rows in act[MT_A_ATT] and needs no d[MT_D_ATT].
 *
 * Thread safety: reentrant; the kernels use OpenMP with the caller's thread count.
 */
#ifndef MT_TRANSFORMER_BLOCK_H
#define MT_TRANSFORMER_BLOCK_H

#include <stddef.h>

#include "gpt.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mt_block_shape {
    size_t B, T;      /* batch and sequence */
    size_t C;         /* residual width */
    size_t Ca;        /* width of q (the attention output is Ca wide) */
    size_t Ckv;       /* width of each of k and v */
    size_t NH;        /* query heads (of Ca / NH channels) */
    size_t F;         /* MLP hidden width */
    size_t attention; /* enum mt_gpt_attention */
    size_t window;    /* sliding window (0: none), as in struct mt_gpt_config */
    size_t norm;      /* enum mt_gpt_norm */
    size_t mlp;       /* enum mt_gpt_mlp (SwiGLU: the fc linear is 2F wide, gate then up) */
    size_t rope;      /* 1: rotary embeddings of q and k (pos = rope) */
    size_t hs;        /* head size */
    size_t pos0;      /* position of the first of the T rows (decode: the cache's length) */
    double rope_theta;
};

/* The block shape of configuration cfg for batch B and sequence T (positions 0..T-1; a
 * caller at a later position sets pos0) on one of tp tensor-parallel ranks (tp = 1: the
 * whole block); tp must divide n_head, the key/value heads and F (mt_gpt_config_check and
 * the sharded engine check it). */
struct mt_block_shape mt_block_shape_of(const struct mt_gpt_config *cfg, size_t B, size_t T,
                                        size_t tp);

/* The element-wise and attention kernels the block runs between its linears, with the
 * signatures and contracts of kernels.h (mt_k_<name>). The CPU engine's table is
 * mt_block_kernels_cpu (kernels.h's fast kernels); a device backend (cuda/ckernels.cu)
 * hands its own, whose pointers are device memory. A NULL flash entry: that backend has
 * no flash attention (its model refuses attention=flash). */
struct mt_block_kernels {
    void (*layernorm_fwd)(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, size_t N, size_t C);
    void (*layernorm_bwd)(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                          const float *w, const float *mean, const float *rstd, size_t N, size_t C);
    void (*rmsnorm_fwd)(float *out, float *rstd, const float *inp, const float *w, size_t N,
                        size_t C);
    void (*rmsnorm_bwd)(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                        const float *rstd, size_t N, size_t C);
    void (*rope_fwd)(float *qkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv, size_t hs,
                     double theta);
    void (*rope_bwd)(float *dqkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv, size_t hs,
                     double theta);
    void (*attention_fwd)(float *out, float *att, const float *qkv, size_t B, size_t T, size_t C,
                          size_t Ckv, size_t NH, size_t window);
    void (*attention_bwd)(float *dqkv, float *datt, const float *dout, const float *qkv,
                          const float *att, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                          size_t window);
    void (*flash_fwd)(float *out, float *lse, const float *qkv, size_t B, size_t T, size_t C,
                      size_t Ckv, size_t NH, size_t window);
    void (*flash_bwd)(float *dqkv, const float *dout, const float *qkv, const float *out,
                      const float *lse, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                      size_t window);
    void (*residual_fwd)(float *out, const float *a, const float *b, size_t n);
    void (*gelu_fwd)(float *out, const float *inp, size_t n);
    void (*gelu_bwd)(float *dinp, const float *inp, const float *dout, size_t n);
    void (*swiglu_fwd)(float *out, const float *inp, size_t N, size_t F);
    void (*swiglu_bwd)(float *dinp, const float *inp, const float *dout, size_t N, size_t F);
};

/* The CPU engine's kernels (kernels.h): what a NULL mt_block_ops::kernels means. */
extern const struct mt_block_kernels mt_block_kernels_cpu;

/* The normalization of norm (enum mt_gpt_norm) through table k (mt_block_norm_fwd/_bwd
 * with a backend's kernels; same arguments). */
void mt_block_norm_fwd_k(const struct mt_block_kernels *k, size_t norm, float *out, float *mean,
                         float *rstd, const float *inp, const float *w, const float *b, size_t N,
                         size_t C);
void mt_block_norm_bwd_k(const struct mt_block_kernels *k, size_t norm, float *dinp, float *dw,
                         float *db, const float *dout, const float *inp, const float *w,
                         const float *mean, const float *rstd, size_t N, size_t C);

/* What mt_block_ops::linear_fused folds into linear `which`: out = res + gelu(norm(in) W^T
 * + b), each part only when its flag is in `what`: NORM (the block's norm of the input,
 * kind `norm`, with norm_w and norm_b: asked only where nothing keeps the norm's output
 * or statistics and no produced hook runs), GELU (fc of a GELU MLP, asked only when GELU
 * runs in place and no produced hook wants the pre-activation), RESIDUAL (the two
 * projections then the residual add; out may equal res). */
enum { MT_BLOCK_FUSE_NORM = 1, MT_BLOCK_FUSE_GELU = 2, MT_BLOCK_FUSE_RESIDUAL = 4 };
struct mt_block_fuse {
    int what;
    size_t norm;                  /* enum mt_gpt_norm */
    const float *norm_w, *norm_b; /* norm_b NULL with RMSNorm */
    const float *res;
};

struct mt_block_ops {
    /* out[rows, out_dim] = in[rows, in_dim] @ W^T + b for the block's linear `which`
     * (MT_LIN_QKV, _ATTPROJ, _FC or _FCPROJ), complete: any reduction over
     * tensor-parallel ranks is done by the hook. Returns 0, non-zero to abort. */
    int (*linear)(void *user, enum mt_linear which, const float *in, float *out, size_t rows);
    /* Backward of `which`: din[rows, in_dim] = dout @ W (overwritten, complete), and adds
     * dout^T in and the column sums of dout to the weight and bias gradients. The input
     * `in` is the block activation mt_block_linear_input(which); the hook fetches it
     * itself (a 16-bit engine may use its packed copy). Returns 0, non-zero to abort. */
    int (*linear_bwd)(void *user, enum mt_linear which, const float *dout, float *din, size_t rows);
    /* Optional: linear `which` with the kernels around it folded in (f, below), bit for
     * bit what the linear and those kernels give one after the other (an engine whose
     * one-row products can: CUDA decoding). Returns 0, 1 when it cannot (the block then
     * runs the kernels and the plain linear), or -1 to abort. NULL: never fused. */
    int (*linear_fused)(void *user, enum mt_linear which, const float *in, float *out,
                        const struct mt_block_fuse *f, size_t rows);
    /* Optional: the attention core, atty = softmax(q k^T / sqrt(d)) v over the heads of
     * qkv, writing what it keeps into att. NULL: causal attention over the block's own T
     * positions (mt_k_attention_fwd, or mt_k_flash_attention_fwd for flash). Batch-1
     * decoding sets it to attend over its KV cache. Returns 0, non-zero to abort. Forward
     * only. */
    int (*attention)(void *user, const float *qkv, float *atty, float *att);
    /* Optional, dense attention only: the attention core's backward, as the kernels'
     * attention_bwd (dqkv overwritten from datty, the stored qkv and probabilities att;
     * datt is its scratch). NULL: kernels->attention_bwd. Returns 0, non-zero to abort. */
    int (*attention_bwd)(void *user, const float *datty, const float *qkv, const float *att,
                         float *dqkv, float *datt);
    /* Optional: activation a (an index of act[]) was just written. */
    void (*produced)(void *user, enum mt_gpt_act a);
    /* Optional: the values of stored activation a for backward (NULL hook: act[a]). */
    const float *(*use)(void *user, enum mt_gpt_act a);
    void *user;
    /* Selective recompute (Korthikanti et al. 2022), dense attention only: when set, the
     * backward recomputes the attention core (scores, softmax, weighted sum) from the
     * stored qkv into act[MT_A_ATT] and act[MT_A_ATTY] (after the attention projection's
     * backward has read atty; the values are the forward's), calls produced(MT_A_ATT),
     * and uses the probabilities from there: the engine need not keep them between
     * forward and backward. Flash attention keeps only its log-sum-exp rows and already
     * recomputes the scores, so the flag changes nothing there. recomputing, when set,
     * is called with 1 before and 0 after (the engine's timing). */
    int recompute_attention;
    void (*recomputing)(void *user, int begin);
    /* Optional: the backend's kernels (NULL: mt_block_kernels_cpu). Every pointer the block
     * is handed then lives where these kernels run. */
    const struct mt_block_kernels *kernels;
};

/* (which is one of the four block linears, not MT_LIN_LMHEAD.) The block activation that linear
 * `which` reads: MT_A_LN1 (qkv), MT_A_ATTY (attention projection), MT_A_LN2 (fc), MT_A_FCH_GELU (fc
 * projection). */
enum mt_gpt_act mt_block_linear_input(enum mt_linear which);

/* The weight tensor of linear `which` (MT_P_QKVW, _ATTPROJW, _FCW, _FCPROJW); its bias is
 * the next tensor (MT_P_QKVB, ...). */
enum mt_gpt_param mt_block_linear_weight(enum mt_linear which);

/* Input and output widths of linear `which` in a block of shape s: QKV C -> Ca + 2 Ckv,
 * attention projection Ca -> C, fc C -> F, fc projection F -> C. */
void mt_block_linear_dims(const struct mt_block_shape *s, enum mt_linear which, size_t *in_dim,
                          size_t *out_dim);

/* The normalization of the block options (cfg->norm), used for the block's two norms and
 * the final one: LayerNorm (kernels.h mt_k_layernorm_*) or RMSNorm (mt_k_rmsnorm_*, which
 * takes no mean or bias: those may be NULL). The same argument order as LayerNorm. */
void mt_block_norm_fwd(size_t norm, float *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, size_t N, size_t C);
void mt_block_norm_bwd(size_t norm, float *dinp, float *dw, float *db, const float *dout,
                       const float *inp, const float *w, const float *mean, const float *rstd,
                       size_t N, size_t C);

/* Points out[MT_P_LN1W], [MT_P_LN1B], [MT_P_LN2W], [MT_P_LN2B] at layer l's rows of the
 * norm tensors in t[] (model-layout (L, C) tensors, t[p] NULL for an absent or missing
 * tensor gives NULL); other entries untouched. */
void mt_block_norm_params(const struct mt_gpt_config *cfg, size_t l, float *const t[MT_P_COUNT],
                          float *out[MT_P_COUNT]);

/* Forward of one block on the residual stream x into out = x + attn(ln1(x)) +
 * mlp(ln2(x + attn(ln1(x)))). With RoPE, q and k are rotated in act[MT_A_QKV] right after
 * the QKV linear (before `produced` and the attention hook: a KV cache stores rotated
 * keys). SwiGLU writes silu(gate) * up into act[MT_A_FCH_GELU], which must then not
 * overlap act[MT_A_FCH].
 * ln[MT_P_LN1W], [MT_P_LN1B], [MT_P_LN2W], [MT_P_LN2B] point at this block's norm
 * parameters (C floats each; the biases NULL with RMSNorm; other entries unused). act[a] for a in
 * MT_A_LN1 .. MT_A_FCH_GELU (not MT_A_PROJ or MT_A_RESIDUAL3) are where the activations are
 * written; act[MT_A_FCH_GELU] may equal act[MT_A_FCH] (GELU in place). proj is (B, T, C) scratch
 * for the projections' outputs; out may equal proj. out = NULL stops after the GELU (a
 * recomputation for backward: everything backward reads is rebuilt, the output already
 * exists). Returns 0, or -1 when a linear hook failed. */
int mt_block_forward(const struct mt_block_shape *s, float *const ln[MT_P_COUNT],
                     float *const act[MT_A_COUNT], const float *x, float *proj, float *out,
                     const struct mt_block_ops *ops);

/* Backward of the block whose forward left act[] (and x, its input): on entry
 * d[MT_D_RESIDUAL] holds the gradient of the block's output, on return the gradient of
 * x. Adds the LayerNorm parameters' gradients into dln[MT_P_LN1W], [MT_P_LN1B],
 * [MT_P_LN2W], [MT_P_LN2B]; the linears' go through ops->linear_bwd. d[MT_D_LN],
 * [MT_D_ATTY], [MT_D_QKV], [MT_D_ATT], [MT_D_FCH] are scratch of the shapes of the
 * activations they are the gradients of. Stored activations are read through ops->use in
 * the order the math needs them. Returns 0, or -1 when a linear backward hook failed. */
int mt_block_backward(const struct mt_block_shape *s, float *const ln[MT_P_COUNT],
                      float *const dln[MT_P_COUNT], float *const act[MT_A_COUNT], const float *x,
                      float *const d[MT_D_COUNT], const struct mt_block_ops *ops);

#ifdef __cplusplus
}
#endif
#endif
