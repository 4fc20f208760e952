/* kernels_ref.c — scalar reference versions of the layer kernels (see kernels.h).
 *
 * What it is for: the plain, obviously-correct definition of every layer, written as the
 * textbook loop nest, single-threaded, no tricks. Tests compare the fast kernels against
 * these. What it is not for: speed; the model never calls these on its hot path.
 */
#include "kernels.h"
#include "kernels_gelu.h"

#include <math.h>
#include <string.h>

void mt_k_matmul_fwd_ref(float *out, const float *inp, const float *w, const float *bias, size_t N,
                         size_t C, size_t OC)
{
    for (size_t i = 0; i < N; i++)
        for (size_t o = 0; o < OC; o++) {
            float acc = bias ? bias[o] : 0.0f;
            for (size_t c = 0; c < C; c++)
                acc += inp[i * C + c] * w[o * C + c];
            out[i * OC + o] = acc;
        }
}

void mt_k_matmul_bwd_ref(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                         const float *w, size_t N, size_t C, size_t OC)
{
    if (dinp)
        for (size_t i = 0; i < N; i++)
            for (size_t c = 0; c < C; c++) {
                float acc = 0.0f;
                for (size_t o = 0; o < OC; o++)
                    acc += dout[i * OC + o] * w[o * C + c];
                dinp[i * C + c] = acc;
            }
    for (size_t o = 0; o < OC; o++) {
        for (size_t c = 0; dw && c < C; c++) {
            float acc = 0.0f;
            for (size_t i = 0; i < N; i++)
                acc += dout[i * OC + o] * inp[i * C + c];
            dw[o * C + c] += acc;
        }
        if (dbias) {
            float acc = 0.0f;
            for (size_t i = 0; i < N; i++)
                acc += dout[i * OC + o];
            dbias[o] += acc;
        }
    }
}

void mt_k_encoder_fwd_ref(float *out, const int *inp, const float *wte, const float *wpe, size_t B,
                          size_t T, size_t C)
{
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            const float *e = wte + (size_t)inp[b * T + t] * C;
            for (size_t c = 0; c < C; c++)
                out[(b * T + t) * C + c] = wpe ? e[c] + wpe[t * C + c] : e[c];
        }
}

void mt_k_colsum_add_ref(float *dst, const float *src, size_t nrow, size_t ncol, size_t ld)
{
    for (size_t j = 0; j < ncol; j++) {
        float acc = 0.0f;
        for (size_t i = 0; i < nrow; i++)
            acc += src[i * ld + j];
        dst[j] += acc;
    }
}

void mt_k_add_positions_ref(float *x, const float *wpe, size_t B, size_t T, size_t C)
{
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++)
            for (size_t c = 0; c < C; c++)
                x[(b * T + t) * C + c] += wpe[t * C + c];
}

void mt_k_encoder_bwd_ref(float *dwte, float *dwpe, const float *dout, const int *inp, size_t B,
                          size_t T, size_t C)
{
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            const float *d = dout + (b * T + t) * C;
            float *e = dwte + (size_t)inp[b * T + t] * C;
            for (size_t c = 0; c < C; c++) {
                e[c] += d[c];
                if (dwpe) dwpe[t * C + c] += d[c];
            }
        }
}

void mt_k_layernorm_fwd_ref(float *out, float *mean, float *rstd, const float *inp, const float *w,
                            const float *b, size_t N, size_t C)
{
    for (size_t i = 0; i < N; i++) {
        const float *x = inp + i * C;
        float m = 0.0f, v = 0.0f;
        for (size_t c = 0; c < C; c++)
            m += x[c];
        m /= (float)C;
        for (size_t c = 0; c < C; c++)
            v += (x[c] - m) * (x[c] - m);
        v /= (float)C;
        float s = 1.0f / sqrtf(v + 1e-5f);
        for (size_t c = 0; c < C; c++)
            out[i * C + c] = (x[c] - m) * s * w[c] + b[c];
        if (mean) mean[i] = m;
        if (rstd) rstd[i] = s;
    }
}

