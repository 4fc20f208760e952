/* test_bf16mm.c — the bf16 GEMMs of the engine's backward.
 *
 * `products`: the backward products of a linear layer through oneDNN's bf16 matmul
 * against the scalar definition (mt_bf16mm_gemm_ref: exact bf16 products summed in fp32
 * in k order):
 *   dinp[N,C]  = dout[N,OC] @ W[OC,C]          (ta 0, tb 0, overwrite)
 *   dW[OC,C]  += dout[N,OC]^T @ in[N,C]        (ta 1, tb 0, sum post-op into fp32)
 * and the remaining transpose (ta 1, tb 1) and the forward (tb 1) through the general
 * entry, on the model's shapes and odd ones. bf16 inputs are exact, so the only
 * difference is fp32 summation order: every element must be within 1e-5 of
 * (sum of |products| + |initial out|). Accumulation is checked over two calls (the
 * second one on the cached primitive), so a product that overwrote instead of adding, or
 * added twice, fails.
 * `engine`: one bf16 training micro-step of tiny (all blocks kept, and every = 2 so one
 * block is recomputed inside backward) runs 3 x (4 L + 1) oneDNN bf16 GEMMs (forward,
 * dinp, dW of every linear layer and the LM head), none falling back, and its gradients
 * match the engine with fp32 backward GEMMs (emulate_bf16_gemm) tensor by tensor within
 * 1% relative L2 (seen: 0.2-0.4%, from dout rounded to bf16 and bf16 gradient storage,
 * 2^-9 each; a wrong transpose, operand or missing product is off by O(1)). A
 * recomputed block adds its 3 forward GEMMs to the count.
 * `plugin DIR`: mixed_precision with precision=bf16 reports bf16_gemms = steps x
 * 3 x (4 L + 1) and no fallbacks; with fp32 both metrics are unavailable with a reason.
 * What it is not for: training curves (test_engine.c).
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bf16mm.h"
#include "fake_ctx.h"
#include "gpt.h"
#include "half.h"
#include "rng.h"
#include "tmodel.h"
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

static void product(struct mt_bf16mm *mm, const char *what, struct mt_bf16mm_shape k, int with_bias)
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

static void products(void)
{
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
}

enum { B = 4, T = 32 };

/* One forward/backward of tokens in/tg; the gradients into a WEIGHTS-mode model (the
 * layout mt_tmodel_export_grads writes), the engine's counters into *st. */
static struct mt_gpt *grads_of(const struct mt_gpt_config *cfg, const struct mt_tmodel_opts *o,
                               const int *in, const int *tg, struct mt_tmodel_stats *st)
{
    char err[512];
    struct mt_tmodel *t = NULL;
    CHECK_OK(mt_tmodel_create(&t, cfg, o, 1337, err, sizeof err), err);
    float loss;
    CHECK_OK(mt_tmodel_forward_backward(t, in, tg, B, 1.0f, 0, &loss, err, sizeof err), err);
    struct mt_gpt *m = NULL;
    CHECK_OK(mt_gpt_create(&m, cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err), err);
    mt_tmodel_export_grads(t, m->params);
    *st = *mt_tmodel_stats(t);
    mt_tmodel_free(t);
    return m;
}

