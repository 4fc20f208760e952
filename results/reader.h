/* results/reader.h — the read API of a memtrade database: typed rows, no SQL for callers.
 *
 * What it is for: everything a program that draws or checks results reads (plots/, the
 * harness's small look-ups): the runs of a sweep with their parameters and run-level
 * metrics and comparability keys, metrics at one rank, samples (timelines, curves),
 * regions with their counters, allocation sites and their stacks, and scalar facts from a
 * run's JSON. Memory categories arrive as a field (`category`), never inside a name.
 * What it is not for: writing (store.h), the canned `memtrade query` tables
 * (store_read.c) or the Pareto test (pareto.h).
 *
 * Memory: a struct mt_read holds everything its functions return (strings and arrays);
 * it all stays valid until mt_read_close. Errors: functions return -1 and the message is
 * in mt_store_error(store). A struct mt_read is used by one thread at a time, like its
 * store.
 *
 *     struct mt_read *rd;
 *     if (mt_read_open(st, &rd) != 0) ... mt_store_error(st);
 *     struct mt_read_run *runs; size_t n;
 *     if (mt_read_runs(rd, sweep_id, &runs, &n) != 0) ...
 *     mt_read_close(rd); // frees runs
 */
#ifndef MEMTRADE_RESULTS_READER_H
#define MEMTRADE_RESULTS_READER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mt_read;

/* Contract: a reader over `st` (kept, not owned: close the reader first). 0, or -1. */
int mt_read_open(struct mt_store *st, struct mt_read **out);
/* Contract: frees the reader and everything its functions returned. NULL is a no-op. */
void mt_read_close(struct mt_read *rd);

struct mt_read_sweep {
    int64_t id;
    const char *name, *spec_path, *host, *facts_json; /* NULL when not recorded */
};

/* Contract: the highest sweep id that has runs, in *sweep_id. Returns 1, or 0 when no run
 * belongs to a sweep, or -1. */
int mt_read_latest_sweep(struct mt_read *rd, int64_t *sweep_id);
/* Contract: sweep `id`. Returns 1, 0 when there is none, or -1. */
int mt_read_sweep(struct mt_read *rd, int64_t id, struct mt_read_sweep *out);

struct mt_read_param {
    const char *key, *value;
};

struct mt_read_metric {
    const char *name;     /* base name: 'train_peak_bytes' */
    const char *category; /* memory category ('weights'), or NULL for the whole */
    int rank;             /* -1: the whole run */
    int has;              /* 1: value holds a finite number; 0: unavailable (or not finite) */
    double value;
    const char *unit;
    const char *unavailable; /* the reason when the value is NULL */
};

struct mt_read_run {
    int64_t id, sweep_id; /* sweep_id 0: not part of a sweep */
    const char *workload, *label, *config_key, *status, *error, *facts_json;
    int64_t repeat, exit_code, signal;
    int has_exit, has_signal, has_wall;
    double wall_s;
    int ranks;
    /* What accuracy may be compared across (one definition, shared with the tradeoff
     * view): the validation bytes scored (metric eval_bytes) and the training budget
     * (parameters steps x batch, in sequences). NaN when the run does not say. */
    double eval_bytes, train_budget;
    struct mt_read_param *params; /* sorted by key (byte order) */
    size_t n_params;
    struct mt_read_metric *metrics; /* run-level (rank -1), sorted by name then category */
    size_t n_metrics;
    /* For runs with per-rank figures: per (name, category) the largest value any rank
     * reported (rank >= 0, unavailable ones left out), its unit the smallest spelling. */
    struct mt_read_metric *rank_max;
    size_t n_rank_max;
};

/* Which runs mt_read_runs selects. */
#define MT_READ_ALL_SWEEPS (-1)

/* Contract: the runs of sweep `sweep_id` and of every other attempt of that sweep (same
 * name and spec_path: `sweep --resume` starts a new sweep row and leaves the runs it
 * skipped in the earlier one), or every run with MT_READ_ALL_SWEEPS; ascending id, every
 * attempt and status (superseding is the caller's choice). *runs may be NULL when n = 0. */
