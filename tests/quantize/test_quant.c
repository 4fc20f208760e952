/* test_quant.c — unit tests of the mt_quant library (formats and kernels).
 *
 * What it is for: `test_quant <case>` runs one ctest case: `convert` (fp16/bf16 rounding
 * against known bit patterns and scalar vs AVX-512), `roundtrip` (codes survive decode
 * then encode; deterministic formats also survive a full re-pack), `bytes` (stored sizes
 * computed by hand), `error` (quantization error ordering on Gaussian weights), `kernels`
 * (every fast kernel against its scalar reference on odd shapes), `reject` (bad inputs
 * fail with a message), `prep` (the AVX-512 activation quantization gives the
 * scalar one's exact bytes). What it is not for: speed (mt-bench-quant) or the plugin.
 * Exit status: 0 pass, 1 fail, 77 skipped (the CPU lacks what a case needs).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcheck.h"
#include "qformat.h"
#include "qinternal.h" /* the activation preparation and its AVX-512 twin */
#include "qkernels.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double uniform(void)
{
    return ((double)(rnd() >> 11) + 0.5) * 0x1p-53;
}
static float gauss(void)
{
    return (float)(sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform()));
}
static float *gauss_matrix(size_t n, float sd)
{
    float *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++)
        w[i] = sd * gauss();
    return w;
}

/* The bits of a float and back (C11 allows reading another member of a union). */
union fbits {
    float f;
    uint32_t u;
};
static uint32_t f2u(float x)
{
    return (union fbits){.f = x}.u;
}
static float u2f(uint32_t u)
{
    return (union fbits){.u = u}.f;
}

/* Every format the library packs, with a printable label. */
struct fmt_case {
    struct mt_qformat f;
    char label[48];
};

static size_t all_formats(struct fmt_case *out)
{
    size_t n = 0;
    const unsigned bits[] = {8, 4, 3, 2};
    const size_t gs[] = {32, 64, 128};
    for (int s = MT_QS_LINEAR_ASYM; s < MT_QS_COUNT; s++)
        for (int b = 0; b < 4; b++)
            for (int g = 0; g < MT_QG_COUNT; g++)
                for (int z = 0; z < (g == MT_QG_GROUP ? 3 : 1); z++) {
                    struct fmt_case *c = &out[n++];
                    c->f = (struct mt_qformat){.scheme = (enum mt_qscheme)s,
                                               .bits = bits[b],
                                               .gran = (enum mt_qgran)g,
                                               .group_size = g == MT_QG_GROUP ? gs[z] : 0,
                                               .seed = 7};
                    snprintf(c->label, sizeof c->label, "%s/%u/%s%zu", mt_qscheme_name(c->f.scheme),
                             bits[b], mt_qgran_name(c->f.gran), c->f.group_size);
                }
    for (int s = MT_QS_FP16; s <= MT_QS_BF16; s++) {
        struct fmt_case *c = &out[n++];
        c->f = (struct mt_qformat){.scheme = (enum mt_qscheme)s, .bits = 16};
        snprintf(c->label, sizeof c->label, "%s", mt_qscheme_name(c->f.scheme));
    }
    return n;
}

/* ------------------------------------------------------------ convert */

