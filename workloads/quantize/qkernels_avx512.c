/* qkernels_avx512.c — AVX-512 products on packed weights, unpacking codes in registers.
 *
 * What it is for: the fast paths behind mt_qgemm: 64 codes are expanded from their block
 * layout into one zmm of bytes (4-bit: nibble split; 2/3-bit: broadcast + variable shift,
 * the third bit as a 64-bit mask), then either turned into floats (linear schemes:
 * convert, 8-bit ones straight from 16-byte broadcast loads by a masked vpshufb over the
 * bits of 2^23 and a subtraction: bytes_to_ps; 4-bit-or-less codebooks: vpermps over a 16-entry
 * register table; 8-bit codebooks: gather) and FMA'd with fp32 activations, or fed as unsigned
 * bytes to vpdpbusd against int8 activations. Output rows are split across OpenMP threads; up to
 * four token rows share each unpacked block. Decode-sized int8 products (fewer than four
 * token rows) run in strips of 16 rows (strip_i8: each row's unit dots parked in L1, one
 * transpose-add per unit for 16 rows instead of 16 horizontal sums, its first halvings
 * through int16 where lanes are small, the rows' scales transposed by registers, 3/2-bit
 * rows four at a time, 4/2-bit codes as bit planes against reordered activations). Decode-sized
 * 4-bit products with fp32 activations (row_f32_nib) index vpermps with the nibbles of each dword
 * in turn against activations reordered to match, the unit's table being its decoded weights. Also
 * the AVX-512 activation quantization and fp16/bf16 conversions. What it is not for: CPUs without
 * AVX-512 F/BW/VL (the dispatcher checks; this file is compiled with a target pragma so the library
 * still builds anywhere).
 */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "qinternal.h"

#define INLINE static inline __attribute__((always_inline))

/* Below this many weight-times-token products a product runs on one thread: forking and
 * joining the team costs more than it saves (decode steps of the tiny presets). */
#define PAR_MIN_WORK ((size_t)1 << 17)

enum { KIND_LIN, KIND_CB16, KIND_CB256 };

/* The 64 codes of one block as bytes 0..63 of a zmm (see qformat.h for the layout). */
INLINE __m512i unpack64(const uint8_t *p, const unsigned bits)
{
    if (bits == 8) return _mm512_loadu_si512(p);
    if (bits == 4) {
        __m256i v = _mm256_loadu_si256((const void *)p);
        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
        return _mm512_and_si512(w, _mm512_set1_epi8(15));
    }
    __m512i w = _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)p));
    w = _mm512_srlv_epi64(w, _mm512_set_epi64(6, 6, 4, 4, 2, 2, 0, 0));
    w = _mm512_and_si512(w, _mm512_set1_epi8(3));
    if (bits == 3) {
        uint64_t hi;
        memcpy(&hi, p + 16, 8);
        w = _mm512_mask_add_epi8(w, _cvtu64_mask64(hi), w, _mm512_set1_epi8(4));
    }
    return w;
}

INLINE __m512 codes_to_ps(__m128i c16, const int kind, __m512 lut16, const float *lut)
{
    __m512i idx = _mm512_cvtepu8_epi32(c16);
    if (kind == KIND_LIN) return _mm512_cvtepi32_ps(idx);
    if (kind == KIND_CB16) return _mm512_permutexvar_ps(idx, lut16);
    return _mm512_i32gather_ps(idx, lut, 4);
}

/* The 16 8-bit codes at p as floats without vpmovzxbd and vcvtdq2ps, which share one
 * slow pipe here (about one a cycle each, against four or more for byte shuffles and two
 * for float adds): the bytes broadcast to the four 128-bit lanes by the load, one masked
 * in-lane vpshufb puts byte e into the low byte of dword e over the bits of 2^23, and
 * subtracting 2^23 leaves exactly c (any c < 2^23 is exact there), the same float
 * vcvtdq2ps gives. */
INLINE __m512 bytes_to_ps(const uint8_t *p)
{
    const __m512i spread = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i b = _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)p));
    const __m512i f = _mm512_mask_shuffle_epi8(_mm512_set1_epi32(0x4b000000),
                                               (__mmask64)0x1111111111111111ull, b, spread);
    return _mm512_sub_ps(_mm512_castsi512_ps(f), _mm512_set1_ps(8388608.0f));
}

INLINE __m512 load_lut16(const struct mt_qtensor *w, size_t r, size_t u)
{
    return _mm512_maskz_loadu_ps((__mmask16)((1u << w->lut_len) - 1u), mt_q_lut(w, r, u));
}

/* Row r of W against token rows i0..i0+MT-1 with fp32 activations. Four partial sums per
 * token row per unit (one per 16-code chunk of a block) keep four FMA chains in flight
 * even at MT = 1. */
