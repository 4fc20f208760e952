/* test_train.c — training behaviour, memory accounting, decoding and hooks of the model.
 *
 * What it is for:
 *   - overfit one batch: the tiny model's loss starts near ln(256) = 5.55 and must fall
 *     below 0.5 within 150 AdamW steps on one fixed batch;
 *   - determinism: the same seed and thread count give bit-identical losses and weights;
 *     a different seed gives different ones;
 *   - memory: mt_gpt_memory equals the allocated slabs per category for every mode, and
 *     the weights slab equals 4 bytes x the closed-form parameter count;
 *   - the KV-cache decoder gives the same logits as the batched forward (1e-4), the linear
 *     hook sees every linear layer and a failing hook fails the forward;
 *   - gradient accumulation: 4 micro-batches of B/4 (backward with norm_tokens = B*T)
 *     match one batch of B over 5 steps: weights within 1e-5 relative (norm-wise);
 *   - configuration parsing refuses bad input.
 * What it is not for: gradient correctness (test_grad.c) or kernel accuracy.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "gpt.h"
#include "tf_test.h"

static const char text[] =
    "It is a truth universally acknowledged, that a single man in possession of a good "
    "fortune, must be in want of a wife. However little known the feelings or views of such "
    "a man may be on his first entering a neighbourhood, this truth is so well fixed in the "
    "minds of the surrounding families, that he is considered the rightful property of some "
    "one or other of their daughters.";

static char err[512];

/* Printed by the golden part with MT_PRINT_GOLDEN=1 (see golden()). */
#define GOLDEN_LOSS 5.58047581
#define GOLDEN_W0 -0.000564994931
#define GOLDEN_W1 0.0274636373
#define GOLDEN_W2 -0.002102762
#define GOLDEN_L0 0.00649693282
#define GOLDEN_L1 0.14057453
#define GOLDEN_L2 0.169976532

static struct mt_gpt *make(const char *spec, enum mt_gpt_mode mode, size_t B, size_t T,
                           uint64_t seed)
{
    struct mt_gpt_config cfg;
    struct mt_gpt *m = NULL;
    CHECK_OK(mt_gpt_config_parse(&cfg, spec, err, sizeof err), err);
    CHECK_OK(mt_gpt_create(&m, &cfg, mode, B, T, err, sizeof err), err);
    mt_gpt_init(m, seed);
    return m;
}

static void overfit(void)
{
    enum { B = 4, T = 64 };
    struct mt_gpt *m = make("tiny", MT_GPT_TRAIN, B, T, 1);
    int in[B * T], tg[B * T];
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            in[b * T + t] = (unsigned char)text[b * 70 + t];
            tg[b * T + t] = (unsigned char)text[b * 70 + t + 1];
        }
    struct mt_gpt_recipe r = mt_gpt_recipe_default(150);
    r.batch = B, r.seq = T; /* the default recipe: lr 3e-3, wd 0.1, warmup 15 */
    float loss = 0, first = 0;
    size_t step;
    for (step = 0; step < 150; step++) {
        CHECK_OK(mt_gpt_train_step(m, &r, step, in, tg, &loss, NULL, err, sizeof err), err);
        if (step == 0) first = loss;
        if (loss < 0.5f) break;
    }
    printf("overfit: loss %.3f -> %.4f after %zu steps\n", first, loss, step + 1);
    CHECK(fabsf(first - logf(256.0f)) < 0.3f);
    CHECK(loss < 0.5f);
    mt_gpt_free(m);
}

/* An order-sensitive checksum of m's weights (bit-identical weights give equal sums); frees m. */
static double checksum_and_free(struct mt_gpt *m)
{
    double h = 0;
    for (size_t i = 0; i < m->n_params; i++)
        h = h * 1.000001 + m->params[i];
    mt_gpt_free(m);
    return h;
}

