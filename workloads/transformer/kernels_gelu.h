/* kernels_gelu.h — the tanh approximation of GELU, shared by the fast kernels (kernels.c)
 * and the scalar reference (kernels_ref.c), which differ only in the tanh they call.
 *
 * What it is for: one copy of the formula and of its derivative, so the two kernels the
 * tests compare cannot drift apart. What it is not for: anything exported (plugins call
 * mt_k_gelu_fwd/bwd) or the tanh itself.
 */
#ifndef MT_TRANSFORMER_KERNELS_GELU_H
#define MT_TRANSFORMER_KERNELS_GELU_H

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

/* The argument of tanh in GELU(x) = 0.5 x (1 + tanh(u)). */
static inline float gelu_tanh_arg(float x)
{
    return GELU_SCALE * (x + 0.044715f * x * x * x);
}

/* dGELU/dx at x, given th = tanh(gelu_tanh_arg(x)). */
static inline float gelu_grad(float x, float th)
{
    float sech2 = 1.0f - th * th;
    return 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
}

#endif
