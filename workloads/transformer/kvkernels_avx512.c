/* kvkernels_avx512.c — AVX-512 kernels of the KV-cache attention (kvkernels.h).
 *
 * What it is for: attention straight from the packed cache: codes are widened in
 * registers (bytes by vpmovzxbd; 4-bit rows 32 at a time, low nibbles the even elements
 * and high ones the odd; 2-bit codes by per-lane shifts of a broadcast word, 3-bit ones
 * by shifts of each 3-byte chunk's dword: two low bits and one high bit per lane) and
 * made floats by one vpermps from a table of the code values, then multiplied with the
 * query or accumulated with the probability. Scores run 16 tokens at a time, unrolled so
 * their 16 vectors of partial products stay in registers, reduced by one tree. Per-token
 * groups weigh their partial products by their scale (one group: the 16 reduced dots at
 * once) and add m * sum q, the 16 tokens' scales and minima loaded together
 * (h16_rows); per-channel (KIVI key) groups fold the scales into the query once per
 * group of tokens (sum (q s) c + sum q m). The weighted sum of per-token values keeps
 * its output in registers as sets of accumulators by position (mt_kvk_accum_avx512): one
 * fma per vector of codes with w = a s, the minima's share a m added in 16 lanes per 16
 * tokens; fp32 and 16-bit values one token after another. Compiled for AVX-512 whatever the
 * build flags and called only after mt_kvk_avx512_ok(), so the file builds for any
 * x86-64. The sums run in another order than the reference's: they agree to float
 * rounding (tests/transformer/test_kvcache.c states the bound).
 * What it is not for: shapes whose head dimension or group is not a multiple of 16 (the
 * reference runs those; fp32 runs kvkernels.c's loops).
 */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma")
#include "kvkernels.h"

#include <immintrin.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

int mt_kvk_avx512_ok(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

int mt_kvk_avx512_vnni_ok(void)
{
    return mt_kvk_avx512_ok() && __builtin_cpu_supports("avx512vnni");
}

/* Bits per code of a packed kind, a constant where the kind is one (mt_kvk_bits is not
 * inlined here). */
INLINE unsigned bits_of(enum mt_kvk_kind kind)
{
    return kind == MT_KVK_TOK8                           ? 8
           : kind == MT_KVK_TOK4 || kind == MT_KVK_CHAN4 ? 4
           : kind == MT_KVK_TOK3 || kind == MT_KVK_CHAN3 ? 3
                                                         : 2;
}

/* The code values 0 .. 15 as floats: vpermps reads the low 4 bits of each index lane, so a
 * code sitting in the low bits of a lane becomes its float in one instruction whatever lies
 * above those 4 bits; for 2- and 3-bit codes the table repeats every 4 or 8 entries, so the
 * bits between the code and bit 4 need no masking either. Exact (small integers). */
INLINE __m512 code_table(unsigned bits)
{
    return bits == 2   ? _mm512_setr_ps(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3)
           : bits == 3 ? _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7)
                       : _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/* Codes i0 .. i0+15 of a 4-, 3- or 2-bit row, one per 32-bit lane in its low bits, with
 * other bits above them (code_table ignores those; mask them for integers). */
INLINE __m512i raw16(enum mt_kvk_kind kind, const uint8_t *row, size_t i0)
{
    switch (kind) {
    case MT_KVK_TOK4:
    case MT_KVK_CHAN4: {
        uint64_t w;
        memcpy(&w, row + i0 / 2, 8);
        __m512i x = _mm512_permutexvar_epi32(
            _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
            _mm512_castsi128_si512(_mm_cvtsi64_si128((long long)w)));
        return _mm512_srlv_epi32(
            x, _mm512_set_epi32(28, 24, 20, 16, 12, 8, 4, 0, 28, 24, 20, 16, 12, 8, 4, 0));
    }
    case MT_KVK_TOK3:
    case MT_KVK_CHAN3: {
        /* 16 codes in 6 bytes: the 24 bits of each 8 codes in one dword (bytes 0-2 for
         * lanes 0-7, 3-5 for lanes 8-15); the low 2 bits at 2j, the high one at 16 + j:
         * shifted to bits 0-1 and to bit 2, merged by one bitwise select */
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
        /* (lo & 3) | (hi & ~3): bit 2 is the high bit, bits from 3 on are other codes' */
        return _mm512_ternarylogic_epi32(lo, hi, _mm512_set1_epi32(3), 0xe4);
    }
    default: { /* 2-bit */
        uint32_t w;
        memcpy(&w, row + i0 / 4, 4);
        return _mm512_srlv_epi32(
            _mm512_set1_epi32((int)w),
            _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0));
    }
    }
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
    default:
        return _mm512_permutexvar_ps(raw16(kind, row, i0), code_table(bits_of(kind)));
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
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                             _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512d x = _mm512_castps_pd(a[2 * i]), y = _mm512_castps_pd(a[2 * i + 1]);
        b[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
#pragma GCC unroll 2
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
    *even = _mm512_permutexvar_ps(b, code_table(4));
    *odd = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), code_table(4));
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

