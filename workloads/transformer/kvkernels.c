/* kvkernels.c — the compiler-vectorized KV-cache attention loops, compiled with
 * kernels.c's flags.
 *
 * What it is for: the online softmax step of every format (fast_expf, as
 * mt_k_attention_decode), and the fp32 scores and weighted sum where AVX-512 is missing
 * (the loops of mt_k_attention_decode, fed block by block). What it is not for: the
 * packed formats (kvkernels_avx512.c, kvkernels_ref.c).
 */
#include "kernels_math.h"
#include "kvkernels.h"

void mt_kvk_scores_f32(float *att, const float *q, const float *K, size_t stride, size_t n,
                       size_t hs, float scale)
{
    size_t pf = mt_kvk_prefetch_ahead(stride * sizeof *K);
    for (size_t t = 0; t < n; t++) {
        const float *k = K + t * stride;
        float dot = 0.0f;
        if (pf && t + pf < n) mt_kvk_prefetch(k + pf * stride, hs * sizeof *k);
#pragma omp simd reduction(+ : dot)
        for (size_t i = 0; i < hs; i++)
            dot += q[i] * k[i];
        att[t] = dot * scale;
    }
}

void mt_kvk_online(float *s, size_t n, float *m, float *l, float *o, size_t hs)
{
    float mx = *m, sum = 0.0f;
    /* the maximum in vectors (exact in any order; a scalar chain of vmaxss cost more than
     * the exponentials) */
#pragma omp simd reduction(max : mx)
    for (size_t t = 0; t < n; t++)
        mx = s[t] > mx ? s[t] : mx;
    if (mx > *m) {
        float c = *m == -INFINITY ? 0.0f : fast_expf(*m - mx);
#pragma omp simd
        for (size_t i = 0; i < hs; i++)
            o[i] *= c;
        *l *= c;
        *m = mx;
    }
#pragma omp simd reduction(+ : sum)
    for (size_t t = 0; t < n; t++) {
        s[t] = s[t] == -INFINITY ? 0.0f : fast_expf(s[t] - mx);
        sum += s[t];
    }
    *l += sum;
}

void mt_kvk_accum_f32(float *o, const float *att, float inv, const float *V, size_t stride,
                      size_t n, size_t hs)
{
    size_t pf = mt_kvk_prefetch_ahead(stride * sizeof *V);
    for (size_t t = 0; t < n; t++) {
        const float *v = V + t * stride;
        float a = att[t] * inv;
        if (pf && t + pf < n) mt_kvk_prefetch(v + pf * stride, hs * sizeof *v);
#pragma omp simd
        for (size_t i = 0; i < hs; i++)
            o[i] += a * v[i];
    }
}
