/* qformat.c — fitting, encoding, bit packing and decoding of packed weight tensors.
 *
 * What it is for: everything in qformat.h: per-unit fitting of scales/offsets/codebooks
 * (min-max, absmax, NF levels, companded levels, 1-D Lloyd k-means), nearest-level
 * encoding, the block bit layouts, scalar fp16/bf16 conversion, and row decoding for
 * references. What it is not for: matrix products (qkernels*.c).
 */
#include "qformat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/f16.h>
#include <memtrade/memcat.h>

#include "qinternal.h"

#define KMEANS_MAX_SAMPLE 65536
#define KMEANS_MAX_ITERS 100

static const char *const scheme_names[MT_QS_COUNT] = {"fp16", "bf16",   "linear-asym", "linear-sym",
                                                      "nf",   "kmeans", "log"};
static const char *const gran_names[MT_QG_COUNT] = {"tensor", "channel", "group"};

/* Index of `name` in names[0..n), or -1. */
static int find_name(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

const char *mt_qscheme_name(enum mt_qscheme s)
{
    return (unsigned)s < MT_QS_COUNT ? scheme_names[s] : "?";
}

int mt_qscheme_from_name(const char *name, enum mt_qscheme *out)
{
    int i = find_name(scheme_names, MT_QS_COUNT, name);
    if (i >= 0) *out = (enum mt_qscheme)i;
    return i >= 0 ? 0 : -1;
}

const char *mt_qgran_name(enum mt_qgran g)
{
    return (unsigned)g < MT_QG_COUNT ? gran_names[g] : "?";
}

int mt_qgran_from_name(const char *name, enum mt_qgran *out)
{
    int i = find_name(gran_names, MT_QG_COUNT, name);
    if (i >= 0) *out = (enum mt_qgran)i;
    return i >= 0 ? 0 : -1;
}

int mt_qformat_check(const struct mt_qformat *f, char *err, size_t errlen)
{
    if ((unsigned)f->scheme >= MT_QS_COUNT) {
        snprintf(err, errlen, "unknown quantization scheme %d", (int)f->scheme);
        return -1;
    }
    if (mt_q_is_half(f->scheme)) {
        if (f->bits != 16) {
            snprintf(err, errlen, "%s needs bits=16, got %u", mt_qscheme_name(f->scheme), f->bits);
            return -1;
        }
        return 0;
    }
    if (f->bits != 8 && f->bits != 4 && f->bits != 3 && f->bits != 2) {
        snprintf(err, errlen, "%s needs bits 8, 4, 3 or 2, got %u", mt_qscheme_name(f->scheme),
                 f->bits);
        return -1;
    }
    if ((unsigned)f->gran >= MT_QG_COUNT) {
        snprintf(err, errlen, "unknown granularity %d", (int)f->gran);
        return -1;
    }
    if (f->gran == MT_QG_GROUP && f->group_size != 32 && f->group_size != 64 &&
        f->group_size != 128) {
        snprintf(err, errlen, "group_size must be 32, 64 or 128, got %zu", f->group_size);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ fp16 / bf16 (scalar) */

/* Round to nearest even. Like vcvtne2ps2bf16, fp32 denormal inputs become signed zero
 * (that instruction ignores MXCSR and treats them as zero), so both paths agree. */
uint16_t mt_q_f32_to_bf16(float x)
{
    uint32_t u = mt_float_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float mt_q_bf16_to_f32(uint16_t h)
{
    return mt_bits_float((uint32_t)h << 16);
}

/* fp16: memtrade/f16.h's one conversion (round to nearest even, exact subnormals). */
uint16_t mt_q_f32_to_f16(float x)
{
    return mt_f16_from_float(x);
}

float mt_q_f16_to_f32(uint16_t h)
{
    return mt_f16_to_float(h);
}

void mt_q_f32_to_bf16_n(const float *x, uint16_t *out, size_t n, int force_scalar)
{
    if (!force_scalar && mt_q_cpu_bf16()) {
        mt_q_f32_to_bf16_avx512(x, out, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = mt_q_f32_to_bf16(x[i]);
}

void mt_q_f32_to_f16_n(const float *x, uint16_t *out, size_t n, int force_scalar)
{
    if (!force_scalar && mt_q_cpu_avx512()) {
        mt_q_f32_to_f16_avx512(x, out, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = mt_q_f32_to_f16(x[i]);
}

/* ------------------------------------------------------------ fixed codebooks */

static double norm_cdf(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

/* Inverse normal CDF by bisection: slow but exact to double precision and portable. */
static double norm_ppf(double p)
{
    double lo = -40.0, hi = 40.0;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (norm_cdf(mid) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* NF levels as in QLoRA (NF4 for bits = 4), generalized: 2^(b-1) positive normal
 * quantiles, 2^(b-1)-1 negative ones and an exact zero, scaled so the ends are +-1. */
static void nf_table(unsigned bits, float *lut)
{
    size_t L = (size_t)1 << bits, npos = L / 2, nneg = L / 2 - 1, i = 0;
    double off = 0.5 * ((1.0 - 1.0 / (2.0 * (double)(L - 1))) + (1.0 - 1.0 / (2.0 * (double)L)));
    double v[256];
    for (size_t j = 0; j < npos; j++)
        v[i++] = norm_ppf(off + (0.5 - off) * (double)j / (double)npos);
    for (size_t j = 0; j < nneg; j++)
        v[i++] = -norm_ppf(off + (0.5 - off) * (double)j / (double)nneg);
    v[i++] = 0.0;
    qsort(v, L, sizeof v[0], cmp_double);
    for (size_t j = 0; j < L; j++)
        lut[j] = (float)(v[j] / v[L - 1]);
    lut[0] = -1.0f;
    lut[L - 1] = 1.0f;
}

/* mu-law companding: uniform levels u in [-1, 1] mapped back by
 * sign(u) * expm1(|u| log1p(mu)) / mu; the table is exactly antisymmetric, ends +-1. */
static void log_table(unsigned bits, float *lut)
{
    size_t L = (size_t)1 << bits;
    double lmu = log1p((double)MT_QLOG_MU);
    for (size_t j = L / 2; j < L; j++) {
        double u = -1.0 + 2.0 * (double)j / (double)(L - 1);
        float v = (float)(expm1(u * lmu) / (double)MT_QLOG_MU);
        lut[j] = v;
        lut[L - 1 - j] = -v;
    }
    lut[0] = -1.0f;
    lut[L - 1] = 1.0f;
}

/* ------------------------------------------------------------ k-means (1-D Lloyd) */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* First index i in sorted s[0..n) with s[i] > v. */
static size_t upper_bound(const float *s, size_t n, float v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid] > v)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Fits L sorted centroids to v[0..cnt). Samples at most KMEANS_MAX_SAMPLE values with a
 * seeded generator, starts from the sample's quantiles, then runs Lloyd's algorithm
 * (clusters of sorted 1-D data are contiguous ranges, so each step is L binary searches
 * over prefix sums) until nothing moves. `work` holds KMEANS_MAX_SAMPLE floats and
 * KMEANS_MAX_SAMPLE + 1 doubles. */
static void kmeans_fit(const float *v, size_t cnt, size_t L, uint64_t seed, float *lut, float *s,
                       double *prefix)
{
    if (cnt == 0) {
        memset(lut, 0, L * sizeof *lut);
        return;
    }
    size_t P = cnt;
    if (cnt > KMEANS_MAX_SAMPLE) {
        uint64_t st = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
        if (!st) st = 1;
        P = KMEANS_MAX_SAMPLE;
        for (size_t i = 0; i < P; i++)
            s[i] = v[xorshift64(&st) % cnt];
    } else {
        memcpy(s, v, cnt * sizeof *s);
    }
    qsort(s, P, sizeof *s, cmp_float);
    prefix[0] = 0.0;
    for (size_t i = 0; i < P; i++)
        prefix[i + 1] = prefix[i] + (double)s[i];
    for (size_t j = 0; j < L; j++)
        lut[j] = s[((2 * j + 1) * P) / (2 * L)];
    for (int it = 0; it < KMEANS_MAX_ITERS; it++) {
        int moved = 0;
        size_t start = 0;
        for (size_t j = 0; j < L; j++) {
            size_t end = j + 1 < L ? upper_bound(s, P, 0.5f * (lut[j] + lut[j + 1])) : P;
            if (end < start) end = start;
            if (end > start) {
                float c = (float)((prefix[end] - prefix[start]) / (double)(end - start));
                moved |= c != lut[j];
                lut[j] = c;
            }
            start = end;
        }
        qsort(lut, L, sizeof *lut, cmp_float);
        if (!moved) break;
    }
}

/* ------------------------------------------------------------ layout */

static size_t block_bytes(unsigned bits)
{
    return (size_t)bits * MT_QBLOCK / 8;
}

static size_t round_up(size_t x, size_t m)
{
    return (x + m - 1) / m * m;
}

/* Writes the k_pad codes of one row (c[j] < 2^bits) into the block layout. */
static void pack_row(uint8_t *dst, const uint8_t *c, size_t k_pad, unsigned bits)
{
    for (size_t b0 = 0; b0 < k_pad; b0 += MT_QBLOCK, c += MT_QBLOCK) {
        switch (bits) {
        case 8:
            memcpy(dst, c, MT_QBLOCK);
            break;
        case 4:
            for (int i = 0; i < 32; i++)
                dst[i] = (uint8_t)(c[i] | c[i + 32] << 4);
            break;
        case 2:
        case 3:
            for (int i = 0; i < 16; i++)
                dst[i] = (uint8_t)((c[i] & 3) | (c[i + 16] & 3) << 2 | (c[i + 32] & 3) << 4 |
                                   (c[i + 48] & 3) << 6);
            if (bits == 3) {
                uint64_t hi = 0;
                for (int i = 0; i < 64; i++)
                    hi |= (uint64_t)((c[i] >> 2) & 1) << i;
                for (int i = 0; i < 8; i++)
                    dst[16 + i] = (uint8_t)(hi >> (8 * i));
            }
            break;
        }
        dst += block_bytes(bits);
    }
}

unsigned mt_qtensor_code(const struct mt_qtensor *qt, size_t row, size_t j)
{
    unsigned bits = qt->fmt.bits;
    const uint8_t *p = qt->codes + row * qt->row_bytes;
    if (bits == 16) return (unsigned)p[2 * j] | (unsigned)p[2 * j + 1] << 8;
    p += (j / MT_QBLOCK) * block_bytes(bits);
    size_t i = j % MT_QBLOCK;
    switch (bits) {
    case 8:
        return p[i];
    case 4:
        return i < 32 ? p[i] & 15u : p[i - 32] >> 4;
    default: {
        unsigned c = (p[i % 16] >> (2 * (i / 16))) & 3u;
        if (bits == 3) c |= ((p[16 + i / 8] >> (i % 8)) & 1u) << 2;
        return c;
    }
    }
}

/* ------------------------------------------------------------ encode / decode */

/* Nearest level of sorted lut[0..L): the number of midpoints strictly below v. */
static unsigned nearest_level(const float *lut, size_t L, float v)
{
    size_t lo = 0, hi = L - 1; /* answer in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v > 0.5f * (lut[mid] + lut[mid + 1]))
            lo = mid + 1;
        else
            hi = mid;
    }
    return (unsigned)lo;
}

/* Code of v under one unit's metadata: scale s and offset off (linear), s and the shared
 * table (nf, log), or the unit's own table `lut` (kmeans). */
static unsigned encode_with(const struct mt_qtensor *qt, float s, float off, const float *lut,
                            float v)
{
    unsigned bits = qt->fmt.bits;
    switch (qt->fmt.scheme) {
    case MT_QS_LINEAR_ASYM:
    case MT_QS_LINEAR_SYM: {
        float inv = s > 0.0f ? 1.0f / s : 0.0f;
        float q = nearbyintf((v - off) * inv);
        float cmin = qt->fmt.scheme == MT_QS_LINEAR_SYM ? 1.0f : 0.0f;
        float cmax = (float)((1u << bits) - 1u);
        return (unsigned)(q < cmin ? cmin : q > cmax ? cmax : q);
    }
    case MT_QS_NF:
    case MT_QS_LOG:
        return nearest_level(qt->lut, qt->lut_len, s > 0.0f ? v / s : 0.0f);
    case MT_QS_KMEANS:
        return nearest_level(lut, qt->lut_len, v);
    default:
        return 0;
    }
}

/* The value code c stands for under one unit's metadata (encode_with's arguments). */
static float decode_with(const struct mt_qtensor *qt, float s, float off, const float *lut,
                         unsigned c)
{
    switch (qt->fmt.scheme) {
    case MT_QS_LINEAR_ASYM:
    case MT_QS_LINEAR_SYM:
        return s * (float)c + off;
    case MT_QS_NF:
    case MT_QS_LOG:
        return s * qt->lut[c];
    case MT_QS_KMEANS:
        return lut[c];
    default:
        return 0.0f;
    }
}

/* Scale i of a double-quantized tensor, decoded: the one rule of every reader. */
static float dq_scale(const struct mt_qtensor *qt, size_t i)
{
    return *qt->scale_mean + qt->scale_absmax[i / MT_QDQ_BLOCK] * (float)qt->scale_code[i] / 127.0f;
}

void mt_qtensor_scales(const struct mt_qtensor *qt, float *out)
{
    for (size_t i = 0; i < qt->n_scale; i++)
        out[i] = qt->scale ? qt->scale[i] : dq_scale(qt, i);
}

/* Unit u of row r's metadata, as encode_with and decode_with take it. */
static void unit_meta(const struct mt_qtensor *qt, size_t r, size_t u, float *s, float *off,
                      const float **lut)
{
    size_t mi = mt_q_meta(qt, r, u);
    *s = qt->scale ? qt->scale[mi] : qt->scale_code ? dq_scale(qt, mi) : 0.0f;
    *off = qt->offset ? qt->offset[mi] : 0.0f;
    *lut = qt->fmt.scheme == MT_QS_KMEANS ? mt_q_lut(qt, r, u) : qt->lut;
}

static unsigned encode_value(const struct mt_qtensor *qt, size_t r, size_t u, float v)
{
    float s, off;
    const float *lut;
    unit_meta(qt, r, u, &s, &off, &lut);
    return encode_with(qt, s, off, lut, v);
}

float mt_q_round(const struct mt_qtensor *qt, size_t r, size_t u, float v)
{
    float s, off;
    const float *lut;
    unit_meta(qt, r, u, &s, &off, &lut);
    return decode_with(qt, s, off, lut, encode_with(qt, s, off, lut, v));
}

static float decode_value(const struct mt_qtensor *qt, size_t r, size_t j)
{
    if (mt_q_is_half(qt->fmt.scheme)) {
        unsigned c = mt_qtensor_code(qt, r, j);
        return qt->fmt.scheme == MT_QS_FP16 ? mt_q_f16_to_f32((uint16_t)c)
                                            : mt_q_bf16_to_f32((uint16_t)c);
    }
    float s, off;
    const float *lut;
    unit_meta(qt, r, j / qt->unit_len, &s, &off, &lut);
    return decode_with(qt, s, off, lut, mt_qtensor_code(qt, r, j));
}

int mt_qtensor_encode(struct mt_qtensor *qt, const float *w)
{
    size_t n = qt->n, k = qt->k, k_pad = qt->k_pad;
    if (mt_q_is_half(qt->fmt.scheme)) {
        for (size_t r = 0; r < n; r++) {
            uint16_t *dst = (uint16_t *)(void *)(qt->codes + r * qt->row_bytes);
            if (qt->fmt.scheme == MT_QS_BF16)
                mt_q_f32_to_bf16_n(w + r * k, dst, k, 0);
            else
                mt_q_f32_to_f16_n(w + r * k, dst, k, 0);
            memset(dst + k, 0, (k_pad - k) * 2);
        }
        return 0;
    }
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        uint8_t *c = calloc(k_pad, 1);
        failed = !c;
#pragma omp for schedule(static)
        for (size_t r = 0; r < n; r++) {
            if (!c) continue;
            for (size_t j = 0; j < k; j++)
                c[j] = (uint8_t)encode_value(qt, r, j / qt->unit_len, w[r * k + j]);
            pack_row(qt->codes + r * qt->row_bytes, c, k_pad, qt->fmt.bits);
        }
        free(c);
    }
    return failed ? -1 : 0;
}

void mt_qtensor_row(const struct mt_qtensor *qt, size_t row, float *out)
{
    for (size_t j = 0; j < qt->k; j++)
        out[j] = decode_value(qt, row, j);
}

void mt_qtensor_unpack(const struct mt_qtensor *qt, float *out)
{
    for (size_t r = 0; r < qt->n; r++)
        mt_qtensor_row(qt, r, out + r * qt->k);
}

void mt_qtensor_error(const struct mt_qtensor *qt, const float *w, double *mse, double *maxabs)
{
    double se = 0.0, mx = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : se) reduction(max : mx)
    for (size_t r = 0; r < qt->n; r++)
        for (size_t j = 0; j < qt->k; j++) {
            double d = (double)decode_value(qt, r, j) - (double)w[r * qt->k + j];
            se += d * d;
            if (fabs(d) > mx) mx = fabs(d);
        }
    *mse = se / ((double)qt->n * (double)qt->k);
    *maxabs = mx;
}

/* ------------------------------------------------------------ fitting */

/* Values of unit idx (metadata index) as one contiguous span of w. */
static const float *unit_span(const struct mt_qtensor *qt, const float *w, size_t idx, size_t *cnt)
{
    size_t n = qt->n, k = qt->k;
    if (qt->fmt.gran == MT_QG_TENSOR) {
        *cnt = n * k;
        return w;
    }
    if (qt->fmt.gran == MT_QG_CHANNEL) {
        *cnt = k;
        return w + idx * k;
    }
    size_t r = idx / qt->units_per_row, j0 = (idx % qt->units_per_row) * qt->unit_len;
    *cnt = j0 >= k ? 0 : (k - j0 < qt->unit_len ? k - j0 : qt->unit_len);
    return w + r * k + (j0 < k ? j0 : 0);
}

static void fit_linear_or_scaled(struct mt_qtensor *qt, size_t idx, const float *v, size_t cnt)
{
    float lo = 0.0f, hi = 0.0f, amax = 0.0f;
    for (size_t i = 0; i < cnt; i++) {
        if (i == 0 || v[i] < lo) lo = v[i];
        if (i == 0 || v[i] > hi) hi = v[i];
        if (fabsf(v[i]) > amax) amax = fabsf(v[i]);
    }
    float levels = (float)((1u << qt->fmt.bits) - 1u);
    switch (qt->fmt.scheme) {
    case MT_QS_LINEAR_ASYM:
        qt->scale[idx] = (hi - lo) / levels;
        qt->offset[idx] = lo;
        break;
    case MT_QS_LINEAR_SYM: {
        float half = (float)(1u << (qt->fmt.bits - 1));
        qt->scale[idx] = amax / (half - 1.0f);
        qt->offset[idx] = -half * qt->scale[idx];
        break;
    }
    default: /* nf, log: absmax */
        qt->scale[idx] = amax;
        break;
    }
}

#define WFIT_STEPS 20 /* candidate ranges 1.0, 0.98, ..., 0.62 of the plain fit's */

/* Weighted squared error of v[cnt] (weights imp[i % imp_len]) under (s, off). */
static double weighted_error(const struct mt_qtensor *qt, float s, float off, const float *v,
                             const float *imp, size_t imp_len, size_t cnt)
{
    double e = 0.0;
    for (size_t i = 0; i < cnt; i++) {
        double d =
            (double)decode_with(qt, s, off, qt->lut, encode_with(qt, s, off, qt->lut, v[i])) -
            (double)v[i];
        e += (double)imp[i % imp_len] * d * d;
    }
    return e;
}

/* The weighted least-squares (s, off) for the codes (s, off) give v: two parameters for
 * linear-asym, the scale alone for linear-sym (off = -2^(b-1) s) and nf/log. Returns 0
 * with the refined pair, or -1 when the system is singular. */
static int refine(const struct mt_qtensor *qt, float *s, float *off, const float *v,
                  const float *imp, size_t imp_len, size_t cnt)
{
    double sw = 0, sl = 0, sll = 0, sx = 0, sxl = 0, half = (double)(1u << (qt->fmt.bits - 1));
    for (size_t i = 0; i < cnt; i++) {
        unsigned c = encode_with(qt, *s, *off, qt->lut, v[i]);
        double a = imp[i % imp_len], l = qt->fmt.scheme == MT_QS_LINEAR_ASYM  ? (double)c
                                         : qt->fmt.scheme == MT_QS_LINEAR_SYM ? (double)c - half
                                                                              : qt->lut[c];
        sw += a, sl += a * l, sll += a * l * l, sx += a * v[i], sxl += a * v[i] * l;
    }
    if (qt->fmt.scheme == MT_QS_LINEAR_ASYM) {
        double det = sw * sll - sl * sl;
        if (!(det > 0.0)) return -1;
        *s = (float)((sw * sxl - sx * sl) / det);
        *off = (float)((sll * sx - sl * sxl) / det);
        return *s > 0.0f ? 0 : -1;
    }
    if (!(sll > 0.0) || !(sxl > 0.0)) return -1;
    *s = (float)(sxl / sll);
    if (qt->fmt.scheme == MT_QS_LINEAR_SYM) *off = (float)(-half * *s);
    return 0;
}

void mt_q_fit_unit(struct mt_qtensor *qt, size_t idx, const float *v, const float *imp,
                   size_t imp_len, size_t cnt)
{
    fit_linear_or_scaled(qt, idx, v, cnt);
    if (!imp || cnt == 0) return;
    float s0 = qt->scale[idx], o0 = qt->offset ? qt->offset[idx] : 0.0f;
    float best_s = s0, best_o = o0;
    double best = weighted_error(qt, s0, o0, v, imp, imp_len, cnt);
    float range = qt->fmt.scheme == MT_QS_LINEAR_ASYM ? s0 * (float)((1u << qt->fmt.bits) - 1u) : 0;
    for (int step = 0; step <= WFIT_STEPS && s0 > 0.0f; step++) {
        float f = 1.0f - 0.02f * (float)step, s = s0 * f, off = o0;
        if (qt->fmt.scheme == MT_QS_LINEAR_ASYM) off = o0 + 0.5f * range * (1.0f - f);
        if (qt->fmt.scheme == MT_QS_LINEAR_SYM) off = o0 * f;
        for (int pass = 0; pass < 2; pass++) { /* the candidate, then its least squares */
            if (pass == 1 && refine(qt, &s, &off, v, imp, imp_len, cnt)) break;
            double e = weighted_error(qt, s, off, v, imp, imp_len, cnt);
            if (e < best) best = e, best_s = s, best_o = off;
        }
    }
    qt->scale[idx] = best_s;
    if (qt->offset) qt->offset[idx] = best_o;
}

static int fit(struct mt_qtensor *qt, const float *w)
{
    enum mt_qscheme s = qt->fmt.scheme;
    size_t units = qt->fmt.gran == MT_QG_TENSOR ? 1 : qt->n * qt->units_per_row;
    if (s == MT_QS_NF) nf_table(qt->fmt.bits, qt->lut);
    if (s == MT_QS_LOG) log_table(qt->fmt.bits, qt->lut);
    if (s != MT_QS_KMEANS) {
        for (size_t idx = 0; idx < units; idx++) {
            size_t cnt;
            const float *v = unit_span(qt, w, idx, &cnt);
            fit_linear_or_scaled(qt, idx, v, cnt);
        }
        return 0;
    }
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *smp = malloc(KMEANS_MAX_SAMPLE * sizeof *smp);
        double *prefix = malloc((KMEANS_MAX_SAMPLE + 1) * sizeof *prefix);
        failed = !smp || !prefix;
#pragma omp for schedule(dynamic, 16)
        for (size_t idx = 0; idx < units; idx++) {
            if (failed) continue;
            size_t cnt;
            const float *v = unit_span(qt, w, idx, &cnt);
            kmeans_fit(v, cnt, qt->lut_len, qt->fmt.seed ^ idx, qt->lut + idx * qt->lut_len, smp,
                       prefix);
        }
        free(smp);
        free(prefix);
    }
    return failed ? -1 : 0;
}

/* ------------------------------------------------------------ pack / free */

/* The layout of a tensor of n rows of k in format f: every size field of *qt (no
 * pointer); qt->bytes is the one allocation's size. The one rule of mt_qtensor_pack and
 * mt_qformat_bytes. */
static void qformat_layout(struct mt_qtensor *qt, const struct mt_qformat *f, size_t n, size_t k,
                           int dq)
{
    qt->fmt = *f;
    qt->n = n;
    qt->k = k;
    int group = !mt_q_is_half(f->scheme) && f->gran == MT_QG_GROUP;
    if (!group) qt->fmt.group_size = 0;
    qt->k_pad = round_up(k, group && f->group_size > MT_QBLOCK ? f->group_size : MT_QBLOCK);
    qt->row_bytes = f->bits == 16 ? 2 * qt->k_pad : qt->k_pad / MT_QBLOCK * block_bytes(f->bits);
    qt->unit_len = group ? f->group_size : qt->k_pad;
    qt->units_per_row = qt->k_pad / qt->unit_len;
    size_t units = 0;
    if (!mt_q_is_half(f->scheme)) {
        qt->meta_row_stride = f->gran == MT_QG_TENSOR ? 0 : qt->units_per_row;
        units = f->gran == MT_QG_TENSOR ? 1 : n * qt->units_per_row;
    }
    if (mt_q_is_linear(f->scheme)) qt->n_scale = qt->n_offset = units;
    if (f->scheme == MT_QS_NF || f->scheme == MT_QS_LOG) {
        qt->n_scale = units;
        qt->lut_len = (size_t)1 << f->bits;
        qt->n_lut = qt->lut_len;
    }
    if (f->scheme == MT_QS_KMEANS) {
        qt->lut_len = (size_t)1 << f->bits;
        qt->n_lut = units * qt->lut_len;
    }
    size_t meta = (qt->n_scale + qt->n_offset + qt->n_lut) * sizeof(float);
    qt->bytes = meta + n * qt->row_bytes;
    if (dq) { /* fp32 scales out; their block absmax, mean and int8 codes in */
        qt->n_scale_blk = (qt->n_scale + MT_QDQ_BLOCK - 1) / MT_QDQ_BLOCK;
        qt->bytes +=
            (qt->n_scale_blk + 1) * sizeof(float) + qt->n_scale - qt->n_scale * sizeof(float);
    }
}

size_t mt_qformat_scale_count(const struct mt_qformat *f, size_t n, size_t k)
{
    struct mt_qtensor qt;
    memset(&qt, 0, sizeof qt);
    qformat_layout(&qt, f, n, k, 0);
    return qt.n_scale;
}

size_t mt_qformat_bytes(const struct mt_qformat *f, size_t n, size_t k)
{
    struct mt_qtensor qt;
    memset(&qt, 0, sizeof qt);
    qformat_layout(&qt, f, n, k, 0);
    return qt.bytes;
}

size_t mt_qformat_bytes_dq(const struct mt_qformat *f, size_t n, size_t k)
{
    struct mt_qtensor qt;
    memset(&qt, 0, sizeof qt);
    qformat_layout(&qt, f, n, k, 1);
    return qt.bytes;
}

/* The double quantization of t0's fp32 scales into a new tensor of format f (see
 * qformat.h), whose codes are then chosen against the decoded scales. */
static struct mt_qtensor *double_quant(const struct mt_qtensor *t0, const float *w, char *err,
                                       size_t errlen)
{
    struct mt_qtensor *qt = calloc(1, sizeof *qt);
    if (qt) {
        qformat_layout(qt, &t0->fmt, t0->n, t0->k, 1);
        int prev = mt_memcat_set(MT_MEM_WEIGHTS);
        qt->block = calloc(1, qt->bytes);
        mt_memcat_set(prev);
    }
    if (!qt || !qt->block) {
        snprintf(err, errlen, "out of memory double-quantizing %zu scales", t0->n_scale);
        free(qt);
        return NULL;
    }
    float *fp = qt->block;
    qt->scale_absmax = fp;
    qt->scale_mean = fp + qt->n_scale_blk;
    qt->lut = qt->scale_mean + 1;
    qt->codes = (uint8_t *)(qt->lut + qt->n_lut);
    qt->scale_code = (int8_t *)(qt->codes + qt->n * qt->row_bytes);
    memcpy(qt->lut, t0->lut, qt->n_lut * sizeof(float));
    double sum = 0.0;
    for (size_t i = 0; i < t0->n_scale; i++)
        sum += t0->scale[i];
    *qt->scale_mean = (float)(sum / (double)t0->n_scale);
    for (size_t b = 0; b < qt->n_scale_blk; b++) {
        size_t i0 = b * MT_QDQ_BLOCK,
               i1 = i0 + MT_QDQ_BLOCK < t0->n_scale ? i0 + MT_QDQ_BLOCK : t0->n_scale;
        float a = 0.0f;
        for (size_t i = i0; i < i1; i++)
            a = fmaxf(a, fabsf(t0->scale[i] - *qt->scale_mean));
        qt->scale_absmax[b] = a;
        for (size_t i = i0; i < i1; i++) /* |q| <= 127 by the choice of a */
            qt->scale_code[i] =
                (int8_t)(a > 0.0f ? lrintf(127.0f * (t0->scale[i] - *qt->scale_mean) / a) : 0);
    }
    if (mt_qtensor_encode(qt, w)) {
        snprintf(err, errlen, "out of memory encoding %zu x %zu weights", qt->n, qt->k);
        mt_qtensor_free(qt);
        return NULL;
    }
    return qt;
}

struct mt_qtensor *mt_qtensor_pack_dq(const float *w, size_t n, size_t k,
                                      const struct mt_qformat *f, char *err, size_t errlen)
{
    if (f->scheme != MT_QS_NF && f->scheme != MT_QS_LOG) {
        snprintf(err, errlen, "double-quantized scales need scheme nf or log, not %s",
                 mt_qscheme_name(f->scheme));
        return NULL;
    }
    struct mt_qtensor *t0 = mt_qtensor_pack(w, n, k, f, err, errlen); /* fp32 scales fitted */
    struct mt_qtensor *qt = t0 ? double_quant(t0, w, err, errlen) : NULL;
    mt_qtensor_free(t0);
    return qt;
}

struct mt_qtensor *mt_qtensor_pack(const float *w, size_t n, size_t k, const struct mt_qformat *f,
                                   char *err, size_t errlen)
{
    if (mt_qformat_check(f, err, errlen)) return NULL;
    if (n == 0 || k == 0) {
        snprintf(err, errlen, "empty weight matrix %zu x %zu", n, k);
        return NULL;
    }
    for (size_t i = 0; i < n * k; i++)
        if (!isfinite(w[i])) {
            snprintf(err, errlen, "weight %zu (row %zu) is not finite", i, i / k);
            return NULL;
        }
    struct mt_qtensor *qt = calloc(1, sizeof *qt);
    if (!qt) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    qformat_layout(qt, f, n, k, 0);
    int prev = mt_memcat_set(MT_MEM_WEIGHTS);
    qt->block = calloc(1, qt->bytes);
    mt_memcat_set(prev);
    if (!qt->block) {
        snprintf(err, errlen, "out of memory packing %zu bytes", qt->bytes);
        free(qt);
        return NULL;
    }
    float *fp = qt->block;
    qt->scale = qt->n_scale ? fp : NULL;
    fp += qt->n_scale;
    qt->offset = qt->n_offset ? fp : NULL;
    fp += qt->n_offset;
    qt->lut = qt->n_lut ? fp : NULL;
    qt->codes = (uint8_t *)qt->block + (qt->n_scale + qt->n_offset + qt->n_lut) * sizeof(float);
    if ((!mt_q_is_half(f->scheme) && fit(qt, w)) || mt_qtensor_encode(qt, w)) {
        snprintf(err, errlen, "out of memory fitting or encoding %zu x %zu weights", n, k);
        mt_qtensor_free(qt);
        return NULL;
    }
    return qt;
}

void mt_qtensor_free(struct mt_qtensor *qt)
{
    if (!qt) return;
    free(qt->block);
    free(qt);
}

size_t mt_qtensor_bytes(const struct mt_qtensor *qt)
{
    return qt->bytes;
}

double mt_qtensor_bits_per_weight(const struct mt_qtensor *qt)
{
    return 8.0 * (double)qt->bytes / ((double)qt->n * (double)qt->k);
}
