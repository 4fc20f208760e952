/* results/runtime.h — the runtime terms of the plan (issue 21), table runtime_terms
 * (migrations/007_runtime_terms.sql).
 *
 * What it is for: what a memory plan cannot derive from a configuration, measured once
 * per build and machine from a probe run's three witnesses and stored per phase and term:
 *   workspace   heap peak of category workspace beyond the plan's (oneDNN's scratch,
 *               primitive and JIT buffers)
 *   untagged    heap peak of category other beyond the plan's (libraries' own
 *               allocations: OpenMP, the loader, stdio)
 *   heap_other  the phase's heap peak minus its plan minus the two above (categories
 *               peaking at other moments, rounding of the profiler's sampling)
 *   resident    the phase's resident peak (<phase>_rss_peak_bytes) minus its heap peak:
 *               thread stacks, code, libraries' data, allocator slack
 * so heap ~ plan + workspace + untagged + heap_other and RSS ~ that + resident. The key
 * (build id, machine) is derived from a run's facts JSON (harness/facts.h) by one SQL
 * definition, MT_RUNTIME_BUILD_SQL / MT_RUNTIME_MACHINE_SQL, for writers and readers.
 * What it is not for: running the probe (the harness), the plan itself (the plugins').
 *
 * Errors: functions return 0, or -1 with mt_store_error(st). Thread safety: the store's.
 */
#ifndef MEMTRADE_RESULTS_RUNTIME_H
#define MEMTRADE_RESULTS_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The key of the build and of the machine, as SQL expressions over a facts JSON text. */
#define MT_RUNTIME_BUILD_SQL(F)                                                                    \
    "(COALESCE(json_extract(" F ", '$.git_rev'), '?') || ' ' || COALESCE(json_extract(" F         \
    ", '$.compiler'), '?') || ' ' || COALESCE(json_extract(" F ", '$.build_type'), '?') ||"      \
    " ' [' || COALESCE(json_extract(" F ", '$.flags'), '?') || '] onednn ' ||"                     \
    " COALESCE(json_extract(" F ", '$.onednn'), '?'))"
#define MT_RUNTIME_MACHINE_SQL(F)                                                                  \
    "(COALESCE(json_extract(" F ", '$.cpu'), '?') || ', ' || COALESCE(json_extract(" F            \
    ", '$.cores'), '?') || ' cores, ' || COALESCE(json_extract(" F ", '$.kernel'), '?'))"

/* The terms, in the order they are listed. */
#define MT_RUNTIME_TERMS 4
extern const char *const mt_runtime_term_names[MT_RUNTIME_TERMS];

struct mt_runtime_key {
    char build[1024];
    char machine[512];
};

/* Contract: the key of the build and machine that `facts_json` (mt_facts_json) describes.
 * Returns 0, or -1 (not JSON, SQL error). */
int mt_runtime_key(struct mt_store *st, const char *facts_json, struct mt_runtime_key *key);

/* Contract: the key of stored run `run_id` (its facts_json). Returns 0, 1 when the run
 * has no facts, or -1 (unknown run, SQL error). */
int mt_runtime_run_key(struct mt_store *st, int64_t run_id, struct mt_runtime_key *key);

struct mt_runtime_term {
    char phase[64];
    char term[32];
    int has;               /* 0: unavailable, for `unavailable` */
    double bytes;          /* may be negative (heap_other) */
    char unavailable[256];
    char probe[256];       /* the probe's configuration */
    char measured_at[32];  /* UTC, ISO 8601 */
};

/* Contract: the terms of every planned phase of run `probe_run` of `st`, derived from its
 * stored witnesses (plan_<phase>_peak_bytes per category, the heap profiler's
 * heap_peak_bytes of region <phase> on rank 0, <phase>_rss_peak_bytes), into *out
 * (malloc'd, the caller frees; NULL when the run has no plan) and *n, each with `probe`
 * as its probe text. A phase the probe never entered (no heap figure) gets its terms
 * unavailable with the reason, as does `resident` without the phase's resident peak.
 * Reads only. Returns 0, or -1. */
int mt_runtime_derive(struct mt_store *st, int64_t probe_run, const char *probe,
                      struct mt_runtime_term **out, size_t *n);

/* Contract: stores terms[0..n) under `key`, replacing those of the same phase and term,
 * measured now, inside the caller's transaction or its own. Returns 0, or -1. */
int mt_runtime_put(struct mt_store *st, const struct mt_runtime_key *key,
                   const struct mt_runtime_term *terms, size_t n);

/* Contract: the terms stored under `key`, ordered by phase and term, into *out (malloc'd,
 * the caller frees; NULL when none) and *n. Returns 0, or -1. */
int mt_runtime_get(struct mt_store *st, const struct mt_runtime_key *key,
                   struct mt_runtime_term **out, size_t *n);

/* Contract: *id = the first run of `workload` with status ok and id > after (0: none).
 * Returns 0, or -1. */
int mt_runtime_ok_run_after(struct mt_store *st, const char *workload, int64_t after,
                            int64_t *id);

/* Contract: the heap runtime of `phase` among terms[0..n): the sum of its heap terms
 * (workspace, untagged, heap_other) into *bytes. Returns 1, or 0 when the phase has no
 * term or one of them is unavailable. Pure. */
int mt_runtime_phase_heap(const struct mt_runtime_term *terms, size_t n, const char *phase,
                          double *bytes);

#ifdef __cplusplus
}
#endif
#endif
