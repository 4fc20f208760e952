/* test_engine.c — the training engine (tmodel.h) against the model and against itself.
 *
 * What it is for (one ctest per mode, argv[1]):
 *   llama  — the Llama-family options (llama-tiny): as model, plus recomputation and 16-bit
 *            storage, and 20 model steps whose loss falls by more than 1 nat;
 *   model  — fp32, every = 1, pool: the plan equals mt_gpt_memory(TRAIN) per category,
 *            what was allocated equals the plan, and 5 steps are bit-identical (losses
 *            and weights) to mt_gpt_train_step on a TRAIN-mode model;
 *   accum  — 20 steps of k = 4 micro-batches of B/4 against one batch of B: losses and
 *            final weights within 1e-5 relative; peak activations are the plan's, about a
 *            quarter (exactly the formula below);
 *   ckpt   — every = 1..L on a 4-layer model: losses and weights bit-identical to every =
 *            1; activation bytes fall exactly by the per-block bytes of each slot dropped;
 *            recomputed blocks counted; also with bf16 storage;
 *   malloc — per-step malloc/free: same losses and weights as the pool, the expected
 *            allocation calls per step, all of it freed after each step;
 *   prec   — bf16 with master weights within 0.05 of fp32 after 40 steps; fp16 without
 *            scaling flushes gradient contributions to zero (counted); 16-bit plans hold
 *            half the weight and gradient bytes.
 *   optim  — adamw8 and adafactor (optim.h): optimizer bytes equal the formula (2 bytes a
 *            parameter + 8 a block of 2048; 4 (rows + cols) a matrix, 4 a vector element),
 *            allocation equals the plan (fp32 and bf16), the loss falls over 60 steps and
 *            adamw8's final loss is within 2 % of fp32 AdamW's;
 *   offload — offload=optimizer: losses and weights bit-identical to the state in RAM
 *            (adamw fp32, adamw8 fp32, adafactor bf16), RAM holds the two chunk buffers,
 *            the file holds the state and is gone afterwards; a folder that does not
 *            exist is an error naming its cause;
 *   selective — recompute=selective (fp32 and bf16, pool and malloc, every 1 and 2):
 *            losses, gradients and weights bit-identical to the plain run; activation bytes
 *            lower by exactly the dropped probabilities (fp32: all slots but one shared
 *            buffer; bf16: every slot's 16-bit copy); recompute time measured; with flash
 *            attention the plan is unchanged.
 * What it is not for: the loss-scaling loop and metrics (test_plugins.c), the heap
 * profiler (test_heap.c).
 */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "gpt.h"
#include "rng.h"
#include "tmodel.h"
#include "tf_test.h"
#include "mt_testmath.h"

static char err[512];

enum { T_SEQ = 32, B_FULL = 8, VOCAB_USED = 64 };

/* A fixed pseudo-corpus: a short repeating text so the loss can fall. */
static void batch(uint64_t step, size_t B, int *in, int *tg)
{
    static const char text[] = "the quick brown fox jumps over the lazy dog; pack my box "
                               "with five dozen liquor jugs. ";
    struct mt_rng rng;
    mt_rng_seed(&rng, 1000 + step);
    size_t n = sizeof text - 1;
    for (size_t b = 0; b < B; b++) {
        size_t s = (size_t)mt_rng_below(&rng, n);
        for (size_t t = 0; t < T_SEQ; t++) {
            in[b * T_SEQ + t] = (unsigned char)text[(s + t) % n];
            tg[b * T_SEQ + t] = (unsigned char)text[(s + t + 1) % n];
        }
    }
}

static struct mt_gpt_config config(const char *spec)
{
    struct mt_gpt_config cfg;
    CHECK_OK(mt_gpt_config_parse(&cfg, spec, err, sizeof err), err);
    return cfg;
}

static struct mt_tmodel_opts opts(size_t micro, enum mt_prec p, size_t every, int pool)
{
    struct mt_tmodel_opts o = {.micro_batch = micro,
                               .seq = T_SEQ,
                               .prec = p,
                               .master_weights = 1,
                               .every = every,
                               .pool = pool};
    return o;
}

/* Trains `steps` steps of B_FULL sequences in micro-batches of o->micro_batch; fills
 * losses[steps] and the final fp32 weights (a WEIGHTS-mode model, caller frees). */