INLINE void row_f32(const struct mt_qtensor *w, const struct mt_qprep *p, size_t r, size_t i0,
                    const int MT, const unsigned bits, const int kind, float *y)
{
    const uint8_t *row = w->codes + r * w->row_bytes;
    const size_t bb = (size_t)bits * 8, nblk = w->k_pad / MT_QBLOCK;
    const size_t chunks_per_unit = w->unit_len / 16;
    const int kmeans = w->fmt.scheme == MT_QS_KMEANS;
    const float *xs[4];
    __m512 racc[4], d[4][4];
    float off[4];
    for (int m = 0; m < MT; m++) {
        xs[m] = p->x + (i0 + m) * p->k_pad;
        racc[m] = _mm512_setzero_ps();
        off[m] = 0.0f;
        for (int c = 0; c < 4; c++)
            d[m][c] = _mm512_setzero_ps();
    }
    size_t u = 0, left = chunks_per_unit;
    const float *lut = mt_q_lut(w, r, 0);
    __m512 lut16 = kind == KIND_CB16 ? load_lut16(w, r, 0) : _mm512_setzero_ps();

#define CHUNK(c)                                                                                   \
    do {                                                                                           \
        __m512 v = bits == 8 && kind == KIND_LIN                                                   \
                       ? bytes_to_ps(row + b * bb + 16 * (c))                                      \
                       : codes_to_ps(_mm512_extracti32x4_epi32(cw, c), kind, lut16, lut);          \
        for (int m = 0; m < MT; m++)                                                               \
            d[m][c] = _mm512_fmadd_ps(_mm512_loadu_ps(xs[m] + j0 + 16 * (c)), v, d[m][c]);         \
        if (--left == 0) {                                                                         \
            size_t mi = mt_q_meta(w, r, u);                                                        \
            for (int m = 0; m < MT; m++) {                                                         \
                __m512 s = _mm512_add_ps(_mm512_add_ps(d[m][0], d[m][1]),                          \
                                         _mm512_add_ps(d[m][2], d[m][3]));                         \
                for (int q = 0; q < 4; q++)                                                        \
                    d[m][q] = _mm512_setzero_ps();                                                 \
                if (kmeans)                                                                        \
                    racc[m] = _mm512_add_ps(racc[m], s);                                           \
                else                                                                               \
                    racc[m] = _mm512_fmadd_ps(s, _mm512_set1_ps(w->scale[mi]), racc[m]);           \
                if (kind == KIND_LIN) off[m] += w->offset[mi] * p->xsum[(i0 + m) * p->units + u];  \
            }                                                                                      \
            left = chunks_per_unit;                                                                \
            if (++u < w->units_per_row && kmeans) {                                                \
                lut = mt_q_lut(w, r, u);                                                           \
                if (kind == KIND_CB16) lut16 = load_lut16(w, r, u);                                \
            }                                                                                      \
        }                                                                                          \
    } while (0)

    for (size_t b = 0; b < nblk; b++) {
        const __m512i cw = unpack64(row + b * bb, bits);
        const size_t j0 = b * MT_QBLOCK;
        CHUNK(0);
        CHUNK(1);
        CHUNK(2);
        CHUNK(3);
    }
#undef CHUNK
    for (int m = 0; m < MT; m++)
        y[(i0 + m) * w->n + r] = _mm512_reduce_add_ps(racc[m]) + off[m];
}

int mt_q_nib_ok(const struct mt_qtensor *w, size_t m)
{
    const enum mt_qscheme s = w->fmt.scheme;
    return m < 4 && w->fmt.bits == 4 && w->k_pad % 128 == 0 && w->unit_len % 128 == 0 &&
           (mt_q_is_linear(s) || s == MT_QS_NF || s == MT_QS_LOG || s == MT_QS_KMEANS);
}

void mt_q_nib_order(const float *x, size_t k_pad, float *out)
{
    /* dword l of a 64-byte chunk holds code bytes 4l..4l+3 (block l / 8); its nibble t is
     * code 64 (l / 8) + 4 (l % 8) + t / 2 + 32 (t % 2) of the chunk (qformat.h) */
    for (size_t c = 0; c < k_pad; c += 128)
        for (size_t t = 0; t < 8; t++)
            for (size_t l = 0; l < 16; l++)
                out[c + 16 * t + l] = x[c + 64 * (l / 8) + 4 * (l % 8) + t / 2 + 32 * (t % 2)];
}

/* Row r of a 4-bit tensor (units of 128k columns) against one token row of activations
 * in nibble order (mt_q_nib_order): each 64-byte load is 128 codes, and the eight nibbles
 * of every dword index vpermps in turn (it reads the low four bits of each lane), so one
 * shift and one permute turn 16 codes into 16 decoded weights: the unit's table is the
 * codebook times its scale, or scale * c + offset for linear schemes, the reference's
 * decoded weight either way. Four FMA chains. */
INLINE float row_f32_nib(const struct mt_qtensor *w, const float *xp, size_t r, const int kind)
{
    const uint8_t *row = w->codes + r * w->row_bytes;
    const size_t cpu = w->unit_len / 128;
    const __m512 iota = _mm512_set_ps(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512 cb =
        kind == KIND_CB16 && w->fmt.scheme != MT_QS_KMEANS ? load_lut16(w, r, 0) : iota;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (size_t u = 0; u < w->units_per_row; u++) {
        const size_t mi = mt_q_meta(w, r, u);
        __m512 lut;
        if (kind == KIND_LIN)
            lut = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(w->scale[mi]), iota),
                                _mm512_set1_ps(w->offset[mi]));
        else if (w->fmt.scheme == MT_QS_KMEANS)
            lut = load_lut16(w, r, u);
        else
            lut = _mm512_mul_ps(_mm512_set1_ps(w->scale[mi]), cb);
        for (size_t c = u * cpu; c < (u + 1) * cpu; c++) {
            __m512i v = _mm512_loadu_si512(row + c * 64);
            const float *xc = xp + c * 128;
#pragma GCC unroll 8
            for (int t = 0; t < 8; t++, v = _mm512_srli_epi32(v, 4))
                acc[t % 4] = _mm512_fmadd_ps(_mm512_loadu_ps(xc + 16 * t),
                                             _mm512_permutexvar_ps(v, lut), acc[t % 4]);
        }
    }
    return _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

/* Row r of an fp16/bf16 tensor against token rows i0..i0+MT-1; both conversions to fp32
 * are exact. */
