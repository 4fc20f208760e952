/* prune_storage.h — how a pruned layer is stored: by bytes, by measured speed, or forced.
 *
 * What it is for: the `storage` choice of the prune workload. `smallest` keeps each layer
 * in the mt_sparse format with the fewest bytes (mt_sparse_choose); `fastest` times every
 * candidate format on the layer's own matrix with a batch-1 GEMV (the shape of serving
 * decode, one token at a time) and keeps the fastest, the dense oneDNN/fp32 path being a
 * candidate; `dense`, `csr`, `bitmap` and `nm` force one format on every layer (a dense
 * pruned layer keeps its zeros). The decision rule is a pure function so tests can feed
 * it timings; the benchmark times one packed matrix.
 * What it is not for: choosing masks, packing (sparse.h) or the model hook
 * (prune_model.h builds with these choices). It does not time the evaluation batch shape:
 * decode speed is the criterion, eval_tokens_per_s shows the effect on big batches.
 *
 * Thread-safety: pure functions and one benchmark per call; the benchmark runs the
 * kernels with the calling thread's OpenMP team, as serving does.
 */
#ifndef MT_PRUNE_STORAGE_H
#define MT_PRUNE_STORAGE_H

#include <stddef.h>

#include "sparse.h"

#ifdef __cplusplus
extern "C" {
#endif

enum mt_prune_storage {
    MT_PRUNE_STORE_SMALLEST = 0, /* fewest bytes per layer (the default) */
    MT_PRUNE_STORE_FASTEST = 1,  /* fastest measured batch-1 GEMV per layer */
    MT_PRUNE_STORE_DENSE = 2,    /* forced formats, in enum mt_sparse_format order */
    MT_PRUNE_STORE_CSR = 3,
    MT_PRUNE_STORE_BITMAP = 4,
    MT_PRUNE_STORE_NM = 5, /* only for N:M masks (method=nm) */
    MT_PRUNE_STORE_COUNT = 6
};

/* The choice string of the plugin parameter, in enum order. */
#define MT_PRUNE_STORAGE_CHOICES "smallest|fastest|dense|csr|bitmap|nm"

/* Relative timing noise the fastest rule tolerates (5 %): formats within it of the best
 * time count as equally fast and the smaller one wins. */
#define MT_PRUNE_BENCH_NOISE 0.05

/* Median batch-1 GEMV repetitions per (layer, format). */
#define MT_PRUNE_BENCH_REPS 5

/* "smallest|fastest|dense|csr|bitmap|nm" <-> enum; parse returns -1 when unknown. */
int mt_prune_storage_parse(const char *name);
const char *mt_prune_storage_name(enum mt_prune_storage s);

/* Contract: the forced format of `s` (DENSE..NM), or -1 for SMALLEST and FASTEST. */
int mt_prune_storage_format(enum mt_prune_storage s);

/* Contract: the decision rule of `fastest`. ns[f] is format f's measured time per call
 * (negative = not a candidate), bytes[f] its stored size. Among the candidates whose
 * time is within (1 + noise) of the best time, returns the one with the fewest bytes
 * (ties: lower enum value), so the result is never slower than the best measured format
 * — and so than dense, when dense is a candidate — by more than the noise. Returns -1
 * when there is no candidate. Pure function. */
int mt_prune_pick_fastest(const double ns[MT_SPARSE_FORMAT_COUNT],
                          const size_t bytes[MT_SPARSE_FORMAT_COUNT], double noise);

/* Contract: total benchmark budget for `fastest` over `weights` prunable weights:
 * 0.6 s for the `small` preset's 786,432, proportional to the weights (at least 0.05 s).
 * Each (layer, format) gets an equal share; a share shorter than one call still runs
 * 3 repetitions of one call (see mt_prune_bench_format), plus packing, so the budget is
 * a target that load and very small budgets can exceed. */
double mt_prune_bench_budget(size_t weights);

/* Contract: y[rows x w->rows] = x[rows x w->cols] · W^T (+ bias) with the serving kernel
 * of w's format: oneDNN/fp32 (mt_k_matmul_fwd) for DENSE, mt_sparse_matmul (AUTO) for
 * the others. Returns 0, or -1 when sparse scratch cannot be allocated. */
int mt_prune_storage_matmul(const struct mt_sparse *w, const float *x, size_t rows,
                            const float *bias, float *y);

/* Contract: times mt_prune_storage_matmul on `w` with `rows` input rows (1 = decode
 * GEMV): one warm-up call, one timed call, then `reps` repetitions of k calls each, k
 * chosen from the timed call so a repetition lasts about share_s / reps (k >= 1); on a
 * loaded machine it stops after 3 repetitions once 1.5 x share_s has passed. Writes the
 * median time
 * per call in nanoseconds to *ns. Inputs are deterministic; scratch is workspace memory.
 * Returns 0, or -1 with a message (allocation). */
int mt_prune_bench_format(const struct mt_sparse *w, size_t rows, double share_s, unsigned reps,
                          double *ns, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
