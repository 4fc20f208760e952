/* calib_layer.h — one seeded linear layer with correlated inputs, for the layer-level
 * tests of calibrated compression (quantize's GPTQ/AWQ/SmoothQuant/HQQ, prune's SparseGPT).
 *
 * What it is for: w (n x k, normal with sd 0.05), inputs X = Z A (rows x k; Z standard
 * normal with every 17th channel 4 times as wide, A the identity plus a dense random
 * mixing of sd 0.2), their Gram matrix X^T X and mean x^2
 * per channel, all from one mt_rng seed in a fixed order; and the output error
 * ||X W^T - X V^T||_F of a compressed v. Header only (static functions), no model.
 * What it is not for: the methods themselves, or model-level claims.
 */
#ifndef MT_TESTS_CALIB_LAYER_H
#define MT_TESTS_CALIB_LAYER_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "rng.h"

struct mt_test_layer {
    size_t n, k, rows;
    float *w;   /* n x k */
    float *x;   /* rows x k */
    float *g;   /* k x k: X^T X */
    float *imp; /* k: mean x^2 */
};

/* Fills t (allocating; free with mt_test_layer_free) from `seed`. */
static inline void mt_test_layer_make(struct mt_test_layer *t, size_t n, size_t k, size_t rows,
                                      uint64_t seed)
{
    struct mt_rng rng;
    mt_rng_seed(&rng, seed);
    t->n = n, t->k = k, t->rows = rows;
    t->w = malloc(n * k * sizeof *t->w), t->x = malloc(rows * k * sizeof *t->x);
    t->g = calloc(k * k, sizeof *t->g), t->imp = calloc(k, sizeof *t->imp);
    float *a = malloc(k * k * sizeof *a), *z = malloc(rows * k * sizeof *z);
    for (size_t i = 0; i < n * k; i++)
        t->w[i] = (float)(0.05 * mt_rng_normal(&rng));
    for (size_t i = 0; i < k * k; i++) /* mixing: identity plus dense random correlation */
        a[i] = (float)((i / k == i % k ? 1.0 : 0.0) + 0.2 * mt_rng_normal(&rng));
    for (size_t i = 0; i < rows * k; i++)
        z[i] = (float)mt_rng_normal(&rng) * (float)(1.0 + 3.0 * ((i % k) % 17 == 0));
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < k; j++) {
            double s = 0.0;
            for (size_t q = 0; q < k; q++)
                s += (double)z[r * k + q] * a[q * k + j];
            t->x[r * k + j] = (float)s;
        }
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < k; i++) {
            const float *xr = t->x + r * k;
            t->imp[i] += xr[i] * xr[i] / (float)rows;
            for (size_t j = 0; j < k; j++)
                t->g[i * k + j] += xr[i] * xr[j];
        }
    free(a), free(z);
}

/* ||X W^T - X V^T||_F for a compressed v (n x k, dense). */
static inline double mt_test_layer_output_error(const struct mt_test_layer *t, const float *v)
{
    double e = 0.0;
    for (size_t r = 0; r < t->rows; r++)
        for (size_t o = 0; o < t->n; o++) {
            double s = 0.0;
            for (size_t j = 0; j < t->k; j++)
                s += (double)t->x[r * t->k + j] * (t->w[o * t->k + j] - v[o * t->k + j]);
            e += s * s;
        }
    return sqrt(e);
}

static inline void mt_test_layer_free(struct mt_test_layer *t)
{
    free(t->w), free(t->x), free(t->g), free(t->imp);
}

#endif
