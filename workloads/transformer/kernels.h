/* kernels.h — the layer kernels of the reference transformer, fast and scalar.
 *
 * What it is for: every layer of the GPT as a free function over plain float arrays, in
 * two versions: `mt_k_<op>` (fused, vectorized, OpenMP-parallel; GEMMs through oneDNN)
 * and `mt_k_<op>_ref` (a plain scalar loop nest, the definition the fast one is tested
 * against). Plugins (quantize, prune, distill, mixed precision) call these directly to
 * build variants of the model without copying the model code.
 * What it is not for: memory management, parameters or any model state — callers own
 * every buffer; nothing here allocates except oneDNN's own GEMM packing buffers.
 *
 * Shapes are given in the comment of each function: N rows (N = B*T), C channels, OC
 * output channels, NH heads, V vocabulary. All arrays are row-major and densely packed.
 * Accumulation conventions (chosen so the model's backward needs no zeroing passes):
 * "=" means the output is overwritten, "+=" means it is accumulated into.
 * Thread safety: every function may run concurrently with others on disjoint outputs.
 * Determinism: for a fixed thread count every kernel is bit-reproducible; the
 * reductions over rows (weight and bias gradients) do not depend on the thread count.
 */
#ifndef MT_TRANSFORMER_KERNELS_H
#define MT_TRANSFORMER_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[N,OC] = inp[N,C] @ w[OC,C]^T + bias[OC]; bias may be NULL. A oneDNN matmul primitive
 * (dnnl_sgemm if oneDNN refuses it); one row is a vectorized GEMV. */
void mt_k_matmul_fwd(float *out, const float *inp, const float *w, const float *bias, size_t N,
                     size_t C, size_t OC);
void mt_k_matmul_fwd_ref(float *out, const float *inp, const float *w, const float *bias, size_t N,
                         size_t C, size_t OC);

/* Which implementation mt_k_matmul_fwd ran, counted over the process (every thread, relaxed
 * atomics; one plugin run is one process): matmuls of N > 1 rows run as a oneDNN primitive
 * (`prims`), and those where oneDNN refused the primitive and dnnl_sgemm ran instead
 * (`fallbacks`); one-row GEMVs are neither. For the matmul_prims / matmul_fallbacks
 * metrics. The environment variable MT_TEST_MATMUL_FALLBACK=1 refuses every primitive, so
 * tests can force the fallback. */
struct mt_k_matmul_counts {
    size_t prims, fallbacks;
};
void mt_k_matmul_counts(struct mt_k_matmul_counts *out);

/* Backward of mt_k_matmul_fwd: dinp[N,C] = dout[N,OC] @ w[OC,C] (overwritten), dw[OC,C]
 * += dout^T @ inp, dbias[OC] += column sums of dout; each output may be NULL to skip it
 * (then its other operand, w or inp, may be NULL too). */
void mt_k_matmul_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                     const float *w, size_t N, size_t C, size_t OC);
void mt_k_matmul_bwd_ref(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                         const float *w, size_t N, size_t C, size_t OC);

/* Column sums, e.g. a bias gradient: dst[j] += sum_i src[i*ld + j] for j < ncol. Rows are
 * summed in order for every column (parallel over column blocks), so the result does not
 * depend on the thread count. */
void mt_k_colsum_add(float *dst, const float *src, size_t nrow, size_t ncol, size_t ld);
void mt_k_colsum_add_ref(float *dst, const float *src, size_t nrow, size_t ncol, size_t ld);

/* Token + position embedding: out[b,t,:] = wte[inp[b,t],:] + wpe[t,:]; out is (B,T,C).
 * wpe NULL (rotary positions): out = wte rows only. */
void mt_k_encoder_fwd(float *out, const int *inp, const float *wte, const float *wpe, size_t B,
                      size_t T, size_t C);
void mt_k_encoder_fwd_ref(float *out, const int *inp, const float *wte, const float *wpe, size_t B,
                          size_t T, size_t C);
