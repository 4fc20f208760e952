/* bench_quant.c — mt-bench-quant: batch-1 decode GEMV speed of packed weight formats
 * against the memory-bandwidth bound.
 *
 * What it is for: measuring what the packed formats buy at decode time on the GPT-2 124M
 * shapes. One "token" runs the 49 matrix-vector products of a decode step (12 layers x
 * {qkv 768->2304, attn proj 768->768, fc 768->3072, fc proj 3072->768} + the 50257x768
 * LM head), each layer with its own weights, so the working set is the whole model (as
 * in real decoding) and not one matrix that sits in L3. Every format is packed up front;
 * then, for each repetition and each thread count (--threads 1,2), a STREAM-like read of
 * 256 MiB measures the bandwidth of that moment and every format runs one token. Per
 * format it prints the per-shape medians, tokens/s, the bytes a token reads, the bound
 * (stream read / bytes per token) and the share of the bound reached: the median over
 * reps of each rep's bytes/s against the stream read just before it (the load of other
 * tenants moves both together), and the best rep against the best read. Also compares
 * the VNNI kernel with oneDNN's u8s8s32 GEMM over M for 8-bit weights (the crossover
 * mt_qgemm uses). What it is not for: accuracy (tests, the quantize plugin) or a test
 * (nothing here fails on speed).
 *
 * With --decode N (built when the reference model is present) it also runs the full
 * batch-1 KV-cache decode of a randomly initialized GPT-2 124M (vocab 50257, tied LM head
 * packed too) for N tokens per format, every format's model alive at once so reps, thread
 * counts and formats interleave the same way: tokens/s, the speedup over fp32, and the
 * share of the bound of the whole step (weights it reads + the KV cache).
 *
 * A summary closes the GEMV part: per format and thread count, tokens/s, the bound, the
 * share (median and best) and whether the 80 % target is met; the load averages are printed
 * at the start and after each part. --clock thread times in CPU time (bandwidth read
 * included: the thread's on one thread, the process's per thread on several, with
 * OMP_WAIT_POLICY=passive), for A/B runs on a loaded machine.
 *
 * Usage: mt-bench-quant [--reps N] [--layers L] [--threads 1,2] [--decode N]
 *        [--decode-reps N] [--clock wall|thread] [--gptq]
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

/* One decode token (all GEMVs) once: per shape the mean seconds of one GEMV into
 * per_shape[SH_COUNT]; returns the token's seconds, and the weight bytes it read in *bytes. */
static double time_token(const struct model *md, const struct config *c, struct mt_qws *ws,
                         const float *x, float *y, double *per_shape, double *bytes,
                         double (*now)(void))
{
    char err[256];
    double tok = 0.0;
    *bytes = 0.0;
    for (int s = 0; s < SH_COUNT; s++) {
        double t_sh = 0.0;
        for (size_t l = 0; l < count_of(md, s); l++) {
            size_t n = shape_n[s], k = shape_k[s];
            double t0 = now();
            if (c->fp32 == 1)
                gemv_f32(md->w[s][l], x, y, n, k);
            else if (c->fp32 == 2)
                dnnl_sgemm('N', 'T', 1, (dnnl_dim_t)n, (dnnl_dim_t)k, 1.0f, x, (dnnl_dim_t)k,
                           md->w[s][l], (dnnl_dim_t)k, 0.0f, y, (dnnl_dim_t)n);
            else if (mt_qgemm(ws, md->q[s][l], x, 1, y, c->act, MT_QIMPL_AUTO, err, sizeof err)) {
                fprintf(stderr, "%s: %s\n", c->label, err);
                exit(1);
            }
            t_sh += now() - t0;
            *bytes += c->fp32 ? (double)(n * k * 4) : (double)mt_qtensor_bytes(md->q[s][l]);
        }
        per_shape[s] = t_sh / (double)count_of(md, s);
        tok += t_sh;
    }
    return tok;
}

/* The share of the bandwidth bound, as the benchmark reports it for R interleaved reps:
 * bw[r] is the stream read measured just before rep r and t[r] that rep's seconds per
 * token reading `bytes`. *med: the median over reps of (bytes / t[r]) / bw[r] (each rep
 * against the bandwidth of its own moment, which follows the other tenants' load);
 * *best: the fastest rep against the highest bandwidth. Sorts copies, not the inputs. */
