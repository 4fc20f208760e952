/* test_cuda.c — the engine on the GPU (device=cuda) against the CPU engine on the same
 * weights: forward losses and probabilities (training and inference models), KV-cache
 * decode logits, gradients after backward, weights after AdamW steps. fp32 must agree
 * within 1e-4, tf32 and bf16 within 1e-2 (relative to the largest magnitude of each
 * tensor; losses relative to themselves). Skips (exit 77) with the reason where there is
 * no CUDA device.
 * Part rows repeats forward and train with the kernel table's row kernels for dense
 * attention (attention_rows) instead of cuBLAS's batched products.
 * Part recompute: checkpointing on the device (mt_cuda_gpt_create_every, every 2 and L)
 * gives the loss of keeping everything bit for bit and its gradients within 1e-5 (the
 * device's gradient kernels add with atomics, so two runs of the same backward differ
 * in summation order: 0.5 % of the gradients by a last bit on an H200), recomputes the
 * blocks it should, and allocates its plan (mt_cuda_gpt_plan), less activation memory.
 * Part accum: two micro-batches of one sequence, accumulated with the global batch's
 * normaliser, give the gradients of the whole batch (within the tolerance: another
 * summation order).
 * Part flash (a SPEC with attention=flash): the device's flash kernels (cflash.h, the
 * model's precision) against the CPU's mt_k_flash_attention_fwd / _bwd on random q, k, v
 * (the SPEC's shape and three more: head sizes 64 and 128, grouped-query heads, windows,
 * T not a multiple of the tiles): output, lse and dqkv within the tolerance, and two runs
 * bit for bit; then the flash model against the dense model on the device, same weights:
 * loss, probabilities and gradients within the tolerance, the plan exact for both
 * (slabs plus extras), flash's activations and workspace below dense's.
 * Part bits: decoding's numerics do not depend on how the step is run: every step's logits
 * of the step replayed as a CUDA graph, launched kernel by kernel, with everything folded
 * into the GEMVs, without the norms folded and with nothing folded (decode_unfuse), and the
 * last logits of steps only queued (one wait at the end) are bit for bit those of the
 * unfused launches; greedy decoding on the device
 * (mt_cuda_decode_greedy, graph) picks the tokens that the host's argmax of the unfused
 * launches' logits picks, with the same last logits; the same with the linears packed in
 * int8 (per row) and int4 (groups of 32).
 * Usage: test_transformer_cuda SPEC PRECISION PART... (parts: forward decode train rows
 * recompute accum flash bits) */
#include <cuda_runtime_api.h>
#include <math.h>

#include "block.h"
#include "cflash.h"
#include "cgpt.h"
#include "kernels.h"
#include "kvcache.h"
#include "qformat.h"
#include "rng.h"
#include "tf_test.h"

static struct mt_gpt_config cfg;
static enum mt_cuda_precision prec;
static float tol;
static char err[256];
static int attention_rows; /* part rows */

enum { B = 2, STEPS = 3 };

/* max |a - b| / max |b| over n floats (b the CPU's). */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0.0, mx = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > d || isnan(e)) d = isnan(e) ? INFINITY : e;
        if (fabs(b[i]) > mx) mx = fabs(b[i]);
    }
    return d / mx;
}

static void expect_close(const char *what, const float *dev, const float *cpu, size_t n)
{
    double r = rel_diff(dev, cpu, n);
    printf("  %-28s rel diff %.3g (tolerance %.0e)\n", what, r, (double)tol);
    CHECK(r <= tol);
}

static void tokens(int *in, int *tg, size_t n, uint64_t seed)
{
    struct mt_rng r;
    mt_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        in[i] = (int)mt_rng_below(&r, cfg.vocab);
        tg[i] = (int)mt_rng_below(&r, cfg.vocab);
    }
    tg[1] = -1; /* an ignored target */
}

/* A CPU model and its device twin with the same seeded weights. */
static void pair(struct mt_gpt **h, struct mt_cuda_gpt **d, enum mt_gpt_mode mode)
{
    CHECK_OK(mt_gpt_create(h, &cfg, mode, B, cfg.seq_len, err, sizeof err), err);
    mt_gpt_init(*h, 7);
    CHECK_OK(mt_cuda_gpt_create(d, &cfg, mode, B, cfg.seq_len, prec, err, sizeof err), err);
    CHECK_OK(mt_cuda_gpt_upload(*d, *h, err, sizeof err), err);
    (*d)->attention_rows = attention_rows;
    size_t plan[MT_MEM_CAT_COUNT];
    mt_gpt_memory(&cfg, B, cfg.seq_len, mode, plan, NULL, 0);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++) /* the exact plan holds on the device */
        CHECK((*d)->m.slab_bytes[c] == plan[c] && (*h)->slab_bytes[c] == plan[c]);
}