/* Position embedding alone: x[b,t,:] += wpe[t,:]; x is (B,T,C). */
void mt_k_add_positions(float *x, const float *wpe, size_t B, size_t T, size_t C);
void mt_k_add_positions_ref(float *x, const float *wpe, size_t B, size_t T, size_t C);
/* dwte[inp[b,t],:] += dout[b,t,:]; dwpe[t,:] += dout[b,t,:] (dwpe may be NULL). */
void mt_k_encoder_bwd(float *dwte, float *dwpe, const float *dout, const int *inp, size_t B,
                      size_t T, size_t C);
void mt_k_encoder_bwd_ref(float *dwte, float *dwpe, const float *dout, const int *inp, size_t B,
                          size_t T, size_t C);

/* LayerNorm over C (eps 1e-5): out[N,C] =, mean[N] =, rstd[N] = (mean/rstd may be NULL
 * for inference). */
void mt_k_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w,
                        const float *b, size_t N, size_t C);
void mt_k_layernorm_fwd_ref(float *out, float *mean, float *rstd, const float *inp, const float *w,
                            const float *b, size_t N, size_t C);
/* dinp[N,C] +=, dw[C] +=, db[C] += given dout[N,C], the forward input, w, mean, rstd;
 * dw and db both NULL: the parameters are frozen, only dinp is computed. */
void mt_k_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, size_t N, size_t C);
void mt_k_layernorm_bwd_ref(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, size_t N,
                            size_t C);

/* RMSNorm over C (eps 1e-5, no mean, no bias): out[N,C] = inp * rstd * w, rstd[N] =
 * 1 / sqrt(mean(inp^2) + eps) (rstd may be NULL for inference). */
void mt_k_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, size_t N,
                      size_t C);
void mt_k_rmsnorm_fwd_ref(float *out, float *rstd, const float *inp, const float *w, size_t N,
                          size_t C);
/* dinp[N,C] +=, dw[C] += given dout[N,C], the forward input, w and rstd. */
void mt_k_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                      const float *rstd, size_t N, size_t C);
void mt_k_rmsnorm_bwd_ref(float *dinp, float *dw, const float *dout, const float *inp,
                          const float *w, const float *rstd, size_t N, size_t C);

/* Rotary position embedding (RoPE, the rotate-half / GPT-NeoX / Hugging Face Llama
 * convention), in place on the q and k parts of qkv rows (B, T, Ca + 2 Ckv): in every
 * head of hs channels, channel i < hs/2 and its partner i + hs/2 are rotated by the angle
 * p * theta^(-2i/hs) for position p = pos0 + t (angles and their cos/sin in double, then
 * rounded to float, so every engine and decode rotate alike). v is untouched. bwd rotates
 * by the negative angle: the gradient of the rotated q and k becomes that of the
 * unrotated ones (rotation is orthogonal). */
void mt_k_rope_fwd(float *qkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv, size_t hs,
                   double theta);
void mt_k_rope_fwd_ref(float *qkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv,
                       size_t hs, double theta);
void mt_k_rope_bwd(float *dqkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv, size_t hs,
                   double theta);
void mt_k_rope_bwd_ref(float *dqkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv,
                       size_t hs, double theta);

/* Geometry of attention over qkv rows of C + 2 Ckv floats (see mt_k_attention_fwd): head
 * size, row stride, key/value heads, query heads per key/value head, score scale. */
struct mt_k_attn_geom {
    size_t hs, ld, nkv, grp;
    float scale;
};
static inline struct mt_k_attn_geom mt_k_attn_geom(size_t C, size_t Ckv, size_t NH)
{
    size_t hs = C / NH;
    return (struct mt_k_attn_geom){hs, C + 2 * Ckv, Ckv / hs, NH / (Ckv / hs),
                                   1.0f / sqrtf((float)hs)};
}

/* First position row t attends to under a sliding window (0: no window). */
static inline size_t mt_k_window_start(size_t t, size_t window)
{
    return window && t >= window ? t + 1 - window : 0;
}