/* How h16_rows picks 16 fp16 values p[j * ps], j < m (m <= 16), for ps <= 8: the up to
 * 128 uint16 they lie in as four masked loads (masked at the last value, never past it),
 * lane j from loads 0-1 at j ps or from loads 2-3 at j ps - 64 by two vpermt2w and a
 * blend. Made once per view for full batches (m = 16). */
struct h16_plan {
    __m512i i0, i1;
    __mmask32 k[4], hi;
};
INLINE struct h16_plan h16_plan_of(size_t ps, size_t m)
{
    struct h16_plan pl;
    size_t L = (m - 1) * ps + 1; /* uint16 from p that hold the values */
    for (size_t c = 0; c < 4; c++) {
        size_t lim = L > 32 * c ? L - 32 * c : 0;
        pl.k[c] = lim >= 32 ? 0xffffffffu : (__mmask32)((1u << lim) - 1u);
    }
    pl.i0 = _mm512_mullo_epi16(_mm512_set1_epi16((short)ps),
                               _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15,
                                                14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
    pl.i1 = _mm512_sub_epi16(pl.i0, _mm512_set1_epi16(64));
    pl.hi = _mm512_cmpge_epu16_mask(pl.i0, _mm512_set1_epi16(64));
    return pl;
}

/* The fp16 values p[j * ps] of tokens j < m (m <= 16), as floats (0 in lanes m..15), by
 * a plan (ps <= 8) or one by one (wider strides). A gather did the same at several times
 * the cost. */
INLINE __m512 h16_rows(const uint16_t *p, size_t ps, size_t m, const struct h16_plan *pl)
{
    if (ps > 8) {
        _Alignas(64) float f[16] = {0};
        for (size_t j = 0; j < m; j++)
            f[j] = mt_kvk_h2f(p[j * ps]);
        return _mm512_load_ps(f);
    }
    __m512i x0 = _mm512_maskz_loadu_epi16(pl->k[0], p),
            x1 = _mm512_maskz_loadu_epi16(pl->k[1], p + 32);
    __m512i x2 = _mm512_maskz_loadu_epi16(pl->k[2], p + 64),
            x3 = _mm512_maskz_loadu_epi16(pl->k[3], p + 96);
    __m512i r = _mm512_mask_blend_epi16(pl->hi, _mm512_permutex2var_epi16(x0, pl->i0, x1),
                                        _mm512_permutex2var_epi16(x2, pl->i1, x3));
    return _mm512_cvtph_ps(_mm512_castsi512_si256(r));
}

/* One token's vector of partial products with the query (its 16 lanes sum to the dot):
 * per-token groups (ng > 1) weighed by their scales sf[g] (one group's products summed,
 * then scaled); else the codes (or values) against qv. */
INLINE __m512 token_dot(enum mt_kvk_kind kind, const uint8_t *row, const __m512 *qv,
                        const float *sf, size_t hs, size_t G)
{
    size_t nv = hs / 16, ng = is_tok(kind) ? hs / G : 1;
    __m512 acc = _mm512_setzero_ps();
    if (ng > 1) {
        for (size_t g = 0; g < ng; g++) {
            __m512 p = _mm512_setzero_ps();
            for (size_t i = g * G / 16; i < (g + 1) * G / 16; i++)
                p = _mm512_fmadd_ps(qv[i], load16(kind, row, 16 * i), p);
            acc = _mm512_fmadd_ps(_mm512_set1_ps(sf[16 * g]), p, acc);
        }
    } else {
        for (size_t i = 0; i < nv; i++)
            acc = _mm512_fmadd_ps(qv[i], load16(kind, row, 16 * i), acc);
    }
    return acc;
}

/* Scores of tokens t0 .. t0 + m - 1 (m <= 16): their 16 vectors of partial products stay
 * in registers (the loop is unrolled: m is the constant 16 but for a run's last tokens),
 * reduced by one tree, then att = (dot * post + bias) * scale, post the per-token scales
 * of one-group tokens (else 1) and bias the minima's share. */
INLINE void scores_batch(enum mt_kvk_kind kind, float *att, const uint8_t *codes, size_t stride,
                         size_t m, const __m512 *qv, const float *sf, __m512 post, __m512 bias,
                         float scale, size_t hs, size_t G)
{
    __m512 v[16];
#pragma GCC unroll 16
    for (size_t j = 0; j < 16; j++)
        v[j] = j < m ? token_dot(kind, codes + j * stride, qv, sf + j, hs, G) : _mm512_setzero_ps();
    __m512 r = _mm512_mul_ps(_mm512_fmadd_ps(reduce16(v), post, bias), _mm512_set1_ps(scale));
    _mm512_mask_storeu_ps(att, (__mmask16)((1u << m) - 1u), r);
}

/* The query of a group of per-channel keys (mt_kvk_query16, the same float steps in
 * vectors: the same integers), laid out for chan_dot: for 4-bit keys in chunks of 32
 * channels w4[2c] the even channels' integers as 16-bit words, w4[2c + 1] the odd ones'
 * (a byte's low and high nibble); for 2-bit keys w2[4c + r] channels 32c + 4k + r, k < 8
 * (bits 2r of byte k), at head dimension 32 w2y[r] = w2[r] twice (two tokens at once,
 * chan2_pair); else (3-bit, or a head dimension that is not a multiple of 32) q32[i] the
 * integers of channels 16i .. 16i + 15 in 32-bit lanes (codes in 32-bit lanes: code x q,
 * 0 x sign). sigma and bias = sum q m with them. */
struct q16 {
    union {
        __m512i q32[MAXV];
        __m256i w4[MAXV];
        __m128i w2[2 * MAXV];
        __m256i w2y[4];
    } u;
    float sigma, bias;
};
INLINE int words_of(enum mt_kvk_kind kind, size_t hs)
{
    return hs % 32 == 0 && (kind == MT_KVK_CHAN4 || kind == MT_KVK_CHAN2);
}
INLINE void query16(enum mt_kvk_kind kind, struct q16 *Q, const float *q, const uint16_t *sc,
                    const uint16_t *mn, size_t hs)
{
    size_t nv = hs / 16;
    __m512 qs[MAXV], mx = _mm512_setzero_ps(), b = _mm512_setzero_ps();
    __m512i qi[MAXV];
    for (size_t i = 0; i < nv; i++) {
        __m512 x = _mm512_loadu_ps(q + 16 * i);
        qs[i] = _mm512_mul_ps(x, _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(sc + 16 * i))));
        mx = _mm512_max_ps(mx, _mm512_abs_ps(qs[i]));
        b = _mm512_fmadd_ps(x, _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(mn + 16 * i))), b);
    }
    Q->bias = _mm512_reduce_add_ps(b);
    float m = _mm512_reduce_max_ps(mx);
    __m512 inv = _mm512_set1_ps(m >= MT_KVK_Q16_MIN ? 32767.0f / m : 0.0f);
    Q->sigma = m >= MT_KVK_Q16_MIN ? m / 32767.0f : 0.0f;
    for (size_t i = 0; i < nv; i++) /* vcvtps2dq: nearest, ties to even, as nearbyintf */
        qi[i] = _mm512_cvtps_epi32(_mm512_mul_ps(qs[i], inv));
    if (!words_of(kind, hs)) {
        for (size_t i = 0; i < nv; i++)
            Q->u.q32[i] = qi[i];
        return;
    }
    for (size_t c = 0; c < hs / 32; c++) {
        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(qi[2 * c])),
                                       _mm512_cvtepi32_epi16(qi[2 * c + 1]), 1);
        if (kind == MT_KVK_CHAN4) {
            w = _mm512_permutexvar_epi16(_mm512_set_epi16(31, 29, 27, 25, 23, 21, 19, 17, 15, 13,
                                                          11, 9, 7, 5, 3, 1, 30, 28, 26, 24, 22, 20,
                                                          18, 16, 14, 12, 10, 8, 6, 4, 2, 0),
                                         w);
            Q->u.w4[2 * c] = _mm512_castsi512_si256(w);
            Q->u.w4[2 * c + 1] = _mm512_extracti64x4_epi64(w, 1);
            continue;
        }
        w = _mm512_permutexvar_epi16(_mm512_set_epi16(31, 27, 23, 19, 15, 11, 7, 3, 30, 26, 22, 18,
                                                      14, 10, 6, 2, 29, 25, 21, 17, 13, 9, 5, 1, 28,
                                                      24, 20, 16, 12, 8, 4, 0),
                                     w);
        if (hs == 32) { /* w2y[r]: quarter r of w twice */
            Q->u.w2y[0] = _mm256_broadcastsi128_si256(_mm512_castsi512_si128(w));
            Q->u.w2y[1] = _mm256_broadcastsi128_si256(_mm512_extracti32x4_epi32(w, 1));
            Q->u.w2y[2] = _mm256_broadcastsi128_si256(_mm512_extracti32x4_epi32(w, 2));
            Q->u.w2y[3] = _mm256_broadcastsi128_si256(_mm512_extracti32x4_epi32(w, 3));
            continue;
        }
        Q->u.w2[4 * c] = _mm512_castsi512_si128(w);
        Q->u.w2[4 * c + 1] = _mm512_extracti32x4_epi32(w, 1);
        Q->u.w2[4 * c + 2] = _mm512_extracti32x4_epi32(w, 2);
        Q->u.w2[4 * c + 3] = _mm512_extracti32x4_epi32(w, 3);
    }
}