void mt_k_layernorm_bwd_ref(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, size_t N,
                            size_t C)
{
    for (size_t i = 0; i < N; i++) {
        const float *d = dout + i * C, *x = inp + i * C;
        float m = mean[i], s = rstd[i], dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        for (size_t c = 0; c < C; c++) {
            float norm = (x[c] - m) * s, dnorm = w[c] * d[c];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= (float)C;
        dnorm_norm_mean /= (float)C;
        for (size_t c = 0; c < C; c++) {
            float norm = (x[c] - m) * s, dnorm = w[c] * d[c];
            if (dw) { /* frozen parameters: no gradients */
                db[c] += d[c];
                dw[c] += norm * d[c];
            }
            dinp[i * C + c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
}

void mt_k_rmsnorm_fwd_ref(float *out, float *rstd, const float *inp, const float *w, size_t N,
                          size_t C)
{
    for (size_t i = 0; i < N; i++) {
        const float *x = inp + i * C;
        float ms = 0.0f;
        for (size_t c = 0; c < C; c++)
            ms += x[c] * x[c];
        float s = 1.0f / sqrtf(ms / (float)C + 1e-5f);
        for (size_t c = 0; c < C; c++)
            out[i * C + c] = x[c] * s * w[c];
        if (rstd) rstd[i] = s;
    }
}

void mt_k_rmsnorm_bwd_ref(float *dinp, float *dw, const float *dout, const float *inp,
                          const float *w, const float *rstd, size_t N, size_t C)
{
    for (size_t i = 0; i < N; i++) {
        const float *d = dout + i * C, *x = inp + i * C;
        float s = rstd[i], dnorm_norm_mean = 0.0f;
        for (size_t c = 0; c < C; c++)
            dnorm_norm_mean += w[c] * d[c] * x[c] * s;
        dnorm_norm_mean /= (float)C;
        for (size_t c = 0; c < C; c++) {
            float norm = x[c] * s;
            dw[c] += norm * d[c];
            dinp[i * C + c] += (w[c] * d[c] - norm * dnorm_norm_mean) * s;
        }
    }
}

/* Rotates every pair (i, i + hs/2) of the q and k heads by sign * the position's angle. */
static void rope_ref(float *qkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv, size_t hs,
                     double theta, double sign)
{
    size_t ld = Ca + 2 * Ckv, half = hs / 2;
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++)
            for (size_t h = 0; h < (Ca + Ckv) / hs; h++) {
                float *x = qkv + (b * T + t) * ld + h * hs;
                for (size_t i = 0; i < half; i++) {
                    double a = (double)(pos0 + t) * pow(theta, -2.0 * (double)i / (double)hs);
                    float c = (float)cos(a), s = (float)(sign * sin(a));
                    float x0 = x[i], x1 = x[i + half];
                    x[i] = x0 * c - x1 * s;
                    x[i + half] = x0 * s + x1 * c;
                }
            }
}

void mt_k_rope_fwd_ref(float *qkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv,
                       size_t hs, double theta)
{
    rope_ref(qkv, B, T, pos0, Ca, Ckv, hs, theta, 1.0);
}

void mt_k_rope_bwd_ref(float *dqkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv,
                       size_t hs, double theta)
{
    rope_ref(dqkv, B, T, pos0, Ca, Ckv, hs, theta, -1.0);
}

void mt_k_swiglu_fwd_ref(float *out, const float *inp, size_t N, size_t F)
{
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < F; j++) {
            float g = inp[i * 2 * F + j], u = inp[i * 2 * F + F + j];
            out[i * F + j] = g / (1.0f + expf(-g)) * u;
        }
}

void mt_k_swiglu_bwd_ref(float *dinp, const float *inp, const float *dout, size_t N, size_t F)
{
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < F; j++) {
            float g = inp[i * 2 * F + j], u = inp[i * 2 * F + F + j], d = dout[i * F + j];
            float sig = 1.0f / (1.0f + expf(-g));
            dinp[i * 2 * F + j] = d * u * sig * (1.0f + g * (1.0f - sig));
            dinp[i * 2 * F + F + j] = d * g * sig;
        }
}

/* Query head h of batch b at position t: its q row, and the k/v rows of position t2 for
 * its key/value head (qkv rows are C + 2 Ckv wide). */
struct heads {
    size_t T, C, hs, ld, grp;
    float scale;
};

static struct heads heads_of(size_t T, size_t C, size_t Ckv, size_t NH)
{
    struct mt_k_attn_geom g = mt_k_attn_geom(C, Ckv, NH);
    return (struct heads){T, C, g.hs, g.ld, g.grp, g.scale};
}

static size_t q_at(const struct heads *g, size_t b, size_t h, size_t t)
{
    return (b * g->T + t) * g->ld + h * g->hs;
}

static size_t k_at(const struct heads *g, size_t b, size_t h, size_t t2)
{
    return (b * g->T + t2) * g->ld + g->C + (h / g->grp) * g->hs;
}

void mt_k_attention_fwd_ref(float *out, float *att, const float *qkv, size_t B, size_t T, size_t C,
                            size_t Ckv, size_t NH, size_t window)
{
    struct heads g = heads_of(T, C, Ckv, NH);
    size_t hs = g.hs;
    float scale = g.scale;
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++)
            for (size_t t = 0; t < T; t++) {
                size_t lo = mt_k_window_start(t, window);
                const float *q = qkv + q_at(&g, b, h, t);
                float *a = att + ((b * NH + h) * T + t) * T, maxv = -INFINITY, sum = 0.0f;
                for (size_t t2 = 0; t2 < T; t2++)
                    a[t2] = 0.0f;
                for (size_t t2 = lo; t2 <= t; t2++) {
                    const float *k = qkv + k_at(&g, b, h, t2);
                    float dot = 0.0f;
                    for (size_t i = 0; i < hs; i++)
                        dot += q[i] * k[i];
                    a[t2] = dot * scale;
                    if (a[t2] > maxv) maxv = a[t2];
                }
                for (size_t t2 = lo; t2 <= t; t2++) {
                    a[t2] = expf(a[t2] - maxv);
                    sum += a[t2];
                }
                for (size_t t2 = lo; t2 <= t; t2++)
                    a[t2] /= sum;
                float *o = out + (b * T + t) * C + h * hs;
                for (size_t i = 0; i < hs; i++) {
                    float acc = 0.0f;
                    for (size_t t2 = lo; t2 <= t; t2++)
                        acc += a[t2] * qkv[k_at(&g, b, h, t2) + Ckv + i];
                    o[i] = acc;
                }
            }
}

