/* test_lora.c — the LoRA / QLoRA adapters (workloads/lora/lora.h) on `tiny`.
 *
 * What it is for (parts, one ctest each):
 *   grad     adapters pass a finite-difference check (central differences of the float
 *            model's mean loss, summed in double from its probabilities, along random
 *            +-1 directions over each A and B scaled to a step of norm 2e-2:
 *            |num - ana| <= 2e-2 |num| + 2e-5), on the fp32 base, the NF4 base and the
 *            NF4 base with double-quantized scales;
 *   merge    the adapted linear equals its double scalar reference (1e-5 relative); merged
 *            and unmerged forwards agree to 1e-6 (probabilities); merge then unmerge
 *            restores W within float rounding;
 *   frozen   10 steps of the one loop: base weights bit-identical, adapters changed, no
 *            gradient/optimizer slab in the model, plan == allocation per category;
 *   fullrank rank = min(in, out) on every target (alpha = rank, so scale 1) trains like
 *            full fine-tuning: see the tolerance at the test;
 *   qlora    NF4 base bytes equal the packing exactly (hand formula), plan == allocation,
 *            QLoRA's planned peak below LoRA's by the weight bytes saved minus the
 *            dequantization tile, base bytes unchanged by training; with double-quantized
 *            scales (QLoRA's): bytes by hand (int8 codes, an fp32 absmax per 256 and the
 *            mean in place of fp32 scales), the planned peak lower by exactly that saving
 *            less the decoded-scales buffer, every decoded scale within half a step of
 *            its fp32 fit, the loss within 1e-2 of fp32 scales', the saving in bits per
 *            weight (0.37 on tiny; 0.373 on a 4096 x 4096 matrix, QLoRA's figure).
 *   heap     (test_lora heap LIBMT_HEAP.so DIR) LoRA and QLoRA train 3 steps in a child
 *            under the heap profiler: the peak of every category while training (region
 *            "train") equals mt_lora_plan exactly (weights, gradients, optimizer,
 *            activations, act_grads), workspace at least the plan (oneDNN's own buffers
 *            are tagged workspace too); data is the caller's batch (on the stack here);
 *            QLoRA with double-quantized scales too.
 * What it is not for: the plugin (test_lora_plugin.c).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include <memtrade/memcat.h>

#include "check.h"
#include "data.h"
#include "kernels.h"
#include "lora.h"
#include "qmodel.h"
#include "rng.h"

enum { B = 2, T = 16 };

static struct mt_gpt_config tiny(void)
{
    struct mt_gpt_config c;
    char err[256];
    mt_gpt_config_preset(&c, "tiny", err, sizeof err);
    return c;
}

static struct mt_lora_opts opts(size_t rank, float alpha, int nf4, size_t rows)
{
    return (struct mt_lora_opts){.rank = rank,
                                 .alpha = alpha,
                                 .targets = 15u,
                                 .nf4 = nf4 != 0,
                                 .nf4_group = 64,
                                 .nf4_dq = nf4 == 2, /* 2: double-quantized scales */
                                 .seed = 7,
                                 .max_rows = rows};
}

/* Text of words drawn from `words` (deterministic). */
static uint8_t *text(size_t n, uint64_t seed, const char *const *words, size_t nw)
{
    uint8_t *t = malloc(n);
    struct mt_rng rng;
    mt_rng_seed(&rng, seed);
    for (size_t i = 0; i < n;) {
        const char *w = words[mt_rng_below(&rng, nw)];
        for (size_t k = 0; w[k] && i < n; k++)
            t[i++] = (uint8_t)w[k];
        if (i < n) t[i++] = ' ';
    }
    return t;
}

