/* qkernels.c — mt_qgemm: activation preparation, implementation choice, oneDNN int8.
 *
 * What it is for: the public entry of qkernels.h. It pads activations to k_pad, forms
 * unit sums, quantizes activations per token for the int8 paths (one shared routine, so
 * every implementation sees the same int8 input), probes the CPU, picks an
 * implementation, and runs oneDNN's u8s8s32 GEMM for 8-bit tensor/channel weights.
 * What it is not for: the kernels themselves (qkernels_ref.c, qkernels_avx512.c).
 */
#include "qkernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/memcat.h>
#include <oneapi/dnnl/dnnl.h>

#include "qinternal.h"

/* From this many token rows on, oneDNN's u8s8s32 GEMM beat the VNNI kernel for 8-bit
 * per-channel weights on the development machine (mt-bench-quant's crossover table,
 * 768->3072, 2 threads, quietest run: M=128 VNNI 2116 us against 2496 us; M=256 oneDNN
 * 7416 us against 7990 us). Both give the same bits, so this is only about speed. */
#define DNNL_MIN_M 256

struct mt_qws {
    void *buf;
    size_t cap;
};

int mt_q_cpu_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

int mt_q_cpu_vnni(void)
{
    return mt_q_cpu_avx512() && __builtin_cpu_supports("avx512vnni");
}

/* oneDNN's u8s8 int8 GEMM is exact only with a VNNI dot product (AVX-512 VNNI or AVX-VNNI):
 * without one it multiplies with vpmaddubsw, whose int16 pair sums saturate (255 x 127 x 2
 * > 32767), so on a plain AVX2 CPU it returns wrong outputs for full-range int8 operands. */
static int cpu_dnnl_int8_exact(void)
{
    return __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni");
}

int mt_q_cpu_bf16(void)
{
    return mt_q_cpu_avx512() && __builtin_cpu_supports("avx512bf16");
}

struct mt_qws *mt_qws_create(void)
{
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    struct mt_qws *ws = calloc(1, sizeof *ws);
    mt_memcat_set(prev);
    return ws;
}

void mt_qws_destroy(struct mt_qws *ws)
{
    if (!ws) return;
    free(ws->buf);
    free(ws);
}

size_t mt_qws_bytes(const struct mt_qws *ws)
{
    return ws->cap;
}

static void *ws_reserve(struct mt_qws *ws, size_t bytes)
{
    if (bytes <= ws->cap) return ws->buf;
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    void *p = realloc(ws->buf, bytes);
    mt_memcat_set(prev);
    if (!p) return NULL;
    ws->buf = p;
    ws->cap = bytes;
    return p;
}

const char *mt_qimpl_name(enum mt_qimpl impl)
{
    switch (impl) {
    case MT_QIMPL_AUTO:
        return "auto";
    case MT_QIMPL_SCALAR:
        return "scalar";
    case MT_QIMPL_AVX512:
        return "avx512";
    case MT_QIMPL_DNNL:
        return "onednn";
    }
    return "?";
}

static int dnnl_eligible(const struct mt_qtensor *w, enum mt_qact act)
{
    return act == MT_QACT_INT8 && w->fmt.bits == 8 && mt_q_is_linear(w->fmt.scheme) &&
           w->fmt.gran != MT_QG_GROUP;
}

int mt_qimpl_available(enum mt_qimpl impl, const struct mt_qtensor *w, enum mt_qact act, char *err,
                       size_t errlen)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (act == MT_QACT_INT8 && !mt_q_is_linear(w->fmt.scheme)) {
        snprintf(err, errlen, "int8 activations need a linear scheme, not %s",
                 mt_qscheme_name(w->fmt.scheme));
        return 0;
    }
    switch (impl) {
    case MT_QIMPL_AUTO:
    case MT_QIMPL_SCALAR:
        return 1;
    case MT_QIMPL_AVX512:
        if (act == MT_QACT_INT8 ? !mt_q_cpu_vnni() : !mt_q_cpu_avx512()) {
            snprintf(err, errlen, "this CPU lacks AVX-512%s",
                     act == MT_QACT_INT8 ? " VNNI" : " F/BW/VL/DQ");
            return 0;
        }
        return 1;
    case MT_QIMPL_DNNL:
        if (!dnnl_eligible(w, act)) {
            snprintf(err, errlen,
                     "oneDNN u8s8s32 runs only 8-bit linear tensor/channel "
                     "weights with int8 activations");
            return 0;
        }
        if (!cpu_dnnl_int8_exact()) {
            snprintf(err, errlen,
                     "this CPU lacks VNNI: oneDNN's int8 GEMM would saturate int16 sums");
            return 0;
        }
        return 1;
    }
    snprintf(err, errlen, "unknown implementation %d", (int)impl);
    return 0;
}