/* Causal multi-head attention with grouped-query heads and an optional sliding window.
 * qkv is (B,T,C+2Ckv) holding q (C wide, NH heads of hs = C/NH), then k and v (Ckv wide
 * each, NKV = Ckv/hs heads; query head h uses key/value head h / (NH/NKV)). Row t attends
 * to positions (t - window, t] (window 0: [0, t]). out (B,T,C) =; att (B,NH,T,T) = the
 * softmax probabilities (zero outside the attended positions). With Ckv = C and window 0
 * this is plain causal multi-head attention. */
void mt_k_attention_fwd(float *out, float *att, const float *qkv, size_t B, size_t T, size_t C,
                        size_t Ckv, size_t NH, size_t window);
void mt_k_attention_fwd_ref(float *out, float *att, const float *qkv, size_t B, size_t T, size_t C,
                            size_t Ckv, size_t NH, size_t window);
/* dqkv (B,T,C+2Ckv) =; datt (B,NH,T,T) is scratch (overwritten); given dout (B,T,C), the
 * forward qkv and att. */
void mt_k_attention_bwd(float *dqkv, float *datt, const float *dout, const float *qkv,
                        const float *att, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                        size_t window);
void mt_k_attention_bwd_ref(float *dqkv, float *datt, const float *dout, const float *qkv,
                            const float *att, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                            size_t window);

/* Flash attention (FlashAttention-2): the same function as mt_k_attention_fwd, computed
 * in tiles of MT_K_FLASH_TILE queries x MT_K_FLASH_TILE keys with an online softmax, so
 * no (T,T) tensor exists: out (B,T,C) =; lse (B,NH,T) = the log-sum-exp of each row of
 * scaled scores (log sum_j exp(q.k_j / sqrt(hs)) over the attended j). Scratch is a few
 * tiles on the stack. Parallel over (batch, head) forward and (batch, key/value head)
 * backward; each task is computed in one fixed order on one thread, so results do not
 * depend on the thread count. Masked positions never enter a sum (no -inf arithmetic). */
#define MT_K_FLASH_TILE ((size_t)64)
void mt_k_flash_attention_fwd(float *out, float *lse, const float *qkv, size_t B, size_t T,
                              size_t C, size_t Ckv, size_t NH, size_t window);
void mt_k_flash_attention_fwd_ref(float *out, float *lse, const float *qkv, size_t B, size_t T,
                                  size_t C, size_t Ckv, size_t NH, size_t window);
/* Backward of flash attention: dqkv (B,T,C+2Ckv) = given dout (B,T,C), the forward qkv, its
 * output out and lse. Recomputes the probabilities tile by tile: D = rowsum(dout * out),
 * P = exp(S - lse), dV += P^T dO, dP = dO V^T, dS = P (dP - D), dQ += dS K / sqrt(hs),
 * dK += dS^T Q / sqrt(hs). */
void mt_k_flash_attention_bwd(float *dqkv, const float *dout, const float *qkv, const float *out,
                              const float *lse, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                              size_t window);
void mt_k_flash_attention_bwd_ref(float *dqkv, const float *dout, const float *qkv,
                                  const float *out, const float *lse, size_t B, size_t T, size_t C,
                                  size_t Ckv, size_t NH, size_t window);

/* One query position against a KV cache: q is (C) (the first C of a qkv row), K and V are
 * (n, Ckv) for the n attended positions (the query's own position last; a sliding window
 * is the caller's choice of n); out (C) =; att (n) is scratch. Heads as in
 * mt_k_attention_fwd. */
void mt_k_attention_decode(float *out, float *att, const float *q, const float *K, const float *V,
                           size_t n, size_t C, size_t Ckv, size_t NH);
void mt_k_attention_decode_ref(float *out, float *att, const float *q, const float *K,
                               const float *V, size_t n, size_t C, size_t Ckv, size_t NH);