static struct mt_gpt *train(const struct mt_gpt_config *cfg, const struct mt_tmodel_opts *o,
                            size_t steps, float *losses, struct mt_tmodel_stats *st)
{
    struct mt_gpt_recipe r = mt_gpt_recipe_default(steps);
    r.batch = B_FULL, r.seq = T_SEQ, r.warmup = 2;
    struct mt_tmodel *t = NULL;
    CHECK_OK(mt_tmodel_create(&t, cfg, o, 1337, err, sizeof err), err);
    int in[B_FULL * T_SEQ], tg[B_FULL * T_SEQ];
    size_t Bm = o->micro_batch;
    for (size_t s = 0; s < steps; s++) {
        batch(s, B_FULL, in, tg);
        double loss = 0.0;
        for (size_t k = 0; k < B_FULL / Bm; k++) {
            float l;
            CHECK_OK(mt_tmodel_forward_backward(t, in + k * Bm * T_SEQ, tg + k * Bm * T_SEQ, Bm,
                                                1.0f, B_FULL * T_SEQ, &l, err, sizeof err),
                     err);
            loss += (double)l * (double)Bm / B_FULL;
        }
        losses[s] = (float)loss;
        mt_tmodel_adamw(t, &r, mt_gpt_lr_at(&r, s), 1.0f);
        CHECK_OK(mt_tmodel_failed(t, err, sizeof err), err);
    }
    struct mt_gpt *m = NULL;
    CHECK_OK(mt_gpt_create(&m, cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err), err);
    mt_tmodel_export(t, m->params);
    const struct mt_tmodel_stats *now = mt_tmodel_stats(t);
    CHECK(now->live[MT_MEM_ACTIVATIONS] == (o->pool ? now->peak[MT_MEM_ACTIVATIONS] : 0));
    CHECK(now->live[MT_MEM_ACT_GRADS] == (o->pool ? now->peak[MT_MEM_ACT_GRADS] : 0));
    if (st) *st = *now;
    mt_tmodel_free(t);
    return m;
}

/* Largest elementwise relative difference (for losses). */
static double max_rel(const float *a, const float *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(fabs((double)b[i]), 1e-30);
        worst = d > worst ? d : worst;
    }
    return worst;
}

/* ||a - b|| / ||b|| (for weight vectors: AdamW turns the last-bit differences of
 * near-zero gradients into lr-sized steps of individual weights, so an elementwise bound
 * would measure Adam's normalisation, not the accumulation). */
static double norm_rel(const float *a, const float *b, size_t n)
{
    double d, r;
    mt_test_l2(a, b, n, &d, &r);
    return sqrt(d / r);
}

static size_t weights_floats(const struct mt_gpt *m)
{
    return m->slab_bytes[MT_MEM_WEIGHTS] / sizeof(float);
}

static void check_stats_match_plan(const struct mt_gpt_config *cfg, const struct mt_tmodel_opts *o,
                                   const struct mt_tmodel_stats *st)
{
    struct mt_tmodel_plan plan;
    CHECK_OK(mt_tmodel_plan(cfg, o, &plan, err, sizeof err), err);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
        if (st->peak[c] != plan.bytes[c])
            fprintf(stderr, "category %s: allocated %zu, plan %zu\n", mt_mem_cat_names[c],
                    st->peak[c], plan.bytes[c]);
        CHECK(st->peak[c] == plan.bytes[c]);
    }
    CHECK(st->peak_total == plan.total);
}

/* `steps` steps of mt_gpt_train_step on a TRAIN-mode model (seed 1337, the default
 * recipe, warmup 2) over the test's batches; losses into loss[]. */
static struct mt_gpt *model_train(const struct mt_gpt_config *cfg, size_t steps, float *loss)
{
    struct mt_gpt *m = NULL;
    CHECK_OK(mt_gpt_create(&m, cfg, MT_GPT_TRAIN, B_FULL, T_SEQ, err, sizeof err), err);
    mt_gpt_init(m, 1337);
    struct mt_gpt_recipe r = mt_gpt_recipe_default(steps);
    r.batch = B_FULL, r.seq = T_SEQ, r.warmup = 2;
    int in[B_FULL * T_SEQ], tg[B_FULL * T_SEQ];
    for (size_t s = 0; s < steps; s++) {
        batch(s, B_FULL, in, tg);
        CHECK_OK(mt_gpt_train_step(m, &r, s, in, tg, &loss[s], NULL, err, sizeof err), err);
    }
    return m;
}