enum mt_qimpl mt_qgemm_pick(const struct mt_qtensor *w, size_t m, enum mt_qact act)
{
    if (act == MT_QACT_INT8) {
        if (dnnl_eligible(w, act) && cpu_dnnl_int8_exact() && (m >= DNNL_MIN_M || !mt_q_cpu_vnni()))
            return MT_QIMPL_DNNL;
        return mt_q_cpu_vnni() ? MT_QIMPL_AVX512 : MT_QIMPL_SCALAR;
    }
    return mt_q_cpu_avx512() ? MT_QIMPL_AVX512 : MT_QIMPL_SCALAR;
}

/* Per-token dynamic quantization: s = max|x| / 127, a = round-half-even(x * 127/max|x|),
 * all-zero rows give s = 0 and a = 0. Padding columns stay 0. Then each unit's sum of a. */
void mt_q_quantize_rows(const float *x, size_t m, size_t k, size_t k_pad, size_t unit_len,
                        int8_t *qa, float *sa, int32_t *asum)
{
    for (size_t i = 0; i < m; i++) {
        const float *xi = x + i * k;
        float amax = 0.0f;
        for (size_t j = 0; j < k; j++)
            amax = fmaxf(amax, fabsf(xi[j]));
        float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        sa[i] = amax / 127.0f;
        int8_t *a = qa + i * k_pad;
        for (size_t j = 0; j < k; j++) {
            float q = nearbyintf(xi[j] * inv);
            a[j] = (int8_t)(q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q);
        }
        memset(a + k, 0, k_pad - k);
        for (size_t u = 0; u < k_pad / unit_len; u++) {
            int32_t s = 0;
            for (size_t j = u * unit_len; j < (u + 1) * unit_len; j++)
                s += a[j];
            asum[i * (k_pad / unit_len) + u] = s;
        }
    }
}

static int run_dnnl(const struct mt_qtensor *w, const struct mt_qprep *p, int32_t *c, float *y,
                    char *err, size_t errlen)
{
    const int32_t co = 0;
    dnnl_status_t st =
        dnnl_gemm_u8s8s32('N', 'T', 'F', (dnnl_dim_t)w->n, (dnnl_dim_t)p->m, (dnnl_dim_t)w->k_pad,
                          1.0f, w->codes, (dnnl_dim_t)w->row_bytes, 0, p->qa, (dnnl_dim_t)p->k_pad,
                          0, 0.0f, c, (dnnl_dim_t)p->m, &co);
    if (st != dnnl_success) {
        snprintf(err, errlen, "dnnl_gemm_u8s8s32 failed with status %d", (int)st);
        return -1;
    }
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < w->n; r++) {
        size_t mi = mt_q_meta(w, r, 0);
        for (size_t i = 0; i < p->m; i++) {
            float acc = 0.0f; /* the reference's one-unit sum, same operations */
            acc += w->scale[mi] * (float)c[r * p->m + i] + w->offset[mi] * (float)p->asum[i];
            y[i * w->n + r] = p->sa[i] * acc;
        }
    }
    return 0;
}

static size_t align64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

