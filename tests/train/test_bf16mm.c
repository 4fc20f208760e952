/* test_bf16mm.c — the backward products of the bf16 engine's linear layers through
 * oneDNN's bf16 matmul against the scalar definition (mt_bf16mm_gemm_ref: exact bf16
 * products summed in fp32 in k order):
 *   dinp[N,C]  = dout[N,OC] @ W[OC,C]          (ta 0, tb 0, overwrite)
 *   dW[OC,C]  += dout[N,OC]^T @ in[N,C]        (ta 1, tb 0, sum post-op into fp32)
 * and the remaining transpose (ta 1, tb 1) and the forward (tb 1) through the general
 * entry, on the model's shapes and odd ones. bf16 inputs are exact, so the only
 * difference is fp32 summation order: every element must be within 1e-5 of
 * (sum of |products| + |initial out|). Accumulation is checked over two calls (the
 * second one on the cached primitive), so a product that overwrote instead of adding, or
 * added twice, fails.
 * What it is not for: training with these products (test_engine.c).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bf16mm.h"
#include "half.h"
#include "rng.h"
#include "tf_test.h"

#define TOL 1e-5

static uint16_t *random_bf16(struct mt_rng *rng, size_t n, double scale)
{
    uint16_t *x = malloc(n * sizeof *x);
    CHECK(x);
    for (size_t i = 0; i < n; i++)
        x[i] = mt_half_from_float(MT_PREC_BF16, (float)(scale * mt_rng_normal(rng)));
    return x;
}

static float bf(const uint16_t *x, size_t i)
{
    return mt_half_to_float(MT_PREC_BF16, x[i]);
}

/* Worst |fast - ref| / (sum |products| + |bias| + |init|) over out, in double. */
static double worst_error(const struct mt_bf16mm_shape *k, const float *fast, const float *ref,
                          const uint16_t *a, const uint16_t *b, const float *bias,
                          const float *init)
{
    double worst = 0.0;
    for (size_t i = 0; i < k->M; i++)
        for (size_t j = 0; j < k->N; j++) {
            double mag = (bias ? fabs(bias[j]) : 0.0) + (init ? fabs(init[i * k->N + j]) : 0.0);
            for (size_t q = 0; q < k->K; q++)
                mag += fabs((double)bf(a, k->ta ? q * k->M + i : i * k->K + q) *
                            bf(b, k->tb ? j * k->K + q : q * k->N + j));
            double d = fabs((double)fast[i * k->N + j] - ref[i * k->N + j]) / (mag + 1e-30);
            worst = d > worst ? d : worst;
        }
    return worst;
}

static void product(struct mt_bf16mm *mm, const char *what, struct mt_bf16mm_shape k,
                    int with_bias)
{
    struct mt_rng rng;
    mt_rng_seed(&rng, k.M * 131 + k.N * 7 + k.K + (size_t)k.ta * 2 + (size_t)k.tb);
    size_t na = k.M * k.K, nb = k.K * k.N, no = k.M * k.N;
    uint16_t *a = random_bf16(&rng, na, 1.0), *b = random_bf16(&rng, nb, 0.02);
    float *bias = malloc(k.N * sizeof *bias), *init = malloc(no * sizeof *init);
    float *fast = malloc(no * sizeof *fast), *ref = malloc(no * sizeof *ref);
    CHECK(bias && init && fast && ref);
    for (size_t j = 0; j < k.N; j++)
        bias[j] = (float)mt_rng_normal(&rng);
    for (size_t i = 0; i < no; i++)
        init[i] = k.accumulate ? (float)mt_rng_normal(&rng) : NAN; /* overwrite: ignored */
    memcpy(fast, init, no * sizeof *fast);
    memcpy(ref, init, no * sizeof *ref);
    const float *bp = with_bias ? bias : NULL;
    char err[256];
    double worst = 0.0;
    for (int call = 0; call < 2; call++) { /* create, then the cached primitive */
        CHECK_OK(mt_bf16mm_gemm(mm, &k, fast, a, b, bp, err, sizeof err), err);
        float *before = malloc(no * sizeof *before);
        CHECK(before);
        memcpy(before, ref, no * sizeof *ref);
        mt_bf16mm_gemm_ref(&k, ref, a, b, bp);
        double w = worst_error(&k, fast, ref, a, b, bp, k.accumulate ? before : NULL);
        worst = w > worst ? w : worst;
        free(before);
        for (size_t i = 0; i < no; i++)
            CHECK(isfinite(fast[i]));
    }
    printf("%-22s %4zux%4zux%4zu ta %d tb %d%s%s: worst error %.2e\n", what, k.M, k.N, k.K, k.ta,
           k.tb, k.accumulate ? " +=" : "", with_bias ? " + bias" : "", worst);
    CHECK(worst < TOL);
    free(a), free(b), free(bias), free(init), free(fast), free(ref);
}

/* Both backward products of one linear layer in[N,C] -> out[N,OC]. */
static void layer(struct mt_bf16mm *mm, const char *name, size_t N, size_t C, size_t OC)
{
    char what[64];
    snprintf(what, sizeof what, "%s dinp", name);
    product(mm, what, (struct mt_bf16mm_shape){.M = N, .N = C, .K = OC}, 0);
    snprintf(what, sizeof what, "%s dW", name);
    product(mm, what, (struct mt_bf16mm_shape){.M = OC, .N = C, .K = N, .ta = 1, .accumulate = 1},
            0);
}

int main(void)
{
    if (!mt_bf16mm_native()) {
        printf("oneDNN has no native bf16 matmul on this CPU: nothing to check\n");
        return 0;
    }
    char err[256];
    struct mt_bf16mm *mm = NULL;
    CHECK_OK(mt_bf16mm_create(&mm, err, sizeof err), err);
    /* tiny, B 4 T 64: N = 256, C = 64, vocab 256 */
    layer(mm, "qkv", 256, 64, 192);
    layer(mm, "attn proj", 256, 64, 64);
    layer(mm, "fc", 256, 64, 256);
    layer(mm, "fc proj", 256, 256, 64);
    layer(mm, "lm head", 256, 64, 256);
    layer(mm, "odd", 7, 33, 5);
    layer(mm, "one row", 1, 48, 17);
    product(mm, "forward (general)", (struct mt_bf16mm_shape){.M = 37, .N = 29, .K = 41, .tb = 1},
            1);
    product(mm, "both transposed +=",
            (struct mt_bf16mm_shape){.M = 19, .N = 23, .K = 31, .ta = 1, .tb = 1, .accumulate = 1},
            1);
    mt_bf16mm_free(mm);
    printf("ok\n");
    return 0;
}
