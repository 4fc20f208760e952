/* test_orderings.c — what issue 20 says must hold for the calibrated methods, asserted on
 * the reference the post-training workloads start from: `small` trained 2000 steps with
 * the baseline recipe (batch 16 x 128, lr 3e-3, seed 1337, the default corpus), the
 * very checkpoint `memtrade run quantize` and sweeps/default.ini load from the model cache.
 *
 * What it is for: `test_orderings <case> PLUGIN.so FALLBACK_DIR`, every run through the
 * plugin itself (the fake ctx of tests/support, the model cache of the harness:
 * $XDG_CACHE_HOME/memtrade, else ~/.cache/memtrade, else FALLBACK_DIR), scoring the first
 * 32,768 validation bytes (half the sweeps' 65,536: 20 runs on 2 cores):
 *   reference  (the fixture) quantize bits=16: trains the reference when the cache lacks
 *              it (about 3 minutes of 2 cores) and writes the base model's distributions
 *              beside it; checks it learned (val_bpb below 3) and that bf16's KL is > 0;
 *   quantize   GPTQ (act-order) below RTN in val_bpb at 4 and 3 bits (linear-asym,
 *              groups of 64), the gain larger at 3; AWQ below RTN at 4 bits, groups of
 *              128; the mean KL divergence from the base rising at every step
 *              bf16 -> 8 -> 4 -> 3 -> 2 bits (RTN, groups of 64), top-1 agreement falling;
 *              GPTQ's KL below RTN's at 4 and 3 bits; the same model_bytes for RTN and
 *              every calibrated method of a format (the same packed layout);
 *   prune      at 50 % per layer: SparseGPT and Wanda below magnitude in val_bpb;
 *              SparseGPT at 2:4 below magnitude 2:4; 2:4 worse than unstructured 50 %
 *              for both magnitude and SparseGPT.
 *   smoothquant  the reference with 4 input channels of every qkv and fc made 50 times
 *              larger by an exact fold (no plugin has a reason to do that, so this case
 *              drives the library: mt_qmodel_fold, mt_calib_*, mt_qmodel_build), served
 *              W8A8 (linear-sym 8-bit per channel, int8 per-token activations): plain W8A8
 *              worse than on the model as trained, SmoothQuant (alpha 0.5) below plain.
 * KL exactly 0 for the unmodified model is test_qmodel's `kl` (and the baseline
 * plugin's kl_mean).
 * Measured (val_bpb / kl_mean; the fp32 reference 2.4874 bpb): bf16 2.4874 / 2.4e-6,
 * 8 bits 2.4872 / 2.6e-5, 4 bits RTN 2.5050 / 0.0083 GPTQ 2.4910 / 0.0018, 3 bits RTN
 * 2.5522 / 0.0385 GPTQ 2.5037 / 0.0090, 2 bits RTN 2.8650 / 0.2552; 4 bits group 128 RTN
 * 2.5079 / 0.0103 AWQ 2.5009 / 0.0079. 50 %: magnitude 2.7045, Wanda 2.6245, SparseGPT
 * 2.5609; 2:4: magnitude 2.8958, SparseGPT 2.6027. W8A8: as trained 2.4881, with the
 * outliers plain 2.5860, SmoothQuant 2.4880. About 2 minutes on 2 cores with the
 * reference cached.
 * What it is not for: kernels or formats (tests/quantize, tests/prune), timing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model_cache.h"
#include "qmodel.h"
#include "wlcommon.h"
#include "plugin_check.h"

/* The sweeps' reference (sweeps/default.ini): the plugins' defaults (model=small,
 * steps=2000, batch 16, seed 1337), scored on 32,768 validation bytes. */
#define REF "model=small", "steps=2000", "eval_tokens=32768"

struct result {
    double bpb, kl, agree, bytes;
};

/* Runs the loaded plugin with the reference's parameters and `extra` (NULL-terminated);
 * prints one line and returns its val_bpb, kl_mean, kl_top1_agree and model_bytes. */
static struct result run(const char *label, const char **extra)
{
    const char *ov[16] = {REF};
    size_t n = 3;
    while (*extra && n < 16)
        ov[n++] = *extra++;
    struct fake_ctx f;
    struct result r = {NAN, NAN, NAN, NAN};
    if (plugin_run(&f, ov, n)) return r;
    r.bpb = plugin_need(&f, "val_bpb", "bits/byte");
    r.kl = plugin_need(&f, "kl_mean", "nats");
    r.agree = plugin_need(&f, "kl_top1_agree", "ratio");
    r.bytes = plugin_need(&f, "model_bytes", "bytes");
    fprintf(stderr, "ORDERING %-28s val_bpb %.4f  kl_mean %.4g  top1 %.4f  model_bytes %.0f\n",
            label, r.bpb, r.kl, r.agree, r.bytes);
    return r;
}

#define RUN(label, ...) run(label, (const char *[]){__VA_ARGS__, NULL})

