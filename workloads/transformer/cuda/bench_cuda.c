/* bench_cuda.c — mt-bench-cuda: the engine on the GPU (device=cuda), timed.
 *
 * What it is for: issue 22's GPU benchmarks, medians of repeated runs on one card:
 *   train SPEC B T PREC STEPS [rows|every=N]
 *                               training step (forward, backward, AdamW) at B x T; prints
 *                               the median step, tokens/s and the device memory: the
 *                               plan's slabs and extras (cgpt.h) and the rise of the
 *                               device's used memory (cudaMemGetInfo) over the run;
 *                               rows: dense attention through the row kernels
 *                               (attention_rows), not cuBLAS's batched products;
 *                               every=N: checkpointing (blocks recomputed, cgpt.h)
 *   decode SPEC PREC TOKENS [Q] batch-1 KV-cache decode, one launch per kernel and then
 *                               the step replayed as a CUDA graph (cgpt.h; models
 *                               without RoPE; then the graph without the norms folded
 *                               into the GEMVs and with nothing folded, cgpt.h),
 *                               waiting for each token: median time per
 *                               token, tokens/s; then without a wait per token: the
 *                               steps queued with one wait at the end (graph-queued)
 *                               and greedy decoding on the device (greedy-graph),
 *                               TOKENS - 1 steps timed together;
 *                               the weight bytes one token reads and the bound the copy
 *                               bandwidth (measured in the same run) puts on tokens/s;
 *                               Q packs the linear weights (cquant.h): int8 (per row),
 *                               int8-gN, int4-gN (N 32, 64, 128; linear-asym)
 *   compare SPEC B T STEPS [LR] the loss trajectories of fp32, bf16 and bf16 with the row
 *                               kernels (attention_rows) from the same weights on one
 *                               fixed batch (train's tokens), LR the peak learning rate
 *                               (default the recipe's); then bf16's gradients (cuBLAS
 *                               attention and the row kernels) against fp32's on the
 *                               same weights at every step of bf16's trajectory, at B/2,
 *                               tensor by tensor (relative L2 and max)
 *   bandwidth MIB               device-to-device copy of MIB MiB: the card's memory
 *                               bandwidth (read + write bytes / s), median of 20
 * What it is not for: correctness (tests/transformer/test_cuda.c) or the harness.
 * Weights: seeded (mt_gpt_init), made on the host and uploaded; tokens are arbitrary.
 */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "block.h"
#include "cgpt.h"
#include "qformat.h"

static char err[256];

static int fail(const char *what)
{
    fprintf(stderr, "mt-bench-cuda: %s: %s\n", what, err);
    return 1;
}

static size_t used_bytes(void)
{
    size_t free_b = 0, total = 0;
    cudaMemGetInfo(&free_b, &total);
    return total - free_b;
}

static double copy_bandwidth(size_t mib)
{
    size_t bytes = mib << 20;
    void *a = NULL, *b = NULL;
    if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) return 0.0;
    double t[20];
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    for (int i = 0; i < 20; i++) {
        cudaDeviceSynchronize();
        double t0 = mt_bench_now();
        cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
        cudaDeviceSynchronize();
        t[i] = mt_bench_now() - t0;
    }
    cudaFree(a);
    cudaFree(b);
    return 2.0 * (double)bytes / mt_bench_median(t, 20);
}

/* A device model of spec with seeded weights (linears also packed in qf, unless NULL). */
static int make(struct mt_cuda_gpt **d, const char *spec, enum mt_gpt_mode mode, size_t B, size_t T,
                const char *prec_s, const struct mt_qformat *qf, size_t every)
{
    struct mt_gpt_config cfg;
    enum mt_cuda_precision prec;
    struct mt_gpt *h;
    if (mt_gpt_config_parse(&cfg, spec, err, sizeof err) ||
        mt_cuda_precision_parse(prec_s, &prec, err, sizeof err))
        return -1;
    if (!T) T = cfg.seq_len;
    if (mt_gpt_create(&h, &cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err)) return -1;
    mt_gpt_init(h, 1337);
    int rc = mt_cuda_gpt_create_every(d, &cfg, mode, B, T, prec, every, err, sizeof err) ||
             mt_cuda_gpt_upload(*d, h, err, sizeof err) ||
             (qf && mt_cuda_gpt_quantize(*d, h, qf, err, sizeof err));
    mt_gpt_free(h);
    return rc ? -1 : 0;
}

