/* test_attention.c — the block's attention options at the level of the model: flash
 * attention, grouped-query heads and sliding windows (gpt.h struct mt_gpt_config).
 *
 * What it is for:
 *   - equal: n_kv_head = n_head reproduces the original model bit for bit (logits, loss,
 *     every gradient); window >= T equals no window bit for bit; flash equals dense
 *     (loss and logits within 1e-5 relative, gradients within 1e-4 relative norm-wise) for
 *     the plain, grouped-query and windowed models; flash is bit-identical from run to run
 *     and for 1 and 2 threads;
 *   - memory: mt_gpt_memory equals the allocated slabs for every option and mode, and the
 *     training activations and their gradients are exactly the closed form: linear in T
 *     with flash, with the B NH T^2 term of dense (T = 64, 128, 256, tiny width);
 *   - decode: KV-cache decoding with grouped-query heads and a window gives the forward's
 *     logits (1e-4) and a cache of L x 2 x T x kv_dim floats;
 *   - options: parsing, refusals, a checkpoint round trip that keeps the options, and a
 *     version-1 checkpoint (before the options) that loads as the original model.
 * What it is not for: kernel accuracy (test_kernels.c), finite differences (test_grad.c).
 */
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "gpt.h"
#include "hash.h"
#include "rng.h"
#include "tf_test.h"
#include "mt_testmath.h"

static char err[512];

enum { B = 2, T = 141 }; /* two full flash tiles and a partial one */

/* A trained-shape model of spec at (B, T) with randomized weights (seed 5), after one
 * forward and backward on fixed tokens; the caller frees it. */
static struct mt_gpt *run(const struct mt_gpt_config *cfg, float *loss)
{
    struct mt_gpt *m = NULL;
    CHECK_OK(mt_gpt_create(&m, cfg, MT_GPT_TRAIN, B, T, err, sizeof err), err);
    mt_gpt_init(m, 5);
    struct mt_rng rng;
    mt_rng_seed(&rng, 11);
    for (int p = 0; p < MT_P_COUNT; p++) /* sharper attention than the init gives */
        for (size_t i = 0; i < m->param_len[p]; i++)
            m->param[p][i] += (float)(0.1 * mt_rng_normal(&rng));
    int in[B * T], tg[B * T];
    for (size_t i = 0; i < B * T; i++) {
        in[i] = (int)mt_rng_below(&rng, cfg->vocab);
        tg[i] = (int)mt_rng_below(&rng, cfg->vocab);
    }
    CHECK_OK(mt_gpt_forward(m, in, tg, B, T, loss, err, sizeof err), err);
    mt_gpt_zero_grad(m);
    CHECK_OK(mt_gpt_backward(m, 1.0f, 0, err, sizeof err), err);
    return m;
}

static struct mt_gpt_config parse(const char *spec)
{
    struct mt_gpt_config cfg;
    CHECK_OK(mt_gpt_config_parse(&cfg, spec, err, sizeof err), err);
    return cfg;
}

/* Relative distance ||a - b|| / ||b|| of n floats. */
static double rel(const float *a, const float *b, size_t n)
{
    double d, s;
    mt_test_l2(a, b, n, &d, &s);
    return sqrt(d / (s + 1e-300));
}

static int same(const struct mt_gpt *a, const struct mt_gpt *b)
{
    size_t nl = B * T * a->cfg.vocab * sizeof(float);
    return a->last_loss == b->last_loss && !memcmp(a->act[MT_A_LOGITS], b->act[MT_A_LOGITS], nl) &&
           a->slab_bytes[MT_MEM_GRADIENTS] == b->slab_bytes[MT_MEM_GRADIENTS] &&
           !memcmp(a->grads, b->grads, a->slab_bytes[MT_MEM_GRADIENTS]);
}

