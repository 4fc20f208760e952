/* test_kvcache.c — the KV cache of kvcache.h: formats, layouts and attention.
 *
 * What it is for: `test_transformer_kvcache <case>`:
 * `kernels`: for every format and head dimensions 32, 64 and 48, attention on the packed
 * cache (fast kernels) agrees with the scalar reference within 2e-5 (relative to the
 * largest output), and the fp32 cache
 * (tiles with an online softmax) agrees with mt_k_attention_decode (one softmax over the
 * whole row) within 5e-6 (1.6e-6 seen under the sanitizers) on the same keys and values;
 * `paged`: a paged cache (blocks of 16 and 32, and 5 for the per-token formats, two
 * sequences interleaved so their blocks are not consecutive) attends bit for bit as the
 * contiguous one, for every format and both builds, and a model decodes the same logits
 * bit for bit through either;
 * `bytes`: the bytes per token and per cache of every format against the formulas
 * written out by hand, and the bytes a cache allocates and a paged sequence holds; the
 * int3 code layout (8 codes in 3 bytes) byte for byte, and a head dimension int3 cannot
 * pack refused;
 * `window`: a sliding-window cache (a contiguous ring, paged blocks released as the
 * window leaves them) attends bit for bit as the full cache over the window and holds
 * only the window's positions, as mt_kvc_paged_seq_bytes says;
 * `threads`: heads attending in parallel give the same bits on one thread and two;
 * `sim`: the seeded serving simulation is reproducible, its paged layout wastes less
 * than 4 % and less than the contiguous one, and runs at least as many sequences.
 * What it is not for: accuracy of a trained model through the cache (kv_cache.accuracy
 * in tests/quantize), speed (scripts/bench_kvcache.sh).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.h"
#include "kernels.h"
#include "kvcache.h"
#include "kvkernels.h"
#include "rng.h"
#include "tf_test.h"

static char err[256];

static struct mt_gpt_config config(size_t C, size_t NH, size_t T)
{
    struct mt_gpt_config cfg = {
        .vocab = 256, .seq_len = T, .n_layer = 2, .n_head = NH, .n_embd = C};
    return cfg;
}

static void fill(float *x, size_t n, struct mt_rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)mt_rng_normal(r) + 0.3f * (float)(i % 7);
}

/* n floats from fill, malloc'd. */
static float *filled(size_t n, struct mt_rng *r)
{
    float *x = malloc(n * sizeof *x);
    fill(x, n, r);
    return x;
}

/* A cache test's vectors, from an rng seeded with `seed`: K and V (`rows` x C filled
 * values), a filled query q, and two outputs o1, o2 of C floats. */
struct inputs {
    float *K, *V, *q, *o1, *o2;
};

static struct inputs inputs_new(size_t rows, size_t C, uint64_t seed)
{
    struct mt_rng r;
    mt_rng_seed(&r, seed);
    struct inputs in;
    in.K = filled(rows * C, &r); /* in this order: the draws are the tests' inputs */
    in.V = filled(rows * C, &r);
    in.q = filled(C, &r);
    in.o1 = malloc(C * 4), in.o2 = malloc(C * 4);
    return in;
}

static void inputs_free(struct inputs *in)
{
    free(in->K), free(in->V), free(in->q), free(in->o1), free(in->o2);
}

static struct mt_kvc_spec spec_of(enum mt_kvc_format f, size_t group, size_t block)
{
    struct mt_kvc_spec s = mt_kvc_spec_default();
    s.format = f, s.group = group, s.block = block, s.residual = 24;
    return s;
}

