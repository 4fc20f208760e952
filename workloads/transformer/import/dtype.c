/* dtype.c — element type conversion (see dtype.h). */
#include "dtype.h"

#include <math.h>
#include <string.h>

#include <memtrade/f16.h>

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

float mt_f16_to_f32(uint16_t h)
{
    return mt_f16_to_float(h);
}

uint16_t mt_f32_to_f16(float x)
{
    return mt_f16_from_float(x);
}

float mt_bf16_to_f32(uint16_t h)
{
    return mt_bits_float((uint32_t)h << 16);
}

uint16_t mt_f32_to_bf16(float x)
{
    uint32_t b = mt_float_bits(x);
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
                int q0 = (int)(int8_t)(x[j] * id + 8.5f),
                    q1 = (int)(int8_t)(x[j + QK / 2] * id + 8.5f);
                q0 = q0 < 15 ? q0 : 15, q1 = q1 < 15 ? q1 : 15;
                o[2 + j] = (unsigned char)(q0 | q1 << 4);
            }
        }
        return;
    default:
        return;
    }
}