static int test_convert(void)
{
    /* Known roundings. */
    CHECK(mt_q_f32_to_bf16(1.0f) == 0x3f80, "bf16(1)");
    CHECK(mt_q_f32_to_bf16(u2f(0x3f808000u)) == 0x3f80, "bf16 tie to even (down)");
    CHECK(mt_q_f32_to_bf16(u2f(0x3f818000u)) == 0x3f82, "bf16 tie to even (up)");
    CHECK(mt_q_f32_to_bf16(u2f(0x3f808001u)) == 0x3f81, "bf16 above tie");
    CHECK(mt_q_f32_to_bf16(u2f(0x7f7fffffu)) == 0x7f80, "bf16 overflow to inf");
    CHECK(mt_q_f32_to_bf16(-INFINITY) == 0xff80, "bf16 -inf");
    CHECK((mt_q_f32_to_bf16(NAN) & 0x7fff) > 0x7f80, "bf16 NaN stays NaN");
    CHECK(mt_q_f32_to_f16(1.0f) == 0x3c00, "f16(1)");
    CHECK(mt_q_f32_to_f16(65504.0f) == 0x7bff, "f16 max");
    CHECK(mt_q_f32_to_f16(65519.0f) == 0x7bff, "f16 below overflow tie");
    CHECK(mt_q_f32_to_f16(65520.0f) == 0x7c00, "f16 overflow tie to inf");
    CHECK(mt_q_f32_to_f16(0x1p-24f) == 0x0001, "f16 min subnormal");
    CHECK(mt_q_f32_to_f16(0x1p-25f) == 0x0000, "f16 subnormal tie to even (0)");
    CHECK(mt_q_f32_to_f16(0x3p-25f) == 0x0002, "f16 subnormal tie to even (2)");
    CHECK(mt_q_f32_to_f16(-2.0f) == 0xc000, "f16(-2)");
    CHECK(mt_q_f32_to_f16(u2f(0x3f801000u)) == 0x3c00, "f16 tie to even (down)");
    CHECK(mt_q_f32_to_f16(u2f(0x3f803000u)) == 0x3c02, "f16 tie to even (up)");
    /* Every finite half survives half -> float -> half. */
    for (uint32_t h = 0; h < 65536; h++) {
        int f16_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        int bf16_nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
        int bf16_sub = (h & 0x7f80) == 0 && (h & 0x7f); /* flushed to zero by design */
        uint16_t back = mt_q_f32_to_f16(mt_q_f16_to_f32((uint16_t)h));
        CHECK(f16_nan || back == h, "f16 %04x -> %04x", h, back);
        uint16_t bb = mt_q_f32_to_bf16(mt_q_bf16_to_f32((uint16_t)h));
        CHECK(bf16_nan || bf16_sub || bb == h, "bf16 %04x -> %04x", h, bb);
    }
    /* Scalar and vector paths agree on random bit patterns (NaNs: both NaN). */
    size_t n = 1 << 18;
    float *x = malloc(n * sizeof *x);
    uint16_t *a = malloc(n * 2), *b = malloc(n * 2);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)rnd();
        if (i % 4 == 1) /* bias towards the fp16 range and rounding ties */
            u = (u & 0x80001fffu) | ((uint32_t)(100 + rnd() % 50) << 23);
        if (i % 4 == 2) u &= 0xffff8000u | 0x8000u;
        x[i] = u2f(u);
    }
    const char *names[2] = {"bf16", "f16"};
    for (int kind = 0; kind < 2; kind++) {
        if (kind == 0) {
            mt_q_f32_to_bf16_n(x, a, n, 1);
            mt_q_f32_to_bf16_n(x, b, n, 0);
        } else {
            mt_q_f32_to_f16_n(x, a, n, 1);
            mt_q_f32_to_f16_n(x, b, n, 0);
        }
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            int nan = isnan(x[i]);
            if (nan ? (a[i] & 0x7fff) <= (kind ? 0x7c00 : 0x7f80) ||
                          (b[i] & 0x7fff) <= (kind ? 0x7c00 : 0x7f80)
                    : a[i] != b[i]) {
                if (bad++ < 5)
                    fprintf(stderr, "%s mismatch x=%08x scalar %04x vector %04x\n", names[kind],
                            f2u(x[i]), a[i], b[i]);
            }
        }
        CHECK(bad == 0, "%s: %zu scalar/vector mismatches", names[kind], bad);
    }
    free(x);
    free(a);
    free(b);
    return 0;
}

/* ------------------------------------------------------------ roundtrip */

static int same_codes(const struct mt_qtensor *a, const struct mt_qtensor *b)
{
    return a->n * a->row_bytes == b->n * b->row_bytes &&
           memcmp(a->codes, b->codes, a->n * a->row_bytes) == 0;
}

