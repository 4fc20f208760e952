/* sparse_kernels.c — y = x·W^T on every mt_sparse format: scalar references and AVX-512.
 *
 * What it is for: the multiply behind mt_sparse_matmul(). The scalar reference walks the
 * stored non-zeros of each row in storage order, one x row at a time; tests compare the
 * fast paths against it. The AVX-512 paths:
 *   - small mrows (< SPMM_MIN_ROWS): per output row, x rows in blocks of 4. DENSE streams
 *     16-wide FMAs; CSR runs an unrolled scalar loop (faster than vgatherdps on AMD, see
 *     row_csr_unrolled); BITMAP expands 16 packed values into a dense vector with vexpandps
 *     (register form) under the bitmap's 16-bit mask; NM decodes 16 in-group indices into
 *     a permutation of 16, 32 or 64 consecutive x values (a gather when wider).
 *   - mrows >= SPMM_MIN_ROWS: y^T = W·x^T with x transposed once into a padded workspace
 *     of 64-row chunks; each stored non-zero (c, v) adds v·x^T[c, chunk] to its output
 *     row's 64 accumulators, input columns walked in L1-sized tiles (see spmm_chunk).
 * OpenMP splits output rows; the parallel loop sits in plain C and calls per-row functions
 * compiled with target("avx512...") so the file builds for any x86-64 and dispatches at
 * run time. What it is not for: dense layers in a model (use oneDNN there), mask choice.
 */
#include "sparse.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/memcat.h>

#define SPMM_MIN_ROWS 64
/* Multiply-adds below which a call stays on one thread: a parallel region costs a few
 * microseconds and, on a loaded machine, a wait for a descheduled thread. */
#define PAR_MIN_WORK ((size_t)1 << 18)

/* Multiply-adds one call does (stored values x rows of x). */
static size_t call_work(const struct mt_sparse *s, size_t mrows)
{
    size_t stored = s->format == MT_SPARSE_DENSE ? s->rows * s->cols
                    : s->format == MT_SPARSE_NM  ? s->rows * (s->cols / s->m * s->n)
                                                 : s->nnz;
    return stored * mrows;
}
#define XBLOCK 4
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,popcnt,bmi,bmi2")))
#define INLINE inline __attribute__((always_inline))

int mt_sparse_have_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
}

static unsigned nm_index(const struct mt_sparse *s, const uint8_t *row_idx, size_t j)
{
    /* bits is 2 or 4: shifts instead of divisions, this runs once per stored value */
    size_t bit = j * s->idx_bits;
    return (row_idx[bit >> 3] >> (bit & 7)) & ((1u << s->idx_bits) - 1);
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
        k = s->row_off[r + 1] - s->row_off[r];
        memcpy(vals, s->values + s->row_off[r], k * sizeof(float));
        for (size_t j = 0, p = s->row_off[r]; j < k; j++, p++)
            cols[j] = s->idx_bits == 16 ? ((const uint16_t *)s->col_idx)[p]
                                        : ((const uint32_t *)s->col_idx)[p];
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
        size_t per_row = s->cols / s->m * s->n, group = 0;
        const uint8_t *ir = s->nm_idx + r * s->nm_row_bytes;
        for (size_t j = 0, in_group = 0; j < per_row; j++) {
            cols[k] = (uint32_t)(group + nm_index(s, ir, j));
            vals[k++] = s->values[r * per_row + j];
            if (++in_group == s->n) {
                in_group = 0;
                group += s->m;
            }
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

/* ---------------------------------------------------------------- CSR, small mrows */

/* CSR for small mrows: y[i][r] for x rows i < nb, four independent scalar sums per x row.
 * Measured on AMD Zen 5 (mt-bench-sparse, 3072x768, one thread) this beats a 16-wide
 * vgatherdps loop at every sparsity (1.2x at 90 %, 1.5x at 0 %): AMD's gathers issue one
 * element per cycle at best, while three scalar loads per non-zero pipeline freely. So the
 * fast CSR path is plain C, parallelised over rows by the caller like the others. */
static void row_csr_unrolled(const struct mt_sparse *s, size_t r, const float *x, size_t nb,
                             const float *bias, float *y)
{
    size_t p0 = s->row_off[r], end = s->row_off[r + 1];
    const float *v = s->values;
    const uint16_t *c16 = s->col_idx;
    const uint32_t *c32 = s->col_idx;
    for (size_t i = 0; i < nb; i++) {
        const float *xi = x + i * s->cols;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        size_t p = p0;
/* Non-zeros p..end of row r against xi into a0..a3, the column indexes read through idx
 * (16- or 32-bit: one loop for both widths). */
#define CSR_DOT4(idx)                                                                              \
    do {                                                                                           \
        for (; p + 4 <= end; p += 4) {                                                             \
            a0 += v[p] * xi[idx[p]];                                                               \
            a1 += v[p + 1] * xi[idx[p + 1]];                                                       \
            a2 += v[p + 2] * xi[idx[p + 2]];                                                       \
            a3 += v[p + 3] * xi[idx[p + 3]];                                                       \
        }                                                                                          \
        for (; p < end; p++)                                                                       \
            a0 += v[p] * xi[idx[p]];                                                               \
    } while (0)
        if (s->idx_bits == 16)
            CSR_DOT4(c16);
        else
            CSR_DOT4(c32);
#undef CSR_DOT4
        y[i * s->rows + r] = (a0 + a1) + (a2 + a3) + (bias ? bias[r] : 0.0f);
    }
}

/* ---------------------------------------------------------------- AVX-512, small mrows */

/* Accumulators: two per x row, acc[2*i] for even chunks and acc[2*i + 1] for odd ones, so
 * consecutive chunks do not wait on each other's FMA latency (what bounds a one-row GEMV).
 * Every chunk helper takes `acc` already offset by the parity as a compile-time constant:
 * with everything inlined and nb constant, the array then lives in registers. */
#define NACC (2 * XBLOCK)

static inline __mmask16 tail_mask(size_t rem)
{
    return rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1);
}

/* acc[2i] += w * x[i][0 .. 16) for the nb rows of the block, x loads masked by lm. */
AVX512 INLINE static void fma_x(__m512 *acc, __m512 w, const float *x, size_t k_in, size_t nb,
                                __mmask16 lm)
{
    for (size_t i = 0; i < nb; i++)
        acc[2 * i] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(lm, x + i * k_in), acc[2 * i]);
}