static void test_reference(void)
{
    struct result r = RUN("bf16", "bits=16");
    CHECK(r.bpb < 3.0, "the reference did not learn: val_bpb %.4f (want < 3)", r.bpb);
    CHECK(r.kl > 0.0, "bf16: KL %.3g, want > 0", r.kl);
}

static void test_quantize(void)
{
    /* GPTQ against RTN, the same format */
    double gain[2];
    const char *bits[2] = {"bits=4", "bits=3"};
    struct result rtn[2], gptq[2];
    for (int i = 0; i < 2; i++) {
        rtn[i] = RUN(bits[i] + 5, bits[i]);
        gptq[i] = RUN("gptq act-order", bits[i], "method=gptq", "act_order=on");
        gain[i] = rtn[i].bpb - gptq[i].bpb;
        CHECK(gain[i] > 0, "%s: gptq %.4f not below rtn %.4f", bits[i], gptq[i].bpb, rtn[i].bpb);
        CHECK(gptq[i].kl < rtn[i].kl, "%s: gptq's KL %.5f not below rtn's %.5f", bits[i],
              gptq[i].kl, rtn[i].kl);
        CHECK(gptq[i].bytes == rtn[i].bytes, "%s: gptq stores %.0f bytes, rtn %.0f", bits[i],
              gptq[i].bytes, rtn[i].bytes);
    }
    CHECK(gain[1] > gain[0], "gptq's gain at 3 bits (%.4f) not above 4 bits' (%.4f)", gain[1],
          gain[0]);

    /* AWQ against RTN at 4 bits, groups of 128 */
    struct result r128 = RUN("4 group 128", "bits=4", "group_size=128");
    struct result awq = RUN("awq 4 group 128", "bits=4", "group_size=128", "method=awq");
    CHECK(awq.bpb < r128.bpb, "awq %.4f not below rtn %.4f (4 bits, group 128)", awq.bpb,
          r128.bpb);
    CHECK(awq.bytes == r128.bytes, "awq stores %.0f bytes, rtn %.0f", awq.bytes, r128.bytes);

    /* KL falls with every bit added */
    struct result kl[5] = {RUN("bf16", "bits=16"), RUN("8", "bits=8"), rtn[0], rtn[1],
                           RUN("2", "bits=2")};
    const char *names[5] = {"bf16", "8 bits", "4 bits", "3 bits", "2 bits"};
    for (int i = 1; i < 5; i++) {
        CHECK(kl[i].kl > kl[i - 1].kl, "KL at %s (%.5f) not above %s's (%.5f)", names[i],
              kl[i].kl, names[i - 1], kl[i - 1].kl);
        CHECK(kl[i].agree <= kl[i - 1].agree, "top-1 agreement at %s (%.4f) above %s's (%.4f)",
              names[i], kl[i].agree, names[i - 1], kl[i - 1].agree);
    }
}

static void test_prune(void)
{
    struct result mag = RUN("magnitude 50%", "method=magnitude");
    struct result wanda = RUN("wanda 50%", "method=wanda");
    struct result sgpt = RUN("sparsegpt 50%", "method=sparsegpt");
    struct result mag24 = RUN("magnitude 2:4", "method=nm", "nm=2:4");
    struct result sgpt24 = RUN("sparsegpt 2:4", "method=sparsegpt", "pattern=nm", "nm=2:4");
    CHECK(sgpt.bpb < mag.bpb, "50 %%: sparsegpt %.4f not below magnitude %.4f", sgpt.bpb,
          mag.bpb);
    CHECK(wanda.bpb < mag.bpb, "50 %%: wanda %.4f not below magnitude %.4f", wanda.bpb, mag.bpb);
    CHECK(sgpt24.bpb < mag24.bpb, "2:4: sparsegpt %.4f not below magnitude %.4f", sgpt24.bpb,
          mag24.bpb);
    CHECK(mag24.bpb > mag.bpb && sgpt24.bpb > sgpt.bpb,
          "2:4 not worse than 50 %%: magnitude %.4f vs %.4f, sparsegpt %.4f vs %.4f", mag24.bpb,
          mag.bpb, sgpt24.bpb, sgpt.bpb);
}

/* The SmoothQuant case: the reference with OUTLIERS input channels of every block's qkv
 * and fc made OUTLIER_X times larger by an exact fold (mt_qmodel_fold with s = 1 /
 * OUTLIER_X on those channels: the norm's gain and bias times OUTLIER_X, the weight
 * columns divided by it; the same function in fp32), as trained LLMs have them. */
#define OUTLIERS 4
#define OUTLIER_X 50.0f
#define CALIB_SEQS 64
#define EVAL_B 8

static char err[512];

/* val_bpb of the reference (outliers injected or not) served W8A8 (linear-sym 8-bit per
 * channel, int8 per-token activations) with `method` (rtn or smoothquant, alpha 0.5). */