/* Trains 8 steps on sampled batches; returns the weights' checksum, fills losses. */
static double run_seeded(uint64_t seed, float losses[8])
{
    enum { B = 4, T = 32 };
    struct mt_gpt *m = make("tiny", MT_GPT_TRAIN, B, T, seed);
    struct mt_rng rng;
    mt_rng_seed(&rng, seed ^ 0x5eed);
    struct mt_gpt_recipe r = mt_gpt_recipe_default(8);
    r.batch = B, r.seq = T;
    int in[B * T], tg[B * T];
    for (size_t s = 0; s < 8; s++) {
        mt_batch_sample((const uint8_t *)text, sizeof text - 1, B, T, &rng, in, tg);
        CHECK_OK(mt_gpt_train_step(m, &r, s, in, tg, &losses[s], NULL, err, sizeof err), err);
    }
    return checksum_and_free(m);
}

static void determinism(void)
{
    float a[8], b[8], c[8];
    double ha = run_seeded(11, a), hb = run_seeded(11, b), hc = run_seeded(12, c);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(ha == hb);
    CHECK(memcmp(a, c, sizeof a) != 0);
    CHECK(ha != hc);
    printf("determinism: losses %.6f .. %.6f identical over two runs (%d threads)\n", a[0], a[7],
           omp_get_max_threads());
}

static void memory(void)
{
    const char *specs[] = {"tiny", "small,n_layer=1", "tiny,vocab=50257,n_head=4"};
    for (size_t k = 0; k < 3; k++)
        for (int mode = MT_GPT_WEIGHTS; mode <= MT_GPT_TRAIN; mode++) {
            struct mt_gpt_config cfg;
            size_t bytes[MT_MEM_CAT_COUNT];
            CHECK_OK(mt_gpt_config_parse(&cfg, specs[k], err, sizeof err), err);
            size_t total = mt_gpt_memory(&cfg, 3, 16, mode, bytes, err, sizeof err);
            CHECK(total > 0);
            struct mt_gpt *m = make(specs[k], mode, 3, 16, 1);
            size_t sum = 0;
            for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
                CHECK(bytes[c] == m->slab_bytes[c]);
                sum += bytes[c];
            }
            CHECK(sum == total);
            size_t V = cfg.vocab, T = cfg.seq_len, L = cfg.n_layer, C = cfg.n_embd;
            size_t np = V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C;
            CHECK(m->n_params == np);
            CHECK(bytes[MT_MEM_WEIGHTS] == 4 * np); /* every tensor is a multiple of 64 B */
            CHECK(bytes[MT_MEM_GRADIENTS] == (mode == MT_GPT_TRAIN ? 4 * np : 0));
            CHECK(bytes[MT_MEM_OPTIMIZER] == (mode == MT_GPT_TRAIN ? 8 * np : 0));
            if (mode == MT_GPT_TRAIN) { /* activations: closed form for B=3 T=16 */
                size_t BT = 48, NH = cfg.n_head;
                size_t acts = L * (BT * (16 * C + 4) + 3 * NH * 16 * 16) + BT * (3 * C + 3 + V);
                CHECK(bytes[MT_MEM_ACTIVATIONS] >= 4 * acts);
                CHECK(bytes[MT_MEM_ACTIVATIONS] <= 4 * acts + 64 * MT_A_COUNT);
            }
            mt_gpt_free(m);
        }
    struct mt_gpt_config cfg;
    mt_gpt_config_preset(&cfg, "small", err, sizeof err);
    CHECK(mt_gpt_memory(&cfg, 8, 129, MT_GPT_TRAIN, NULL, err, sizeof err) == 0); /* T > max */
    printf("memory: per-category bytes match the allocation (%s)\n", "9 cases");
}

/* Hook that counts calls per linear kind and forwards to the default. */
struct counting {
    struct mt_gpt *m;
    size_t calls[MT_LIN_COUNT];
    int fail;
};

static int counting_hook(void *user, size_t layer, enum mt_linear which, const float *in,
                         float *out, size_t rows)
{
    struct counting *c = user;
    c->calls[which]++;
    if (c->fail) return -1;
    return mt_gpt_linear_default(c->m, layer, which, in, out, rows);
}

