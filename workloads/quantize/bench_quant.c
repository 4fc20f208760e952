/* bench_quant.c — mt-bench-quant: batch-1 decode GEMV speed of packed weight formats.
 *
 * What it is for: measuring what the packed formats buy at decode time on the GPT-2 124M
 * shapes. One "token" runs the 49 matrix-vector products of a decode step (12 layers x
 * {qkv 768->2304, attn proj 768->768, fc 768->3072, fc proj 3072->768} + the 50257x768
 * LM head), each layer with its own weights, so the working set is the whole model (as
 * in real decoding) and not one matrix that sits in L3. Every format is timed in the same
 * run as fp32 (the faster of an AVX-512 fp32 GEMV and oneDNN sgemm); a STREAM-like read
 * kernel gives the machine's bandwidth, and each format's streamed weight bytes per
 * second is reported as a fraction of it. Also compares the VNNI kernel with oneDNN's
 * u8s8s32 GEMM over M for 8-bit weights (the crossover mt_qgemm uses).
 * What it is not for: accuracy (tests, the quantize plugin) or the non-GEMV part of
 * decoding (attention, layernorm; the quantize plugin reports full decode tokens/s).
 *
 * With --decode N (built when the reference model is present) it also runs the full
 * batch-1 KV-cache decode of a randomly initialized GPT-2 124M (vocab 50257, tied LM head
 * packed too) for N tokens per format: the model's own fp32 path against packed weights,
 * tokens/s and the speedup — the targets (int8 >= 1.8x, 4-bit >= 3x).
 *
 * Usage: mt-bench-quant [--reps N] [--layers L] [--decode N] [--gptq]   (threads: OMP_NUM_THREADS)
 */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

#include "bench_util.h"
#include "qformat.h"
#include "qkernels.h"
#ifdef MT_BENCH_DECODE
#include "bench_calib.h"
#include "qmodel.h"
#endif

enum { SH_QKV, SH_PROJ, SH_FC, SH_FCPROJ, SH_HEAD, SH_COUNT };
static const size_t shape_n[SH_COUNT] = {2304, 768, 3072, 768, 50257};
static const size_t shape_k[SH_COUNT] = {768, 768, 768, 3072, 768};
static const char *const shape_name[SH_COUNT] = {"qkv 768x2304", "proj 768x768", "fc 768x3072",
                                                 "fcproj 3072x768", "head 50257x768"};

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