static void forward_case(enum mt_gpt_mode mode)
{
    struct mt_gpt *h;
    struct mt_cuda_gpt *d;
    pair(&h, &d, mode);
    size_t T = cfg.seq_len, n = B * T * cfg.vocab;
    int *in = malloc(B * T * sizeof *in), *tg = malloc(B * T * sizeof *tg);
    float *probs = malloc(n * sizeof *probs), lh = 0, ld = 0;
    CHECK(in && tg && probs);
    tokens(in, tg, B * T, 11);
    CHECK_OK(mt_gpt_forward(h, in, tg, B, T, &lh, err, sizeof err), err);
    CHECK_OK(mt_cuda_gpt_forward(d, in, tg, B, T, &ld, err, sizeof err), err);
    printf("  loss cpu %.6f gpu %.6f\n", lh, ld);
    CHECK(fabs(ld - lh) <= tol * fabs(lh));
    CHECK_OK(mt_cuda_copy_to_host(probs, d->m.act[MT_A_LOGITS], n * sizeof *probs, err, sizeof err),
             err);
    expect_close("probabilities", probs, h->act[MT_A_LOGITS], n);
    /* a bad token is refused with a message */
    in[0] = (int)cfg.vocab;
    CHECK(mt_cuda_gpt_forward(d, in, tg, B, T, &ld, err, sizeof err) == -1 && strstr(err, "vocab"));
    free(in), free(tg), free(probs);
    mt_cuda_gpt_free(d);
    mt_gpt_free(h);
}

static void part_forward(void)
{
    printf("forward, training model:\n");
    forward_case(MT_GPT_TRAIN);
    printf("forward, inference model (evaluation):\n");
    forward_case(MT_GPT_INFER);
}

/* KV-cache decode logits against the CPU's, with the step replayed as a CUDA graph
 * (graphs 1; RoPE models launch) or launched kernel by kernel (0), the cache's elements of
 * type (mt_cu_kv_type: fp32, bf16, fp16 against the CPU cache of the same format; 16-bit
 * caches within 1e-2, the values rounded from slightly different fp32 keys). */
static void decode_case(int graphs, int type)
{
    struct mt_gpt *h;
    struct mt_cuda_gpt *d;
    struct mt_gpt_kv *kh;
    struct mt_cuda_kv *kd;
    pair(&h, &d, MT_GPT_INFER);
    size_t n = cfg.seq_len < 24 ? cfg.seq_len : 24;
    struct mt_kvc_spec spec = mt_kvc_spec_default();
    spec.format = (enum mt_kvc_format)type; /* fp32, bf16, fp16: the same order */
    float tl = type ? (tol > 1e-2f ? tol : 1e-2f) : tol;
    CHECK_OK(mt_gpt_kv_create_spec(&kh, &cfg, n, &spec, err, sizeof err), err);
    CHECK_OK(mt_cuda_kv_create_type(&kd, d, n, type, err, sizeof err), err);
    CHECK(cfg.window || kd->kv_bytes == kh->kv_bytes); /* a window: the CPU keeps its own */
    kd->graphs = graphs;
    double worst = 0.0;
    for (size_t t = 0; t < n; t++) {
        int tok = (int)((t * 37 + 5) % cfg.vocab);
        CHECK_OK(mt_gpt_decode_step(h, kh, tok, err, sizeof err), err);
        CHECK_OK(mt_cuda_decode_step(d, kd, tok, 1, err, sizeof err), err);
        double r = rel_diff(kd->logits, kh->logits, cfg.vocab);
        if (r > worst) worst = r;
    }
    printf("decode (%s, %s cache, %zu bytes): %zu steps, logits rel diff %.3g (tolerance %.0e)\n",
           kd->graph ? "graph" : "launches", mt_kvc_format_name(spec.format), kd->kv_bytes, n,
           worst, (double)tl);
    CHECK(!kd->graph == (!graphs || cfg.pos == MT_GPT_POS_ROPE));
    CHECK(worst <= tl);
    CHECK(mt_cuda_decode_step(d, kd, 0, 1, err, sizeof err) == -1 && strstr(err, "full"));
    mt_cuda_kv_free(kd);
    mt_gpt_kv_free(kh);
    mt_cuda_gpt_free(d);
    mt_gpt_free(h);
}

