/* test_half.c — bf16/fp16 conversions: the fast paths (AVX512-BF16, F16C) equal the
 * scalar reference bit for bit on normal inputs, the reference rounds to nearest even
 * (known ties, fp16 subnormals, overflow to inf, NaN stays NaN), unpack is exact, and
 * accumulation counts contributions that flush to zero; oneDNN's bf16 matmul equals the
 * scalar bf16 GEMM (exact products summed in fp32) within 1e-5 of the sum of |products|,
 * on the model's shapes, with and without bias. mt_half_sumsq (the 16-bit part of the one
 * gradient norm) is mt_k_sumsq of each decoded chunk added in order, bit for bit, and
 * within 1e-12 (relative) of the sum in one span whatever the chunk.
 * What it is not for: training (test_engine.c).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bf16mm.h"
#include "half.h"
#include "kernels.h"
#include "rng.h"
#include "tf_test.h"

static float f_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void known_values(void)
{
    /* bf16: 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even mantissa (1) wins; 1 + 3*2^-8
     * is a tie between 1+2^-7 (odd) and 1+2^-6 (even). */
    CHECK(mt_half_from_float(MT_PREC_BF16, 1.0f) == 0x3f80);
    CHECK(mt_half_from_float(MT_PREC_BF16, f_of(0x3f808000u)) == 0x3f80);
    CHECK(mt_half_from_float(MT_PREC_BF16, f_of(0x3f818000u)) == 0x3f82);
    CHECK(mt_half_from_float(MT_PREC_BF16, f_of(0x3f808001u)) == 0x3f81);
    CHECK(mt_half_from_float(MT_PREC_BF16, INFINITY) == 0x7f80);
    CHECK(isnan(mt_half_to_float(MT_PREC_BF16, mt_half_from_float(MT_PREC_BF16, NAN))));
    CHECK(mt_half_from_float(MT_PREC_BF16, f_of(0x7f7fffffu)) == 0x7f80); /* FLT_MAX -> inf */
    /* fp16 */
    CHECK(mt_half_from_float(MT_PREC_FP16, 1.0f) == 0x3c00);
    CHECK(mt_half_from_float(MT_PREC_FP16, 65504.0f) == 0x7bff);
    CHECK(mt_half_from_float(MT_PREC_FP16, 65519.0f) == 0x7bff);
    CHECK(mt_half_from_float(MT_PREC_FP16, 65520.0f) == 0x7c00);
    CHECK(mt_half_from_float(MT_PREC_FP16, -1e6f) == 0xfc00);
    CHECK(mt_half_from_float(MT_PREC_FP16, ldexpf(1.0f, -24)) == 0x0001);
    CHECK(mt_half_from_float(MT_PREC_FP16, ldexpf(1.0f, -25)) == 0x0000); /* tie -> even 0 */
    CHECK(mt_half_from_float(MT_PREC_FP16, ldexpf(1.5f, -25)) == 0x0001);
    CHECK(mt_half_from_float(MT_PREC_FP16, ldexpf(3.0f, -25)) == 0x0002); /* tie -> even 2 */
    CHECK(mt_half_from_float(MT_PREC_FP16, ldexpf(1.0f, -14)) == 0x0400);
    CHECK(mt_half_from_float(MT_PREC_FP16, 1.0f + ldexpf(1.0f, -11)) == 0x3c00); /* tie */
    CHECK(mt_half_from_float(MT_PREC_FP16, 1.0f + ldexpf(3.0f, -11)) == 0x3c02);
    CHECK(mt_half_from_float(MT_PREC_FP16, -0.0f) == 0x8000);
    CHECK((mt_half_from_float(MT_PREC_FP16, NAN) & 0x7c00) == 0x7c00 &&
          (mt_half_from_float(MT_PREC_FP16, NAN) & 0x3ff) != 0);
    CHECK(mt_half_to_float(MT_PREC_FP16, 0x0001) == ldexpf(1.0f, -24));
    CHECK(mt_half_to_float(MT_PREC_FP16, 0x7bff) == 65504.0f);
    CHECK(mt_half_to_float(MT_PREC_FP16, 0xc000) == -2.0f);
}