/* The fixed batch of train and compare: arbitrary, every id of the vocabulary. */
static void bench_tokens(int *in, int *tg, size_t BT, size_t V)
{
    for (size_t i = 0; i < BT; i++)
        in[i] = (int)(i * 7919 % V), tg[i] = (int)((i * 104729 + 3) % V);
}

static void print_mem(const struct mt_cuda_gpt *d, size_t rise)
{
    size_t plan = 0, extra = 0;
    printf("  device memory by category (plan + extras):");
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
        plan += d->m.slab_bytes[c];
        extra += d->extra_bytes[c];
        if (d->m.slab_bytes[c] + d->extra_bytes[c])
            printf(" %s %.1f MiB", mt_mem_cat_names[c],
                   (double)(d->m.slab_bytes[c] + d->extra_bytes[c]) / 1048576.0);
    }
    printf("\n  plan %zu B + extras %zu B = %zu B (%.1f MiB); device used rise %zu B (%.1f MiB)\n",
           plan, extra, plan + extra, (double)(plan + extra) / 1048576.0, rise,
           (double)rise / 1048576.0);
}

static int train(const char *spec, size_t B, size_t T, const char *prec, size_t steps, int rows,
                 size_t every)
{
    struct mt_cuda_gpt *d;
    cudaFree(NULL); /* the context first: the rise below is the model's */
    size_t used0 = used_bytes();
    if (make(&d, spec, MT_GPT_TRAIN, B, T, prec, NULL, every)) return fail("model");
    d->attention_rows = rows;
    size_t BT = B * T, V = d->m.cfg.vocab;
    int *in = malloc(BT * sizeof *in), *tg = malloc(BT * sizeof *tg);
    double *t = calloc(steps, sizeof *t);
    if (!in || !tg || !t) return 1;
    bench_tokens(in, tg, BT, V);
    struct mt_gpt_recipe r = mt_gpt_recipe_default(steps + 2);
    r.batch = B, r.seq = T;
    float loss = 0, norm = 0;
    size_t peak = 0;
    for (size_t s = 0; s < steps + 2; s++) {
        double t0 = mt_bench_now();
        if (mt_cuda_gpt_train_step(d, &r, s, in, tg, &loss, &norm, err, sizeof err))
            return fail("train step");
        if (s >= 2) t[s - 2] = mt_bench_now() - t0;
        size_t u = used_bytes();
        if (u > peak) peak = u;
    }
    double med = mt_bench_median(t, steps);
    printf("mt-bench-cuda train %s B=%zu T=%zu %s%s every %zu params=%zu: step %.2f ms (median of "
           "%zu), %.0f tokens/s, last loss %.4f\n",
           spec, B, T, prec, rows ? " rows" : "", every, d->m.n_params, med * 1e3, steps,
           (double)BT / med, loss);
    print_mem(d, peak - used0);
    free(in), free(tg), free(t);
    mt_cuda_gpt_free(d);
    return 0;
}

/* ||a - b|| / ||b|| and max |a - b| / max |b| over n floats. */
static void diffs(const float *a, const float *b, size_t n, double *l2, double *mx)
{
    double e2 = 0, b2 = 0, em = 0, bm = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        e2 += e * e, b2 += (double)b[i] * b[i];
        if (e > em || isnan(e)) em = isnan(e) ? INFINITY : e;
        if (fabs(b[i]) > bm) bm = fabs(b[i]);
    }
    *l2 = sqrt(e2 / (b2 > 0 ? b2 : 1e-30)), *mx = em / bm;
}

static int fwd_bwd(struct mt_cuda_gpt *d, const int *in, const int *tg, size_t B, size_t T,
                   float *loss)
{
    if (mt_cuda_gpt_forward(d, in, tg, B, T, loss, err, sizeof err)) return -1;
    mt_cuda_gpt_zero_grad(d);
    return mt_cuda_gpt_backward(d, 1.0f, 0, err, sizeof err);
}

