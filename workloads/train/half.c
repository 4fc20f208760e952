/* half.c — bf16/fp16 conversions (see half.h): scalar definitions and the AVX512-BF16 /
 * F16C fast paths, compiled with per-function target attributes and picked at run time.
 */
#include "half.h"

#include <math.h>
#include <string.h>

#include <memtrade/f16.h>

#include "kernels.h"

#include <immintrin.h>

const char *mt_prec_name(enum mt_prec p)
{
    return p == MT_PREC_BF16 ? "bf16" : p == MT_PREC_FP16 ? "fp16" : "fp32";
}

int mt_prec_parse(const char *s, enum mt_prec *p)
{
    static const enum mt_prec all[] = {MT_PREC_FP32, MT_PREC_BF16, MT_PREC_FP16};
    for (size_t i = 0; s && i < 3; i++)
        if (!strcmp(s, mt_prec_name(all[i]))) {
            *p = all[i];
            return 0;
        }
    return -1;
}

int mt_half_fast(enum mt_prec p)
{
    __builtin_cpu_init();
    if (p == MT_PREC_BF16)
        return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
    if (p == MT_PREC_FP16) return __builtin_cpu_supports("avx512f");
    return 0;
}

static uint16_t bf16_from(float x)
{
    uint32_t u = mt_float_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static uint16_t fp16_from(float x)
{
    return mt_f16_from_float(x); /* memtrade/f16.h */
}

static float fp16_to(uint16_t h)
{
    return mt_f16_to_float(h);
}

uint16_t mt_half_from_float(enum mt_prec p, float x)
{
    return p == MT_PREC_BF16 ? bf16_from(x) : fp16_from(x);
}

float mt_half_to_float(enum mt_prec p, uint16_t h)
{
    return p == MT_PREC_BF16 ? mt_bits_float((uint32_t)h << 16) : fp16_to(h);
}

void mt_half_pack_ref(enum mt_prec p, uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = mt_half_from_float(p, src[i]);
}

void mt_half_unpack_ref(enum mt_prec p, float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = mt_half_to_float(p, src[i]);
}

/* ---------------------------------------------------------------- fast paths */

__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void
bf16_pack_fast(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 lo = _mm512_loadu_ps(src + i), hi = _mm512_loadu_ps(src + i + 16);
        __m512bh h = _mm512_cvtne2ps_pbh(hi, lo);
        _mm512_storeu_si512((void *)(dst + i), (__m512i)h);
    }
    for (; i < n; i++)
        dst[i] = bf16_from(src[i]);
}

__attribute__((target("avx512f,f16c"))) static void fp16_pack_fast(uint16_t *dst, const float *src,
                                                                   size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(src + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256((__m256i *)(dst + i), h);
    }
    for (; i < n; i++)
        dst[i] = fp16_from(src[i]);
}

__attribute__((target("avx512f,f16c"))) static void fp16_unpack_fast(float *dst,
                                                                     const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (; i < n; i++)
        dst[i] = fp16_to(src[i]);
}

/* One block of a conversion: the fast path when the CPU has it, else the scalar one. */
static void pack_block(enum mt_prec p, int fast, uint16_t *dst, const float *src, size_t n)
{
    if (fast && p == MT_PREC_BF16)
        bf16_pack_fast(dst, src, n);
    else if (fast)
        fp16_pack_fast(dst, src, n);
    else
        mt_half_pack_ref(p, dst, src, n);
}

static void unpack_block(enum mt_prec p, int fast, float *dst, const uint16_t *src, size_t n)
{
    if (p == MT_PREC_BF16) { /* a shift: the compiler vectorizes it */
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)src[i] << 16;
            memcpy(dst + i, &u, sizeof u);
        }
    } else if (fast) {
        fp16_unpack_fast(dst, src, n);
    } else {
        mt_half_unpack_ref(p, dst, src, n);
    }
}

/* Large arrays are converted in blocks over the OpenMP threads (activations of a batch
 * are megabytes); small ones on the calling thread. */
#define PAR_BLOCK ((size_t)32768)

/* pack = 1: floats to 16 bits; 0: back. */
static void convert(enum mt_prec p, int pack, void *dst, const void *src, size_t n)
{
    int fast = mt_half_fast(p);
    size_t nblk = (n + PAR_BLOCK - 1) / PAR_BLOCK;
#pragma omp parallel for schedule(static) if (nblk > 1)
    for (size_t b = 0; b < nblk; b++) {
        size_t i = b * PAR_BLOCK, k = n - i < PAR_BLOCK ? n - i : PAR_BLOCK;
        if (pack)
            pack_block(p, fast, (uint16_t *)dst + i, (const float *)src + i, k);
        else
            unpack_block(p, fast, (float *)dst + i, (const uint16_t *)src + i, k);
    }
}

void mt_half_pack(enum mt_prec p, uint16_t *dst, const float *src, size_t n)
{
    convert(p, 1, dst, src, n);
}

void mt_half_unpack(enum mt_prec p, float *dst, const uint16_t *src, size_t n)
{
    convert(p, 0, dst, src, n);
}

void mt_half_round(enum mt_prec p, float *x, size_t n)
{
    enum { CHUNK = 1024 };
    if (p == MT_PREC_FP32) return;
    int fast = mt_half_fast(p);
    size_t nblk = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > PAR_BLOCK)
    for (size_t b = 0; b < nblk; b++) {
        uint16_t h[CHUNK];
        size_t i = b * CHUNK, k = n - i < CHUNK ? n - i : CHUNK;
        pack_block(p, fast, h, x + i, k);
        unpack_block(p, fast, x + i, h, k);
    }
}

void mt_half_accumulate(enum mt_prec p, uint16_t *g, const float *d, size_t n, size_t *nonzero,
                        size_t *flushed)
{
    enum { CHUNK = 1024 };
    float acc[CHUNK];
    uint16_t own[CHUNK];
    size_t nz = 0, fl = 0;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        mt_half_unpack(p, acc, g + i, k);
        mt_half_pack(p, own, d + i, k);
        for (size_t j = 0; j < k; j++) {
            acc[j] += d[i + j];
            nz += d[i + j] != 0.0f;
            fl += d[i + j] != 0.0f && (own[j] & 0x7fffu) == 0;
        }
        mt_half_pack(p, g + i, acc, k);
    }
    *nonzero += nz;
    *flushed += fl;
}

int mt_half_nonfinite(enum mt_prec p, const uint16_t *h, size_t n)
{
    uint16_t expo = p == MT_PREC_BF16 ? 0x7f80u : 0x7c00u;
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= (h[i] & expo) == expo;
    return bad;
}

double mt_half_sumsq(enum mt_prec p, const uint16_t *src, size_t n, float *buf, size_t chunk)
{
    double ss = 0.0;
    for (size_t i = 0; i < n; i += chunk) {
        size_t k = n - i < chunk ? n - i : chunk;
        mt_half_unpack(p, buf, src + i, k);
        ss += mt_k_sumsq(buf, k);
    }
    return ss;
}