AVX512 INLINE static void dense_chunk(const struct mt_sparse *s, const float *wr, const float *x,
                                      size_t c, size_t nb, __mmask16 lm, __m512 *acc)
{
    fma_x(acc, _mm512_maskz_loadu_ps(lm, wr + c), x + c, s->cols, nb, lm);
}

AVX512 INLINE static void row_dense_avx(const struct mt_sparse *s, size_t r, const float *x,
                                        size_t nb, __m512 acc[NACC])
{
    const float *wr = s->values + r * s->cols;
    size_t c = 0;
    for (; c + 32 <= s->cols; c += 32) {
        dense_chunk(s, wr, x, c, nb, 0xFFFF, acc);
        dense_chunk(s, wr, x, c + 16, nb, 0xFFFF, acc + 1);
    }
    for (; c < s->cols; c += 16)
        dense_chunk(s, wr, x, c, nb, tail_mask(s->cols - c), acc);
}

/* The packed values are loaded (masked to the ones this chunk owns, so the load never
 * leaves the block) and expanded in registers: the memory form of vexpandps is microcoded
 * and several times slower on AMD Zen 4/5. Returns the values consumed. */
AVX512 INLINE static unsigned bitmap_chunk(const struct mt_sparse *s, __mmask16 bm, const float *v,
                                           const float *x, size_t c, size_t nb, __mmask16 lm,
                                           __m512 *acc)
{
    unsigned cnt = (unsigned)__builtin_popcount(bm);
    __m512 packed = _mm512_maskz_loadu_ps((__mmask16)_bzhi_u32(0xFFFF, cnt), v);
    fma_x(acc, _mm512_maskz_expand_ps(bm, packed), x + c, s->cols, nb, lm);
    return cnt;
}

/* Full 64-column words take four chunks from one load with unmasked x loads; only the
 * last partial word pays for tail masks. */
