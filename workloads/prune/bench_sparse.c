/* bench_sparse.c — mt-bench-sparse: sparse GEMV/GEMM against dense fp32 at GPT-2 shapes.
 *
 * What it is for: for each GPT-2 (124M) linear shape and sparsity 0/50/75/90 %, the median
 * time of y = x·W^T for every mt_sparse format against two dense fp32 baselines measured in
 * the same run: oneDNN's sgemm (what the model uses) and mt_sparse's own DENSE kernel.
 * N:M uses the pattern closest to the sparsity (2:4, 1:4, 1:8 = 87.5 %) and prints its real
 * sparsity. What it is not for: correctness (tests/prune) or model accuracy.
 *
 * With --sparsegpt (built with the model-level pruning library): SparseGPT at 50 % on
 * the four linears of a GPT-2 124M block (bench_calib.h: random weights, 2048 correlated
 * calibration tokens), the time per layer and the shares of the Hessian, the
 * factorization and the pruning pass with its error updates.
 *
 * Usage: mt-bench-sparse [mrows=1] [reps=200] | --sparsegpt. Threads: OMP_NUM_THREADS. Run
 * under nice.
 */
#include <dnnl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "sparse.h"
#ifdef MT_BENCH_SPARSEGPT
#include "bench_calib.h"
#include "prune_model.h"

/* --sparsegpt: see the file comment. */
static int bench_sparsegpt(void)
{
    const size_t rows = 2048;
    double tot[3] = {0};
    char err[256];
    printf("SparseGPT, GPT-2 124M block, %zu calibration tokens, 50 %% unstructured, %d "
           "threads\n",
           rows, omp_get_max_threads());
    for (int l = 0; l < MT_BENCH_CALIB_LAYERS; l++) {
        struct mt_bench_calib_layer c;
        if (mt_bench_calib_layer(l, rows, &c)) return 1;
        uint8_t *keep = malloc(c.n * c.k);
        double t0 = mt_bench_now();
        int rc = !keep || mt_prune_sparsegpt_matrix(c.w, c.n, c.k, c.u, NULL, 0.5, 0, 0, keep,
                                                    err, sizeof err);
        double t1 = mt_bench_now();
        free(keep);
        if (rc) {
            fprintf(stderr, "%s\n", keep ? err : "out of memory");
            return 1;
        }
        mt_bench_calib_line(&c, t1 - t0, "pruning", tot);
        mt_bench_calib_free(&c);
    }
    mt_bench_calib_total(tot, "pruning");
    return 0;
}
#endif

struct job {
    const struct mt_sparse *s; /* NULL: oneDNN sgemm on w */
    const float *w, *x;
    float *y;
    size_t rows, cols, mrows;
};

static void run_once(const struct job *j)
{
    if (j->s)
        mt_sparse_matmul(j->s, j->x, j->mrows, NULL, j->y, MT_SPARSE_IMPL_AUTO);
    else
        dnnl_sgemm('N', 'T', (dnnl_dim_t)j->mrows, (dnnl_dim_t)j->rows, (dnnl_dim_t)j->cols, 1.0f,
                   j->x, (dnnl_dim_t)j->cols, j->w, (dnnl_dim_t)j->cols, 0.0f, j->y,
                   (dnnl_dim_t)j->rows);
}

static double time_job(const struct job *j, size_t reps, double *t)
{
    for (size_t i = 0; i < 5; i++)
        run_once(j);
    for (size_t i = 0; i < reps; i++) {
        double t0 = 1e6 * mt_bench_now();
        run_once(j);
        t[i] = 1e6 * mt_bench_now() - t0;
    }
    return mt_bench_median(t, reps);
}