void mt_k_attention_bwd_ref(float *dqkv, float *datt, const float *dout, const float *qkv,
                            const float *att, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                            size_t window)
{
    struct heads g = heads_of(T, C, Ckv, NH);
    size_t hs = g.hs;
    float scale = g.scale;
    memset(dqkv, 0, B * T * g.ld * sizeof *dqkv);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++)
            for (size_t t = 0; t < T; t++) {
                size_t lo = mt_k_window_start(t, window);
                const float *a = att + ((b * NH + h) * T + t) * T;
                float *da = datt + ((b * NH + h) * T + t) * T;
                const float *d = dout + (b * T + t) * C + h * hs;
                for (size_t t2 = 0; t2 < T; t2++)
                    da[t2] = 0.0f;
                /* out = att @ v */
                for (size_t t2 = lo; t2 <= t; t2++) {
                    const float *v = qkv + k_at(&g, b, h, t2) + Ckv;
                    float *dv = dqkv + k_at(&g, b, h, t2) + Ckv;
                    float acc = 0.0f;
                    for (size_t i = 0; i < hs; i++) {
                        acc += v[i] * d[i];
                        dv[i] += a[t2] * d[i];
                    }
                    da[t2] = acc;
                }
                /* softmax: dpre = a * (da - sum(a * da)) */
                float dot = 0.0f;
                for (size_t t2 = lo; t2 <= t; t2++)
                    dot += a[t2] * da[t2];
                for (size_t t2 = lo; t2 <= t; t2++)
                    da[t2] = a[t2] * (da[t2] - dot) * scale;
                /* pre = q . k */
                const float *q = qkv + q_at(&g, b, h, t);
                float *dq = dqkv + q_at(&g, b, h, t);
                for (size_t t2 = lo; t2 <= t; t2++) {
                    const float *k = qkv + k_at(&g, b, h, t2);
                    float *dk = dqkv + k_at(&g, b, h, t2);
                    for (size_t i = 0; i < hs; i++) {
                        dq[i] += k[i] * da[t2];
                        dk[i] += q[i] * da[t2];
                    }
                }
            }
}

