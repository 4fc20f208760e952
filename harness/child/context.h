/* harness/child/context.h — the harness's side of the plugin ABI: the struct mt_ctx a plugin's
 * run() (in the child) or mem_estimate() (in the parent) receives.
 *
 * What it is for: typed parameters, and in the child every other hook: metrics, samples,
 * logs and errors become event lines (events.h) on the rank's event file; regions go to
 * the counters library (wall, CPU and counter deltas per path) when it is built, else to
 * a wall/CPU-only table here, and to the heap profiler's timeline; mem_category goes to
 * the heap profiler; the RNG is xoshiro256** seeded through splitmix64 from the run seed.
 * What it is not for: loading plugins, the database, or anything in the parent beyond
 * mem_estimate.
 */
#ifndef MT_HARNESS_CONTEXT_H
#define MT_HARNESS_CONTEXT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <memtrade/workload.h>

#include "phaserss.h"
#include "plugins.h"

struct mt_counters;

#define MT_CONTEXT_DEPTH 32 /* nesting depth of regions */

/* Wall/CPU totals of one region path, used when the counters library is absent. */
struct mt_context_region {
    char *path;
    uint64_t calls;
    double wall_s, cpu_s;
};

/* What the plugin reads about its run (seed(), threads(), rank(), nranks(), cache_dir(),
 * corpus(), scratch_dir()); strings borrowed. */
struct mt_context_run {
    uint64_t seed;
    int threads, rank, nranks;
    const char *cache_dir, *corpus, *scratch_dir;
};

struct mt_context {
    struct mt_ctx pub; /* what the plugin sees; must stay the first member */
    struct mt_ctx_ops ops;
    const struct mt_params *params;
    int events_fd; /* -1: params-only context */

    struct mt_context_run run;
    uint64_t rng[4];
    double t0; /* CLOCK_MONOTONIC at start */
    _Atomic int64_t last_progress_ns;

    pthread_t owner;              /* the thread that runs run(): regions are counted there only */
    struct mt_counters *counters; /* NULL when not built or not opened */
    /* Fallback region stack and table (no counters library). */
    char open_path[1024];
    size_t depth;
    double open_wall[MT_CONTEXT_DEPTH], open_cpu[MT_CONTEXT_DEPTH];
    /* Copies of the open regions' names, handed to the heap profiler's timeline. */
    char memcat_names[MT_CONTEXT_DEPTH][64];
    size_t memcat_depth;
    struct mt_phase_rss rss; /* the kernel's resident peak per top-level region */
    struct mt_context_region *regions;
    size_t nregions;

    char bug[512];    /* first misuse of the ABI by the plugin ("" when none) */
    char error[2048]; /* the message given to mt_error */
    int error_errno;  /* errno when mt_error was called */
};

/* Contract: initialises a context whose only working hooks are the param_* getters (for
 * mem_estimate in the parent); the others do nothing. `params` is borrowed. */
void mt_context_init_params_only(struct mt_context *c, const struct mt_params *params);

/* Contract: initialises the full child context writing events to `events_fd` (borrowed),
 * for the run `run` (copied; its strings are borrowed and must outlive the context). Must
 * be called on the thread that will call run(). */
void mt_context_init(struct mt_context *c, const struct mt_params *params, int events_fd,
                     const struct mt_context_run *run, struct mt_counters *counters);

/* Contract: after run() returned: closes regions the plugin left open, writes one REGION
 * event per region path (and COUNTER events when counters are available), then frees the
 * context's own memory. The counters handle stays the caller's. */
void mt_context_finish(struct mt_context *c);

/* Contract: writes one event with fields given as strings (see events.h); never fails
 * loudly (an event that cannot be written is lost, as the child may be dying). */
void mt_context_emit(struct mt_context *c, char tag, const char *const *fields, size_t n);

#endif
