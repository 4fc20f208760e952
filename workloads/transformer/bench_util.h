/* bench_util.h — timing helpers shared by the benchmark programs (mt-bench-model,
 * mt-bench-quant, mt-bench-sparse, mt-bench-kvcache) and prune's storage-format benchmark
 * (mt_prune_bench_format, which picks the fastest format at run time).
 *
 * What it is for: a monotonic clock, the median of repeated timings (the statistic every
 * memtrade benchmark reports), and a STREAM-like read bandwidth, the bound a memory-bound
 * decode is quoted against. What it is not for: timing a plugin's phases (the
 * workloads time through mt_wl_now in workloads/common).
 */
#ifndef MT_TRANSFORMER_BENCH_UTIL_H
#define MT_TRANSFORMER_BENCH_UTIL_H

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC. */
static inline double mt_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds of CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID): on a shared machine
 * it leaves out the time the thread was descheduled, so one-thread timings under load stay
 * near their quiet values (memory contention from other tenants still counts). Meaningless
 * for multi-threaded regions (it sees only the caller). */
static inline double mt_bench_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int mt_bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* n random values, seeded, Irwin-Hall(4) scaled to sd 0.02 (close enough to Gaussian for
 * timing: weights and activations of the benchmarks); NULL when out of memory. */
static inline float *mt_bench_gauss(size_t n, uint64_t seed)
{
    float *w = malloc(n * sizeof *w);
    if (!w) return NULL;
#pragma omp parallel
    {
        uint64_t s = seed * 0x9e3779b97f4a7c15ull + (uint64_t)omp_get_thread_num() * 7919u + 1;
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            double acc = 0.0;
            for (int j = 0; j < 4; j++) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                acc += (double)(s >> 11) * 0x1p-53;
            }
            w[i] = (float)(0.02 * (acc - 2.0) * 1.7320508);
        }
    }
    return w;
}

/* Median of v[0..n) (n > 0); sorts v in place. */
static inline double mt_bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, mt_bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* STREAM-like read bandwidth in bytes/s: the best of `reps` sums of a `bytes`-byte array
 * (rounded down to 256 bytes; make it much larger than the last-level cache), AVX-512,
 * with the current OpenMP thread count, timed by `now` (mt_bench_now, or
 * mt_bench_thread_cpu for one thread). NAN when the array cannot be allocated. */
__attribute__((target("avx512f,avx512dq"))) static inline double
mt_bench_stream_read_clock(size_t bytes, int reps, double (*now)(void))
{
    size_t n = bytes / 256 * 64;
    float *a = aligned_alloc(64, n * sizeof *a);
    if (!a) return NAN;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        a[i] = 1.0f;
    double best = 0.0;
    volatile float sink = 0.0f;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now();
        float total = 0.0f;
#pragma omp parallel for schedule(static) reduction(+ : total)
        for (size_t i = 0; i < n; i += 64) {
            __m512 s0 = _mm512_load_ps(a + i), s1 = _mm512_load_ps(a + i + 16);
            s0 = _mm512_add_ps(s0, _mm512_load_ps(a + i + 32));
            s1 = _mm512_add_ps(s1, _mm512_load_ps(a + i + 48));
            total += _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
        }
        double bw = (double)(n * sizeof *a) / (now() - t0);
        sink = total;
        if (bw > best) best = bw;
    }
    (void)sink;
    free(a);
    return best;
}

/* mt_bench_stream_read_clock on the monotonic clock. */
static inline double mt_bench_stream_read(size_t bytes, int reps)
{
    return mt_bench_stream_read_clock(bytes, reps, mt_bench_now);
}

#endif
