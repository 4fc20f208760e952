/* test_qmodel.c — the reference GPT served from packed weights (mt_qmodel).
 *
 * What it is for: `test_qmodel <case> <ckpt>`: `train` trains the `small` model with the
 * default recipe (batch 4) for a few hundred steps on the fortunes corpus and saves it in
 * the model cache under a name keyed by the recipe and the corpus, or at <ckpt> when there
 * is no cache folder (not retrained when the file already loads: a ctest fixture, so the
 * other cases share it), and in both cases verifies what it holds: `small`, 300 steps in
 * the header, val_bpb below 4.5;
 * `close`, `bits` and `bits_nf` check the accuracy claims on held-out bytes,
 * with the tied embedding / LM head packed too (bf16/fp16/8-bit per-channel within 1 %
 * of fp32 val_bpb; val_bpb worsening at every step 8 -> 4 -> 3 -> 2 bits; groups beating
 * one scale per tensor at 4 bits); `bytes` checks model_bytes against sizes computed by
 * hand; `gptq` checks GPTQ below RTN at 4 and 3 bits with a larger gain at 3; `kl` checks
 * the KL divergence against the fp32 base (serving.h): exactly 0 for the unmodified model,
 * growing at every step 8 -> 4 -> 3 -> 2 bits; `decode` checks that KV-cache decoding on
 * packed weights reproduces the packed forward's logits and that the fp32 linear weights
 * are gone.
 * `kvcache` (ctest kv_cache.accuracy) decodes 32 validation windows of 128 bytes through
 * every KV-cache format (group 16, KIVI residual 16) beside an fp32 cache: int8 within
 * 0.5 % of the fp32 cache's loss, the loss rising strictly int8 -> int4 -> int2,
 * the KL divergence from the fp32 cache rising strictly fp32 (0) -> fp16 -> bf16 -> int8
 * -> int4 -> int3 -> int2, and val_loss never falling with the bits by more than three
 * standard errors of the paired per-position difference (KV_NOISE_SE).
 * What it is not for: kernel correctness (test_quant) or the plugin's reporting.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "data.h"
#include "eval.h"
#include "gpt.h"
#include "hash.h"
#include "kvcache.h"
#include "model_cache.h"
#include "qcheck.h"
#include "qmodel.h"
#include "serving.h"

#define TRAIN_STEPS 300
#define FIXTURE_VERSION 1 /* bump when training changes what the fixture's recipe produces */
#define EVAL_TOKENS 8192
#define EVAL_B 8
#define EVAL_T 128
#define CALIB_SEQS 64 /* calibration windows of EVAL_T bytes (8 batches of EVAL_B) */

static struct mt_corpus corpus;
static char err[512];

/* What the fixture must hold, whether it trained it now or found it: `small`, trained
 * TRAIN_STEPS steps (the header's count), and a model that learned (val_bpb on the first
 * EVAL_TOKENS validation bytes below VERIFY_BPB; uniform is 8; measured 3.80). */