/* One per-channel key's dot with the group's integer query, in exact 32-bit integers
 * (|sum| < 32767 * 7 * 256 for 4-bit codes and less for fewer bits): 8 lanes that sum to
 * it. 4-bit rows 32 channels (16 bytes) at a time as 16-bit words, low nibbles against
 * the even channels and high ones against the odd (vpdpwssd: two products per lane); 2-bit
 * rows 32 channels (8 bytes) as words, four shifts; else (3-bit, or a head dimension that
 * is not a multiple of 32) 16 codes in 32-bit lanes against q32. */
INLINE __m256i chan_dot(enum mt_kvk_kind kind, const uint8_t *row, const struct q16 *Q, size_t hs)
{
    if (kind == MT_KVK_CHAN4 && hs % 32 == 0) {
        __m256i acc = _mm256_setzero_si256();
        for (size_t c = 0; c < hs / 32; c++) {
            __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const void *)(row + 16 * c)));
            acc = _mm256_dpwssd_epi32(acc, _mm256_and_si256(w, _mm256_set1_epi16(15)),
                                      Q->u.w4[2 * c]);
            acc = _mm256_dpwssd_epi32(acc, _mm256_srli_epi16(w, 4), Q->u.w4[2 * c + 1]);
        }
        return acc;
    }
    if (kind == MT_KVK_CHAN2 && hs % 32 == 0) {
        __m128i acc = _mm_setzero_si128(), three = _mm_set1_epi16(3);
        for (size_t c = 0; c < hs / 32; c++) {
            __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64((const void *)(row + 8 * c)));
            acc = _mm_dpwssd_epi32(acc, _mm_and_si128(w, three), Q->u.w2[4 * c]);
            acc = _mm_dpwssd_epi32(acc, _mm_and_si128(_mm_srli_epi16(w, 2), three),
                                   Q->u.w2[4 * c + 1]);
            acc = _mm_dpwssd_epi32(acc, _mm_and_si128(_mm_srli_epi16(w, 4), three),
                                   Q->u.w2[4 * c + 2]);
            acc = _mm_dpwssd_epi32(acc, _mm_srli_epi16(w, 6), Q->u.w2[4 * c + 3]);
        }
        return _mm256_zextsi128_si256(acc);
    }
    __m512i acc = _mm512_setzero_si512(), mask = _mm512_set1_epi32((1 << bits_of(kind)) - 1);
    for (size_t i = 0; i < hs / 16; i++)
        acc =
            _mm512_dpwssd_epi32(acc, _mm512_and_si512(raw16(kind, row, 16 * i), mask), Q->u.q32[i]);
    return _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
}