static void decode_and_hook(void)
{
    enum { T = 20 };
    struct mt_gpt *m = make("tiny", MT_GPT_INFER, 1, T, 3);
    int in[T];
    for (size_t t = 0; t < T; t++)
        in[t] = (unsigned char)text[t];
    struct counting cnt = {.m = m};
    m->hook = (struct mt_gpt_linear_hook){counting_hook, &cnt};
    CHECK_OK(mt_gpt_forward(m, in, NULL, 1, T, NULL, err, sizeof err), err);
    CHECK(cnt.calls[MT_LIN_QKV] == 2 && cnt.calls[MT_LIN_FCPROJ] == 2);
    CHECK(cnt.calls[MT_LIN_LMHEAD] == 1);
    struct mt_gpt_kv *kv = NULL;
    CHECK_OK(mt_gpt_kv_create(&kv, &m->cfg, T, err, sizeof err), err);
    double worst = 0;
    for (size_t t = 0; t < T; t++) {
        CHECK_OK(mt_gpt_decode_step(m, kv, in[t], err, sizeof err), err);
        for (size_t v = 0; v < m->cfg.vocab; v++) {
            double d = fabs(kv->logits[v] - m->act[MT_A_LOGITS][t * m->cfg.vocab + v]);
            worst = d > worst ? d : worst;
        }
    }
    printf("decode: KV-cache logits vs forward max abs diff %.2e\n", worst);
    CHECK(worst < 1e-4);
    CHECK(cnt.calls[MT_LIN_LMHEAD] == 1 + T);
    CHECK(mt_gpt_decode_step(m, kv, in[0], err, sizeof err) != 0); /* cache full */
    mt_gpt_kv_free(kv);
    cnt.fail = 1;
    CHECK(mt_gpt_forward(m, in, NULL, 1, T, NULL, err, sizeof err) != 0);
    in[3] = 256;
    m->hook.matmul = NULL;
    CHECK(mt_gpt_forward(m, in, NULL, 1, T, NULL, err, sizeof err) != 0); /* bad token */
    printf("hook: every linear seen, failure propagates; bad token refused: %s\n", err);
    mt_gpt_free(m);
}

/* Five steps on the same data as one batch of 8 or as 4 accumulated micro-batches of 2. */
static void accumulate(void)
{
    enum { B = 8, T = 16, K = 4 };
    struct mt_gpt *one = make("tiny", MT_GPT_TRAIN, B, T, 21);
    struct mt_gpt *acc = make("tiny", MT_GPT_TRAIN, B / K, T, 21);
    struct mt_gpt_recipe r = mt_gpt_recipe_default(5);
    r.batch = B, r.seq = T;
    int in[B * T], tg[B * T];
    for (size_t s = 0; s < 5; s++) {
        for (size_t i = 0; i < B * T; i++) {
            in[i] = (unsigned char)text[(s * 13 + i) % (sizeof text - 2)];
            tg[i] = (unsigned char)text[(s * 13 + i) % (sizeof text - 2) + 1];
        }
        float l1, lk = 0.0f, part;
        CHECK_OK(mt_gpt_train_step(one, &r, s, in, tg, &l1, NULL, err, sizeof err), err);
        mt_gpt_zero_grad(acc);
        for (size_t k = 0; k < K; k++) {
            size_t off = k * (B / K) * T;
            CHECK_OK(mt_gpt_forward(acc, in + off, tg + off, B / K, T, &part, err, sizeof err),
                     err);
            CHECK_OK(mt_gpt_backward(acc, 1.0f, B * T, err, sizeof err), err);
            lk += part / K;
        }
        mt_gpt_adamw_step(acc, &r, mt_gpt_lr_at(&r, s), 1.0f);
        CHECK(fabsf(l1 - lk) <= 1e-5f * l1);
    }
    double d = 0, n = 0;
    for (size_t i = 0; i < one->n_params; i++) {
        d += ((double)one->params[i] - acc->params[i]) * ((double)one->params[i] - acc->params[i]);
        n += (double)one->params[i] * one->params[i];
    }
    printf("accumulate: 4 x B/4 vs B over 5 steps, weights differ by %.2e relative\n", sqrt(d / n));
    CHECK(sqrt(d / n) < 1e-5);
    mt_gpt_free(one);
    mt_gpt_free(acc);
}

