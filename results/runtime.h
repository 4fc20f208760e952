/* results/runtime.h — the runtime terms of the plan (issue 21), table runtime_terms
 * (migrations/007_runtime_terms.sql).
 *
 * What it is for: what a memory plan cannot derive from a configuration, measured once
 * per build and machine from a probe run's three witnesses and stored per phase and term:
 *   workspace   heap peak of category workspace beyond the plan's (oneDNN's scratch,
 *               primitive and JIT buffers)
 *   untagged    heap peak of category other beyond the plan's and beyond blas_buffer
 *               (libraries' own allocations: OpenMP, the loader, stdio)
 *   blas_buffer OpenBLAS's buffers (blas_memory_alloc): 128 MiB of address space per
 *               thread mmap'ed when the library is loaded (a plugin linking LAPACKE:
 *               quantize, prune, ...) and one more for the first LAPACK call of the main
 *               thread (GPTQ, SparseGPT); never touched by memtrade's kernels, so never
 *               resident. The probe's sites of that function, at most the phase's
 *               category other beyond the plan.
 *   heap_other  the phase's heap peak minus its plan minus the two above (categories
 *               peaking at other moments, rounding of the profiler's sampling)
 *   resident    the phase's resident peak (<phase>_rss_peak_bytes) minus its heap peak:
 *               thread stacks, code, libraries' data, allocator slack
 *   accounted   the engine's own accounted peak of the phase (<phase>_peak_bytes: what
 *               infer_peak_bytes and train_peak_bytes report) minus the plan without the
 *               corpus: kernels' scratch the plan does not size (0 where the plan is
 *               exact). Part of the heap terms above, not added to them; what `memtrade
 *               fit`, which budgets the accounted figure, adds to a plan.
 * so heap ~ plan + workspace + untagged + blas_buffer + heap_other and RSS ~ that +
 * resident. The key is (build id, machine, class). Build and machine come from a run's
 * facts JSON (harness/facts.h) by one SQL definition, MT_RUNTIME_BUILD_SQL /
 * MT_RUNTIME_MACHINE_SQL, for writers and readers. The class is what changes the terms
 * within one build and machine: the workload (the kernels and libraries it loads), the
 * values of the parameters in MT_RUNTIME_CLASS_KEYS (shapes, data types, kernels and
 * methods: what oneDNN and OpenBLAS are given), the threads, and the run's history
 * (`trained=yes` when a training loop ran in the process before or during the phase:
 * oneDNN keeps the primitives and buffers training created, 4-14 MiB on tiny, into the
 * phases after it; `trained=no` when the model was loaded from the cache). Parameters
 * outside the list (steps, seed, learning rates, bit widths, KV formats, sparsity, ...)
 * are taken not to change the terms: tests/harness/runtime.sh checks that on tiny for
 * each knob. MT_RUNTIME_CLASS_SQL (a stored run) and mt_runtime_class (a configuration
 * not yet run) are the two forms of that one definition; the test checks they agree.
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
    "(COALESCE(json_extract(" F ", '$.git_rev'), '?') || ' ' || COALESCE(json_extract(" F          \
    ", '$.compiler'), '?') || ' ' || COALESCE(json_extract(" F ", '$.build_type'), '?') ||"        \
    " ' [' || COALESCE(json_extract(" F ", '$.flags'), '?') || '] onednn ' ||"                     \
    " COALESCE(json_extract(" F ", '$.onednn'), '?'))"
#define MT_RUNTIME_MACHINE_SQL(F)                                                                  \
    "(COALESCE(json_extract(" F ", '$.cpu'), '?') || ', ' || COALESCE(json_extract(" F             \
    ", '$.cores'), '?') || ' cores, ' || COALESCE(json_extract(" F ", '$.kernel'), '?'))"

/* The parameters whose values are part of the class, in SQL list form, sorted. */
#define MT_RUNTIME_CLASS_KEYS                                                                      \
    "'accum_steps','activations','attention','base','batch','device','device_precision',"          \
    "'eval_tokens','kernel','method','micro_batch','model','n_kv_head','precision','seq',"         \
    "'storage','student','student_channels','student_heads','student_layers','teacher_cache',"     \
    "'tokenizer','window'"
/* The class of the stored run R (an alias of table runs), as SQL:
 * "WORKLOAD k=v ... threads=N trained=yes|no", the k=v of MT_RUNTIME_CLASS_KEYS in key
 * order, trained=yes when the run has a region named `train`. */
#define MT_RUNTIME_CLASS_SQL(R)                                                                    \
    "(" R ".workload || COALESCE((SELECT group_concat(kv, '') FROM (SELECT ' ' || key || '=' ||"   \
    " value AS kv FROM params WHERE run_id = " R ".id AND key IN (" MT_RUNTIME_CLASS_KEYS ")"      \
    " ORDER BY key)), '') || ' threads=' || COALESCE(" R ".threads, '?') || CASE WHEN EXISTS"      \
    " (SELECT 1 FROM regions WHERE run_id = " R ".id AND name = 'train') THEN ' trained=yes'"      \
    " ELSE ' trained=no' END)"