static void bound_share(const double *t, const double *bw, size_t R, double bytes, double *med,
                        double *best)
{
    double sh[64], tmin = t[0], bwmax = bw[0];
    for (size_t r = 0; r < R; r++) {
        sh[r] = bytes / t[r] / bw[r];
        if (t[r] < tmin) tmin = t[r];
        if (bw[r] > bwmax) bwmax = bw[r];
    }
    *med = mt_bench_median(sh, R);
    *best = bytes / tmin / bwmax;
}

/* The process's CPU time divided by the current OpenMP thread count: the mean busy time of
 * a team's threads. Run with OMP_WAIT_POLICY=passive, or threads spinning at a barrier while
 * a teammate is descheduled count as busy. */
static double proc_cpu_per_thread(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ((double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec) / (double)omp_get_max_threads();
}

/* The clock of one thread count (GEMVs and the stream read alike). --clock thread: the
 * thread's CPU time on one thread, the process's CPU time per thread on several, which
 * leave out descheduling by the other tenants of a shared machine (their memory traffic
 * still counts); else the monotonic clock. */
static double (*clock_for(int threads, int thread_clock))(void)
{
    if (!thread_clock) return mt_bench_now;
    return threads == 1 ? mt_bench_thread_cpu : proc_cpu_per_thread;
}

static const char *clock_name(int threads, int thread_clock)
{
    return !thread_clock ? "wall" : threads == 1 ? "thread-cpu" : "cpu/thread";
}

/* Prints the machine's load averages (/proc/loadavg) after `what`, so that every figure
 * the benchmark prints has the load it was taken under beside it. */
static void print_load(const char *what)
{
    char line[128] = "unavailable";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(line, sizeof line, f)) snprintf(line, sizeof line, "unavailable");
        fclose(f);
    }
    line[strcspn(line, "\n")] = 0;
    printf("load average %s: %s\n", what, line);
}

/* Bytes of the stream read interleaved with the reps: several times the 32 MiB L3. */
#define BW_BYTES ((size_t)256 << 20)

