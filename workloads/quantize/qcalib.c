/* qcalib.c — GPTQ, imatrix, AWQ, SmoothQuant and HQQ packing of one matrix (see qcalib.h).
 *
 * What it is for: the calibrated rounding loops. What it is not for: the formats' fitting
 * and layout (qformat.c), the statistics and the factorization (calib.c).
 */
#include "qcalib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <memtrade/memcat.h>
#include <oneapi/dnnl/dnnl.h>

#include "qinternal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* GPTQ on one row's columns [b0, b1) of the block (rows are independent inside a block):
 * refits dynamic group scales at their first column, rounds, and feeds each column's
 * scaled error to the block's later columns; the errors go to e[b1 - b0]. */
static void gptq_row(struct mt_qtensor *qt, size_t r, float *wr, float *qr, const float *u,
                     const size_t *perm, int dynamic, size_t b0, size_t b1, float *e)
{
    size_t k = qt->k, g = qt->unit_len;
    for (size_t i = b0; i < b1; i++) {
        size_t col = perm ? perm[i] : i, unit = col / g;
        if (dynamic && col % g == 0)
            mt_q_fit_unit(qt, mt_q_meta(qt, r, unit), wr + i, NULL, 1, k - i < g ? k - i : g);
        float v = wr[i], q = mt_q_round(qt, r, unit, v);
        float d = (v - q) / u[i * k + i];
        qr[col] = q;
        e[i - b0] = d;
        for (size_t j = i + 1; j < b1; j++)
            wr[j] -= d * u[i * k + j];
    }
}

struct mt_qtensor *mt_qtensor_pack_gptq(const float *w, size_t n, size_t k,
                                        const struct mt_qformat *f, const float *u,
                                        const size_t *perm, const uint8_t *dead, double *update_s,
                                        char *err, size_t errlen)
{
    if (mt_q_is_half(f->scheme)) {
        snprintf(err, errlen, "GPTQ needs a low-bit scheme, not %s", mt_qscheme_name(f->scheme));
        return NULL;
    }
    /* the static fits (tensor, channel, kmeans, act-order groups) come from w itself */
    struct mt_qtensor *qt = mt_qtensor_pack(w, n, k, f, err, errlen);
    if (!qt) return NULL;
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    float *wp = malloc(n * k * sizeof *wp), *q = malloc(n * k * sizeof *q);
    float *e = malloc(n * MT_GPTQ_BLOCK * sizeof *e);
    mt_memcat_set(prev);
    if (!wp || !q || !e) {
        snprintf(err, errlen, "GPTQ: out of memory for %zu x %zu", n, k);
        goto fail;
    }
    double t0 = now_s();
    for (size_t r = 0; r < n; r++) /* the columns in processing order, dead ones zeroed */
        for (size_t i = 0; i < k; i++)
            wp[r * k + i] = dead && dead[i] ? 0.0f : w[r * k + (perm ? perm[i] : i)];
    int dynamic = f->gran == MT_QG_GROUP && !perm && f->scheme != MT_QS_KMEANS;
    for (size_t b0 = 0; b0 < k; b0 += MT_GPTQ_BLOCK) {
        size_t b1 = b0 + MT_GPTQ_BLOCK < k ? b0 + MT_GPTQ_BLOCK : k, bs = b1 - b0;
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < n; r++)
            gptq_row(qt, r, wp + r * k, q + r * k, u, perm, dynamic, b0, b1, e + r * bs);
        if (b1 < k && dnnl_sgemm('N', 'N', (dnnl_dim_t)n, (dnnl_dim_t)(k - b1), (dnnl_dim_t)bs,
                                 -1.0f, e, (dnnl_dim_t)bs, u + b0 * k + b1, (dnnl_dim_t)k, 1.0f,
                                 wp + b1, (dnnl_dim_t)k) != dnnl_success) {
            snprintf(err, errlen, "GPTQ: the block update GEMM failed");
            goto fail;
        }
    }
    if (mt_qtensor_encode(qt, q)) {
        snprintf(err, errlen, "GPTQ: out of memory encoding");
        goto fail;
    }
    if (update_s) *update_s = now_s() - t0;
    free(wp), free(q), free(e);
    return qt;
fail:
    free(wp), free(q), free(e);
    mt_qtensor_free(qt);
    return NULL;
}