/* The terms, in the order they are listed. */
#define MT_RUNTIME_TERMS 6
extern const char *const mt_runtime_term_names[MT_RUNTIME_TERMS];

struct mt_runtime_key {
    char build[1024];
    char machine[512];
    char cls[1024]; /* the class; "" when not set */
};

/* Contract: whether parameter `key` is one of MT_RUNTIME_CLASS_KEYS. Pure. */
int mt_runtime_class_key(const char *key);

/* Contract: the class text of a configuration not yet run (the C form of
 * MT_RUNTIME_CLASS_SQL): workload `workload`, resolved parameters keys[i]=vals[i] for i <
 * n (the pairs outside MT_RUNTIME_CLASS_KEYS are left out, the others sorted by key),
 * `threads` and whether the run trains (`trained`), into buf. Returns 0, or -1 when it
 * does not fit in cap. Pure. */
int mt_runtime_class(const char *workload, const char *const *keys, const char *const *vals,
                     size_t n, int threads, int trained, char *buf, size_t cap);

/* Contract: the key of the build and machine that `facts_json` (mt_facts_json) describes.
 * Returns 0, or -1 (not JSON, SQL error). */
int mt_runtime_key(struct mt_store *st, const char *facts_json, struct mt_runtime_key *key);

/* Contract: the key of stored run `run_id` (its facts_json, its class). Returns 0, 1 when
 * the run has no facts, or -1 (unknown run, SQL error). */
int mt_runtime_run_key(struct mt_store *st, int64_t run_id, struct mt_runtime_key *key);

struct mt_runtime_term {
    char phase[64];
    char term[32];
    int has;      /* 0: unavailable, for `unavailable` */
    double bytes; /* may be negative (heap_other) */
    char unavailable[256];
    char probe[256];      /* the probe's configuration */
    char measured_at[32]; /* UTC, ISO 8601 */
};

/* Contract: the terms of every planned phase of run `probe_run` of `st`, derived from its
 * stored witnesses (plan_<phase>_peak_bytes per category, the heap profiler's
 * heap_peak_bytes of region <phase> on rank 0, <phase>_rss_peak_bytes, its allocation
 * sites of blas_memory_alloc), into *out
 * (malloc'd, the caller frees; NULL when the run has no plan) and *n, each with `probe`
 * as its probe text. A phase the probe never entered (no heap figure) gets its terms
 * unavailable with the reason, as does `resident` without the phase's resident peak.
 * Reads only. Returns 0, or -1. */
int mt_runtime_derive(struct mt_store *st, int64_t probe_run, const char *probe,
                      struct mt_runtime_term **out, size_t *n);

/* Contract: stores terms[0..n) under `key` (its class too), replacing those of the same phase and
 * term, measured now, inside the caller's transaction or its own. Returns 0, or -1. */
int mt_runtime_put(struct mt_store *st, const struct mt_runtime_key *key,
                   const struct mt_runtime_term *terms, size_t n);

/* Contract: the terms stored under `key` (its class too), ordered by phase and term, into *out
 * (malloc'd, the caller frees; NULL when none) and *n. Returns 0, or -1. */
int mt_runtime_get(struct mt_store *st, const struct mt_runtime_key *key,
                   struct mt_runtime_term **out, size_t *n);

/* Contract: *id = the first run of `workload` with status ok and id > after (0: none).
 * Returns 0, or -1. */
int mt_runtime_ok_run_after(struct mt_store *st, const char *workload, int64_t after, int64_t *id);

/* Contract: the heap runtime of `phase` among terms[0..n): the sum of its heap terms
 * (all but resident and accounted) into *bytes. Returns 1, or 0 when the phase has no
 * term or one of them is unavailable. Pure. */
int mt_runtime_phase_heap(const struct mt_runtime_term *terms, size_t n, const char *phase,
                          double *bytes);

/* Contract: the runtime status of phase `phase` of stored run `run_id` (issue 21): the
 * heap runtime (mt_runtime_phase_heap) of the terms stored under the run's key (its facts'
 * build and machine, its class), 1 and *bytes; or 0 and why there is none in why[0..cap):
 * the run has no facts, no class of its build and machine was probed, its class was not,
 * the class has no term of the phase, or a term is unavailable in the probe (its reason).
 * *cls (when not NULL, 1024 bytes) gets the run's class. Reads only. Returns 1, 0, or -1. */
int mt_runtime_run_status(struct mt_store *st, int64_t run_id, const char *phase, double *bytes,
                          char *cls, char *why, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
