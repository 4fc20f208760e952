/* kvkernels_avx512.c — AVX-512 kernels of the KV-cache attention (kvkernels.h).
 *
 * What it is for: attention straight from the packed cache: codes are widened in
 * registers (bytes by vpmovzxbd; 4-bit rows 32 at a time, low nibbles the even elements
 * and high ones the odd; 2-bit codes by per-lane shifts of a broadcast word, 3-bit ones
 * by shifts of each 3-byte chunk's dword: two low bits and one high bit per lane), then
 * multiplied with the query or accumulated with the probability. Scores run 16 tokens at
 * a time: one vector of partial products per token, the 16 reduced by one tree. Per-token
 * groups weigh their partial products by their scale and add m * sum q; per-channel
 * (KIVI key) groups fold the scales into the query once per group of tokens
 * (sum (q s) c + sum q m). The weighted sum keeps the output in registers over a run and
 * decodes each element (s c + m) off the accumulator's chain. Compiled for AVX-512 whatever the
 * build flags and called only after mt_kvk_avx512_ok(), so the file builds for any
 * x86-64. The sums run in another order than the reference's: they agree to float
 * rounding (tests/transformer/test_kvcache.c states the bound).
 * What it is not for: shapes whose head dimension or group is not a multiple of 16 (the
 * reference runs those; fp32 runs kvkernels.c's loops).
 */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")
#include "kvkernels.h"

#include <immintrin.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

int mt_kvk_avx512_ok(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

/* 16 elements i0 .. i0+15 of a row, as floats (16-bit kinds) or as code values. */
INLINE __m512 load16(enum mt_kvk_kind kind, const uint8_t *row, size_t i0)
{
    switch (kind) {
    case MT_KVK_F32:
        return _mm512_loadu_ps(row + 4 * i0);
    case MT_KVK_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(row + 2 * i0))), 16));
    case MT_KVK_F16:
        return _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(row + 2 * i0)));
    case MT_KVK_TOK8:
        return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)(row + i0))));
    case MT_KVK_TOK4:
    case MT_KVK_CHAN4: {
        uint64_t w;
        memcpy(&w, row + i0 / 2, 8);
        __m512i x = _mm512_permutexvar_epi32(
            _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
            _mm512_castsi128_si512(_mm_cvtsi64_si128((long long)w)));
        x = _mm512_srlv_epi32(
            x, _mm512_set_epi32(28, 24, 20, 16, 12, 8, 4, 0, 28, 24, 20, 16, 12, 8, 4, 0));
        return _mm512_cvtepi32_ps(_mm512_and_si512(x, _mm512_set1_epi32(15)));
    }
    case MT_KVK_TOK3:
    case MT_KVK_CHAN3: {
        /* 16 codes in 6 bytes: the 24 bits of each 8 codes in one dword (bytes 0-2 for
         * lanes 0-7, 3-5 for lanes 8-15); the low 2 bits at 2j, the high one at 16 + j */
        __m128i b = _mm_maskz_loadu_epi8(0x3f, row + 3 * i0 / 8);
        b = _mm_shuffle_epi8(
            b, _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1, -1));
        __m512i x = _mm512_permutexvar_epi32(
            _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
            _mm512_castsi128_si512(b));
        __m512i lo = _mm512_srlv_epi32(
            x, _mm512_set_epi32(14, 12, 10, 8, 6, 4, 2, 0, 14, 12, 10, 8, 6, 4, 2, 0));
        __m512i hi = _mm512_srlv_epi32(
            x, _mm512_set_epi32(21, 20, 19, 18, 17, 16, 15, 14, 21, 20, 19, 18, 17, 16, 15, 14));
        return _mm512_cvtepi32_ps(_mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(3)),
                                                  _mm512_and_si512(hi, _mm512_set1_epi32(4))));
    }
    default: { /* 2-bit */
        uint32_t w;
        memcpy(&w, row + i0 / 4, 4);
        __m512i x = _mm512_srlv_epi32(
            _mm512_set1_epi32((int)w),
            _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0));
        return _mm512_cvtepi32_ps(_mm512_and_si512(x, _mm512_set1_epi32(3)));
    }
    }
}

INLINE int is_tok(enum mt_kvk_kind kind)
{
    return kind == MT_KVK_TOK8 || kind == MT_KVK_TOK4 || kind == MT_KVK_TOK3 || kind == MT_KVK_TOK2;
}
INLINE int is_chan(enum mt_kvk_kind kind)
{
    return kind == MT_KVK_CHAN4 || kind == MT_KVK_CHAN3 || kind == MT_KVK_CHAN2;
}

/* The quantized kinds: kvcache.c prefetches their tiles ahead (prefetch_tile), so their
 * kernels do not. */