/* Scaled score q_t . k_t2 / sqrt(hs) of query head h. */
static float score(const struct heads *g, const float *qkv, size_t b, size_t h, size_t t, size_t t2)
{
    const float *q = qkv + q_at(g, b, h, t), *k = qkv + k_at(g, b, h, t2);
    float dot = 0.0f;
    for (size_t i = 0; i < g->hs; i++)
        dot += q[i] * k[i];
    return dot * g->scale;
}

void mt_k_flash_attention_fwd_ref(float *out, float *lse, const float *qkv, size_t B, size_t T,
                                  size_t C, size_t Ckv, size_t NH, size_t window)
{
    struct heads g = heads_of(T, C, Ckv, NH);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++)
            for (size_t t = 0; t < T; t++) {
                size_t lo = mt_k_window_start(t, window);
                float maxv = -INFINITY, sum = 0.0f, *o = out + (b * T + t) * C + h * g.hs;
                for (size_t t2 = lo; t2 <= t; t2++) {
                    float sc = score(&g, qkv, b, h, t, t2);
                    if (sc > maxv) maxv = sc;
                }
                for (size_t i = 0; i < g.hs; i++)
                    o[i] = 0.0f;
                for (size_t t2 = lo; t2 <= t; t2++) {
                    float p = expf(score(&g, qkv, b, h, t, t2) - maxv);
                    const float *v = qkv + k_at(&g, b, h, t2) + Ckv;
                    sum += p;
                    for (size_t i = 0; i < g.hs; i++)
                        o[i] += p * v[i];
                }
                for (size_t i = 0; i < g.hs; i++)
                    o[i] /= sum;
                lse[(b * NH + h) * T + t] = maxv + logf(sum);
            }
}

void mt_k_flash_attention_bwd_ref(float *dqkv, const float *dout, const float *qkv,
                                  const float *out, const float *lse, size_t B, size_t T, size_t C,
                                  size_t Ckv, size_t NH, size_t window)
{
    struct heads g = heads_of(T, C, Ckv, NH);
    memset(dqkv, 0, B * T * g.ld * sizeof *dqkv);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++)
            for (size_t t = 0; t < T; t++) {
                size_t hs = g.hs;
                const float *d = dout + (b * T + t) * C + h * hs;
                const float *o = out + (b * T + t) * C + h * hs, *q = qkv + q_at(&g, b, h, t);
                float *dq = dqkv + q_at(&g, b, h, t), D = 0.0f;
                for (size_t i = 0; i < hs; i++)
                    D += d[i] * o[i];
                for (size_t t2 = mt_k_window_start(t, window); t2 <= t; t2++) {
                    float p = expf(score(&g, qkv, b, h, t, t2) - lse[(b * NH + h) * T + t]);
                    const float *k = qkv + k_at(&g, b, h, t2), *v = k + Ckv;
                    float *dk = dqkv + k_at(&g, b, h, t2), *dv = dk + Ckv, dp = 0.0f;
                    for (size_t i = 0; i < hs; i++) {
                        dv[i] += p * d[i];
                        dp += d[i] * v[i];
                    }
                    float ds = p * (dp - D) * g.scale;
                    for (size_t i = 0; i < hs; i++) {
                        dq[i] += ds * k[i];
                        dk[i] += ds * q[i];
                    }
                }
            }
}