static int compare(const char *spec, size_t B, size_t T, size_t steps, float lr)
{
    static const char *const prec[] = {"fp32", "bf16", "bf16"};
    struct mt_cuda_gpt *d, *f;
    struct mt_gpt *h, *hf;
    size_t BT = B * T;
    int *in = malloc(BT * sizeof *in), *tg = malloc(BT * sizeof *tg);
    if (!in || !tg) return 1;
    struct mt_gpt_recipe r = mt_gpt_recipe_default(steps);
    r.batch = B, r.seq = T;
    if (lr > 0) r.lr = lr;
    for (int v = 0; v < 3; v++) {
        if (make(&d, spec, MT_GPT_TRAIN, B, T, prec[v], NULL, 1)) return fail("model");
        d->attention_rows = v == 2;
        bench_tokens(in, tg, BT, d->m.cfg.vocab);
        printf("mt-bench-cuda compare %s B=%zu T=%zu lr %g %s%s losses:", spec, B, T, (double)r.lr,
               prec[v], v == 2 ? " rows" : "");
        for (size_t s = 0; s < steps; s++) {
            float loss = 0, norm = 0;
            if (mt_cuda_gpt_train_step(d, &r, s, in, tg, &loss, &norm, err, sizeof err))
                return fail("train step");
            printf(" %.4f", loss);
        }
        printf("\n");
        fflush(stdout);
        mt_cuda_gpt_free(d);
    }
    /* bf16's gradients (cuBLAS attention, and the row kernels) against fp32's on the same
     * weights along bf16's trajectory, at half the batch (three models on one card) */
    struct mt_cuda_gpt *dr;
    struct mt_gpt *hr;
    size_t B2 = B > 1 ? B / 2 : 1;
    if (make(&d, spec, MT_GPT_TRAIN, B2, T, "bf16", NULL, 1) ||
        make(&dr, spec, MT_GPT_TRAIN, B2, T, "bf16", NULL, 1) ||
        make(&f, spec, MT_GPT_TRAIN, B2, T, "fp32", NULL, 1))
        return fail("model");
    dr->attention_rows = 1;
    r.batch = B2;
    if (mt_gpt_create(&h, &d->m.cfg, MT_GPT_TRAIN, 1, 1, err, sizeof err) ||
        mt_gpt_create(&hr, &d->m.cfg, MT_GPT_TRAIN, 1, 1, err, sizeof err) ||
        mt_gpt_create(&hf, &d->m.cfg, MT_GPT_TRAIN, 1, 1, err, sizeof err))
        return fail("host model");
    printf("gradients at B=%zu, relative L2 (max) against fp32 on the same weights:\n", B2);
    for (size_t s = 0; s < steps; s++) {
        float lb = 0, lr_ = 0, lf = 0;
        if (fwd_bwd(d, in, tg, B2, T, &lb) || fwd_bwd(dr, in, tg, B2, T, &lr_) ||
            fwd_bwd(f, in, tg, B2, T, &lf) || mt_cuda_gpt_download(d, h, err, sizeof err) ||
            mt_cuda_gpt_download(dr, hr, err, sizeof err) ||
            mt_cuda_gpt_download(f, hf, err, sizeof err))
            return fail("forward/backward");
        printf("  step %zu: loss bf16 %.4f rows %.4f fp32 %.4f\n", s, lb, lr_, lf);
        for (int v = 0; v < 2; v++) {
            const struct mt_gpt *g = v ? hr : h;
            double worst = 0;
            int wp = 0, all = s == 0 || s == steps - 1 || s == steps / 2;
            printf("    %s:", v ? "bf16 rows" : "bf16");
            for (int p = 0; p < MT_P_COUNT; p++) {
                if (!g->param_len[p]) continue;
                double l2, mx;
                diffs(g->grad[p], hf->grad[p], g->param_len[p], &l2, &mx);
                if (all) printf(" %s %.2g (%.2g)", mt_gpt_param_name((enum mt_gpt_param)p), l2, mx);
                if (l2 > worst || isnan(l2)) worst = l2, wp = p;
            }
            printf("; worst %s %.3g\n", mt_gpt_param_name((enum mt_gpt_param)wp), worst);
        }
        fflush(stdout);
        float norm = 0;
        if (mt_cuda_gpt_adamw_step(d, &r, mt_gpt_lr_at(&r, s), 1.0f, &norm, err, sizeof err) ||
            mt_cuda_gpt_download(d, h, err, sizeof err) ||
            mt_cuda_gpt_upload(f, h, err, sizeof err) || mt_cuda_gpt_upload(dr, h, err, sizeof err))
            return fail("AdamW");
    }
    mt_gpt_free(h), mt_gpt_free(hr), mt_gpt_free(hf);
    mt_cuda_gpt_free(d), mt_cuda_gpt_free(dr), mt_cuda_gpt_free(f);
    free(in), free(tg);
    return 0;
}