INLINE int quant_kind(enum mt_kvk_kind kind)
{
    return is_tok(kind) || is_chan(kind);
}

/* Prefetches token t of a view: its rb code bytes and, per token, its groups' scales and
 * minima (per-channel scales are read once per group of tokens: left to the hardware). */
INLINE void prefetch_token(enum mt_kvk_kind kind, const struct mt_kvk_view *w, size_t t, size_t rb,
                           size_t groups)
{
    mt_kvk_prefetch(w->codes + t * w->stride, rb);
    if (is_tok(kind)) {
        mt_kvk_prefetch(w->scl + t * w->par_stride, groups * 2);
        mt_kvk_prefetch(w->mn + t * w->par_stride, groups * 2);
    }
}

#define MAXV (256 / 16) /* vectors of a head of MT_KVC_MAX_HEAD_DIM */
/* The group loops read qv[i] for i < hs / 16 only (G divides hs), which GCC cannot see.
 * gv[i] = 16 i / G, the group of vector i, is computed once per call, not a division per
 * vector and token (G is not a constant). */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

/* Lane j of the result = the sum of v[j]'s 16 lanes, by one tree that treats every lane
 * alike (a token's dot does not depend on its place among the 16). */
INLINE __m512 reduce16(const __m512 *v)
{
    __m512 a[8], b[4], c[2];
    for (int i = 0; i < 8; i++)
        a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                             _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++) {
        __m512d x = _mm512_castps_pd(a[2 * i]), y = _mm512_castps_pd(a[2 * i + 1]);
        b[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    for (int i = 0; i < 2; i++)
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x88),
                         _mm512_shuffle_f32x4(c[0], c[1], 0xdd));
}

/* 4-bit rows 32 elements at a time: 16 bytes widened once (vpmovzxbd), the low nibbles
 * are the even elements, the high ones the odd; the other operand is split alike. */
static const int even_idx[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
static const int odd_idx[16] = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
static const int lo_idx[16] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
static const int hi_idx[16] = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
INLINE void nibbles(const uint8_t *p, __m512 *even, __m512 *odd)
{
    __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)p));
    *even = _mm512_cvtepi32_ps(_mm512_and_si512(b, _mm512_set1_epi32(15)));
    *odd = _mm512_cvtepi32_ps(_mm512_srli_epi32(b, 4));
}
INLINE void split(__m512 a, __m512 b, __m512 *even, __m512 *odd)
{
    *even = _mm512_permutex2var_ps(a, _mm512_loadu_si512(even_idx), b);
    *odd = _mm512_permutex2var_ps(a, _mm512_loadu_si512(odd_idx), b);
}
INLINE void merge(__m512 even, __m512 odd, __m512 *a, __m512 *b)
{
    *a = _mm512_permutex2var_ps(even, _mm512_loadu_si512(lo_idx), odd);
    *b = _mm512_permutex2var_ps(even, _mm512_loadu_si512(hi_idx), odd);
}

/* The scores, 16 tokens at a time: per token a vector of partial products (per-token
 * groups weighed by their scale), the 16 reduced together by reduce16; minima enter as
 * m * sum q per group (per token) or sum q m per token group (per channel). hs is a
 * constant where the caller can make it one, so the query stays in registers. */