struct mt_qtensor *mt_qtensor_pack_imatrix(const float *w, size_t n, size_t k,
                                           const struct mt_qformat *f, const float *imp, char *err,
                                           size_t errlen)
{
    if (mt_q_is_half(f->scheme) || f->scheme == MT_QS_KMEANS) {
        snprintf(err, errlen, "imatrix needs a linear, nf or log scheme, not %s",
                 mt_qscheme_name(f->scheme));
        return NULL;
    }
    struct mt_qtensor *qt = mt_qtensor_pack(w, n, k, f, err, errlen);
    if (!qt) return NULL;
    if (f->gran == MT_QG_TENSOR) {
        mt_q_fit_unit(qt, 0, w, imp, k, n * k);
    } else {
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < n; r++)
            for (size_t j0 = 0; j0 < k; j0 += qt->unit_len) {
                size_t cnt = k - j0 < qt->unit_len ? k - j0 : qt->unit_len;
                mt_q_fit_unit(qt, mt_q_meta(qt, r, j0 / qt->unit_len), w + r * k + j0, imp + j0,
                              cnt, cnt);
            }
    }
    if (mt_qtensor_encode(qt, w)) {
        snprintf(err, errlen, "imatrix: out of memory encoding");
        mt_qtensor_free(qt);
        return NULL;
    }
    return qt;
}

/* AWQ's scales for one alpha: rms(x)^alpha (duo: over wmean^(1 - alpha), AutoAWQ's duo
 * scaling; wmean NULL = plain), divided by sqrt(max * min) so they straddle 1. */
static void awq_scales(const float *act_sq, const float *wmean, size_t k, double alpha, float *s)
{
    double lo = INFINITY, hi = 0.0;
    for (size_t j = 0; j < k; j++) {
        double v = pow(fmax(act_sq[j], 1e-12), 0.5 * alpha);
        if (wmean) v /= pow(fmax(wmean[j], 1e-6), 1.0 - alpha);
        s[j] = (float)v;
        lo = fmin(lo, v), hi = fmax(hi, v);
    }
    for (size_t j = 0; j < k; j++)
        s[j] = (float)(s[j] / sqrt(lo * hi));
}

/* Duo scaling's weight statistic: per input column, the mean over rows of |w| relative to
 * the largest |w| of its row's unit (unit_len columns). */
static void awq_wmean(const float *w, size_t n, size_t k, size_t unit_len, float *wm)
{
    memset(wm, 0, k * sizeof *wm);
    for (size_t r = 0; r < n; r++)
        for (size_t j0 = 0; j0 < k; j0 += unit_len) {
            size_t j1 = j0 + unit_len < k ? j0 + unit_len : k;
            float mx = 0.0f;
            for (size_t j = j0; j < j1; j++)
                mx = fmaxf(mx, fabsf(w[r * k + j]));
            for (size_t j = j0; mx > 0.0f && j < j1; j++)
                wm[j] += fabsf(w[r * k + j]) / mx / (float)n;
        }
}

/* sum over rows of d G d^T for d = W - Q diag(1/s), q the unpacked Q (overwritten). */
static int awq_error(const float *w, size_t n, size_t k, const float *s, const float *gram,
                     float *q, float *e, double *out)
{
    for (size_t i = 0; i < n * k; i++)
        q[i] = w[i] - q[i] / s[i % k];
    if (dnnl_sgemm('N', 'N', (dnnl_dim_t)n, (dnnl_dim_t)k, (dnnl_dim_t)k, 1.0f, q, (dnnl_dim_t)k,
                   gram, (dnnl_dim_t)k, 0.0f, e, (dnnl_dim_t)k) != dnnl_success)
        return -1;
    double sum = 0.0;
    for (size_t i = 0; i < n * k; i++)
        sum += (double)e[i] * q[i];
    *out = sum;
    return 0;
}

/* AWQ's clipping search on unit u of row r (values v[cnt], columns j0..j0+cnt of the
 * scaled matrix): the range clamped to [-M f, M f] (M the unit's largest |v|; linear-asym
 * keeps its min-max fit inside that), f = 1 - i / MT_AWQ_CLIP_GRID for i up to half the
 * grid, keeping the fit of least output error d^T Gs d (d = v - q(v), gs the k x k Gram of
 * the scaled inputs x / s); f = 1 is the unclipped fit, so the error never rises. */