/* 2-bit keys of head dimension 32 (8 bytes a token), two tokens at once: r0's dot in
 * lanes 0-3, r1's (none when r1 is NULL) in lanes 4-7; two chains of two products each. */
INLINE __m256i chan2_pair(const uint8_t *r0, const uint8_t *r1, const struct q16 *Q)
{
    __m128i x = _mm_loadl_epi64((const void *)r0);
    if (r1)
        x = _mm_castpd_si128(_mm_loadh_pd(_mm_castsi128_pd(x), (const double *)(const void *)r1));
    __m256i w = _mm256_cvtepu8_epi16(x), three = _mm256_set1_epi16(3);
    __m256i a = _mm256_madd_epi16(_mm256_and_si256(w, three), Q->u.w2y[0]);
    __m256i b = _mm256_madd_epi16(_mm256_and_si256(_mm256_srli_epi16(w, 4), three), Q->u.w2y[2]);
    a = _mm256_dpwssd_epi32(a, _mm256_and_si256(_mm256_srli_epi16(w, 2), three), Q->u.w2y[1]);
    b = _mm256_dpwssd_epi32(b, _mm256_srli_epi16(w, 6), Q->u.w2y[3]);
    return _mm256_add_epi32(a, b);
}

/* The dots of 16 tokens from chan2_pair's 8 vectors (tokens 2i, 2i + 1 in p[i]): lane j
 * = token j's 4 lanes summed (exact: integers). */
