/* half.h — bf16 and fp16 storage for mixed-precision training.
 *
 * What it is for: converting float arrays to and from 16-bit storage with round to
 * nearest even (pack), back to float exactly (unpack), rounding a float array to the
 * values the 16-bit format can hold (round), and adding float contributions into 16-bit
 * gradient storage while counting contributions that flush to zero (underflow).
 * Fast paths: AVX512-BF16 (`_mm512_cvtne2ps_pbh`) for bf16 packing and F16C
 * (`_mm512_cvtps_ph` / `_mm512_cvtph_ps`) for fp16, chosen at run time when the CPU has
 * them, split over the OpenMP threads for large arrays; `*_ref` are the plain scalar
 * definitions the tests hold the fast ones to.
 * Known difference: the AVX512-BF16 instruction treats fp32 denormal inputs as zero (the
 * scalar reference rounds them; both give 0 or the smallest bf16 denormals), so tests
 * compare the two exactly on normal inputs only.
 * What it is not for: arithmetic in 16 bits; all compute stays in fp32.
 *
 * Thread safety: pure functions over caller buffers; no state. Large conversions open an
 * OpenMP parallel region (call them from outside one).
 */
#ifndef MT_TRAIN_HALF_H
#define MT_TRAIN_HALF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mt_prec { MT_PREC_FP32 = 0, MT_PREC_BF16 = 1, MT_PREC_FP16 = 2 };

/* "fp32", "bf16", "fp16". */
const char *mt_prec_name(enum mt_prec p);
/* Parses a precision name; returns 0, or -1 for an unknown name. */
int mt_prec_parse(const char *s, enum mt_prec *p);
/* 1 when this CPU runs the fast conversion path for p (fp32: always 0). */
int mt_half_fast(enum mt_prec p);

/* One value, scalar, round to nearest even; NaN stays NaN, overflow gives +-inf (fp16
 * above 65504 after rounding), fp16 keeps subnormals down to 2^-24. */
uint16_t mt_half_from_float(enum mt_prec p, float x);
float mt_half_to_float(enum mt_prec p, uint16_t h);

/* dst[i] = 16-bit(src[i]) for i < n (p must be BF16 or FP16). */
void mt_half_pack(enum mt_prec p, uint16_t *dst, const float *src, size_t n);
void mt_half_pack_ref(enum mt_prec p, uint16_t *dst, const float *src, size_t n);
/* dst[i] = float(src[i]) (exact). */
void mt_half_unpack(enum mt_prec p, float *dst, const uint16_t *src, size_t n);
/* Sum of squares of the n 16-bit values src, in double: decoded `chunk` values at a time
 * into buf (chunk floats, left holding the last chunk), mt_k_sumsq of each chunk added in
 * order, so the order is fixed by chunk alone. The 16-bit span's part of the one gradient
 * norm (mt_k_grad_norm). */
double mt_half_sumsq(enum mt_prec p, const uint16_t *src, size_t n, float *buf, size_t chunk);
void mt_half_unpack_ref(enum mt_prec p, float *dst, const uint16_t *src, size_t n);
/* x[i] = float(16-bit(x[i])) in place; a no-op for FP32. */
void mt_half_round(enum mt_prec p, float *x, size_t n);

/* g[i] = 16-bit(float(g[i]) + d[i]) (gradient accumulation into 16-bit storage).
 * Counts into *nonzero the d[i] != 0 and into *flushed those whose own 16-bit value is
 * zero (the contribution underflowed). */
void mt_half_accumulate(enum mt_prec p, uint16_t *g, const float *d, size_t n, size_t *nonzero,
                        size_t *flushed);

/* 1 when any of the n values is inf or NaN. */
int mt_half_nonfinite(enum mt_prec p, const uint16_t *h, size_t n);

#ifdef __cplusplus
}
#endif
#endif