static void equal(void)
{
    float l0, l1;
    /* n_kv_head = n_head (set directly: the parser would store it as 0) and a window
     * covering the sequence are today's model, bit for bit */
    struct mt_gpt_config base = parse("tiny,n_head=4,T=256"), full = base, wide = base;
    full.n_kv_head = 4;
    wide.window = T;
    struct mt_gpt *m0 = run(&base, &l0), *m1 = run(&full, &l1);
    CHECK(same(m0, m1));
    mt_gpt_free(m1);
    m1 = run(&wide, &l1);
    CHECK(same(m0, m1));
    mt_gpt_free(m1);
    mt_gpt_free(m0);
    printf("equal: n_kv_head = n_head and window = T reproduce the model bit for bit\n");
    /* flash = dense, for plain, grouped-query and windowed attention */
    const char *specs[] = {"tiny,n_head=4,T=256", "tiny,n_head=4,T=256,n_kv_head=2",
                           "tiny,n_head=4,T=256,window=7",
                           "tiny,n_head=4,T=256,n_kv_head=1,window=70"};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        struct mt_gpt_config dense = parse(specs[k]), flash = dense;
        flash.attention = MT_GPT_ATTN_FLASH;
        struct mt_gpt *d = run(&dense, &l0), *f = run(&flash, &l1);
        size_t nl = B * T * dense.vocab, ng = d->slab_bytes[MT_MEM_GRADIENTS] / sizeof(float);
        double el = fabs((double)l1 - l0) / l0, eg = rel(f->grads, d->grads, ng);
        CHECK(l0 != l1 || memcmp(f->grads, d->grads, ng * sizeof(float))); /* two paths */
        int in[B * T];
        memcpy(in, d->inputs, sizeof in);
        CHECK_OK(mt_gpt_forward(d, in, NULL, B, T, NULL, err, sizeof err), err); /* raw logits */
        CHECK_OK(mt_gpt_forward(f, in, NULL, B, T, NULL, err, sizeof err), err);
        double elog = rel(f->act[MT_A_LOGITS], d->act[MT_A_LOGITS], nl);
        printf("flash vs dense %-36s loss %.7f vs %.7f (rel %.1e), logits rel %.1e, grads rel "
               "%.1e\n",
               specs[k], l1, l0, el, elog, eg);
        CHECK(el <= 1e-5 && elog <= 1e-5 && eg <= 1e-4);
        for (int threads = 1; threads <= 2; threads++) { /* bit-identical reruns */
            omp_set_num_threads(threads);
            float l2;
            struct mt_gpt *g = run(&flash, &l2), *f2 = run(&flash, &l2);
            CHECK(same(f2, g));
            CHECK(!memcmp(f2->grads, f->grads, f->slab_bytes[MT_MEM_GRADIENTS]));
            mt_gpt_free(f2);
            mt_gpt_free(g);
        }
        omp_set_num_threads(2);
        mt_gpt_free(d);
        mt_gpt_free(f);
    }
    printf("equal: flash reruns bit-identical with 1 and 2 threads\n");
}

/* Closed form of the training activations and their gradients of the tiny width (every
 * tensor is a multiple of 64 bytes here, so no padding). */
static void closed_form(const struct mt_gpt_config *c, size_t b, size_t t, size_t *acts,
                        size_t *dacts)
{
    size_t C = c->n_embd, L = c->n_layer, V = c->vocab, NH = c->n_head, BT = b * t;
    size_t KV = mt_gpt_kv_dim(c),
           att = c->attention == MT_GPT_ATTN_FLASH ? b * NH * t : b * NH * t * t;
    /* the MLP's F and fc width FO (SwiGLU: gate and up); RMSNorm keeps no means */
    size_t F = mt_gpt_ffn(c), swi = c->mlp == MT_GPT_MLP_SWIGLU, FO = swi ? 2 * F : F;
    size_t rms = c->norm == MT_GPT_NORM_RMS;
    *acts = 4 * (L * (BT * (6 * C + 2 * KV + FO + F + (rms ? 2 : 4)) + att) +
                 BT * (3 * C + (rms ? 2 : 3) + V));
    *dacts = 4 * (BT * (4 * C + 2 * KV + (swi ? 3 : 1) * F) +
                  (c->attention == MT_GPT_ATTN_FLASH ? 0 : att));
}