int mt_read_runs(struct mt_read *rd, int64_t sweep_id, struct mt_read_run **runs, size_t *n);

/* Contract: one run, as mt_read_runs gives it. Returns 1, 0 when there is none, or -1. */
int mt_read_run(struct mt_read *rd, int64_t run_id, struct mt_read_run **run);

/* Contract: the metrics run `run_id` reported at `rank` (-1: run level), sorted by name
 * then category. */
int mt_read_metrics(struct mt_read *rd, int64_t run_id, int rank, struct mt_read_metric **out,
                    size_t *n);

struct mt_read_sample {
    const char *series;   /* base name: 'heap.live', 'rss', 'train_loss' */
    const char *category; /* memory category of a per-category series, else NULL */
    double x, y;
    const char *region; /* the phase current at the sample, NULL when none ('' too) */
};

/* Contract: the samples of run `run_id` whose series is one of series[0..n_series) (a
 * per-category series counts as its base name), at the lowest rank that has any of them,
 * ordered by x and then as recorded. *n = 0 when there are none. */
int mt_read_samples(struct mt_read *rd, int64_t run_id, const char *const *series, size_t n_series,
                    struct mt_read_sample **out, size_t *n);
/* Contract: 1 when run `run_id` has a sample of one of these series (any rank), else 0;
 * -1 on error. */
int mt_read_has_samples(struct mt_read *rd, int64_t run_id, const char *const *series,
                        size_t n_series);

struct mt_read_counter {
    const char *name;     /* base name: 'PAPI_TOT_INS', 'heap_peak_bytes' */
    const char *category; /* memory category, or NULL */
    int has;
    double value;
    const char *unavailable;
};

struct mt_read_region {
    int64_t id;
    int rank;
    const char *path, *name; /* 'train/step/forward', 'forward' */
    int depth;
    int64_t calls;
    double wall_s, cpu_s;
    int has_cpu;
    struct mt_read_counter *counters; /* sorted by name then category */
    size_t n_counters;
};

/* Contract: the regions of run `run_id`, every rank, ordered by rank then path (byte
 * order), each with its counters. */
int mt_read_regions(struct mt_read *rd, int64_t run_id, struct mt_read_region **out, size_t *n);

struct mt_read_site {
    int64_t stack_id;
    const char *category;
    double peak_bytes, bytes, allocs; /* sums over the rows of (stack, category) */
    int estimated;                    /* 1 when any of them is a sampled estimate */
};

/* Contract: 1 when run `run_id` has allocation sites (any rank) or regions, by `what`. */
enum mt_read_what { MT_READ_SITES, MT_READ_REGIONS };
int mt_read_has(struct mt_read *rd, int64_t run_id, enum mt_read_what what);

/* Contract: the allocation sites of run `run_id` at the lowest rank that has any, one per
 * (stack, category), those with bytes live at the peak, largest peak first (ties: lower
 * stack id), at most `limit` (0: all). */
int mt_read_top_sites(struct mt_read *rd, int64_t run_id, size_t limit, struct mt_read_site **out,
                      size_t *n);

struct mt_read_frame {
    const char *function, *module, *file; /* NULL when unknown */
    int line;                             /* -1 when unknown */
};

/* Contract: the frames of stack `stack_id`, innermost first. */
int mt_read_stack(struct mt_read *rd, int64_t stack_id, struct mt_read_frame **out, size_t *n);

/* Contract: the first of paths[] (JSON paths, '$.cpu_model'; NULL-terminated) that holds
 * a scalar (text or number) in the JSON text `json`, as text in *out (NULL when none,
 * when json is NULL or not JSON). Returns 0, or -1. */
int mt_read_json_fact(struct mt_read *rd, const char *json, const char *const *paths,
                      const char **out);

#ifdef __cplusplus
}
#endif
#endif