static void awq_clip_unit(struct mt_qtensor *qt, size_t r, size_t u, const float *v, size_t cnt,
                          const float *gs, size_t k, size_t j0, double *d)
{
    size_t idx = mt_q_meta(qt, r, u);
    float s0 = qt->scale[idx], o0 = qt->offset ? qt->offset[idx] : 0.0f;
    float best_s = s0, best_o = o0, lo = INFINITY, hi = -INFINITY, amax = 0.0f;
    for (size_t i = 0; i < cnt; i++)
        lo = fminf(lo, v[i]), hi = fmaxf(hi, v[i]), amax = fmaxf(amax, fabsf(v[i]));
    float levels = (float)((1u << qt->fmt.bits) - 1u);
    double best = INFINITY;
    for (int g = 0; g <= MT_AWQ_CLIP_GRID / 2 && s0 > 0.0f; g++) {
        float f = 1.0f - (float)g / MT_AWQ_CLIP_GRID, m = amax * f;
        if (qt->fmt.scheme == MT_QS_LINEAR_ASYM) {
            float l = fmaxf(lo, -m), h = fminf(hi, m);
            qt->scale[idx] = g ? (h - l) / levels : s0, qt->offset[idx] = g ? l : o0;
        } else {
            qt->scale[idx] = s0 * f;
            if (qt->offset) qt->offset[idx] = o0 * f;
        }
        for (size_t i = 0; i < cnt; i++)
            d[i] = (double)v[i] - mt_q_round(qt, r, u, v[i]);
        double e = 0.0;
        for (size_t i = 0; i < cnt; i++) {
            double row = 0.0;
            for (size_t j = 0; j < cnt; j++)
                row += (double)gs[(j0 + i) * k + j0 + j] * d[j];
            e += d[i] * row;
        }
        if (e < best) best = e, best_s = qt->scale[idx], best_o = qt->offset ? qt->offset[idx] : 0;
    }
    qt->scale[idx] = best_s;
    if (qt->offset) qt->offset[idx] = best_o;
}

/* The clipping search over every unit of qt (packed from ws = W diag s), then the codes
 * re-encoded. Not for tensor granularity or kmeans (no per-row range to clip). */
static int awq_clip(struct mt_qtensor *qt, const float *ws, size_t n, size_t k, const float *s,
                    const float *gram, float *gs)
{
    if (qt->fmt.gran == MT_QG_TENSOR || qt->fmt.scheme == MT_QS_KMEANS) return 0;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++)
            gs[i * k + j] = gram[i * k + j] / (s[i] * s[j]);
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        double *d = malloc(qt->unit_len * sizeof *d);
        failed = !d;
#pragma omp for schedule(static)
        for (size_t r = 0; r < n; r++)
            for (size_t j0 = 0; d && j0 < k; j0 += qt->unit_len)
                awq_clip_unit(qt, r, j0 / qt->unit_len, ws + r * k + j0,
                              k - j0 < qt->unit_len ? k - j0 : qt->unit_len, gs, k, j0, d);
        free(d);
    }
    return failed || mt_qtensor_encode(qt, ws) ? -1 : 0;
}

struct mt_qtensor *mt_qtensor_pack_awq(const float *w, size_t n, size_t k,
                                       const struct mt_qformat *f, const float *act_sq,
                                       const float *gram, float *s, double *alpha, char *err,
                                       size_t errlen)
{
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    float *ws = malloc(n * k * sizeof *ws), *q = malloc(n * k * sizeof *q);
    float *e = malloc((n > k ? n : k) * k * sizeof *e), *st = malloc(k * sizeof *st);
    float *wm = malloc(k * sizeof *wm);
    mt_memcat_set(prev);
    struct mt_qtensor *best = NULL;
    double best_err = INFINITY, best_alpha = 0.0;
    int ok = ws && q && e && st && wm;
    if (!ok) snprintf(err, errlen, "AWQ: out of memory for %zu x %zu", n, k);
    if (ok)
        awq_wmean(w, n, k, f->gran == MT_QG_GROUP ? f->group_size : k, wm);
    for (int g = 0; ok && g < 2 * MT_AWQ_GRID; g++) { /* plain, then duo scaling */
        double a = (double)(g % MT_AWQ_GRID) / MT_AWQ_GRID, er;
        awq_scales(act_sq, g < MT_AWQ_GRID ? NULL : wm, k, a, st);
        for (size_t i = 0; i < n * k; i++)
            ws[i] = w[i] * st[i % k];
        struct mt_qtensor *qt = mt_qtensor_pack(ws, n, k, f, err, errlen);
        if (!qt) {
            ok = 0;
            break;
        }
        mt_qtensor_unpack(qt, q);
        if (awq_error(w, n, k, st, gram, q, e, &er)) {
            snprintf(err, errlen, "AWQ: the error GEMM failed");
            mt_qtensor_free(qt);
            ok = 0;
            break;
        }
        if (er < best_err) {
            mt_qtensor_free(best);
            best = qt, best_err = er, best_alpha = g < MT_AWQ_GRID ? a : -a;
            memcpy(s, st, k * sizeof *s);
        } else {
            mt_qtensor_free(qt);
        }
    }
    if (ok) { /* the clipping search on the chosen scales */
        for (size_t i = 0; i < n * k; i++)
            ws[i] = w[i] * s[i % k];
        if (awq_clip(best, ws, n, k, s, gram, e)) {
            snprintf(err, errlen, "AWQ: out of memory in the clipping search");
            ok = 0;
        }
    }
    free(ws), free(q), free(e), free(st), free(wm);
    if (!ok) {
        mt_qtensor_free(best);
        return NULL;
    }
    if (alpha) *alpha = best_alpha;
    return best;
}