static void memory(void)
{
    const char *specs[] = {"tiny,T=256",
                           "tiny,T=256,attention=flash",
                           "tiny,T=256,n_head=4,n_kv_head=2,window=16",
                           "tiny,T=256,n_head=4,n_kv_head=1,attention=flash,window=16",
                           "llama-tiny,T=256",
                           "llama-tiny,T=256,ffn=96,attention=flash",
                           "tiny,T=256,norm=rmsnorm,bias=off,tie=off,mlp=swiglu"};
    size_t cases = 0;
    { /* llama-tiny's weights by hand: no biases, no wpe, no norm biases, lm_head */
        struct mt_gpt_config c = parse("llama-tiny");
        size_t C = 128, KV = 64, F = 512, V = 256, L = 2, bytes[MT_MEM_CAT_COUNT];
        CHECK(mt_gpt_ffn(&c) == F && mt_gpt_kv_dim(&c) == KV);
        size_t n = 2 * V * C + C + L * (2 * C + (C + 2 * KV) * C + C * C + 3 * F * C);
        CHECK(mt_gpt_num_params(&c) == n);
        CHECK(mt_gpt_memory(&c, 1, 64, MT_GPT_WEIGHTS, bytes, err, sizeof err) == 4 * n);
        CHECK(mt_gpt_ffn(&(struct mt_gpt_config){.n_embd = 2048, .mlp = 1}) == 5632);
    }
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        struct mt_gpt_config cfg = parse(specs[k]);
        size_t acts[3];
        for (size_t i = 0; i < 3; i++) {
            size_t t = (size_t)64 << i, want_a, want_d;
            for (int mode = MT_GPT_WEIGHTS; mode <= MT_GPT_TRAIN; mode++) {
                size_t bytes[MT_MEM_CAT_COUNT], total = 0;
                size_t plan = mt_gpt_memory(&cfg, 1, t, mode, bytes, err, sizeof err);
                struct mt_gpt *m = NULL;
                CHECK_OK(mt_gpt_create(&m, &cfg, mode, 1, t, err, sizeof err), err);
                for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
                    CHECK(bytes[c] == m->slab_bytes[c]);
                    total += bytes[c];
                }
                CHECK(plan == total);
                mt_gpt_free(m);
                cases++;
            }
            size_t bytes[MT_MEM_CAT_COUNT];
            CHECK(mt_gpt_memory(&cfg, 1, t, MT_GPT_TRAIN, bytes, err, sizeof err) > 0);
            closed_form(&cfg, 1, t, &want_a, &want_d);
            CHECK(bytes[MT_MEM_ACTIVATIONS] == want_a);
            CHECK(bytes[MT_MEM_ACT_GRADS] == want_d);
            acts[i] = bytes[MT_MEM_ACTIVATIONS];
            printf("memory %-58s T=%-4zu activations %9zu B, their gradients %8zu B\n", specs[k], t,
                   want_a, want_d);
        }
        size_t quad = 4 * cfg.n_layer * cfg.n_head; /* bytes of the T^2 term per T^2 */
        if (cfg.attention == MT_GPT_ATTN_FLASH) {   /* linear: doubling T doubles the bytes */
            CHECK(acts[1] == 2 * acts[0] && acts[2] == 2 * acts[1]);
        } else { /* quadratic: second differences of the doubling are the T^2 term */
            CHECK(acts[1] - 2 * acts[0] == quad * (128 * 128 - 2 * 64 * 64));
            CHECK(acts[2] - 2 * acts[1] == quad * (256 * 256 - 2 * 128 * 128));
        }
    }
    printf("memory: plan = allocation in %zu cases; flash linear in T, dense quadratic\n", cases);
}