static void part_decode(void)
{
    decode_case(1, 0);
    decode_case(0, 0);
    decode_case(1, 1); /* bf16 */
    decode_case(1, 2); /* fp16 */
}

/* The step token of bits's runs at position t. */
static int bits_token(size_t t)
{
    return (int)((t * 37 + 5) % cfg.vocab);
}

/* n steps from a fresh cache run as graphs / unfuse (decode_unfuse) say; every step's logits into
 * out (n x V), or (queued) only the last one, read after one wait. */
static void bits_run(struct mt_cuda_gpt *d, size_t n, int graphs, int unfuse, int queued,
                     float *out)
{
    struct mt_cuda_kv *kv;
    size_t V = cfg.vocab;
    CHECK_OK(mt_cuda_kv_create(&kv, d, n, err, sizeof err), err);
    kv->graphs = graphs;
    d->decode_unfuse = unfuse;
    for (size_t t = 0; t < n; t++) {
        int how = queued ? MT_CUDA_LOGITS_QUEUED : MT_CUDA_LOGITS_HOST;
        CHECK_OK(mt_cuda_decode_step(d, kv, bits_token(t), how, err, sizeof err), err);
        if (!queued) memcpy(out + t * V, kv->logits, V * sizeof *out);
    }
    if (queued) {
        CHECK_OK(mt_cuda_decode_wait(err, sizeof err), err);
        CHECK_OK(mt_cuda_copy_to_host(out, kv->dlogits, V * sizeof *out, err, sizeof err), err);
    }
    CHECK(!kv->graph == (!graphs || cfg.pos == MT_GPT_POS_ROPE));
    mt_cuda_kv_free(kv);
}

static int host_argmax(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int)best;
}

static void bits_case(const struct mt_qformat *qf, const char *name)
{
    struct mt_gpt *h;
    struct mt_cuda_gpt *d;
    struct mt_cuda_kv *kv;
    pair(&h, &d, MT_GPT_INFER);
    if (qf) CHECK_OK(mt_cuda_gpt_quantize(d, h, qf, err, sizeof err), err);
    size_t n = cfg.seq_len < 24 ? cfg.seq_len : 24, V = cfg.vocab;
    float *ref = malloc(n * V * sizeof *ref), *got = malloc(n * V * sizeof *got);
    int *want = malloc(n * sizeof *want), *toks = malloc(n * sizeof *toks);
    CHECK(ref && got && want && toks);
    const int all = MT_BLOCK_FUSE_NORM | MT_BLOCK_FUSE_GELU | MT_BLOCK_FUSE_RESIDUAL;
    bits_run(d, n, 0, all, 0, ref); /* the reference: unfused kernels, launched one by one */
    const int runs[][3] = {
        {0, 0, 0}, {1, 0, 0}, {1, all, 0}, {1, MT_BLOCK_FUSE_NORM, 0}, {0, MT_BLOCK_FUSE_NORM, 0},
        {1, 0, 1}, {0, 0, 1}};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        int graphs = runs[r][0], unfuse = runs[r][1], queued = runs[r][2];
        bits_run(d, n, graphs, unfuse, queued, got);
        const float *want_l = queued ? ref + (n - 1) * V : ref;
        size_t len = queued ? V : n * V, first = len;
        for (size_t i = 0; i < len && first == len; i++)
            if (memcmp(&got[i], &want_l[i], sizeof *got)) first = i;
        printf("  bits %s: %s%s%s against unfused launches: %s", name,
               graphs ? "graph" : "launches",
               unfuse == all ? " unfused"
               : unfuse      ? " norms unfused"
                             : "",
               queued ? " queued (last logits)" : "", first == len ? "identical\n" : "DIFFER");
        if (first < len)
            printf(" at step %zu logit %zu: %.9g vs %.9g\n", queued ? n - 1 : first / V, first % V,
                   (double)got[first], (double)want_l[first]);
        CHECK(first == len);
    }
    /* greedy: the host's argmax of the unfused launches, then the device's own */
    CHECK_OK(mt_cuda_kv_create(&kv, d, n, err, sizeof err), err);
    kv->graphs = 0;
    d->decode_unfuse = all;
    int tok = 5;
    for (size_t t = 0; t < n; t++) {
        CHECK_OK(mt_cuda_decode_step(d, kv, tok, MT_CUDA_LOGITS_HOST, err, sizeof err), err);
        want[t] = tok = host_argmax(kv->logits, V);
    }
    memcpy(ref, kv->logits, V * sizeof *ref);
    mt_cuda_kv_free(kv);
    d->decode_unfuse = 0;
    CHECK_OK(mt_cuda_kv_create(&kv, d, n, err, sizeof err), err);
    CHECK_OK(mt_cuda_decode_greedy(d, kv, 5, n - 1, toks, err, sizeof err), err);
    CHECK_OK(mt_cuda_decode_greedy(d, kv, toks[n - 2], 1, toks + n - 1, err, sizeof err), err);
    CHECK_OK(mt_cuda_copy_to_host(got, kv->dlogits, V * sizeof *got, err, sizeof err), err);
    int same = !memcmp(toks, want, n * sizeof *toks), same_l = !memcmp(got, ref, V * sizeof *got);
    printf("  bits %s: greedy on the device (%s), %zu tokens: tokens %s, last logits %s\n", name,
           kv->graph ? "graph" : "launches", n, same ? "identical" : "DIFFER",
           same_l ? "identical" : "DIFFER");
    CHECK(same && same_l);
    CHECK(kv->pos == n);
    CHECK(mt_cuda_decode_greedy(d, kv, 0, 1, toks, err, sizeof err) == -1 && strstr(err, "full"));
    mt_cuda_kv_free(kv);
    free(ref), free(got), free(want), free(toks);
    mt_cuda_gpt_free(d);
    mt_gpt_free(h);
}

