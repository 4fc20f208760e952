/* sparse_kernels.c — y = x·W^T on every mt_sparse format: scalar references and AVX-512.
 *
 * What it is for: the multiply behind mt_sparse_matmul(). The scalar reference walks the
 * stored non-zeros of each row in storage order, one x row at a time; tests compare the
 * fast paths against it. The AVX-512 paths:
 *   - small mrows (< SPMM_MIN_ROWS): per output row, x rows in blocks of 4; CSR gathers x
 *     at the column indices, BITMAP expands 16 packed values to a dense vector with
 *     vexpandps under the bitmap's 16-bit mask, NM decodes 16 in-group indices into a
 *     permutation of 32 (or 16) consecutive x values (a gather when the span is wider).
 *   - mrows >= SPMM_MIN_ROWS: y^T = W·x^T with x transposed once into a padded workspace;
 *     each stored non-zero (c, v) adds v·x^T[c, :] to the output row, 16 x rows per lane.
 * OpenMP splits output rows; the parallel loop sits in plain C and calls per-row functions
 * compiled with target("avx512...") so the file builds for any x86-64 and dispatches at
 * run time. What it is not for: dense layers in a model (use oneDNN there), mask choice.
 */
#include "sparse.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/memcat.h>

#define SPMM_MIN_ROWS 16
#define XBLOCK 4
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,popcnt,bmi")))

int mt_sparse_have_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

static unsigned nm_index(const struct mt_sparse *s, const uint8_t *row_idx, size_t j)
{
    unsigned per_byte = 8 / s->idx_bits, shift = (unsigned)(j % per_byte) * s->idx_bits;
    return (row_idx[j / per_byte] >> shift) & ((1u << s->idx_bits) - 1);
}

/* Decodes row r into (column, value) pairs in storage order; returns how many. Used by the
 * scalar reference and by the SpMM path. cols/vals hold at least s->cols entries. */
static size_t row_entries(const struct mt_sparse *s, size_t r, uint32_t *cols, float *vals)
{
    size_t k = 0;
    switch (s->format) {
    case MT_SPARSE_DENSE:
        for (size_t c = 0; c < s->cols; c++) {
            cols[k] = (uint32_t)c;
            vals[k++] = s->values[r * s->cols + c];
        }
        break;
    case MT_SPARSE_CSR:
        for (size_t p = s->row_off[r]; p < s->row_off[r + 1]; p++) {
            cols[k] = s->idx_bits == 16 ? ((const uint16_t *)s->col_idx)[p]
                                        : ((const uint32_t *)s->col_idx)[p];
            vals[k++] = s->values[p];
        }
        break;
    case MT_SPARSE_BITMAP: {
        const uint64_t *bits = s->bitmap + r * s->bitmap_words;
        size_t p = s->row_off[r];
        for (size_t w = 0; w < s->bitmap_words; w++)
            for (uint64_t b = bits[w]; b; b &= b - 1) {
                cols[k] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(b));
                vals[k++] = s->values[p++];
            }
        break;
    }
    case MT_SPARSE_NM: {
        size_t per_row = s->cols / s->m * s->n;
        const uint8_t *ir = s->nm_idx + r * s->nm_row_bytes;
        for (size_t j = 0; j < per_row; j++) {
            cols[k] = (uint32_t)(j / s->n * s->m + nm_index(s, ir, j));
            vals[k++] = s->values[r * per_row + j];
        }
        break;
    }
    default:
        break;
    }
    return k;
}

/* ---------------------------------------------------------------- scalar reference */

static void matmul_scalar(const struct mt_sparse *s, const float *x, size_t mrows,
                          const float *bias, float *y, uint32_t *cols, float *vals)
{
    size_t n_out = s->rows, k_in = s->cols;
    for (size_t r = 0; r < n_out; r++) {
        size_t nnz = row_entries(s, r, cols, vals);
        for (size_t i = 0; i < mrows; i++) {
            const float *xi = x + i * k_in;
            float acc = 0.0f;
            for (size_t j = 0; j < nnz; j++)
                acc += vals[j] * xi[cols[j]];
            y[i * n_out + r] = acc + (bias ? bias[r] : 0.0f);
        }
    }
}

/* ---------------------------------------------------------------- AVX-512, small mrows */

/* acc[i] += w * x[i][col0 .. col0+16) for the nb rows of the block, loads masked by lm. */
AVX512 static inline void fma_dense_block(__m512 acc[XBLOCK], __m512 w, const float *x,
                                          size_t k_in, size_t nb, __mmask16 lm)
{
    for (size_t i = 0; i < nb; i++)
        acc[i] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(lm, x + i * k_in), acc[i]);
}

AVX512 static void row_dense_avx(const struct mt_sparse *s, size_t r, const float *x,
                                 size_t nb, __m512 acc[XBLOCK])
{
    const float *wr = s->values + r * s->cols;
    for (size_t c = 0; c < s->cols; c += 16) {
        size_t rem = s->cols - c;
        __mmask16 lm = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
        fma_dense_block(acc, _mm512_maskz_loadu_ps(lm, wr + c), x + c, s->cols, nb, lm);
    }
}