static const char *const words1[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"};
static const char *const words2[] = {"quick", "brown", "fox", "jumps", "over", "lazy", "river"};

static void batch(int *in, int *tg, uint64_t seed)
{
    uint8_t *t = text(B * T + 1, seed, words1, 9);
    for (size_t i = 0; i < B * T; i++) {
        in[i] = t[i];
        tg[i] = t[i + 1];
    }
    free(t);
}

/* A frozen tiny model from init(seed) with adapters; B adapters randomized (so dA != 0). */
static struct mt_gpt *frozen(int nf4, size_t rank, struct mt_lora **lr, int randomize)
{
    struct mt_gpt_config cfg = tiny();
    struct mt_gpt *m;
    char err[256];
    if (mt_gpt_create(&m, &cfg, MT_GPT_FROZEN, B, T, err, sizeof err)) return NULL;
    mt_gpt_init(m, 42);
    struct mt_lora_opts o = opts(rank, 2.0f * (float)rank, nf4, B * T);
    if (mt_lora_attach(lr, m, &o, err, sizeof err)) {
        fprintf(stderr, "attach: %s\n", err);
        mt_gpt_free(m);
        return NULL;
    }
    struct mt_rng rng;
    mt_rng_seed(&rng, 99);
    for (size_t l = 0; randomize && l < cfg.n_layer; l++)
        for (int t = 0; t < 4; t++) {
            float *bm;
            size_t din, dout;
            mt_lora_adapter(*lr, l, (enum mt_linear)t, &bm, &din, &dout);
            for (size_t i = 0; i < dout * rank; i++)
                bm[i] = (float)(mt_rng_uniform(&rng) - 0.5) * 0.1f;
        }
    return m;
}

/* Mean loss over the batch, summed in double from the forward's probabilities (the float
 * mean would quantize a finite difference to its ulp). */
static double loss_of(struct mt_gpt *m, const int *in, const int *tg)
{
    float l = -1.0f;
    char err[256];
    if (mt_gpt_forward(m, in, tg, B, T, &l, err, sizeof err)) fprintf(stderr, "%s\n", err);
    double sum = 0.0;
    for (size_t i = 0; i < B * T; i++)
        sum -= log((double)m->act[MT_A_LOGITS][i * m->cfg.vocab + (size_t)tg[i]]);
    return sum / (double)(B * T);
}

/* Relative tolerance of a finite difference of the float model against its analytic
 * gradient: a wrong gradient (a missing scale, a transposed adapter) is off by far more. */
#ifdef MT_TEST_SANITIZED
#define FD_RTOL 8e-2
#else
#define FD_RTOL 2e-2
#endif

static void grad_check(int nf4)
{
    struct mt_lora *lr = NULL;
    struct mt_gpt *m = frozen(nf4, 4, &lr, 1);
    CHECK(m != NULL, "model");
    if (!m) return;
    int in[B * T], tg[B * T];
    char err[256];
    batch(in, tg, 5);
    memset(lr->grads, 0, lr->n_params * sizeof(float));
    loss_of(m, in, tg);
    CHECK(mt_gpt_backward(m, 1.0f, 0, err, sizeof err) == 0, "backward: %s", err);
    CHECK(m->grads == NULL && m->opt == NULL, "frozen model has weight gradients");
    struct mt_rng rng;
    mt_rng_seed(&rng, 3);
    double worst = 0.0;
    for (size_t l = 0; l < 2; l++)
        for (int t = 0; t < 4; t++)
            for (int which = 0; which < 2; which++) {
                float *bm;
                size_t din, dout;
                float *a = mt_lora_adapter(lr, l, (enum mt_linear)t, &bm, &din, &dout);
                float *p = which ? bm : a;
                size_t n = which ? dout * lr->o.rank : lr->o.rank * din;
                const float *g = lr->grads + (p - lr->params);
                for (int rep = 0; rep < 2; rep++) {
                    float *d = malloc(n * sizeof *d), *p0 = malloc(n * sizeof *p0);
                    float eps = 2e-2f / sqrtf((float)n); /* a step of norm 2e-2 */
                    double ana = 0.0;
                    memcpy(p0, p, n * sizeof *p0);
                    for (size_t i = 0; i < n; i++) {
                        d[i] = (mt_rng_next(&rng) & 1) ? 1.0f : -1.0f;
                        ana += (double)g[i] * d[i];
                    }
                    for (size_t i = 0; i < n; i++)
                        p[i] = p0[i] + eps * d[i];
                    double lp = loss_of(m, in, tg);
                    for (size_t i = 0; i < n; i++)
                        p[i] = p0[i] - eps * d[i];
                    double lm = loss_of(m, in, tg);
                    memcpy(p, p0, n * sizeof *p0);
                    double num = (lp - lm) / (2.0 * eps), e = fabs(num - ana);
                    CHECK(e <= FD_RTOL * fabs(num) + 2e-5,
                          "%s h%zu t%d %s: numeric %.6g analytic %.6g", nf4 ? "nf4" : "fp32", l, t,
                          which ? "B" : "A", num, ana);
                    CHECK(fabs(ana) > 1e-5, "a zero gradient passes nothing (%g)", ana);
                    if (e / (fabs(num) + 1e-12) > worst) worst = e / (fabs(num) + 1e-12);
                    free(d);
                    free(p0);
                }
            }
    printf("%s grad check: worst relative error %.3g\n",
           nf4 == 2 ? "nf4 dq" : nf4 ? "nf4" : "fp32", worst);
    mt_lora_free(lr);
    mt_gpt_free(m);
}

static void test_grad(void)
{
    grad_check(0);
    grad_check(1);
    grad_check(2);
}

static void test_merge(void)
{
    struct mt_lora *lr = NULL;
    struct mt_gpt *m = frozen(0, 8, &lr, 1);
    CHECK(m != NULL, "model");
    if (!m) return;
    char err[256];
    size_t V = m->cfg.vocab, C = m->cfg.n_embd;
    /* the hook against the scalar reference, on the MLP's first linear of block 1 */
    float *x = malloc(B * T * C * sizeof *x), *y = malloc(B * T * 4 * C * sizeof *y);
    float *yr = malloc(B * T * 4 * C * sizeof *yr);
    struct mt_rng rng;
    mt_rng_seed(&rng, 11);
    for (size_t i = 0; i < B * T * C; i++)
        x[i] = (float)(mt_rng_uniform(&rng) - 0.5);
    float *w, *bias, *bm;
    size_t din, dout;
    mt_gpt_linear_weights(m, 1, MT_LIN_FC, &w, &bias, &din, &dout);
    const float *a = mt_lora_adapter(lr, 1, MT_LIN_FC, &bm, NULL, NULL);
    CHECK(mt_gpt_linear(m, 1, MT_LIN_FC, x, y, B * T) == 0, "hook");
    mt_lora_linear_ref(yr, x, w, bias, a, bm, lr->scale, B * T, din, dout, 8);
    double worst = 0.0, ymax = 0.0;
    for (size_t i = 0; i < B * T * dout; i++) {
        worst = fmax(worst, fabs(y[i] - yr[i]));
        ymax = fmax(ymax, fabs(yr[i]));
    }
    worst /= ymax;
    CHECK(worst < 1e-5, "hook vs scalar reference: %g of the largest output", worst);
    /* merged vs unmerged forwards */
    int in[B * T], tg[B * T];
    batch(in, tg, 8);
    float *p0 = malloc(B * T * V * sizeof *p0), *w0 = malloc(m->slab_bytes[MT_MEM_WEIGHTS]);
    memcpy(w0, m->params, m->slab_bytes[MT_MEM_WEIGHTS]);
    loss_of(m, in, tg);
    memcpy(p0, m->act[MT_A_LOGITS], B * T * V * sizeof *p0);
    CHECK(mt_lora_merge(lr, 1, err, sizeof err) == 0, "merge: %s", err);
    CHECK(mt_lora_merge(lr, 1, err, sizeof err) != 0, "merged twice");
    loss_of(m, in, tg);
    double dp = 0.0;
    for (size_t i = 0; i < B * T * V; i++)
        dp = fmax(dp, fabs(p0[i] - m->act[MT_A_LOGITS][i]));
    CHECK(dp <= 1e-6, "merged vs unmerged probabilities differ by %g", dp);
    CHECK(memcmp(w0, m->params, m->slab_bytes[MT_MEM_WEIGHTS]) != 0, "merge changed nothing");
    CHECK(mt_lora_merge(lr, 0, err, sizeof err) == 0, "unmerge: %s", err);
    double dw = 0.0;
    size_t nw = m->slab_bytes[MT_MEM_WEIGHTS] / sizeof(float);
    for (size_t i = 0; i < nw; i++) /* within 2 ulp of the weight or the delta's size */
        if (fabs(w0[i] - m->params[i]) > 2.0 * FLT_EPSILON * (fabs(w0[i]) + 0.05))
            dw = fmax(dw, fabs(w0[i] - m->params[i]));
    CHECK(dw == 0.0, "unmerge left W off by %g", dw);
    printf("merge: hook vs reference %.3g, merged vs unmerged probs %.3g\n", worst, dp);
    free(x);
    free(y);
    free(yr);
    free(p0);
    free(w0);
    mt_lora_free(lr);
    mt_gpt_free(m);
}

/* The model's slabs + the adapters' + the batch, against the plan. */
static void check_plan(const struct mt_gpt *m, const struct mt_lora *lr, struct mt_lora_plan *p)
{
    char err[256];
    CHECK(mt_lora_plan(&m->cfg, &lr->o, B, T, p, err, sizeof err) == 0, "plan: %s", err);
    size_t got[MT_MEM_CAT_COUNT];
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        got[c] = m->slab_bytes[c];
    mt_lora_bytes(lr, got);
    got[MT_MEM_DATA] += 2 * B * T * sizeof(int);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        CHECK(got[c] == p->bytes[c], "category %d: plan %zu allocated %zu", c, p->bytes[c], got[c]);
}

static double train(struct mt_loop_engine *e, size_t steps, float lr, const uint8_t *data, size_t n)
{
    struct mt_gpt_recipe r = mt_gpt_recipe_default(steps);
    r.lr = lr;
    r.weight_decay = 0.0f;
    r.batch = B;
    r.seq = T;
    int buf[2 * B * T];
    char err[256];
    struct mt_loop_opts o = {.recipe = &r, .batch_seed = 17, .batch = buf};
    struct mt_loop_result res;
    int rc = mt_loop_run(NULL, &o, e, NULL, data, n, &res, err, sizeof err);
    CHECK(rc == 0, "loop: %s", err);
    return res.final_loss;
}

static void test_frozen(void)
{
    struct mt_lora *lr = NULL;
    struct mt_gpt *m = frozen(0, 4, &lr, 0);
    CHECK(m != NULL, "model");
    if (!m) return;
    struct mt_lora_plan p;
    check_plan(m, lr, &p);
    CHECK(m->slab_bytes[MT_MEM_GRADIENTS] == 0 && m->slab_bytes[MT_MEM_OPTIMIZER] == 0,
          "weight gradients or optimizer state allocated");
    size_t wb = m->slab_bytes[MT_MEM_WEIGHTS];
    float *w0 = malloc(wb), *a0 = malloc(lr->n_params * sizeof *a0);
    memcpy(w0, m->params, wb);
    memcpy(a0, lr->params, lr->n_params * sizeof *a0);
    uint8_t *t = text(4096, 1, words2, 7);
    struct mt_loop_engine e;
    mt_lora_engine(&e, lr);
    train(&e, 10, 1e-2f, t, 4096);
    CHECK(memcmp(w0, m->params, wb) == 0, "a base weight changed");
    CHECK(memcmp(a0, lr->params, lr->n_params * sizeof *a0) != 0, "the adapters did not change");
    printf("frozen: %zu trainable, plan %zu/%zu/%zu/%zu bytes weights/grads/opt/acts\n",
           p.trainable, p.bytes[MT_MEM_WEIGHTS], p.bytes[MT_MEM_GRADIENTS],
           p.bytes[MT_MEM_OPTIMIZER], p.activations);
    free(t);
    free(w0);
    free(a0);
    mt_lora_free(lr);
    mt_gpt_free(m);
}

/* Pretrains tiny on words1 text, then fine-tunes on phrases of it from those weights: full
 * fine-tuning (every parameter) and full-rank LoRA on the four block linears, same
 * batches, same schedule, lr 3e-3, no weight decay. */
static void test_fullrank(void)
{
    struct mt_gpt_config cfg = tiny();
    struct mt_gpt *full, *base;
    char err[256];
    enum { N1 = 16384, N2 = 16384, PRE = 150, FT = 60 };
    /* the new text: phrases of the same letters (new byte statistics, no unseen bytes,
     * which only the embeddings LoRA leaves frozen could learn) */
    static const char *const phrases[] = {"the cat ran", "a dog sat on the mat", "and the dog"};
    uint8_t *t1 = text(N1, 2, words1, 9), *t2 = text(N2, 3, phrases, 3);
    CHECK(mt_gpt_create(&full, &cfg, MT_GPT_TRAIN, B, T, err, sizeof err) == 0, "%s", err);
    mt_gpt_init(full, 42);
    struct mt_loop_engine e;
    mt_loop_gpt_engine(&e, full);
    train(&e, PRE, 3e-3f, t1, N1);
    CHECK(mt_gpt_create(&base, &cfg, MT_GPT_FROZEN, B, T, err, sizeof err) == 0, "%s", err);
    memcpy(base->params, full->params, full->slab_bytes[MT_MEM_WEIGHTS]);
    mt_gpt_init(full, 42); /* fresh optimizer state ... */
    memcpy(full->params, base->params, full->slab_bytes[MT_MEM_WEIGHTS]); /* ... same weights */
    struct mt_lora *lr;
    struct mt_lora_opts o = opts(64, 64.0f, 0, B * T);
    CHECK(mt_lora_attach(&lr, base, &o, err, sizeof err) == 0, "%s", err);
    int in[B * T], tg[B * T];
    struct mt_rng rng;
    mt_rng_seed(&rng, 17);
    mt_batch_sample(t2, N2, B, T, &rng, in, tg);
    double l0 = loss_of(base, in, tg);
    double lfull = train(&e, FT, 3e-3f, t2, N2);
    struct mt_loop_engine el;
    mt_lora_engine(&el, lr);
    double llora = train(&el, FT, 3e-3f, t2, N2);
    /* Tolerance: the two parametrizations differ (LoRA cannot move the embeddings,
     * LayerNorms or biases; its update is B A, not a free matrix), so their losses after
     * FT steps agree only approximately: LoRA must recover at least 80 % of full
     * fine-tuning's improvement on the new text, and not beat it by more than 10 %. */
    double gain_full = l0 - lfull, gain_lora = l0 - llora;
    printf("fullrank: first-batch loss %.4f; after %d steps full %.4f lora %.4f "
           "(gains %.4f / %.4f, ratio %.3f)\n",
           l0, FT, lfull, llora, gain_full, gain_lora, gain_lora / gain_full);
    CHECK(gain_full > 0.1, "full fine-tuning did not learn (%g)", gain_full);
    CHECK(gain_lora >= 0.8 * gain_full && gain_lora <= 1.1 * gain_full,
          "full-rank LoRA gain %.4f vs full %.4f", gain_lora, gain_full);
    mt_lora_free(lr);
    mt_gpt_free(base);
    mt_gpt_free(full);
    free(t1);
    free(t2);
}

/* QLoRA's double-quantized scales against the fp32-scaled NF4 base (m, lr: hand bytes,
 * planned peak total). */
static void qlora_dq(struct mt_gpt *m, struct mt_lora *lr, size_t hand, size_t total)
{
    struct mt_lora *lq = NULL;
    struct mt_gpt *mq = frozen(2, 4, &lq, 0);
    CHECK(mq != NULL, "dq model");
    if (!mq) return;
    /* per linear: int8 codes for the scales (192, 64, 256, 256 of them: one block of 256
     * each), one fp32 absmax, the fp32 mean, the 16-float table, the NF4 codes */
    size_t hand_dq = 2 * ((4 * (1 + 1 + 16) + 192 * 32 + 192) + (4 * 18 + 64 * 32 + 64) +
                          (4 * 18 + 256 * 32 + 256) + (4 * 18 + 64 * 128 + 256));
    size_t scales = 2 * (192 + 64 + 256 + 256), saved = hand - hand_dq;
    struct mt_lora_plan p;
    check_plan(mq, lq, &p);
    CHECK(lq->qm->packed_bytes == hand_dq && p.nf4_bytes == hand_dq && saved == 3 * scales - 2 * 4 * 8,
          "dq bytes %zu plan %zu hand %zu", lq->qm->packed_bytes, p.nf4_bytes, hand_dq);
    size_t tq = 0, dqbuf = 256 * sizeof(float); /* the largest layer's scales, decoded */
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        tq += p.bytes[c];
    CHECK(lq->qm->dq_scales_bytes == dqbuf && total - tq == saved - dqbuf,
          "dq planned peak %zu vs %zu: want %zu less (buffer %zu)", tq, total, saved - dqbuf,
          lq->qm->dq_scales_bytes);
    double worst = 0.0;
    for (size_t i = 0; i < lq->qm->n_layers; i++) {
        const struct mt_qtensor *a = lr->qm->layers[i].q, *b = lq->qm->layers[i].q;
        float *s = malloc(b->n_scale * sizeof *s);
        mt_qtensor_scales(b, s);
        for (size_t j = 0; j < b->n_scale; j++) { /* half a step of its block's grid */
            double step = b->scale_absmax[j / MT_QDQ_BLOCK] / 127.0, e = fabs(s[j] - a->scale[j]);
            CHECK(b->scale == NULL && e <= 0.5 * step * (1 + 1e-5) + 1e-9,
                  "layer %zu scale %zu: %g vs fp32 %g (step %g)", i, j, s[j], a->scale[j], step);
            worst = fmax(worst, e / a->scale[j]);
        }
        free(s);
    }
    int in[B * T], tg[B * T];
    for (size_t i = 0; i < B * T; i++)
        in[i] = (int)(i * 7 % 256), tg[i] = (int)(i * 13 % 256);
    double l = loss_of(m, in, tg), lq_ = loss_of(mq, in, tg);
    CHECK(fabs(l - lq_) <= 1e-2 * l, "loss with dq scales %.6f vs fp32 scales %.6f", lq_, l);
    size_t params = 2 * (192 * 64 + 64 * 64 + 256 * 64 + 64 * 256); /* packed weights */
    struct mt_qformat f = {.scheme = MT_QS_NF, .bits = 4, .gran = MT_QG_GROUP, .group_size = 64};
    double big = 8.0 * (double)(mt_qformat_bytes(&f, 4096, 4096) - mt_qformat_bytes_dq(&f, 4096, 4096)) /
                 (4096.0 * 4096.0);
    CHECK(fabs(big - (32.0 / 64 - 8.0 / 64 - 32.0 / (64 * 256) - 32.0 / (4096.0 * 4096.0))) < 1e-12 &&
              fabs(big - 0.373) < 5e-4,
          "4096 x 4096 saves %.6f bits per weight", big);
    printf("qlora dq: nf4 %zu -> %zu bytes (%.4f bits per weight saved; 4096 x 4096: %.6f), "
           "worst scale error %.2g relative, loss %.6f vs %.6f\n",
           hand, hand_dq, 8.0 * (double)saved / (double)params, big, worst, lq_, l);
    mt_lora_free(lq);
    mt_gpt_free(mq);
}

static void test_qlora(void)
{
    struct mt_lora *lr = NULL, *lr32 = NULL;
    struct mt_gpt *m = frozen(1, 4, &lr, 0), *m32 = frozen(0, 4, &lr32, 0);
    CHECK(m != NULL && m32 != NULL, "models");
    if (!m || !m32) return;
    /* NF4, group 64, tiny (C 64): rows x (4 * (k_pad / 64) scale bytes + k_pad / 2 code
     * bytes) + the 16-float table, per block linear */
    size_t hand = 2 * ((4 * (192 * 1 + 16) + 192 * 32) + (4 * (64 + 16) + 64 * 32) +
                       (4 * (256 + 16) + 256 * 32) + (4 * (64 * 4 + 16) + 64 * 128));
    struct mt_lora_plan p, p32;
    check_plan(m, lr, &p);
    check_plan(m32, lr32, &p32);
    CHECK(lr->qm->packed_bytes == hand && p.nf4_bytes == hand, "nf4 bytes %zu plan %zu hand %zu",
          lr->qm->packed_bytes, p.nf4_bytes, hand);
    size_t fp32_linears = 2 * 4 * (192 * 64 + 64 * 64 + 256 * 64 + 64 * 256);
    size_t tile = MT_LORA_TILE * 256 * 4, total = 0, total32 = 0;
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
        total += p.bytes[c];
        total32 += p32.bytes[c];
    }
    CHECK(total32 - total == fp32_linears - hand - tile,
          "peaks %zu vs %zu: difference %zu, expected %zu", total32, total, total32 - total,
          fp32_linears - hand - tile);
    printf("qlora: nf4 %zu bytes (fp32 linears %zu); planned peak %zu vs lora %zu\n", hand,
           fp32_linears, total, total32);
    size_t nq = lr->qm->n_layers;
    uint8_t **q0 = malloc(nq * sizeof *q0);
    for (size_t i = 0; i < nq; i++) {
        q0[i] = malloc(lr->qm->layers[i].q->bytes);
        memcpy(q0[i], lr->qm->layers[i].q->block, lr->qm->layers[i].q->bytes);
    }
    uint8_t *t = text(4096, 1, words2, 7);
    struct mt_loop_engine e;
    mt_lora_engine(&e, lr);
    train(&e, 10, 1e-2f, t, 4096);
    for (size_t i = 0; i < nq; i++) {
        CHECK(memcmp(q0[i], lr->qm->layers[i].q->block, lr->qm->layers[i].q->bytes) == 0,
              "packed layer %zu changed", i);
        free(q0[i]);
    }
    char err[256];
    CHECK(mt_lora_merge(lr, 1, err, sizeof err) != 0, "merged into an nf4 base");
    free(q0);
    qlora_dq(m, lr, hand, total);
    free(t);
    mt_lora_free(lr);
    mt_lora_free(lr32);
    mt_gpt_free(m);
    mt_gpt_free(m32);
}

