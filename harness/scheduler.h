/* harness/scheduler.h — runs a list of planned runs: in grid order, up to --jobs at a
 * time, within a memory budget, with resume, progress and a clean stop.
 *
 * What it is for: `memtrade run` and `memtrade sweep`. Each run gets its `running` row
 * before its process starts and its outcome when it ends (runner.h). Memory: the sum of
 * the running runs' estimates (plan.mem_estimate) stays within the budget; a run larger
 * than the whole budget runs alone, with a warning. Resume: a (config_key, repeat) that
 * already has an `ok` row is skipped. Stop: when *stop becomes non-zero (SIGINT/SIGTERM),
 * no run starts any more, the running ones are killed and recorded `interrupted`.
 * Progress: on a terminal one updating line (run i/N, workload and its parameters, the
 * child's own progress, ETA from the finished runs' wall times); otherwise one plain line
 * per run start and end.
 * What it is not for: parsing sweeps or deciding statuses.
 */
#ifndef MT_HARNESS_SCHEDULER_H
#define MT_HARNESS_SCHEDULER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "plan.h"
#include "runner.h"
#include "store.h"

struct mt_sched_opts {
    const struct mt_runner_opts *runner;
    size_t jobs;         /* >= 1 */
    uint64_t mem_budget; /* bytes */
    int resume;
    int64_t sweep_id; /* 0 = none */
    const char *facts_json;
    FILE *progress;              /* where progress goes (stderr) */
    int tty;                     /* progress is a terminal */
    volatile sig_atomic_t *stop; /* set by the signal handler */
};

struct mt_sched_result {
    size_t planned, skipped, started;
    size_t by_status[MT_RUN_INTERRUPTED + 1];
};

/* Contract: runs every plan (see the top of this file). Returns 0 when every run could
 * be recorded (whatever their statuses; see *res), -1 on a database error (message in
 * err; runs already started are killed first; a finished run's events stay in its scratch
 * folder for --resume), -2 on a system error that prevented starting runs (fork, scratch
 * folder) or lost a run's measurements (its event file could not be written: a full
 * scratch disk); the sweep stops there. */
int mt_sched_run(struct mt_store *st, struct mt_plan *plans, size_t n,
                 const struct mt_sched_opts *o, struct mt_sched_result *res, char *err,
                 size_t errlen);

#endif