static uint64_t next_u64(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

int main(int argc, char **argv)
{
#ifdef MT_BENCH_SPARSEGPT
    if (argc > 1 && !strcmp(argv[1], "--sparsegpt")) return bench_sparsegpt();
#endif
    size_t mrows = argc > 1 ? strtoul(argv[1], NULL, 10) : 1;
    size_t reps = argc > 2 ? strtoul(argv[2], NULL, 10) : 200;
    if (mrows == 0 || reps == 0) {
        fprintf(stderr, "usage: mt-bench-sparse [mrows>0] [reps>0] | --sparsegpt\n");
        return 2;
    }
    static const struct {
        const char *name;
        size_t rows, cols;
    } shapes[] = {{"attn.qkv", 2304, 768},
                  {"attn.proj", 768, 768},
                  {"mlp.fc", 3072, 768},
                  {"mlp.proj", 768, 3072}};
    static const double sparsity[] = {0.0, 0.5, 0.75, 0.9};
    static const unsigned nm[][2] = {{0, 0}, {2, 4}, {1, 4}, {1, 8}};
    uint64_t seed = 1;
    double *t = malloc(reps * sizeof(double));
    printf("# mt-bench-sparse mrows=%zu reps=%zu avx512=%d; median us; speedup = oneDNN "
           "dense fp32 / this (same run)\n",
           mrows, reps, mt_sparse_have_avx512());
    printf("%-10s %5s %-7s %9s %10s %8s %10s\n", "shape", "spars", "format", "real_sp", "median_us",
           "speedup", "bytes");
    for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
        size_t rows = shapes[si].rows, cols = shapes[si].cols, count = rows * cols;
        float *w = malloc(count * sizeof(float)), *x = malloc(mrows * cols * sizeof(float));
        float *y = malloc(mrows * rows * sizeof(float)), *mag = malloc(count * sizeof(float));
        uint8_t *keep = malloc(count);
        float *wm = malloc(count * sizeof(float));
        if (!w || !x || !y || !mag || !keep || !wm || !t) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < count; i++)
            w[i] = (float)((double)(next_u64(&seed) >> 11) / 9007199254740992.0 - 0.5);
        for (size_t i = 0; i < mrows * cols; i++)
            x[i] = (float)((double)(next_u64(&seed) >> 11) / 9007199254740992.0 - 0.5);
        for (size_t i = 0; i < count; i++)
            mag[i] = fabsf(w[i]);
        struct job dense = {NULL, w, x, y, rows, cols, mrows};
        double t_dnnl = time_job(&dense, reps, t);
        printf("%-10s %5s %-7s %9.3f %10.1f %8.2f %10zu\n", shapes[si].name, "-", "onednn", 0.0,
               t_dnnl, 1.0, count * sizeof(float));
        for (size_t pi = 0; pi < 4; pi++) {
            for (int f = 0; f < MT_SPARSE_FORMAT_COUNT; f++) {
                if (f == MT_SPARSE_DENSE && pi > 0) continue;
                if (f == MT_SPARSE_NM && nm[pi][0] == 0) continue;
                memcpy(wm, w, count * sizeof(float));
                if (f == MT_SPARSE_NM)
                    mt_sparse_select_nm(mag, rows, cols, nm[pi][0], nm[pi][1], keep);
                else
                    mt_sparse_select(mag, rows, cols, sparsity[pi], MT_SPARSE_SCOPE_LAYER, keep);
                double real = (double)mt_sparse_apply_mask(wm, keep, count) / (double)count;
                struct mt_sparse s;
                char err[200];
                if (mt_sparse_pack(&s, (enum mt_sparse_format)f, wm, rows, cols, nm[pi][0],
                                   nm[pi][1], err, sizeof(err))) {
                    fprintf(stderr, "%s\n", err);
                    return 1;
                }
                struct job j = {&s, NULL, x, y, rows, cols, mrows};
                double us = time_job(&j, reps, t);
                printf("%-10s %4.0f%% %-7s %9.3f %10.1f %8.2f %10zu\n", shapes[si].name,
                       sparsity[pi] * 100, mt_sparse_format_names[f], real, us, t_dnnl / us,
                       mt_sparse_bytes(&s));
                mt_sparse_free(&s);
            }
        }
        free(w);
        free(x);
        free(y);
        free(mag);
        free(keep);
        free(wm);
    }
    free(t);
    return 0;
}
