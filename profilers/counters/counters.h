/* profilers/counters/counters.h — hardware and software counters, memory signals and
 * nested regions for one process.
 *
 * What it is for: the runner child (harness) opens one `struct mt_counters` before it runs
 * a workload, brackets the workload's phases with region_begin/end, and at the end
 * enumerates per-region wall time, CPU time and counter deltas (-> tables `regions` and
 * `region_counters` of results/schema.sql) and whole-run totals (-> `metrics`).
 * Counter sources:
 *   - PAPI: presets (PAPI_TOT_INS, ...) and named native events, including
 *     software-defined events ("sde:::memtrade::live_bytes.weights", exported by the heap
 *     profiler through libsde);
 *   - perf_event_open software events (page faults, task clock, context switches, CPU
 *     migrations), and perf hardware cycles/instructions as a fallback when the PAPI
 *     presets for them are unavailable;
 *   - /proc/self/statm and /proc/self/status for RSS and peak RSS (mt_counters_mem).
 * What it is not for: allocation stacks or per-category heap accounting (profilers/heap),
 * storing anything (the harness writes the database), sampling other processes.
 *
 * Unavailable counters. Every requested counter stays in the list, in the order asked.
 * One this machine cannot read (no such event, component disabled, permission, conflict)
 * has available == 0 and a non-empty reason, and its value must be stored as NULL with
 * that reason — never as 0.
 *
 * Scope. perf software/hardware events are opened with inherit=1: they count the opening
 * thread and every thread it (or its descendants) creates AFTER mt_counters_open —
 * OpenMP workers included, provided the pool is created after open. PAPI events count
 * the opening thread only unless PAPI accepted PAPI_INHERIT for the eventset; each
 * counter's `scope` says which ("process" or "thread"). SDE events are process-wide by
 * nature (they read the library's variables). Wall time is CLOCK_MONOTONIC; CPU time is
 * CLOCK_PROCESS_CPUTIME_ID (all threads).
 *
 * Global state. PAPI_library_init and PAPI_thread_init are process-global; they run once,
 * under pthread_once, on the first mt_counters_open. Nothing else is global: several
 * handles may coexist (each on its own thread; PAPI allows one running eventset per
 * component per thread, so a second handle on the same thread gets its PAPI events
 * marked unavailable with PAPI's reason).
 *
 * Thread safety. A handle is used by ONE thread: the thread that opened it (PAPI binds
 * eventsets to the creating thread); region_begin/end and read_total called from another
 * thread fail with an error and change nothing. mt_counters_mem and mt_counters_mem_reset_peak are
 * stateless and safe from any thread.
 *
 * Errors. Functions returning int return 0 on success and -1 on error with a message in
 * `err` (NUL-terminated, truncated to errlen; err may be NULL when errlen is 0).
 */
#ifndef MT_COUNTERS_H
#define MT_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Environment variable read by mt_counters_open when opts->events is NULL. */
#define MT_COUNTERS_ENV "MEMTRADE_COUNTERS"

/* The default PAPI event list (what the token "default" expands to). PAPI_FP_OPS, when
 * unavailable, is followed by PAPI_SP_OPS and PAPI_DP_OPS if those are available. */
#define MT_COUNTERS_DEFAULT_EVENTS                                                                 \
    "PAPI_TOT_INS,PAPI_TOT_CYC,PAPI_L1_DCM,PAPI_L2_DCM,PAPI_L3_TCM,PAPI_TLB_DM,"                   \
    "PAPI_BR_MSP,PAPI_FP_OPS"

enum {
    MT_COUNTERS_MAX = 64,             /* counters per handle (PAPI + perf) */
    MT_COUNTERS_NAME_MAX = 128,       /* event name, including the NUL */
    MT_COUNTERS_REGION_NAME_MAX = 64, /* one region name, including the NUL */
    MT_COUNTERS_DEPTH_MAX = 32,       /* nesting depth of open regions */
};

struct mt_counters_opts {
    /* Comma-separated PAPI event names: presets ("PAPI_TOT_INS"), native or SDE events
     * ("sde:::memtrade::live_bytes.weights"), and the token "default" for
     * MT_COUNTERS_DEFAULT_EVENTS. Spaces around names are ignored; duplicates are kept
     * once. "" or "none" asks for no PAPI event. NULL means: $MEMTRADE_COUNTERS if set,
     * else "default". A name PAPI does not know is NOT an error: it is listed as
     * unavailable with PAPI's reason. Errors: more than MT_COUNTERS_MAX counters, a name
     * of MT_COUNTERS_NAME_MAX bytes or more. */
    const char *events;
    /* Non-zero: open no perf_event counter (neither the software events nor the
     * hardware fallback). */
    int no_perf;
};

enum mt_counter_source {
    MT_COUNTER_PAPI = 1, /* PAPI preset or native (incl. SDE) event */
    MT_COUNTER_PERF = 2, /* perf_event_open, software or hardware */
};

/* One counter and, depending on where it comes from, its value.
 * Names of perf counters (as stored in region_counters.counter): "page_faults",
 * "page_faults_min", "page_faults_maj", "task_clock_ns", "context_switches",
 * "cpu_migrations", and the fallbacks "perf_cycles", "perf_instructions".
 * PAPI counters keep the name they were asked by. All strings are owned by the handle
 * and live until mt_counters_close. */
