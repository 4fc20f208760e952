/* kvkernels_ref.c — scalar reference of the KV-cache attention kernels (kvkernels.h).
 *
 * What it is for: the definition the fast kernels are tested against: every element is
 * decoded on its own (x = scale * code + min, or the 16-bit value) and used in the plain
 * loop of mt_k_attention_decode_ref. Also the kernels of a CPU without AVX-512.
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

void mt_kvk_scores_ref(enum mt_kvk_kind kind, float *att, const float *q,
                       const struct mt_kvk_view *k, size_t n, size_t hs, size_t G, float scale)
{
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