/* VNNI kernel vs oneDNN u8s8s32 for 8-bit per-channel weights as M grows. */
static void int8_crossover(struct mt_qws *ws)
{
    size_t n = 3072, k = 768;
    float *w = mt_bench_gauss(n * k, 99), *x = mt_bench_gauss(512 * k, 98),
          *y = malloc(512 * n * sizeof *y);
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

/* Full decode of GPT-2 124M: fp32 (the model's own path) and each packed format, each on
 * its own freshly initialized model (packing replaces the fp32 weights), all alive at
 * once so that reps, thread counts and formats interleave, with a stream read before each
 * (rep, threads). Bytes per token: the model's stored weights less the position rows a
 * step does not read, plus the KV cache the attention reads, averaged over the pass. */
static int decode_bench(const struct config *cfgs, const size_t *rows, size_t nd, size_t ntok,
                        int reps, const int *thr, size_t nthr, int thread_clock)
{
    struct mt_gpt_config cfg;
    char err[512];
    if (mt_gpt_config_parse(&cfg, "gpt2,vocab=50257", err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (ntok > cfg.seq_len) ntok = cfg.seq_len;
    const size_t R = (size_t)reps;
    const struct config *dcases[16];
    if (nd > 16) nd = 16;
    for (size_t ci = 0; ci < nd; ci++)
        dcases[ci] = &cfgs[rows[ci]];
    struct mt_gpt *m[16] = {0};
    struct mt_gpt_kv *kv[16] = {0};
    struct mt_qmodel *qm[16] = {0};
    double bytes[16], *t = calloc(R * nthr * nd, sizeof *t), *bw = calloc(R * nthr, sizeof *bw);
    int rc = t && bw ? 0 : 1;
    for (size_t ci = 0; ci < nd && !rc; ci++) {
        rc = mt_gpt_create(&m[ci], &cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err) ||
             mt_gpt_kv_create(&kv[ci], &cfg, ntok, err, sizeof err);
        if (rc) break;
        mt_gpt_init(m[ci], 7);
        struct mt_qmodel_opts o = {.fmt = dcases[ci]->f, .act = dcases[ci]->act, .embedding = 1};
        rc = !dcases[ci]->fp32 && mt_qmodel_build(&qm[ci], m[ci], &o, err, sizeof err);
        if (rc) break;
        double w = qm[ci] ? (double)mt_qmodel_bytes(qm[ci]) : 4.0 * (double)m[ci]->n_params;
        bytes[ci] = w - 4.0 * (double)((cfg.seq_len - 1) * cfg.n_embd) +
                    4.0 * 2.0 * (double)(cfg.n_layer * cfg.n_embd) * (double)(ntok + 1) / 2.0;
    }
    for (size_t r = 0; r <= R && !rc; r++) /* r = 0 warms up */
        for (size_t ti = 0; ti < nthr && !rc; ti++) {
            omp_set_num_threads(thr[ti]);
            double (*now)(void) = clock_for(thr[ti], thread_clock);
            double b = mt_bench_stream_read_clock(BW_BYTES, 1, now);
            if (r) bw[(r - 1) * nthr + ti] = b;
            for (size_t ci = 0; ci < nd && !rc; ci++) {
                mt_gpt_kv_reset(kv[ci]);
                double t0 = now();
                for (size_t k = 0; k < ntok && !rc; k++)
                    rc = mt_gpt_decode_step(m[ci], kv[ci], (int)((k * 7919) % 50257), err,
                                            sizeof err);
                if (r) t[((r - 1) * nthr + ti) * nd + ci] = (now() - t0) / (double)ntok;
            }
        }
    if (rc) fprintf(stderr, "decode: %s\n", t && bw ? err : "out of memory");
    for (size_t ti = 0; ti < nthr && !rc; ti++) {
        double tv[64], bv[64];
        for (size_t r = 0; r < R; r++)
            bv[r] = bw[r * nthr + ti];
        printf("\nfull decode, GPT-2 124M (vocab 50257, LM head tied and packed), batch 1, %zu "
               "tokens with a KV cache, %d threads, %d interleaved reps, %s clock; stream read "
               "median %.1f GB/s\n",
               ntok, thr[ti], reps, clock_name(thr[ti], thread_clock),
               mt_bench_median(memcpy(tv, bv, R * sizeof *bv), R) / 1e9);
        printf("%-22s %10s %10s %8s %10s %7s %7s\n", "format", "MB/token", "tokens/s", "vs fp32",
               "bound_t/s", "share", "best");
        double base = 0.0;
        for (size_t ci = 0; ci < nd; ci++) {
            for (size_t r = 0; r < R; r++)
                tv[r] = t[(r * nthr + ti) * nd + ci];
            double med, best;
            bound_share(tv, bv, R, bytes[ci], &med, &best);
            double tok = mt_bench_median(tv, R), bwm = mt_bench_median(bv, R);
            if (dcases[ci]->fp32) base = tok;
            printf("%-22s %10.1f %10.1f %7.2fx %10.1f %6.0f%% %6.0f%%\n",
                   dcases[ci]->fp32 ? "fp32 (model default)" : dcases[ci]->label, bytes[ci] / 1e6,
                   1.0 / tok, base / tok, bwm / bytes[ci], 100.0 * med, 100.0 * best);
        }
        fflush(stdout);
    }
    printf("(share: median over reps of the rep's bytes/s against the stream read just before "
           "it; best: fastest rep against the highest stream read)\n");
    print_load("after the decode");
    for (size_t ci = 0; ci < nd; ci++) {
        mt_qmodel_free(qm[ci]);
        mt_gpt_kv_free(kv[ci]);
        mt_gpt_free(m[ci]);
    }
    free(t);
    free(bw);
    return rc;
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

/* Parses "1,2" into thr[] (at most 8 counts, each >= 1); returns the count, 0 if bad. */
static size_t parse_threads(const char *v, int *thr)
{
    size_t n = 0;
    for (const char *c = v; *c && n < 8;) {
        char *end;
        long t = strtol(c, &end, 10);
        if (end == c || t < 1 || t > 1024) return 0;
        thr[n++] = (int)t;
        c = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return 0;
    }
    return n;
}

int main(int argc, char **argv)
{
    int reps = 15, dreps = 5, thr[8] = {omp_get_max_threads()}, thread_clock = 0;
    size_t nthr = 1, decode_tokens = 0;
    struct model md = {.layers = 12};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc)
            md.layers = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--decode") && i + 1 < argc)
            decode_tokens = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--decode-reps") && i + 1 < argc)
            dreps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            nthr = parse_threads(argv[++i], thr);
        else if (!strcmp(argv[i], "--clock") && i + 1 < argc && !strcmp(argv[i + 1], "thread")) {
            thread_clock = 1;
            i++;
        } else if (!strcmp(argv[i], "--clock") && i + 1 < argc && !strcmp(argv[i + 1], "wall"))
            i++;
#ifdef MT_BENCH_DECODE
        else if (!strcmp(argv[i], "--gptq"))
            return bench_gptq();
#endif
        else {
            fprintf(stderr,
                    "usage: %s [--reps N] [--layers L (1..64)] [--threads 1,2] [--decode N] "
                    "[--decode-reps N] [--clock wall|thread] [--gptq]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 64 || dreps < 1 || dreps > 64 || md.layers < 1 || md.layers > 64 ||
        !nthr) {
        fprintf(stderr, "bad --reps (1..64), --decode-reps (1..64), --layers or --threads\n");
        return 2;
    }
    if (!mt_qimpl_available(MT_QIMPL_AVX512, NULL, MT_QACT_F32, NULL, 0)) {
        fprintf(stderr, "mt-bench-quant needs AVX-512 F/BW/VL/DQ\n");
        return 77;
    }
    printf("mt-bench-quant: GPT-2 124M decode GEMVs, batch 1, %zu layers + LM head, %d reps "
           "interleaved over thread counts and formats, a %zu MiB stream read before each "
           "(rep, threads)\n",
           md.layers, reps, BW_BYTES >> 20);
    print_load("at the start");
    if (thread_clock) {
        const char *wp = getenv("OMP_WAIT_POLICY");
        printf("--clock thread: OMP_WAIT_POLICY=%s%s\n", wp ? wp : "(unset)",
               wp && !strcmp(wp, "passive") ? ""
                                            : " (set it to passive for several threads, or "
                                              "barrier spinning counts as busy time)");
    }

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

    /* the full decode (--decode) runs the model's own fp32 path and the formats:
     * bf16, int8 W8A8 and W8, 4-bit W4A8 and W4, nf4, 3-bit W3A8, 2-bit W2A8 */
    static const size_t decode_rows[] = {0, 2, 4, 5, 6, 7, 9, 10, 12};
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
    enum { NCFG = sizeof cfgs / sizeof cfgs[0] };
    static struct model packed[NCFG];
    char err[256];
    for (size_t ci = 0; ci < NCFG; ci++) { /* every format packed up front: reps interleave */
        packed[ci] = md;
        if (!cfgs[ci].fp32)
            for (int s = 0; s < SH_COUNT; s++)
                for (size_t l = 0; l < count_of(&md, s); l++) {
                    packed[ci].q[s][l] = mt_qtensor_pack(md.w[s][l], shape_n[s], shape_k[s],
                                                         &cfgs[ci].f, err, sizeof err);
                    if (!packed[ci].q[s][l]) {
                        fprintf(stderr, "%s: %s\n", cfgs[ci].label, err);
                        return 1;
                    }
                }
    }
    const size_t R = (size_t)reps;
    /* [rep][threads][config][shape], the token seconds, and [rep][threads] bandwidth */
    double *sh = calloc(R * nthr * NCFG * SH_COUNT, sizeof *sh);
    double *tok = calloc(R * nthr * NCFG, sizeof *tok), *bw = calloc(R * nthr, sizeof *bw);
    double bytes[NCFG];
    if (!sh || !tok || !bw) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t r = 0; r <= R; r++) /* r = 0 warms up */
        for (size_t ti = 0; ti < nthr; ti++) {
            omp_set_num_threads(thr[ti]);
            double (*now)(void) = clock_for(thr[ti], thread_clock);
            double b = mt_bench_stream_read_clock(BW_BYTES, 1, now), per[SH_COUNT];
            if (r) bw[(r - 1) * nthr + ti] = b;
            for (size_t ci = 0; ci < NCFG; ci++) {
                double t = time_token(&packed[ci], &cfgs[ci], ws, x, y, per, &bytes[ci], now);
                if (!r) continue;
                size_t at = ((r - 1) * nthr + ti) * NCFG + ci;
                tok[at] = t;
                memcpy(sh + at * SH_COUNT, per, sizeof per);
            }
        }
    /* [threads][config]: tokens/s, bound tokens/s, share, best, for the summary */
    double *sum = calloc(nthr * NCFG * 4, sizeof *sum);
    if (!sum) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    double params = 0.0;
    for (int s = 0; s < SH_COUNT; s++)
        params += (double)(shape_n[s] * shape_k[s] * count_of(&md, s));
    for (size_t ti = 0; ti < nthr; ti++) {
        double bv[64], tv[64], base_shape[SH_COUNT] = {0}, base_tok = 0.0;
        for (size_t r = 0; r < R; r++)
            bv[r] = bw[r * nthr + ti];
        double bwm = mt_bench_median(memcpy(tv, bv, R * sizeof *bv), R);
        printf("\n%d threads, %s clock: stream read median %.1f GB/s over the %d reps\n", thr[ti],
               clock_name(thr[ti], thread_clock), bwm / 1e9, reps);
        printf("%-22s %6s", "format", "bits/w");
        for (int s = 0; s < SH_COUNT; s++)
            printf(" %15s", shape_name[s]);
        printf(" %9s %9s %8s %9s %6s %6s %7s\n", "token us", "tokens/s", "MB/tok", "bound t/s",
               "share", "best", "vs fp32");
        for (size_t ci = 0; ci < NCFG; ci++) {
            double per[SH_COUNT], t = 0.0;
            /* the token time is the sum of the per-shape medians: on a shared machine one
             * preempted GEMV spoils a whole token, so this is steadier than the median
             * token (the share uses each rep's own token against its own bandwidth) */
            for (int s = 0; s < SH_COUNT; s++) {
                for (size_t r = 0; r < R; r++)
                    tv[r] = sh[(((r * nthr + ti) * NCFG + ci)) * SH_COUNT + (size_t)s];
                per[s] = mt_bench_median(tv, R);
                t += per[s] * (double)count_of(&md, s);
            }
            if (cfgs[ci].fp32 && (base_tok == 0.0 || t < base_tok)) {
                base_tok = t;
                memcpy(base_shape, per, sizeof per);
            }
            for (size_t r = 0; r < R; r++)
                tv[r] = tok[(r * nthr + ti) * NCFG + ci];
            double med, best;
            bound_share(tv, bv, R, bytes[ci], &med, &best);
            printf("%-22s %6.3f", cfgs[ci].label, 8.0 * bytes[ci] / params);
            for (int s = 0; s < SH_COUNT; s++)
                printf(" %8.1f (%4.2fx)", 1e6 * per[s], base_shape[s] / per[s]);
            printf(" %9.1f %9.1f %8.1f %9.1f %5.0f%% %5.0f%% %6.2fx\n", 1e6 * t, 1.0 / t,
                   bytes[ci] / 1e6, bwm / bytes[ci], 100.0 * med, 100.0 * best, base_tok / t);
            double *o = sum + (ti * NCFG + ci) * 4;
            o[0] = 1.0 / t;
            o[1] = bwm / bytes[ci];
            o[2] = med;
            o[3] = best;
        }
        fflush(stdout);
    }
    printf("(per shape: median us of one GEMV and speedup vs the faster fp32 in this run; "
           "tokens/s counts the GEMVs of a decode step only; bound: stream read / bytes per "
           "token; share: median over reps of the rep's bytes/s against the stream read just "
           "before it; best: fastest rep against the highest stream read)\n");
    printf("\nsummary: batch-1 decode GEMVs, tokens/s against the bandwidth bound (stream read / "
           "weight bytes per token, both of this run); target: share >= 80 %%\n");
    printf("%-22s %7s %10s %9s %10s %6s %6s %7s\n", "format", "threads", "clock", "tokens/s",
           "bound t/s", "share", "best", "target");
    for (size_t ci = 0; ci < NCFG; ci++)
        for (size_t ti = 0; ti < nthr; ti++) {
            const double *o = sum + (ti * NCFG + ci) * 4;
            printf("%-22s %7d %10s %9.1f %10.1f %5.0f%% %5.0f%% %7s\n", cfgs[ci].label, thr[ti],
                   clock_name(thr[ti], thread_clock), o[0], o[1], 100.0 * o[2], 100.0 * o[3],
                   o[2] >= 0.8 ? "met" : "not met");
        }
    print_load("after the GEMVs");
    free(sum);
    for (size_t ci = 0; ci < NCFG; ci++)
        if (!cfgs[ci].fp32)
            for (int s = 0; s < SH_COUNT; s++)
                for (size_t l = 0; l < count_of(&md, s); l++)
                    mt_qtensor_free(packed[ci].q[s][l]);
    free(sh);
    free(tok);
    free(bw);
    omp_set_num_threads(thr[nthr - 1]);
    int8_crossover(ws);
    mt_qws_destroy(ws);
    for (int s = 0; s < SH_COUNT; s++)
        for (size_t l = 0; l < count_of(&md, s); l++)
            free(md.w[s][l]);
    free(x);
    free(y);
#ifdef MT_BENCH_DECODE
    if (decode_tokens)
        return decode_bench(cfgs, decode_rows, sizeof decode_rows / sizeof decode_rows[0],
                            decode_tokens, dreps, thr, nthr, thread_clock);
#else
    if (decode_tokens) fprintf(stderr, "--decode: built without the reference model\n");
#endif
    return 0;
}