/* Q (see the head of the file) as a packed format. Returns 0, or -1 with a message. */
static int parse_quant(const char *q, struct mt_qformat *f)
{
    memset(f, 0, sizeof *f);
    f->scheme = MT_QS_LINEAR_ASYM;
    f->gran = MT_QG_CHANNEL;
    if (!strcmp(q, "int8")) {
        f->bits = 8;
    } else if (!strncmp(q, "int8-g", 6) || !strncmp(q, "int4-g", 6)) {
        f->bits = q[3] == '8' ? 8 : 4;
        f->gran = MT_QG_GROUP;
        f->group_size = strtoul(q + 6, NULL, 10);
    } else {
        snprintf(err, sizeof err, "unknown quantization '%s' (int8, int8-gN, int4-gN)", q);
        return -1;
    }
    return mt_qformat_check(f, err, sizeof err);
}

/* Weight bytes one decoded token reads: every linear weight (the LM head included) as
 * stored (fp32, the bf16 mirror or packed), the norms and biases in fp32; the embedding
 * tables only through one row. */
static size_t token_bytes(const struct mt_cuda_gpt *d)
{
    const struct mt_gpt_config *cfg = &d->m.cfg;
    size_t lin = 0, ind, outd;
    float *w;
    for (size_t l = 0; l <= cfg->n_layer; l++)
        for (int which = 0; which < MT_LIN_COUNT; which++) {
            if ((l == cfg->n_layer) != (which == MT_LIN_LMHEAD)) continue;
            mt_gpt_linear_weights(&d->m, l, (enum mt_linear)which, &w, NULL, &ind, &outd);
            lin += ind * outd;
        }
    size_t rest = d->m.slab_bytes[MT_MEM_WEIGHTS] / sizeof(float) - lin;
    if (d->m.param[MT_P_WPE]) rest -= d->m.param_len[MT_P_WPE];
    if (cfg->untied) rest -= d->m.param_len[MT_P_WTE];
    size_t lin_bytes = d->qw ? d->qbytes : lin * (d->prec == MT_CUDA_BF16 ? 2 : sizeof(float));
    return lin_bytes + rest * sizeof(float);
}