/* fp32 GEMV y[n] = W[n x k] x, AVX-512, four accumulators; k a multiple of 64. */
AVX512 static void gemv_f32(const float *w, const float *x, float *y, size_t n, size_t k)
{
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < n; r++) {
        const float *wr = w + r * k;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < k; j += 64) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(wr + j), _mm512_loadu_ps(x + j), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(wr + j + 16), _mm512_loadu_ps(x + j + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(wr + j + 32), _mm512_loadu_ps(x + j + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(wr + j + 48), _mm512_loadu_ps(x + j + 48), a3);
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

struct config {
    const char *label;
    int fp32; /* 1: own AVX-512 GEMV, 2: oneDNN sgemm */
    struct mt_qformat f;
    enum mt_qact act;
};

/* The model: L layers of the four layer shapes plus one head, as fp32 and packed. */
struct model {
    size_t layers;
    float *w[SH_COUNT][64];
    struct mt_qtensor *q[SH_COUNT][64];
};

static size_t count_of(const struct model *md, int s)
{
    return s == SH_HEAD ? 1 : md->layers;
}

/* Times one decode token (all GEMVs) `reps` times; per shape, the median over reps of
 * the mean time of one GEMV; returns the token time (sum of the medians), the weight
 * bytes read, and in *best the token time from each shape's fastest rep (on a loaded
 * machine the best rep is the closest to the uncontended speed). */
static double time_config(const struct model *md, const struct config *c, int reps,
                          struct mt_qws *ws, const float *x, float *y, double *per_shape,
                          double *bytes, double *best)
{
    double *sh = calloc((size_t)reps * SH_COUNT, sizeof *sh);
    char err[256];
    *bytes = 0.0;
    for (int rep = -1; rep < reps; rep++) { /* rep -1 warms up */
        for (int s = 0; s < SH_COUNT; s++) {
            double t_sh = 0.0;
            for (size_t l = 0; l < count_of(md, s); l++) {
                size_t n = shape_n[s], k = shape_k[s];
                double t0 = mt_bench_now();
                if (c->fp32 == 1)
                    gemv_f32(md->w[s][l], x, y, n, k);
                else if (c->fp32 == 2)
                    dnnl_sgemm('N', 'T', 1, (dnnl_dim_t)n, (dnnl_dim_t)k, 1.0f, x, (dnnl_dim_t)k,
                               md->w[s][l], (dnnl_dim_t)k, 0.0f, y, (dnnl_dim_t)n);
                else if (mt_qgemm(ws, md->q[s][l], x, 1, y, c->act, MT_QIMPL_AUTO, err,
                                  sizeof err)) {
                    fprintf(stderr, "%s: %s\n", c->label, err);
                    exit(1);
                }
                double dt = mt_bench_now() - t0;
                t_sh += dt;
                if (rep == 0)
                    *bytes += c->fp32 ? (double)(n * k * 4) : (double)mt_qtensor_bytes(md->q[s][l]);
            }
            if (rep >= 0)
                sh[(size_t)s * (size_t)reps + (size_t)rep] = t_sh / (double)count_of(md, s);
        }
    }
    /* The token time is the sum of the per-shape medians: on a shared machine one
     * preempted GEMV spoils a whole token, so this is steadier than the median token. */
    double t = 0.0;
    *best = 0.0;
    for (int s = 0; s < SH_COUNT; s++) {
        per_shape[s] = mt_bench_median(sh + (size_t)s * (size_t)reps, (size_t)reps);
        t += per_shape[s] * (double)count_of(md, s);
        *best += sh[(size_t)s * (size_t)reps] * (double)count_of(md, s); /* sorted: min */
    }
    free(sh);
    return t;
}

/* VNNI kernel vs oneDNN u8s8s32 for 8-bit per-channel weights as M grows. */
static void int8_crossover(struct mt_qws *ws)
{
    size_t n = 3072, k = 768;
    float *w = mt_bench_gauss(n * k, 99), *x = mt_bench_gauss(512 * k, 98), *y = malloc(512 * n * sizeof *y);
    struct mt_qformat f = {MT_QS_LINEAR_SYM, 8, MT_QG_CHANNEL, 0, 0};
    char err[256];
    struct mt_qtensor *q = mt_qtensor_pack(w, n, k, &f, err, sizeof err);
    printf("\nint8 W8A8 768->3072: VNNI kernel vs oneDNN u8s8s32 (median us)\n");
    printf("%6s %12s %12s\n", "M", "vnni", "onednn");
    const size_t ms[] = {1, 4, 16, 32, 64, 128, 256, 512};
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
        double t[2];
        for (int impl = 0; impl < 2; impl++) {
            double v[9];
            for (int rep = -1; rep < 9; rep++) {
                double t0 = mt_bench_now();
                mt_qgemm(ws, q, x, ms[mi], y, MT_QACT_INT8, impl ? MT_QIMPL_DNNL : MT_QIMPL_AVX512,
                         err, sizeof err);
                if (rep >= 0) v[rep] = mt_bench_now() - t0;
            }
            t[impl] = mt_bench_median(v, 9);
        }
        printf("%6zu %12.1f %12.1f\n", ms[mi], 1e6 * t[0], 1e6 * t[1]);
    }
    mt_qtensor_free(q);
    free(w);
    free(x);
    free(y);
}

#ifdef MT_BENCH_DECODE
/* Full decode of GPT-2 124M: fp32 (the model's own path) then each packed format, each
 * on a freshly initialized model (packing replaces the fp32 weights). */
