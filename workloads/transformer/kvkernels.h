/* kvkernels.h — the per-head kernels of the KV-cache attention (internal to kvcache.c and
 * its tests).
 *
 * What it is for: scores of one head's query against `n` consecutive packed keys, and
 * the probability-weighted sum of `n` consecutive packed values, for every storage kind
 * of the cache, and the online softmax step between them, in three builds: the scalar
 * reference (kvkernels_ref.c, the definition), compiler-vectorized fp32 loops
 * (kvkernels.c: the fp32 cache on a CPU without AVX-512) and AVX-512 (kvkernels_avx512.c,
 * every kind, chosen at run time). The fast kernels decode codes in registers only.
 * What it is not for: the cache's layout, block tables or quantization (kvcache.c).
 *
 * A view is one head's slice of n tokens of one layer in one block: token t's codes at
 * codes + t * stride (bytes); the fp16 scales and minima (x = scale * code + min) are
 * planar: kind TOK (per token) has hs / G scales at scl + t * par_stride and as many
 * minima at mn + t * par_stride; kind CHAN (per channel, KIVI keys) has hs scales for
 * tokens [jG, jG + G) at scl + j * par_stride, minima likewise. Codes are unsigned and
 * packed LSB first (element i of a row at bit i * bits).
 */
#ifndef MT_TRANSFORMER_KVKERNELS_H
#define MT_TRANSFORMER_KVKERNELS_H

#include <stddef.h>
#include <stdint.h>

enum mt_kvk_kind {
    MT_KVK_F32,
    MT_KVK_BF16,
    MT_KVK_F16,
    MT_KVK_TOK8, /* per token, groups of G channels */
    MT_KVK_TOK4,
    MT_KVK_TOK3,
    MT_KVK_TOK2,
    MT_KVK_CHAN4, /* per channel, groups of G tokens */
    MT_KVK_CHAN3,
    MT_KVK_CHAN2,
    MT_KVK_KIND_COUNT
};

struct mt_kvk_view {
    const uint8_t *codes;
    size_t stride; /* bytes between tokens */
    const uint16_t *scl, *mn;
    size_t par_stride; /* uint16 between tokens (TOK) or token groups (CHAN) */
};

/* Bits per code of a kind. */
unsigned mt_kvk_bits(enum mt_kvk_kind kind);

/* att[t] = scale * (q . k_t) for t < n; q has hs floats. Per-channel keys (CHAN kinds,
 * whose view starts at a group's first token): per group of G tokens the query folded with
 * the group's scales, q_c s_c, is rounded to integers q16_c = round(q_c s_c / sigma),
 * sigma = max_c |q_c s_c| / 32767 (mt_kvk_query16), and
 * att[t] = scale * (sigma * sum_c q16_c code_tc + sum_c q_c m_c), the sum over codes in
 * exact integers: the fast kernels multiply 16-bit integers (two per 32-bit lane) instead
 * of widening every code to a float, and the query's rounding (2^-16 of its largest
 * element) is far below the keys' own (2^-bits of their range). */
void mt_kvk_scores_ref(enum mt_kvk_kind kind, float *att, const float *q,
                       const struct mt_kvk_view *k, size_t n, size_t hs, size_t G, float scale);
/* o[hs] += sum_t (att[t] * inv) v_t, tokens in order. */
void mt_kvk_accum_ref(enum mt_kvk_kind kind, float *o, const float *att, float inv,
                      const struct mt_kvk_view *v, size_t n, size_t hs, size_t G);
/* Below this largest |q_c s_c| a group's query counts as zero (32767 / it would overflow). */
#define MT_KVK_Q16_MIN 1e-30f
/* q16[i] = round(q_i s_i / sigma) (nearest, ties to even), s_i = scl[i] as fp16, and
 * returns sigma = max_i |q_i s_i| / 32767 (0 and q16 all 0 below MT_KVK_Q16_MIN): the
 * query of a group of per-channel keys (see mt_kvk_scores_ref). Exact float steps, so a
 * vector version that takes the same ones gives the same integers. */
