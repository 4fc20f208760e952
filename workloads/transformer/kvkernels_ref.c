/* kvkernels_ref.c — scalar reference of the KV-cache attention kernels (kvkernels.h).
 *
 * What it is for: the definition the fast kernels are tested against: every element is
 * decoded on its own (x = scale * code + min, or the 16-bit value) and used in the plain
 * loop of mt_k_attention_decode_ref; per-channel (KIVI) keys instead against the query
 * folded with the group's scales and rounded to 16-bit integers (mt_kvk_query16), an
 * integer dot product per token. Also the kernels of a CPU without AVX-512.
 * What it is not for: speed.
 */
#include "kvkernels.h"

#include <math.h>

unsigned mt_kvk_bits(enum mt_kvk_kind kind)
{
    static const unsigned bits[MT_KVK_KIND_COUNT] = {32, 16, 16, 8, 4, 3, 2, 4, 3, 2};
    return bits[kind];
}

/* Element i of token t of a view (t counts from the view's first token). */
static float elem(enum mt_kvk_kind kind, const struct mt_kvk_view *w, size_t t, size_t i, size_t G)
{
    const uint8_t *row = w->codes + t * w->stride;
    switch (kind) {
    case MT_KVK_F32:
        return ((const float *)(const void *)row)[i];
    case MT_KVK_BF16:
        return mt_kvk_bf2f(((const uint16_t *)(const void *)row)[i]);
    case MT_KVK_F16:
        return mt_kvk_h2f(((const uint16_t *)(const void *)row)[i]);
    case MT_KVK_CHAN4:
    case MT_KVK_CHAN3:
    case MT_KVK_CHAN2: {
        size_t p = (t / G) * w->par_stride + i;
        return mt_kvk_h2f(w->scl[p]) * (float)mt_kvk_code(row, i, mt_kvk_bits(kind)) +
               mt_kvk_h2f(w->mn[p]);
    }
    default: {
        size_t p = t * w->par_stride + i / G;
        return mt_kvk_h2f(w->scl[p]) * (float)mt_kvk_code(row, i, mt_kvk_bits(kind)) +
               mt_kvk_h2f(w->mn[p]);
    }
    }
}

float mt_kvk_query16(const float *q, const uint16_t *scl, size_t hs, int32_t *q16)
{
    float mx = 0.0f;
    for (size_t i = 0; i < hs; i++) {
        float x = fabsf(q[i] * mt_kvk_h2f(scl[i]));
        mx = x > mx ? x : mx;
    }
    if (!(mx >= MT_KVK_Q16_MIN)) { /* a (near) zero query: nothing to weigh the codes by */
        for (size_t i = 0; i < hs; i++)
            q16[i] = 0;
        return 0.0f;
    }
    float inv = 32767.0f / mx;
    for (size_t i = 0; i < hs; i++)
        q16[i] = (int32_t)nearbyintf(q[i] * mt_kvk_h2f(scl[i]) * inv);
    return mx / 32767.0f;
}

/* Per-channel keys (KIVI): per token group, sigma * (sum_c q16_c code_c, in integers) +
 * sum_c q_c m_c (mt_kvk_query16). The view starts at a group's first token. */
static void scores_chan_ref(enum mt_kvk_kind kind, float *att, const float *q,
                            const struct mt_kvk_view *k, size_t n, size_t hs, size_t G, float scale)
{
    int32_t q16[256];
    float sigma = 0.0f, bias = 0.0f;
    unsigned bits = mt_kvk_bits(kind);
    for (size_t t = 0; t < n; t++) {
        if (t % G == 0) {
            const uint16_t *mn = k->mn + t / G * k->par_stride;
            sigma = mt_kvk_query16(q, k->scl + t / G * k->par_stride, hs, q16);
            bias = 0.0f;
            for (size_t i = 0; i < hs; i++)
                bias += q[i] * mt_kvk_h2f(mn[i]);
        }
        const uint8_t *row = k->codes + t * k->stride;
        int32_t dot = 0;
        for (size_t i = 0; i < hs; i++)
            dot += q16[i] * (int32_t)mt_kvk_code(row, i, bits);
        att[t] = (sigma * (float)dot + bias) * scale;
    }
}

void mt_kvk_scores_ref(enum mt_kvk_kind kind, float *att, const float *q,
                       const struct mt_kvk_view *k, size_t n, size_t hs, size_t G, float scale)
{
    if (kind >= MT_KVK_CHAN4) {
        scores_chan_ref(kind, att, q, k, n, hs, G, scale);
        return;
    }
    for (size_t t = 0; t < n; t++) {
        float dot = 0.0f;
        for (size_t i = 0; i < hs; i++)
            dot += q[i] * elem(kind, k, t, i, G);
        att[t] = dot * scale;
    }
}

void mt_kvk_accum_ref(enum mt_kvk_kind kind, float *o, const float *att, float inv,
                      const struct mt_kvk_view *v, size_t n, size_t hs, size_t G)
{
    for (size_t t = 0; t < n; t++) {
        float a = att[t] * inv;
        for (size_t i = 0; i < hs; i++)
            o[i] += a * elem(kind, v, t, i, G);
    }
}

void mt_kvk_online_ref(float *s, size_t n, float *m, float *l, float *o, size_t hs)
{
    float mx = *m, sum = 0.0f;
    for (size_t t = 0; t < n; t++)
        if (s[t] > mx) mx = s[t];
    if (mx > *m) {
        float c = *m == -INFINITY ? 0.0f : expf(*m - mx);
        for (size_t i = 0; i < hs; i++)
            o[i] *= c;
        *l *= c;
        *m = mx;
    }
    for (size_t t = 0; t < n; t++) {
        s[t] = s[t] == -INFINITY ? 0.0f : expf(s[t] - mx);
        sum += s[t];
    }
    *l += sum;
}
