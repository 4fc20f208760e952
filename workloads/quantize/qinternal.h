/* qinternal.h — what the mt_quant source files share and nobody else sees.
 *
 * What it is for: the prepared-activation record passed from the dispatcher to the
 * scalar and AVX-512 kernels, CPU feature probes, and the AVX-512 conversion entry
 * points. What it is not for: any public API (see qformat.h, qkernels.h).
 */
#ifndef MT_QUANT_QINTERNAL_H
#define MT_QUANT_QINTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "qformat.h"

/* Activations as the kernels consume them. Rows are k_pad long, zero padded. */
struct mt_qprep {
    size_t m;            /* token rows */
    size_t k_pad;        /* = the tensor's k_pad */
    size_t units;        /* = the tensor's units_per_row */
    const float *x;      /* m x k_pad fp32 (fp32-activation kernels) */
    const float *xsum;   /* m x units: sum of x over each unit (linear schemes) */
    const int8_t *qa;    /* m x k_pad int8 (int8-activation kernels) */
    const float *sa;     /* m per-token activation scales */
    const int32_t *asum; /* m x units: sum of qa over each unit */
    const int8_t *qp;    /* m x k_pad: qa in bit-plane order (mt_q_plane_order), or NULL */
    const float *xp;     /* m x k_pad: x in nibble order (mt_q_nib_order), or NULL */
};

static inline int mt_q_is_linear(enum mt_qscheme s)
{
    return s == MT_QS_LINEAR_ASYM || s == MT_QS_LINEAR_SYM;
}
static inline int mt_q_is_codebook(enum mt_qscheme s)
{
    return s == MT_QS_NF || s == MT_QS_KMEANS || s == MT_QS_LOG;
}
static inline int mt_q_is_half(enum mt_qscheme s)
{
    return s == MT_QS_FP16 || s == MT_QS_BF16;
}

/* Index of the metadata of unit u in row r (see struct mt_qtensor). */
static inline size_t mt_q_meta(const struct mt_qtensor *qt, size_t r, size_t u)
{
    return r * qt->meta_row_stride + u;
}
/* The codebook of unit (r, u), or NULL for non-codebook schemes. */
static inline const float *mt_q_lut(const struct mt_qtensor *qt, size_t r, size_t u)
{
    if (!qt->lut) return NULL;
    if (qt->fmt.scheme != MT_QS_KMEANS) return qt->lut;
    return qt->lut + mt_q_meta(qt, r, u) * qt->lut_len;
}

/* CPU probes (cached by the caller if it cares; each is a cpuid read). */
/* Refits unit idx's scale (and offset) from its values v[cnt] (not kmeans): imp NULL =
 * exactly what packing fits; with importance weights imp[i % imp_len], the scale and
 * offset minimising sum imp (v - q(v))^2 over shrunken ranges and their weighted least
 * squares, never worse under that weight than the plain fit (qcalib.c's imatrix, GPTQ). */
void mt_q_fit_unit(struct mt_qtensor *qt, size_t idx, const float *v, const float *imp,
                   size_t imp_len, size_t cnt);
/* v as unit u of row r stores it: its nearest level, decoded. */
float mt_q_round(const struct mt_qtensor *qt, size_t r, size_t u, float v);

int mt_q_cpu_avx512(void); /* AVX512 F+BW+VL */
int mt_q_cpu_vnni(void);   /* the above + AVX512-VNNI */
int mt_q_cpu_bf16(void);   /* the above + AVX512-BF16 */

/* Scalar references (qkernels_ref.c). y is m x n. */
void mt_q_gemm_f32_ref(const struct mt_qtensor *w, const struct mt_qprep *p, float *y);
void mt_q_gemm_i8_ref(const struct mt_qtensor *w, const struct mt_qprep *p, float *y);

/* AVX-512 kernels (qkernels_avx512.c); callers check the CPU first. */
void mt_q_gemm_f32_avx512(const struct mt_qtensor *w, const struct mt_qprep *p, float *y);
void mt_q_gemm_i8_avx512(const struct mt_qtensor *w, const struct mt_qprep *p, float *y);
/* The bit-plane int8 kernels (4-bit codes in units of 128k columns, 2-bit in units of
 * exactly 128 or of 256k; fewer than four token rows) serve this call: mt_qgemm then
 * hands them p->qp, qa reordered by mt_q_plane_order. */
int mt_q_plane_ok(const struct mt_qtensor *w, size_t m);
/* a[k_pad] reordered so that byte j of the 64-byte plane n of a code chunk (n = 0, 1 for
 * 4-bit chunks of 128 columns, 0..3 for 2-bit chunks of 256) is the activation of the
 * code that plane takes from code byte j of the chunk (qformat.h's layouts). */
void mt_q_plane_order(const int8_t *a, size_t k_pad, unsigned bits, int8_t *out);
/* The fp32-activation nibble kernels (4-bit codes, linear or 16-entry codebooks, units of
 * 128k columns, fewer than four token rows) serve this call: mt_qgemm then hands them
 * p->xp, x reordered by mt_q_nib_order so that the 16 floats at 128 c + 16 t are the
 * activations of nibble t of the 16 dwords of the 64-byte code chunk c. */
int mt_q_nib_ok(const struct mt_qtensor *w, size_t m);
void mt_q_nib_order(const float *x, size_t k_pad, float *out);
/* Per-token int8 quantization of x[m x k] into qa[m x k_pad] (padding 0), scales sa[m]
 * and unit sums asum[m x k_pad / unit_len]: the reference is qkernels.c's scalar
 * mt_q_quantize_rows; the AVX-512 one gives the same bytes (tests compare). */
void mt_q_quantize_rows(const float *x, size_t m, size_t k, size_t k_pad, size_t unit_len,
                        int8_t *qa, float *sa, int32_t *asum);
void mt_q_quantize_rows_avx512(const float *x, size_t m, size_t k, size_t k_pad, size_t unit_len,
                               int8_t *qa, float *sa, int32_t *asum);
void mt_q_f32_to_bf16_avx512(const float *x, uint16_t *out, size_t n);
void mt_q_f32_to_f16_avx512(const float *x, uint16_t *out, size_t n);

#endif