int mt_qgemm(struct mt_qws *ws, const struct mt_qtensor *w, const float *x, size_t m, float *y,
             enum mt_qact act, enum mt_qimpl impl, char *err, size_t errlen)
{
    if (!mt_qimpl_available(impl, w, act, err, errlen)) return -1;
    if (impl == MT_QIMPL_AUTO) impl = mt_qgemm_pick(w, m, act);
    if (m == 0) return 0;
    const size_t k = w->k, k_pad = w->k_pad, units = w->units_per_row;
    const int i8 = act == MT_QACT_INT8, lin = mt_q_is_linear(w->fmt.scheme);
    const int copy_x = !i8 && k != k_pad;
    size_t sz_x = copy_x ? align64(m * k_pad * sizeof(float)) : 0;
    size_t sz_sum = align64(m * units * (i8 ? sizeof(int32_t) : sizeof(float)));
    const int planes = impl == MT_QIMPL_AVX512 && i8 && mt_q_plane_ok(w, m);
    const int nib = impl == MT_QIMPL_AVX512 && !i8 && mt_q_nib_ok(w, m);
    size_t sz_qa = i8 ? align64(m * k_pad) * (planes ? 2 : 1) : 0,
           sz_sa = i8 ? align64(m * sizeof(float)) : 0;
    size_t sz_xp = nib ? align64(m * k_pad * sizeof(float)) : 0;
    size_t sz_c = impl == MT_QIMPL_DNNL ? align64(m * w->n * sizeof(int32_t)) : 0;
    char *buf = ws_reserve(ws, sz_x + sz_sum + sz_qa + sz_sa + sz_c + sz_xp + 64);
    if (!buf) {
        snprintf(err, errlen, "out of memory for %zu x %zu activation scratch", m, k_pad);
        return -1;
    }
    struct mt_qprep p = {.m = m, .k_pad = k_pad, .units = units, .x = x};
    if (copy_x) {
        float *xp = (float *)(void *)buf;
        for (size_t i = 0; i < m; i++) {
            memcpy(xp + i * k_pad, x + i * k, k * sizeof(float));
            memset(xp + i * k_pad + k, 0, (k_pad - k) * sizeof(float));
        }
        p.x = xp;
    }
    void *sums = buf + sz_x;
    if (i8) {
        int8_t *qa = (int8_t *)(buf + sz_x + sz_sum);
        float *sa = (float *)(void *)(buf + sz_x + sz_sum + sz_qa);
        int32_t *asum = sums;
        /* one routine per CPU for every implementation: the two give the same bytes */
        if (mt_q_cpu_avx512())
            mt_q_quantize_rows_avx512(x, m, k, k_pad, w->unit_len, qa, sa, asum);
        else
            mt_q_quantize_rows(x, m, k, k_pad, w->unit_len, qa, sa, asum);
        if (planes) { /* the bit-plane kernels' activation order, once per token row */
            int8_t *qp = qa + align64(m * k_pad);
            for (size_t i = 0; i < m; i++)
                mt_q_plane_order(qa + i * k_pad, k_pad, w->fmt.bits, qp + i * k_pad);
            p.qp = qp;
        }
        p.qa = qa;
        p.sa = sa;
        p.asum = asum;
    } else if (nib) { /* the nibble kernels need neither unit sums nor a padded copy */
        float *xp = (float *)(void *)(buf + sz_x + sz_sum + sz_qa + sz_sa + sz_c);
        for (size_t i = 0; i < m; i++)
            mt_q_nib_order(p.x + i * k_pad, k_pad, xp + i * k_pad);
        p.xp = xp;
    } else if (lin) {
        float *xsum = sums;
        for (size_t i = 0; i < m; i++)
            for (size_t u = 0; u < units; u++) {
                float s = 0.0f;
                size_t end = (u + 1) * w->unit_len < k ? (u + 1) * w->unit_len : k;
                for (size_t j = u * w->unit_len; j < end; j++)
                    s += x[i * k + j];
                xsum[i * units + u] = s;
            }
        p.xsum = xsum;
    }
    switch (impl) {
    case MT_QIMPL_DNNL:
        return run_dnnl(w, &p, (int32_t *)(void *)(buf + sz_x + sz_sum + sz_qa + sz_sa), y, err,
                        errlen);
    case MT_QIMPL_AVX512:
        if (i8)
            mt_q_gemm_i8_avx512(w, &p, y);
        else
            mt_q_gemm_f32_avx512(w, &p, y);
        return 0;
    default:
        if (i8)
            mt_q_gemm_i8_ref(w, &p, y);
        else
            mt_q_gemm_f32_ref(w, &p, y);
        return 0;
    }
}