#ifdef MT_TEST_HEAP
#include "heapreport.h"

/* The child: LoRA (nf4 = 0) or QLoRA fine-tuning, 3 steps inside region "train". */
static int heap_child(int nf4)
{
    struct mt_lora *lr = NULL;
    struct mt_gpt *m = frozen(nf4, 4, &lr, 0);
    if (!m) return 1;
    uint8_t *t = text(4096, 1, words2, 7);
    struct mt_loop_engine e;
    mt_lora_engine(&e, lr);
    mt_memcat_region("train");
    train(&e, 3, 1e-2f, t, 4096);
    mt_memcat_region(NULL);
    free(t);
    mt_lora_free(lr);
    mt_gpt_free(m);
    return failures ? 1 : 0;
}

struct region_peaks {
    long long v[MT_MEM_CAT_COUNT];
    int seen;
};

static int on_region(const struct mt_heapreport_region *r, void *user)
{
    struct region_peaks *p = user;
    if (strcmp(r->name, "train")) return 0;
    for (size_t c = 0; c < r->ncat && c < MT_MEM_CAT_COUNT; c++)
        p->v[c] = r->peak[c];
    p->seen = 1;
    return 0;
}

static void heap_case(const char *lib, const char *dir, int nf4)
{
    char report[1024], err[256];
    static const char *const kind[] = {"fp32", "nf4", "nf4dq"};
    snprintf(report, sizeof report, "%s/lora-heap-%s.txt", dir, kind[nf4]);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        setenv("LD_PRELOAD", lib, 1);
        setenv("MEMTRADE_HEAP_OUT", report, 1);
        setenv("MEMTRADE_HEAP_MODE", "full", 1);
        char *argv[] = {"/proc/self/exe", "heapchild", (char *)kind[nf4], NULL};
        execv(argv[0], argv);
        _exit(4);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child status %d", status);
    struct region_peaks got = {.seen = 0};
    struct mt_heapreport_cb cb = {.region = on_region};
    CHECK(mt_heapreport_read(report, &cb, &got, err, sizeof err) == 0, "report: %s", err);
    CHECK(got.seen, "no region 'train' in %s", report);
    struct mt_gpt_config cfg = tiny();
    struct mt_lora_opts o = opts(4, 8.0f, nf4, B * T);
    struct mt_lora_plan p;
    CHECK(mt_lora_plan(&cfg, &o, B, T, &p, err, sizeof err) == 0, "plan: %s", err);
    static const int cats[] = {MT_MEM_WEIGHTS,     MT_MEM_GRADIENTS, MT_MEM_OPTIMIZER,
                               MT_MEM_ACTIVATIONS, MT_MEM_ACT_GRADS, MT_MEM_WORKSPACE};
    printf("heap %s (train):", nf4 == 2 ? "qlora dq" : nf4 ? "qlora" : "lora");
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++) {
        int c = cats[i];
        long long want = (long long)p.bytes[c];
        printf(" %s %lld/%lld", mt_mem_cat_names[c], got.v[c], want);
        if (c == MT_MEM_WORKSPACE)
            CHECK(got.v[c] >= want, "workspace: profiler %lld, plan %lld", got.v[c], want);
        else
            CHECK(got.v[c] == want, "%s: profiler %lld, plan %lld", mt_mem_cat_names[c], got.v[c],
                  want);
    }
    printf(" (profiler/plan bytes)\n");
}
#endif

int main(int argc, char **argv)
{
#ifdef MT_TEST_HEAP
    if (argc == 3 && !strcmp(argv[1], "heapchild"))
        return heap_child(!strcmp(argv[2], "nf4dq") ? 2 : !strcmp(argv[2], "nf4"));
    if (argc == 4 && !strcmp(argv[1], "heap")) {
        heap_case(argv[2], argv[3], 0);
        heap_case(argv[2], argv[3], 1);
        heap_case(argv[2], argv[3], 2);
        return failures ? 1 : 0;
    }
#endif
    static const struct mt_test tests[] = {{"grad", test_grad},
                                           {"merge", test_merge},
                                           {"frozen", test_frozen},
                                           {"fullrank", test_fullrank},
                                           {"qlora", test_qlora}};
    return mt_test_run(tests, sizeof tests / sizeof tests[0], argc > 1 ? argv[1] : NULL);
}