static void part_bits(void)
{
    struct mt_qformat q8 = {.scheme = MT_QS_LINEAR_ASYM, .bits = 8, .gran = MT_QG_CHANNEL};
    struct mt_qformat q4 = {
        .scheme = MT_QS_LINEAR_ASYM, .bits = 4, .gran = MT_QG_GROUP, .group_size = 32};
    bits_case(NULL, prec == MT_CUDA_FP32 ? "fp32" : prec == MT_CUDA_BF16 ? "bf16" : "tf32");
    CHECK_OK(mt_qformat_check(&q8, err, sizeof err), err);
    CHECK_OK(mt_qformat_check(&q4, err, sizeof err), err);
    bits_case(&q8, "int8");
    bits_case(&q4, "int4-g32");
}

static void part_train(void)
{
    struct mt_gpt *h, *back;
    struct mt_cuda_gpt *d;
    pair(&h, &d, MT_GPT_TRAIN);
    CHECK_OK(mt_gpt_create(&back, &cfg, MT_GPT_TRAIN, B, cfg.seq_len, err, sizeof err), err);
    size_t T = cfg.seq_len, np = h->slab_bytes[MT_MEM_WEIGHTS] / sizeof(float);
    int *in = malloc(B * T * sizeof *in), *tg = malloc(B * T * sizeof *tg);
    CHECK(in && tg);
    struct mt_gpt_recipe r = mt_gpt_recipe_default(10);
    r.batch = B, r.seq = T, r.lr = 1e-3f, r.warmup = 0;
    printf("train (backward + AdamW):\n");
    for (size_t s = 0; s < STEPS; s++) {
        tokens(in, tg, B * T, 100 + s);
        float lh, ld, nh, nd;
        CHECK_OK(mt_gpt_forward(h, in, tg, B, T, &lh, err, sizeof err), err);
        CHECK_OK(mt_cuda_gpt_forward(d, in, tg, B, T, &ld, err, sizeof err), err);
        mt_gpt_zero_grad(h);
        mt_cuda_gpt_zero_grad(d);
        CHECK_OK(mt_gpt_backward(h, 1.0f, 0, err, sizeof err), err);
        CHECK_OK(mt_cuda_gpt_backward(d, 1.0f, 0, err, sizeof err), err);
        if (s == 0) { /* gradients, tensor by tensor */
            CHECK_OK(mt_cuda_gpt_download(d, back, err, sizeof err), err);
            for (int p = 0; p < MT_P_COUNT; p++)
                if (h->param_len[p])
                    expect_close(mt_gpt_param_name((enum mt_gpt_param)p), back->grad[p], h->grad[p],
                                 h->param_len[p]);
        }
        nh = mt_gpt_adamw_step(h, &r, mt_gpt_lr_at(&r, s), 1.0f);
        CHECK_OK(mt_cuda_gpt_adamw_step(d, &r, mt_gpt_lr_at(&r, s), 1.0f, &nd, err, sizeof err),
                 err);
        printf("  step %zu: loss cpu %.6f gpu %.6f, grad norm cpu %.6f gpu %.6f\n", s, lh, ld, nh,
               nd);
        if (s == 0) { /* AdamW's first moment, from the same weights (later steps compound) */
            CHECK_OK(mt_cuda_gpt_download(d, back, err, sizeof err), err);
            expect_close("AdamW m after one step", back->opt_m, h->opt_m, np);
        }
        CHECK(fabs(ld - lh) <= tol * fabs(lh) && fabs(nd - nh) <= tol * fabs(nh));
    }
    CHECK_OK(mt_cuda_gpt_download(d, back, err, sizeof err), err);
    CHECK(back->adam_step == STEPS);
    /* AdamW's normalized update turns a rounding difference in a near-zero gradient into
     * an update difference of up to lr: after a few steps the weights agree to a few
     * tolerances (fp32: 1.05e-4 measured on an H100), the gradients and moments above to
     * one. */
    float one = tol;
    tol = 4 * one;
    expect_close("weights after the steps (4x)", back->params, h->params, np);
    tol = one;
    free(in), free(tg);
    mt_gpt_free(back);
    mt_cuda_gpt_free(d);
    mt_gpt_free(h);
}