static void test_model(const char *spec)
{
    struct mt_gpt_config cfg = config(spec);
    struct mt_tmodel_opts o = opts(B_FULL, MT_PREC_FP32, 1, 1);
    struct mt_tmodel_plan plan;
    size_t ref[MT_MEM_CAT_COUNT];
    CHECK_OK(mt_tmodel_plan(&cfg, &o, &plan, err, sizeof err), err);
    CHECK(mt_gpt_memory(&cfg, B_FULL, T_SEQ, MT_GPT_TRAIN, ref, err, sizeof err) == plan.total);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        CHECK(ref[c] == plan.bytes[c]);

    enum { STEPS = 5 };
    float mine[STEPS], theirs[STEPS];
    struct mt_tmodel_stats st;
    struct mt_gpt *w = train(&cfg, &o, STEPS, mine, &st);
    check_stats_match_plan(&cfg, &o, &st);
    struct mt_gpt *m = model_train(&cfg, STEPS, theirs);
    for (size_t s = 0; s < STEPS; s++) {
        printf("step %zu: engine %.7f model %.7f\n", s, (double)mine[s], (double)theirs[s]);
        CHECK(mine[s] == theirs[s]);
    }
    CHECK(memcmp(w->params, m->params, w->slab_bytes[MT_MEM_WEIGHTS]) == 0);
    CHECK(theirs[STEPS - 1] < theirs[0]);
    mt_gpt_free(m);
    mt_gpt_free(w);
}

static void test_accum(void)
{
    enum { STEPS = 20 };
    struct mt_gpt_config cfg = config("tiny");
    float l1[STEPS], l4[STEPS];
    struct mt_tmodel_opts o1 = opts(B_FULL, MT_PREC_FP32, 1, 1);
    struct mt_tmodel_opts o4 = opts(B_FULL / 4, MT_PREC_FP32, 1, 1);
    struct mt_tmodel_stats s1, s4;
    struct mt_gpt *w1 = train(&cfg, &o1, STEPS, l1, &s1);
    struct mt_gpt *w4 = train(&cfg, &o4, STEPS, l4, &s4);
    double lw = max_rel(l4, l1, STEPS), ww = norm_rel(w4->params, w1->params, weights_floats(w1));
    printf("accumulation k=4: loss %.5f vs %.5f; worst relative difference of the losses "
           "%.2e, of the weight vector %.2e\n",
           (double)l4[STEPS - 1], (double)l1[STEPS - 1], lw, ww);
    CHECK(lw < 1e-5 && ww < 1e-5);
    CHECK(l1[STEPS - 1] < l1[0] - 0.5f);
    check_stats_match_plan(&cfg, &o1, &s1);
    check_stats_match_plan(&cfg, &o4, &s4);
    /* Activations scale with the micro-batch: every activation tensor of tiny at these
     * shapes is a multiple of 64 bytes, so the quarter is exact. */
    size_t a1 = s1.peak[MT_MEM_ACTIVATIONS], a4 = s4.peak[MT_MEM_ACTIVATIONS];
    printf("peak activations: batch %d %zu bytes, micro-batch %d %zu bytes (%.4f)\n", B_FULL, a1,
           B_FULL / 4, a4, (double)a4 / (double)a1);
    CHECK(a4 * 4 == a1);
    CHECK(s4.peak[MT_MEM_ACT_GRADS] * 4 == s1.peak[MT_MEM_ACT_GRADS]);
    CHECK(s4.peak[MT_MEM_WEIGHTS] == s1.peak[MT_MEM_WEIGHTS]);
    CHECK(s4.peak[MT_MEM_GRADIENTS] == s1.peak[MT_MEM_GRADIENTS]);
    mt_gpt_free(w1);
    mt_gpt_free(w4);
}

/* Bytes of one kept block's activations (everything but the residual output) for B x T
 * at `es` bytes per stored element, from the configuration alone. */
static size_t block_bytes(const struct mt_gpt_config *c, size_t B, size_t es)
{
    size_t BT = B * T_SEQ, C = c->n_embd;
    size_t stored = BT * C * 4 /* ln1, atty, residual2, ln2 */ + BT * 3 * C + 2 * BT * 4 * C +
                    B * c->n_head * T_SEQ * T_SEQ;
    return stored * es + 4 * BT * sizeof(float); /* LayerNorm means and rstds */
}