void mt_k_attention_decode_ref(float *out, float *att, const float *q, const float *K,
                               const float *V, size_t n, size_t C, size_t Ckv, size_t NH)
{
    struct mt_k_attn_geom ge = mt_k_attn_geom(C, Ckv, NH);
    size_t hs = ge.hs;
    float scale = ge.scale;
    for (size_t h = 0; h < NH; h++) {
        size_t kh = (h / ge.grp) * hs;
        float maxv = -INFINITY, sum = 0.0f;
        for (size_t t = 0; t < n; t++) {
            float dot = 0.0f;
            for (size_t i = 0; i < hs; i++)
                dot += q[h * hs + i] * K[t * Ckv + kh + i];
            att[t] = dot * scale;
            if (att[t] > maxv) maxv = att[t];
        }
        for (size_t t = 0; t < n; t++) {
            att[t] = expf(att[t] - maxv);
            sum += att[t];
        }
        for (size_t i = 0; i < hs; i++) {
            float acc = 0.0f;
            for (size_t t = 0; t < n; t++)
                acc += att[t] / sum * V[t * Ckv + kh + i];
            out[h * hs + i] = acc;
        }
    }
}

void mt_k_gelu_fwd_ref(float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(gelu_tanh_arg(x)));
    }
}

void mt_k_gelu_bwd_ref(float *dinp, const float *inp, const float *dout, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        dinp[i] = gelu_grad(x, tanhf(gelu_tanh_arg(x))) * dout[i];
    }
}

void mt_k_softmax_fwd_ref(float *probs, const float *logits, size_t N, size_t V)
{
    for (size_t i = 0; i < N; i++) {
        const float *l = logits + i * V;
        float *p = probs + i * V, maxv = -INFINITY, sum = 0.0f;
        for (size_t j = 0; j < V; j++)
            if (l[j] > maxv) maxv = l[j];
        for (size_t j = 0; j < V; j++) {
            p[j] = expf(l[j] - maxv);
            sum += p[j];
        }
        for (size_t j = 0; j < V; j++)
            p[j] /= sum;
    }
}

double mt_k_crossentropy_fwd_ref(float *logits, float *losses, const int *targets, size_t N,
                                 size_t V)
{
    double total = 0.0;
    mt_k_softmax_fwd_ref(logits, logits, N, V);
    for (size_t i = 0; i < N; i++) {
        losses[i] = targets[i] < 0 ? 0.0f : -logf(logits[i * V + (size_t)targets[i]]);
        total += losses[i];
    }
    return total;
}

void mt_k_crossentropy_bwd_ref(float *probs, const int *targets, float dloss, size_t N, size_t V)
{
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < V; j++) {
            float *p = probs + i * V + j;
            if (targets[i] < 0)
                *p = 0.0f;
            else
                *p = (*p - ((size_t)targets[i] == j ? 1.0f : 0.0f)) * dloss;
        }
}

void mt_k_adamw_ref(float *p, float *g, float *m, float *v, size_t n, const struct mt_adamw_args *a)
{
    float c1 = 1.0f - powf(a->beta1, (float)a->step);
    float c2 = 1.0f - powf(a->beta2, (float)a->step);
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * a->grad_scale;
        m[i] = a->beta1 * m[i] + (1.0f - a->beta1) * gi;
        v[i] = a->beta2 * v[i] + (1.0f - a->beta2) * gi * gi;
        float mh = m[i] / c1, vh = v[i] / c2;
        p[i] -= a->lr * (mh / (sqrtf(vh) + a->eps) + a->weight_decay * p[i]);
        if (a->zero_grad) g[i] = 0.0f;
    }
}

double mt_k_sumsq_ref(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}