static void part_rows(void)
{
    printf("dense attention through the row kernels:\n");
    attention_rows = 1;
    part_forward();
    part_train();
    attention_rows = 0;
}

/* One forward and backward of the fixed tokens on d; the gradients into back (host). */
/* A training pair (h, d, pair()), two host models for downloaded gradients (ref, got) and
 * B x T tokens and targets from seed (in, tg: the caller frees them). */
static void train_setup(struct mt_gpt **h, struct mt_cuda_gpt **d, struct mt_gpt **ref,
                        struct mt_gpt **got, int **in, int **tg, uint64_t seed)
{
    size_t n = B * cfg.seq_len;
    *in = malloc(n * sizeof **in), *tg = malloc(n * sizeof **tg);
    CHECK(*in && *tg);
    tokens(*in, *tg, n, seed);
    pair(h, d, MT_GPT_TRAIN);
    CHECK_OK(mt_gpt_create(ref, &cfg, MT_GPT_TRAIN, 1, 1, err, sizeof err), err);
    CHECK_OK(mt_gpt_create(got, &cfg, MT_GPT_TRAIN, 1, 1, err, sizeof err), err);
}

static float grads_of(struct mt_cuda_gpt *d, struct mt_gpt *back, const int *in, const int *tg)
{
    float loss = 0.0f;
    CHECK_OK(mt_cuda_gpt_forward(d, in, tg, B, cfg.seq_len, &loss, err, sizeof err), err);
    mt_cuda_gpt_zero_grad(d);
    CHECK_OK(mt_cuda_gpt_backward(d, 1.0f, 0, err, sizeof err), err);
    CHECK_OK(mt_cuda_gpt_download(d, back, err, sizeof err), err);
    return loss;
}

