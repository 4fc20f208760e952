/* cflash.h — flash attention (FlashAttention-2) on an NVIDIA GPU: the device kernels of
 * the kernel table's flash_fwd / flash_bwd (block.h), in fp32 and in bf16.
 *
 * What it is for: attention=flash with device=cuda. The same functions as kernels.h's
 * mt_k_flash_attention_fwd / _bwd (causal, grouped-query heads, sliding window; lse
 * (B,NH,T) the log-sum-exp of each row of scaled scores) on device pointers, queued on
 * the per-thread default stream. No (T,T) tensor exists: each thread block holds one
 * tile of keys and values (or of queries and output gradients) in shared memory and
 * keeps its rows in registers; the forward runs the online softmax per (batch, head,
 * 64 queries), the backward recomputes the probabilities tile by tile twice: per (batch,
 * head, 64 queries) for dq and per (batch, key/value head, 64 keys) for dk and dv (the
 * group's query heads summed in a fixed order), so no atomics: results are bit-identical
 * from run to run. Head sizes up to 128.
 * The _bf16 variants round q, k, v, the output gradient and the probabilities (and dS)
 * to bf16 before each product, with fp32 accumulation and an fp32 softmax (the autocast
 * / FlashAttention recipe); their inputs and outputs stay fp32 tensors.
 * What it is not for: dense attention (ckernels.h), decoding (mt_cu_attention_decode).
 */
#ifndef MT_TRANSFORMER_CUDA_CFLASH_H
#define MT_TRANSFORMER_CUDA_CFLASH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest head size (C / NH) the kernels take; mt_cuda_gpt_create refuses larger ones.
 * Every function below requires C / NH <= MT_CU_FLASH_MAX_HS and launches nothing (writes
 * nothing) otherwise. */
#define MT_CU_FLASH_MAX_HS 128

/* out (B,T,C) =, lse (B,NH,T) = from qkv (B,T,C+2Ckv): mt_k_flash_attention_fwd. */
void mt_cu_flash_fwd(float *out, float *lse, const float *qkv, size_t B, size_t T, size_t C,
                     size_t Ckv, size_t NH, size_t window);
void mt_cu_flash_fwd_bf16(float *out, float *lse, const float *qkv, size_t B, size_t T, size_t C,
                          size_t Ckv, size_t NH, size_t window);
/* dqkv (B,T,C+2Ckv) = (every element written) from dout (B,T,C), the forward's qkv, out
 * and lse: mt_k_flash_attention_bwd. */
void mt_cu_flash_bwd(float *dqkv, const float *dout, const float *qkv, const float *out,
                     const float *lse, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                     size_t window);
void mt_cu_flash_bwd_bf16(float *dqkv, const float *dout, const float *qkv, const float *out,
                          const float *lse, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                          size_t window);

#ifdef __cplusplus
}
#endif
#endif