static int test_roundtrip(void)
{
    static struct fmt_case cases[128];
    size_t nc = all_formats(cases);
    const size_t shapes[][2] = {{37, 200}, {5, 64}, {3, 129}};
    char err[256];
    for (size_t si = 0; si < 3; si++) {
        size_t n = shapes[si][0], k = shapes[si][1];
        float *w = gauss_matrix(n * k, 0.05f);
        float *v = malloc(n * k * sizeof *v);
        for (size_t ci = 0; ci < nc; ci++) {
            struct mt_qtensor *q = mt_qtensor_pack(w, n, k, &cases[ci].f, err, sizeof err);
            CHECK(q, "%s: %s", cases[ci].label, err);
            if (!q) continue;
            mt_qtensor_unpack(q, v);
            /* Codes are in range and decode consistently. */
            unsigned cmax = q->fmt.bits == 16 ? 65535u : (1u << q->fmt.bits) - 1u;
            for (size_t r = 0; r < n; r++)
                for (size_t j = 0; j < q->k_pad; j++)
                    if (mt_qtensor_code(q, r, j) > cmax || (j >= k && mt_qtensor_code(q, r, j)))
                        CHECK(0, "%s: bad code at %zu,%zu", cases[ci].label, r, j);
            /* encode(decode(codes)) == codes with the same metadata. */
            struct mt_qtensor *q2 = mt_qtensor_pack(w, n, k, &cases[ci].f, err, sizeof err);
            CHECK(q2 && mt_qtensor_encode(q2, v) == 0 && same_codes(q, q2),
                  "%s %zux%zu: encode(decode) changed codes", cases[ci].label, n, k);
            mt_qtensor_free(q2);
            /* Deterministic fits: a full re-pack of the decoded weights gives the codes. */
            if (q->fmt.scheme != MT_QS_KMEANS) {
                q2 = mt_qtensor_pack(v, n, k, &cases[ci].f, err, sizeof err);
                CHECK(q2 && same_codes(q, q2), "%s %zux%zu: pack(unpack) changed codes",
                      cases[ci].label, n, k);
                mt_qtensor_free(q2);
            }
            /* Determinism: packing twice gives the same bytes. */
            q2 = mt_qtensor_pack(w, n, k, &cases[ci].f, err, sizeof err);
            CHECK(q2 && q2->bytes == q->bytes && memcmp(q2->block, q->block, q->bytes) == 0,
                  "%s: packing is not deterministic", cases[ci].label);
            mt_qtensor_free(q2);
            mt_qtensor_free(q);
        }
        free(w);
        free(v);
    }
    /* Hand-checked decodes: linear-asym 2-bit of a known row. */
    float row[4] = {-1.0f, 0.0f, 0.5f, 2.0f};
    struct mt_qformat f = {.scheme = MT_QS_LINEAR_ASYM, .bits = 2, .gran = MT_QG_CHANNEL};
    struct mt_qtensor *q = mt_qtensor_pack(row, 1, 4, &f, err, sizeof err);
    CHECK(q && q->scale[0] == 1.0f && q->offset[0] == -1.0f, "asym scale/offset");
    if (q) {
        unsigned want[4] = {0, 1, 2, 3}; /* 0.5 -> (1.5)/1 = 1.5 ties to even 2 */
        for (int j = 0; j < 4; j++)
            CHECK(mt_qtensor_code(q, 0, (size_t)j) == want[j], "asym code %d = %u", j,
                  mt_qtensor_code(q, 0, (size_t)j));
    }
    mt_qtensor_free(q);
    /* NF4 levels match QLoRA's published table to 4 decimals. */
    static const float nf4[16] = {-1.0f,    -0.6962f, -0.5251f, -0.3949f, -0.2844f, -0.1848f,
                                  -0.0911f, 0.0f,     0.0796f,  0.1609f,  0.2461f,  0.3379f,
                                  0.4407f,  0.5626f,  0.7230f,  1.0f};
    f = (struct mt_qformat){.scheme = MT_QS_NF, .bits = 4, .gran = MT_QG_TENSOR};
    q = mt_qtensor_pack(row, 1, 4, &f, err, sizeof err);
    for (int i = 0; q && i < 16; i++)
        CHECK(fabsf(q->lut[i] - nf4[i]) < 1.5e-4f, "nf4 level %d = %f, want %f", i,
              (double)q->lut[i], (double)nf4[i]);
    mt_qtensor_free(q);
    return 0;
}

/* ------------------------------------------------------------ bytes */