INLINE __m512i reduce_pairs(const __m256i *p)
{
    __m256i s[4], u[2];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        s[i] = _mm256_add_epi32(_mm256_unpacklo_epi32(p[2 * i], p[2 * i + 1]),
                                _mm256_unpackhi_epi32(p[2 * i], p[2 * i + 1]));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) /* even tokens in the low half, odd ones in the high */
        u[i] = _mm256_add_epi32(_mm256_unpacklo_epi64(s[2 * i], s[2 * i + 1]),
                                _mm256_unpackhi_epi64(s[2 * i], s[2 * i + 1]));
    return _mm512_permutexvar_epi32(
        _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15),
        _mm512_inserti64x4(_mm512_castsi256_si512(u[0]), u[1], 1));
}

/* Lane j of the result = the sum of d[j]'s 8 lanes (exact: integers). */
INLINE __m512i reduce8i(const __m256i *d)
{
    __m256i s[8], u[4], w[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        s[i] = _mm256_add_epi32(_mm256_unpacklo_epi32(d[2 * i], d[2 * i + 1]),
                                _mm256_unpackhi_epi32(d[2 * i], d[2 * i + 1]));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        u[i] = _mm256_add_epi32(_mm256_unpacklo_epi64(s[2 * i], s[2 * i + 1]),
                                _mm256_unpackhi_epi64(s[2 * i], s[2 * i + 1]));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        w[i] = _mm256_add_epi32(_mm256_permute2x128_si256(u[2 * i], u[2 * i + 1], 0x20),
                                _mm256_permute2x128_si256(u[2 * i], u[2 * i + 1], 0x31));
    return _mm512_inserti64x4(_mm512_castsi256_si512(w[0]), w[1], 1);
}

/* Per-channel keys (mt_kvk_scores_ref's definition): per group of G tokens the integer
 * query (query16), then 16 tokens at a time their integer dots (chan_dot, kept in
 * registers and reduced by one tree) made floats once: att = (sigma dot + sum q m) scale.
 * The integers are exact, so the scores differ from the reference's only in the order of
 * sum q m. */
INLINE void scores_chan(enum mt_kvk_kind kind, float *att, const float *q,
                        const struct mt_kvk_view *k, size_t n, float scale, size_t hs, size_t G)
{
    /* the queries of QG groups made together: their chains of horizontal max, division
     * and conversions overlap each other, not the tokens' dots that wait for them */
    enum { QG = 4 };
    struct q16 Qs[QG];
    for (size_t t0 = 0; t0 < n; t0 += 16) {
        size_t m = n - t0 < 16 ? n - t0 : 16;
        if (t0 % (QG * G) == 0)
            for (size_t g = 0; g < QG && t0 + g * G < n; g++)
                query16(kind, &Qs[g], q, k->scl + (t0 / G + g) * k->par_stride,
                        k->mn + (t0 / G + g) * k->par_stride, hs);
        const struct q16 *Q = &Qs[t0 / G % QG];
        const uint8_t *c0 = k->codes + t0 * k->stride;
        __m512i dots;
        if (kind == MT_KVK_CHAN2 && hs == 32) {
            __m256i p[8];
#pragma GCC unroll 8
            for (size_t i = 0; i < 8; i++)
                p[i] = 2 * i < m
                           ? chan2_pair(c0 + 2 * i * k->stride,
                                        2 * i + 1 < m ? c0 + (2 * i + 1) * k->stride : NULL, Q)
                           : _mm256_setzero_si256();
            dots = reduce_pairs(p);
        } else {
            __m256i d[16];
#pragma GCC unroll 16
            for (size_t j = 0; j < 16; j++)
                d[j] = j < m ? chan_dot(kind, c0 + j * k->stride, Q, hs) : _mm256_setzero_si256();
            dots = reduce8i(d);
        }
        __m512 r = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_set1_ps(Q->sigma),
                                   _mm512_set1_ps(Q->bias));
        _mm512_mask_storeu_ps(att + t0, (__mmask16)((1u << m) - 1u),
                              _mm512_mul_ps(r, _mm512_set1_ps(scale)));
    }
}

