/* harness/runtime_probe.h — measuring the plan's runtime terms (results/runtime.h) once
 * per build, machine and class.
 *
 * What it is for: the probe of a class is an ordinary run of the class's configuration
 * (the workload and parameters asked for, training steps at most 3: the terms do not grow
 * after the first step) started as `memtrade run` in a child process with the heap
 * profiler, into a temporary database, output folder and model cache of its own (so that
 * the probe joins no trade-off of the user's and its model is trained afresh). Its three
 * witnesses give each phase's terms (mt_runtime_derive), stored in the user's database
 * under the probe run's key (its facts, which are this executable's, and its class). When
 * that run trained and cached its model, a second run in the same cache loads it: the
 * class's `trained=no` history, whose phases lack what training leaves in oneDNN (a
 * training workload such as mixed_precision caches nothing, and its second run would
 * have trained again: one run). A class costs one or two runs of a few seconds on tiny
 * (2.6 s each at load 19 on 2 cores).
 * What it is not for: the terms' arithmetic and storage (results/runtime.c), printing.
 */
#ifndef MT_HARNESS_RUNTIME_PROBE_H
#define MT_HARNESS_RUNTIME_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime.h"

struct mt_store;

/* Contract: the key of this build and machine (the facts every run stores). Returns 0, or
 * -1 with mt_store_error(st). */
int mt_runtime_probe_key(struct mt_store *st, struct mt_runtime_key *key);

/* The default probe (`memtrade plan --measure-runtime` without a workload). */
#define MT_RUNTIME_PROBE_WORKLOAD "baseline"
#define MT_RUNTIME_PROBE_PARAMS                                                                    \
    {                                                                                              \
        "model=tiny", "steps=3", "eval_tokens=2048"                                                \
    }

/* The most training steps a probe runs: a parameter named steps or *_steps outside the
 * class keys is cut to this. */
#define MT_RUNTIME_PROBE_STEPS 3

/* Contract: the probe's parameters for a configuration of workload `wl` with resolved
 * values values[0..wl->n_params) of which given[0..ngiven) were named by the user: the
 * given ones as "k=v", and every steps or *_steps parameter outside the class keys cut to
 * MT_RUNTIME_PROBE_STEPS (given or not), into out[] (pointing into buf[], both at least
 * wl->n_params long). Returns how many. */
#define MT_RUNTIME_PROBE_PARAM 600
struct mt_workload;
size_t mt_runtime_probe_params(const struct mt_workload *wl, char *const *values,
                               const char *const *given, size_t ngiven, const char **out,
                               char (*buf)[MT_RUNTIME_PROBE_PARAM]);

/* Contract: runs the probe of `workload` with parameters params[0..n) ("k=v", already cut
 * to MT_RUNTIME_PROBE_STEPS where they count steps) with executable `exe` (this memtrade)
 * and `threads` threads (0: the run's default), its output to stderr, then stores the
 * terms of its class (and of the class's `trained=no` history when the first run trained
 * and a second one loaded its model) in database `db` (created when missing); the
 * classes stored go to classes[0..2) (either may be "") when not NULL. `db` must not be
 * open for writing in this process. Returns 0, or -1 with err (a probe run failed: its
 * exit status). */
int mt_runtime_probe_measure(const char *exe, const char *db, const char *workload,
                             const char *const *params, size_t n, int threads,
                             char classes[2][1024], char *err, size_t errlen);

/* Contract: the two classes of a configuration of workload `wl` with resolved values
 * values[0..wl->n_params) run with `threads` threads: cls[0] when the run trains its model
 * (trained=yes), cls[1] when it loads it (trained=no); `memtrade plan`, `fit` and `run`
 * name a configuration's class by it. Returns 0, or -1 when one does not fit (or out of
 * memory). */
int mt_runtime_probe_classes(const struct mt_workload *wl, char *const *values, int threads,
                             char cls[2][1024]);

/* What mt_runtime_probe_plans did, class by class. */
struct mt_runtime_probe_count {
    size_t classes;  /* distinct classes among the plans with a plan() hook */
    size_t stored;   /* already stored for this build and machine */
    size_t measured; /* probed now */
    size_t failed;   /* probed now, without terms */
    size_t skipped;  /* not probed: multi-rank */
    double probe_s;  /* wall seconds of the probes */
};

/* Contract: `memtrade run|sweep --measure-runtime`: the runtime terms of every distinct
 * class (mt_runtime_probe_classes with the plan's threads) of plans[0..n) whose plugin has
 * a plan() hook, probed once per build and machine: a class with terms stored in `db`
 * (either history) is left alone, the others are probed (mt_runtime_probe_measure: the
 * plan's non-default parameters, its threads), one at a time. A class not probed (its
 * probe failed, or a multi-rank plan: the probe runs single processes) sets runtime_note
 * of each of its plans to why, which their runs store as the reason of their unavailable
 * runtime terms. One line per class on `log` (stored, measured now in S s, failed: why,
 * skipped: why). `dry`: nothing is probed, a missing class is said and counted measured. `db` must
 * not be open for writing in this process. Returns 0 with *count, or -1 with err (out of memory, a
 * database error). */
struct mt_plan;
int mt_runtime_probe_plans(const char *exe, const char *db, struct mt_plan *plans, size_t n,
                           int dry, FILE *log, struct mt_runtime_probe_count *count, char *err,
                           size_t errlen);

#endif
