/* bench_util.h — timing helpers shared by the benchmark programs (mt-bench-model,
 * mt-bench-quant, mt-bench-sparse).
 *
 * What it is for: a monotonic clock and the median of repeated timings, the statistic
 * every memtrade benchmark reports. What it is not for: the library or the plugins (the
 * workloads time through mt_wl_now in workloads/common).
 */
#ifndef MT_TRANSFORMER_BENCH_UTIL_H
#define MT_TRANSFORMER_BENCH_UTIL_H

#include <stddef.h>
#include <stdlib.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC. */
static inline double mt_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int mt_bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (n > 0); sorts v in place. */
static inline double mt_bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, mt_bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