/* GELU, tanh approximation: out[n] = gelu(inp[n]). out may equal inp. */
void mt_k_gelu_fwd(float *out, const float *inp, size_t n);
void mt_k_gelu_fwd_ref(float *out, const float *inp, size_t n);
/* dinp[n] = gelu'(inp[n]) * dout[n]; dinp may equal dout. */
void mt_k_gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n);
void mt_k_gelu_bwd_ref(float *dinp, const float *inp, const float *dout, size_t n);

/* SwiGLU: inp rows are [gate (F) | up (F)] (N rows of 2F); out[N,F] = silu(gate) * up,
 * silu(g) = g / (1 + exp(-g)). out must not overlap inp. */
void mt_k_swiglu_fwd(float *out, const float *inp, size_t N, size_t F);
void mt_k_swiglu_fwd_ref(float *out, const float *inp, size_t N, size_t F);
/* dinp[N,2F] = the gradients of gate and up given dout[N,F] (overwritten; no overlap). */
void mt_k_swiglu_bwd(float *dinp, const float *inp, const float *dout, size_t N, size_t F);
void mt_k_swiglu_bwd_ref(float *dinp, const float *inp, const float *dout, size_t N, size_t F);

/* out[n] = a[n] + b[n]; out may alias a or b. */
void mt_k_residual_fwd(float *out, const float *a, const float *b, size_t n);

/* Row softmax: probs[N,V] = softmax(logits[N,V]) (probs may equal logits). */
void mt_k_softmax_fwd(float *probs, const float *logits, size_t N, size_t V);
void mt_k_softmax_fwd_ref(float *probs, const float *logits, size_t N, size_t V);

/* Fused softmax + cross-entropy: logits[N,V] are replaced by probabilities; losses[N] =
 * -log p[target]; targets < 0 are ignored (loss 0). Returns the sum of the losses (in
 * double, reduced in a thread-count independent order). */
double mt_k_crossentropy_fwd(float *logits, float *losses, const int *targets, size_t N, size_t V);
double mt_k_crossentropy_fwd_ref(float *logits, float *losses, const int *targets, size_t N,
                                 size_t V);
/* In place on the probabilities: probs[i,:] = (probs[i,:] - onehot(targets[i])) * dloss;
 * rows whose target is < 0 become zero. */
void mt_k_crossentropy_bwd(float *probs, const int *targets, float dloss, size_t N, size_t V);
void mt_k_crossentropy_bwd_ref(float *probs, const int *targets, float dloss, size_t N, size_t V);

/* One AdamW update of n parameters with bias correction (step counts from 1) and
 * decoupled weight decay: p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p). grad_scale
 * multiplies g first (gradient clipping, loss-scale removal). With zero_grad set, g is
 * left zero afterwards (saves the separate zeroing pass over the gradients). */
struct mt_adamw_args {
    float lr, beta1, beta2, eps, weight_decay, grad_scale;
    uint64_t step;
    int zero_grad;
};
void mt_k_adamw(float *p, float *g, float *m, float *v, size_t n, const struct mt_adamw_args *a);
void mt_k_adamw_ref(float *p, float *g, float *m, float *v, size_t n,
                    const struct mt_adamw_args *a);

/* Sum of squares of x[n] in double, in a fixed order that does not depend on the thread
 * count (blocks of MT_K_SUMSQ_BLOCK, summed in block order). */
#define MT_K_SUMSQ_BLOCK ((size_t)16384)
double mt_k_sumsq(const float *x, size_t n);
double mt_k_sumsq_ref(const float *x, size_t n);

/* The global gradient norm every engine clips with: sqrt(sumsq) in float, divided by
 * grad_div (a loss scale still in the gradients; 1 = none). sumsq is the sum of squares of
 * every gradient, mt_k_sumsq per span added in the engine's span order (mt_half_sumsq for
 * 16-bit spans), summed across the ranks first when the gradients are sharded. */
float mt_k_grad_norm(double sumsq, float grad_div);

/* Vectorizable exp for float (relative error < 2e-7 over the float range, exp(-inf)=0,
 * underflows to 0 below -87.3). Exposed for plugins writing fused kernels. */
float mt_k_expf(float x);

#ifdef __cplusplus
}
#endif
#endif
