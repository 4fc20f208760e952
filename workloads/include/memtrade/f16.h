/* memtrade/f16.h — the one scalar IEEE binary16 (fp16) conversion, for every module.
 *
 * What it is for: float -> fp16 with round to nearest even, exact subnormals (unit 2^-24),
 * overflow to +-inf from 65520 on, NaN to the quiet NaN of its sign (0x7e00); and fp16 ->
 * float, exact. The model import (import/dtype.c), mixed-precision storage (train/half.c)
 * and the packed formats (quantize/qformat.c) each had a copy; they agreed bit for bit on
 * every input (the quantize copy kept NaN payloads, now canonical), checked over all 2^32
 * floats and all 2^16 halves when they were merged. Vector paths (F16C) live beside their
 * users and are tested against these.
 * What it is not for: bf16 (its users round denormals differently on purpose; see
 * train/half.h and quantize/qformat.h).
 * Thread safety: pure functions.
 */
#ifndef MEMTRADE_F16_H
#define MEMTRADE_F16_H

#include <stdint.h>
#include <string.h>

/* The bits of a float and the float of bits (memcpy: no aliasing questions). */
static inline uint32_t mt_float_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static inline float mt_bits_float(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* fp16 -> float, exact. */
static inline float mt_f16_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) { /* zero or subnormal: m * 2^-24 */
        float v = (float)m * 0x1p-24f;
        return s ? -v : v;
    }
    if (e == 31) return mt_bits_float(s | 0x7f800000u | (m << 13));
    return mt_bits_float(s | ((e + 112u) << 23) | (m << 13));
}

/* float -> fp16, round to nearest even (see the top of this file). */
static inline uint16_t mt_f16_from_float(float x)
{
    uint32_t b = mt_float_bits(x), s = (b >> 16) & 0x8000u, e = (b >> 23) & 0xffu,
             m = b & 0x7fffffu;
    if (e == 0xff) return (uint16_t)(s | 0x7c00u | (m ? 0x200u : 0u));
    int32_t E = (int32_t)e - 127 + 15;
    if (E >= 31) return (uint16_t)(s | 0x7c00u);
    if (E <= 0) { /* subnormal half (or zero) */
        if (E < -10) return (uint16_t)s;
        m |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - E), hm = m >> shift, rem = m & ((1u << shift) - 1u),
                 half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (hm & 1u))) hm++;
        return (uint16_t)(s | hm);
    }
    uint32_t hm = m >> 13, rem = m & 0x1fffu, h = s | ((uint32_t)E << 10) | hm;
    if (rem > 0x1000u || (rem == 0x1000u && (hm & 1u))) h++; /* a carry rounds up the exponent */
    return (uint16_t)h;
}

#endif