static void test_ckpt(enum mt_prec p)
{
    enum { STEPS = 4 };
    struct mt_gpt_config cfg = config("tiny,n_layer=4");
    size_t L = cfg.n_layer, es = p == MT_PREC_FP32 ? 4 : 2;
    float ref[STEPS], got[STEPS];
    struct mt_tmodel_opts o = opts(B_FULL, p, 1, 1);
    struct mt_tmodel_stats s0, sk;
    struct mt_gpt *w0 = train(&cfg, &o, STEPS, ref, &s0);
    for (size_t every = 2; every <= L; every++) {
        o.every = every;
        struct mt_gpt *wk = train(&cfg, &o, STEPS, got, &sk);
        CHECK(memcmp(ref, got, sizeof ref) == 0);
        CHECK(memcmp(w0->params, wk->params, w0->slab_bytes[MT_MEM_WEIGHTS]) == 0);
        check_stats_match_plan(&cfg, &o, &sk);
        size_t slots = (L + every - 1) / every;
        size_t saved = (L - slots) * block_bytes(&cfg, B_FULL, es);
        printf("%s every %zu: identical losses and weights; activations %zu -> %zu bytes "
               "(%zu slots), %zu blocks recomputed, %.3f s\n",
               mt_prec_name(p), every, s0.peak[MT_MEM_ACTIVATIONS], sk.peak[MT_MEM_ACTIVATIONS],
               slots, sk.recomputed_blocks, sk.recompute_s);
        CHECK(s0.peak[MT_MEM_ACTIVATIONS] - sk.peak[MT_MEM_ACTIVATIONS] == saved);
        CHECK(sk.recomputed_blocks == STEPS * (L - slots));
        CHECK(sk.recompute_s > 0.0);
        mt_gpt_free(wk);
    }
    CHECK(s0.recomputed_blocks == 0);
    mt_gpt_free(w0);
}

static void test_malloc(void)
{
    enum { STEPS = 4 };
    struct mt_gpt_config cfg = config("tiny,n_layer=3");
    for (int p = MT_PREC_FP32; p <= MT_PREC_BF16; p++) {
        for (size_t every = 1; every <= 3; every += 2) {
            float lp[STEPS], lm[STEPS];
            struct mt_tmodel_opts o = opts(B_FULL / 2, (enum mt_prec)p, every, 1);
            struct mt_tmodel_stats sp, sm;
            struct mt_gpt *wp = train(&cfg, &o, STEPS, lp, &sp);
            o.pool = 0;
            struct mt_gpt *wm = train(&cfg, &o, STEPS, lm, &sm);
            CHECK(memcmp(lp, lm, sizeof lp) == 0);
            CHECK(memcmp(wp->params, wm->params, wp->slab_bytes[MT_MEM_WEIGHTS]) == 0);
            /* Per micro-step: 7 tensors outside the blocks + L residuals + the blocks'
             * 12 tensors (fp32: every block in forward, recomputed ones again; 16-bit:
             * kept blocks in forward, recomputed ones in backward) + 6 activation
             * gradients. */
            size_t L = cfg.n_layer, slots = (L + every - 1) / every, micro = STEPS * 2;
            size_t blocks = p == MT_PREC_FP32 ? L + (L - slots) : L;
            size_t per_micro = 7 + L + 12 * blocks + 6;
            size_t fixed = sp.alloc_calls - 2; /* the pool's two activation slabs */
            printf("%s every %zu: pool %zu allocations, malloc %zu (%zu per micro-step), "
                   "peak activations pool %zu malloc %zu\n",
                   mt_prec_name((enum mt_prec)p), every, sp.alloc_calls, sm.alloc_calls, per_micro,
                   sp.peak[MT_MEM_ACTIVATIONS], sm.peak[MT_MEM_ACTIVATIONS]);
            CHECK(sm.alloc_calls == fixed + micro * per_micro);
            CHECK(sm.free_calls == sm.alloc_calls - fixed);
            CHECK(sm.peak[MT_MEM_ACTIVATIONS] <= sp.peak[MT_MEM_ACTIVATIONS]);
            CHECK(sm.peak[MT_MEM_ACTIVATIONS] > sp.peak[MT_MEM_ACTIVATIONS] / 2);
            mt_gpt_free(wp);
            mt_gpt_free(wm);
        }
    }
}