static void part_recompute(void)
{
    struct mt_gpt *h, *ref, *got;
    struct mt_cuda_gpt *d;
    size_t T = cfg.seq_len, L = cfg.n_layer, ng;
    int *in, *tg;
    train_setup(&h, &d, &ref, &got, &in, &tg, 21);
    ng = ref->slab_bytes[MT_MEM_GRADIENTS] / sizeof(float);
    float l1 = grads_of(d, ref, in, tg);
    size_t acts1 = d->m.slab_bytes[MT_MEM_ACTIVATIONS];
    mt_cuda_gpt_free(d);
    size_t everies[2] = {2, L};
    for (int i = 0; i < 2; i++) {
        size_t every = everies[i], plan[MT_MEM_CAT_COUNT];
        if (every > L) continue;
        CHECK_OK(
            mt_cuda_gpt_create_every(&d, &cfg, MT_GPT_TRAIN, B, T, prec, every, err, sizeof err),
            err);
        CHECK_OK(mt_cuda_gpt_upload(d, h, err, sizeof err), err);
        d->attention_rows = attention_rows;
        float l = grads_of(d, got, in, tg);
        size_t want = 0; /* blocks that are not the top of their group */
        for (size_t b = 0; b < L; b++)
            want += (L - 1 - b) % every != 0;
        CHECK(mt_cuda_gpt_plan(&cfg, MT_GPT_TRAIN, B, T, prec, every, plan, err, sizeof err));
        int exact = 1;
        for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
            exact &= d->m.slab_bytes[c] + d->extra_bytes[c] == plan[c];
        double r = rel_diff(got->grads, ref->grads, ng);
        printf("recompute every %zu: loss %.9g (all kept %.9g), gradients rel diff %.3g "
               "(tolerance 1e-5), %zu blocks recomputed (want %zu), activations %zu B (all kept "
               "%zu B), plan %s\n",
               every, l, l1, r, d->recomputed_blocks, want, d->m.slab_bytes[MT_MEM_ACTIVATIONS],
               acts1, exact ? "exact" : "DIFFERS");
        CHECK(!memcmp(&l, &l1, sizeof l) && r <= 1e-5);
        CHECK(d->recomputed_blocks == want && exact);
        CHECK(d->m.slab_bytes[MT_MEM_ACTIVATIONS] < acts1);
        mt_cuda_gpt_free(d);
    }
    free(in), free(tg);
    mt_gpt_free(got), mt_gpt_free(ref), mt_gpt_free(h);
}

static void part_accum(void)
{
    struct mt_gpt *h, *ref, *got;
    struct mt_cuda_gpt *d;
    size_t T = cfg.seq_len;
    int *in, *tg;
    train_setup(&h, &d, &ref, &got, &in, &tg, 31);
    float whole = grads_of(d, ref, in, tg), part = 0.0f, sum = 0.0f;
    mt_cuda_gpt_zero_grad(d);
    for (size_t k = 0; k < B; k++) { /* one sequence a micro-batch, the global normaliser */
        CHECK_OK(mt_cuda_gpt_forward(d, in + k * T, tg + k * T, 1, T, &part, err, sizeof err), err);
        CHECK_OK(mt_cuda_gpt_backward(d, 1.0f, B * T, err, sizeof err), err);
        sum += part / (float)B;
    }
    CHECK_OK(mt_cuda_gpt_download(d, got, err, sizeof err), err);
    printf("accumulation of %d micro-batches: loss %.6f (whole batch %.6f)\n", B, sum, whole);
    for (int p = 0; p < MT_P_COUNT; p++)
        if (h->param_len[p])
            expect_close(mt_gpt_param_name((enum mt_gpt_param)p), got->grad[p], ref->grad[p],
                         h->param_len[p]);
    free(in), free(tg);
    mt_gpt_free(got), mt_gpt_free(ref), mt_gpt_free(h);
    mt_cuda_gpt_free(d);
}

static float *dev_copy(const float *h, size_t n)
{
    float *d = NULL;
    CHECK(cudaMalloc((void **)&d, n * sizeof *d) == cudaSuccess);
    if (h) CHECK(cudaMemcpy(d, h, n * sizeof *d, cudaMemcpyHostToDevice) == cudaSuccess);
    return d;
}

static void to_host(float *h, const float *d, size_t n)
{
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(cudaMemcpy(h, d, n * sizeof *h, cudaMemcpyDeviceToHost) == cudaSuccess);
}

