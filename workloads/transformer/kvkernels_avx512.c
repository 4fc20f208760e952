/* kvkernels_avx512.c — AVX-512 kernels of the KV-cache attention (kvkernels.h).
 *
 * What it is for: attention straight from the packed cache: 16 codes at a time are
 * widened in registers (bytes by vpmovzxbd; 4- and 2-bit codes by one permute of the
 * packed words and per-lane shifts), then multiplied with the query or accumulated with
 * the probability. Per-token groups fold their scale and minimum into the group's dot
 * (s * sum q c + m * sum q); per-channel (KIVI key) groups fold the scales into the query
 * once per group of tokens (sum (q s) c + sum q m). Compiled for AVX-512 whatever the
 * build flags and called only after mt_kvk_avx512_ok(), so the file builds for any
 * x86-64. The sums run in another order than the reference's: they agree to float
 * rounding (tests/transformer/test_kvcache.c states the bound).
 * What it is not for: fp32 (kvkernels.c), shapes whose head dimension or group is not a
 * multiple of 16 (the reference runs those).
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
    return kind == MT_KVK_TOK8 || kind == MT_KVK_TOK4 || kind == MT_KVK_TOK2;
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

void mt_kvk_scores_avx512(enum mt_kvk_kind kind, float *att, const float *q,
                          const struct mt_kvk_view *k, size_t n, size_t hs, size_t G, float scale)
{
    float qs[256], qsum[16], bias = 0.0f;
    if (is_tok(kind))
        for (size_t g = 0; g < hs / G; g++) {
            __m512 s = _mm512_setzero_ps();
            for (size_t i = g * G; i < g * G + G; i += 16)
                s = _mm512_add_ps(s, _mm512_loadu_ps(q + i));
            qsum[g] = _mm512_reduce_add_ps(s);
        }
    size_t rb = hs * mt_kvk_bits(kind) / 8, pf = mt_kvk_prefetch_ahead(k->stride);
    for (size_t t = 0; t < n; t++) {
        const uint8_t *row = k->codes + t * k->stride;
        float dot = 0.0f;
        if (pf && t + pf < n) prefetch_token(kind, k, t + pf, rb, hs / G);
        if (kind == MT_KVK_CHAN4 || kind == MT_KVK_CHAN2) {
            if (t % G == 0) { /* a new token group: fold its scales into the query */
                const uint16_t *s = k->scl + (t / G) * k->par_stride,
                               *m = k->mn + (t / G) * k->par_stride;
                __m512 b = _mm512_setzero_ps();
                for (size_t i = 0; i < hs; i += 16) {
                    __m512 qv = _mm512_loadu_ps(q + i);
                    __m512 sv = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(s + i)));
                    __m512 mv = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(m + i)));
                    _mm512_storeu_ps(qs + i, _mm512_mul_ps(qv, sv));
                    b = _mm512_fmadd_ps(qv, mv, b);
                }
                bias = _mm512_reduce_add_ps(b);
            }
            __m512 acc = _mm512_setzero_ps();
            for (size_t i = 0; i < hs; i += 16)
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(qs + i), load16(kind, row, i), acc);
            dot = _mm512_reduce_add_ps(acc) + bias;
        } else if (is_tok(kind)) {
            const uint16_t *s = k->scl + t * k->par_stride, *m = k->mn + t * k->par_stride;
            for (size_t g = 0; g < hs / G; g++) {
                __m512 acc = _mm512_setzero_ps();
                for (size_t i = g * G; i < g * G + G; i += 16)
                    acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load16(kind, row, i), acc);
                dot += mt_kvk_h2f(s[g]) * _mm512_reduce_add_ps(acc) + mt_kvk_h2f(m[g]) * qsum[g];
            }
        } else {
            __m512 acc = _mm512_setzero_ps();
            for (size_t i = 0; i < hs; i += 16)
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load16(kind, row, i), acc);
            dot = _mm512_reduce_add_ps(acc);
        }
        att[t] = dot * scale;
    }
}

void mt_kvk_accum_avx512(enum mt_kvk_kind kind, float *o, const float *att, float inv,
                         const struct mt_kvk_view *v, size_t n, size_t hs, size_t G)
{
    size_t rb = hs * mt_kvk_bits(kind) / 8, pf = mt_kvk_prefetch_ahead(v->stride);
    for (size_t t = 0; t < n; t++) {
        const uint8_t *row = v->codes + t * v->stride;
        float a = att[t] * inv;
        if (pf && t + pf < n) prefetch_token(kind, v, t + pf, rb, hs / G);
        if (is_tok(kind)) {
            const uint16_t *s = v->scl + t * v->par_stride, *m = v->mn + t * v->par_stride;
            for (size_t g = 0; g < hs / G; g++) {
                __m512 as = _mm512_set1_ps(a * mt_kvk_h2f(s[g]));
                __m512 am = _mm512_set1_ps(a * mt_kvk_h2f(m[g]));
                for (size_t i = g * G; i < g * G + G; i += 16)
                    _mm512_storeu_ps(o + i,
                                     _mm512_fmadd_ps(as, load16(kind, row, i),
                                                     _mm512_add_ps(_mm512_loadu_ps(o + i), am)));
            }
        } else {
            __m512 av = _mm512_set1_ps(a);
            for (size_t i = 0; i < hs; i += 16)
                _mm512_storeu_ps(o + i,
                                 _mm512_fmadd_ps(av, load16(kind, row, i), _mm512_loadu_ps(o + i)));
        }
    }
}
