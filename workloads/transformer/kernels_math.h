/* kernels_math.h — the inline exp of the fast kernels, shared by the files compiled with
 * the model kernels' flags (kernels.c, kvkernels.c).
 *
 * What it is for: one definition of fast_expf that the compiler can inline and vectorize
 * in every loop that calls it, so the KV-cache attention (kvkernels.c) computes exactly
 * what mt_k_attention_decode computes. Plugins use mt_k_expf (kernels.h) instead.
 * What it is not for: anything exported; the reference kernels use libm.
 */
#ifndef MT_TRANSFORMER_KERNELS_MATH_H
#define MT_TRANSFORMER_KERNELS_MATH_H

#include <math.h>

#pragma omp declare simd notinbranch
static inline float fast_expf(float x)
{
    /* exp(x) = 2^n * exp(r), r = x - n ln2 in [-ln2/2, ln2/2]; Cephes coefficients. */
    /* NaN (x != x) is computed as 0 and returned as itself: (int)NaN and its shift below
     * are undefined behaviour, and a model gone NaN must still be scored as NaN */
    float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : (x == x ? x : 0.0f));
    /* round to nearest by the 1.5 * 2^23 trick: floorf() would block vectorization */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        int i;
        float f;
    } s = {.i = ((int)n + 127) << 23};
    return x < -87.0f ? 0.0f : (x == x ? p * s.f : x);
}

#endif