static double w8a8_bpb(int outliers, enum mt_qmethod method)
{
    const char *ov[] = {REF, "bits=8", "scheme=linear-sym", "granularity=channel",
                        "activations=int8-dynamic"};
    struct fake_ctx f;
    fake_ctx_init(&f, plugin_wl, ov, sizeof ov / sizeof ov[0]);
    snprintf(f.cache_dir, sizeof f.cache_dir, "%s", plugin_cache_dir);
    struct mt_ctx *ctx = &f.base;
    struct mt_gpt_config cfg;
    struct mt_gpt_recipe r;
    struct mt_corpus c = {0};
    struct mt_gpt *m = NULL;
    struct mt_qmodel *qm = NULL;
    struct mt_calib cal = {0};
    uint64_t seed;
    double bpb = NAN;
    if (mt_wl_model_config(ctx, NULL, &cfg) || mt_wl_recipe(ctx, &cfg, &r, &seed) ||
        mt_wl_corpus(ctx, 1, r.seq, &c) ||
        mt_wl_reference_or_load(ctx, &cfg, &r, seed, &c, MT_GPT_INFER, EVAL_B, r.seq, &m, NULL)) {
        CHECK(0, "the reference: %s", f.error);
        mt_corpus_free(&c);
        return NAN;
    }
    size_t C = cfg.n_embd;
    float *s = malloc(C * sizeof *s);
    int *in = malloc(CALIB_SEQS * r.seq * sizeof *in);
    for (size_t j = 0; j < C; j++) /* channels spread over the width */
        s[j] = outliers && j % (C / OUTLIERS) == 3 ? 1.0f / OUTLIER_X : 1.0f;
    int rc = !s || !in;
    for (size_t l = 0; !rc && outliers && l < cfg.n_layer; l++)
        rc = mt_qmodel_fold(m, l, MT_LIN_QKV, s, err, sizeof err) ||
             mt_qmodel_fold(m, l, MT_LIN_FC, s, err, sizeof err);
    struct mt_qmodel_opts o = {.fmt = {MT_QS_LINEAR_SYM, 8, MT_QG_CHANNEL, 0, seed},
                               .act = MT_QACT_INT8,
                               .method = method,
                               .calib = &cal,
                               .sq_alpha = 0.5};
    if (!rc && method == MT_QM_SMOOTHQUANT)
        rc = mt_calib_sample(c.train, c.n_train, CALIB_SEQS, r.seq, seed, in, NULL, err,
                             sizeof err) ||
             mt_calib_collect(m, in, CALIB_SEQS, EVAL_B, r.seq, MT_CALIB_ACT_MAX, &cal, err,
                              sizeof err);
    if (!rc) rc = mt_qmodel_build(&qm, m, &o, err, sizeof err);
    struct mt_eval_result res;
    if (!rc) rc = mt_gpt_eval(m, c.val, c.n_val, 32768, &res, err, sizeof err);
    CHECK(rc == 0, "W8A8 %s: %s", mt_qmethod_name(method), err);
    if (!rc) bpb = res.bpb;
    fprintf(stderr, "ORDERING W8A8 %-11s %s: val_bpb %.4f\n", mt_qmethod_name(method),
            outliers ? "outlier channels x50" : "as trained         ", bpb);
    free(s), free(in);
    mt_qmodel_free(qm);
    mt_calib_free(&cal);
    mt_gpt_free(m);
    mt_corpus_free(&c);
    return bpb;
}

/* SmoothQuant W8A8 below plain W8A8 on the reference with outlier channels; plain W8A8
 * worse with them than without (the outliers are what SmoothQuant is for). */
static void test_smoothquant(void)
{
    double clean = w8a8_bpb(0, MT_QM_RTN);
    double plain = w8a8_bpb(1, MT_QM_RTN), smooth = w8a8_bpb(1, MT_QM_SMOOTHQUANT);
    CHECK(plain > clean, "outliers did not hurt plain W8A8: %.4f vs %.4f", plain, clean);
    CHECK(smooth < plain, "smoothquant %.4f not below plain W8A8 %.4f with outliers", smooth,
          plain);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_orderings reference|quantize|smoothquant|prune PLUGIN.so "
                        "FALLBACK_DIR\n");
        return 2;
    }
    const char *name = strcmp(argv[1], "prune") ? "quantize" : "prune";
    if (plugin_load(argv[2], name)) return 1;
    if (!mt_test_cache_dir(plugin_cache_dir, sizeof plugin_cache_dir))
        snprintf(plugin_cache_dir, sizeof plugin_cache_dir, "%s", argv[3]);
    static const struct mt_test tests[] = {
        {"reference", test_reference},
        {"quantize", test_quantize},
        {"smoothquant", test_smoothquant},
        {"prune", test_prune}};
    return mt_test_run(tests, sizeof tests / sizeof tests[0], argv[1]);
}
