/* bf16mm.h — bf16 GEMMs for the mixed-precision engine with bf16 inputs and fp32
 * accumulation and output, through oneDNN's matmul primitive (bf16 memory descriptors;
 * AVX512-BF16 kernels on CPUs that have them): the forward out = in @ W^T + bias, and the
 * backward dinp = dout @ W and dW += dout^T @ in, all as one general product whose
 * transposes are strides and whose accumulation is a oneDNN sum post-op.
 *
 * What it is for: the linear layers of the bf16 engine (tmodel.c), reading the 16-bit
 * weights and activations in place instead of unpacking them. The _ref functions are the
 * scalar definitions (exact bf16 products summed in fp32, in k order) the primitives are
 * tested against.
 * What it is not for: other types, leading dimensions other than the packed ones, or
 * batched products.
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

/* One product out[M,N] (=, or += with accumulate) op(a)[M,K] @ op(b)[K,N] (+ bias[N]).
 * op(a) is a stored row-major M x K (ta = 0) or the transpose of a stored K x M (ta = 1);
 * op(b) is b stored K x N (tb = 0) or the transpose of b stored N x K (tb = 1). */
struct mt_bf16mm_shape {
    size_t M, N, K;
    int ta, tb;
    int accumulate; /* 1: out += product (fp32, no extra buffer) */
};

/* The product of *s on bf16 a and b into fp32 out, bias fp32 (may be NULL). Returns 0,
 * or -1 with a message: oneDNN refused the shape (out untouched: the caller can fall back
 * to fp32 GEMMs) or its execution failed (out unspecified). */
int mt_bf16mm_gemm(struct mt_bf16mm *c, const struct mt_bf16mm_shape *s, float *out,
                   const uint16_t *a, const uint16_t *b, const float *bias, char *err,
                   size_t errlen);
void mt_bf16mm_gemm_ref(const struct mt_bf16mm_shape *s, float *out, const uint16_t *a,
                        const uint16_t *b, const float *bias);

/* The forward of a linear layer: out[N,OC] = in[N,C] @ w[OC,C]^T + bias[OC] (bias may be
 * NULL); mt_bf16mm_gemm with M = N, N = OC, K = C, tb = 1. Same errors. */
int mt_bf16mm_run(struct mt_bf16mm *c, float *out, const uint16_t *in, const uint16_t *w,
                  const float *bias, size_t N, size_t C, size_t OC, char *err, size_t errlen);
void mt_bf16mm_ref(float *out, const uint16_t *in, const uint16_t *w, const float *bias, size_t N,
                   size_t C, size_t OC);

#ifdef __cplusplus
}
#endif
#endif