/* The flash kernels of one shape against the CPU's, and against themselves (bit for bit). */
static void flash_kernels(size_t Bk, size_t T, size_t C, size_t Ckv, size_t NH, size_t window)
{
    size_t ld = C + 2 * Ckv, nq = Bk * T * ld, no = Bk * T * C, nl = Bk * NH * T;
    float *qkv = malloc(nq * sizeof *qkv), *dout = malloc(no * sizeof *dout);
    float *out = malloc(no * sizeof *out), *lse = malloc(nl * sizeof *lse);
    float *dqkv = malloc(nq * sizeof *dqkv), *got = malloc(nq * sizeof *got);
    float *again = malloc(nq * sizeof *again);
    CHECK(qkv && dout && out && lse && dqkv && got && again);
    struct mt_rng r;
    mt_rng_seed(&r, 5 + T);
    for (size_t i = 0; i < nq; i++) /* scores of a few units: a peaked softmax */
        qkv[i] = (float)(2.0 * (mt_rng_uniform(&r) - 0.5));
    for (size_t i = 0; i < no; i++)
        dout[i] = (float)(mt_rng_uniform(&r) - 0.5);
    mt_k_flash_attention_fwd(out, lse, qkv, Bk, T, C, Ckv, NH, window);
    mt_k_flash_attention_bwd(dqkv, dout, qkv, out, lse, Bk, T, C, Ckv, NH, window);
    int bf = prec == MT_CUDA_BF16;
    float *dq = dev_copy(qkv, nq), *dd = dev_copy(dout, no), *dout_ = dev_copy(NULL, no);
    float *dl = dev_copy(NULL, nl), *ddq = dev_copy(NULL, nq);
    printf("flash kernels B=%zu T=%zu C=%zu Ckv=%zu NH=%zu window=%zu (%s):\n", Bk, T, C, Ckv, NH,
           window, bf ? "bf16" : "fp32");
    for (int run = 0; run < 2; run++) {
        float *o = run ? again : got;
        (bf ? mt_cu_flash_fwd_bf16 : mt_cu_flash_fwd)(dout_, dl, dq, Bk, T, C, Ckv, NH, window);
        (bf ? mt_cu_flash_bwd_bf16 : mt_cu_flash_bwd)(ddq, dd, dq, dout_, dl, Bk, T, C, Ckv, NH,
                                                      window);
        to_host(o, ddq, nq);
        if (run) continue;
        float *ho = malloc(no * sizeof *ho), *hl = malloc(nl * sizeof *hl);
        CHECK(ho && hl);
        to_host(ho, dout_, no);
        to_host(hl, dl, nl);
        expect_close("output", ho, out, no);
        expect_close("lse", hl, lse, nl);
        expect_close("dqkv", got, dqkv, nq);
        free(ho), free(hl);
    }
    printf("  two runs bit-identical: %s\n", memcmp(got, again, nq * sizeof *got) ? "NO" : "yes");
    CHECK(!memcmp(got, again, nq * sizeof *got));
    cudaFree(dq), cudaFree(dd), cudaFree(dout_), cudaFree(dl), cudaFree(ddq);
    free(qkv), free(dout), free(out), free(lse), free(dqkv), free(got), free(again);
}

/* Slabs plus extras of d equal mt_cuda_gpt_plan (what the device interposer measures). */
static int plan_exact(const struct mt_cuda_gpt *d, size_t bytes[MT_MEM_CAT_COUNT])
{
    int exact = 1;
    CHECK(
        mt_cuda_gpt_plan(&d->m.cfg, d->m.mode, d->m.B, d->m.T, d->prec, 1, bytes, err, sizeof err));
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        exact &= d->m.slab_bytes[c] + d->extra_bytes[c] == bytes[c];
    return exact;
}