static void kernels(void)
{
    /* head dims 32, 64 and 48 (not a multiple of 32: the KIVI keys' 16-channel path) */
    static const size_t shapes[][2] = {{128, 4}, {128, 2}, {96, 2}};
    size_t T = 200;
    struct mt_rng r;
    mt_rng_seed(&r, 7);
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        struct mt_gpt_config cfg = config(shapes[sh][0], shapes[sh][1], T);
        size_t C = cfg.n_embd, L = cfg.n_layer;
        float *K = malloc(L * T * C * 4), *V = malloc(L * T * C * 4), *q = malloc(C * 4);
        float *o1 = malloc(C * 4), *o2 = malloc(C * 4), *att = malloc(T * 4);
        fill(K, L * T * C, &r), fill(V, L * T * C, &r), fill(q, C, &r);
        for (int f = 0; f < MT_KVC_FORMAT_COUNT; f++) {
            struct mt_kvc_spec s = spec_of((enum mt_kvc_format)f, 16, 0);
            struct mt_kvc *c;
            CHECK_OK(mt_kvc_create(&c, &cfg, &s, T, 1, 0, err, sizeof err), err);
            double worst = 0.0, dense = 0.0;
            for (size_t n = 1; n <= T; n++) {
                CHECK(mt_kvc_reserve(c, 0, n) == 0);
                for (size_t l = 0; l < L; l++)
                    mt_kvc_append(c, 0, l, n - 1, K + (l * T + n - 1) * C, V + (l * T + n - 1) * C);
                if (n % 37 && n != T) continue;
                for (size_t l = 0; l < L; l++) {
                    c->impl = MT_KVC_IMPL_AUTO;
                    mt_kvc_attend(c, 0, l, 0, n, q, o1);
                    c->impl = MT_KVC_IMPL_SCALAR;
                    mt_kvc_attend(c, 0, l, 0, n, q, o2);
                    double big = 0.0, d = 0.0;
                    for (size_t i = 0; i < C; i++) {
                        big = fmax(big, fabs(o2[i]));
                        d = fmax(d, fabs((double)o1[i] - o2[i]));
                    }
                    worst = fmax(worst, d / big);
                    if (f == MT_KVC_FP32) { /* the dense decode kernel (one softmax pass) */
                        mt_k_attention_decode(o2, att, q, K + l * T * C, V + l * T * C, n, C, C,
                                              cfg.n_head);
                        for (size_t i = 0; i < C; i++)
                            dense = fmax(dense, fabs((double)o1[i] - o2[i]) / big);
                    }
                }
            }
            printf("kernels: C%zu H%zu %s: fast vs reference max rel diff %.2e", C, cfg.n_head,
                   mt_kvc_format_name((enum mt_kvc_format)f), worst);
            if (f == MT_KVC_FP32) printf(", vs mt_k_attention_decode %.2e", dense);
            printf("\n");
            CHECK(worst < 2e-5 && dense < 5e-6);
            mt_kvc_free(c);
        }
        free(K), free(V), free(q), free(o1), free(o2), free(att);
    }
}