/* Every 16-bit pattern round-trips: to float and back gives the same bits (NaNs stay
 * NaN). */
static void round_trip(enum mt_prec p)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = mt_half_to_float(p, (uint16_t)h);
        if (isnan(f)) continue;
        CHECK(mt_half_from_float(p, f) == h);
    }
}

/* Fast versus reference on values spread over the whole normal range and the fp16
 * subnormal range, lengths with tails that exercise the scalar remainder. */
static void fast_vs_ref(enum mt_prec p)
{
    enum { N = 4099 };
    static float x[N], back_fast[N], back_ref[N];
    static uint16_t hf[N], hr[N];
    struct mt_rng rng;
    mt_rng_seed(&rng, 7 + (uint64_t)p);
    for (size_t i = 0; i < N; i++) {
        double e = -30.0 + 50.0 * mt_rng_uniform(&rng);
        x[i] = (float)(mt_rng_normal(&rng) * pow(2.0, e));
    }
    x[0] = INFINITY, x[1] = -INFINITY, x[2] = NAN, x[3] = 0.0f, x[4] = -0.0f;
    x[5] = 65519.0f, x[6] = 65520.0f, x[7] = f_of(0x3f808000u), x[8] = ldexpf(3.0f, -25);
    mt_half_pack(p, hf, x, N);
    mt_half_pack_ref(p, hr, x, N);
    for (size_t i = 0; i < N; i++) {
        if (isnan(x[i]))
            CHECK(isnan(mt_half_to_float(p, hf[i])));
        else if (hf[i] != hr[i]) {
            fprintf(stderr, "%s: x=%a fast %04x ref %04x\n", mt_prec_name(p), (double)x[i], hf[i],
                    hr[i]);
            CHECK(0);
        }
    }
    mt_half_unpack(p, back_fast, hr, N);
    mt_half_unpack_ref(p, back_ref, hr, N);
    CHECK(memcmp(back_fast, back_ref, sizeof back_fast) == 0);
    printf("%s: fast path %s, %d values equal the reference\n", mt_prec_name(p),
           mt_half_fast(p) ? "on" : "off (scalar)", N);
}

static void sumsq(enum mt_prec p)
{
    enum { N = 40000 };
    static uint16_t h[N];
    static float f[N], buf[N];
    for (size_t i = 0; i < N; i++)
        h[i] = mt_half_from_float(p, (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f);
    mt_half_unpack(p, f, h, N);
    double whole = mt_k_sumsq(f, N);
    static const size_t chunks[] = {1, 2048, 16384, 39999, N, 2 * N};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        size_t k = chunks[c];
        double want = 0.0; /* the engines' loop this function replaced */
        for (size_t i = 0; i < N; i += k)
            want += mt_k_sumsq(f + i, N - i < k ? N - i : k);
        double got = mt_half_sumsq(p, h, N, buf, k);
        CHECK(memcmp(&got, &want, sizeof got) == 0);
        CHECK(fabs(got - whole) <= 1e-12 * whole);
    }
    CHECK(mt_k_grad_norm(whole, 1.0f) == (float)sqrt(whole));
    CHECK(mt_k_grad_norm(whole, 8.0f) == (float)sqrt(whole) / 8.0f);
}