INLINE void row_half(const struct mt_qtensor *w, const struct mt_qprep *p, size_t r, size_t i0,
                     const int MT, const int bf16, float *y)
{
    const uint16_t *row = (const uint16_t *)(const void *)(w->codes + r * w->row_bytes);
    const float *xs[4];
    __m512 d[4][4];
    for (int m = 0; m < MT; m++) {
        xs[m] = p->x + (i0 + m) * p->k_pad;
        for (int c = 0; c < 4; c++)
            d[m][c] = _mm512_setzero_ps();
    }
    for (size_t j = 0; j < w->k_pad; j += 64)
        for (int c = 0; c < 4; c++) {
            __m256i h = _mm256_loadu_si256((const void *)(row + j + 16 * c));
            __m512 v = bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
                            : _mm512_cvtph_ps(h);
            for (int m = 0; m < MT; m++)
                d[m][c] = _mm512_fmadd_ps(_mm512_loadu_ps(xs[m] + j + 16 * c), v, d[m][c]);
        }
    for (int m = 0; m < MT; m++)
        y[(i0 + m) * w->n + r] = _mm512_reduce_add_ps(
            _mm512_add_ps(_mm512_add_ps(d[m][0], d[m][1]), _mm512_add_ps(d[m][2], d[m][3])));
}

/* One output row for all token rows, in tiles of four. */
#define TILES(call4, call1)                                                                        \
    do {                                                                                           \
        size_t i0 = 0;                                                                             \
        for (; i0 + 4 <= p->m; i0 += 4)                                                            \
            call4;                                                                                 \
        for (; i0 < p->m; i0++)                                                                    \
            call1;                                                                                 \
    } while (0)

#define F32_CASE(bits, kind)                                                                       \
    TILES(row_f32(w, p, r, i0, 4, bits, kind, y), row_f32(w, p, r, i0, 1, bits, kind, y))

void mt_q_gemm_f32_avx512(const struct mt_qtensor *w, const struct mt_qprep *p, float *y)
{
    const enum mt_qscheme s = w->fmt.scheme;
    const int kind = mt_q_is_linear(s) ? KIND_LIN : w->fmt.bits <= 4 ? KIND_CB16 : KIND_CB256;
    const unsigned bits = w->fmt.bits;
    if (p->xp) { /* decode-sized 4-bit: nibble order (mt_q_nib_ok) */
#pragma omp parallel for schedule(static) if (w->n * w->k_pad * p->m >= PAR_MIN_WORK)
        for (size_t r = 0; r < w->n; r++)
            for (size_t i = 0; i < p->m; i++)
                y[i * w->n + r] = kind == KIND_LIN
                                      ? row_f32_nib(w, p->xp + i * p->k_pad, r, KIND_LIN)
                                      : row_f32_nib(w, p->xp + i * p->k_pad, r, KIND_CB16);
        return;
    }
#pragma omp parallel for schedule(static) if (w->n * w->k_pad * p->m >= PAR_MIN_WORK)
    for (size_t r = 0; r < w->n; r++) {
        if (s == MT_QS_BF16)
            TILES(row_half(w, p, r, i0, 4, 1, y), row_half(w, p, r, i0, 1, 1, y));
        else if (s == MT_QS_FP16)
            TILES(row_half(w, p, r, i0, 4, 0, y), row_half(w, p, r, i0, 1, 0, y));
        else if (kind == KIND_LIN) {
            switch (bits) {
            case 8:
                F32_CASE(8, KIND_LIN);
                break;
            case 4:
                F32_CASE(4, KIND_LIN);
                break;
            case 3:
                F32_CASE(3, KIND_LIN);
                break;
            default:
                F32_CASE(2, KIND_LIN);
                break;
            }
        } else if (kind == KIND_CB16) {
            switch (bits) {
            case 4:
                F32_CASE(4, KIND_CB16);
                break;
            case 3:
                F32_CASE(3, KIND_CB16);
                break;
            default:
                F32_CASE(2, KIND_CB16);
                break;
            }
        } else {
            F32_CASE(8, KIND_CB256);
        }
    }
}

/* ------------------------------------------------------------ int8 activations (VNNI) */

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/* Adds one unit's exact integer dot to the fp32 row sum, in the order the reference
 * uses: acc += scale * isum + offset * asum. */
#define FLUSH_UNIT(m, uu, isum)                                                                    \
    do {                                                                                           \
        size_t mi_ = mt_q_meta(w, r, (uu));                                                        \
        accf[m] += w->scale[mi_] * (float)(isum) +                                                 \
                   w->offset[mi_] * (float)p->asum[(i0 + (m)) * p->units + (uu)];                  \
    } while (0)