struct mt_counter {
    const char *name;
    const char *unit; /* "count" or "ns" */
    enum mt_counter_source source;
    int available;      /* 1: value is meaningful; 0: see reason */
    int64_t value;      /* delta (region) or total since open; 0 and meaningless when
                           !available. Signed: an SDE gauge such as live bytes can fall. */
    const char *reason; /* NULL when available; non-empty text otherwise */
    const char *scope;  /* "process" or "thread" (see the file comment) */
    const char *note;   /* NULL, or a caveat on how it counts ("user mode only: ...") */
};

/* Opens the counters: probes each requested event, builds PAPI eventsets (one per PAPI
 * component; an event that cannot join its component's eventset is marked unavailable
 * with PAPI's reason), opens the perf events, and starts everything. Time 0 for totals is
 * the end of this call. `opts` may be NULL (all defaults). On success *out owns a handle
 * to pass to mt_counters_close. Errors: a malformed event list, out of memory. A machine
 * without any counter is not an error (every counter is then unavailable). */
struct mt_counters;
int mt_counters_open(const struct mt_counters_opts *opts, struct mt_counters **out, char *err,
                     size_t errlen);

/* Stops and frees everything. NULL is a no-op. Must run on the opening thread. */
void mt_counters_close(struct mt_counters *c);

/* The counter list, in order: requested PAPI events first, then perf counters. `value`
 * is 0 here; use mt_counters_read_total for values. i must be < mt_counters_count(c). */
size_t mt_counters_count(const struct mt_counters *c);
const struct mt_counter *mt_counters_get(const struct mt_counters *c, size_t i);

/* Enters region `name` (non-empty, no '/', shorter than MT_COUNTERS_REGION_NAME_MAX)
 * nested inside the currently open region. Regions are keyed by path: entering
 * "forward" inside "train" then "step" accumulates into "train/step/forward".
 * Errors: bad name, nesting deeper than MT_COUNTERS_DEPTH_MAX, a counter read failing. On
 * error nothing changes. Cost: one read of each counter source, two clock reads. */
int mt_counters_region_begin(struct mt_counters *c, const char *name, char *err, size_t errlen);

/* Leaves region `name`, which must be the innermost open one; adds one call, the wall
 * and CPU time and every available counter's delta to its path. Errors: no open region,
 * `name` differs from the innermost open region (the message names both); on error
 * nothing changes and the region stays open. */
int mt_counters_region_end(struct mt_counters *c, const char *name, char *err, size_t errlen);

/* Number of regions open now, and the innermost one's path ("" when none). The string
 * lives until mt_counters_close. */
size_t mt_counters_region_depth(const struct mt_counters *c);
const char *mt_counters_region_path(const struct mt_counters *c);

/* One region's accumulated result. Regions still open count only their completed calls. */
struct mt_counters_region {
    const char *path; /* "train/step/forward" */
    const char *name; /* "forward" */
    size_t depth;     /* 0 for a top-level region */
    uint64_t calls;
    double wall_s;
    double cpu_s;
    size_t ncounters;                  /* == mt_counters_count(c) */
    const struct mt_counter *counters; /* deltas summed over calls; unavailable ones
                                          carry their reason */
};

/* Calls cb once per region path ever entered, parents before children, siblings in
 * first-entered order. All pointers in *r are valid only during the call. Stops and
 * returns cb's value when it returns non-zero; returns 0 otherwise. */
typedef int (*mt_counters_region_fn)(const struct mt_counters_region *r, void *user);
int mt_counters_region_foreach(const struct mt_counters *c, mt_counters_region_fn cb, void *user);

/* Whole-run totals since mt_counters_open (wall, CPU, every counter). `counters` points
 * into the handle and stays valid until the next read_total or close. path/name are ""
 * and depth 0. Errors: a counter read failing. */
int mt_counters_read_total(struct mt_counters *c, struct mt_counters_region *out, char *err,
                           size_t errlen);

/* Memory of the calling process, from the kernel. */
struct mt_memsnap {
    uint64_t rss_bytes;      /* resident now (statm: resident pages * page size) */
    uint64_t peak_rss_bytes; /* VmHWM of /proc/self/status: the peak resident set since
                                start or since the last mt_counters_mem_reset_peak. Both
                                come from the kernel's per-CPU RSS counters and may differ
                                from the exact figure by a few hundred KiB. */
    uint64_t vm_bytes;       /* virtual size (statm: size pages * page size) */
};
/* Reads /proc/self/statm and /proc/self/status. Errors: /proc missing or unreadable. */
int mt_counters_mem(struct mt_memsnap *out, char *err, size_t errlen);
/* Resets VmHWM to the current RSS (writes "5" to /proc/self/clear_refs) so a later
 * peak_rss_bytes covers one phase. The whole process loses its earlier peak: getrusage's
 * ru_maxrss is reset too, so read the whole-run peak first and keep it (max of the
 * phases). Errors: the kernel refuses (returned with errno's text); peaks then keep
 * covering the whole run. */
int mt_counters_mem_reset_peak(char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