INLINE void scores_body(enum mt_kvk_kind kind, float *att, const float *q,
                        const struct mt_kvk_view *k, size_t n, float scale, size_t hs, size_t G)
{
    __m512 qv[MAXV], v[16], qe[MAXV / 2], qo[MAXV / 2];
    float qsum[MAXV], bias[16], cbias = 0.0f;
    size_t nv = hs / 16, ng = is_tok(kind) ? hs / G : 1, rb = hs * mt_kvk_bits(kind) / 8;
    size_t pf = quant_kind(kind) ? 0 : mt_kvk_prefetch_ahead(k->stride), gv[MAXV];
    for (size_t i = 0; i < nv; i++)
        qv[i] = _mm512_loadu_ps(q + 16 * i), gv[i] = 16 * i / G;
    if (is_tok(kind))
        for (size_t g = 0; g < ng; g++) {
            __m512 sv = _mm512_setzero_ps();
            for (size_t i = g * G / 16; i < (g + 1) * G / 16; i++)
                sv = _mm512_add_ps(sv, _mm512_loadu_ps(q + 16 * i));
            qsum[g] = _mm512_reduce_add_ps(sv);
        }
    for (size_t t0 = 0; t0 < n; t0 += 16) {
        size_t m = n - t0 < 16 ? n - t0 : 16;
        if (is_chan(kind) && t0 % G == 0) { /* a new token group: its scales into the query */
            const uint16_t *sc = k->scl + (t0 / G) * k->par_stride,
                           *mn = k->mn + (t0 / G) * k->par_stride;
            __m512 b = _mm512_setzero_ps();
            for (size_t i = 0; i < nv; i++) {
                __m512 x = _mm512_loadu_ps(q + 16 * i);
                qv[i] = _mm512_mul_ps(
                    x, _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(sc + 16 * i))));
                b = _mm512_fmadd_ps(
                    x, _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(mn + 16 * i))), b);
            }
            cbias = _mm512_reduce_add_ps(b);
            if (kind == MT_KVK_CHAN4 && hs % 32 == 0)
                for (size_t c = 0; c < hs / 32; c++)
                    split(qv[2 * c], qv[2 * c + 1], &qe[c], &qo[c]);
        }
        for (size_t j = 0; j < 16; j++) {
            size_t t = t0 + j;
            if (j >= m) {
                v[j] = _mm512_setzero_ps(), bias[j] = 0.0f;
                continue;
            }
            const uint8_t *row = k->codes + t * k->stride;
            if (pf && t + pf < n) prefetch_token(kind, k, t + pf, rb, ng);
            __m512 acc = _mm512_setzero_ps();
            if (is_tok(kind)) { /* loops over constant bounds: the query stays in registers */
                const uint16_t *sc = k->scl + t * k->par_stride, *mn = k->mn + t * k->par_stride;
                float b = 0.0f, sf[MAXV];
                for (size_t g = 0; g < ng; g++) /* each scale converted once, not per vector */
                    sf[g] = mt_kvk_h2f(sc[g]), b += mt_kvk_h2f(mn[g]) * qsum[g];
                for (size_t i = 0; i < nv; i++)
                    acc = _mm512_fmadd_ps(_mm512_mul_ps(qv[i], _mm512_set1_ps(sf[gv[i]])),
                                          load16(kind, row, 16 * i), acc);
                bias[j] = b;
            } else if (kind == MT_KVK_CHAN4 && hs % 32 == 0) {
                for (size_t c = 0; c < hs / 32; c++) {
                    __m512 e, o;
                    nibbles(row + 16 * c, &e, &o);
                    acc = _mm512_fmadd_ps(qo[c], o, _mm512_fmadd_ps(qe[c], e, acc));
                }
                bias[j] = cbias;
            } else {
                for (size_t i = 0; i < nv; i++)
                    acc = _mm512_fmadd_ps(qv[i], load16(kind, row, 16 * i), acc);
                bias[j] = cbias;
            }
            v[j] = acc;
        }
        __m512 r =
            _mm512_mul_ps(_mm512_add_ps(reduce16(v), _mm512_loadu_ps(bias)), _mm512_set1_ps(scale));
        _mm512_mask_storeu_ps(att + t0, (__mmask16)((1u << m) - 1u), r);
    }
}

/* Calls body with the kind and the common head dimensions (32, 64, 128) as constants,
 * so each instance has its loads and loop bounds fixed. */
#define DISPATCH_HS(body, kind, hs, ...)                                                           \
    do {                                                                                           \
        if ((hs) == 32)                                                                            \
            body(kind, __VA_ARGS__, 32, G);                                                        \
        else if ((hs) == 64)                                                                       \
            body(kind, __VA_ARGS__, 64, G);                                                        \
        else if ((hs) == 128)                                                                      \
            body(kind, __VA_ARGS__, 128, G);                                                       \
        else                                                                                       \
            body(kind, __VA_ARGS__, hs, G);                                                        \
    } while (0)