float mt_kvk_query16(const float *q, const uint16_t *scl, size_t hs, int32_t *q16);
/* One step of the online softmax over a tile of n scores s (-INFINITY: masked): the
 * running maximum *m (-INFINITY before the first tile) grows to the tile's, and when it
 * does the output o (hs floats) and the running sum *l are rescaled by exp(old - new);
 * then in place s[t] = exp(s[t] - *m) (0 where masked), and *l += their sum. */
void mt_kvk_online_ref(float *s, size_t n, float *m, float *l, float *o, size_t hs);

/* fp32 only, the loops of mt_k_attention_decode (kvkernels.c). */
void mt_kvk_scores_f32(float *att, const float *q, const float *k, size_t stride, size_t n,
                       size_t hs, float scale);
void mt_kvk_accum_f32(float *o, const float *att, float inv, const float *v, size_t stride,
                      size_t n, size_t hs);
void mt_kvk_online(float *s, size_t n, float *m, float *l, float *o, size_t hs);

/* AVX-512 (kvkernels_avx512.c): every kind but F32; hs and G multiples of 16. Call only
 * when mt_kvk_avx512_ok(), and for the per-channel kinds (integer dot products, vpdpwssd)
 * only when mt_kvk_avx512_vnni_ok(). */
int mt_kvk_avx512_ok(void);
int mt_kvk_avx512_vnni_ok(void);
void mt_kvk_scores_avx512(enum mt_kvk_kind kind, float *att, const float *q,
                          const struct mt_kvk_view *k, size_t n, size_t hs, size_t G, float scale);
/* The weighted sum of the AVX-512 build. For the per-token kinds (TOK8 .. TOK2) o is the
 * head's state of mt_kvk_accum_floats floats: mt_kvk_accum_sets(kind, hs) sets of hs
 * floats, then 16 floats per group of G channels. Token t, at absolute position pos0 + t,
 * adds a_t s_t c_t (its probability times its scale times its codes) to set
 * (pos0 + t) % sets, and a_t m_t (times its minimum) to lane (pos0 + t) % 16 of its
 * group's 16 floats; the output is the sets and the lanes summed in order
 * (mt_kvk_accum_finish). A short head has that many independent chains of additions
 * instead of one, the minima cost one multiply per 16 tokens instead of one per element,
 * and the sums depend on the positions only, never on where a run was split. Other kinds:
 * o is hs floats (the first set of a state), pos0 unused. */
void mt_kvk_accum_avx512(enum mt_kvk_kind kind, float *o, const float *att, float inv,
                         const struct mt_kvk_view *v, size_t n, size_t hs, size_t G, size_t pos0);
/* Accumulator sets of mt_kvk_accum_avx512 (1, 2, 4 or 8): enough that the head's vectors
 * times the sets make 8 chains (an FMA's latency times two per cycle). */
static inline size_t mt_kvk_accum_sets(enum mt_kvk_kind kind, size_t hs)
{
    if (kind < MT_KVK_TOK8 || kind > MT_KVK_TOK2) return 1;
    return hs <= 16 ? 8 : hs <= 32 ? 4 : hs <= 64 ? 2 : 1;
}
/* Floats of a head's state in mt_kvk_accum_avx512 (hs for the kinds without one). */
static inline size_t mt_kvk_accum_floats(enum mt_kvk_kind kind, size_t hs, size_t G)
{
    if (kind < MT_KVK_TOK8 || kind > MT_KVK_TOK2) return hs;
    return mt_kvk_accum_sets(kind, hs) * hs + 16 * (hs / G);
}
/* The most a head's state takes: sets * hs <= max(128, hs), groups of at least 16. */
#define MT_KVK_ACCUM_MAX_FLOATS(max_hs) ((max_hs) > 128 ? 2 * (max_hs) : 128 + (max_hs))
/* out[i] = (the head's sets and its group's lanes, summed in order) * inv, i < hs. */
void mt_kvk_accum_finish(enum mt_kvk_kind kind, float *out, const float *state, float inv,
                         size_t hs, size_t G);