static int test_bytes(void)
{
    struct {
        struct mt_qformat f;
        size_t n, k, bytes;
    } t[] = {
        /* k_pad 256, 4 blocks of 32 B, 4 groups/row with scale+offset */
        {{MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 64, 0}, 37, 200, 37 * 128 + 37 * 4 * 2 * 4},
        /* k_pad 256, 4 blocks of 24 B; one absmax per row; an 8-entry table */
        {{MT_QS_NF, 3, MT_QG_CHANNEL, 0, 0}, 37, 200, 37 * 96 + 37 * 4 + 8 * 4},
        /* k_pad 384 (multiple of 128), 6 blocks of 16 B; 3 groups/row, 4-entry tables */
        {{MT_QS_KMEANS, 2, MT_QG_GROUP, 128, 0}, 5, 300, 5 * 96 + 5 * 3 * 4 * 4},
        /* k_pad 128, 2 bytes each */
        {{MT_QS_BF16, 16, MT_QG_TENSOR, 0, 0}, 3, 70, 3 * 256},
        /* one scale and offset for the tensor */
        {{MT_QS_LINEAR_SYM, 8, MT_QG_TENSOR, 0, 0}, 768, 768, 768 * 768 + 8},
        /* 4-bit log, groups of 32: 24 groups/row, a 16-entry table */
        {{MT_QS_LOG, 4, MT_QG_GROUP, 32, 0}, 2, 768, 2 * 384 + 2 * 24 * 4 + 16 * 4},
        /* 8-bit kmeans per tensor: one 256-entry table */
        {{MT_QS_KMEANS, 8, MT_QG_TENSOR, 0, 0}, 4, 64, 4 * 64 + 256 * 4},
    };
    char err[256];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        float *w = gauss_matrix(t[i].n * t[i].k, 1.0f);
        struct mt_qtensor *q = mt_qtensor_pack(w, t[i].n, t[i].k, &t[i].f, err, sizeof err);
        CHECK(q, "case %zu: %s", i, err);
        if (q) {
            CHECK(mt_qtensor_bytes(q) == t[i].bytes, "case %zu (%s/%u): %zu bytes, want %zu", i,
                  mt_qscheme_name(t[i].f.scheme), t[i].f.bits, mt_qtensor_bytes(q), t[i].bytes);
            double bpw = 8.0 * (double)t[i].bytes / (double)(t[i].n * t[i].k);
            CHECK(mt_qtensor_bits_per_weight(q) == bpw, "case %zu bits/weight", i);
        }
        mt_qtensor_free(q);
        free(w);
    }
    return 0;
}

/* ------------------------------------------------------------ error ordering */

static double mse_of(const float *w, size_t n, size_t k, struct mt_qformat f)
{
    char err[256];
    struct mt_qtensor *q = mt_qtensor_pack(w, n, k, &f, err, sizeof err);
    if (!q) {
        CHECK(0, "%s", err);
        return NAN;
    }
    double mse, mx;
    mt_qtensor_error(q, w, &mse, &mx);
    mt_qtensor_free(q);
    return mse;
}

static int test_error(void)
{
    const size_t n = 192, k = 512;
    float *w = gauss_matrix(n * k, 0.02f);
    const unsigned bits[] = {8, 4, 3, 2};
    for (int s = MT_QS_LINEAR_ASYM; s < MT_QS_COUNT; s++) {
        for (int g = 0; g < MT_QG_COUNT; g++) {
            double prev = 0.0;
            for (int b = 0; b < 4; b++) {
                struct mt_qformat f = {(enum mt_qscheme)s, bits[b], (enum mt_qgran)g, 64, 3};
                double e = mse_of(w, n, k, f);
                CHECK(b == 0 || e > prev, "%s/%s: mse at %u bits (%g) not above %u bits (%g)",
                      mt_qscheme_name(f.scheme), mt_qgran_name(f.gran), bits[b], e,
                      b ? bits[b - 1] : 0, prev);
                prev = e;
            }
        }
        struct mt_qformat ft = {(enum mt_qscheme)s, 4, MT_QG_TENSOR, 0, 3};
        struct mt_qformat fg = {(enum mt_qscheme)s, 4, MT_QG_GROUP, 64, 3};
        double et = mse_of(w, n, k, ft), eg = mse_of(w, n, k, fg);
        CHECK(eg < et, "%s: 4-bit group mse %g not below tensor %g", mt_qscheme_name(ft.scheme), eg,
              et);
    }
    struct mt_qformat nf = {MT_QS_NF, 4, MT_QG_TENSOR, 0, 0};
    struct mt_qformat la = {MT_QS_LINEAR_ASYM, 4, MT_QG_TENSOR, 0, 0};
    double enf = mse_of(w, n, k, nf), ela = mse_of(w, n, k, la);
    CHECK(enf < ela, "nf4 tensor mse %g not below linear-asym 4-bit %g", enf, ela);
    printf("nf4 tensor mse %.3g, linear-asym 4-bit tensor mse %.3g\n", enf, ela);
    free(w);
    return 0;
}