static void test_prec(void)
{
    enum { STEPS = 40 };
    struct mt_gpt_config cfg = config("tiny");
    float l32[STEPS], l16[STEPS], lh[STEPS];
    struct mt_tmodel_stats s32, s16, sh;
    struct mt_tmodel_opts o = opts(B_FULL, MT_PREC_FP32, 1, 1);
    struct mt_gpt *w32 = train(&cfg, &o, STEPS, l32, &s32);
    o.prec = MT_PREC_BF16;
    struct mt_gpt *w16 = train(&cfg, &o, STEPS, l16, &s16);
    printf("after %d steps: fp32 %.4f, bf16 + master %.4f (first %.4f)\n", STEPS,
           (double)l32[STEPS - 1], (double)l16[STEPS - 1], (double)l32[0]);
    CHECK(fabsf(l32[STEPS - 1] - l16[STEPS - 1]) < 0.05f);
    CHECK(l16[STEPS - 1] < l16[0] - 0.5f);
    CHECK(s16.peak[MT_MEM_WEIGHTS] * 2 == s32.peak[MT_MEM_WEIGHTS]);
    CHECK(s16.peak[MT_MEM_GRADIENTS] * 2 == s32.peak[MT_MEM_GRADIENTS]);
    CHECK(s16.peak[MT_MEM_OPTIMIZER] == s32.peak[MT_MEM_OPTIMIZER] * 3 / 2); /* + master */
    CHECK(s16.peak[MT_MEM_ACTIVATIONS] < s32.peak[MT_MEM_ACTIVATIONS]);
    check_stats_match_plan(&cfg, &o, &s16);
    CHECK(s16.grad_nonzero > 0);
    o.prec = MT_PREC_FP16; /* no loss scaling: small gradients flush to zero */
    struct mt_gpt *wh = train(&cfg, &o, STEPS, lh, &sh);
    printf("fp16 unscaled: %.4f, %zu of %zu gradient contributions flushed to zero; bf16 "
           "%zu\n",
           (double)lh[STEPS - 1], sh.grad_flushed, sh.grad_nonzero, s16.grad_flushed);
    CHECK(sh.grad_flushed > 0 && sh.grad_flushed > 10 * s16.grad_flushed);
    o.prec = MT_PREC_BF16; /* oneDNN bf16 GEMMs against fp32 GEMMs on the same values */
    o.emulate_bf16_gemm = 1;
    float le[STEPS];
    struct mt_tmodel_stats se;
    struct mt_gpt *we = train(&cfg, &o, STEPS, le, &se);
    printf("bf16 GEMMs: %zu through oneDNN (%zu failed); emulated loss %.6f vs %.6f, first "
           "step %.7f vs %.7f\n",
           s16.bf16_gemms, s16.bf16_fallbacks, (double)le[STEPS - 1], (double)l16[STEPS - 1],
           (double)le[0], (double)l16[0]);
    CHECK(se.bf16_gemms == 0 && s16.bf16_fallbacks == 0);
    CHECK(fabsf(le[0] - l16[0]) < 1e-5f * l16[0]);
    CHECK(fabsf(le[STEPS - 1] - l16[STEPS - 1]) < 0.01f);
    o.emulate_bf16_gemm = 0;
    mt_gpt_free(we);
    o.master_weights = 0;
    struct mt_tmodel_stats sn;
    struct mt_gpt *wn = train(&cfg, &o, STEPS, lh, &sn);
    printf("bf16 without master weights: %.4f\n", (double)lh[STEPS - 1]);
    CHECK(sn.peak[MT_MEM_OPTIMIZER] == s32.peak[MT_MEM_OPTIMIZER]);
    check_stats_match_plan(&cfg, &o, &sn);
    mt_gpt_free(w32);
    mt_gpt_free(w16);
    mt_gpt_free(wh);
    mt_gpt_free(wn);
}

/* The block options (flash attention, grouped-query heads, a window) in the engine: the
 * engine equals the model bit for bit, recomputation (every 2) is bit-identical, and with
 * 16-bit storage (flash's log-sum-exp rows stay fp32) the allocation equals the plan. */
static void recompute_options(const char *spec);

static void test_options(void)
{
    const char *spec = "tiny,attention=flash,n_head=4,n_kv_head=2,window=9";
    test_model(spec);
    test_model("tiny,n_head=4,n_kv_head=1,window=5");
    recompute_options(spec);
}

/* The Llama-family options (llama-tiny: RMSNorm, RoPE, SwiGLU, GQA, no biases, untied
 * head; and narrower with flash attention): the engine equals the model bit for bit over
 * 5 steps, recomputation and 16-bit storage as for the attention options; then 20 steps of
 * the model on text: the loss falls. */