static void paged(void)
{
    struct mt_gpt_config cfg = config(128, 4, 160);
    size_t C = cfg.n_embd, L = cfg.n_layer, T = cfg.seq_len;
    struct inputs in = inputs_new(2 * L * T, C, 11);
    /* blocks of 5 (the per-token formats only: KIVI blocks hold whole key groups) split
     * runs inside the AVX-512 weighted sum's 16-token batches and accumulator sets */
    static const size_t blocks[] = {16, 32, 5};
    for (int f = 0; f < MT_KVC_FORMAT_COUNT; f++)
        for (size_t bi = 0; bi < 3; bi++) {
            size_t block = blocks[bi];
            if (block % 16 && mt_kvc_format_kivi((enum mt_kvc_format)f)) continue;
            struct mt_kvc_spec s = spec_of((enum mt_kvc_format)f, 16, 0), sp = s;
            sp.block = block;
            struct mt_kvc *c, *p;
            CHECK_OK(mt_kvc_create(&c, &cfg, &s, T, 1, 0, err, sizeof err), err);
            CHECK_OK(mt_kvc_create(&p, &cfg, &sp, T, 2, 0, err, sizeof err), err);
            for (size_t n = 1; n <= T; n++) {
                CHECK(mt_kvc_reserve(c, 0, n) == 0);
                /* sequence 1 grows alongside: the blocks of sequence 0 interleave */
                CHECK(mt_kvc_reserve(p, 1, n) == 0 && mt_kvc_reserve(p, 0, n) == 0);
                for (size_t l = 0; l < L; l++) {
                    const float *k = in.K + (l * T + n - 1) * C, *v = in.V + (l * T + n - 1) * C;
                    mt_kvc_append(c, 0, l, n - 1, k, v);
                    mt_kvc_append(p, 0, l, n - 1, k, v);
                    mt_kvc_append(p, 1, l, n - 1, k + L * T * C, v + L * T * C);
                }
                for (int impl = MT_KVC_IMPL_AUTO; impl <= MT_KVC_IMPL_SCALAR; impl++) {
                    c->impl = p->impl = (enum mt_kvc_impl)impl;
                    for (size_t l = 0; l < L; l++) {
                        mt_kvc_attend(c, 0, l, 0, n, in.q, in.o1);
                        mt_kvc_attend(p, 0, l, 0, n, in.q, in.o2);
                        CHECK(memcmp(in.o1, in.o2, C * 4) == 0);
                    }
                }
            }
            CHECK(p->held[0] == (mt_kvc_stored_tokens(&sp, T) + block - 1) / block);
            if (block == 16 && f == MT_KVC_INT8) CHECK(p->table[1] != p->table[0] + 1);
            mt_kvc_free(c), mt_kvc_free(p);
        }
    /* a context of several tiles (up to MT_KVC_MAX_TILE positions each): checked at two
     * lengths only, each a few tiles long */
    struct mt_gpt_config lcfg = config(128, 4, 3 * MT_KVC_MAX_TILE - 40);
    size_t LT = lcfg.seq_len;
    struct inputs lin = inputs_new(2 * L * LT, C, 12);
    for (int f = 0; f < MT_KVC_FORMAT_COUNT; f++) {
        struct mt_kvc_spec s = spec_of((enum mt_kvc_format)f, 16, 0), sp = s;
        sp.block = 16;
        struct mt_kvc *c, *p;
        CHECK_OK(mt_kvc_create(&c, &lcfg, &s, LT, 1, 0, err, sizeof err), err);
        CHECK_OK(mt_kvc_create(&p, &lcfg, &sp, LT, 2, 0, err, sizeof err), err);
        CHECK(c->tile < LT / 2);
        CHECK(mt_kvc_reserve(c, 0, LT) == 0 && mt_kvc_reserve(p, 1, LT) == 0 &&
              mt_kvc_reserve(p, 0, LT) == 0);
        for (size_t t = 0; t < LT; t++)
            for (size_t l = 0; l < L; l++) {
                const float *k = lin.K + (l * LT + t) * C, *v = lin.V + (l * LT + t) * C;
                mt_kvc_append(c, 0, l, t, k, v);
                mt_kvc_append(p, 0, l, t, k, v);
                mt_kvc_append(p, 1, l, t, k + L * LT * C, v + L * LT * C);
            }
        for (int impl = MT_KVC_IMPL_AUTO; impl <= MT_KVC_IMPL_SCALAR; impl++)
            for (size_t n = LT - c->tile - 7; n <= LT; n += c->tile + 7)
                for (size_t l = 0; l < L; l++) {
                    c->impl = p->impl = (enum mt_kvc_impl)impl;
                    mt_kvc_attend(c, 0, l, 0, n, lin.q, lin.o1);
                    mt_kvc_attend(p, 0, l, 0, n, lin.q, lin.o2);
                    CHECK(memcmp(lin.o1, lin.o2, C * 4) == 0);
                }
        /* across tiles, the fast kernels against the scalar path (and fp32 against the
         * one-pass dense decode), from position 0 and from windows whose first position
         * lo > 0 falls inside a tile */
        double worst = 0.0, dense = 0.0;
        for (size_t n = LT - c->tile - 7; n <= LT; n += c->tile + 7)
            for (size_t wi = 0; wi < 3; wi++) {
                static const size_t back[] = {0, 600, 77};
                size_t lo = back[wi] && n > back[wi] ? n - back[wi] : 0;
                for (size_t l = 0; l < L; l++) {
                    c->impl = MT_KVC_IMPL_AUTO;
                    mt_kvc_attend(c, 0, l, lo, n, lin.q, lin.o1);
                    c->impl = MT_KVC_IMPL_SCALAR;
                    mt_kvc_attend(c, 0, l, lo, n, lin.q, lin.o2);
                    double big = 0.0, d = 0.0;
                    for (size_t i = 0; i < C; i++) {
                        big = fmax(big, fabs(lin.o2[i]));
                        d = fmax(d, fabs((double)lin.o1[i] - lin.o2[i]));
                    }
                    worst = fmax(worst, d / big);
                    if (f != MT_KVC_FP32 || lo) continue;
                    float *att = malloc(LT * 4);
                    CHECK(att != NULL);
                    mt_k_attention_decode(lin.o2, att, lin.q, lin.K + l * LT * C,
                                          lin.V + l * LT * C, n, C, C, lcfg.n_head);
                    for (size_t i = 0; i < C; i++)
                        dense = fmax(dense, fabs((double)lin.o1[i] - lin.o2[i]) / big);
                    free(att);
                }
            }
        printf("paged: %s over %zu-position tiles: fast vs reference %.2e",
               mt_kvc_format_name((enum mt_kvc_format)f), c->tile, worst);
        if (f == MT_KVC_FP32) printf(", vs mt_k_attention_decode %.2e", dense);
        printf("\n");
        CHECK(worst < 2e-5 && dense < 5e-6);
        mt_kvc_free(c), mt_kvc_free(p);
    }
    inputs_free(&lin);
    printf("paged: every format, blocks of 16 and 32 (and 5 but KIVI), attends bit for bit as "
           "contiguous, and over several tiles\n");
    /* a whole model: decode logits through a paged int4 and a paged fp32 cache */
    struct mt_gpt *m;
    CHECK_OK(mt_gpt_create(&m, &cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err), err);
    mt_gpt_init(m, 5);
    static const enum mt_kvc_format model_formats[] = {MT_KVC_FP32, MT_KVC_INT4, MT_KVC_INT3};
    for (size_t fi = 0; fi < 3; fi++) {
        struct mt_kvc_spec s = spec_of(model_formats[fi], 16, 0), sp = s;
        sp.block = 16;
        struct mt_gpt_kv *a, *b;
        CHECK_OK(mt_gpt_kv_create_spec(&a, &cfg, T, &s, err, sizeof err), err);
        CHECK_OK(mt_gpt_kv_create_spec(&b, &cfg, T, &sp, err, sizeof err), err);
        for (size_t t = 0; t < T; t++) {
            int tok = (int)((t * 37 + 5) % 256);
            CHECK_OK(mt_gpt_decode_step(m, a, tok, err, sizeof err), err);
            CHECK_OK(mt_gpt_decode_step(m, b, tok, err, sizeof err), err);
            CHECK(memcmp(a->logits, b->logits, cfg.vocab * 4) == 0);
        }
        mt_gpt_kv_free(a), mt_gpt_kv_free(b);
    }
    printf("paged: model logits bit for bit (fp32, int4, int3), %zu positions\n", T);
    mt_gpt_free(m);
    inputs_free(&in);
}