static void accumulate(void)
{
    uint16_t g[4] = {0, 0, 0, 0};
    float d[4] = {1.0f, 1e-9f, 0.0f, 3e-8f}; /* fp16: 1e-9 flushes, 3e-8 -> 2^-24 */
    size_t nz = 0, fl = 0;
    mt_half_accumulate(MT_PREC_FP16, g, d, 4, &nz, &fl);
    CHECK(nz == 3 && fl == 1);
    CHECK(g[0] == 0x3c00 && g[1] == 0 && g[2] == 0 && g[3] == 0x0001);
    mt_half_accumulate(MT_PREC_FP16, g, d, 4, &nz, &fl); /* 1 + 1 = 2 */
    CHECK(nz == 6 && fl == 2 && g[0] == 0x4000);
    nz = fl = 0;
    mt_half_accumulate(MT_PREC_BF16, g, d, 4, &nz, &fl); /* bf16 has fp32's range */
    CHECK(nz == 3 && fl == 0);
    uint16_t inf = 0x7c00, fine = 0x3c00;
    CHECK(mt_half_nonfinite(MT_PREC_FP16, &inf, 1) && !mt_half_nonfinite(MT_PREC_FP16, &fine, 1));
    float r[2] = {1.0f + ldexpf(1.0f, -9), 3.0f};
    mt_half_round(MT_PREC_BF16, r, 2);
    CHECK(r[0] == 1.0f && r[1] == 3.0f);
}

static void bf16_gemm(size_t N, size_t C, size_t OC, int with_bias)
{
    uint16_t *in = malloc(N * C * 2), *w = malloc(OC * C * 2);
    float *bias = malloc(OC * sizeof *bias), *fast = malloc(N * OC * 4), *ref = malloc(N * OC * 4);
    CHECK(in && w && bias && fast && ref);
    struct mt_rng rng;
    mt_rng_seed(&rng, N * 31 + C);
    for (size_t i = 0; i < N * C; i++)
        in[i] = mt_half_from_float(MT_PREC_BF16, (float)mt_rng_normal(&rng));
    for (size_t i = 0; i < OC * C; i++)
        w[i] = mt_half_from_float(MT_PREC_BF16, (float)(0.02 * mt_rng_normal(&rng)));
    for (size_t i = 0; i < OC; i++)
        bias[i] = (float)mt_rng_normal(&rng);
    char err[256];
    struct mt_bf16mm *mm = NULL;
    CHECK_OK(mt_bf16mm_create(&mm, err, sizeof err), err);
    CHECK_OK(mt_bf16mm_run(mm, fast, in, w, with_bias ? bias : NULL, N, C, OC, err, sizeof err),
             err);
    CHECK_OK(mt_bf16mm_run(mm, fast, in, w, with_bias ? bias : NULL, N, C, OC, err, sizeof err),
             err); /* the cached primitive */
    mt_bf16mm_ref(ref, in, w, with_bias ? bias : NULL, N, C, OC);
    double worst = 0.0;
    for (size_t i = 0; i < N; i++)
        for (size_t o = 0; o < OC; o++) {
            double mag = with_bias ? fabs(bias[o]) : 0.0;
            for (size_t k = 0; k < C; k++)
                mag += fabs(mt_half_to_float(MT_PREC_BF16, in[i * C + k]) *
                            mt_half_to_float(MT_PREC_BF16, w[o * C + k]));
            double d = fabs((double)fast[i * OC + o] - ref[i * OC + o]) / (mag + 1e-30);
            worst = d > worst ? d : worst;
        }
    printf("bf16 GEMM %zux%zux%zu%s: worst error %.2e of sum |products|\n", N, C, OC,
           with_bias ? " + bias" : "", worst);
    CHECK(worst < 1e-5);
    mt_bf16mm_free(mm);
    free(in), free(w), free(bias), free(fast), free(ref);
}

int main(void)
{
    known_values();
    round_trip(MT_PREC_BF16);
    round_trip(MT_PREC_FP16);
    fast_vs_ref(MT_PREC_BF16);
    fast_vs_ref(MT_PREC_FP16);
    accumulate();
    sumsq(MT_PREC_BF16);
    sumsq(MT_PREC_FP16);
    if (mt_bf16mm_native()) {
        bf16_gemm(256, 64, 192, 1); /* tiny: qkv */
        bf16_gemm(256, 256, 64, 1); /* fc projection */
        bf16_gemm(256, 64, 256, 0); /* LM head */
        bf16_gemm(7, 33, 5, 1);     /* odd shapes */
    } else {
        printf("oneDNN has no native bf16 matmul on this CPU: GEMM check skipped\n");
    }
    printf("ok\n");
    return 0;
}