/* ------------------------------------------------------------ kernels */

/* Bound on |fast - ref| for fp32 activations: both sum K terms in fp32 in different
 * orders, so each is within K*eps*S of the exact sum, where S sums the magnitudes of the
 * terms each one adds (for linear schemes the fast kernel adds x*scale*c and x*offset
 * separately). */
static float f32_bound(const struct mt_qtensor *q, const float *x, size_t r, const float *wrow)
{
    double s = 0.0;
    int lin = q->fmt.scheme == MT_QS_LINEAR_ASYM || q->fmt.scheme == MT_QS_LINEAR_SYM;
    for (size_t j = 0; j < q->k; j++) {
        double mag = fabs((double)wrow[j]);
        if (lin) {
            size_t mi = r * q->meta_row_stride + j / q->unit_len;
            mag = fabs((double)q->scale[mi] * mt_qtensor_code(q, r, j)) + fabs(q->offset[mi]);
        }
        s += fabs((double)x[j]) * mag;
    }
    return (float)(2.0 * (double)(q->k + 4) * FLT_EPSILON * s + 1e-30);
}

static int test_kernels(void)
{
    static struct fmt_case cases[128];
    size_t nc = all_formats(cases);
    const size_t shapes[][2] = {{37, 200}, {19, 320}, {7, 64}};
    const size_t ms[] = {1, 3, 5, 9};
    char err[256];
    struct mt_qws *ws = mt_qws_create();
    int have_avx = mt_qimpl_available(MT_QIMPL_AVX512, NULL, MT_QACT_F32, NULL, 0);
    size_t compared = 0;
    for (size_t si = 0; si < 3; si++) {
        size_t n = shapes[si][0], k = shapes[si][1];
        float *w = gauss_matrix(n * k, 0.05f);
        float *x = gauss_matrix(9 * k, 1.0f);
        float *wd = malloc(n * k * sizeof *wd);
        float *y0 = malloc(9 * n * sizeof *y0), *y1 = malloc(9 * n * sizeof *y1);
        for (size_t ci = 0; ci < nc; ci++) {
            struct mt_qtensor *q = mt_qtensor_pack(w, n, k, &cases[ci].f, err, sizeof err);
            if (!q) {
                CHECK(0, "%s", err);
                continue;
            }
            mt_qtensor_unpack(q, wd);
            for (size_t mi = 0; mi < 4; mi++) {
                size_t m = ms[mi];
                /* fp32 activations: the reference equals the dot with decoded weights. */
                CHECK(mt_qgemm(ws, q, x, m, y0, MT_QACT_F32, MT_QIMPL_SCALAR, err, sizeof err) == 0,
                      "%s", err);
                for (size_t i = 0; i < m; i++)
                    for (size_t r = 0; r < n; r++) {
                        double d = 0.0;
                        for (size_t j = 0; j < k; j++)
                            d += (double)x[i * k + j] * wd[r * k + j];
                        float tol = f32_bound(q, x + i * k, r, wd + r * k);
                        CHECK(fabs(d - y0[i * n + r]) <= tol, "%s ref vs decoded: %g vs %g",
                              cases[ci].label, d, (double)y0[i * n + r]);
                    }
                if (have_avx) {
                    CHECK(mt_qgemm(ws, q, x, m, y1, MT_QACT_F32, MT_QIMPL_AVX512, err,
                                   sizeof err) == 0,
                          "%s", err);
                    for (size_t i = 0; i < m; i++)
                        for (size_t r = 0; r < n; r++) {
                            float tol = f32_bound(q, x + i * k, r, wd + r * k);
                            float a = y0[i * n + r], b = y1[i * n + r];
                            CHECK(fabsf(a - b) <= tol,
                                  "%s m=%zu %zux%zu y[%zu,%zu]: ref %.9g "
                                  "avx512 %.9g (tol %.3g)",
                                  cases[ci].label, m, n, k, i, r, (double)a, (double)b,
                                  (double)tol);
                            compared++;
                        }
                }
                /* int8 activations: every available implementation equals the reference
                 * exactly. */
                if (!mt_qimpl_available(MT_QIMPL_SCALAR, q, MT_QACT_INT8, NULL, 0)) {
                    CHECK(mt_qgemm(ws, q, x, m, y0, MT_QACT_INT8, MT_QIMPL_AUTO, err, sizeof err) !=
                              0,
                          "%s: int8 accepted", cases[ci].label);
                    continue;
                }
                CHECK(mt_qgemm(ws, q, x, m, y0, MT_QACT_INT8, MT_QIMPL_SCALAR, err, sizeof err) ==
                          0,
                      "%s", err);
                for (enum mt_qimpl im = MT_QIMPL_AVX512; im <= MT_QIMPL_DNNL; im++) {
                    if (!mt_qimpl_available(im, q, MT_QACT_INT8, NULL, 0)) continue;
                    CHECK(mt_qgemm(ws, q, x, m, y1, MT_QACT_INT8, im, err, sizeof err) == 0, "%s",
                          err);
                    for (size_t i = 0; i < m * n; i++) {
                        CHECK(y0[i] == y1[i],
                              "%s int8 %s m=%zu %zux%zu y[%zu]: ref %.9g got "
                              "%.9g",
                              cases[ci].label, mt_qimpl_name(im), m, n, k, i, (double)y0[i],
                              (double)y1[i]);
                        compared++;
                    }
                }
            }
            mt_qtensor_free(q);
        }
        free(w);
        free(x);
        free(wd);
        free(y0);
        free(y1);
    }
    /* GPT-2 shapes through the threaded decode paths (strips of 16 rows, bit planes, the
     * fp32 nibble kernel) against the reference: int8 activations bit for bit, fp32
     * activations (nf4, log, kmeans, and 4-bit linear marked seed 1) within the fp32 bound. */
    {
        static const struct mt_qformat fs[] = {{MT_QS_LINEAR_SYM, 8, MT_QG_CHANNEL, 0, 0},
                                               {MT_QS_LINEAR_SYM, 4, MT_QG_GROUP, 128, 0},
                                               {MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 64, 0},
                                               {MT_QS_LINEAR_ASYM, 3, MT_QG_GROUP, 128, 0},
                                               {MT_QS_LINEAR_ASYM, 2, MT_QG_GROUP, 128, 0},
                                               {MT_QS_NF, 4, MT_QG_GROUP, 128, 0},
                                               {MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 128, 1},
                                               {MT_QS_LINEAR_SYM, 4, MT_QG_CHANNEL, 0, 1},
                                               {MT_QS_LOG, 4, MT_QG_GROUP, 128, 0},
                                               {MT_QS_KMEANS, 4, MT_QG_GROUP, 128, 3}};
        const size_t shp[][2] = {{768, 768}, {768, 3072}, {2312, 768}};
        for (size_t si = 0; si < 3; si++) {
            size_t n = shp[si][0], k = shp[si][1];
            float *w = gauss_matrix(n * k, 0.02f), *x = gauss_matrix(2 * k, 1.0f);
            float *wd = malloc(n * k * sizeof *wd);
            float *y0 = malloc(2 * n * sizeof *y0), *y1 = malloc(2 * n * sizeof *y1);
            for (size_t fi = 0; fi < sizeof fs / sizeof fs[0]; fi++) {
                struct mt_qtensor *q = mt_qtensor_pack(w, n, k, &fs[fi], err, sizeof err);
                /* seed 1 marks a linear case run with fp32 activations (the nibble kernel) */
                const int lin =
                    fs[fi].scheme == MT_QS_LINEAR_ASYM || fs[fi].scheme == MT_QS_LINEAR_SYM;
                enum mt_qact act = lin && fs[fi].seed != 1 ? MT_QACT_INT8 : MT_QACT_F32;
                if (!q || !mt_qimpl_available(MT_QIMPL_AVX512, q, act, NULL, 0)) {
                    mt_qtensor_free(q);
                    continue;
                }
                mt_qtensor_unpack(q, wd);
                for (size_t m = 1; m <= 2; m++) {
                    mt_qgemm(ws, q, x, m, y0, act, MT_QIMPL_SCALAR, err, sizeof err);
                    mt_qgemm(ws, q, x, m, y1, act, MT_QIMPL_AVX512, err, sizeof err);
                    for (size_t i = 0; i < m * n; i++) {
                        float tol = act == MT_QACT_INT8
                                        ? 0.0f
                                        : f32_bound(q, x + i / n * k, i % n, wd + i % n * k);
                        CHECK(fabsf(y0[i] - y1[i]) <= tol,
                              "%zux%zu %u-bit %s m=%zu y[%zu]: ref %.9g avx512 %.9g", n, k,
                              fs[fi].bits, mt_qscheme_name(fs[fi].scheme), m, i, (double)y0[i],
                              (double)y1[i]);
                        compared++;
                    }
                }
                mt_qtensor_free(q);
            }
            free(w), free(x), free(wd), free(y0), free(y1);
        }
    }
    /* The largest strip lanes: every code of a group at its top level but the first (the
     * group's minimum) against activations all +127 or all -127, so that the int16 folds
     * of the strip kernels (hsum16_tail) meet their largest sums of both signs, and units
     * too long for them (channel, tensor) would saturate if folded. */
    if (mt_q_cpu_vnni()) {
        static const struct mt_qformat fs[] = {{MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 128, 0},
                                               {MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 64, 0},
                                               {MT_QS_LINEAR_ASYM, 3, MT_QG_GROUP, 128, 0},
                                               {MT_QS_LINEAR_ASYM, 2, MT_QG_GROUP, 128, 0},
                                               {MT_QS_LINEAR_ASYM, 2, MT_QG_GROUP, 64, 0},
                                               {MT_QS_LINEAR_ASYM, 4, MT_QG_CHANNEL, 0, 0},
                                               {MT_QS_LINEAR_ASYM, 2, MT_QG_TENSOR, 0, 0}};
        const size_t n = 48, k = 768;
        float *w = malloc(n * k * sizeof *w), *x = malloc(2 * k * sizeof *x);
        float *y0 = malloc(2 * n * sizeof *y0), *y1 = malloc(2 * n * sizeof *y1);
        for (size_t j = 0; j < n * k; j++)
            w[j] = j % 64 ? 1.0f : 0.0f;
        for (size_t j = 0; j < k; j++) {
            x[j] = 1.0f;
            x[k + j] = -1.0f;
        }
        for (size_t fi = 0; fi < sizeof fs / sizeof fs[0]; fi++) {
            struct mt_qtensor *q = mt_qtensor_pack(w, n, k, &fs[fi], err, sizeof err);
            CHECK(q != NULL, "%s", err);
            if (!q) continue;
            for (size_t i = 0; i < 2; i++) { /* one token row of each sign */
                mt_qgemm(ws, q, x + i * k, 1, y0, MT_QACT_INT8, MT_QIMPL_SCALAR, err, sizeof err);
                mt_qgemm(ws, q, x + i * k, 1, y1, MT_QACT_INT8, MT_QIMPL_AVX512, err, sizeof err);
                for (size_t r = 0; r < n; r++) {
                    CHECK(y0[r] == y1[r],
                          "top codes %u-bit g%zu x=%+g y[%zu]: ref %.9g avx512 %.9g", fs[fi].bits,
                          fs[fi].group_size, (double)x[i * k], r, (double)y0[r], (double)y1[r]);
                    compared++;
                }
            }
            mt_qtensor_free(q);
        }
        free(w), free(x), free(y0), free(y1);
    }
    mt_qws_destroy(ws);
    printf("compared %zu outputs against the references%s\n", compared,
           have_avx ? "" : " (no AVX-512: fast kernels skipped)");
    return have_avx ? 0 : 77;
}