static void engine(size_t every)
{
    char err[512];
    struct mt_gpt_config cfg;
    CHECK_OK(mt_gpt_config_preset(&cfg, "tiny", err, sizeof err), err);
    struct mt_tmodel_opts o = {.micro_batch = B,
                               .seq = T,
                               .prec = MT_PREC_BF16,
                               .master_weights = 1,
                               .every = every,
                               .pool = 1};
    int in[B * T], tg[B * T];
    struct mt_rng rng;
    mt_rng_seed(&rng, 7);
    for (size_t i = 0; i < B * T; i++) {
        in[i] = (int)mt_rng_below(&rng, cfg.vocab);
        tg[i] = (int)mt_rng_below(&rng, cfg.vocab);
    }
    struct mt_tmodel_stats sf, se;
    struct mt_gpt *fast = grads_of(&cfg, &o, in, tg, &sf);
    o.emulate_bf16_gemm = 1;
    struct mt_gpt *emu = grads_of(&cfg, &o, in, tg, &se);
    size_t linears = 4 * cfg.n_layer + 1;
    /* forward, dinp and dW of every linear layer; a recomputed block's forward again
     * (qkv, attention projection, fc: its output is stored) */
    size_t want = 3 * linears + 3 * sf.recomputed_blocks;
    printf("every %zu: %zu bf16 GEMMs (%zu fell back), expected %zu\n", every, sf.bf16_gemms,
           sf.bf16_fallbacks, want);
    CHECK(sf.bf16_gemms == want && sf.bf16_fallbacks == 0);
    CHECK(sf.recomputed_blocks == (every == 1 ? 0 : cfg.n_layer - 1));
    CHECK(se.bf16_gemms == 0 && se.bf16_fallbacks == 0);
    for (int p = 0; p < MT_P_COUNT; p++) {
        if (!fast->param_len[p]) continue; /* a tensor the model does not have (lm_head) */
        const float *a = fast->param[p], *b = emu->param[p];
        double d2 = 0.0, n2 = 0.0;
        for (size_t i = 0; i < fast->param_len[p]; i++) {
            d2 += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            n2 += (double)b[i] * b[i];
        }
        double rel = sqrt(d2 / n2);
        printf("  %-12s |g| %.3e, relative difference %.2e\n",
               mt_gpt_param_name((enum mt_gpt_param)p), sqrt(n2), rel);
        CHECK(n2 > 0.0 && rel < 0.01);
    }
    mt_gpt_free(fast);
    mt_gpt_free(emu);
}

/* mixed_precision on tiny for 3 steps, bf16 then fp32: the GEMM counters. */
static void plugin(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/mixed_precision.so", dir);
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!so) fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    CHECK(so);
    const struct mt_workload *wl = dlsym(so, MEMTRADE_WORKLOAD_SYMBOL);
    CHECK(wl);
    enum { STEPS = 3 };
    static const char *const prec[] = {"precision=bf16", "precision=fp32"};
    for (size_t i = 0; i < 2; i++) {
        static struct fake_ctx f;
        const char *ov[] = {prec[i], "model=tiny", "steps=3", "batch=8", "eval_tokens=512"};
        fake_ctx_init(&f, wl, ov, sizeof ov / sizeof ov[0]);
        f.threads = 1;
        snprintf(f.cache_dir, sizeof f.cache_dir, "/tmp");
        int rc = wl->run(&f.base);
        if (rc) fprintf(stderr, "mixed_precision failed: %s\n", f.error);
        CHECK(rc == 0);
        const struct fake_metric *g = fake_ctx_metric(&f, "bf16_gemms");
        const struct fake_metric *fb = fake_ctx_metric(&f, "bf16_gemm_fallbacks");
        CHECK(g && fb && !strcmp(g->unit, "count") && !strcmp(fb->unit, "count"));
        printf("%s: bf16_gemms %s %.0f, bf16_gemm_fallbacks %s %.0f\n", prec[i],
               g->na ? "unavailable" : "", g->value, fb->na ? "unavailable" : "", fb->value);
        if (i == 0) { /* tiny: L = 2, one micro-batch per step */
            CHECK(!g->na && g->value == STEPS * 3 * (4 * 2 + 1));
            CHECK(!fb->na && fb->value == 0.0);
        } else {
            CHECK(g->na && fb->na);
        }
    }
    dlclose(so);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "products") && strcmp(what, "engine") &&
        (strcmp(what, "plugin") || argc != 3)) {
        fprintf(stderr, "usage: %s products|engine|plugin PLUGIN_DIR\n", argv[0]);
        return 2;
    }
    if (!mt_bf16mm_native()) {
        printf("oneDNN has no native bf16 matmul on this CPU: nothing to check\n");
        return 0;
    }
    if (!strcmp(what, "products")) {
        products();
    } else if (!strcmp(what, "plugin")) {
        plugin(argv[2]);
    } else {
        engine(1);
        engine(2);
    }
    printf("ok\n");
    return 0;
}