/* The scores, 16 tokens at a time (scores_batch): minima enter as m * sum q per group
 * (gathered with the scales for 16 tokens at once); per-channel keys: scores_chan. hs is
 * a constant where the caller can make it one, so the query stays in registers. Nothing
 * is prefetched here: kvcache.c's driver prefetches every kind's next tile. */
INLINE void scores_body(enum mt_kvk_kind kind, float *att, const float *q,
                        const struct mt_kvk_view *k, size_t n, float scale, size_t hs, size_t G)
{
    if (is_chan(kind)) {
        scores_chan(kind, att, q, k, n, scale, hs, G);
        return;
    }
    __m512 qv[MAXV], bias = _mm512_setzero_ps();
    __m512 post = _mm512_set1_ps(1.0f);
    _Alignas(64) float sf[MAXV][16];
    float qsum[MAXV];
    size_t nv = hs / 16, ng = is_tok(kind) ? hs / G : 1;
    const uint8_t *codes = k->codes;
    size_t stride = k->stride;
    struct h16_plan full = is_tok(kind) ? h16_plan_of(k->par_stride, 16) : (struct h16_plan){0};
    for (size_t i = 0; i < nv; i++)
        qv[i] = _mm512_loadu_ps(q + 16 * i);
    if (is_tok(kind))
        for (size_t g = 0; g < ng; g++) {
            __m512 sv = _mm512_setzero_ps();
            for (size_t i = g * G / 16; i < (g + 1) * G / 16; i++)
                sv = _mm512_add_ps(sv, _mm512_loadu_ps(q + 16 * i));
            qsum[g] = _mm512_reduce_add_ps(sv);
        }
    for (size_t t0 = 0; t0 < n; t0 += 16) {
        size_t m = n - t0 < 16 ? n - t0 : 16;
        if (is_tok(kind)) { /* the 16 tokens' scales and the minima's share */
            const uint16_t *sc = k->scl + t0 * k->par_stride, *mn = k->mn + t0 * k->par_stride;
            size_t ps = k->par_stride;
            struct h16_plan tail, *pl = &full;
            if (m < 16) tail = h16_plan_of(ps, m), pl = &tail;
            bias = _mm512_setzero_ps();
            for (size_t g = 0; g < ng; g++) {
                __m512 sg = h16_rows(sc + g, ps, m, pl);
                if (ng == 1)
                    post = sg;
                else
                    _mm512_store_ps(sf[g], sg);
                bias = _mm512_fmadd_ps(h16_rows(mn + g, ps, m, pl), _mm512_set1_ps(qsum[g]), bias);
            }
        }
        const uint8_t *c0 = codes + t0 * stride;
        if (m == 16)
            scores_batch(kind, att + t0, c0, stride, 16, qv, sf[0], post, bias, scale, hs, G);
        else
            scores_batch(kind, att + t0, c0, stride, m, qv, sf[0], post, bias, scale, hs, G);
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

/* The weighted sum with the output in registers. Per-token groups (mt_kvk_accum_avx512's
 * state): NS sets of accumulators, token t into set (pos0 + t) % NS, so NS tokens' fmas
 * run side by side; per 16 tokens the weights w_t = a_t s_t and the minima's shares
 * a_t m_t are made in vectors (the scales and minima loaded by h16_rows), the shares
 * rotated to lanes (pos0 + t) % 16 and added to the group's lanes, the weights kept in a
 * small table that each token reads as a broadcast: then o += w_t c_t is one fma per
 * vector of codes. Other kinds: one set, o += a_t x_t token after token. Either way a run
 * split anywhere sums alike. */
INLINE void accum_body(enum mt_kvk_kind kind, float *o, const float *att, float inv,
                       const struct mt_kvk_view *v, size_t n, size_t pos0, size_t hs, size_t G)
{
    enum { MAXS = 8 };
    size_t NS = mt_kvk_accum_sets(kind, hs);
    __m512 acc[MAXS][MAXV];
    size_t nv = hs / 16, ng = is_tok(kind) ? hs / G : 1, gv[MAXV];
    const uint8_t *codes = v->codes;
    size_t stride = v->stride;
    /* 4-bit values with one group per 32 elements: acc[k][2c], acc[k][2c + 1] hold the even
     * and odd elements of chunk c */
    int eo = kind == MT_KVK_TOK4 && hs % 32 == 0 && G % 32 == 0;
    for (size_t i = 0; i < nv; i++)
        gv[i] = 16 * i / G;
    for (size_t k = 0; k < NS; k++) { /* register k: the tokens of set (pos0 + k) % NS */
        const float *ok = o + (pos0 + k) % NS * hs;
        for (size_t i = 0; i < nv; i++)
            acc[k][i] = _mm512_loadu_ps(ok + 16 * i);
        if (eo)
            for (size_t c = 0; c < hs / 32; c++)
                split(acc[k][2 * c], acc[k][2 * c + 1], &acc[k][2 * c], &acc[k][2 * c + 1]);
    }
    if (is_tok(kind)) {
        _Alignas(64) float wt[MAXV][16];
        float *lanes = o + NS * hs;
        struct h16_plan full = h16_plan_of(v->par_stride, 16);
        /* token j of a batch (16-aligned in the view) goes to lane (pos0 + j) % 16 */
        __m512i rot =
            _mm512_and_si512(_mm512_sub_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                                                11, 12, 13, 14, 15),
                                              _mm512_set1_epi32((int)(pos0 % 16))),
                             _mm512_set1_epi32(15));
        for (size_t t0 = 0; t0 < n; t0 += 16) {
            size_t m = n - t0 < 16 ? n - t0 : 16;
            const uint16_t *sc = v->scl + t0 * v->par_stride, *mn = v->mn + t0 * v->par_stride;
            __m512 at = _mm512_mul_ps(_mm512_maskz_loadu_ps((__mmask16)((1u << m) - 1u), att + t0),
                                      _mm512_set1_ps(inv));
            struct h16_plan tail, *pl = &full;
            if (m < 16) tail = h16_plan_of(v->par_stride, m), pl = &tail;
            for (size_t g = 0; g < ng; g++) {
                _mm512_store_ps(wt[g], _mm512_mul_ps(at, h16_rows(sc + g, v->par_stride, m, pl)));
                __m512 share = _mm512_mul_ps(at, h16_rows(mn + g, v->par_stride, m, pl));
                _mm512_storeu_ps(lanes + 16 * g, _mm512_add_ps(_mm512_loadu_ps(lanes + 16 * g),
                                                               _mm512_permutexvar_ps(rot, share)));
            }
            for (size_t j0 = 0; j0 < m; j0 += NS)
#pragma GCC unroll 8
                for (size_t k = 0; k < NS; k++) {
                    size_t j = j0 + k;
                    if (j >= m) break;
                    const uint8_t *row = codes + (t0 + j) * stride;
                    if (eo) {
                        for (size_t c = 0; c < hs / 32; c++) {
                            __m512 wv = _mm512_set1_ps(wt[gv[2 * c]][j]), e, od;
                            nibbles(row + 16 * c, &e, &od);
                            acc[k][2 * c] = _mm512_fmadd_ps(wv, e, acc[k][2 * c]);
                            acc[k][2 * c + 1] = _mm512_fmadd_ps(wv, od, acc[k][2 * c + 1]);
                        }
                    } else {
                        for (size_t i = 0; i < nv; i++)
                            acc[k][i] = _mm512_fmadd_ps(_mm512_set1_ps(wt[gv[i]][j]),
                                                        load16(kind, row, 16 * i), acc[k][i]);
                    }
                }
        }
    } else {
        for (size_t t = 0; t < n; t++) {
            const uint8_t *row = codes + t * stride;
            __m512 av = _mm512_set1_ps(att[t] * inv);
            for (size_t i = 0; i < nv; i++)
                acc[0][i] = _mm512_fmadd_ps(av, load16(kind, row, 16 * i), acc[0][i]);
        }
    }
    for (size_t k = 0; k < NS; k++) {
        float *ok = o + (pos0 + k) % NS * hs;
        if (eo)
            for (size_t c = 0; c < hs / 32; c++)
                merge(acc[k][2 * c], acc[k][2 * c + 1], &acc[k][2 * c], &acc[k][2 * c + 1]);
        for (size_t i = 0; i < nv; i++)
            _mm512_storeu_ps(ok + 16 * i, acc[k][i]);
    }
}

void mt_kvk_accum_finish(enum mt_kvk_kind kind, float *out, const float *state, float inv,
                         size_t hs, size_t G)
{
    size_t NS = mt_kvk_accum_sets(kind, hs), has_lanes = mt_kvk_accum_floats(kind, hs, G) > hs;
    for (size_t g = 0; g < hs / G; g++) {
        float mins = 0.0f;
        for (size_t l = 0; has_lanes && l < 16; l++)
            mins += state[NS * hs + 16 * g + l];
        for (size_t i = g * G; i < (g + 1) * G; i++) {
            float x = state[i];
            for (size_t k = 1; k < NS; k++)
                x += state[k * hs + i];
            out[i] = (x + mins) * inv;
        }
    }
}

void mt_kvk_accum_avx512(enum mt_kvk_kind kind, float *o, const float *att, float inv,
                         const struct mt_kvk_view *v, size_t n, size_t hs, size_t G, size_t pos0)
{
    DISPATCH(accum_body, kind, hs, o, att, inv, v, n, pos0);
}