AVX512 INLINE static void row_bitmap_avx(const struct mt_sparse *s, size_t r, const float *x,
                                         size_t nb, __m512 acc[NACC])
{
    const uint64_t *bits = s->bitmap + r * s->bitmap_words;
    const float *v = s->values + s->row_off[r];
    size_t c = 0;
    for (; c + 64 <= s->cols; c += 64) {
        uint64_t wd = bits[c / 64];
        v += bitmap_chunk(s, (__mmask16)wd, v, x, c, nb, 0xFFFF, acc);
        v += bitmap_chunk(s, (__mmask16)(wd >> 16), v, x, c + 16, nb, 0xFFFF, acc + 1);
        v += bitmap_chunk(s, (__mmask16)(wd >> 32), v, x, c + 32, nb, 0xFFFF, acc);
        v += bitmap_chunk(s, (__mmask16)(wd >> 48), v, x, c + 48, nb, 0xFFFF, acc + 1);
    }
    for (; c < s->cols; c += 16)
        v += bitmap_chunk(s, (__mmask16)(bits[c / 64] >> (c % 64)), v, x, c, nb,
                          tail_mask(s->cols - c), acc);
}

/* NM with n dividing 16: 16 stored values cover span = 16/n*m consecutive columns, and
 * their in-group indices fill 32 (2-bit) or 64 (4-bit) consecutive index bits. */
struct nm_decode {
    __m512i base, shift, imask, bit5;
    size_t per_row, span, chunk_bytes;
    unsigned bits;
};

AVX512 INLINE static void nm_chunk(const struct mt_sparse *s, const struct nm_decode *d,
                                   const float *v, const uint8_t *ir, const float *x, size_t q,
                                   size_t nb, __m512 *acc)
{
    size_t j = q * 16, rem = d->per_row - j, col0 = q * d->span;
    uint64_t word = 0;
    const uint8_t *src = ir + q * d->chunk_bytes;
    if (rem >= 16 && d->bits == 2) {
        uint32_t w32;
        memcpy(&w32, src, sizeof(w32));
        word = w32;
    } else if (rem >= 16) {
        memcpy(&word, src, sizeof(word));
    } else {
        for (size_t k = 0; k < (rem * d->bits + 7) / 8; k++)
            word |= (uint64_t)src[k] << (8 * k);
    }
    __m512i lo = _mm512_set1_epi32((int32_t)(uint32_t)word);
    __m512i packed =
        d->bits == 2
            ? lo
            : _mm512_mask_blend_epi32(0xFF00, lo, _mm512_set1_epi32((int32_t)(word >> 32)));
    __m512i idx =
        _mm512_add_epi32(_mm512_and_si512(_mm512_srlv_epi32(packed, d->shift), d->imask), d->base);
    if (rem >= 16) {
        __m512 w = _mm512_loadu_ps(v + j);
        for (size_t i = 0; i < nb; i++) {
            const float *xc = x + i * s->cols + col0;
            __m512 xs;
            if (d->span == 32) {
                xs = _mm512_permutex2var_ps(_mm512_loadu_ps(xc), idx, _mm512_loadu_ps(xc + 16));
            } else if (d->span == 64) { /* two 32-wide permutes, picked by index bit 5 */
                __m512 x_lo =
                    _mm512_permutex2var_ps(_mm512_loadu_ps(xc), idx, _mm512_loadu_ps(xc + 16));
                __m512 x_hi =
                    _mm512_permutex2var_ps(_mm512_loadu_ps(xc + 32), idx, _mm512_loadu_ps(xc + 48));
                xs = _mm512_mask_mov_ps(x_lo, _mm512_test_epi32_mask(idx, d->bit5), x_hi);
            } else if (d->span == 16)
                xs = _mm512_permutexvar_ps(idx, _mm512_loadu_ps(xc));
            else
                xs = _mm512_i32gather_ps(idx, xc, 4);
            acc[2 * i] = _mm512_fmadd_ps(w, xs, acc[2 * i]);
        }
    } else {
        __mmask16 lm = tail_mask(rem);
        __m512 w = _mm512_maskz_loadu_ps(lm, v + j);
        for (size_t i = 0; i < nb; i++)
            acc[2 * i] = _mm512_fmadd_ps(
                w,
                _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lm, idx, x + i * s->cols + col0, 4),
                acc[2 * i]);
    }
}

