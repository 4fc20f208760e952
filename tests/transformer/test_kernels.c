/* test_kernels.c — every fast kernel against its scalar reference.
 *
 * What it is for: holding kernels.c to kernels_ref.c on awkward shapes (sizes that are
 * not multiples of any vector width or block). Tolerance: |fast - ref| <= 1e-5 *
 * max|ref| + 1e-4 * |ref| element-wise (float summation order differs; the exp/tanh
 * polynomials are within 3e-7 relative, checked over [-87, 88]). AdamW and sums of squares must
 * agree to 1e-6 relative. Also checks the accumulation conventions (= versus +=) by starting
 * outputs non-zero. What it is not for: gradients of the model (test_grad.c).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "rng.h"
#include "tf_adamw.h"
#include "tf_test.h"

static struct mt_rng rng;
static int failures;

static float *randv(size_t n, float scale)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)mt_rng_normal(&rng) * scale;
    return v;
}

static float *copyv(const float *x, size_t n)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    memcpy(v, x, n * sizeof *v);
    return v;
}

static void expect_close(const char *what, const float *fast, const float *ref, size_t n,
                         double rtol)
{
    double maxref = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
        maxref = fabs(ref[i]) > maxref ? fabs(ref[i]) : maxref;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)fast[i] - ref[i]);
        double tol = 1e-5 * maxref + rtol * fabs(ref[i]);
        worst = d / (maxref + 1e-30) > worst ? d / (maxref + 1e-30) : worst;
        if (!(d <= tol)) {
            printf("FAIL %s[%zu]: fast %.9g ref %.9g\n", what, i, fast[i], ref[i]);
            failures++;
            return;
        }
    }
    printf("%-22s n=%-7zu max err / max|ref| = %.2e\n", what, n, worst);
}

int main(void)
{
    mt_rng_seed(&rng, 2024);
    const size_t N = 37, C = 72, OC = 100, B = 3, T = 17, NH = 4, V = 300;

    { /* matmul forward and backward */
        float *inp = randv(N * C, 1), *w = randv(OC * C, 0.1f), *bias = randv(OC, 0.1f);
        float *o1 = randv(N * OC, 1), *o2 = copyv(o1, N * OC);
        mt_k_matmul_fwd(o1, inp, w, bias, N, C, OC);
        mt_k_matmul_fwd_ref(o2, inp, w, bias, N, C, OC);
        expect_close("matmul_fwd", o1, o2, N * OC, 1e-4);
        mt_k_matmul_fwd(o1, inp, w, NULL, N, C, OC);
        mt_k_matmul_fwd_ref(o2, inp, w, NULL, N, C, OC);
        expect_close("matmul_fwd nobias", o1, o2, N * OC, 1e-4);
        mt_k_matmul_fwd(o1, inp, w, bias, 1, C, OC); /* one row: the GEMV path */
        mt_k_matmul_fwd_ref(o2, inp, w, bias, 1, C, OC);
        expect_close("matmul_fwd one row", o1, o2, OC, 1e-4);
        /* counted: two primitives above, the GEMV neither; a refused primitive (forced)
         * runs dnnl_sgemm, gives the same product and is counted as a fallback */
        struct mt_k_matmul_counts k0, k1;
        mt_k_matmul_counts(&k0);
        CHECK(k0.prims == 2 && k0.fallbacks == 0);
        setenv("MT_TEST_MATMUL_FALLBACK", "1", 1);
        mt_k_matmul_fwd(o1, inp, w, bias, N, C, OC);
        unsetenv("MT_TEST_MATMUL_FALLBACK");
        mt_k_matmul_fwd_ref(o2, inp, w, bias, N, C, OC);
        expect_close("matmul_fwd fallback", o1, o2, N * OC, 1e-4);
        mt_k_matmul_counts(&k1);
        CHECK(k1.prims == 2 && k1.fallbacks == 1);
        float *dout = randv(N * OC, 1), *di1 = randv(N * C, 1), *di2 = copyv(di1, N * C);
        float *dw1 = randv(OC * C, 1), *dw2 = copyv(dw1, OC * C);
        float *db1 = randv(OC, 1), *db2 = copyv(db1, OC);
        mt_k_matmul_bwd(di1, dw1, db1, dout, inp, w, N, C, OC);
        mt_k_matmul_bwd_ref(di2, dw2, db2, dout, inp, w, N, C, OC);
        expect_close("matmul_bwd dinp", di1, di2, N * C, 1e-4);
        expect_close("matmul_bwd dw", dw1, dw2, OC * C, 1e-4);
        expect_close("matmul_bwd dbias", db1, db2, OC, 1e-4);
        free(inp), free(w), free(bias), free(o1), free(o2), free(dout), free(di1), free(di2);
        free(dw1), free(dw2), free(db1), free(db2);
    }
    { /* column sums over a strided matrix (bias gradients): rows summed in order, exact */
        float *src = randv(53 * 80, 1), *d1 = randv(77, 1), *d2 = copyv(d1, 77);
        mt_k_colsum_add(d1, src, 53, 77, 80);
        mt_k_colsum_add_ref(d2, src, 53, 77, 80);
        expect_close("colsum_add", d1, d2, 77, 0);
        free(src), free(d1), free(d2);
    }
    { /* encoder */
        int inp[3 * 17];
        for (size_t i = 0; i < B * T; i++)
            inp[i] = (int)mt_rng_below(&rng, 5); /* repeats exercise the scatter-add */
        float *wte = randv(5 * C, 1), *wpe = randv(T * C, 1);
        float *o1 = randv(B * T * C, 1), *o2 = copyv(o1, B * T * C);
        mt_k_encoder_fwd(o1, inp, wte, wpe, B, T, C);
        mt_k_encoder_fwd_ref(o2, inp, wte, wpe, B, T, C);
        expect_close("encoder_fwd", o1, o2, B * T * C, 0);
        float *dout = randv(B * T * C, 1), *e1 = randv(5 * C, 1), *e2 = copyv(e1, 5 * C);
        float *p1 = randv(T * C, 1), *p2 = copyv(p1, T * C);
        mt_k_encoder_bwd(e1, p1, dout, inp, B, T, C);
        mt_k_encoder_bwd_ref(e2, p2, dout, inp, B, T, C);
        expect_close("encoder_bwd dwte", e1, e2, 5 * C, 1e-6);
        expect_close("encoder_bwd dwpe", p1, p2, T * C, 1e-6);
        free(wte), free(wpe), free(o1), free(o2), free(dout), free(e1), free(e2), free(p1);
        free(p2);
    }
    { /* layernorm */
        float *inp = randv(N * C, 2), *w = randv(C, 1), *b = randv(C, 1);
        float *o1 = randv(N * C, 1), *o2 = copyv(o1, N * C), m1[37], m2[37], r1[37], r2[37];
        for (size_t i = 0; i < N * C; i++)
            inp[i] += 3.0f; /* a non-zero mean */
        mt_k_layernorm_fwd(o1, m1, r1, inp, w, b, N, C);
        mt_k_layernorm_fwd_ref(o2, m2, r2, inp, w, b, N, C);
        expect_close("layernorm_fwd", o1, o2, N * C, 1e-4);
        expect_close("layernorm_fwd mean", m1, m2, N, 1e-5);
        expect_close("layernorm_fwd rstd", r1, r2, N, 1e-5);
        float *dout = randv(N * C, 1), *di1 = randv(N * C, 1), *di2 = copyv(di1, N * C);
        float *dw1 = randv(C, 1), *dw2 = copyv(dw1, C), *db1 = randv(C, 1), *db2 = copyv(db1, C);
        mt_k_layernorm_bwd(di1, dw1, db1, dout, inp, w, m2, r2, N, C);
        mt_k_layernorm_bwd_ref(di2, dw2, db2, dout, inp, w, m2, r2, N, C);
        expect_close("layernorm_bwd dinp", di1, di2, N * C, 1e-4);
        expect_close("layernorm_bwd dw", dw1, dw2, C, 1e-4);
        expect_close("layernorm_bwd db", db1, db2, C, 1e-4);
        free(inp), free(w), free(b), free(o1), free(o2), free(dout), free(di1), free(di2);
        free(dw1), free(dw2), free(db1), free(db2);
    }
    /* attention: multi-head, grouped-query (2 kv heads) and multi-query, with and
     * without a sliding window */
    for (size_t nkv = NH; nkv >= 1; nkv /= 2)
        for (size_t window = 0; window <= 5; window += 5) {
            size_t Ckv = C / NH * nkv, ld = C + 2 * Ckv, natt = B * NH * T * T;
            char what[64];
            float *qkv = randv(B * T * ld, 1), *o1 = randv(B * T * C, 1);
            float *o2 = copyv(o1, B * T * C);
            float *a1 = calloc(natt, sizeof(float)), *a2 = calloc(natt, sizeof(float));
            mt_k_attention_fwd(o1, a1, qkv, B, T, C, Ckv, NH, window);
            mt_k_attention_fwd_ref(o2, a2, qkv, B, T, C, Ckv, NH, window);
            snprintf(what, sizeof what, "attention_fwd out kv%zu w%zu", nkv, window);
            expect_close(what, o1, o2, B * T * C, 1e-4);
            snprintf(what, sizeof what, "attention_fwd att kv%zu w%zu", nkv, window);
            expect_close(what, a1, a2, natt, 1e-4);
            float *dout = randv(B * T * C, 1), *dq1 = randv(B * T * ld, 1);
            float *dq2 = copyv(dq1, B * T * ld), *da1 = randv(natt, 1), *da2 = randv(natt, 1);
            mt_k_attention_bwd(dq1, da1, dout, qkv, a2, B, T, C, Ckv, NH, window);
            mt_k_attention_bwd_ref(dq2, da2, dout, qkv, a2, B, T, C, Ckv, NH, window);
            snprintf(what, sizeof what, "attention_bwd dqkv kv%zu w%zu", nkv, window);
            expect_close(what, dq1, dq2, B * T * ld, 1e-4);
            free(qkv), free(o1), free(o2), free(a1), free(a2), free(dout), free(dq1), free(dq2);
            free(da1), free(da2);
        }
    /* flash attention against its reference and against dense attention, over several
     * tiles (T not a multiple of the tile), with windows that cut tiles; bit-identical
     * from run to run and for 1 and 2 threads */
    for (size_t nkv = NH; nkv >= 1; nkv /= 2)
        for (size_t wi = 0; wi < 3; wi++) {
            const size_t TF = 2 * MT_K_FLASH_TILE + 23, windows[3] = {0, 37, TF};
            size_t window = windows[wi], Ckv = C / NH * nkv, ld = C + 2 * Ckv;
            size_t natt = NH * TF * TF, no = TF * C, nl = NH * TF, nq = TF * ld;
            char what[64];
            float *qkv = randv(nq, 1), *dout = randv(no, 1);
            float *o1 = randv(no, 1), *o2 = randv(no, 1), *od = randv(no, 1), *o3 = randv(no, 1);
            float *l1 = randv(nl, 1), *l2 = randv(nl, 1), *l3 = randv(nl, 1);
            float *dq1 = randv(nq, 1), *dq2 = randv(nq, 1), *dqd = randv(nq, 1);
            float *dq3 = randv(nq, 1), *a = calloc(natt, 4), *da = calloc(natt, 4);
            mt_k_flash_attention_fwd(o1, l1, qkv, 1, TF, C, Ckv, NH, window);
            mt_k_flash_attention_fwd_ref(o2, l2, qkv, 1, TF, C, Ckv, NH, window);
            mt_k_attention_fwd(od, a, qkv, 1, TF, C, Ckv, NH, window);
            snprintf(what, sizeof what, "flash_fwd out kv%zu w%zu", nkv, window);
            expect_close(what, o1, o2, no, 1e-4);
            snprintf(what, sizeof what, "flash_fwd lse kv%zu w%zu", nkv, window);
            expect_close(what, l1, l2, nl, 1e-5);
            snprintf(what, sizeof what, "flash=dense out kv%zu w%zu", nkv, window);
            expect_close(what, o1, od, no, 1e-4);
            mt_k_flash_attention_bwd(dq1, dout, qkv, o1, l1, 1, TF, C, Ckv, NH, window);
            mt_k_flash_attention_bwd_ref(dq2, dout, qkv, o1, l1, 1, TF, C, Ckv, NH, window);
            mt_k_attention_bwd(dqd, da, dout, qkv, a, 1, TF, C, Ckv, NH, window);
            snprintf(what, sizeof what, "flash_bwd dqkv kv%zu w%zu", nkv, window);
            expect_close(what, dq1, dq2, nq, 1e-4);
            snprintf(what, sizeof what, "flash=dense dqkv kv%zu w%zu", nkv, window);
            expect_close(what, dq1, dqd, nq, 1e-4);
            for (int threads = 1; threads <= 2; threads++) { /* bit-identical */
                omp_set_num_threads(threads);
                mt_k_flash_attention_fwd(o3, l3, qkv, 1, TF, C, Ckv, NH, window);
                mt_k_flash_attention_bwd(dq3, dout, qkv, o3, l3, 1, TF, C, Ckv, NH, window);
                if (memcmp(o3, o1, no * 4) || memcmp(l3, l1, nl * 4) || memcmp(dq3, dq1, nq * 4)) {
                    printf("FAIL flash kv%zu w%zu not bit-identical with %d threads\n", nkv, window,
                           threads);
                    failures++;
                }
            }
            omp_set_num_threads(2);
            free(qkv), free(dout), free(o1), free(o2), free(od), free(o3), free(l1), free(l2);
            free(l3), free(dq1), free(dq2), free(dqd), free(dq3), free(a), free(da);
        }
    { /* decode attention against a KV cache of 29 positions, with 4, 2 and 1 kv heads */
        size_t n = 29;
        for (size_t nkv = NH; nkv >= 1; nkv /= 2) {
            size_t Ckv = C / NH * nkv;
            float *q = randv(C, 1), *kc = randv(n * Ckv, 1), *vc = randv(n * Ckv, 1);
            float *o1 = randv(C, 1), *o2 = randv(C, 1), att[29];
            mt_k_attention_decode(o1, att, q, kc, vc, n, C, Ckv, NH);
            mt_k_attention_decode_ref(o2, att, q, kc, vc, n, C, Ckv, NH);
            expect_close("attention_decode", o1, o2, C, 1e-4);
            free(q), free(kc), free(vc), free(o1), free(o2);
        }
    }
    { /* Llama-family: encoder without positions, rmsnorm, rope (GQA rows, pos0 > 0, a head
       * size over one angle block), swiglu */
        int inp[3 * 17];
        for (size_t i = 0; i < B * T; i++)
            inp[i] = (int)mt_rng_below(&rng, 5);
        float *wte = randv(5 * C, 1), *o1 = randv(B * T * C, 1), *o2 = copyv(o1, B * T * C);
        mt_k_encoder_fwd(o1, inp, wte, NULL, B, T, C);
        mt_k_encoder_fwd_ref(o2, inp, wte, NULL, B, T, C);
        expect_close("encoder_fwd nopos", o1, o2, B * T * C, 0);
        float *e1 = randv(5 * C, 1), *e2 = copyv(e1, 5 * C);
        mt_k_encoder_bwd(e1, NULL, o1, inp, B, T, C);
        mt_k_encoder_bwd_ref(e2, NULL, o1, inp, B, T, C);
        expect_close("encoder_bwd nopos", e1, e2, 5 * C, 1e-6);
        free(wte), free(o1), free(o2), free(e1), free(e2);
        float *x = randv(N * C, 2), *w = randv(C, 1), *r1 = randv(N, 1), *r2 = randv(N, 1);
        float *n1 = randv(N * C, 1), *n2 = copyv(n1, N * C);
        mt_k_rmsnorm_fwd(n1, r1, x, w, N, C);
        mt_k_rmsnorm_fwd_ref(n2, r2, x, w, N, C);
        expect_close("rmsnorm_fwd", n1, n2, N * C, 1e-5);
        expect_close("rmsnorm_fwd rstd", r1, r2, N, 1e-6);
        float *dout = randv(N * C, 1), *di1 = randv(N * C, 1), *di2 = copyv(di1, N * C);
        float *dw1 = randv(C, 1), *dw2 = copyv(dw1, C);
        mt_k_rmsnorm_bwd(di1, dw1, dout, x, w, r2, N, C);
        mt_k_rmsnorm_bwd_ref(di2, dw2, dout, x, w, r2, N, C);
        expect_close("rmsnorm_bwd dinp", di1, di2, N * C, 1e-5);
        expect_close("rmsnorm_bwd dw", dw1, dw2, C, 1e-5);
        free(x), free(w), free(r1), free(r2), free(n1), free(n2), free(dout), free(di1);
        free(di2), free(dw1), free(dw2);
        const size_t hss[] = {8, 136}; /* 136: 68 pairs, past one block of 64 angles */
        for (size_t k = 0; k < 2; k++) {
            size_t hs = hss[k], Ca = 4 * hs, Ckv = 2 * hs, nq = B * T * (Ca + 2 * Ckv);
            float *q1 = randv(nq, 1), *q2 = copyv(q1, nq), *q0 = copyv(q1, nq);
            mt_k_rope_fwd(q1, B, T, 5, Ca, Ckv, hs, 10000.0);
            mt_k_rope_fwd_ref(q2, B, T, 5, Ca, Ckv, hs, 10000.0);
            expect_close(k ? "rope_fwd hs136" : "rope_fwd hs8", q1, q2, nq, 1e-6);
            mt_k_rope_bwd(q1, B, T, 5, Ca, Ckv, hs, 10000.0); /* the inverse rotation */
            mt_k_rope_bwd_ref(q2, B, T, 5, Ca, Ckv, hs, 10000.0);
            expect_close("rope_bwd", q1, q2, nq, 1e-6);
            expect_close("rope_bwd(rope_fwd)", q1, q0, nq, 1e-5);
            free(q1), free(q2), free(q0);
        }
        size_t F = 200;
        float *g = randv(N * 2 * F, 3), *h1 = randv(N * F, 1), *h2 = copyv(h1, N * F);
        g[0] = -30.0f, g[1] = 30.0f, g[2] = 0.0f; /* saturation and zero */
        mt_k_swiglu_fwd(h1, g, N, F);
        mt_k_swiglu_fwd_ref(h2, g, N, F);
        expect_close("swiglu_fwd", h1, h2, N * F, 1e-5);
        float *dh = randv(N * F, 1), *dg1 = randv(N * 2 * F, 1), *dg2 = randv(N * 2 * F, 1);
        mt_k_swiglu_bwd(dg1, g, dh, N, F);
        mt_k_swiglu_bwd_ref(dg2, g, dh, N, F);
        expect_close("swiglu_bwd", dg1, dg2, N * 2 * F, 1e-5);
        free(g), free(h1), free(h2), free(dh), free(dg1), free(dg2);
    }
    { /* gelu, residual */
        size_t n = 1001;
        float *x = randv(n, 3), *o1 = malloc(n * 4), *o2 = malloc(n * 4), *d = randv(n, 1);
        x[0] = -30.0f, x[1] = 30.0f, x[2] = 0.0f; /* saturation and zero */
        mt_k_gelu_fwd(o1, x, n);
        mt_k_gelu_fwd_ref(o2, x, n);
        expect_close("gelu_fwd", o1, o2, n, 1e-4);
        mt_k_gelu_bwd(o1, x, d, n);
        mt_k_gelu_bwd_ref(o2, x, d, n);
        expect_close("gelu_bwd", o1, o2, n, 1e-4);
        mt_k_residual_fwd(o1, x, d, n);
        for (size_t i = 0; i < n; i++)
            o2[i] = x[i] + d[i];
        expect_close("residual_fwd", o1, o2, n, 0);
        free(x), free(o1), free(o2), free(d);
    }
    { /* softmax, cross-entropy forward/backward */
        float *lg = randv(N * V, 4), *p1 = malloc(N * V * 4), *p2 = malloc(N * V * 4);
        lg[5] = 80.0f, lg[6] = -80.0f; /* large logits stay finite */
        mt_k_softmax_fwd(p1, lg, N, V);
        mt_k_softmax_fwd_ref(p2, lg, N, V);
        expect_close("softmax_fwd", p1, p2, N * V, 1e-4);
        int tg[37];
        for (size_t i = 0; i < N; i++)
            tg[i] = i == 3 ? -1 : (int)mt_rng_below(&rng, V);
        float l1[37], l2[37];
        memcpy(p1, lg, N * V * 4), memcpy(p2, lg, N * V * 4);
        double s1 = mt_k_crossentropy_fwd(p1, l1, tg, N, V);
        double s2 = mt_k_crossentropy_fwd_ref(p2, l2, tg, N, V);
        expect_close("crossentropy_fwd loss", l1, l2, N, 1e-5);
        expect_close("crossentropy_fwd probs", p1, p2, N * V, 1e-4);
        CHECK(fabs(s1 - s2) <= 1e-5 * fabs(s2));
        CHECK(l1[3] == 0.0f);
        mt_k_crossentropy_bwd(p1, tg, 0.25f, N, V);
        mt_k_crossentropy_bwd_ref(p2, tg, 0.25f, N, V);
        expect_close("crossentropy_bwd", p1, p2, N * V, 1e-4);
        free(lg), free(p1), free(p2);
    }
    { /* adamw, sum of squares (several blocks) */
        size_t n = 3 * MT_K_SUMSQ_BLOCK + 77;
        float *p1 = randv(n, 1), *p2 = copyv(p1, n), *g = randv(n, 1);
        float *m1 = randv(n, 0.1f), *m2 = copyv(m1, n), *v1 = randv(n, 0.1f);
        for (size_t i = 0; i < n; i++)
            v1[i] = fabsf(v1[i]);
        float *v2 = copyv(v1, n);
        struct mt_adamw_args a = tf_adamw_args(1e-2f, 0.7f, 3, 0);
        mt_k_adamw(p1, g, m1, v1, n, &a);
        mt_k_adamw_ref(p2, g, m2, v2, n, &a);
        expect_close("adamw p", p1, p2, n, 1e-6);
        float *g2 = copyv(g, n), *g3 = copyv(g, n); /* zero_grad: same update, g left 0 */
        a.zero_grad = 1;
        a.step = 4;
        mt_k_adamw(p1, g2, m1, v1, n, &a);
        mt_k_adamw_ref(p2, g3, m2, v2, n, &a);
        for (size_t i = 0; i < n; i++)
            CHECK(g2[i] == 0.0f && g3[i] == 0.0f);
        free(g2), free(g3);
        expect_close("adamw p", p1, p2, n, 1e-6);
        expect_close("adamw m", m1, m2, n, 1e-6);
        expect_close("adamw v", v1, v2, n, 1e-6);
        double s1 = mt_k_sumsq(g, n), s2 = mt_k_sumsq_ref(g, n);
        printf("sumsq fast %.12g ref %.12g\n", s1, s2);
        CHECK(fabs(s1 - s2) <= 1e-9 * s2);
        for (float x = -87.0f; x < 88.0f; x += 0.037f) /* the normal range */
            CHECK(fabsf(mt_k_expf(x) - expf(x)) <= 3e-7f * expf(x));
        CHECK(mt_k_expf(-100.0f) == 0.0f); /* flushes below the normal range */
        CHECK(mt_k_expf(-INFINITY) == 0.0f);
        free(p1), free(p2), free(g), free(m1), free(m2), free(v1), free(v2);
    }
    CHECK(failures == 0);
    printf("ok\n");
    return 0;
}