#define DISPATCH(body, kind, hs, ...)                                                              \
    do {                                                                                           \
        switch (kind) {                                                                            \
        case MT_KVK_F32:                                                                           \
            DISPATCH_HS(body, MT_KVK_F32, hs, __VA_ARGS__);                                        \
            break;                                                                                 \
        case MT_KVK_BF16:                                                                          \
            DISPATCH_HS(body, MT_KVK_BF16, hs, __VA_ARGS__);                                       \
            break;                                                                                 \
        case MT_KVK_F16:                                                                           \
            DISPATCH_HS(body, MT_KVK_F16, hs, __VA_ARGS__);                                        \
            break;                                                                                 \
        case MT_KVK_TOK8:                                                                          \
            DISPATCH_HS(body, MT_KVK_TOK8, hs, __VA_ARGS__);                                       \
            break;                                                                                 \
        case MT_KVK_TOK4:                                                                          \
            DISPATCH_HS(body, MT_KVK_TOK4, hs, __VA_ARGS__);                                       \
            break;                                                                                 \
        case MT_KVK_TOK3:                                                                          \
            DISPATCH_HS(body, MT_KVK_TOK3, hs, __VA_ARGS__);                                       \
            break;                                                                                 \
        case MT_KVK_TOK2:                                                                          \
            DISPATCH_HS(body, MT_KVK_TOK2, hs, __VA_ARGS__);                                       \
            break;                                                                                 \
        case MT_KVK_CHAN4:                                                                         \
            DISPATCH_HS(body, MT_KVK_CHAN4, hs, __VA_ARGS__);                                      \
            break;                                                                                 \
        case MT_KVK_CHAN3:                                                                         \
            DISPATCH_HS(body, MT_KVK_CHAN3, hs, __VA_ARGS__);                                      \
            break;                                                                                 \
        default:                                                                                   \
            DISPATCH_HS(body, MT_KVK_CHAN2, hs, __VA_ARGS__);                                      \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

void mt_kvk_scores_avx512(enum mt_kvk_kind kind, float *att, const float *q,
                          const struct mt_kvk_view *k, size_t n, size_t hs, size_t G, float scale)
{
    DISPATCH(scores_body, kind, hs, att, q, k, n, scale);
}

/* The weighted sum with the output in registers: o += a_t (s c_t + m) per token, the
 * element decoded by one fma off the accumulator's chain; token after token, so a run
 * split anywhere sums alike. */
INLINE void accum_body(enum mt_kvk_kind kind, float *o, const float *att, float inv,
                       const struct mt_kvk_view *v, size_t n, size_t hs, size_t G)
{
    __m512 acc[MAXV];
    size_t nv = hs / 16, ng = is_tok(kind) ? hs / G : 1, rb = hs * mt_kvk_bits(kind) / 8;
    size_t pf = quant_kind(kind) ? 0 : mt_kvk_prefetch_ahead(v->stride), gv[MAXV];
    /* 4-bit values with one group per 32 elements: acc[2c], acc[2c + 1] hold the even and
     * odd elements of chunk c */
    int eo = kind == MT_KVK_TOK4 && hs % 32 == 0 && G % 32 == 0;
    for (size_t i = 0; i < nv; i++)
        acc[i] = _mm512_loadu_ps(o + 16 * i), gv[i] = 16 * i / G;
    if (eo)
        for (size_t c = 0; c < hs / 32; c++)
            split(acc[2 * c], acc[2 * c + 1], &acc[2 * c], &acc[2 * c + 1]);
    for (size_t t = 0; t < n; t++) {
        const uint8_t *row = v->codes + t * v->stride;
        __m512 av = _mm512_set1_ps(att[t] * inv);
        if (pf && t + pf < n) prefetch_token(kind, v, t + pf, rb, ng);
        if (eo) {
            const uint16_t *sc = v->scl + t * v->par_stride, *mn = v->mn + t * v->par_stride;
            for (size_t c = 0; c < hs / 32; c++) {
                size_t g = gv[2 * c];
                __m512 sv = _mm512_set1_ps(mt_kvk_h2f(sc[g])),
                       mv = _mm512_set1_ps(mt_kvk_h2f(mn[g]));
                __m512 e, od;
                nibbles(row + 16 * c, &e, &od);
                acc[2 * c] = _mm512_fmadd_ps(av, _mm512_fmadd_ps(sv, e, mv), acc[2 * c]);
                acc[2 * c + 1] = _mm512_fmadd_ps(av, _mm512_fmadd_ps(sv, od, mv), acc[2 * c + 1]);
            }
        } else if (is_tok(kind)) { /* loops over constant bounds: the output stays in registers */
            const uint16_t *sc = v->scl + t * v->par_stride, *mn = v->mn + t * v->par_stride;
            float sf[MAXV], mf[MAXV];
            for (size_t g = 0; g < ng; g++) /* each scale converted once, not per vector */
                sf[g] = mt_kvk_h2f(sc[g]), mf[g] = mt_kvk_h2f(mn[g]);
            for (size_t i = 0; i < nv; i++) {
                __m512 x = _mm512_fmadd_ps(_mm512_set1_ps(sf[gv[i]]), load16(kind, row, 16 * i),
                                           _mm512_set1_ps(mf[gv[i]]));
                acc[i] = _mm512_fmadd_ps(av, x, acc[i]);
            }
        } else {
            for (size_t i = 0; i < nv; i++)
                acc[i] = _mm512_fmadd_ps(av, load16(kind, row, 16 * i), acc[i]);
        }
    }
    if (eo)
        for (size_t c = 0; c < hs / 32; c++)
            merge(acc[2 * c], acc[2 * c + 1], &acc[2 * c], &acc[2 * c + 1]);
    for (size_t i = 0; i < nv; i++)
        _mm512_storeu_ps(o + 16 * i, acc[i]);
}

void mt_kvk_accum_avx512(enum mt_kvk_kind kind, float *o, const float *att, float inv,
                         const struct mt_kvk_view *v, size_t n, size_t hs, size_t G)
{
    DISPATCH(accum_body, kind, hs, o, att, inv, v, n);
}
