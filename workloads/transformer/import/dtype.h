/* dtype.h — the element types of model files (safetensors, GGUF) and their conversion to
 * and from fp32: F32, F16, BF16, and GGUF's Q8_0 and Q4_0 blocks of 32 values.
 *
 * What it is for: decoding a stored tensor into the model's fp32 weights on load, and
 * encoding fp32 weights for export, bit-exactly as the reference implementations do
 * (IEEE half with round-to-nearest-even; bfloat16 by rounding the top 16 bits to nearest
 * even; Q8_0 and Q4_0 as ggml's quantize_row_*_ref). Plain scalar code: loading is
 * bounded by the disk, not by these loops.
 * What it is not for: quantized inference (workloads/quantize packs its own formats).
 */
#ifndef MT_IMPORT_DTYPE_H
#define MT_IMPORT_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mt_dtype { MT_DT_F32 = 0, MT_DT_F16, MT_DT_BF16, MT_DT_Q8_0, MT_DT_Q4_0, MT_DT_COUNT };

/* "F32", "F16", "BF16", "Q8_0", "Q4_0". */
const char *mt_dtype_name(enum mt_dtype t);

/* Bytes of n values of type t; n must be a multiple of 32 for the block types (else 0). */
size_t mt_dtype_bytes(enum mt_dtype t, size_t n);

/* Values per block: 32 for Q8_0 and Q4_0, 1 otherwise. */
size_t mt_dtype_block(enum mt_dtype t);

/* IEEE binary16 / bfloat16 to float (exact) and back (round to nearest, ties to even;
 * NaN stays NaN, overflow becomes infinity). */
float mt_f16_to_f32(uint16_t h);
uint16_t mt_f32_to_f16(float x);
float mt_bf16_to_f32(uint16_t h);
uint16_t mt_f32_to_bf16(float x);

/* Decodes n values of type t (n a multiple of mt_dtype_block(t)) from src (any alignment)
 * into dst. */
void mt_dtype_decode(enum mt_dtype t, const void *src, float *dst, size_t n);

/* Encodes n floats into dst (mt_dtype_bytes(t, n) bytes) as ggml's reference quantizers
 * do for the block types (one scale per 32 values: Q8_0 d = max|x|/127, q = round(x/d);
 * Q4_0 d = -m/8 with m the value of largest magnitude, q = min(15, (int)(x/d + 8.5))). */
void mt_dtype_encode(enum mt_dtype t, const float *src, void *dst, size_t n);

#ifdef __cplusplus
}
#endif
#endif