AVX512 INLINE static void row_nm_avx(const struct mt_sparse *s, size_t r, const float *x, size_t nb,
                                     __m512 acc[NACC])
{
    struct nm_decode d;
    d.per_row = s->cols / s->m * s->n;
    d.span = 16 / s->n * s->m;
    d.bits = s->idx_bits;
    d.chunk_bytes = 2 * d.bits; /* 16 values x bits / 8 */
    int32_t base_a[16], shift_a[16];
    for (int j = 0; j < 16; j++) {
        base_a[j] = (int32_t)((unsigned)j / s->n * s->m);
        shift_a[j] = (int32_t)(d.bits == 2 ? 2 * j : 4 * (j % 8));
    }
    d.base = _mm512_loadu_si512(base_a);
    d.shift = _mm512_loadu_si512(shift_a);
    d.imask = _mm512_set1_epi32((1 << d.bits) - 1);
    d.bit5 = _mm512_set1_epi32(32);
    const float *v = s->values + r * d.per_row;
    const uint8_t *ir = s->nm_idx + r * s->nm_row_bytes;
    size_t nq = (d.per_row + 15) / 16, q = 0;
    for (; q + 2 <= nq; q += 2) {
        nm_chunk(s, &d, v, ir, x, q, nb, acc);
        nm_chunk(s, &d, v, ir, x, q + 1, nb, acc + 1);
    }
    for (; q < nq; q++)
        nm_chunk(s, &d, v, ir, x, q, nb, acc);
}

/* y[i][r] for the nb (<= XBLOCK) x rows starting at x. Inlined into one function per
 * constant nb below, so the loops over i unroll and the accumulators live in registers
 * (with a run-time nb they would round-trip through the stack on every FMA). */
AVX512 INLINE static void row_small_body(const struct mt_sparse *s, size_t r, const float *x,
                                         const size_t nb, const float *bias, float *y)
{
    __m512 acc[NACC];
    for (size_t i = 0; i < NACC; i++)
        acc[i] = _mm512_setzero_ps();
    switch (s->format) {
    case MT_SPARSE_DENSE:
        row_dense_avx(s, r, x, nb, acc);
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
        y[i * s->rows + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[2 * i], acc[2 * i + 1])) +
                             (bias ? bias[r] : 0.0f);
}

#define ROW_SMALL(NB)                                                                              \
    AVX512 static void row_small_##NB(const struct mt_sparse *s, size_t r, const float *x,         \
                                      const float *bias, float *y)                                 \
    {                                                                                              \
        row_small_body(s, r, x, NB, bias, y);                                                      \
    }
ROW_SMALL(1)
ROW_SMALL(2)
ROW_SMALL(3)
ROW_SMALL(4)

/* ---------------------------------------------------------------- AVX-512, SpMM */

/* Layout: x^T and y^T are stored in chunks of SPMM_LANES consecutive x rows, each chunk
 * [K or N][SPMM_LANES] floats, so the 64 columns of x^T one tile of the loop touches are
 * 16 KiB of contiguous memory (L1-resident; a plain [K][M] layout would put them 4 KiB
 * apart, all in one L1 set). Each thread owns a contiguous block of output rows; for
 * every chunk it walks the input columns in tiles of ~64 and, for each of its rows, adds
 * the row's non-zeros in that tile to the row's 64 accumulators (four zmm registers),
 * loaded from and stored back to y^T once per (row, tile). */
#define SPMM_LANES 64

/* a0..a3 += v * xr[0..64): a macro over four named accumulators, not an array, so they
 * stay in registers (an indexed array went through the stack on every FMA). */
#define SPMM_FMA(v, xr)                                                                            \
    do {                                                                                           \
        __m512 bv_ = _mm512_set1_ps(v);                                                            \
        const float *xr_ = (xr);                                                                   \
        a0 = _mm512_fmadd_ps(bv_, _mm512_load_ps(xr_), a0);                                        \
        a1 = _mm512_fmadd_ps(bv_, _mm512_load_ps(xr_ + 16), a1);                                   \
        a2 = _mm512_fmadd_ps(bv_, _mm512_load_ps(xr_ + 32), a2);                                   \
        a3 = _mm512_fmadd_ps(bv_, _mm512_load_ps(xr_ + 48), a3);                                   \
    } while (0)