static void test_llama(void)
{
    test_model("llama-tiny");
    test_model("llama-tiny,n_embd=64,ffn=96,attention=flash");
    recompute_options("llama-tiny,n_embd=64,ffn=96");
    enum { STEPS = 20 };
    struct mt_gpt_config cfg = config("llama-tiny");
    float loss[STEPS];
    struct mt_gpt *m = model_train(&cfg, STEPS, loss);
    printf("llama-tiny 20 steps: loss %.4f -> %.4f\n", (double)loss[0], (double)loss[STEPS - 1]);
    CHECK(loss[STEPS - 1] < loss[0] - 1.0f);
    mt_gpt_free(m);
}

static void recompute_options(const char *spec)
{
    enum { STEPS = 3 };
    struct mt_gpt_config cfg = config(spec);
    for (enum mt_prec p = MT_PREC_FP32; p <= MT_PREC_BF16; p++) {
        float l1[STEPS], l2[STEPS];
        struct mt_tmodel_stats s1, s2;
        struct mt_tmodel_opts o = opts(B_FULL, p, 1, 0);
        struct mt_gpt *w1 = train(&cfg, &o, STEPS, l1, &s1);
        o.every = 2;
        struct mt_gpt *w2 = train(&cfg, &o, STEPS, l2, &s2);
        check_stats_match_plan(&cfg, &o, &s2);
        o.every = 1;
        check_stats_match_plan(&cfg, &o, &s1);
        CHECK(memcmp(l1, l2, sizeof l1) == 0);
        CHECK(memcmp(w1->params, w2->params, w1->slab_bytes[MT_MEM_WEIGHTS]) == 0);
        printf("%s %s: every 2 = every 1 bit for bit, activations %zu -> %zu bytes\n", spec,
               p == MT_PREC_FP32 ? "fp32" : "bf16", s1.peak[MT_MEM_ACTIVATIONS],
               s2.peak[MT_MEM_ACTIVATIONS]);
        mt_gpt_free(w1);
        mt_gpt_free(w2);
    }
}

/* The optimizer bytes by formula, from the parameter shapes alone. */
static size_t optim_formula(const struct mt_gpt_config *cfg, enum mt_optim_kind k)
{
    size_t bytes = 0;
    for (int p = 0; p < MT_P_COUNT; p++) {
        size_t d[3], nd = mt_gpt_param_shape(cfg, (enum mt_gpt_param)p, d);
        if (nd == 0) continue; /* a tensor this configuration does not have */
        int layer = p >= MT_P_LN1W && p <= MT_P_FCPROJB;
        size_t count = layer ? d[0] : 1, rows = d[layer ? 1 : 0];
        size_t cols = nd == 3 ? d[2] : (!layer && nd == 2 ? d[1] : 0);
        size_t n = rows * (cols ? cols : 1);
        if (k == MT_OPTIM_ADAMW8)
            bytes += count * (2 * n + 8 * ((n + 2047) / 2048));
        else
            bytes += count * 4 * (cols ? rows + cols : n);
    }
    return bytes;
}

static double tail_mean(const float *l, size_t n)
{
    double s = 0.0;
    for (size_t i = n - 10; i < n; i++)
        s += l[i];
    return s / 10.0;
}

static void test_optim(void)
{
    enum { STEPS = 60 };
    struct mt_gpt_config cfg = config("tiny");
    size_t nparams = mt_gpt_num_params(&cfg);
    float base[STEPS];
    struct mt_tmodel_opts o = opts(B_FULL, MT_PREC_FP32, 1, 1);
    mt_gpt_free(train(&cfg, &o, STEPS, base, NULL));
    for (enum mt_optim_kind k = MT_OPTIM_ADAMW8; k <= MT_OPTIM_ADAFACTOR; k++) {
        float l[STEPS];
        struct mt_tmodel_stats st;
        struct mt_tmodel_plan plan;
        o = opts(B_FULL, MT_PREC_FP32, 1, 1);
        o.optimizer = k;
        CHECK_OK(mt_tmodel_plan(&cfg, &o, &plan, err, sizeof err), err);
        size_t want = optim_formula(&cfg, k);
        CHECK(plan.bytes[MT_MEM_OPTIMIZER] == want && plan.optim_state == want);
        mt_gpt_free(train(&cfg, &o, STEPS, l, &st));
        check_stats_match_plan(&cfg, &o, &st);
        double a = tail_mean(base, STEPS), b = tail_mean(l, STEPS);
        CHECK(b < 0.7 * l[0]);
        if (k == MT_OPTIM_ADAMW8) CHECK(fabs(b - a) <= 0.02 * a);
        printf("%s: optimizer %zu bytes for %zu params (fp32 AdamW %zu), loss %.4f -> %.4f "
               "(AdamW %.4f)\n",
               mt_optim_name(k), want, nparams, 8 * nparams, (double)l[0], b, a);
        o.prec = MT_PREC_BF16; /* master weights on: + 4 bytes a (padded) parameter */
        CHECK_OK(mt_tmodel_plan(&cfg, &o, &plan, err, sizeof err), err);
        mt_gpt_free(train(&cfg, &o, 3, l, &st));
        check_stats_match_plan(&cfg, &o, &st);
    }
}