static int decode(const char *spec, const char *prec, size_t n, const char *quant, double bw)
{
    struct mt_cuda_gpt *d;
    struct mt_cuda_kv *kv;
    struct mt_qformat qf;
    if (quant && parse_quant(quant, &qf)) return fail("quantization");
    if (make(&d, spec, MT_GPT_INFER, 1, 1, prec, quant ? &qf : NULL, 1)) return fail("model");
    const struct mt_gpt_config *cfg = &d->m.cfg;
    if (n > cfg->seq_len) n = cfg->seq_len;
    double *t = calloc(n, sizeof *t);
    if (!t) return 1;
    size_t per_tok = token_bytes(d);
    /* one launch per kernel, then the graph; the graph again without the norms folded into
     * the GEMVs, and with nothing folded (the kernels of the unfused step) */
    const int all = MT_BLOCK_FUSE_NORM | MT_BLOCK_FUSE_GELU | MT_BLOCK_FUSE_RESIDUAL;
    const int unfuse[] = {0, 0, MT_BLOCK_FUSE_NORM, all};
    for (int r = 0; r < 4; r++) {
        if (mt_cuda_kv_create(&kv, d, n, err, sizeof err)) return fail("KV cache");
        kv->graphs = r > 0;
        d->decode_unfuse = unfuse[r];
        for (size_t i = 0; i < n; i++) {
            double t0 = mt_bench_now();
            if (mt_cuda_decode_step(d, kv, (int)(i * 31 % cfg->vocab), 0, err, sizeof err))
                return fail("decode");
            t[i] = mt_bench_now() - t0;
        }
        double med = mt_bench_median(t, n);
        printf("mt-bench-cuda decode %s %s%s%s %s: %.3f ms/token (median of %zu), %.0f "
               "tokens/s; %zu weight bytes/token, bound %.0f tokens/s at %.0f GB/s (%.1f %% of "
               "it)\n",
               spec, prec, quant ? " " : "", quant ? quant : "",
               !kv->graph ? "launches"
               : r == 2   ? "graph norms-unfused"
               : r == 3   ? "graph unfused"
                          : "graph",
               med * 1e3, n, 1.0 / med, per_tok, bw / (double)per_tok, bw / 1e9,
               100.0 * (1.0 / med) / (bw / (double)per_tok));
        mt_cuda_kv_free(kv);
    }
    d->decode_unfuse = 0;
    /* no wait per token: the steps queued and one wait at the end (host tokens), then
     * greedy decoding on the device; the first step (the graph's capture) not timed */
    for (int greedy = 0; greedy < 2 && n > 1; greedy++) {
        if (mt_cuda_kv_create(&kv, d, n, err, sizeof err)) return fail("KV cache");
        int *toks = malloc(n * sizeof *toks);
        if (!toks || mt_cuda_decode_step(d, kv, 1, MT_CUDA_LOGITS_DEVICE, err, sizeof err))
            return fail("decode");
        double t0 = mt_bench_now();
        int rc = greedy ? mt_cuda_decode_greedy(d, kv, 1, n - 1, toks, err, sizeof err) : 0;
        for (size_t i = 1; i < n && !greedy && !rc; i++)
            rc = mt_cuda_decode_step(d, kv, (int)(i * 31 % cfg->vocab), MT_CUDA_LOGITS_QUEUED, err,
                                     sizeof err);
        if (rc || (!greedy && mt_cuda_decode_wait(err, sizeof err))) return fail("decode");
        double per = (mt_bench_now() - t0) / (double)(n - 1);
        printf("mt-bench-cuda decode %s %s%s%s %s: %.3f ms/token (%zu tokens, one wait), %.0f "
               "tokens/s (%.1f %% of the bound)\n",
               spec, prec, quant ? " " : "", quant ? quant : "",
               greedy ? (kv->graph ? "greedy-graph" : "greedy-launches")
                      : (kv->graph ? "graph-queued" : "launches-queued"),
               per * 1e3, n - 1, 1.0 / per, 100.0 * (1.0 / per) / (bw / (double)per_tok));
        free(toks);
        mt_cuda_kv_free(kv);
    }
    free(t);
    mt_cuda_gpt_free(d);
    return 0;
}

int main(int argc, char **argv)
{
    char why[200];
    if (!mt_cuda_available(why, sizeof why)) {
        fprintf(stderr, "mt-bench-cuda: %s\n", why);
        return 1;
    }
    if ((argc == 7 ||
         (argc == 8 && (!strcmp(argv[7], "rows") || !strncmp(argv[7], "every=", 6)))) &&
        !strcmp(argv[1], "train"))
        return train(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10), argv[5],
                     strtoul(argv[6], NULL, 10), argc == 8 && !strcmp(argv[7], "rows"),
                     argc == 8 && argv[7][0] == 'e' ? strtoul(argv[7] + 6, NULL, 10) : 1);
    if ((argc == 5 || argc == 6) && !strcmp(argv[1], "decode"))
        return decode(argv[2], argv[3], strtoul(argv[4], NULL, 10), argc == 6 ? argv[5] : NULL,
                      copy_bandwidth(1024));
    if ((argc == 6 || argc == 7) && !strcmp(argv[1], "compare"))
        return compare(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10),
                       strtoul(argv[5], NULL, 10), argc == 7 ? strtof(argv[6], NULL) : 0.0f);
    if (argc == 3 && !strcmp(argv[1], "bandwidth")) {
        double bw = copy_bandwidth(strtoul(argv[2], NULL, 10));
        printf("mt-bench-cuda bandwidth: device-to-device copy %.1f GB/s (read + write)\n",
               bw / 1e9);
        return bw > 0 ? 0 : 1;
    }
    fprintf(stderr,
            "usage: mt-bench-cuda train SPEC B T fp32|tf32|bf16 STEPS [rows|every=N]\n"
            "       mt-bench-cuda decode SPEC fp32|tf32|bf16 TOKENS [int8|int8-gN|int4-gN]\n"
            "       mt-bench-cuda compare SPEC B T STEPS [LR]\n"
            "       mt-bench-cuda bandwidth MIB\n");
    return 2;
}
