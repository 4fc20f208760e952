/* prune_storage.c — the storage choice of pruned layers: names, the fastest-format rule,
 * the serving matmul of a packed matrix and its micro-benchmark (see prune_storage.h).
 * Not for packing or masks.
 */
#include "prune_storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <memtrade/memcat.h>

#include "bench_util.h"
#include "kernels.h"

static const char *const storage_names[MT_PRUNE_STORE_COUNT] = {"smallest", "fastest", "dense",
                                                                "csr",      "bitmap",  "nm"};

int mt_prune_storage_parse(const char *name)
{
    for (int s = 0; name && s < MT_PRUNE_STORE_COUNT; s++)
        if (strcmp(name, storage_names[s]) == 0) return s;
    return -1;
}

const char *mt_prune_storage_name(enum mt_prune_storage s)
{
    return (unsigned)s < MT_PRUNE_STORE_COUNT ? storage_names[s] : "?";
}

int mt_prune_storage_format(enum mt_prune_storage s)
{
    return s >= MT_PRUNE_STORE_DENSE && s < MT_PRUNE_STORE_COUNT ? (int)(s - MT_PRUNE_STORE_DENSE)
                                                                 : -1;
}

int mt_prune_pick_fastest(const double ns[MT_SPARSE_FORMAT_COUNT],
                          const size_t bytes[MT_SPARSE_FORMAT_COUNT], double noise)
{
    double best = -1.0;
    for (int f = 0; f < MT_SPARSE_FORMAT_COUNT; f++)
        if (ns[f] >= 0.0 && (best < 0.0 || ns[f] < best)) best = ns[f];
    if (best < 0.0) return -1;
    int pick = -1;
    for (int f = 0; f < MT_SPARSE_FORMAT_COUNT; f++)
        if (ns[f] >= 0.0 && ns[f] <= best * (1.0 + noise) && (pick < 0 || bytes[f] < bytes[pick]))
            pick = f;
    return pick;
}

double mt_prune_bench_budget(size_t weights)
{
    double b = 0.6 * (double)weights / 786432.0;
    return b < 0.05 ? 0.05 : b;
}

int mt_prune_storage_matmul(const struct mt_sparse *w, const float *x, size_t rows,
                            const float *bias, float *y)
{
    if (w->format == MT_SPARSE_DENSE) {
        mt_k_matmul_fwd(y, x, w->values, bias, rows, w->cols, w->rows);
        return 0;
    }
    return mt_sparse_matmul(w, x, rows, bias, y, MT_SPARSE_IMPL_AUTO);
}

int mt_prune_bench_format(const struct mt_sparse *w, size_t rows, double share_s, unsigned reps,
                          double *ns, char *err, size_t errlen)
{
    if (reps == 0) reps = 1;
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    float *x = malloc(rows * w->cols * sizeof(float));
    float *y = malloc(rows * w->rows * sizeof(float));
    double *t = malloc(reps * sizeof(double));
    mt_memcat_set(prev);
    int rc = 0;
    if (!x || !y || !t) {
        snprintf(err, errlen, "benchmark: out of memory");
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < rows * w->cols; i++) /* deterministic values in [-1, 1) */
        x[i] = (float)((i * 2654435761u) % 2048u) / 1024.0f - 1.0f;
    rc = mt_prune_storage_matmul(w, x, rows, NULL, y); /* warm-up: oneDNN primitive, caches */
    double t0 = mt_bench_now();
    if (rc == 0) rc = mt_prune_storage_matmul(w, x, rows, NULL, y);
    double one = mt_bench_now() - t0, per_rep = share_s / reps;
    size_t k = one > 0.0 && per_rep > one ? (size_t)(per_rep / one) : 1;
    double start = mt_bench_now();
    unsigned done = 0;
    while (done < reps && rc == 0) {
        t0 = mt_bench_now();
        for (size_t i = 0; i < k && rc == 0; i++)
            rc = mt_prune_storage_matmul(w, x, rows, NULL, y);
        t[done++] = (mt_bench_now() - t0) / (double)k;
        /* a loaded machine stretches every call: stop at 3 repetitions past 1.5x the share */
        if (done >= 3 && mt_bench_now() - start > 1.5 * share_s) break;
    }
    if (rc) {
        snprintf(err, errlen, "benchmark: kernel scratch out of memory");
        goto out;
    }
    *ns = 1e9 * mt_bench_median(t, done);
out:
    free(x);
    free(y);
    free(t);
    return rc;
}
