/* dtype.c — element type conversion (see dtype.h). */
#include "dtype.h"

#include <math.h>
#include <string.h>

enum { QK = 32 };

const char *mt_dtype_name(enum mt_dtype t)
{
    static const char *const names[] = {"F32", "F16", "BF16", "Q8_0", "Q4_0"};
    return (unsigned)t < MT_DT_COUNT ? names[t] : "?";
}

size_t mt_dtype_block(enum mt_dtype t)
{
    return t == MT_DT_Q8_0 || t == MT_DT_Q4_0 ? QK : 1;
}

size_t mt_dtype_bytes(enum mt_dtype t, size_t n)
{
    switch (t) {
    case MT_DT_F32:
        return 4 * n;
    case MT_DT_F16:
    case MT_DT_BF16:
        return 2 * n;
    case MT_DT_Q8_0:
        return n % QK ? 0 : n / QK * (2 + QK);
    case MT_DT_Q4_0:
        return n % QK ? 0 : n / QK * (2 + QK / 2);
    default:
        return 0;
    }
}

static float bits_f32(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static uint32_t f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

float mt_f16_to_f32(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) { /* zero or subnormal: m * 2^-24 */
        float v = ldexpf((float)m, -24);
        return s ? -v : v;
    }
    if (e == 31) return bits_f32(s | 0x7f800000u | (m << 13));
    return bits_f32(s | ((e + 112) << 23) | (m << 13));
}

uint16_t mt_f32_to_f16(float x)
{
    uint32_t b = f32_bits(x), s = (b >> 16) & 0x8000, e = (b >> 23) & 0xff, m = b & 0x7fffff;
    if (e == 0xff) return (uint16_t)(s | 0x7c00 | (m ? 0x200 : 0));
    int32_t E = (int32_t)e - 127 + 15;
    if (E >= 31) return (uint16_t)(s | 0x7c00);
    if (E <= 0) { /* subnormal half (or zero) */
        if (E < -10) return (uint16_t)s;
        m |= 0x800000;
        uint32_t shift = (uint32_t)(14 - E), hm = m >> shift, rem = m & ((1u << shift) - 1),
                 half = 1u << (shift - 1);
        if (rem > half || (rem == half && (hm & 1))) hm++;
        return (uint16_t)(s | hm);
    }
    uint32_t hm = m >> 13, rem = m & 0x1fff, h = s | ((uint32_t)E << 10) | hm;
    if (rem > 0x1000 || (rem == 0x1000 && (hm & 1))) h++; /* a carry rounds up the exponent */
    return (uint16_t)h;
}

float mt_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t mt_f32_to_bf16(float x)
{
    uint32_t b = f32_bits(x);
    if ((b & 0x7fffffff) > 0x7f800000) return (uint16_t)((b >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((b + 0x7fff + ((b >> 16) & 1)) >> 16);
}

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void wr16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
}

void mt_dtype_decode(enum mt_dtype t, const void *src, float *dst, size_t n)
{
    const unsigned char *s = src;
    switch (t) {
    case MT_DT_F32:
        memcpy(dst, s, 4 * n);
        return;
    case MT_DT_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = mt_f16_to_f32(rd16(s + 2 * i));
        return;
    case MT_DT_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = mt_bf16_to_f32(rd16(s + 2 * i));
        return;
    case MT_DT_Q8_0:
        for (size_t b = 0; b < n / QK; b++, s += 2 + QK) {
            float d = mt_f16_to_f32(rd16(s));
            for (size_t j = 0; j < QK; j++)
                dst[b * QK + j] = (float)(int8_t)s[2 + j] * d;
        }
        return;
    case MT_DT_Q4_0:
        for (size_t b = 0; b < n / QK; b++, s += 2 + QK / 2) {
            float d = mt_f16_to_f32(rd16(s));
            for (size_t j = 0; j < QK / 2; j++) {
                dst[b * QK + j] = (float)((s[2 + j] & 0x0f) - 8) * d;
                dst[b * QK + j + QK / 2] = (float)((s[2 + j] >> 4) - 8) * d;
            }
        }
        return;
    default:
        return;
    }
}

void mt_dtype_encode(enum mt_dtype t, const float *src, void *dst, size_t n)
{
    unsigned char *o = dst;
    switch (t) {
    case MT_DT_F32:
        memcpy(o, src, 4 * n);
        return;
    case MT_DT_F16:
        for (size_t i = 0; i < n; i++)
            wr16(o + 2 * i, mt_f32_to_f16(src[i]));
        return;
    case MT_DT_BF16:
        for (size_t i = 0; i < n; i++)
            wr16(o + 2 * i, mt_f32_to_bf16(src[i]));
        return;
    case MT_DT_Q8_0:
        for (size_t b = 0; b < n / QK; b++, o += 2 + QK) {
            const float *x = src + b * QK;
            float amax = 0.0f;
            for (size_t j = 0; j < QK; j++)
                amax = fmaxf(amax, fabsf(x[j]));
            float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            wr16(o, mt_f32_to_f16(d));
            for (size_t j = 0; j < QK; j++)
                o[2 + j] = (unsigned char)(int8_t)roundf(x[j] * id);
        }
        return;
    case MT_DT_Q4_0:
        for (size_t b = 0; b < n / QK; b++, o += 2 + QK / 2) {
            const float *x = src + b * QK;
            float amax = 0.0f, max = 0.0f;
            for (size_t j = 0; j < QK; j++)
                if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
            float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            wr16(o, mt_f32_to_f16(d));
            for (size_t j = 0; j < QK / 2; j++) {
                int q0 = (int)(int8_t)(x[j] * id + 8.5f), q1 = (int)(int8_t)(x[j + QK / 2] * id + 8.5f);
                q0 = q0 < 15 ? q0 : 15, q1 = q1 < 15 ? q1 : 15;
                o[2 + j] = (unsigned char)(q0 | q1 << 4);
            }
        }
        return;
    default:
        return;
    }
}