AVX512 static void row_csr_avx(const struct mt_sparse *s, size_t r, const float *x, size_t nb,
                               __m512 acc[XBLOCK])
{
    size_t p = s->row_off[r], end = s->row_off[r + 1];
    for (; p < end; p += 16) {
        size_t rem = end - p;
        __mmask16 lm = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
        __m512i idx;
        if (s->idx_bits == 16)
            idx = _mm512_cvtepu16_epi32(
                _mm256_maskz_loadu_epi16(lm, (const uint16_t *)s->col_idx + p));
        else
            idx = _mm512_maskz_loadu_epi32(lm, (const uint32_t *)s->col_idx + p);
        __m512 w = _mm512_maskz_loadu_ps(lm, s->values + p);
        for (size_t i = 0; i < nb; i++)
            acc[i] = _mm512_fmadd_ps(
                w, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lm, idx, x + i * s->cols, 4),
                acc[i]);
    }
}

AVX512 static void row_bitmap_avx(const struct mt_sparse *s, size_t r, const float *x,
                                  size_t nb, __m512 acc[XBLOCK])
{
    const uint64_t *bits = s->bitmap + r * s->bitmap_words;
    const float *v = s->values + s->row_off[r];
    for (size_t c = 0; c < s->cols; c += 16) {
        __mmask16 bm = (__mmask16)(bits[c / 64] >> (c % 64));
        if (!bm)
            continue;
        size_t rem = s->cols - c;
        __mmask16 lm = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
        __m512 w = _mm512_maskz_expandloadu_ps(bm, v);
        v += __builtin_popcount(bm);
        fma_dense_block(acc, w, x + c, s->cols, nb, lm);
    }
}

/* NM with n dividing 16: 16 stored values cover span = 16/n*m consecutive columns, and
 * their in-group indices fill 32 (2-bit) or 64 (4-bit) consecutive index bits. */
AVX512 static void row_nm_avx(const struct mt_sparse *s, size_t r, const float *x, size_t nb,
                              __m512 acc[XBLOCK])
{
    size_t per_row = s->cols / s->m * s->n, span = 16 / s->n * s->m;
    const float *v = s->values + r * per_row;
    const uint8_t *ir = s->nm_idx + r * s->nm_row_bytes;
    unsigned bits = s->idx_bits;
    int32_t base_a[16], shift_a[16];
    for (int j = 0; j < 16; j++) {
        base_a[j] = (int32_t)((unsigned)j / s->n * s->m);
        shift_a[j] = (int32_t)(bits == 2 ? 2 * j : 4 * (j % 8));
    }
    __m512i base = _mm512_loadu_si512(base_a), shift = _mm512_loadu_si512(shift_a);
    __m512i imask = _mm512_set1_epi32((1 << bits) - 1);
    size_t chunk_bytes = 2 * bits; /* 16 values x bits / 8 */
    for (size_t j = 0, q = 0; j < per_row; j += 16, q++) {
        size_t rem = per_row - j, col0 = q * span;
        uint64_t word = 0;
        size_t nbytes = rem >= 16 ? chunk_bytes : (rem * bits + 7) / 8;
        memcpy(&word, ir + q * chunk_bytes, nbytes);
        __m512i packed = bits == 2 ? _mm512_set1_epi32((int32_t)(uint32_t)word)
                                   : _mm512_mask_blend_epi32(
                                         0xFF00, _mm512_set1_epi32((int32_t)(uint32_t)word),
                                         _mm512_set1_epi32((int32_t)(uint32_t)(word >> 32)));
        __m512i idx = _mm512_add_epi32(
            _mm512_and_si512(_mm512_srlv_epi32(packed, shift), imask), base);
        if (rem >= 16) {
            __m512 w = _mm512_loadu_ps(v + j);
            for (size_t i = 0; i < nb; i++) {
                const float *xc = x + i * s->cols + col0;
                __m512 xs;
                if (span == 32)
                    xs = _mm512_permutex2var_ps(_mm512_loadu_ps(xc), idx,
                                                _mm512_loadu_ps(xc + 16));
                else if (span == 16)
                    xs = _mm512_permutexvar_ps(idx, _mm512_loadu_ps(xc));
                else
                    xs = _mm512_i32gather_ps(idx, xc, 4);
                acc[i] = _mm512_fmadd_ps(w, xs, acc[i]);
            }
        } else {
            __mmask16 lm = (__mmask16)((1u << rem) - 1);
            __m512 w = _mm512_maskz_loadu_ps(lm, v + j);
            for (size_t i = 0; i < nb; i++)
                acc[i] = _mm512_fmadd_ps(
                    w,
                    _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lm, idx,
                                             x + i * s->cols + col0, 4),
                    acc[i]);
        }
    }
}

