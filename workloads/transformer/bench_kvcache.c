/* bench_kvcache.c — mt-bench-kvcache: batch-1 decode at long context by KV-cache format,
 * against the memory-bandwidth bound, and the serving simulation's figures.
 *
 * What it is for: the decode benchmark of issue 17. A randomly initialised model (default
 * "long": width 256, 6 layers, 8 heads, T 4096; random weights: the speed of a step
 * does not depend on what was learnt) gets one cache per format (fp32, bf16, int8, int4, int3,
 * int2 by default), each filled to `context` positions with seeded random keys and
 * values (mt_kvc_append, no prefill compute); then, interleaved over repetitions, thread
 * counts and formats, `steps` decode steps are timed from position context - steps (the
 * position is rewound each repetition, so every step attends over context - steps ..
 * context - 1 earlier tokens). Per thread count it prints the median tokens/s, the
 * ratio to fp32 in the same run, the bytes a step reads (the weights it touches plus the
 * cache at that context, per format), the bound = stream-read bandwidth / bytes per
 * token (bandwidth measured in the same run, same threads, over an array much larger
 * than the caches) and the share of the bound reached. It also times the attention
 * alone (mt_kvc_attend over every layer on the row's threads, as decode.c runs it: heads
 * in parallel) to give its share of a step and its own share of the bandwidth bound
 * (cache bytes read / time against the stream bandwidth), in wall time and in the
 * calling thread's CPU time (what a loaded machine does not inflate), and, one thread,
 * the attention of one layer over the last 384 positions repeated with its data in the
 * caches (hot_ns per position; cmp_x = those bytes at stream speed / that time: below 1
 * the kernels compute slower than memory delivers, whatever the prefetching). Each thread
 * count ends with `summary` lines: per format the step's us per token, its bound (the
 * step's bytes at stream speed), the share and the speed against fp32, then the same for
 * the attention alone (thread CPU time at one thread, wall time at more).
 * Then the sliding-window cache (--window W, default 512; 0 skips it): the bytes a
 * contiguous cache and a paged sequence hold at `context` with and without the window,
 * by the plan (mt_kvc_contiguous_bytes) and as allocated (Mistral's anchor: a window of
 * 4096 keeps 8x less at 32k context; W = context / 8 here).
 * Finally the seeded serving simulation (mt_kvc_simulate, the kv_cache plugin's request
 * distribution: prompt and output uniform in [16, seq_len / 2]) per format: waste of a
 * paged and a contiguous cache, the concurrency gain.
 * What it is not for: a test (nothing here can fail on speed), accuracy (the kv_cache
 * plugin and tests/transformer), or prefill.
 *
 * Usage: mt-bench-kvcache [--model SPEC] [--context N] [--steps N] [--reps N]
 *        [--threads 1,2] [--formats fp32,bf16,int8,int4,int3,int2] [--stream-mib N]
 *        [--budget BYTES] [--requests N] [--window N]
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "gpt.h"
#include "kvcache.h"
#include "rng.h"

#define MAX_FMT MT_KVC_FORMAT_COUNT
#define MAX_THR 8

struct opts {
    const char *model;
    size_t context, steps, reps, stream_mib, budget, requests, window;
    int threads[MAX_THR];
    size_t n_thr;
    enum mt_kvc_format fmt[MAX_FMT];
    size_t n_fmt;
};

/* Bytes one decode step at context n reads: the weights it touches (every parameter but
 * the unused rows of the position table) and the cache's n tokens (packed ones at the
 * format's bytes per token, KIVI's fp32 ones at 4 bytes per element). */
static double step_bytes(const struct mt_gpt *m, const struct mt_kvc *c, size_t n)
{
    const struct mt_gpt_config *cfg = &m->cfg;
    double w = 4.0 * (double)(m->n_params - (cfg->seq_len - 1) * cfg->n_embd);
    size_t stored = mt_kvc_stored_tokens(&c->spec, n);
    double per = (double)c->sz.unit_bytes / (double)c->sz.unit_tokens;
    return w + per * (double)stored + 4.0 * 2.0 * (double)(cfg->n_layer * c->kvd * (n - stored));
}