/* Files named mt_optim_state_* in dir. */
static int state_files(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    for (struct dirent *e; (e = readdir(d));)
        n += !strncmp(e->d_name, "mt_optim_state_", 15);
    closedir(d);
    return n;
}

static void test_offload(void)
{
    enum { STEPS = 8 };
    struct mt_gpt_config cfg = config("tiny");
    char dir[] = "/tmp/mt_offload_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    static const struct {
        enum mt_optim_kind k;
        enum mt_prec p;
    } runs[] = {{MT_OPTIM_ADAMW, MT_PREC_FP32},
                {MT_OPTIM_ADAMW8, MT_PREC_FP32},
                {MT_OPTIM_ADAFACTOR, MT_PREC_BF16}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        float l1[STEPS], l2[STEPS];
        struct mt_tmodel_stats s1, s2;
        struct mt_tmodel_opts o = opts(B_FULL, runs[i].p, 1, 1);
        o.optimizer = runs[i].k;
        struct mt_gpt *w1 = train(&cfg, &o, STEPS, l1, &s1);
        o.offload = 1;
        o.scratch_dir = dir;
        struct mt_gpt *w2 = train(&cfg, &o, STEPS, l2, &s2);
        check_stats_match_plan(&cfg, &o, &s2);
        CHECK(memcmp(l1, l2, sizeof l1) == 0);
        CHECK(memcmp(w1->params, w2->params, w1->slab_bytes[MT_MEM_WEIGHTS]) == 0);
        struct mt_tmodel_plan plan;
        struct mt_optim_plan op;
        CHECK_OK(mt_tmodel_plan(&cfg, &o, &plan, err, sizeof err), err);
        mt_optim_plan(&cfg, o.optimizer, 1, &op);
        CHECK(s2.optim_io.file_bytes == plan.optim_state);
        CHECK(s2.optim_io.read_bytes == STEPS * plan.optim_state);
        CHECK(s2.optim_io.written_bytes == STEPS * plan.optim_state);
        CHECK(op.ram_bytes == 2 * op.chunk_bytes && op.ram_bytes < op.state_bytes);
        CHECK(state_files(dir) == 0);
        printf("offload %s %s: bit-identical; RAM %zu bytes (2 chunks) for a %zu-byte file, "
               "I/O %.4f s, waited %.4f s\n",
               mt_optim_name(o.optimizer), mt_prec_name(o.prec), op.ram_bytes,
               s2.optim_io.file_bytes, s2.optim_io.io_s, s2.optim_io.wait_s);
        mt_gpt_free(w1);
        mt_gpt_free(w2);
    }
    struct mt_tmodel_opts o = opts(B_FULL, MT_PREC_FP32, 1, 1);
    o.offload = 1;
    o.scratch_dir = "/nonexistent/mt_offload";
    struct mt_tmodel *t = NULL;
    CHECK(mt_tmodel_create(&t, &cfg, &o, 1, err, sizeof err) == -1 && !t);
    CHECK(strstr(err, "/nonexistent/mt_offload") && strstr(err, "No such file"));
    printf("missing folder: %s\n", err);
    rmdir(dir);
}