VNNI INLINE void row_i8(const struct mt_qtensor *w, const struct mt_qprep *p, size_t r, size_t i0,
                        const int MT, const unsigned bits, float *y)
{
    const uint8_t *row = w->codes + r * w->row_bytes;
    const size_t bb = (size_t)bits * 8, nblk = w->k_pad / MT_QBLOCK;
    const int8_t *as[4];
    __m512i acc[4], acc2[4];
    float accf[4];
    for (int m = 0; m < MT; m++) {
        as[m] = p->qa + (i0 + m) * p->k_pad;
        accf[m] = 0.0f;
    }
#define DOT(accv, blk)                                                                             \
    do {                                                                                           \
        const __m512i cw = unpack64(row + (blk)*bb, bits);                                         \
        for (int m = 0; m < MT; m++)                                                               \
            accv[m] =                                                                              \
                _mm512_dpbusd_epi32(accv[m], cw, _mm512_loadu_si512(as[m] + (blk)*MT_QBLOCK));     \
    } while (0)
    if (w->unit_len < MT_QBLOCK) { /* 32-column groups: two units per block */
        for (size_t b = 0; b < nblk; b++) {
            for (int m = 0; m < MT; m++)
                acc[m] = _mm512_setzero_si512();
            DOT(acc, b);
            for (int m = 0; m < MT; m++) {
                FLUSH_UNIT(m, 2 * b, _mm512_mask_reduce_add_epi32(0x00ff, acc[m]));
                FLUSH_UNIT(m, 2 * b + 1, _mm512_mask_reduce_add_epi32(0xff00, acc[m]));
            }
        }
    } else {
        /* Even and odd blocks of a unit go to two accumulators, so two vpdpbusd chains
         * run side by side; their sum is the same exact integer. */
        const size_t per_unit = w->unit_len / MT_QBLOCK;
        for (size_t u = 0; u < w->units_per_row; u++) {
            const size_t b0 = u * per_unit;
            for (int m = 0; m < MT; m++)
                acc[m] = acc2[m] = _mm512_setzero_si512();
            size_t b = 0;
            for (; b + 2 <= per_unit; b += 2) {
                DOT(acc, b0 + b);
                DOT(acc2, b0 + b + 1);
            }
            if (b < per_unit) DOT(acc, b0 + b);
            for (int m = 0; m < MT; m++)
                FLUSH_UNIT(m, u, _mm512_reduce_add_epi32(_mm512_add_epi32(acc[m], acc2[m])));
        }
    }
#undef DOT
    for (int m = 0; m < MT; m++)
        y[(i0 + m) * w->n + r] = p->sa[i0 + m] * accf[m];
}
#undef FLUSH_UNIT

/* hsum16's last two halvings, from t[j] = its first two halvings of rows 4j .. 4j+3 (per
 * 128-bit lane: rows 4j .. 4j+3). strip_i8 also forms t itself for parts whose lanes fit
 * in 15 bits (strip_small) by packing pairs of rows to int16 (vpackssdw, which cannot
 * saturate there: one halving's sums stay below 2^15) and adding neighbours with vpmaddwd
 * against ones: one shuffle per pair where unpacks take two, and the lanes land where
 * hsum16's unpacks put them. */