/* Fills positions 0..n-1 of every layer of c with seeded normal(0, 1) keys and values. */
static int fill(struct mt_kvc *c, size_t n, uint64_t seed)
{
    struct mt_rng rng;
    float *kv = malloc(2 * c->kvd * sizeof *kv);
    if (!kv || mt_kvc_reserve(c, 0, n)) {
        free(kv);
        return -1;
    }
    mt_rng_seed(&rng, seed);
    for (size_t t = 0; t < n; t++)
        for (size_t l = 0; l < c->cfg.n_layer; l++) {
            for (size_t i = 0; i < 2 * c->kvd; i++)
                kv[i] = (float)mt_rng_normal(&rng);
            mt_kvc_append(c, 0, l, t, kv, kv + c->kvd);
        }
    free(kv);
    return 0;
}

/* CPU seconds the calling thread has run. */
static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds of one mt_kvc_attend over every layer at context n, in turn, as decode.c runs
 * them (the heads on the current OpenMP threads); o holds C floats of output. *cpu = the
 * calling thread's CPU seconds over the same span: on a loaded machine the time it ran,
 * without the time it waited for a core (with one thread, the attention's own time). */
static double attend_all(const struct mt_kvc *c, size_t n, float *o, const float *q, double *cpu)
{
    double t0 = mt_bench_now(), c0 = thread_cpu();
    for (size_t l = 0; l < c->cfg.n_layer; l++)
        mt_kvc_attend(c, 0, l, 0, n, q, o);
    *cpu = thread_cpu() - c0;
    return mt_bench_now() - t0;
}

/* Positions of the "hot" attention: few enough that one layer's slice of any format
 * (fp32: 1.5 MiB... int2: 0.1 MiB) stays in the L2 cache across repeats. */
#define HOT_POS 384
#define HOT_REPS 64

/* The attention's speed with its data in the caches, one thread: layer 0 over the last
 * HOT_POS positions before n, HOT_REPS times in a row; returns the median over 5 batches
 * of the thread's CPU seconds per position, and *bytes the cache bytes those positions
 * hold in that layer (packed ones at the format's bytes per token, KIVI's fp32 ring at 4
 * bytes per element). Against the stream bandwidth it says whether the kernels could
 * keep up with memory at all (cmp_x below 1: compute-bound even when nothing misses). */
static double attend_hot(const struct mt_kvc *c, size_t n, float *o, const float *q, double *bytes)
{
    size_t lo = n - HOT_POS, stored = mt_kvc_stored_tokens(&c->spec, n);
    double per = (double)c->sz.unit_bytes / (double)c->sz.unit_tokens / (double)c->cfg.n_layer;
    double b[5];
    *bytes = per * (double)(stored > lo ? stored - lo : 0) +
             8.0 * (double)c->kvd * (double)(n - (stored > lo ? stored : lo));
    mt_kvc_attend(c, 0, 0, lo, n, q, o); /* in the caches */
    for (int k = 0; k < 5; k++) {
        double c0 = thread_cpu();
        for (int r = 0; r < HOT_REPS; r++)
            mt_kvc_attend(c, 0, 0, lo, n, q, o);
        b[k] = (thread_cpu() - c0) / HOT_REPS;
    }
    return mt_bench_median(b, 5);
}

/* Bytes of a paged sequence (blocks of 16) of cfg at context n, through the allocator. */
static size_t paged_held(const struct mt_gpt_config *cfg, enum mt_kvc_format f, size_t n)
{
    struct mt_kvc_spec s = mt_kvc_spec_default();
    struct mt_kvc *c = NULL;
    char err[256];
    s.format = f, s.block = mt_kvc_format_kivi(f) ? 32 : 16;
    if (mt_kvc_create(&c, cfg, &s, n, 1, 0, err, sizeof err)) return 0;
    double used;
    size_t held = 0;
    for (size_t t = 1; t <= n; t++) /* grown token by token: a window gives blocks back */
        mt_kvc_reserve(c, 0, t);
    mt_kvc_usage(c, 0, &used, &held);
    mt_kvc_free(c);
    return held;
}

/* The sliding-window cache against the full one at context n (see the top). */
static void window_bytes(const struct opts *o, const struct mt_gpt_config *cfg, size_t n)
{
    struct mt_gpt_config w = *cfg;
    w.window = o->window;
    printf("\nsliding window %zu at context %zu (contiguous: plan and allocation; paged: "
           "blocks held at the end)\n",
           o->window, n);
    printf("%-6s %12s %12s %8s %12s %8s %12s %12s %8s\n", "format", "full_B", "window_B", "plan",
           "allocated_B", "ratio", "paged_full_B", "paged_win_B", "ratio");
    for (size_t f = 0; f < o->n_fmt; f++) {
        struct mt_kvc_spec s = mt_kvc_spec_default();
        struct mt_kvc *c = NULL;
        char err[256];
        s.format = o->fmt[f];
        size_t full = mt_kvc_contiguous_bytes(cfg, &s, n), win = mt_kvc_contiguous_bytes(&w, &s, n);
        if (mt_kvc_create(&c, &w, &s, n, 1, 0, err, sizeof err)) {
            printf("%-6s unavailable: %s\n", mt_kvc_format_name(s.format), err);
            continue;
        }
        size_t pf = paged_held(cfg, s.format, n), pw = paged_held(&w, s.format, n);
        printf("%-6s %12zu %12zu %7.2fx %12zu %7.2fx %12zu %12zu %7.2fx\n",
               mt_kvc_format_name(s.format), full, win, (double)full / (double)win, c->bytes,
               (double)full / (double)c->bytes, pf, pw, pw ? (double)pf / (double)pw : 0.0);
        mt_kvc_free(c);
    }
}

static void simulate(const struct opts *o, const struct mt_gpt_config *cfg)
{
    size_t half = cfg->seq_len / 2 > 16 ? cfg->seq_len / 2 : 16;
    struct mt_kvc_sim sim = {o->requests, 16, half, 16, half, 1337, o->budget};
    printf("\nserving simulation: %zu requests, prompt and output uniform [16, %zu], budget "
           "%.0f MiB, seed 1337 (paged blocks: mt_kvc_paged_block)\n",
           o->requests, half, (double)o->budget / 1048576.0);
    printf("%-6s %10s %10s %12s %12s %9s %6s\n", "format", "waste_ctg", "waste_pgd", "running_ctg",
           "running_pgd", "gain", "preempt");
    for (size_t f = 0; f < o->n_fmt; f++) {
        struct mt_kvc_spec s = mt_kvc_spec_default();
        struct mt_kvc_sim_result rc, rp;
        char err[256];
        s.format = o->fmt[f];
        if (mt_kvc_simulate(cfg, &s, &sim, &rc, &rp, err, sizeof err)) {
            printf("%-6s unavailable: %s\n", mt_kvc_format_name(s.format), err);
            continue;
        }
        printf("%-6s %9.2f%% %9.2f%% %12.1f %12.1f %8.2fx %6zu\n", mt_kvc_format_name(s.format),
               100 * rc.waste_ratio, 100 * rp.waste_ratio, rc.mean_running, rp.mean_running,
               rp.mean_running / rc.mean_running, rp.preemptions);
    }
}

static int bench(const struct opts *o)
{
    char err[512];
    struct mt_gpt_config cfg;
    struct mt_gpt *m = NULL;
    if (mt_gpt_config_parse(&cfg, o->model, err, sizeof err) ||
        mt_gpt_create(&m, &cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err)) {
        fprintf(stderr, "mt-bench-kvcache: %s\n", err);
        return -1;
    }
    mt_gpt_init(m, 1337);
    size_t n = o->context ? o->context : cfg.seq_len, K = o->steps, R = o->reps;
    if (n > cfg.seq_len || K >= n) {
        fprintf(stderr, "mt-bench-kvcache: context %zu outside %zu..%zu\n", n, K + 1, cfg.seq_len);
        mt_gpt_free(m);
        return -1;
    }
    size_t F = o->n_fmt, NT = o->n_thr, start = n - K;
    struct mt_gpt_kv *kv[MAX_FMT] = {0};
    /* per (threads, format, rep): a decode step, the attention alone (wall, thread CPU) */
    double *t = calloc(3 * NT * F * R, sizeof *t), *a1 = t + NT * F * R, *a2 = a1 + NT * F * R;
    double bytes[MAX_FMT];
    float *q = malloc(cfg.n_embd * sizeof *q);
    float *buf = malloc(cfg.n_embd * sizeof *buf);
    int rc = t && q && buf ? 0 : -1;
    for (size_t i = 0; q && i < cfg.n_embd; i++)
        q[i] = (float)((i * 37) % 11) * 0.1f - 0.5f;
    for (size_t f = 0; f < F && !rc; f++) {
        struct mt_kvc_spec s = mt_kvc_spec_default();
        s.format = o->fmt[f];
        rc = mt_gpt_kv_create_spec(&kv[f], &cfg, n, &s, err, sizeof err) ||
             fill(kv[f]->cache, start, 42 + f);
        if (!rc) bytes[f] = step_bytes(m, kv[f]->cache, n - K / 2);
    }
    if (rc) {
        fprintf(stderr, "mt-bench-kvcache: cache: %s\n", t && q && buf ? err : "out of memory");
        goto out;
    }
    printf("model %s: vocab %zu, T %zu, %zu layers, %zu heads, width %zu, %zu params (random "
           "init, seed 1337); context %zu, %zu steps x %zu interleaved reps per (threads, "
           "format)\n",
           o->model, cfg.vocab, cfg.seq_len, cfg.n_layer, cfg.n_head, cfg.n_embd, m->n_params, n, K,
           R);
    for (size_t r = 0; r <= R && !rc; r++) /* r = 0 warms up */
        for (size_t ti = 0; ti < NT && !rc; ti++) {
            omp_set_num_threads(o->threads[ti]);
            for (size_t f = 0; f < F && !rc; f++) {
                kv[f]->pos = start;
                double t0 = mt_bench_now();
                for (size_t k = 0; k < K && !rc; k++)
                    rc = mt_gpt_decode_step(m, kv[f], (int)(k % cfg.vocab), err, sizeof err);
                double step = (mt_bench_now() - t0) / (double)K;
                double cpu, att = attend_all(kv[f]->cache, n - K / 2, buf, q, &cpu);
                if (!r) continue;
                size_t at = (ti * F + f) * R + r - 1;
                t[at] = step, a1[at] = att, a2[at] = cpu;
            }
        }
    if (rc) {
        fprintf(stderr, "mt-bench-kvcache: decode: %s\n", err);
        goto out;
    }
    double hot[MAX_FMT], hot_bytes[MAX_FMT];
    omp_set_num_threads(1);
    for (size_t f = 0; f < F; f++)
        hot[f] = n > HOT_POS ? attend_hot(kv[f]->cache, n - K / 2, buf, q, &hot_bytes[f]) : 0.0;
    for (size_t ti = 0; ti < NT; ti++) {
        int th = o->threads[ti];
        omp_set_num_threads(th);
        double bw = mt_bench_stream_read(o->stream_mib << 20, 5);
        printf("\nthreads %d: stream read %.1f GB/s (sum over %zu MiB, best of 5)\n", th, bw / 1e9,
               o->stream_mib);
        printf("%-6s %9s %7s %8s %8s %9s %6s %6s %8s %7s %8s %7s %8s %7s %6s\n", "format",
               "tokens/s", "vs_fp32", "MB/token", "cache_MB", "bound_t/s", "step%", "attn%",
               "attn_ms", "attn_bw%", "attn_bnd", "cpu_ms", "cpu_bw%", "hot_ns", "cmp_x");
        double fp32 = 0.0, sum_us[MAX_FMT], sum_bound[MAX_FMT], sum_att[MAX_FMT],
               sum_abound[MAX_FMT];
        for (size_t f = 0; f < F; f++) {
            size_t at = (ti * F + f) * R;
            double step = mt_bench_median(t + at, R), tps = 1.0 / step;
            if (o->fmt[f] == MT_KVC_FP32) fp32 = tps;
            double att = mt_bench_median(a1 + at, R), cpu = mt_bench_median(a2 + at, R);
            /* the summary: the attention by thread CPU time with one thread (its own time),
             * by wall time with more */
            sum_us[f] = 1e6 * step, sum_bound[f] = 1e6 * bytes[f] / bw;
            sum_att[f] = 1e6 * (th == 1 ? cpu : att);
            double cache_mb = (bytes[f] - step_bytes(m, kv[f]->cache, 0)) / 1e6;
            double bound_ms = 1e3 * cache_mb * 1e6 / bw; /* the cache's bytes at stream speed */
            sum_abound[f] = 1e3 * bound_ms;
            char ratio[32] = "n/a";
            if (fp32 > 0.0) snprintf(ratio, sizeof ratio, "%.2fx", tps / fp32);
            /* one thread: the attention's own time, and its speed with the data in the caches */
            char cpu_ms[32] = "-", cpu_bw[32] = "-", hot_ns[32] = "-", cmp_x[32] = "-";
            if (th == 1) {
                snprintf(cpu_ms, sizeof cpu_ms, "%.3f", 1e3 * cpu);
                snprintf(cpu_bw, sizeof cpu_bw, "%.0f%%", 100.0 * bound_ms / (1e3 * cpu));
                if (hot[f] > 0.0) {
                    snprintf(hot_ns, sizeof hot_ns, "%.1f", 1e9 * hot[f] / HOT_POS);
                    snprintf(cmp_x, sizeof cmp_x, "%.2f", hot_bytes[f] / bw / hot[f]);
                }
            }
            printf("%-6s %9.1f %7s %8.2f %8.2f %9.1f %5.0f%% %5.0f%% %8.3f %7.0f%% %8.3f %7s "
                   "%8s %7s %6s\n",
                   mt_kvc_format_name(o->fmt[f]), tps, ratio, bytes[f] / 1e6, cache_mb,
                   bw / bytes[f], 100.0 * tps * bytes[f] / bw, 100.0 * att / step, 1e3 * att,
                   100.0 * bound_ms / (1e3 * att), bound_ms, cpu_ms, cpu_bw, hot_ns, cmp_x);
        }
        /* per format, the figures the issue asks for: a step's time against its bound, the
         * attention's against its own, and both against fp32 in the same run */
        printf("summary, %d thread%s: %-6s %8s %8s %6s %7s | %9s %9s %6s %7s\n", th,
               th == 1 ? "" : "s", "format", "us/tok", "bound_us", "share", "vs_fp32", "attn_us",
               "attn_bnd", "share", "vs_fp32");
        double f_us = 0.0, f_att = 0.0;
        for (size_t f = 0; f < F; f++)
            if (o->fmt[f] == MT_KVC_FP32) f_us = sum_us[f], f_att = sum_att[f];
        for (size_t f = 0; f < F; f++) {
            char r1[16] = "n/a", r2[16] = "n/a";
            if (f_us > 0.0) snprintf(r1, sizeof r1, "%.2fx", f_us / sum_us[f]);
            if (f_att > 0.0) snprintf(r2, sizeof r2, "%.2fx", f_att / sum_att[f]);
            printf("summary, %d thread%s: %-6s %8.1f %8.1f %5.0f%% %7s | %9.1f %9.1f %5.0f%% %7s\n",
                   th, th == 1 ? "" : "s", mt_kvc_format_name(o->fmt[f]), sum_us[f], sum_bound[f],
                   100.0 * sum_bound[f] / sum_us[f], r1, sum_att[f], sum_abound[f],
                   100.0 * sum_abound[f] / sum_att[f], r2);
        }
    }
    printf("(step%%: the whole step's share of its bound, weights + cache bytes at stream "
           "speed; attn%%: the attention over every layer as a share of the step, attn_ms its "
           "median wall time, attn_bnd its bound: the cache's bytes at stream speed, attn_bw%% "
           "= attn_bnd / attn_ms, its share of that bound; cpu_ms and cpu_bw%%: the same by "
           "the calling thread's CPU time, which a loaded machine's waits for a core do not "
           "inflate, given for one thread only, where it is the attention's own time; hot_ns: "
           "the attention of one layer per position with its last %d positions in the caches "
           "(thread CPU time, median of 5 x %d), cmp_x: those positions' cache bytes at stream "
           "speed / that time, how much faster than memory the kernels compute: below 1 they "
           "cannot reach the bound)\n",
           HOT_POS, HOT_REPS);
    if (o->window && o->window < n) window_bytes(o, &cfg, n);
    simulate(o, &cfg);
out:
    free(q), free(buf);
    for (size_t f = 0; f < F; f++)
        mt_gpt_kv_free(kv[f]);
    free(t);
    mt_gpt_free(m);
    return rc ? -1 : 0;
}

static int parse_list(const char *s, struct opts *o, int formats)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (formats) {
            if (o->n_fmt == MAX_FMT || mt_kvc_format_parse(tok, &o->fmt[o->n_fmt++])) return -1;
        } else {
            if (o->n_thr == MAX_THR || atoi(tok) < 1) return -1;
            o->threads[o->n_thr++] = atoi(tok);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.model = "long",
                     .steps = 8,
                     .reps = 7,
                     .stream_mib = 1024,
                     .budget = (size_t)512 << 20,
                     .requests = 64,
                     .window = 512};
    const char *fmts = "fp32,bf16,int8,int4,int3,int2", *thr = "1,2";
    /* every option takes a value: a string, or a count read with atoll */
    const struct {
        const char *name;
        const char **str;
        size_t *num;
    } opt[] = {{"--model", &o.model, NULL},
               {"--context", NULL, &o.context},
               {"--steps", NULL, &o.steps},
               {"--reps", NULL, &o.reps},
               {"--threads", &thr, NULL},
               {"--formats", &fmts, NULL},
               {"--stream-mib", NULL, &o.stream_mib},
               {"--budget", NULL, &o.budget},
               {"--requests", NULL, &o.requests},
               {"--window", NULL, &o.window}};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t k = 0;
        while (k < sizeof opt / sizeof opt[0] && strcmp(a, opt[k].name))
            k++;
        if (!v || k == sizeof opt / sizeof opt[0]) goto usage;
        if (opt[k].str)
            *opt[k].str = v;
        else
            *opt[k].num = (size_t)atoll(v);
    }
    if (!o.steps || !o.reps || !o.stream_mib || parse_list(fmts, &o, 1) || parse_list(thr, &o, 0))
        goto usage;
    return bench(&o) ? 1 : 0;
usage:
    fprintf(stderr, "usage: mt-bench-kvcache [--model SPEC] [--context N] [--steps N] [--reps N] "
                    "[--threads 1,2] [--formats fp32,bf16,int8,int4,int3,int2] [--stream-mib N] "
                    "[--budget BYTES] [--requests N] [--window N]\n");
    return 2;
}