#define VERIFY_BPB 4.5
static int verify(const char *path)
{
    struct mt_gpt_config cfg;
    struct mt_gpt *m;
    struct mt_eval_result r;
    uint64_t steps = 0;
    if (mt_gpt_config_preset(&cfg, "small", err, sizeof err) ||
        mt_ckpt_load(path, &cfg, MT_GPT_INFER, EVAL_B, EVAL_T, &m, &steps, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", path, err);
        return 1;
    }
    int rc = mt_gpt_eval(m, corpus.val, corpus.n_val, EVAL_TOKENS, &r, err, sizeof err);
    mt_gpt_free(m);
    CHECK(rc == 0, "eval: %s", err);
    CHECK(steps == TRAIN_STEPS, "%s holds %llu steps, want %d", path, (unsigned long long)steps,
          TRAIN_STEPS);
    CHECK(rc == 0 && r.bpb < VERIFY_BPB, "%s: val_bpb %.4f, want < %.1f", path, r.bpb, VERIFY_BPB);
    printf("%s: %llu steps, val_bpb %.4f\n", path, (unsigned long long)steps, r.bpb);
    return 0;
}

static int train(const char *path)
{
    struct mt_gpt *m;
    if (mt_ckpt_load(path, NULL, MT_GPT_WEIGHTS, 0, 0, &m, NULL, err, sizeof err) == 0) {
        printf("reusing %s\n", path);
        mt_gpt_free(m);
        return verify(path);
    }
    struct mt_gpt_config cfg;
    struct mt_gpt_recipe r = mt_gpt_recipe_default(TRAIN_STEPS);
    r.batch = 4; /* half the default batch keeps the fixture well under a minute */
    if (mt_gpt_config_preset(&cfg, "small", err, sizeof err) ||
        mt_gpt_create(&m, &cfg, MT_GPT_TRAIN, r.batch, r.seq, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    mt_gpt_init(m, 1234);
    struct mt_rng rng;
    mt_rng_seed(&rng, 42);
    int *in = malloc(r.batch * r.seq * sizeof *in), *tg = malloc(r.batch * r.seq * sizeof *tg);
    float loss = 0.0f, gn;
    for (size_t s = 0; s < r.steps; s++) {
        mt_batch_sample(corpus.train, corpus.n_train, r.batch, r.seq, &rng, in, tg);
        if (mt_gpt_train_step(m, &r, s, in, tg, &loss, &gn, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    printf("trained small for %zu steps, last loss %.3f\n", r.steps, (double)loss);
    int rc = mt_ckpt_save(m, path, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    free(in);
    free(tg);
    mt_gpt_free(m);
    return rc ? 1 : verify(path);
}

static struct mt_gpt *load(const char *path)
{
    struct mt_gpt *m;
    if (mt_ckpt_load(path, NULL, MT_GPT_INFER, EVAL_B, EVAL_T, &m, NULL, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return m;
}

static struct mt_qformat fmt(enum mt_qscheme s, unsigned bits, enum mt_qgran g, size_t gs)
{
    return (struct mt_qformat){.scheme = s, .bits = bits, .gran = g, .group_size = gs, .seed = 1};
}

/* The KL cases: the fp32 model's distributions over the first EVAL_TOKENS validation
 * bytes (the base), and the comparison of a served model with it (serving.h). */
static float *base_probs;
static size_t base_at;
static struct mt_wl_kl kl_acc;

static int keep_base(void *user, const float *p, const int *tg, size_t rows, char *e, size_t el)
{
    size_t V = *(const size_t *)user;
    (void)tg, (void)e, (void)el;
    memcpy(base_probs + base_at * V, p, rows * V * sizeof *p);
    base_at += rows;
    return 0;
}

static int add_kl(void *user, const float *p, const int *tg, size_t rows, char *e, size_t el)
{
    size_t V = *(const size_t *)user;
    (void)tg, (void)e, (void)el;
    int rc = mt_wl_kl_add(&kl_acc, base_probs + base_at * V, p, rows, V);
    base_at += rows;
    return rc;
}

/* val_bpb of the checkpoint served with format f (bits 32 = fp32, no packing); with
 * `observe`, every position's distribution is shown to it (keep_base, add_kl). */
static double bpb_method(const char *path, struct mt_qformat f, enum mt_qact act,
                         enum mt_qmethod method, mt_eval_observer *observe)
{
    struct mt_gpt *m = load(path);
    struct mt_qmodel *qm = NULL;
    struct mt_calib cal = {0};
    struct mt_qmodel_opts o = {.fmt = f,
                               .act = act,
                               .embedding = 1,
                               .method = method,
                               .calib = &cal,
                               .damp = 0.01,
                               .act_order = 1};
    if (method != MT_QM_RTN) { /* CALIB_SEQS training windows, seeded (calib.h) */
        int *in = malloc(CALIB_SEQS * EVAL_T * sizeof *in);
        CHECK(in &&
                  mt_calib_sample(corpus.train, corpus.n_train, CALIB_SEQS, EVAL_T, 7, in, NULL,
                                  err, sizeof err) == 0 &&
                  mt_calib_collect(m, in, CALIB_SEQS, EVAL_B, EVAL_T,
                                   MT_CALIB_ACT_SQ | MT_CALIB_HESSIAN | MT_CALIB_ACT_MAX, &cal, err,
                                   sizeof err) == 0,
              "calibration: %s", err);
        free(in);
    }
    if (f.bits != 32 && mt_qmodel_build(&qm, m, &o, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    struct mt_eval_result r;
    size_t V = m->cfg.vocab;
    base_at = 0;
    if (mt_gpt_eval_observe(m, corpus.val, corpus.n_val, EVAL_TOKENS, observe, &V, &r, err,
                            sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    printf("%-12s %2u bits %-8s %s %s: val_bpb %.4f\n",
           f.bits == 32 ? "fp32" : mt_qscheme_name(f.scheme), f.bits,
           f.bits >= 16 ? "" : mt_qgran_name(f.gran), act ? "W8A8" : "", mt_qmethod_name(method),
           r.bpb);
    mt_qmodel_free(qm);
    mt_calib_free(&cal);
    mt_gpt_free(m);
    return r.bpb;
}

static double bpb_seen(const char *path, struct mt_qformat f, enum mt_qact act,
                       mt_eval_observer *observe)
{
    return bpb_method(path, f, act, MT_QM_RTN, observe);
}

static double bpb_of(const char *path, struct mt_qformat f, enum mt_qact act)
{
    return bpb_seen(path, f, act, NULL);
}

/* Mean KL(base || served with f) over the evaluation positions; *agree the top-1 share. */
static double kl_of(const char *path, struct mt_qformat f, double *agree)
{
    if (!base_probs) {
        base_probs = malloc((size_t)EVAL_TOKENS * 256 * sizeof *base_probs);
        CHECK(base_probs != NULL, "out of memory");
        bpb_seen(path, fmt(MT_QS_FP16, 32, MT_QG_TENSOR, 0), MT_QACT_F32, keep_base);
    }
    mt_wl_kl_free(&kl_acc);
    bpb_seen(path, f, MT_QACT_F32, add_kl);
    struct mt_wl_kl_stats st;
    mt_wl_kl_summary(&kl_acc, &st);
    CHECK(kl_acc.n == EVAL_TOKENS, "KL over %zu positions, want %d", kl_acc.n, EVAL_TOKENS);
    printf("  KL mean %.6f median %.6f p99 %.5f max %.4f, top-1 agree %.4f\n", st.mean, st.median,
           st.p99, st.max, st.top1_agree);
    *agree = st.top1_agree;
    return st.mean;
}

/* KL against the fp32 base: exactly 0 for the unmodified model (the same forward, bit
 * for bit), and growing at every step 8 -> 4 -> 3 -> 2 bits (linear-asym, groups of 64). */
static int test_kl(const char *path)
{
    double agree, zero = kl_of(path, fmt(MT_QS_FP16, 32, MT_QG_TENSOR, 0), &agree);
    CHECK(zero == 0.0 && kl_acc.kl[0] == 0.0 && agree == 1.0,
          "unmodified model: KL %.3g, top-1 agree %.4f (want exactly 0 and 1)", zero, agree);
    const unsigned bits[] = {8, 4, 3, 2};
    double prev = 0.0;
    for (int i = 0; i < 4; i++) {
        double kl = kl_of(path, fmt(MT_QS_LINEAR_ASYM, bits[i], MT_QG_GROUP, 64), &agree);
        CHECK(kl > prev, "KL at %u bits (%.6f) not above the previous (%.6f)", bits[i], kl, prev);
        prev = kl;
    }
    mt_wl_kl_free(&kl_acc);
    free(base_probs);
    return 0;
}

/* GPTQ (act-order, damp 0.01, 64 calibration windows) against RTN, same format
 * (linear-asym, groups of 64, embedding RTN in both): lower val_bpb at 4 and at 3 bits,
 * and a larger gain at 3 bits (measured on this 300-step fixture: 4 bits 3.7987 -> 3.7981,
 * 3 bits 3.8057 -> 3.8040; without act-order 3 bits was 3.8063, worse than RTN, and on
 * prune's 1200-step fixture 3.7531 -> 3.7525). imatrix is printed, not ordered: it
 * lowers the weighted weight error (test_qcalib), not always val_bpb (4 bits 3.7989). */
static int test_gptq(const char *path)
{
    double gain[2];
    const unsigned bits[2] = {4, 3};
    for (int i = 0; i < 2; i++) {
        struct mt_qformat f = fmt(MT_QS_LINEAR_ASYM, bits[i], MT_QG_GROUP, 64);
        double rtn = bpb_of(path, f, MT_QACT_F32);
        double gptq = bpb_method(path, f, MT_QACT_F32, MT_QM_GPTQ, NULL);
        double imat = bpb_method(path, f, MT_QACT_F32, MT_QM_IMATRIX, NULL);
        gain[i] = rtn - gptq;
        printf("%u bits: rtn %.4f gptq %.4f imatrix %.4f\n", bits[i], rtn, gptq, imat);
        CHECK(gptq < rtn, "%u bits: gptq %.4f not below rtn %.4f", bits[i], gptq, rtn);
    }
    CHECK(gain[1] > gain[0], "gptq's gain at 3 bits (%.4f) not above 4 bits' (%.4f)", gain[1],
          gain[0]);
    return 0;
}

/* The AWQ/SmoothQuant fold (mt_qmodel_fold) is exact in fp32 before quantization: scales
 * in [0.5, 2] (not powers of two) folded into qkv, attn_proj and fc of every block leave
 * the logits of 8 validation windows within 1e-5. */
static int test_fold(const char *path)
{
    struct mt_gpt *m = load(path);
    size_t n = (size_t)EVAL_B * EVAL_T * m->cfg.vocab, C = m->cfg.n_embd;
    float *ref = malloc(n * sizeof *ref), *s = malloc(C * sizeof *s);
    int *in = malloc(EVAL_B * EVAL_T * sizeof *in);
    for (size_t i = 0; i < (size_t)EVAL_B * EVAL_T; i++)
        in[i] = corpus.val[i];
    for (size_t j = 0; j < C; j++)
        s[j] = 0.5f + (float)((j * 37) % 100) / 66.0f;
    CHECK(mt_gpt_forward(m, in, NULL, EVAL_B, EVAL_T, NULL, err, sizeof err) == 0, "%s", err);
    memcpy(ref, m->act[MT_A_LOGITS], n * sizeof *ref);
    for (size_t l = 0; l < m->cfg.n_layer; l++)
        for (int w = MT_LIN_QKV; w <= MT_LIN_FC; w++)
            CHECK(mt_qmodel_fold(m, l, (enum mt_linear)w, s, err, sizeof err) == 0, "%s", err);
    CHECK(mt_qmodel_fold(m, 0, MT_LIN_FCPROJ, s, err, sizeof err) == -1,
          "fc_proj takes no fold (GELU)");
    CHECK(mt_gpt_forward(m, in, NULL, EVAL_B, EVAL_T, NULL, err, sizeof err) == 0, "%s", err);
    double dmax = 0.0;
    for (size_t i = 0; i < n; i++)
        dmax = fmax(dmax, fabs((double)m->act[MT_A_LOGITS][i] - ref[i]));
    printf("fold: max |logit difference| %.3g over %zu logits\n", dmax, n);
    CHECK(dmax <= 1e-5, "folded logits differ by %.3g", dmax);
    free(ref), free(s), free(in);
    mt_gpt_free(m);
    return 0;
}

/* AWQ against RTN, linear-asym 4 bits, groups of 128 (embedding RTN in both), HQQ beside
 * them (printed): AWQ below RTN. Measured on this 300-step fixture: rtn 3.8050, awq
 * 3.8044, hqq 3.8047; before the duo-scaling candidates and the clipping search (qcalib.h)
 * awq was 3.8053, above RTN. tests/calib asserts the same on the 2000-step reference. */
static int test_awq(const char *path)
{
    struct mt_qformat f = fmt(MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 128);
    double rtn = bpb_of(path, f, MT_QACT_F32);
    double awq = bpb_method(path, f, MT_QACT_F32, MT_QM_AWQ, NULL);
    double hqq = bpb_method(path, f, MT_QACT_F32, MT_QM_HQQ, NULL);
    printf("4 bits group 128: rtn %.4f awq %.4f hqq %.4f\n", rtn, awq, hqq);
    CHECK(awq < rtn, "awq %.4f not below rtn %.4f", awq, rtn);
    return 0;
}

/* bf16/fp16 and 8-bit per-channel (weight-only and W8A8) within 1 % of fp32. */
static int test_close(const char *path)
{
    double base = bpb_of(path, fmt(MT_QS_FP16, 32, MT_QG_TENSOR, 0), MT_QACT_F32);
    CHECK(base < 4.0, "the baseline did not learn: val_bpb %.3f", base);
    struct {
        struct mt_qformat f;
        enum mt_qact act;
    } close[] = {{fmt(MT_QS_BF16, 16, MT_QG_TENSOR, 0), MT_QACT_F32},
                 {fmt(MT_QS_FP16, 16, MT_QG_TENSOR, 0), MT_QACT_F32},
                 {fmt(MT_QS_LINEAR_SYM, 8, MT_QG_CHANNEL, 0), MT_QACT_F32},
                 {fmt(MT_QS_LINEAR_ASYM, 8, MT_QG_CHANNEL, 0), MT_QACT_F32},
                 {fmt(MT_QS_LINEAR_SYM, 8, MT_QG_CHANNEL, 0), MT_QACT_INT8}};
    for (size_t i = 0; i < sizeof close / sizeof close[0]; i++) {
        double b = bpb_of(path, close[i].f, close[i].act);
        CHECK(fabs(b - base) <= 0.01 * base, "%s/%u: val_bpb %.4f not within 1%% of fp32 %.4f",
              mt_qscheme_name(close[i].f.scheme), close[i].f.bits, b, base);
    }
    return 0;
}

/* val_bpb strictly worse at each step 8 -> 4 -> 3 -> 2 bits of one scheme, groups of 64;
 * returns the 4-bit value. */
static double bits_chain(const char *path, enum mt_qscheme s)
{
    const unsigned bits[] = {8, 4, 3, 2};
    double prev = 0.0, four = 0.0;
    for (int i = 0; i < 4; i++) {
        double b = bpb_of(path, fmt(s, bits[i], MT_QG_GROUP, 64), MT_QACT_F32);
        CHECK(i == 0 || b > prev,
              "%s group64: val_bpb at %u bits (%.4f) not above %u bits "
              "(%.4f)",
              mt_qscheme_name(s), bits[i], b, bits[i ? i - 1 : 0], prev);
        if (bits[i] == 4) four = b;
        prev = b;
    }
    return four;
}

/* linear-asym: the bits chain, and at 4 bits groups of 64 beat one scale per tensor. */
static int test_bits(const char *path)
{
    double bg = bits_chain(path, MT_QS_LINEAR_ASYM);
    double bt = bpb_of(path, fmt(MT_QS_LINEAR_ASYM, 4, MT_QG_TENSOR, 0), MT_QACT_F32);
    CHECK(bg < bt, "4-bit group64 val_bpb %.4f not below per-tensor %.4f", bg, bt);
    return 0;
}

/* The same chain for a codebook scheme (NF levels). */
static int test_bits_nf(const char *path)
{
    bits_chain(path, MT_QS_NF);
    return 0;
}

/* Packed bytes of an n x k matrix, written out independently of qformat.c. */
static size_t hand_bytes(size_t n, size_t k, unsigned bits, size_t gs, int floats_per_unit)
{
    size_t unit = gs ? gs : 0, k_pad = (k + 63) / 64 * 64;
    if (gs > 64) k_pad = (k + gs - 1) / gs * gs;
    size_t units = gs ? k_pad / unit : 1;
    return n * (k_pad / 64) * bits * 8 + n * units * (size_t)floats_per_unit * 4;
}

static int test_bytes(const char *path)
{
    struct mt_gpt *m = load(path);
    size_t L = m->cfg.n_layer, C = m->cfg.n_embd, V = m->cfg.vocab, T = m->cfg.seq_len;
    struct mt_qmodel *qm;
    struct mt_qmodel_opts o = {.fmt = fmt(MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 64)};
    CHECK(mt_qmodel_build(&qm, m, &o, err, sizeof err) == 0, "%s", err);
    size_t fp32 = 4 * (V * C + T * C + 4 * L * C /* ln1, ln2 */ + L * 3 * C + L * C + L * 4 * C +
                       L * C /* biases */ + 2 * C /* lnf */);
    size_t packed = L * (hand_bytes(3 * C, C, 4, 64, 2) + hand_bytes(C, C, 4, 64, 2) +
                         hand_bytes(4 * C, C, 4, 64, 2) + hand_bytes(C, 4 * C, 4, 64, 2));
    CHECK(qm->fp32_bytes == fp32, "fp32 bytes %zu, want %zu", qm->fp32_bytes, fp32);
    CHECK(qm->packed_bytes == packed, "packed bytes %zu, want %zu", qm->packed_bytes, packed);
    CHECK(mt_qmodel_bytes(qm) == fp32 + packed, "model bytes");
    CHECK(fabs(mt_qmodel_bits_per_weight(qm) - (4.0 + 64.0 / 64.0)) < 1e-12,
          "bits/weight %.6f, want 5 (4 + two fp32 per 64)", mt_qmodel_bits_per_weight(qm));
    mt_qmodel_free(qm);
    mt_gpt_free(m);

    /* With the embedding packed (nf4, per channel): one more tensor, and the fp32 count
     * drops the embedding. */
    m = load(path);
    o = (struct mt_qmodel_opts){.fmt = fmt(MT_QS_NF, 4, MT_QG_CHANNEL, 0), .embedding = 1};
    CHECK(mt_qmodel_build(&qm, m, &o, err, sizeof err) == 0, "%s", err);
    size_t lut = 16 * 4;
    packed = L * (hand_bytes(3 * C, C, 4, 0, 1) + hand_bytes(C, C, 4, 0, 1) +
                  hand_bytes(4 * C, C, 4, 0, 1) + hand_bytes(C, 4 * C, 4, 0, 1) + 4 * lut) +
             hand_bytes(V, C, 4, 0, 1) + lut;
    CHECK(qm->packed_bytes == packed, "nf4 packed bytes %zu, want %zu", qm->packed_bytes, packed);
    CHECK(qm->fp32_bytes == fp32 - 4 * V * C, "nf4 fp32 bytes %zu, want %zu", qm->fp32_bytes,
          fp32 - 4 * V * C);
    CHECK(m->param[MT_P_WTE] == NULL && m->embed_hook.rows != NULL,
          "the fp32 embedding is freed and lookups go through the hook");
    mt_qmodel_free(qm);
    mt_gpt_free(m);
    return 0;
}

static int test_decode(const char *path)
{
    struct mt_gpt *m = load(path);
    struct mt_qmodel *qm;
    struct mt_qmodel_opts o = {
        .fmt = fmt(MT_QS_LINEAR_SYM, 4, MT_QG_GROUP, 32), .act = MT_QACT_INT8, .embedding = 1};
    size_t before = m->slab_bytes[MT_MEM_WEIGHTS];
    CHECK(mt_qmodel_build(&qm, m, &o, err, sizeof err) == 0, "%s", err);
    CHECK(m->param[MT_P_QKVW] == NULL && m->param[MT_P_FCW] == NULL, "fp32 weights kept");
    CHECK(m->slab_bytes[MT_MEM_WEIGHTS] * 4 < before, "weight slab %zu not much below %zu",
          m->slab_bytes[MT_MEM_WEIGHTS], before);
    size_t T = 32, V = m->cfg.vocab;
    int in[32];
    for (size_t t = 0; t < T; t++)
        in[t] = corpus.val[t];
    CHECK(mt_gpt_forward(m, in, NULL, 1, T, NULL, err, sizeof err) == 0, "%s", err);
    struct mt_gpt_kv *kv;
    CHECK(mt_gpt_kv_create(&kv, &m->cfg, T, err, sizeof err) == 0, "%s", err);
    double worst = 0.0;
    for (size_t t = 0; t < T; t++) {
        CHECK(mt_gpt_decode_step(m, kv, in[t], err, sizeof err) == 0, "%s", err);
        const float *ref = m->act[MT_A_LOGITS] + t * V;
        for (size_t v = 0; v < V; v++) {
            double d = fabs((double)kv->logits[v] - ref[v]);
            if (d > worst) worst = d;
        }
    }
    CHECK(worst < 1e-3, "decode logits differ from the forward's by %g", worst);
    printf("decode vs forward on packed W4A8 weights: max |diff| %.3g\n", worst);
    mt_gpt_kv_free(kv);
    mt_qmodel_free(qm);
    mt_gpt_free(m);
    return 0;
}

/* Windows and bytes per window of the KV-cache accuracy case. */
enum { KV_W = 32, KV_N = KV_W * EVAL_T };

/* Per-position losses (tok_loss[KV_N]), their mean and the mean KL(fp32 cache || format)
 * decoding KV_W windows of T bytes, the KL through the serving measurement's one function
 * (mt_wl_kl_add). */
static void kv_loss(struct mt_gpt *m, enum mt_kvc_format f, double *tok_loss, double *loss,
                    double *kl)
{
    size_t V = m->cfg.vocab, T = m->cfg.seq_len;
    CHECK(T == EVAL_T, "small's context %zu, not %d", T, EVAL_T);
    struct mt_kvc_spec s = mt_kvc_spec_default();
    s.format = f, s.group = 16, s.residual = 16;
    struct mt_gpt_kv *a, *b;
    CHECK(mt_gpt_kv_create(&a, &m->cfg, T, err, sizeof err) == 0, "%s", err);
    CHECK(mt_gpt_kv_create_spec(&b, &m->cfg, T, &s, err, sizeof err) == 0, "%s", err);
    double *lp = malloc(2 * V * sizeof *lp);
    float *p = malloc(2 * V * sizeof *p);
    struct mt_wl_kl acc = {0};
    *loss = 0.0;
    for (size_t w = 0; w < KV_W; w++) {
        const uint8_t *x = corpus.val + w * T;
        mt_gpt_kv_reset(a), mt_gpt_kv_reset(b);
        for (size_t t = 0; t < T; t++) {
            CHECK(mt_gpt_decode_step(m, a, x[t], err, sizeof err) == 0, "%s", err);
            CHECK(mt_gpt_decode_step(m, b, x[t], err, sizeof err) == 0, "%s", err);
            mt_gpt_log_softmax(a->logits, V, lp), mt_gpt_log_softmax(b->logits, V, lp + V);
            tok_loss[w * T + t] = -lp[V + x[t + 1]];
            *loss += tok_loss[w * T + t];
            for (size_t j = 0; j < 2 * V; j++)
                p[j] = (float)exp(lp[j]);
            CHECK(mt_wl_kl_add(&acc, p, p + V, 1, V) == 0, "out of memory");
        }
    }
    struct mt_wl_kl_stats st;
    mt_wl_kl_summary(&acc, &st);
    *loss /= (double)KV_N, *kl = st.mean;
    mt_wl_kl_free(&acc);
    free(lp), free(p);
    mt_gpt_kv_free(a), mt_gpt_kv_free(b);
}

/* The standard error of the mean of the paired per-position differences b - a. */
static double paired_se(const double *a, const double *b, size_t n)
{
    double mean = 0.0, ss = 0.0;
    for (size_t i = 0; i < n; i++)
        mean += b[i] - a[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (b[i] - a[i] - mean) * (b[i] - a[i] - mean);
    return sqrt(ss / (double)(n - 1) / (double)n);
}

/* How far val_loss may fall as the cache loses bits before the test calls it a real
 * improvement: KV_NOISE_SE standard errors of the paired per-position difference against
 * the format one step up (a cache's rounding moves each position's loss up or down; on
 * 4096 positions a mean falling by less than three standard errors is the draw of these
 * windows, not a better cache). */
#define KV_NOISE_SE 3.0

static int test_kvcache(const char *path)
{
    struct mt_gpt *m = load(path);
    double loss[MT_KVC_FORMAT_COUNT], kl[MT_KVC_FORMAT_COUNT];
    double *tok = malloc((size_t)MT_KVC_FORMAT_COUNT * KV_N * sizeof *tok);
    CHECK(tok, "out of memory");
    for (int f = 0; f < MT_KVC_FORMAT_COUNT; f++) {
        kv_loss(m, (enum mt_kvc_format)f, tok + (size_t)f * KV_N, &loss[f], &kl[f]);
        printf("kv cache %-5s val_loss %.6f (%+.2e vs fp32) val_ppl %.4f (%+.4f) KL %.3e\n",
               mt_kvc_format_name((enum mt_kvc_format)f), loss[f], loss[f] - loss[MT_KVC_FP32],
               exp(loss[f]), exp(loss[f]) - exp(loss[MT_KVC_FP32]), kl[f]);
    }
    CHECK(kl[MT_KVC_FP32] == 0.0, "fp32 cache differs from itself: %g", kl[MT_KVC_FP32]);
    CHECK(fabs(loss[MT_KVC_INT8] - loss[MT_KVC_FP32]) <= 0.005 * loss[MT_KVC_FP32],
          "int8 cache %.6f vs fp32 %.6f", loss[MT_KVC_INT8], loss[MT_KVC_FP32]);
    CHECK(loss[MT_KVC_INT8] < loss[MT_KVC_INT4] && loss[MT_KVC_INT4] < loss[MT_KVC_INT2],
          "loss not rising int8 -> int4 -> int2");
    CHECK(loss[MT_KVC_FP32] < loss[MT_KVC_INT4], "int4 cache not worse than fp32");
    /* falling bits: the KL from the fp32 cache rises strictly; val_loss never falls by
     * more than KV_NOISE_SE paired standard errors */
    static const int order[] = {MT_KVC_FP32, MT_KVC_FP16, MT_KVC_BF16, MT_KVC_INT8,
                                MT_KVC_INT4, MT_KVC_INT3, MT_KVC_INT2};
    for (size_t i = 1; i < sizeof order / sizeof order[0]; i++) {
        int a = order[i - 1], b = order[i];
        double tol = KV_NOISE_SE * paired_se(tok + (size_t)a * KV_N, tok + (size_t)b * KV_N, KV_N);
        const char *na = mt_kvc_format_name((enum mt_kvc_format)a),
                   *nb = mt_kvc_format_name((enum mt_kvc_format)b);
        printf("kv cache %s -> %s: val_loss %+.2e (noise tolerance %.2e), KL %.3e -> %.3e\n", na,
               nb, loss[b] - loss[a], tol, kl[a], kl[b]);
        CHECK(kl[b] > kl[a], "KL not rising %s -> %s", na, nb);
        CHECK(loss[b] >= loss[a] - tol, "val_loss falls %s -> %s by %.2e (tolerance %.2e)", na, nb,
              loss[a] - loss[b], tol);
    }
    /* the anchors (KIVI 2-bit, KVQuant 3-bit under 0.1 perplexity loss): the per-byte
     * perplexity rise of each format is printed above (val_ppl). No strict val_loss order
     * between int3 and int2: measured int3 +2.9e-4 and int2 +1.8e-4 against fp32, 1.0e-4
     * apart inside a noise tolerance of 7.6e-4; the KL, an average of divergences that
     * chance cannot push below 0, is 5.6x apart. */
    free(tok);
    mt_gpt_free(m);
    return 0;
}

/* The checkpoint lives in the model cache ($XDG_CACHE_HOME/memtrade, else
 * ~/.cache/memtrade) when there is one, so a sanitizer build of the tests reuses what the
 * plain build trained (training under ASan takes minutes); else at `fallback`. */
static const char *ckpt_path(const char *fallback, char *buf, size_t n)
{
    char dir[400];
    if (!mt_test_cache_dir(dir, sizeof dir)) return fallback;
    /* keyed like the model cache: the recipe's inputs and the corpus's identity and size,
     * so another corpus or recipe never reuses a stale file under the same name */
    struct mt_gpt_recipe r = mt_gpt_recipe_default(TRAIN_STEPS);
    uint64_t key[] = {FIXTURE_VERSION, TRAIN_STEPS, 4, r.seq, 1234, 42, corpus.identity, corpus.n};
    uint64_t h = mt_fnv64(MT_FNV64_INIT, key, sizeof key);
    float lr[] = {r.lr, r.min_lr_frac, r.beta1, r.beta2, r.eps, r.weight_decay, r.grad_clip};
    h = mt_fnv64(h, lr, sizeof lr);
    snprintf(buf, n, "%s/quantize-test-small-b4-s%d-%016llx.ckpt", dir, TRAIN_STEPS,
             (unsigned long long)h);
    return buf;
}

int main(int argc, char **argv)
{
    char buf[512];
    if (argc != 3) {
        fprintf(stderr,
                "usage: %s train|close|bits|bits_nf|bytes|decode|kl|gptq|fold|awq|kvcache CKPT\n",
                argv[0]);
        return 2;
    }
    if (mt_corpus_load(&corpus, NULL, 256, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 77;
    }
    int rc;
    argv[2] = (char *)ckpt_path(argv[2], buf, sizeof buf);
    static const struct {
        const char *name;
        int (*run)(const char *ckpt);
    } cases[] = {{"train", train},          {"close", test_close},     {"bits", test_bits},
                 {"gptq", test_gptq},       {"fold", test_fold},       {"awq", test_awq},
                 {"kl", test_kl},           {"bits_nf", test_bits_nf}, {"bytes", test_bytes},
                 {"kvcache", test_kvcache}, {"decode", test_decode}};
    size_t c = 0;
    while (c < sizeof cases / sizeof cases[0] && strcmp(argv[1], cases[c].name))
        c++;
    if (c == sizeof cases / sizeof cases[0]) {
        fprintf(stderr, "unknown case %s\n", argv[1]);
        return 2;
    }
    rc = cases[c].run(argv[2]);
    mt_corpus_free(&corpus);
    if (failures) {
        fprintf(stderr, "%s: %d failures\n", argv[1], failures);
        return 1;
    }
    return rc;
}