/* Rows [r0, r1) of one chunk: xt is [K][64], yt is [N][64]; cur holds r1-r0 cursors. */
AVX512 static void spmm_chunk(const struct mt_sparse *s, const float *xt, float *yt, size_t r0,
                              size_t r1, uint32_t *cur)
{
    size_t K = s->cols, kt = s->format == MT_SPARSE_NM ? 64 / s->m * s->m : 64;
    size_t per_row = s->format == MT_SPARSE_NM ? K / s->m * s->n : 0;
    for (size_t r = r0; r < r1; r++)
        cur[r - r0] =
            s->format == MT_SPARSE_CSR || s->format == MT_SPARSE_BITMAP ? s->row_off[r] : 0;
    for (size_t k0 = 0; k0 < K; k0 += kt) {
        size_t k1 = k0 + kt < K ? k0 + kt : K;
        for (size_t r = r0; r < r1; r++) {
            float *yr = yt + r * SPMM_LANES;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            if (k0) {
                a0 = _mm512_load_ps(yr);
                a1 = _mm512_load_ps(yr + 16);
                a2 = _mm512_load_ps(yr + 32);
                a3 = _mm512_load_ps(yr + 48);
            }
            uint32_t p = cur[r - r0];
            switch (s->format) {
            case MT_SPARSE_DENSE:
                for (size_t c = k0; c < k1; c++)
                    SPMM_FMA(s->values[r * K + c], xt + c * SPMM_LANES);
                break;
            case MT_SPARSE_CSR:
                for (uint32_t end = s->row_off[r + 1]; p < end; p++) {
                    size_t c = s->idx_bits == 16 ? ((const uint16_t *)s->col_idx)[p]
                                                 : ((const uint32_t *)s->col_idx)[p];
                    if (c >= k1) break;
                    SPMM_FMA(s->values[p], xt + c * SPMM_LANES);
                }
                break;
            case MT_SPARSE_BITMAP:
                for (uint64_t w = s->bitmap[r * s->bitmap_words + k0 / 64]; w; w &= w - 1)
                    SPMM_FMA(s->values[p++], xt + (k0 + (size_t)__builtin_ctzll(w)) * SPMM_LANES);
                break;
            case MT_SPARSE_NM: {
                const uint8_t *ir = s->nm_idx + r * s->nm_row_bytes;
                const float *vr = s->values + r * per_row;
                unsigned bits = s->idx_bits, mask = (1u << bits) - 1;
                for (size_t g = k0 / s->m, j = g * s->n; g < k1 / s->m; g++) {
                    const float *xg = xt + g * s->m * SPMM_LANES;
                    for (size_t e = 0; e < s->n; e++, j++) {
                        size_t bit = j * bits;
                        SPMM_FMA(vr[j], xg + ((ir[bit >> 3] >> (bit & 7)) & mask) * SPMM_LANES);
                    }
                }
                break;
            }
            default:
                break;
            }
            cur[r - r0] = p;
            _mm512_store_ps(yr, a0);
            _mm512_store_ps(yr + 16, a1);
            _mm512_store_ps(yr + 32, a2);
            _mm512_store_ps(yr + 48, a3);
        }
    }
}

static size_t spmm_padded_rows(size_t mrows)
{
    return (mrows + SPMM_LANES - 1) / SPMM_LANES * SPMM_LANES;
}

static int spmm_avx(const struct mt_sparse *s, const float *x, size_t mrows, const float *bias,
                    float *y)
{
    size_t n_out = s->rows, k_in = s->cols, mp = spmm_padded_rows(mrows);
    size_t chunks = mp / SPMM_LANES;
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    float *xt = aligned_alloc(64, k_in * mp * sizeof(float));
    float *yt = aligned_alloc(64, n_out * mp * sizeof(float));
    mt_memcat_set(prev);
    if (!xt || !yt) {
        free(xt);
        free(yt);
        return -1;
    }
    int par = call_work(s, mrows) >= PAR_MIN_WORK;
#pragma omp parallel for schedule(static) if (par)
    for (size_t c = 0; c < k_in; c++)
        for (size_t i = 0; i < mp; i++)
            xt[(i / SPMM_LANES * k_in + c) * SPMM_LANES + i % SPMM_LANES] =
                i < mrows ? x[i * k_in + c] : 0.0f;
    int failed = 0;
#pragma omp parallel reduction(| : failed) if (par)
    {
        size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
        size_t per = (n_out + nt - 1) / nt, r0 = t * per < n_out ? t * per : n_out;
        size_t r1 = r0 + per < n_out ? r0 + per : n_out;
        uint32_t *cur = malloc((per ? per : 1) * sizeof(*cur));
        if (!cur) failed = 1;
        for (size_t ch = 0; cur && ch < chunks; ch++)
            spmm_chunk(s, xt + ch * k_in * SPMM_LANES, yt + ch * n_out * SPMM_LANES, r0, r1, cur);
        free(cur);
    }
    if (!failed) {
#pragma omp parallel for schedule(static) if (par)
        for (size_t i = 0; i < mrows; i++)
            for (size_t r = 0; r < n_out; r++)
                y[i * n_out + r] = yt[(i / SPMM_LANES * n_out + r) * SPMM_LANES + i % SPMM_LANES] +
                                   (bias ? bias[r] : 0.0f);
    }
    free(xt);
    free(yt);
    return failed ? -1 : 0;
}