static void part_flash(void)
{
    CHECK(cfg.attention == MT_GPT_ATTN_FLASH);
    size_t hs = cfg.n_embd / cfg.n_head;
    flash_kernels(B, cfg.seq_len, cfg.n_embd, mt_gpt_kv_dim(&cfg), cfg.n_head, cfg.window);
    flash_kernels(2, 200, 256, 128, 2, 0);  /* head size 128, two query heads a key head */
    flash_kernels(1, 131, 192, 192, 3, 37); /* head size 64, a window */
    flash_kernels(1, 70, 6 * hs, 2 * hs, 6, 0);
    /* the flash model against the dense one on the device, same weights */
    struct mt_gpt_config dense = cfg;
    dense.attention = MT_GPT_ATTN_DENSE;
    struct mt_gpt *h, *hd, *back, *backd;
    struct mt_cuda_gpt *df, *dd;
    size_t T = cfg.seq_len, n = B * T * cfg.vocab, pf[MT_MEM_CAT_COUNT], pd[MT_MEM_CAT_COUNT];
    pair(&h, &df, MT_GPT_TRAIN);
    CHECK_OK(mt_gpt_create(&hd, &dense, MT_GPT_TRAIN, B, T, err, sizeof err), err);
    mt_gpt_init(hd, 7);
    CHECK(!memcmp(hd->params, h->params, h->slab_bytes[MT_MEM_WEIGHTS]));
    CHECK_OK(mt_cuda_gpt_create(&dd, &dense, MT_GPT_TRAIN, B, T, prec, err, sizeof err), err);
    CHECK_OK(mt_cuda_gpt_upload(dd, hd, err, sizeof err), err);
    CHECK_OK(mt_gpt_create(&back, &cfg, MT_GPT_TRAIN, B, T, err, sizeof err), err);
    CHECK_OK(mt_gpt_create(&backd, &dense, MT_GPT_TRAIN, B, T, err, sizeof err), err);
    int *in = malloc(B * T * sizeof *in), *tg = malloc(B * T * sizeof *tg);
    float *pfl = malloc(n * sizeof *pfl), *pde = malloc(n * sizeof *pde), lf = 0, ldn = 0;
    float *gf = malloc(h->slab_bytes[MT_MEM_GRADIENTS]), l2 = 0;
    CHECK(in && tg && pfl && pde && gf);
    tokens(in, tg, B * T, 41);
    size_t ng = h->slab_bytes[MT_MEM_GRADIENTS] / sizeof(float);
    printf("flash model against the dense model on the device:\n");
    lf = grads_of(df, back, in, tg);
    memcpy(gf, back->grads, ng * sizeof *gf);
    CHECK_OK(mt_cuda_copy_to_host(pfl, df->m.act[MT_A_LOGITS], n * sizeof *pfl, err, sizeof err),
             err);
    l2 = grads_of(df, back, in, tg); /* the loss again, bit for bit */
    ldn = grads_of(dd, backd, in, tg);
    CHECK_OK(mt_cuda_copy_to_host(pde, dd->m.act[MT_A_LOGITS], n * sizeof *pde, err, sizeof err),
             err);
    printf("  loss flash %.6f (again %.6f) dense %.6f\n", lf, l2, ldn);
    CHECK(!memcmp(&lf, &l2, sizeof lf) && fabs(lf - ldn) <= tol * fabs(ldn));
    expect_close("probabilities", pfl, pde, n);
    for (int p = 0; p < MT_P_COUNT; p++)
        if (h->param_len[p]) {
            size_t off = (size_t)(h->grad[p] - h->grads);
            expect_close(mt_gpt_param_name((enum mt_gpt_param)p), gf + off, backd->grads + off,
                         h->param_len[p]);
        }
    int ef = plan_exact(df, pf), ed = plan_exact(dd, pd);
    printf("  device plan: flash %s, dense %s; activations %zu B (dense %zu B), workspace %zu B "
           "(dense %zu B)\n",
           ef ? "exact" : "DIFFERS", ed ? "exact" : "DIFFERS", pf[MT_MEM_ACTIVATIONS],
           pd[MT_MEM_ACTIVATIONS], pf[MT_MEM_WORKSPACE], pd[MT_MEM_WORKSPACE]);
    CHECK(ef && ed && pf[MT_MEM_ACTIVATIONS] < pd[MT_MEM_ACTIVATIONS]);
    CHECK(pf[MT_MEM_ACT_GRADS] < pd[MT_MEM_ACT_GRADS]);
    CHECK(prec != MT_CUDA_BF16 || pf[MT_MEM_WORKSPACE] <= pd[MT_MEM_WORKSPACE]);
    free(in), free(tg), free(pfl), free(pde), free(gf);
    mt_gpt_free(back), mt_gpt_free(backd), mt_gpt_free(hd), mt_gpt_free(h);
    mt_cuda_gpt_free(df), mt_cuda_gpt_free(dd);
}

int main(int argc, char **argv)
{
    static const struct tf_part parts[] = {{"forward", part_forward},     {"decode", part_decode},
                                           {"train", part_train},         {"rows", part_rows},
                                           {"recompute", part_recompute}, {"accum", part_accum},
                                           {"flash", part_flash},         {"bits", part_bits}};
    char why[200];
    if (argc < 4) {
        fprintf(stderr, "usage: %s SPEC fp32|tf32|bf16 PART...\n", argv[0]);
        return 2;
    }
    if (!mt_cuda_available(why, sizeof why)) {
        printf("skipped: %s\n", why);
        return 77;
    }
    CHECK_OK(mt_gpt_config_parse(&cfg, argv[1], err, sizeof err), err);
    CHECK_OK(mt_cuda_precision_parse(argv[2], &prec, err, sizeof err), err);
    tol = prec == MT_CUDA_FP32 ? 1e-4f : 1e-2f;
    printf("%s, %s\n", argv[1], argv[2]);
    return tf_run_parts(parts, sizeof parts / sizeof parts[0], argc - 2, argv + 2);
}