static void bytes(void)
{
    struct mt_gpt_config cfg = config(128, 4, 128); /* L2 C128 */
    const size_t L = 2, C = 128, G = 32, R = 24, T = 100;
    /* per token, all layers, keys and values, scales (fp16 scale + fp16 minimum) included */
    const double per_token[MT_KVC_FORMAT_COUNT] = {
        L * 2 * C * 4.0,
        L * 2 * C * 2.0,
        L * 2 * C * 2.0,
        L * 2 * (C + (C / G) * 4.0),                                         /* int8 per token */
        L * ((G * C / 2.0 + C * 4.0) / G + C / 2.0 + (C / G) * 4.0),         /* int4 KIVI */
        L * ((G * C * 3 / 8.0 + C * 4.0) / G + C * 3 / 8.0 + (C / G) * 4.0), /* int3 KIVI */
        L * ((G * C / 4.0 + C * 4.0) / G + C / 4.0 + (C / G) * 4.0)};        /* int2 KIVI */
    for (int f = 0; f < MT_KVC_FORMAT_COUNT; f++) {
        struct mt_kvc_spec s = spec_of((enum mt_kvc_format)f, G, 0);
        struct mt_kvc_sizes z;
        mt_kvc_sizes(&cfg, &s, &z);
        int kivi = f >= MT_KVC_INT4;
        size_t fixed = kivi ? L * 2 * (R + G) * C * 4 : 0, cap = kivi ? (T + G - 1) / G * G : T;
        printf("bytes: %s %.3f bytes/token (fp32 %.0f), fixed %zu\n",
               mt_kvc_format_name((enum mt_kvc_format)f), (double)z.unit_bytes / z.unit_tokens,
               per_token[0], z.fixed_bytes);
        CHECK((double)z.unit_bytes / z.unit_tokens == per_token[f]);
        CHECK(z.fixed_bytes == fixed && z.unit_tokens == (kivi ? G : 1));
        size_t want = fixed + (size_t)(cap * per_token[f]);
        CHECK(mt_kvc_contiguous_bytes(&cfg, &s, T) == want);
        struct mt_kvc *c;
        CHECK_OK(mt_kvc_create(&c, &cfg, &s, T, 1, 0, err, sizeof err), err);
        CHECK(c->bytes == want);
        mt_kvc_free(c);
        /* paged: a sequence of 70 tokens holds whole blocks of 32 for its packed tokens */
        s.block = 32;
        CHECK_OK(mt_kvc_create(&c, &cfg, &s, T, 1, 0, err, sizeof err), err);
        CHECK(mt_kvc_reserve(c, 0, 70) == 0);
        double used;
        size_t held, stored = kivi ? (70 - R) / G * G : 70;
        mt_kvc_usage(c, 0, &used, &held);
        CHECK(held == fixed + (stored + 31) / 32 * (size_t)(32 * per_token[f]));
        CHECK(used == fixed + stored * per_token[f]);
        mt_kvc_free(c);
    }
    /* int3's 8 codes in 3 bytes: codes 0..7 then 7..0, written one by one over bytes of 0
     * and of 0xff, read back, and the bytes compared with the layout worked out by hand */
    for (int fillb = 0; fillb < 256; fillb += 255) {
        uint8_t row[7];
        memset(row, fillb, sizeof row);
        for (unsigned i = 0; i < 16; i++)
            mt_kvk_put_code(row, i, 3, i < 8 ? i : 15 - i);
        for (unsigned i = 0; i < 16; i++)
            CHECK(mt_kvk_code(row, i, 3) == (i < 8 ? i : 15 - i));
        /* low bits of 0..7: 0,1,2,3 | 0,1,2,3 -> 0b11100100 twice; high bits 0xf0; then
         * 7..0: low 3,2,1,0 twice -> 0b00011011, high bits 0x0f; byte 6 untouched */
        static const uint8_t want[6] = {0xe4, 0xe4, 0xf0, 0x1b, 0x1b, 0x0f};
        CHECK(memcmp(row, want, 6) == 0 && row[6] == fillb);
    }
    struct mt_gpt_config odd = config(72, 6, 16); /* head dimension 12: not whole bytes */
    struct mt_kvc_spec s3 = spec_of(MT_KVC_INT3, 4, 0);
    CHECK(mt_kvc_spec_check(&odd, &s3, err, sizeof err) == -1 && strstr(err, "multiple of 8"));
    printf("bytes: int3 codes 8 in 3 bytes as written by hand; head dimension 12 refused: %s\n",
           err);
    size_t kv = 0;
    mt_gpt_kv_memory(&cfg, T, &kv, NULL);
    struct mt_kvc_spec fp32 = mt_kvc_spec_default();
    CHECK(kv == mt_kvc_contiguous_bytes(&cfg, &fp32, T)); /* today's cache */
}

