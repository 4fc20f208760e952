/* ckernels.h — the reference transformer's kernels on an NVIDIA GPU (CUDA).
 *
 * What it is for: the device side of the one engine: mt_cuda_block_kernels (the one
 * block's element-wise and attention kernels, block.h) and the kernels of the model
 * around the blocks (embedding, cross-entropy, bias, AdamW, gradient norm, 16-bit
 * conversion, the softmax between cuBLAS's attention products, KV-cache decode). Same
 * math and contracts as kernels.h's mt_k_<op>, on device pointers, queued on the
 * per-thread default stream (asynchronous: the caller synchronizes, cgpt.c checks
 * cudaGetLastError there).
 * What it is not for: matrix products (cuBLAS, cgpt.c), memory, or anything of the model
 * state. Flash attention: cflash.h (the table's flash entries are its fp32 kernels).
 * Reductions over rows (parameter gradients, column sums, the embedding's gradient) use
 * atomics: results are reproducible to float rounding, not bit for bit.
 */
#ifndef MT_TRANSFORMER_CUDA_CKERNELS_H
#define MT_TRANSFORMER_CUDA_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "block.h"
#include "kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The one block's kernels on the device (flash_fwd / flash_bwd: cflash.h's fp32 ones). */
extern const struct mt_block_kernels mt_cuda_block_kernels;
/* The same for batch-1 decoding: the norms' statistics computed by each warp in one fixed
 * order (cdev.cuh), the bits of the decode GEMVs' fused norm (cquant.h's mt_cu_epi). */
extern const struct mt_block_kernels mt_cuda_decode_kernels;

/* out (B,T,C) = wte[inp] + wpe[t] (wpe NULL: no positions); inp device ints. */
void mt_cu_encoder_fwd(float *out, const int *inp, const float *wte, const float *wpe, size_t B,
                       size_t T, size_t C);
/* dwte[inp[b,t]] += dout[b,t]; dwpe[t] += dout[b,t] (dwpe may be NULL). */
void mt_cu_encoder_bwd(float *dwte, float *dwpe, const float *dout, const int *inp, size_t B,
                       size_t T, size_t C);
/* out[N,OC] += bias[OC] per row. */
void mt_cu_bias_add(float *out, const float *bias, size_t N, size_t OC);
/* dst[j] += sum_i src[i*OC + j]. */
void mt_cu_colsum_add(float *dst, const float *src, size_t N, size_t OC);
/* logits[N,V] -> probabilities in place; losses[N] = -log p[target] (target < 0: 0). */
void mt_cu_crossentropy_fwd(float *logits, float *losses, const int *targets, size_t N, size_t V);
/* probs[i,:] = (probs[i,:] - onehot(target)) * dloss; rows with target < 0: zero. */
void mt_cu_crossentropy_bwd(float *probs, const int *targets, float dloss, size_t N, size_t V);
/* The same from bf16 logits (rows of stride ld, bf16 models' LM head): probs[N,V] (fp32)
 * = softmax, losses as above; targets NULL: probs = the logits, widened. */
void mt_cu_crossentropy_fwd16(float *probs, const void *logits16, size_t ld, float *losses,
                              const int *targets, size_t N, size_t V);
/* d16 (bf16, rows of stride ld >= V, padding zero) = (probs - onehot(target)) * dloss;
 * rows with target < 0: zero. probs unchanged. */
void mt_cu_crossentropy_bwd16(void *d16, size_t ld, const float *probs, const int *targets,
                              float dloss, size_t N, size_t V);
/* kernels.h mt_k_adamw on device arrays (a on the host). */
void mt_cu_adamw(float *p, float *g, float *m, float *v, size_t n, const struct mt_adamw_args *a);
/* *acc (one device double) += sum of x[i]^2. */
void mt_cu_sumsq(double *acc, const float *x, size_t n);
/* out[i] = bf16(in[i]) (round to nearest even); out holds n 16-bit values. */
void mt_cu_to_bf16(void *out, const float *in, size_t n);
/* The attention's softmax between cuBLAS's batched products (cgpt.c): att holds rows of T
 * scaled scores (row i: query position i % T, attending positions
 * mt_k_window_start(t, window)..t); each becomes its probabilities, zero outside, in
 * place, and as bf16 in p16 unless NULL. */
void mt_cu_softmax_rows(float *att, void *p16, size_t rows, size_t T, size_t window);
/* Its backward: datt holds dP (rows x T); dS = P (dP - sum_j P dP) in place, or, with
 * ds16, as bf16 there and P's bf16 copy into p16 (datt then unchanged). */
void mt_cu_softmax_rows_bwd(float *datt, void *ds16, void *p16, const float *att, size_t rows,
                            size_t T);
/* Batch-1 decoding, the step's token and position read from the device (tokpos = {token,
 * pos}) so that a captured step replays for any token:
 * x (C) = wte[token] + wpe[pos] (wpe NULL: no positions). */
void mt_cu_decode_embed(float *x, const float *wte, const float *wpe, const int *tokpos, size_t C);
/* The KV cache's element type: fp32, or 16-bit (bf16, fp16) rounded to nearest even when
 * stored and widened to fp32 when read (kvcache.h's bf16 and fp16 formats). */
enum mt_cu_kv_type { MT_CU_KV_F32 = 0, MT_CU_KV_BF16 = 1, MT_CU_KV_F16 = 2 };
/* One query against a KV cache of one layer (at most max_T positions, elements of type)
 * after appending the step's key and value: qkv (C + 2 Ckv) device, the step's q, k, v;
 * K[pos] and V[pos] (rows of Ckv elements, pos = tokpos[1]) = its k and v rounded to
 * type; rows mt_k_window_start(pos, window)..pos attended; out (C) =. Heads as in
 * mt_k_attention_fwd. */
void mt_cu_attention_decode(float *out, const float *qkv, void *K, void *V, enum mt_cu_kv_type type,
                            const int *tokpos, size_t window, size_t max_T, size_t C, size_t Ckv,
                            size_t NH);
/* tokpos = {token, pos}, queued (a kernel: no host memory involved, nothing waits). */
void mt_cu_decode_set(int *tokpos, int token, int pos);
/* Greedy sampling on the device: the first index of the largest of logits[0..V) becomes
 * the next step's token (tokpos[0]) and tokens[tokpos[1]]; tokpos[1] advances by one. */
void mt_cu_decode_argmax(int *tokpos, int *tokens, const float *logits, size_t V);

#ifdef __cplusplus
}
#endif
#endif
