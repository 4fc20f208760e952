/* bf16mm.h — bf16 GEMM for the mixed-precision forward: out = in @ W^T + bias with bf16
 * inputs and weights, fp32 accumulation and output, through oneDNN's matmul primitive
 * (bf16 memory descriptors; AVX512-BF16 kernels on CPUs that have them).
 *
 * What it is for: the linear layers of the bf16 engine (tmodel.c), reading the 16-bit
 * weights in place instead of unpacking them. mt_bf16mm_ref is the scalar definition
 * (exact bf16 products summed in fp32) the primitive is tested against.
 * What it is not for: other types, or transposes other than the model's (W is OC x C).
 *
 * Thread safety: a cache belongs to one thread (one engine); oneDNN uses OpenMP inside.
 */
#ifndef MT_TRAIN_BF16MM_H
#define MT_TRAIN_BF16MM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when oneDNN runs bf16 matmul natively on this CPU (ISA avx512_core_bf16 or newer);
 * otherwise callers should unpack and use fp32 GEMMs. */
int mt_bf16mm_native(void);

struct mt_bf16mm; /* primitives by shape, created on first use */

/* Returns 0 and *out, or -1 with a message (oneDNN engine or stream creation failed). */
int mt_bf16mm_create(struct mt_bf16mm **out, char *err, size_t errlen);
void mt_bf16mm_free(struct mt_bf16mm *c);

/* out[N,OC] = in[N,C] @ w[OC,C]^T + bias[OC] (bias may be NULL); in and w bf16, out and
 * bias fp32. Returns 0, or -1 with a message (primitive creation or execution failed). */
int mt_bf16mm_run(struct mt_bf16mm *c, float *out, const uint16_t *in, const uint16_t *w,
                  const float *bias, size_t N, size_t C, size_t OC, char *err, size_t errlen);
void mt_bf16mm_ref(float *out, const uint16_t *in, const uint16_t *w, const float *bias, size_t N,
                   size_t C, size_t OC);

#ifdef __cplusplus
}
#endif
#endif