static void decode(void)
{
    const char *specs[] = {"tiny,n_head=4,n_kv_head=2,window=6",
                           "tiny,n_head=4,n_kv_head=1,attention=flash,window=9",
                           /* RoPE: the cache holds keys rotated at their own positions */
                           "llama-tiny", "llama-tiny,attention=flash,window=7,rope_theta=500"};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        struct mt_gpt_config cfg = parse(specs[k]);
        struct mt_gpt *m = NULL;
        enum { TD = 20 };
        CHECK_OK(mt_gpt_create(&m, &cfg, MT_GPT_INFER, 1, TD, err, sizeof err), err);
        mt_gpt_init(m, 3);
        int in[TD];
        for (size_t t = 0; t < TD; t++)
            in[t] = (int)(t * 37 % 256);
        CHECK_OK(mt_gpt_forward(m, in, NULL, 1, TD, NULL, err, sizeof err), err);
        struct mt_gpt_kv *kv = NULL;
        CHECK_OK(mt_gpt_kv_create(&kv, &cfg, TD, err, sizeof err), err);
        /* a window shorter than the context: the cache keeps the window's positions only */
        size_t kept = cfg.window && cfg.window < TD ? cfg.window : TD;
        CHECK(kv->kv_bytes == cfg.n_layer * 2 * kept * mt_gpt_kv_dim(&cfg) * sizeof(float));
        double worst = 0, big = 0;
        for (size_t t = 0; t < TD; t++) {
            CHECK_OK(mt_gpt_decode_step(m, kv, in[t], err, sizeof err), err);
            for (size_t v = 0; v < cfg.vocab; v++) {
                double f = m->act[MT_A_LOGITS][t * cfg.vocab + v], d = fabs(kv->logits[v] - f);
                worst = d > worst ? d : worst;
                big = fabs(f) > big ? fabs(f) : big;
            }
        }
        printf("decode %s: cache %zu B, logits vs forward max abs diff %.2e (%.2e of the "
               "largest)\n",
               specs[k], kv->kv_bytes, worst, worst / big);
        CHECK(worst < 1e-4 && worst <= 1e-5 * big);
        mt_gpt_kv_free(kv);
        mt_gpt_free(m);
    }
}

/* Version-1 and -2 checkpoints (before the options: a header of 5, then of 8
 * configuration words) of the original model load as that model. Each is written from a
 * version-3 file of the same model: a new header, then the same tensor records (each
 * hashed on its own; the original model has 16 tensors: no lm_head). */
static void old_checkpoint(const char *path, uint32_t version)
{
    struct old_header {
        char magic[8];
        uint32_t version, reserved;
        uint64_t words[8 + 3]; /* cfg, n_tensors, train_step, checksum */
    } h1 = {.version = version};
    enum { V3_HEADER = 16 + 15 * 8 + 3 * 8 };
    size_t nw = version == 1 ? 5 : 8, hb = 16 + (nw + 3) * 8;
    struct mt_gpt_config cfg = parse("tiny");
    struct mt_gpt *m = NULL, *back = NULL;
    CHECK_OK(mt_gpt_create(&m, &cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err), err);
    mt_gpt_init(m, 4);
    m->adam_step = 7;
    CHECK_OK(mt_ckpt_save(m, path, err, sizeof err), err);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    unsigned char *bytes = malloc(n);
    rewind(f);
    CHECK(fread(bytes, 1, n, f) == n);
    fclose(f);
    memcpy(h1.magic, MT_CKPT_MAGIC, 8);
    uint64_t words[] = {cfg.vocab, cfg.seq_len, cfg.n_layer, cfg.n_head, cfg.n_embd, 0, 0, 0};
    memcpy(h1.words, words, nw * 8);
    h1.words[nw] = MT_P_COUNT - 1, h1.words[nw + 1] = 7;
    h1.words[nw + 2] = mt_fnv64(MT_FNV64_INIT, &h1, hb - 8);
    CHECK((f = fopen(path, "wb")) != NULL);
    CHECK(fwrite(&h1, hb, 1, f) == 1 && fwrite(bytes + V3_HEADER, n - V3_HEADER, 1, f) == 1);
    fclose(f);
    uint64_t step = 0;
    CHECK_OK(mt_ckpt_load(path, &cfg, MT_GPT_WEIGHTS, 0, 0, &back, &step, err, sizeof err), err);
    CHECK(step == 7 && !memcmp(&back->cfg, &cfg, sizeof cfg));
    CHECK(!memcmp(back->params, m->params, m->slab_bytes[MT_MEM_WEIGHTS]));
    printf("options: a version-%u checkpoint loads as the original model\n", version);
    unlink(path);
    free(bytes);
    mt_gpt_free(back);
    mt_gpt_free(m);
}