void mt_smoothquant_scales(const float *w, size_t n, size_t k, const float *act_max, double alpha,
                           float *s)
{
    for (size_t j = 0; j < k; j++) {
        double wm = 0.0;
        for (size_t r = 0; r < n; r++)
            wm = fmax(wm, fabs(w[r * k + j]));
        s[j] = act_max[j] > 0.0f && wm > 0.0
                   ? (float)(pow(act_max[j], alpha) / pow(wm, 1.0 - alpha))
                   : 1.0f;
    }
}

/* sum |v - round(v)|^p over one unit's values v[cnt] (unit idx of row r). */
static double unit_lp(const struct mt_qtensor *qt, size_t r, size_t u, const float *v, size_t cnt,
                      double p)
{
    double e = 0.0;
    for (size_t i = 0; i < cnt; i++)
        e += pow(fabs((double)v[i] - mt_q_round(qt, r, u, v[i])), p);
    return e;
}

/* HQQ on one unit: offsets from the shrunk error's closed form while the lp error falls. */
static void hqq_unit(struct mt_qtensor *qt, size_t r, size_t u, const float *v, size_t cnt)
{
    size_t idx = mt_q_meta(qt, r, u);
    float scale = qt->scale[idx], best = qt->offset[idx];
    double best_e = unit_lp(qt, r, u, v, cnt, MT_HQQ_P), beta = MT_HQQ_BETA;
    for (int it = 0; it < MT_HQQ_ITERS && scale > 0.0f; it++, beta *= MT_HQQ_KAPPA) {
        double sum = 0.0;
        for (size_t i = 0; i < cnt; i++) {
            float q = mt_q_round(qt, r, u, v[i]);
            double c = ((double)q - qt->offset[idx]) / scale, x = (double)v[i] - q, ax = fabs(x);
            double shrunk = ax > 0.0 ? fmax(ax - pow(ax, MT_HQQ_P - 1.0) / beta, 0.0) : 0.0;
            sum += (double)v[i] - copysign(shrunk, x) - scale * c; /* w - e - scale * code */
        }
        qt->offset[idx] = (float)(sum / (double)cnt);
        double e = unit_lp(qt, r, u, v, cnt, MT_HQQ_P);
        if (!(e < best_e)) break;
        best_e = e, best = qt->offset[idx];
    }
    qt->offset[idx] = best;
}

struct mt_qtensor *mt_qtensor_pack_hqq(const float *w, size_t n, size_t k,
                                       const struct mt_qformat *f, char *err, size_t errlen)
{
    if (f->scheme != MT_QS_LINEAR_ASYM) {
        snprintf(err, errlen, "HQQ needs scheme linear-asym, not %s", mt_qscheme_name(f->scheme));
        return NULL;
    }
    struct mt_qtensor *qt = mt_qtensor_pack(w, n, k, f, err, errlen);
    if (!qt) return NULL;
    if (f->gran == MT_QG_TENSOR) {
        hqq_unit(qt, 0, 0, w, n * k);
    } else {
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < n; r++)
            for (size_t j0 = 0; j0 < k; j0 += qt->unit_len)
                hqq_unit(qt, r, j0 / qt->unit_len, w + r * k + j0,
                         k - j0 < qt->unit_len ? k - j0 : qt->unit_len);
    }
    if (mt_qtensor_encode(qt, w)) {
        snprintf(err, errlen, "HQQ: out of memory encoding");
        mt_qtensor_free(qt);
        return NULL;
    }
    return qt;
}

double mt_qtensor_lp_error(const struct mt_qtensor *q, const float *w, double p)
{
    float *d = malloc(q->n * q->k * sizeof *d);
    if (!d) return NAN;
    mt_qtensor_unpack(q, d);
    double e = 0.0;
    for (size_t i = 0; i < q->n * q->k; i++)
        e += pow(fabs((double)w[i] - d[i]), p);
    free(d);
    return e;
}