/* y[i][r] for the nb (<= XBLOCK) x rows starting at x. */
AVX512 static void row_small_avx(const struct mt_sparse *s, size_t r, const float *x,
                                 size_t nb, const float *bias, float *y)
{
    __m512 acc[XBLOCK];
    for (size_t i = 0; i < XBLOCK; i++)
        acc[i] = _mm512_setzero_ps();
    switch (s->format) {
    case MT_SPARSE_DENSE:
        row_dense_avx(s, r, x, nb, acc);
        break;
    case MT_SPARSE_CSR:
        row_csr_avx(s, r, x, nb, acc);
        break;
    case MT_SPARSE_BITMAP:
        row_bitmap_avx(s, r, x, nb, acc);
        break;
    case MT_SPARSE_NM:
        row_nm_avx(s, r, x, nb, acc);
        break;
    default:
        break;
    }
    for (size_t i = 0; i < nb; i++)
        y[i * s->rows + r] = _mm512_reduce_add_ps(acc[i]) + (bias ? bias[r] : 0.0f);
}

/* ---------------------------------------------------------------- AVX-512, SpMM */

/* yt[r, 0..mp) = sum over entries (c, v) of v * xt[c, 0..mp); mp is a multiple of 16. */
AVX512 static void row_spmm_avx(const uint32_t *cols, const float *vals, size_t nnz,
                                const float *xt, size_t mp, float *yt_row)
{
    for (size_t m0 = 0; m0 < mp; m0 += 64) {
        size_t lanes = (mp - m0) / 16 < 4 ? (mp - m0) / 16 : 4;
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
        for (size_t j = 0; j < nnz; j++) {
            __m512 v = _mm512_set1_ps(vals[j]);
            const float *xr = xt + (size_t)cols[j] * mp + m0;
            for (size_t l = 0; l < lanes; l++)
                acc[l] = _mm512_fmadd_ps(v, _mm512_loadu_ps(xr + 16 * l), acc[l]);
        }
        for (size_t l = 0; l < lanes; l++)
            _mm512_storeu_ps(yt_row + m0 + 16 * l, acc[l]);
    }
}

static int spmm_avx(const struct mt_sparse *s, const float *x, size_t mrows, const float *bias,
                    float *y)
{
    size_t n_out = s->rows, k_in = s->cols, mp = (mrows + 15) / 16 * 16;
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    float *xt = aligned_alloc(64, k_in * mp * sizeof(float));
    float *yt = aligned_alloc(64, n_out * mp * sizeof(float));
    mt_memcat_set(prev);
    if (!xt || !yt) {
        free(xt);
        free(yt);
        return -1;
    }
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < k_in; c++)
        for (size_t i = 0; i < mp; i++)
            xt[c * mp + i] = i < mrows ? x[i * k_in + c] : 0.0f;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        uint32_t *cols = malloc(k_in * sizeof(*cols));
        float *vals = malloc(k_in * sizeof(*vals));
        if (!cols || !vals)
            failed = 1;
        else {
#pragma omp for schedule(static)
            for (size_t r = 0; r < n_out; r++) {
                size_t nnz = row_entries(s, r, cols, vals);
                row_spmm_avx(cols, vals, nnz, xt, mp, yt + r * mp);
            }
        }
        free(cols);
        free(vals);
    }
    if (!failed) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < mrows; i++)
            for (size_t r = 0; r < n_out; r++)
                y[i * n_out + r] = yt[r * mp + i] + (bias ? bias[r] : 0.0f);
    }
    free(xt);
    free(yt);
    return failed ? -1 : 0;
}

/* ---------------------------------------------------------------- dispatch */

static void small_avx(const struct mt_sparse *s, const float *x, size_t mrows,
                      const float *bias, float *y)
{
    for (size_t i0 = 0; i0 < mrows; i0 += XBLOCK) {
        size_t nb = mrows - i0 < XBLOCK ? mrows - i0 : XBLOCK;
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < s->rows; r++)
            row_small_avx(s, r, x + i0 * s->cols, nb, bias, y + i0 * s->rows);
    }
}

static int scalar(const struct mt_sparse *s, const float *x, size_t mrows, const float *bias,
                  float *y)
{
    uint32_t *cols = malloc(s->cols * sizeof(*cols));
    float *vals = malloc(s->cols * sizeof(*vals));
    int ok = cols && vals;
    if (ok)
        matmul_scalar(s, x, mrows, bias, y, cols, vals);
    free(cols);
    free(vals);
    return ok ? 0 : -1;
}

int mt_sparse_matmul(const struct mt_sparse *w, const float *x, size_t mrows, const float *bias,
                     float *y, enum mt_sparse_impl impl)
{
    int avx = impl != MT_SPARSE_IMPL_SCALAR && mt_sparse_have_avx512();
    if (avx && mrows >= SPMM_MIN_ROWS && spmm_avx(w, x, mrows, bias, y) == 0)
        return 0;
    if (avx && !(w->format == MT_SPARSE_NM && 16 % w->n != 0)) {
        small_avx(w, x, mrows, bias, y);
        return 0;
    }
    return scalar(w, x, mrows, bias, y);
}