/* Golden values: the tiny model from seed 1 on the first 64 bytes of `text`. They pin
 * the init (RNG stream, scales), the forward and the loss; a change to any of them has to
 * update these numbers on purpose. Tolerance 1e-4 relative on outputs covers GEMM
 * summation order across CPUs, 1e-6 on weights covers libm. MT_PRINT_GOLDEN=1 prints
 * fresh values. */
static void golden(void)
{
    enum { T = 64 };
    static const double want_loss = GOLDEN_LOSS, want_w[3] = {GOLDEN_W0, GOLDEN_W1, GOLDEN_W2};
    static const double want_logit[3] = {GOLDEN_L0, GOLDEN_L1, GOLDEN_L2};
    struct mt_gpt *m = make("tiny", MT_GPT_INFER, 1, T, 1);
    int in[T], tg[T];
    for (size_t t = 0; t < T; t++) {
        in[t] = (unsigned char)text[t];
        tg[t] = (unsigned char)text[t + 1];
    }
    float loss;
    CHECK_OK(mt_gpt_forward(m, in, tg, 1, T, &loss, err, sizeof err), err);
    double w[3] = {m->param[MT_P_WTE][0], m->param[MT_P_QKVW][777], m->param[MT_P_FCPROJW][5]};
    CHECK_OK(mt_gpt_forward(m, in, NULL, 1, T, NULL, err, sizeof err), err);
    const float *lg = m->act[MT_A_LOGITS] + (T - 1) * 256;
    double l[3] = {lg[0], lg[101], lg[255]};
    if (getenv("MT_PRINT_GOLDEN"))
        printf("#define GOLDEN_LOSS %.9g\n#define GOLDEN_W0 %.9g\n#define GOLDEN_W1 %.9g\n"
               "#define GOLDEN_W2 %.9g\n#define GOLDEN_L0 %.9g\n#define GOLDEN_L1 %.9g\n"
               "#define GOLDEN_L2 %.9g\n",
               loss, w[0], w[1], w[2], l[0], l[1], l[2]);
    CHECK(fabs(loss - want_loss) <= 1e-4 * want_loss);
    for (int i = 0; i < 3; i++) {
        CHECK(fabs(w[i] - want_w[i]) <= 1e-6 * fabs(want_w[i])); /* seeded init */
        CHECK(fabs(l[i] - want_logit[i]) <= 1e-4 * fabs(want_logit[i]) + 1e-6);
    }
    printf("golden: loss %.6f and logits match the stored values\n", loss);
    mt_gpt_free(m);
}

static void config_parsing(void)
{
    struct mt_gpt_config cfg;
    CHECK_OK(mt_gpt_config_parse(&cfg, "gpt2,vocab=50257,T=64", err, sizeof err), err);
    CHECK(cfg.vocab == 50257 && cfg.seq_len == 64 && cfg.n_layer == 12 && cfg.n_embd == 768);
    CHECK(mt_gpt_config_parse(&cfg, "huge", err, sizeof err) != 0);
    CHECK(mt_gpt_config_parse(&cfg, "tiny,n_head=3", err, sizeof err) != 0); /* 64 % 3 */
    CHECK(mt_gpt_config_set(&cfg, "n_layer", "-2", err, sizeof err) != 0);
    CHECK(mt_gpt_config_set(&cfg, "n_layer", "2x", err, sizeof err) != 0);
    CHECK(mt_gpt_config_set(&cfg, "depth", "2", err, sizeof err) != 0);
    printf("config: bad specs refused (last: %s)\n", err);
}

int main(int argc, char **argv)
{
    static const struct tf_part parts[] = {
        {"config", config_parsing},  {"memory", memory},
        {"decode", decode_and_hook}, {"determinism", determinism},
        {"overfit", overfit},        {"accumulate", accumulate},
        {"golden", golden}};
    return tf_run_parts(parts, sizeof parts / sizeof parts[0], argc, argv);
}
