/* qkernels_ref.c — scalar reference products on packed weights.
 *
 * What it is for: the definition every fast kernel is tested against: plain loops that
 * decode one code at a time through mt_qtensor_code. The fp32-activation reference sums
 * x_j * w_j in column order; the int8 reference forms each unit's exact integer dot and
 * combines units in order exactly as qkernels.h states, so the VNNI and oneDNN paths must
 * match it bit for bit. What it is not for: speed.
 */
#include <stddef.h>
#include <stdint.h>

#include "qinternal.h"

void mt_q_gemm_f32_ref(const struct mt_qtensor *w, const struct mt_qprep *p, float *y)
{
    enum mt_qscheme s = w->fmt.scheme;
    for (size_t i = 0; i < p->m; i++) {
        const float *x = p->x + i * p->k_pad;
        for (size_t r = 0; r < w->n; r++) {
            float acc = 0.0f;
            for (size_t j = 0; j < w->k; j++) {
                unsigned c = mt_qtensor_code(w, r, j);
                size_t u = j / w->unit_len, mi = mt_q_meta(w, r, u);
                float v;
                if (s == MT_QS_FP16)
                    v = mt_q_f16_to_f32((uint16_t)c);
                else if (s == MT_QS_BF16)
                    v = mt_q_bf16_to_f32((uint16_t)c);
                else if (mt_q_is_linear(s))
                    v = w->scale[mi] * (float)c + w->offset[mi];
                else if (s == MT_QS_KMEANS)
                    v = mt_q_lut(w, r, u)[c];
                else
                    v = w->scale[mi] * w->lut[c];
                acc += x[j] * v;
            }
            y[i * w->n + r] = acc;
        }
    }
}

void mt_q_gemm_i8_ref(const struct mt_qtensor *w, const struct mt_qprep *p, float *y)
{
    for (size_t i = 0; i < p->m; i++) {
        const int8_t *a = p->qa + i * p->k_pad;
        for (size_t r = 0; r < w->n; r++) {
            float acc = 0.0f;
            for (size_t u = 0; u < w->units_per_row; u++) {
                int32_t isum = 0;
                for (size_t j = u * w->unit_len; j < (u + 1) * w->unit_len; j++)
                    isum += (int32_t)mt_qtensor_code(w, r, j) * a[j];
                size_t mi = mt_q_meta(w, r, u);
                acc +=
                    w->scale[mi] * (float)isum + w->offset[mi] * (float)p->asum[i * p->units + u];
            }
            y[i * w->n + r] = p->sa[i] * acc;
        }
    }
}