/* A sliding window of W positions: a contiguous ring and a paged cache whose blocks go
 * back as the window leaves them attend bit for bit as a cache of every position read
 * from n - W on, for every format and both builds, two sequences interleaved; the ring
 * holds mt_kvc_kept_tokens positions, a paged sequence at most its blocks plus one. */
static void window(void)
{
    const size_t Ws[] = {40, 75, 23}; /* 23: under KIVI's fp32 ring of residual + group */
    struct mt_gpt_config full = config(128, 4, 300);
    size_t C = full.n_embd, L = full.n_layer, T = full.seq_len;
    struct inputs in = inputs_new(2 * L * T, C, 13);
    float *o3 = malloc(C * 4);
    for (size_t wi = 0; wi < 3; wi++)
        for (int f = 0; f < MT_KVC_FORMAT_COUNT; f++) {
            struct mt_gpt_config cfg = full;
            cfg.window = Ws[wi];
            struct mt_kvc_spec s = spec_of((enum mt_kvc_format)f, 16, 0), sp = s;
            sp.block = 16;
            struct mt_kvc *a, *c, *p;
            CHECK_OK(mt_kvc_create(&a, &full, &s, T, 1, 0, err, sizeof err), err);
            CHECK_OK(mt_kvc_create(&c, &cfg, &s, T, 1, 0, err, sizeof err), err);
            CHECK_OK(mt_kvc_create(&p, &cfg, &sp, T, 2, 0, err, sizeof err), err);
            size_t kept = mt_kvc_kept_tokens(&cfg, &s, T), unit = f >= MT_KVC_INT4 ? 16 : 1;
            CHECK(kept == (Ws[wi] + unit - 1 + unit - 1) / unit * unit);
            CHECK(c->bytes == mt_kvc_contiguous_bytes(&cfg, &s, T) && c->bytes < a->bytes);
            size_t most = 0;
            for (size_t n = 1; n <= T; n++) {
                size_t lo = n > Ws[wi] ? n - Ws[wi] : 0;
                CHECK(mt_kvc_reserve(a, 0, n) == 0 && mt_kvc_reserve(c, 0, n) == 0);
                CHECK(mt_kvc_reserve(p, 1, n) == 0 && mt_kvc_reserve(p, 0, n) == 0);
                most = p->held[0] > most ? p->held[0] : most;
                CHECK(mt_kvc_paged_seq_bytes(&cfg, &sp, n) ==
                      p->held[0] * p->block_bytes + p->sz.fixed_bytes);
                for (size_t l = 0; l < L; l++) {
                    const float *k = in.K + (l * T + n - 1) * C, *v = in.V + (l * T + n - 1) * C;
                    mt_kvc_append(a, 0, l, n - 1, k, v);
                    mt_kvc_append(c, 0, l, n - 1, k, v);
                    mt_kvc_append(p, 0, l, n - 1, k, v);
                    mt_kvc_append(p, 1, l, n - 1, k + L * T * C, v + L * T * C);
                }
                if (n % 7 && n != T) continue;
                for (int impl = MT_KVC_IMPL_AUTO; impl <= MT_KVC_IMPL_SCALAR; impl++) {
                    a->impl = c->impl = p->impl = (enum mt_kvc_impl)impl;
                    for (size_t l = 0; l < L; l++) {
                        mt_kvc_attend(a, 0, l, lo, n, in.q, in.o1);
                        mt_kvc_attend(c, 0, l, lo, n, in.q, in.o2);
                        mt_kvc_attend(p, 0, l, lo, n, in.q, o3);
                        CHECK(memcmp(in.o1, in.o2, C * 4) == 0 && memcmp(in.o1, o3, C * 4) == 0);
                    }
                }
            }
            CHECK(most <= (kept + 15) / 16 + 1 && most < (T + 15) / 16);
            mt_kvc_release(p, 0), mt_kvc_release(p, 1);
            CHECK(p->n_free == p->n_blocks);
            printf("window %zu: %s ring of %zu positions, %zu of %zu bytes; paged at most %zu "
                   "blocks of 16\n",
                   Ws[wi], mt_kvc_format_name((enum mt_kvc_format)f), kept, c->bytes, a->bytes,
                   most);
            mt_kvc_free(a), mt_kvc_free(c), mt_kvc_free(p);
        }
    inputs_free(&in), free(o3);
}