/* Gradients of one forward/backward of the first batch (fp32 export). */
static float *grads_once(const struct mt_gpt_config *cfg, const struct mt_tmodel_opts *o)
{
    struct mt_tmodel *t = NULL;
    CHECK_OK(mt_tmodel_create(&t, cfg, o, 1337, err, sizeof err), err);
    int in[B_FULL * T_SEQ], tg[B_FULL * T_SEQ];
    batch(0, B_FULL, in, tg);
    float l;
    CHECK_OK(mt_tmodel_forward_backward(t, in, tg, o->micro_batch, 1.0f, 0, &l, err, sizeof err),
             err);
    float *g = malloc(mt_gpt_memory(cfg, 0, 0, MT_GPT_WEIGHTS, NULL, NULL, 0));
    CHECK(g != NULL);
    mt_tmodel_export_grads(t, g);
    mt_tmodel_free(t);
    return g;
}

static void test_selective(void)
{
    enum { STEPS = 4 };
    struct mt_gpt_config cfg = config("tiny,n_layer=4");
    size_t att = mt_gpt_act_elems(&cfg, B_FULL, T_SEQ, MT_A_ATT);
    for (enum mt_prec p = MT_PREC_FP32; p <= MT_PREC_BF16; p++)
        for (int pool = 0; pool < 2; pool++)
            for (size_t every = 1; every <= 2; every++) {
                float l1[STEPS], l2[STEPS];
                struct mt_tmodel_stats s1, s2;
                struct mt_tmodel_opts o = opts(B_FULL, p, every, pool);
                struct mt_gpt *w1 = train(&cfg, &o, STEPS, l1, &s1);
                float *g1 = grads_once(&cfg, &o);
                o.selective = 1;
                struct mt_gpt *w2 = train(&cfg, &o, STEPS, l2, &s2);
                float *g2 = grads_once(&cfg, &o);
                check_stats_match_plan(&cfg, &o, &s2);
                size_t wb = w1->slab_bytes[MT_MEM_WEIGHTS];
                CHECK(memcmp(l1, l2, sizeof l1) == 0);
                CHECK(memcmp(g1, g2, wb) == 0);
                CHECK(memcmp(w1->params, w2->params, wb) == 0);
                struct mt_tmodel_plan plan;
                CHECK_OK(mt_tmodel_plan(&cfg, &o, &plan, err, sizeof err), err);
                size_t slots = plan.n_slots, es = p == MT_PREC_FP32 ? 4 : 2;
                size_t dropped = p == MT_PREC_FP32 ? (slots - 1) * att * es : slots * att * es;
                CHECK(s1.peak[MT_MEM_ACTIVATIONS] - s2.peak[MT_MEM_ACTIVATIONS] == dropped);
                CHECK(s2.recompute_s > 0.0);
                printf("selective %s %s every %zu: bit-identical; activations %zu -> %zu bytes "
                       "(-%zu), recompute %.4f s\n",
                       mt_prec_name(p), pool ? "pool" : "malloc", every,
                       s1.peak[MT_MEM_ACTIVATIONS], s2.peak[MT_MEM_ACTIVATIONS], dropped,
                       s2.recompute_s);
                mt_gpt_free(w1);
                mt_gpt_free(w2);
                free(g1);
                free(g2);
            }
    struct mt_gpt_config fl = config("tiny,attention=flash");
    struct mt_tmodel_opts o = opts(B_FULL, MT_PREC_FP32, 1, 1);
    struct mt_tmodel_plan a, b;
    CHECK_OK(mt_tmodel_plan(&fl, &o, &a, err, sizeof err), err);
    o.selective = 1;
    CHECK_OK(mt_tmodel_plan(&fl, &o, &b, err, sizeof err), err);
    CHECK(a.total == b.total && a.bytes[MT_MEM_ACTIVATIONS] == b.bytes[MT_MEM_ACTIVATIONS]);
    printf("flash: selective changes nothing (%zu activation bytes)\n",
           b.bytes[MT_MEM_ACTIVATIONS]);
}

static void test_model_tiny(void)
{
    test_model("tiny");
}
static void test_ckpt_both(void)
{
    test_ckpt(MT_PREC_FP32);
    test_ckpt(MT_PREC_BF16);
}

int main(int argc, char **argv)
{
    static const struct tf_part parts[] = {
        {"model", test_model_tiny},   {"options", test_options}, {"llama", test_llama},
        {"accum", test_accum},        {"ckpt", test_ckpt_both},  {"malloc", test_malloc},
        {"prec", test_prec},          {"optim", test_optim},     {"offload", test_offload},
        {"selective", test_selective}};
    return tf_run_parts(parts, sizeof parts / sizeof parts[0], argc, argv);
}