VNNI INLINE void hsum16_tail(const __m512i *t, __m512i *out, const int halves)
{
    __m512i x01 = _mm512_add_epi32(_mm512_shuffle_i32x4(t[0], t[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_i32x4(t[0], t[1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512i x23 = _mm512_add_epi32(_mm512_shuffle_i32x4(t[2], t[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_i32x4(t[2], t[3], _MM_SHUFFLE(3, 1, 3, 1)));
    /* x01 = [rows 0-3 lanes 0-7, rows 0-3 lanes 8-15, rows 4-7 lanes 0-7, rows 4-7 ...] */
    __m512i lo = _mm512_shuffle_i32x4(x01, x23, _MM_SHUFFLE(2, 0, 2, 0));
    __m512i hi = _mm512_shuffle_i32x4(x01, x23, _MM_SHUFFLE(3, 1, 3, 1));
    if (halves) { /* lanes 0-7 and 8-15 of each v[q] summed apart */
        out[0] = lo;
        out[1] = hi;
    } else
        out[0] = _mm512_add_epi32(lo, hi);
}

/* Sixteen row sums at once: lane q of out[0] is the sum of the 16 lanes of v[q] (exact
 * int32 adds, so the order does not matter): 45 shuffles and adds for 16 rows instead of
 * 16 separate horizontal reductions. With `halves`, out[0] sums lanes 0-7 and out[1]
 * lanes 8-15 (two units side by side). */
VNNI INLINE void hsum16(const __m512i *v, __m512i *out, const int halves)
{
    __m512i s[8], t[4];
    for (int j = 0; j < 8; j++) /* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] */
        s[j] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * j], v[2 * j + 1]),
                                _mm512_unpackhi_epi32(v[2 * j], v[2 * j + 1]));
    for (int j = 0; j < 4; j++) /* per 128-bit lane: rows 4j .. 4j+3 */
        t[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(s[2 * j], s[2 * j + 1]),
                                _mm512_unpackhi_epi64(s[2 * j], s[2 * j + 1]));
    hsum16_tail(t, out, halves);
}

int mt_q_plane_ok(const struct mt_qtensor *w, size_t m)
{
    if (m >= 4 || !mt_q_is_linear(w->fmt.scheme)) return 0;
    if (w->fmt.bits == 4) return w->unit_len % 128 == 0;
    return w->fmt.bits == 2 && w->k_pad % 256 == 0 &&
           (w->unit_len == 128 || w->unit_len % 256 == 0);
}

void mt_q_plane_order(const int8_t *a, size_t k_pad, unsigned bits, int8_t *out)
{
    if (bits == 4) /* lo plane: columns 0..31, 64..95 of the chunk; hi: 32..63, 96..127 */
        for (size_t c = 0; c < k_pad; c += 128) {
            memcpy(out + c, a + c, 32);
            memcpy(out + c + 32, a + c + 64, 32);
            memcpy(out + c + 64, a + c + 32, 32);
            memcpy(out + c + 96, a + c + 96, 32);
        }
    else /* plane n, bytes 16 b .. 16 b + 15: block b's codes 16 n .. 16 n + 15 */
        for (size_t c = 0; c < k_pad; c += 256)
            for (size_t n = 0; n < 4; n++)
                for (size_t b = 0; b < 4; b++)
                    memcpy(out + c + 64 * n + 16 * b, a + c + 64 * b + 16 * n, 16);
}

/* A 64-byte load the compiler may not fold into each instruction that uses it: folded
 * into both plane extractions it would be two loads of the same line per chunk. */
INLINE __m512i load_once(const void *p)
{
    __m512i v = _mm512_loadu_si512(p);
    __asm__("" : "+v"(v));
    return v;
}

#define STRIP 16   /* output rows per strip */
#define STRIP_U 24 /* parts per pass over a strip, at most: 24 KB of partial sums, in L1 */

/* t[u] for u < 16: lane q holds src[q * stride + u] (q < 16), for the first nu < 16 or all
 * 16 columns (the rest read nothing and are zero): the metadata of 16 rows' units with
 * rows in lanes, by a 16 x 16 transpose (unpacks and 128-bit shuffles, 64 register ops for
 * 16 units). Two 16-lane gathers per unit cost more than the unit's weights take to
 * stream here (a vgatherdps zmm is about 12 ns on the Zen 4 development machine). */
INLINE void transpose16(const float *src, size_t stride, size_t nu, __m512 *t)
{
    const __mmask16 mk = nu >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nu) - 1u);
    __m512 a[16];
    __m512d b[16];
    for (int j = 0; j < 8; j++) {
        const __m512 r0 = _mm512_maskz_loadu_ps(mk, src + (size_t)(2 * j) * stride);
        const __m512 r1 = _mm512_maskz_loadu_ps(mk, src + (size_t)(2 * j + 1) * stride);
        a[2 * j] = _mm512_unpacklo_ps(r0, r1);
        a[2 * j + 1] = _mm512_unpackhi_ps(r0, r1);
    }
    for (int j = 0; j < 4; j++) { /* b[4j+k], 128-bit lane l: rows 4j..4j+3 of column 4l+k */
        const __m512d a0 = _mm512_castps_pd(a[4 * j]), a1 = _mm512_castps_pd(a[4 * j + 1]);
        const __m512d a2 = _mm512_castps_pd(a[4 * j + 2]), a3 = _mm512_castps_pd(a[4 * j + 3]);
        b[4 * j] = _mm512_unpacklo_pd(a0, a2);
        b[4 * j + 1] = _mm512_unpackhi_pd(a0, a2);
        b[4 * j + 2] = _mm512_unpacklo_pd(a1, a3);
        b[4 * j + 3] = _mm512_unpackhi_pd(a1, a3);
    }
    for (int k = 0; k < 4; k++) {
        const __m512 b0 = _mm512_castpd_ps(b[k]), b1 = _mm512_castpd_ps(b[4 + k]);
        const __m512 b2 = _mm512_castpd_ps(b[8 + k]), b3 = _mm512_castpd_ps(b[12 + k]);
        const __m512 lo01 = _mm512_shuffle_f32x4(b0, b1, _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 hi01 = _mm512_shuffle_f32x4(b0, b1, _MM_SHUFFLE(3, 2, 3, 2));
        const __m512 lo23 = _mm512_shuffle_f32x4(b2, b3, _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 hi23 = _mm512_shuffle_f32x4(b2, b3, _MM_SHUFFLE(3, 2, 3, 2));
        t[k] = _mm512_shuffle_f32x4(lo01, lo23, _MM_SHUFFLE(2, 0, 2, 0));
        t[4 + k] = _mm512_shuffle_f32x4(lo01, lo23, _MM_SHUFFLE(3, 1, 3, 1));
        t[8 + k] = _mm512_shuffle_f32x4(hi01, hi23, _MM_SHUFFLE(2, 0, 2, 0));
        t[12 + k] = _mm512_shuffle_f32x4(hi01, hi23, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

/* transpose16 for at most 8 columns (k = 768 in groups of 128 has 6 units a row): rows q
 * and q + 8 share a register, so one 8 x 8 transpose per 256-bit half serves all 16 rows,
 * 32 register ops where transpose16 takes 48. */
INLINE void transpose16x8(const float *src, size_t stride, size_t nu, __m512 *t)
{
    const __mmask8 mk = (__mmask8)((1u << nu) - 1u);
    const __m512i lo = _mm512_set_epi32(27, 26, 25, 24, 11, 10, 9, 8, 19, 18, 17, 16, 3, 2, 1, 0);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(4));
    __m512 z[8], a[8];
    for (int q = 0; q < 8; q++) /* lanes 0-7: row q, 8-15: row q + 8 */
        z[q] = _mm512_insertf32x8(
            _mm512_castps256_ps512(_mm256_maskz_loadu_ps(mk, src + (size_t)q * stride)),
            _mm256_maskz_loadu_ps(mk, src + (size_t)(q + 8) * stride), 1);
    for (int j = 0; j < 4;
         j++) { /* 128-bit lane l: rows 2j, 2j+1 of columns 4(l%2)+{0,1} / {2,3} */
        a[2 * j] = _mm512_unpacklo_ps(z[2 * j], z[2 * j + 1]);
        a[2 * j + 1] = _mm512_unpackhi_ps(z[2 * j], z[2 * j + 1]);
    }
    for (int h = 0; h < 2; h++) { /* rows 4h .. 4h+3: u[k], column k (lanes 0, 2) or k+4 */
        const __m512d a0 = _mm512_castps_pd(a[4 * h]), a1 = _mm512_castps_pd(a[4 * h + 1]);
        const __m512d a2 = _mm512_castps_pd(a[4 * h + 2]), a3 = _mm512_castps_pd(a[4 * h + 3]);
        z[4 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        z[4 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        z[4 * h + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        z[4 * h + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    for (int k = 0; k < 4; k++) { /* rows 0-3 | 4-7 | 8-11 | 12-15 */
        t[k] = _mm512_permutex2var_ps(z[k], lo, z[4 + k]);
        t[4 + k] = _mm512_permutex2var_ps(z[k], hi, z[4 + k]);
    }
}

/* sc[j], of[j]: the scales and offsets of units u .. u + cnt - 1 (cnt <= 2 STRIP_U) of rows
 * r0 .. r0 + 15, rows in lanes: one load per array for a unit per row (channel: 16
 * consecutive rows; tensor: one value), else 16 x 16 transposes. */
INLINE void strip_meta(const struct mt_qtensor *w, size_t r0, size_t u, size_t cnt, __m512 *sc,
                       __m512 *of)
{
    const size_t ms = w->meta_row_stride, mi = mt_q_meta(w, r0, u);
    if (w->units_per_row == 1) {
        sc[0] = ms ? _mm512_loadu_ps(w->scale + mi) : _mm512_set1_ps(w->scale[mi]);
        of[0] = ms ? _mm512_loadu_ps(w->offset + mi) : _mm512_set1_ps(w->offset[mi]);
        return;
    }
    if (cnt <= 8) {
        transpose16x8(w->scale + mi, ms, cnt, sc);
        transpose16x8(w->offset + mi, ms, cnt, of);
        return;
    }
    for (size_t j = 0; j < cnt; j += 16) {
        transpose16(w->scale + mi + j, ms, cnt - j, sc + j);
        transpose16(w->offset + mi + j, ms, cnt - j, of + j);
    }
}

/* Rows r0 .. r0+15 against token row i (decode: fewer than four token rows). The weights
 * are read in memory order (row by row, the units of a pass in turn) and every unit's
 * vpdpbusd vector is parked in an L1 buffer; then hsum16 turns 16 rows of one unit into
 * one vector of exact integer dots and the reference's fp32 combination runs on 16 rows
 * at once (scales and offsets transposed to rows in lanes: strip_meta): acc += scale * isum +
 * offset * asum, the same operations in the same order per row, hence the same bits. */
/* Whether every lane of a strip part fits in 14 bits and a sign (|lane| <= 16383), so
 * that strip_i8 may fold parts through int16 (hsum16_tail): a lane sums (the part's
 * columns) / 16 products of a code (at most 2^bits - 1) and an activation (|a| <= 127). */
static int strip_small(const struct mt_qtensor *w, const int planes)
{
    const size_t cols = planes == 2 && w->unit_len == 128 ? 256 : w->unit_len;
    return cols / 16 * (((size_t)1 << w->fmt.bits) - 1) * 127 <= 16383;
}

VNNI INLINE void strip_i8(const struct mt_qtensor *w, const struct mt_qprep *p, size_t r0, size_t i,
                          const unsigned bits, const int PLANES, const int SMALL, float *y)
{
    const size_t bb = (size_t)bits * 8, per_unit = w->unit_len / MT_QBLOCK;
    const int8_t *a = p->qa + i * p->k_pad, *ap = PLANES ? p->qp + i * p->k_pad : NULL;
    const __m512i m4 = _mm512_set1_epi8(15), m2 = _mm512_set1_epi8(3);
    const int two = PLANES == 2 && w->unit_len == 128; /* halves: units 2uu, 2uu+1 */
    /* Rows whose dots share each activation load. One row at a time reads the weights in
     * memory order, which the hardware prefetchers follow; four rows at a time (3- and
     * 2-bit codes, SMALL) save three of every four activation loads but read four rows
     * side by side (2-bit planes prefetch the same chunk two strips ahead), and fold the
     * four rows' parts at once (hsum16_tail's first two halvings), parking only the fold.
     * Streaming from memory (3072x768, best of 3 passes over 160 MB, 1 thread, load 13)
     * four rows lost to one for 4-bit planes (16 against 23 GB/s) and won for 2-bit (22
     * against 19) and 3-bit (18.0 against 17.6). */
    const int R = SMALL && bits < 4 ? 4 : 1;
    const size_t pf = 2 * STRIP * w->row_bytes, pf1 = STRIP * w->row_bytes;
    /* passes over units: with 2-bit planes of 128-column units a part holds two units */
    const size_t n_parts =
        PLANES == 2 && w->unit_len == 128 ? w->units_per_row / 2 : w->units_per_row;
    /* Rows longer than one pass are read in pieces, row by row, then again from the first
     * row; the hardware prefetchers lose the stream. One row at a time takes passes of 24
     * parts (k = 3072 in groups of 128 in one pass); four rows at a time keep passes of 16
     * and each 64-byte load prefetches the same bytes of the next strip. Per-thread CPU
     * time, 768 x 3072 over 100 MB of copies, 1 thread, load 5-8, medians of interleaved
     * runs: 4-bit planes 225 -> 199 us with the prefetch (passes of 16), 180 -> 152 us with
     * passes of 24; 3-bit 148 -> 121 us with the prefetch, slower with passes of 24 (120 ->
     * 164). One-pass shapes got slower with the prefetch (3072 x 768: 96 -> 105 us). */
    const size_t pass_u = R == 1 ? STRIP_U : 16;
    const int PF = n_parts > pass_u;
    __m512i part[STRIP_U][STRIP];
    __m512 accv = _mm512_setzero_ps();
    for (size_t u0 = 0; u0 < n_parts; u0 += pass_u) {
        const size_t nu = n_parts - u0 < pass_u ? n_parts - u0 : pass_u;
        for (int q = 0; q < STRIP; q += R) {
            const uint8_t *row[4];
            for (int rr = 0; rr < R; rr++)
                row[rr] = w->codes + (r0 + (size_t)(q + rr)) * w->row_bytes;
            for (size_t uu = 0; uu < nu; uu++) {
                __m512i acc[4], acc2[4];
                for (int rr = 0; rr < R; rr++)
                    acc[rr] = acc2[rr] = _mm512_setzero_si512();
                if (PLANES == 4) { /* one 64-byte load is 128 codes: two nibble planes */
                    const size_t c0 = (u0 + uu) * (w->unit_len / 128);
                    for (size_t c = c0; c < c0 + w->unit_len / 128; c++) {
                        const __m512i a0 = _mm512_loadu_si512(ap + c * 128),
                                      a1 = _mm512_loadu_si512(ap + c * 128 + 64);
                        for (int rr = 0; rr < R; rr++) {
                            const __m512i v = load_once(row[rr] + c * 64);
                            if (PF)
                                _mm_prefetch((const char *)(row[rr] + c * 64 + pf1), _MM_HINT_T0);
                            acc[rr] = _mm512_dpbusd_epi32(acc[rr], _mm512_and_si512(v, m4), a0);
                            acc2[rr] = _mm512_dpbusd_epi32(
                                acc2[rr], _mm512_and_si512(_mm512_srli_epi16(v, 4), m4), a1);
                        }
                    }
                } else if (PLANES == 2) { /* 256 codes: four crumb planes */
                    const size_t cpu = w->unit_len == 128 ? 1 : w->unit_len / 256;
                    for (size_t c = (u0 + uu) * cpu; c < (u0 + uu + 1) * cpu; c++) {
                        const int8_t *ac = ap + c * 256;
                        const __m512i a0 = _mm512_loadu_si512(ac), a1 = _mm512_loadu_si512(ac + 64),
                                      a2 = _mm512_loadu_si512(ac + 128),
                                      a3 = _mm512_loadu_si512(ac + 192);
                        for (int rr = 0; rr < R; rr++) {
                            const __m512i v = load_once(row[rr] + c * 64);
                            if (R > 1)
                                _mm_prefetch((const char *)(row[rr] + c * 64 + pf), _MM_HINT_T0);
                            acc[rr] = _mm512_dpbusd_epi32(acc[rr], _mm512_and_si512(v, m2), a0);
                            acc2[rr] = _mm512_dpbusd_epi32(
                                acc2[rr], _mm512_and_si512(_mm512_srli_epi16(v, 2), m2), a1);
                            acc[rr] = _mm512_dpbusd_epi32(
                                acc[rr], _mm512_and_si512(_mm512_srli_epi16(v, 4), m2), a2);
                            acc2[rr] = _mm512_dpbusd_epi32(
                                acc2[rr], _mm512_and_si512(_mm512_srli_epi16(v, 6), m2), a3);
                        }
                    }
                } else {
                    const size_t b0 = (u0 + uu) * per_unit;
                    size_t b = 0;
                    for (; b + 2 <= per_unit; b += 2) {
                        const __m512i a0 = _mm512_loadu_si512(a + (b0 + b) * MT_QBLOCK),
                                      a1 = _mm512_loadu_si512(a + (b0 + b + 1) * MT_QBLOCK);
                        for (int rr = 0; rr < R; rr++) {
                            if (PF)
                                _mm_prefetch((const char *)(row[rr] + (b0 + b) * bb + pf1),
                                             _MM_HINT_T0);
                            acc[rr] = _mm512_dpbusd_epi32(
                                acc[rr], unpack64(row[rr] + (b0 + b) * bb, bits), a0);
                            acc2[rr] = _mm512_dpbusd_epi32(
                                acc2[rr], unpack64(row[rr] + (b0 + b + 1) * bb, bits), a1);
                        }
                    }
                    if (b < per_unit) {
                        const __m512i a0 = _mm512_loadu_si512(a + (b0 + b) * MT_QBLOCK);
                        for (int rr = 0; rr < R; rr++)
                            acc[rr] = _mm512_dpbusd_epi32(
                                acc[rr], unpack64(row[rr] + (b0 + b) * bb, bits), a0);
                    }
                }
                if (R == 4) {
                    const __m512i ones = _mm512_set1_epi16(1);
                    const __m512i s01 =
                        _mm512_madd_epi16(_mm512_packs_epi32(_mm512_add_epi32(acc[0], acc2[0]),
                                                             _mm512_add_epi32(acc[1], acc2[1])),
                                          ones);
                    const __m512i s23 =
                        _mm512_madd_epi16(_mm512_packs_epi32(_mm512_add_epi32(acc[2], acc2[2]),
                                                             _mm512_add_epi32(acc[3], acc2[3])),
                                          ones);
                    part[uu][q / 4] = _mm512_madd_epi16(_mm512_packs_epi32(s01, s23), ones);
                } else
                    for (int rr = 0; rr < R; rr++)
                        part[uu][q + rr] = _mm512_add_epi32(acc[rr], acc2[rr]);
            }
        }
        const size_t ua = two ? 2 * u0 : u0;
        __m512 sct[2 * STRIP_U], oft[2 * STRIP_U];
        strip_meta(w, r0, ua, two ? 2 * nu : nu, sct, oft);
        for (size_t uu = 0; uu < nu; uu++) {
            __m512i isum[2];
            if (SMALL && R == 1) { /* hsum16_tail's first two halvings through int16 */
                const __m512i ones = _mm512_set1_epi16(1);
                __m512i s8[8], t4[4];
                for (int j = 0; j < 8; j++)
                    s8[j] = _mm512_madd_epi16(
                        _mm512_packs_epi32(part[uu][2 * j], part[uu][2 * j + 1]), ones);
                for (int j = 0; j < 4; j++)
                    t4[j] = _mm512_madd_epi16(_mm512_packs_epi32(s8[2 * j], s8[2 * j + 1]), ones);
                hsum16_tail(t4, isum, two);
            } else if (SMALL)
                hsum16_tail(part[uu], isum, two);
            else
                hsum16(part[uu], isum, two);
            for (int h = 0; h <= two; h++) {
                const size_t j = two ? 2 * uu + (size_t)h : uu, u = ua + j;
                const __m512 sc = sct[w->units_per_row == 1 ? 0 : j];
                const __m512 of = oft[w->units_per_row == 1 ? 0 : j];
                __m512 as = _mm512_set1_ps((float)p->asum[i * p->units + u]);
                accv = _mm512_add_ps(accv,
                                     _mm512_add_ps(_mm512_mul_ps(sc, _mm512_cvtepi32_ps(isum[h])),
                                                   _mm512_mul_ps(of, as)));
            }
        }
    }
    _mm512_storeu_ps(y + i * w->n + r0, _mm512_mul_ps(_mm512_set1_ps(p->sa[i]), accv));
}

#define STRIP_CASE(bits, planes)                                                                   \
    do {                                                                                           \
        if (r < full && small)                                                                     \
            for (size_t i = 0; i < p->m; i++)                                                      \
                strip_i8(w, p, r, i, bits, planes, 1, y);                                          \
        else if (r < full)                                                                         \
            for (size_t i = 0; i < p->m; i++)                                                      \
                strip_i8(w, p, r, i, bits, planes, 0, y);                                          \
        else                                                                                       \
            for (size_t rr = r; rr < w->n; rr++)                                                   \
                for (size_t i0 = 0; i0 < p->m; i0++)                                               \
                    row_i8(w, p, rr, i0, 1, bits, y);                                              \
    } while (0)

/* Decode-sized products (fewer than four token rows, units of whole blocks): strips of
 * 16 output rows split across threads, the last partial strip row by row. */
VNNI static void gemm_i8_strips(const struct mt_qtensor *w, const struct mt_qprep *p, float *y)
{
    const unsigned bits = w->fmt.bits;
    const size_t full = w->n / STRIP * STRIP;
    const int small = bits < 8 && strip_small(w, p->qp ? (int)bits : 0);
#pragma omp parallel for schedule(static) if (w->n * w->k_pad * p->m >= PAR_MIN_WORK)
    for (size_t r = 0; r < w->n; r += STRIP) {
        if (bits == 8)
            STRIP_CASE(8, 0);
        else if (bits == 4 && p->qp)
            STRIP_CASE(4, 4);
        else if (bits == 4)
            STRIP_CASE(4, 0);
        else if (bits == 3)
            STRIP_CASE(3, 0);
        else if (p->qp)
            STRIP_CASE(2, 2);
        else
            STRIP_CASE(2, 0);
    }
}
#undef STRIP_CASE

#define I8_CASE(bits) TILES(row_i8(w, p, r, i0, 4, bits, y), row_i8(w, p, r, i0, 1, bits, y))

VNNI void mt_q_gemm_i8_avx512(const struct mt_qtensor *w, const struct mt_qprep *p, float *y)
{
    const unsigned bits = w->fmt.bits;
    if (p->m < 4 && w->unit_len >= MT_QBLOCK) {
        gemm_i8_strips(w, p, y);
        return;
    }
#pragma omp parallel for schedule(static) if (w->n * w->k_pad * p->m >= PAR_MIN_WORK)
    for (size_t r = 0; r < w->n; r++) {
        switch (bits) {
        case 8:
            I8_CASE(8);
            break;
        case 4:
            I8_CASE(4);
            break;
        case 3:
            I8_CASE(3);
            break;
        default:
            I8_CASE(2);
            break;
        }
    }
}

/* ------------------------------------------------------------ activation preparation */

/* The same bytes as qkernels.c's scalar quantize_rows and unit sums (tests compare): the
 * absolute maximum is exact in any order, x * (127 / amax) is the same product, and
 * vrndscaleps rounds half to even as nearbyintf does in the default rounding mode. */
void mt_q_quantize_rows_avx512(const float *x, size_t m, size_t k, size_t k_pad, size_t unit_len,
                               int8_t *qa, float *sa, int32_t *asum)
{
    const __m512 lim = _mm512_set1_ps(127.0f), nlim = _mm512_set1_ps(-127.0f);
    for (size_t i = 0; i < m; i++) {
        const float *xi = x + i * k;
        __m512 vmax = _mm512_setzero_ps();
        size_t j = 0;
        for (; j + 16 <= k; j += 16)
            vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(xi + j)));
        if (j < k)
            vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_maskz_loadu_ps(
                                           (__mmask16)((1u << (k - j)) - 1u), xi + j)));
        float amax = _mm512_reduce_max_ps(vmax);
        float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        sa[i] = amax / 127.0f;
        const __m512 vinv = _mm512_set1_ps(inv);
        int8_t *a = qa + i * k_pad;
        for (j = 0; j < k; j += 16) {
            __mmask16 mk = k - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - j)) - 1u);
            __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, xi + j), vinv),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            q = _mm512_min_ps(_mm512_max_ps(q, nlim), lim);
            _mm512_mask_cvtepi32_storeu_epi8(a + j, mk, _mm512_cvtps_epi32(q));
        }
        memset(a + k, 0, k_pad - k);
        for (size_t u = 0; u < k_pad / unit_len; u++) {
            __m512i acc = _mm512_setzero_si512();
            for (j = u * unit_len; j < (u + 1) * unit_len; j += 16)
                acc = _mm512_add_epi32(
                    acc, _mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)(a + j))));
            asum[i * (k_pad / unit_len) + u] = _mm512_reduce_add_epi32(acc);
        }
    }
}

/* ------------------------------------------------------------ conversions */

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void
mt_q_f32_to_bf16_avx512(const float *x, uint16_t *out, size_t n)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
        _mm512_storeu_si512(out + i, (__m512i)h);
    }
    for (; i < n; i++)
        out[i] = mt_q_f32_to_bf16(x[i]);
}

void mt_q_f32_to_f16_avx512(const float *x, uint16_t *out, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256(
            (void *)(out + i),
            _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++)
        out[i] = mt_q_f32_to_f16(x[i]);
}