static void options(void)
{
    struct mt_gpt_config cfg = parse("small,attention=flash,n_kv_head=2,window=64");
    CHECK(cfg.attention == MT_GPT_ATTN_FLASH && cfg.n_kv_head == 2 && cfg.window == 64);
    CHECK(mt_gpt_kv_dim(&cfg) == 64);
    char opt[96];
    mt_gpt_config_options(&cfg, opt, sizeof opt);
    CHECK(!strcmp(opt, ",attention=flash,n_kv_head=2,window=64"));
    cfg = parse("small,n_kv_head=4,attention=dense"); /* = n_head: the original model */
    struct mt_gpt_config small = parse("small");
    CHECK(!memcmp(&cfg, &small, sizeof cfg) && mt_gpt_kv_dim(&cfg) == 128);
    mt_gpt_config_options(&cfg, opt, sizeof opt);
    CHECK(!strcmp(opt, ""));
    cfg = parse("long");
    CHECK(cfg.seq_len == 4096 && cfg.n_embd == 256 && cfg.n_layer == 6 && cfg.n_head == 8);
    CHECK(mt_gpt_config_parse(&cfg, "small,n_kv_head=3", err, sizeof err) != 0);
    CHECK(mt_gpt_config_parse(&cfg, "small,n_kv_head=8", err, sizeof err) != 0);
    CHECK(mt_gpt_config_parse(&cfg, "small,attention=sparse", err, sizeof err) != 0);
    CHECK(mt_gpt_config_parse(&cfg, "small,window=-1", err, sizeof err) != 0);
    /* a checkpoint keeps the options; a model without them is refused as a mismatch */
    cfg = parse("tiny,attention=flash,n_head=4,n_kv_head=2,window=5");
    struct mt_gpt *m = NULL, *back = NULL;
    CHECK_OK(mt_gpt_create(&m, &cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err), err);
    mt_gpt_init(m, 9);
    char path[64];
    snprintf(path, sizeof path, "test_attention_%ld.mtckpt", (long)getpid());
    CHECK_OK(mt_ckpt_save(m, path, err, sizeof err), err);
    CHECK_OK(mt_ckpt_load(path, &cfg, MT_GPT_WEIGHTS, 0, 0, &back, NULL, err, sizeof err), err);
    CHECK(!memcmp(&back->cfg, &cfg, sizeof cfg) && back->n_params == m->n_params);
    CHECK(!memcmp(back->params, m->params, m->slab_bytes[MT_MEM_WEIGHTS]));
    mt_gpt_free(back);
    struct mt_gpt_config plain = parse("tiny,n_head=4");
    CHECK(mt_ckpt_load(path, &plain, MT_GPT_WEIGHTS, 0, 0, &back, NULL, err, sizeof err) != 0);
    printf("options: parsed, refused, kept by checkpoints (%s)\n", err);
    unlink(path);
    mt_gpt_free(m);
    old_checkpoint(path, 1);
    old_checkpoint(path, 2);
}

int main(int argc, char **argv)
{
    static const struct tf_part parts[] = {
        {"options", options}, {"memory", memory}, {"decode", decode}, {"equal", equal}};
    return tf_run_parts(parts, sizeof parts / sizeof parts[0], argc, argv);
}