/* ------------------------------------------------------------ prep */

/* The AVX-512 activation preparation must give the scalar reference's exact bytes: int8
 * codes, scales and unit sums on ragged k (masked tails), all-zero rows, values that land
 * on .5 after scaling (ties to even) and the clamp at +-127. */
static int test_prep(void)
{
    if (!mt_qimpl_available(MT_QIMPL_AVX512, NULL, MT_QACT_F32, NULL, 0)) {
        printf("no AVX-512: skipped\n");
        return 77;
    }
    const size_t ks[] = {7, 64, 200, 768, 3072};
    size_t compared = 0;
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        const size_t k = ks[ki], m = 4, k_pad = (k + 127) / 128 * 128;
        float *x = gauss_matrix(m * k, 1.0f);
        for (size_t j = 0; j < k; j++)
            x[k + j] = 0.0f;           /* row 1: all zero */
        for (size_t j = 0; j < k; j++) /* row 2: max 127, so x * 127/127 = x: ties at .5 */
            x[2 * k + j] = (float)((int)(j % 253) - 126) + (j % 3 ? 0.5f : 0.0f);
        x[2 * k] = 127.0f;
        for (size_t unit = 32; unit <= k_pad; unit *= 2) {
            if (k_pad % unit) continue;
            int8_t *a0 = malloc(m * k_pad), *a1 = malloc(m * k_pad);
            float s0[4], s1[4];
            int32_t *u0 = calloc(m * k_pad / unit, 4), *u1 = calloc(m * k_pad / unit, 4);
            memset(a1, 0x55, m * k_pad); /* padding must be written as 0 */
            mt_q_quantize_rows(x, m, k, k_pad, unit, a0, s0, u0);
            mt_q_quantize_rows_avx512(x, m, k, k_pad, unit, a1, s1, u1);
            CHECK(memcmp(a0, a1, m * k_pad) == 0 && memcmp(s0, s1, sizeof s0) == 0 &&
                      memcmp(u0, u1, m * k_pad / unit * 4) == 0,
                  "k=%zu unit=%zu: AVX-512 int8 activations differ from the reference", k, unit);
            CHECK(s0[1] == 0.0f && a0[k_pad] == 0, "k=%zu: zero row", k);
            compared++;
            free(a0), free(a1), free(u0), free(u1);
        }
        free(x);
    }
    printf("compared %zu preparations\n", compared);
    return 0;
}

