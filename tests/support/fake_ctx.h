/* fake_ctx.h — a minimal in-process stand-in for the harness's ctx, shared by every test
 * that runs a workload plugin without the harness (tests/transformer, train, prune,
 * distill, and tests/distributed's dist_driver under mpirun).
 *
 * What it is for: running a workload plugin's run() inside a test program: parameters
 * come from the plugin's table defaults overridden by "name=value" strings; metrics,
 * samples, regions, progress and logs are recorded for the test to assert on, and
 * metrics and logs are also printed ("rank R metric NAME VALUE UNIT").
 * What it is not for: anything the real harness does (processes, database, profilers).
 * Not thread-safe: one ctx per run, called from the plugin's calling thread.
 */
#ifndef MT_FAKE_CTX_H
#define MT_FAKE_CTX_H

#include <stddef.h>

#include <memtrade/workload.h>

#define FAKE_MAX 128 /* overrides, and distinct metric names */

struct fake_metric {
    char name[64], unit[32];
    double value;
    int na;
    char reason[160]; /* why it is unavailable (na only) */
};

struct fake_ctx {
    struct mt_ctx base; /* first: the plugin sees &base */
    const struct mt_workload *wl;
    const char *overrides[FAKE_MAX];
    size_t n_overrides;
    struct fake_metric metrics[FAKE_MAX];
    size_t n_metrics;
    size_t n_samples, open_regions, regions_begun, region_errors, n_warnings;
    double progress_done, progress_total;
    char error[1024];
    char cache_dir[256], scratch_dir[256];
    const char *corpus;
    int threads, rank, nranks;
    size_t n_undeclared, n_nonfinite; /* parameters asked for but not declared; NaN/inf metrics */
    char last_sample_log[2048];
    /* Optional: called with every sample (series, x, y) as it is reported, for tests that
     * keep series (tests/golden records the loss curves). */
    void (*on_sample)(void *user, const char *series, double x, double y);
    void *sample_user;
    /* Optional: called at every region_begin (begin = 1) and region_end (begin = 0) with
     * the region's name, for tests that look at state inside a phase (tests/common's
     * serving test checks what the model holds while it decodes). */
    void (*on_region)(void *user, const char *name, int begin);
    void *region_user;
};

/* Fills *f for plugin wl with "name=value" overrides (kept by pointer, the first FAKE_MAX
 * only): 2 threads, rank 0 of 1, empty cache and scratch folders, no corpus. The caller
 * may change those fields before run(). */
void fake_ctx_init(struct fake_ctx *f, const struct mt_workload *wl, const char **overrides,
                   size_t n);
/* The recorded metric, or NULL. */
const struct fake_metric *fake_ctx_metric(const struct fake_ctx *f, const char *name);

#endif