/* ---------------------------------------------------------------- dispatch */

static void small_avx(const struct mt_sparse *s, const float *x, size_t mrows, const float *bias,
                      float *y)
{
    static void (*const row_fn[XBLOCK + 1])(const struct mt_sparse *, size_t, const float *,
                                            const float *, float *) = {
        NULL, row_small_1, row_small_2, row_small_3, row_small_4};
    int par = call_work(s, mrows) >= PAR_MIN_WORK;
    for (size_t i0 = 0; i0 < mrows; i0 += XBLOCK) {
        size_t nb = mrows - i0 < XBLOCK ? mrows - i0 : XBLOCK;
        const float *xb = x + i0 * s->cols;
        float *yb = y + i0 * s->rows;
        if (s->format == MT_SPARSE_CSR) {
#pragma omp parallel for schedule(static) if (par)
            for (size_t r = 0; r < s->rows; r++)
                row_csr_unrolled(s, r, xb, nb, bias, yb);
        } else {
#pragma omp parallel for schedule(static) if (par)
            for (size_t r = 0; r < s->rows; r++)
                row_fn[nb](s, r, xb, bias, yb);
        }
    }
}

static int scalar(const struct mt_sparse *s, const float *x, size_t mrows, const float *bias,
                  float *y)
{
    uint32_t *cols = malloc(s->cols * sizeof(*cols));
    float *vals = malloc(s->cols * sizeof(*vals));
    int ok = cols && vals;
    if (ok) matmul_scalar(s, x, mrows, bias, y, cols, vals);
    free(cols);
    free(vals);
    return ok ? 0 : -1;
}

size_t mt_sparse_matmul_scratch(const struct mt_sparse *w, size_t mrows, enum mt_sparse_impl impl,
                                size_t threads)
{
    size_t decode = w->cols * (sizeof(uint32_t) + sizeof(float));
    int avx = impl != MT_SPARSE_IMPL_SCALAR && mt_sparse_have_avx512();
    if (avx && mrows >= SPMM_MIN_ROWS) {
        size_t per = threads ? (w->rows + threads - 1) / threads : w->rows;
        return (w->cols + w->rows) * spmm_padded_rows(mrows) * sizeof(float) +
               threads * (per ? per : 1) * sizeof(uint32_t);
    }
    if (avx && !(w->format == MT_SPARSE_NM && 16 % w->n != 0)) return 0;
    return decode;
}

const char *const mt_sparse_path_names[MT_SPARSE_PATH_COUNT] = {"scalar", "avx512_rows",
                                                                "avx512_spmm"};

int mt_sparse_matmul_ex(const struct mt_sparse *w, const float *x, size_t mrows, const float *bias,
                        float *y, enum mt_sparse_impl impl, enum mt_sparse_path *path,
                        int *fallback)
{
    int want = impl != MT_SPARSE_IMPL_SCALAR, avx = want && mt_sparse_have_avx512();
    int fb = want && !avx, rc = 0;
    enum mt_sparse_path ran;
    if (avx && mrows >= SPMM_MIN_ROWS) {
        const char *fail = getenv("MT_TEST_SPMM_FAIL"); /* tests only; see sparse.h */
        if (!(fail && fail[0] == '1') && spmm_avx(w, x, mrows, bias, y) == 0) {
            ran = MT_SPARSE_PATH_AVX512_SPMM;
            goto done;
        }
        fb = 1;
    }
    if (avx && !(w->format == MT_SPARSE_NM && 16 % w->n != 0)) {
        small_avx(w, x, mrows, bias, y);
        ran = MT_SPARSE_PATH_AVX512_ROWS;
    } else {
        rc = scalar(w, x, mrows, bias, y);
        ran = MT_SPARSE_PATH_SCALAR;
        fb |= avx; /* the row kernels cannot take this N:M pattern */
    }
done:
    if (path) *path = ran;
    if (fallback) *fallback = fb;
    return rc;
}

int mt_sparse_matmul(const struct mt_sparse *w, const float *x, size_t mrows, const float *bias,
                     float *y, enum mt_sparse_impl impl)
{
    return mt_sparse_matmul_ex(w, x, mrows, bias, y, impl, NULL, NULL);
}