/* ------------------------------------------------------------ reject */

static int test_reject(void)
{
    char err[256] = "";
    float w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct mt_qformat f = {MT_QS_LINEAR_ASYM, 5, MT_QG_CHANNEL, 0, 0};
    CHECK(!mt_qtensor_pack(w, 2, 4, &f, err, sizeof err) && strstr(err, "bits"), "5 bits: %s", err);
    f = (struct mt_qformat){MT_QS_NF, 4, MT_QG_GROUP, 48, 0};
    CHECK(!mt_qtensor_pack(w, 2, 4, &f, err, sizeof err) && strstr(err, "group_size"),
          "group 48: %s", err);
    f = (struct mt_qformat){MT_QS_FP16, 8, MT_QG_TENSOR, 0, 0};
    CHECK(!mt_qtensor_pack(w, 2, 4, &f, err, sizeof err) && strstr(err, "bits=16"), "fp16/8");
    f = (struct mt_qformat){MT_QS_LINEAR_SYM, 4, MT_QG_TENSOR, 0, 0};
    w[5] = NAN;
    CHECK(!mt_qtensor_pack(w, 2, 4, &f, err, sizeof err) && strstr(err, "row 1"), "NaN: %s", err);
    w[5] = 6;
    enum mt_qscheme s;
    CHECK(mt_qscheme_from_name("nf", &s) == 0 && s == MT_QS_NF, "name nf");
    CHECK(mt_qscheme_from_name("nf4", &s) == -1, "name nf4 accepted");
    f = (struct mt_qformat){MT_QS_KMEANS, 4, MT_QG_TENSOR, 0, 0};
    struct mt_qtensor *q = mt_qtensor_pack(w, 2, 4, &f, err, sizeof err);
    struct mt_qws *ws = mt_qws_create();
    float y[2];
    CHECK(q && mt_qgemm(ws, q, w, 1, y, MT_QACT_INT8, MT_QIMPL_AUTO, err, sizeof err) == -1 &&
              strstr(err, "linear"),
          "int8 activations with kmeans: %s", err);
    CHECK(q && mt_qgemm(ws, q, w, 1, y, MT_QACT_INT8, MT_QIMPL_DNNL, err, sizeof err) == -1,
          "dnnl with kmeans");
    mt_qws_destroy(ws);
    mt_qtensor_free(q);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(void);
    } cases[] = {{"convert", test_convert}, {"roundtrip", test_roundtrip}, {"bytes", test_bytes},
                 {"error", test_error},     {"kernels", test_kernels},     {"reject", test_reject},
                 {"prep", test_prep}};
    if (argc != 2) {
        fprintf(stderr, "usage: %s convert|roundtrip|bytes|error|kernels|reject|prep\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(argv[1], cases[i].name) == 0) {
            int rc = cases[i].fn();
            if (failures) {
                fprintf(stderr, "%s: %d failures\n", argv[1], failures);
                return 1;
            }
            return rc;
        }
    fprintf(stderr, "unknown case %s\n", argv[1]);
    return 2;
}