/* Heads in parallel: one thread and two give the same bits (every format, a context
 * above MT_KVC_PAR_MIN's threshold, and one below it). */
static void threads(void)
{
    struct mt_gpt_config cfg = config(128, 4, 640);
    size_t C = cfg.n_embd, L = cfg.n_layer, T = cfg.seq_len;
    struct inputs in = inputs_new(L * T, C, 17);
    CHECK(T * C >= MT_KVC_PAR_MIN && 100 * C < MT_KVC_PAR_MIN);
    for (int f = 0; f < MT_KVC_FORMAT_COUNT; f++) {
        struct mt_kvc_spec s = spec_of((enum mt_kvc_format)f, 32, 0);
        struct mt_kvc *c;
        CHECK_OK(mt_kvc_create(&c, &cfg, &s, T, 1, 0, err, sizeof err), err);
        CHECK(mt_kvc_reserve(c, 0, T) == 0);
        for (size_t t = 0; t < T; t++)
            for (size_t l = 0; l < L; l++)
                mt_kvc_append(c, 0, l, t, in.K + (l * T + t) * C, in.V + (l * T + t) * C);
        for (size_t n = 100; n <= T; n += T - 100)
            for (size_t l = 0; l < L; l++) {
                omp_set_num_threads(1);
                mt_kvc_attend(c, 0, l, 0, n, in.q, in.o1);
                omp_set_num_threads(2);
                mt_kvc_attend(c, 0, l, 0, n, in.q, in.o2);
                CHECK(memcmp(in.o1, in.o2, C * 4) == 0);
            }
        mt_kvc_free(c);
    }
    printf("threads: 1 and 2 threads attend bit for bit, every format, %zu positions\n", T);
    inputs_free(&in);
}