/* Tokens ahead that the fp32 loops of kvkernels.c prefetch (the AVX-512 kernels prefetch
 * nothing: kvcache.c's driver prefetches every kind's next tile whole, once for all heads,
 * at the same stride threshold; for fp32 that made the `long` attention at context 4096
 * 20 % faster than a per-token prefetch in each head's kernel).
 * A head's slice of a token is a short run (hs elements) every `stride` bytes, and the
 * heads walk the cache one after another, so
 * the hardware prefetchers, which stop at page ends, leave most of these loads to wait
 * on memory; a software prefetch this many tokens ahead hides that latency. It changes
 * no arithmetic (the fp32 cache stays bit-identical to mt_k_attention_decode). */
#define MT_KVK_PREFETCH 16
/* Below this token stride (bytes) the tokens of a head sit in consecutive cache lines,
 * which the hardware prefetches by itself: a software prefetch there only costs (int2,
 * 64 bytes per token: 15 % slower with it, int4 at 128: 25 % faster). */
#define MT_KVK_PREFETCH_MIN_STRIDE 128

/* How far ahead to prefetch for a token stride of `stride` bytes: 0 = not at all. */
static inline size_t mt_kvk_prefetch_ahead(size_t stride)
{
    return stride >= MT_KVK_PREFETCH_MIN_STRIDE ? MT_KVK_PREFETCH : 0;
}

/* Prefetches the cache lines of bytes [p, p + bytes) (a token's slice) for reading. */
static inline void mt_kvk_prefetch(const void *p, size_t bytes)
{
    const char *c = (const char *)p, *end = c + bytes;
    for (c -= (uintptr_t)c % 64; c < end; c += 64)
        __builtin_prefetch(c, 0, 3);
}

/* Scalar fp16 / bf16 conversions (round to nearest even), shared with the packer. */
static inline uint16_t mt_kvk_f2h(float x)
{
    _Float16 h = (_Float16)x;
    uint16_t u;
    __builtin_memcpy(&u, &h, 2);
    return u;
}
static inline float mt_kvk_h2f(uint16_t u)
{
    _Float16 h;
    __builtin_memcpy(&h, &u, 2);
    return (float)h;
}
static inline uint16_t mt_kvk_f2bf(float x)
{
    uint32_t u;
    __builtin_memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static inline float mt_kvk_bf2f(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float x;
    __builtin_memcpy(&x, &u, 4);
    return x;
}
/* Code i of a packed row. */
static inline unsigned mt_kvk_code(const uint8_t *row, size_t i, unsigned bits)
{
    if (bits == 8) return row[i];
    if (bits == 3) {
        const uint8_t *c = row + i / 8 * 3;
        size_t j = i % 8;
        return ((c[j / 4] >> (2 * (j % 4))) & 3u) | (((c[2] >> j) & 1u) << 2);
    }
    size_t per = 8 / bits;
    return (row[i / per] >> (bits * (i % per))) & ((1u << bits) - 1u);
}
/* Stores code (below 2^bits) as code i of a packed row, the other codes left alone. */
static inline void mt_kvk_put_code(uint8_t *row, size_t i, unsigned bits, unsigned code)
{
    if (bits == 8) {
        row[i] = (uint8_t)code;
    } else if (bits == 3) {
        uint8_t *c = row + i / 8 * 3;
        unsigned j = (unsigned)(i % 8), sh = 2 * (j % 4);
        c[j / 4] = (uint8_t)((c[j / 4] & ~(3u << sh)) | ((code & 3u) << sh));
        c[2] = (uint8_t)((c[2] & ~(1u << j)) | ((code >> 2) << j));
    } else {
        unsigned per = 8 / bits, sh = bits * (unsigned)(i % per), mask = ((1u << bits) - 1u) << sh;
        row[i / per] = (uint8_t)((row[i / per] & ~mask) | (code << sh));
    }
}

#endif