static int decode_bench(size_t ntok)
{
    struct mt_gpt_config cfg;
    char err[512];
    if (mt_gpt_config_parse(&cfg, "gpt2,vocab=50257", err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (ntok > cfg.seq_len) ntok = cfg.seq_len;
    static const struct {
        const char *label;
        int fp32;
        struct mt_qformat f;
        enum mt_qact act;
    } cases[] = {
        {"fp32 (model default)", 1, {0}, MT_QACT_F32},
        {"bf16", 0, {MT_QS_BF16, 16, MT_QG_TENSOR, 0, 0}, MT_QACT_F32},
        {"int8 sym/channel W8A8", 0, {MT_QS_LINEAR_SYM, 8, MT_QG_CHANNEL, 0, 0}, MT_QACT_INT8},
        {"int8 sym/channel W8", 0, {MT_QS_LINEAR_SYM, 8, MT_QG_CHANNEL, 0, 0}, MT_QACT_F32},
        {"4b sym/g128 W4A8", 0, {MT_QS_LINEAR_SYM, 4, MT_QG_GROUP, 128, 0}, MT_QACT_INT8},
        {"4b asym/g128 W4", 0, {MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 128, 0}, MT_QACT_F32},
        {"nf4/g128 W4", 0, {MT_QS_NF, 4, MT_QG_GROUP, 128, 0}, MT_QACT_F32},
        {"3b asym/g128 W3A8", 0, {MT_QS_LINEAR_ASYM, 3, MT_QG_GROUP, 128, 0}, MT_QACT_INT8},
        {"2b asym/g128 W2A8", 0, {MT_QS_LINEAR_ASYM, 2, MT_QG_GROUP, 128, 0}, MT_QACT_INT8},
    };
    printf("\nfull decode, GPT-2 124M (vocab 50257, LM head tied and packed), batch 1, %zu "
           "tokens with a KV cache, best of 3 passes\n",
           ntok);
    printf("%-22s %12s %10s %8s\n", "format", "weights MB", "tokens/s", "vs fp32");
    double base = 0.0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        struct mt_gpt *m;
        struct mt_gpt_kv *kv;
        struct mt_qmodel *qm = NULL;
        if (mt_gpt_create(&m, &cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err) ||
            mt_gpt_kv_create(&kv, &cfg, ntok, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        mt_gpt_init(m, 7);
        struct mt_qmodel_opts o = {.fmt = cases[ci].f, .act = cases[ci].act, .embedding = 1};
        if (!cases[ci].fp32 && mt_qmodel_build(&qm, m, &o, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", cases[ci].label, err);
            return 1;
        }
        double best = 0.0;
        for (int pass = 0; pass < 3; pass++) {
            mt_gpt_kv_reset(kv);
            double t0 = mt_bench_now();
            for (size_t t = 0; t < ntok; t++)
                if (mt_gpt_decode_step(m, kv, (int)((t * 7919) % 50257), err, sizeof err)) {
                    fprintf(stderr, "%s: %s\n", cases[ci].label, err);
                    return 1;
                }
            double tps = (double)ntok / (mt_bench_now() - t0);
            if (tps > best) best = tps;
        }
        if (cases[ci].fp32) base = best;
        double mb = qm ? (double)mt_qmodel_bytes(qm) / 1e6 : 4.0 * (double)m->n_params / 1e6;
        printf("%-22s %12.1f %10.1f %7.2fx\n", cases[ci].label, mb, best, best / base);
        fflush(stdout);
        mt_qmodel_free(qm);
        mt_gpt_kv_free(kv);
        mt_gpt_free(m);
    }
    return 0;
}

/* --gptq: GPTQ on one GPT-2 124M block (its four linears, random weights, 2048 random
 * correlated calibration tokens: bench_calib.h), 4-bit linear-asym groups of 128: time
 * per layer and the shares of the Hessian (X^T X), the factorization (LAPACK) and the
 * rounding with its error updates. */
static int bench_gptq(void)
{
    const size_t rows = 2048;
    struct mt_qformat f = {MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 128, 1};
    double tot[3] = {0};
    char err[256];
    printf("GPTQ, GPT-2 124M block, %zu calibration tokens, 4-bit group 128, %d threads\n", rows,
           omp_get_max_threads());
    for (int l = 0; l < MT_BENCH_CALIB_LAYERS; l++) {
        struct mt_bench_calib_layer c;
        if (mt_bench_calib_layer(l, rows, &c)) return 1;
        double t0 = mt_bench_now(), upd = 0.0;
        struct mt_qtensor *q =
            mt_qtensor_pack_gptq(c.w, c.n, c.k, &f, c.u, NULL, NULL, &upd, err, sizeof err);
        double t1 = mt_bench_now();
        if (!q) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        mt_bench_calib_line(&c, t1 - t0, "updates", tot);
        mt_qtensor_free(q);
        mt_bench_calib_free(&c);
    }
    mt_bench_calib_total(tot, "updates");
    return 0;
}
#endif

int main(int argc, char **argv)
{
    int reps = 15;
    size_t decode_tokens = 0;
    struct model md = {.layers = 12};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc)
            md.layers = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--decode") && i + 1 < argc)
            decode_tokens = (size_t)atoi(argv[++i]);
#ifdef MT_BENCH_DECODE
        else if (!strcmp(argv[i], "--gptq"))
            return bench_gptq();
#endif
        else {
            fprintf(stderr, "usage: %s [--reps N] [--layers L (1..64)] [--decode N] [--gptq]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1 || md.layers < 1 || md.layers > 64) {
        fprintf(stderr, "bad --reps or --layers\n");
        return 2;
    }
    if (!mt_qimpl_available(MT_QIMPL_AVX512, NULL, MT_QACT_F32, NULL, 0)) {
        fprintf(stderr, "mt-bench-quant needs AVX-512 F/BW/VL/DQ\n");
        return 77;
    }
    printf("mt-bench-quant: GPT-2 124M decode GEMVs, batch 1, %zu layers + LM head, %d "
           "threads, %d reps\n",
           md.layers, omp_get_max_threads(), reps);
    double bw = mt_bench_stream_read((size_t)1 << 30, 5); /* all threads */
    printf("memory read bandwidth (STREAM-like sum, 1 GiB): %.1f GB/s\n", bw / 1e9);

    for (int s = 0; s < SH_COUNT; s++)
        for (size_t l = 0; l < count_of(&md, s); l++) {
            md.w[s][l] = mt_bench_gauss(shape_n[s] * shape_k[s], (uint64_t)(s * 100 + (int)l + 1));
            if (!md.w[s][l]) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
        }
    float *x = mt_bench_gauss(3072, 5), *y = malloc(50257 * sizeof *y);
    struct mt_qws *ws = mt_qws_create();

    const struct config cfgs[] = {
        {"fp32 avx512 gemv", 1, {0}, MT_QACT_F32},
        {"fp32 onednn sgemm", 2, {0}, MT_QACT_F32},
        {"bf16", 0, {MT_QS_BF16, 16, MT_QG_TENSOR, 0, 0}, MT_QACT_F32},
        {"fp16", 0, {MT_QS_FP16, 16, MT_QG_TENSOR, 0, 0}, MT_QACT_F32},
        {"int8 sym/channel W8A8", 0, {MT_QS_LINEAR_SYM, 8, MT_QG_CHANNEL, 0, 0}, MT_QACT_INT8},
        {"int8 sym/channel W8", 0, {MT_QS_LINEAR_SYM, 8, MT_QG_CHANNEL, 0, 0}, MT_QACT_F32},
        {"4b sym/g128 W4A8", 0, {MT_QS_LINEAR_SYM, 4, MT_QG_GROUP, 128, 0}, MT_QACT_INT8},
        {"4b asym/g128 W4", 0, {MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 128, 0}, MT_QACT_F32},
        {"4b asym/g32 W4A8", 0, {MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 32, 0}, MT_QACT_INT8},
        {"nf4/g128 W4", 0, {MT_QS_NF, 4, MT_QG_GROUP, 128, 0}, MT_QACT_F32},
        {"3b asym/g128 W3A8", 0, {MT_QS_LINEAR_ASYM, 3, MT_QG_GROUP, 128, 0}, MT_QACT_INT8},
        {"3b asym/g128 W3", 0, {MT_QS_LINEAR_ASYM, 3, MT_QG_GROUP, 128, 0}, MT_QACT_F32},
        {"2b asym/g128 W2A8", 0, {MT_QS_LINEAR_ASYM, 2, MT_QG_GROUP, 128, 0}, MT_QACT_INT8},
        {"2b asym/g128 W2", 0, {MT_QS_LINEAR_ASYM, 2, MT_QG_GROUP, 128, 0}, MT_QACT_F32},
    };
    size_t ncfg = sizeof cfgs / sizeof cfgs[0];
    double per_shape[SH_COUNT], base_shape[SH_COUNT], base_tok = 0.0, base_best = 0.0, bytes;
    double best;
    printf("\n%-22s %8s", "format", "bits/w");
    for (int s = 0; s < SH_COUNT; s++)
        printf(" %15s", shape_name[s]);
    printf(" %10s %9s %8s %7s %7s %10s %8s\n", "token us", "tokens/s", "GB/s", "of bw", "vs fp32",
           "best us", "best vs");
    char err[256];
    for (size_t ci = 0; ci < ncfg; ci++) {
        const struct config *c = &cfgs[ci];
        if (!c->fp32)
            for (int s = 0; s < SH_COUNT; s++)
                for (size_t l = 0; l < count_of(&md, s); l++) {
                    md.q[s][l] =
                        mt_qtensor_pack(md.w[s][l], shape_n[s], shape_k[s], &c->f, err, sizeof err);
                    if (!md.q[s][l]) {
                        fprintf(stderr, "%s: %s\n", c->label, err);
                        return 1;
                    }
                }
        double t = time_config(&md, c, reps, ws, x, y, per_shape, &bytes, &best);
        if (c->fp32 && (base_tok == 0.0 || t < base_tok)) {
            base_tok = t;
            memcpy(base_shape, per_shape, sizeof base_shape);
        }
        if (c->fp32 && (base_best == 0.0 || best < base_best)) base_best = best;
        double params = 0.0;
        for (int s = 0; s < SH_COUNT; s++)
            params += (double)(shape_n[s] * shape_k[s] * count_of(&md, s));
        printf("%-22s %8.3f", c->label, 8.0 * bytes / params);
        for (int s = 0; s < SH_COUNT; s++)
            printf(" %8.1f (%4.2fx)", 1e6 * per_shape[s], base_shape[s] / per_shape[s]);
        printf(" %10.1f %9.1f %8.1f %6.0f%% %6.2fx %10.1f %7.2fx\n", 1e6 * t, 1.0 / t,
               bytes / t / 1e9, 100.0 * bytes / t / bw, base_tok / t, 1e6 * best, base_best / best);
        fflush(stdout);
        if (!c->fp32)
            for (int s = 0; s < SH_COUNT; s++)
                for (size_t l = 0; l < count_of(&md, s); l++)
                    mt_qtensor_free(md.q[s][l]);
    }
    printf("(per shape: median us of one GEMV and speedup vs the faster fp32 in this run; "
           "tokens/s counts the GEMVs of a decode step only; best: from each shape's "
           "fastest rep)\n");
    int8_crossover(ws);
    mt_qws_destroy(ws);
    for (int s = 0; s < SH_COUNT; s++)
        for (size_t l = 0; l < count_of(&md, s); l++)
            free(md.w[s][l]);
    free(x);
    free(y);
#ifdef MT_BENCH_DECODE
    if (decode_tokens) return decode_bench(decode_tokens);
#else
    if (decode_tokens) fprintf(stderr, "--decode: built without the reference model\n");
#endif
    return 0;
}