static void sim(void)
{
    struct mt_gpt_config cfg = config(128, 4, 128);
    struct mt_kvc_spec s = spec_of(MT_KVC_FP32, 32, 16);
    struct mt_kvc_sim sm = {.requests = 200,
                            .prompt_min = 16,
                            .prompt_max = 256,
                            .output_min = 16,
                            .output_max = 256,
                            .seed = 3};
    sm.budget_bytes = 16 * mt_kvc_contiguous_bytes(&cfg, &s, 512);
    struct mt_kvc_sim_result c1, p1, c2, p2;
    CHECK_OK(mt_kvc_simulate(&cfg, &s, &sm, &c1, &p1, err, sizeof err), err);
    CHECK_OK(mt_kvc_simulate(&cfg, &s, &sm, &c2, &p2, err, sizeof err), err);
    printf("sim: contiguous %zu steps, %.1f running, waste %.1f %%; paged %zu steps, %.1f "
           "running, waste %.2f %%, %zu preemptions\n",
           c1.steps, c1.mean_running, 100 * c1.waste_ratio, p1.steps, p1.mean_running,
           100 * p1.waste_ratio, p1.preemptions);
    CHECK(!memcmp(&c1, &c2, sizeof c1) && !memcmp(&p1, &p2, sizeof p1));
    CHECK(c1.max_running == 16 && p1.waste_ratio < 0.04 && p1.waste_ratio < c1.waste_ratio);
    CHECK(p1.mean_running > c1.mean_running && p1.steps < c1.steps);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {{"kernels", kernels}, {"paged", paged},   {"bytes", bytes},
                 {"sim", sim},         {"window", window}, {"threads", threads}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (argc > 1 && !strcmp(argv[1], cases[i].name)) {
            cases[i].fn();
            return 0;
        }
    fprintf(stderr, "usage: %s kernels|paged|bytes|sim|window|threads\n", argv[0]);
    return 2;
}
