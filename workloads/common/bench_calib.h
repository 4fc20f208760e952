/* bench_calib.h — the calibrated methods' speed benchmark on the GPT-2 124M block shapes,
 * shared by mt-bench-quant --gptq and mt-bench-sparse --sparsegpt. Header only.
 *
 * What it is for: one layer of a GPT-2 124M block at a time (qkv 2304 x 768, attn_proj
 * 768 x 768, fc 3072 x 768, fc_proj 768 x 3072), random weights and `rows` random
 * correlated calibration tokens: the time of the Hessian (X^T X, oneDNN) and of the
 * damped inverse factorization (calib.h, LAPACK) that GPTQ and SparseGPT share; the
 * caller times its own pass (rounding or pruning with the error updates) and the report
 * prints the time per layer and the shares. What it is not for: accuracy (the tests).
 */
#ifndef MT_WL_BENCH_CALIB_H
#define MT_WL_BENCH_CALIB_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <oneapi/dnnl/dnnl.h>

#include "bench_util.h"
#include "calib.h"

#define MT_BENCH_CALIB_LAYERS 4

/* One layer: its weights w (n x k) and the inverse-Hessian factor u (k x k). */
struct mt_bench_calib_layer {
    const char *name;
    size_t n, k;
    float *w, *u;
    double hessian_s, factor_s; /* X^T X; the damped inverse's factorization */
};

/* Contract: fills *c for layer l (0..3) with `rows` calibration tokens and damping 0.01;
 * returns 0, or -1 with the reason printed. Free with mt_bench_calib_free. */
static inline int mt_bench_calib_layer(int l, size_t rows, struct mt_bench_calib_layer *c)
{
    static const size_t sn[4] = {2304, 768, 3072, 768}, sk[4] = {768, 768, 768, 3072};
    static const char *const names[4] = {"qkv", "attn_proj", "fc", "fc_proj"};
    char err[256];
    size_t n = sn[l], k = sk[l];
    *c = (struct mt_bench_calib_layer){names[l], n, k, mt_bench_gauss(n * k, 11 + (uint64_t)l),
                                       malloc(k * k * sizeof(float)), 0, 0};
    float *x = mt_bench_gauss(rows * k, 21 + (uint64_t)l), *g = calloc(k * k, sizeof *g);
    int rc = !c->w || !c->u || !x || !g ? (fprintf(stderr, "out of memory\n"), -1) : 0;
    for (size_t i = 1; rc == 0 && i < rows * k; i++) /* correlate neighbouring channels */
        x[i] += 0.5f * x[i - 1];
    double t0 = mt_bench_now();
    if (rc == 0)
        dnnl_sgemm('T', 'N', (dnnl_dim_t)k, (dnnl_dim_t)k, (dnnl_dim_t)rows, 1.0f, x, (dnnl_dim_t)k,
                   x, (dnnl_dim_t)k, 0.0f, g, (dnnl_dim_t)k);
    double t1 = mt_bench_now();
    if (rc == 0 && mt_calib_inverse_factor(g, k, NULL, 0.01, c->u, NULL, err, sizeof err))
        rc = -1, fprintf(stderr, "%s\n", err);
    c->hessian_s = t1 - t0, c->factor_s = mt_bench_now() - t1;
    free(x), free(g);
    return rc;
}

static inline void mt_bench_calib_free(struct mt_bench_calib_layer *c)
{
    free(c->w), free(c->u);
}

/* Prints one layer's line (pass_s: the method's own pass) and adds it to tot[3]. */
static inline void mt_bench_calib_line(const struct mt_bench_calib_layer *c, double pass_s,
                                       const char *pass, double tot[3])
{
    printf("  %-9s %4zu x %4zu: %7.3f s (hessian %.3f, factor %.3f, %s %.3f)\n", c->name, c->n,
           c->k, c->hessian_s + c->factor_s + pass_s, c->hessian_s, c->factor_s, pass, pass_s);
    tot[0] += c->hessian_s, tot[1] += c->factor_s, tot[2] += pass_s;
}

/* Prints the block's total, the 12-layer model's and the three shares. */
static inline void mt_bench_calib_total(const double tot[3], const char *pass)
{
    double all = tot[0] + tot[1] + tot[2];
    printf("  block total %.3f s (x12 layers: %.1f s): hessian %.1f %%, factorization %.1f %%, "
           "%s %.1f %%\n",
           all, 12 * all, 100 * tot[0] / all, 100 * tot[1] / all, pass, 100 * tot[2] / all);
}

#endif
