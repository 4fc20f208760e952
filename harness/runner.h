/* harness/runner.h — one run's process as the parent sees it: the options and the job
 * state that the two halves of the runner share.
 *
 * What it is for: the runner is two modules over one struct mt_job:
 *   runner_spawn.h   starting the process (fork, limits, exec of `memtrade __child`, the
 *                    launcher or any command), watching it (timeout, memory limit,
 *                    progress) and reaping it: the watchdog;
 *   runner_record.h  after the reap: ingesting the event files and heap reports, folding
 *                    ranks into run-level metrics, deciding the status, storing it.
 * The code that runs inside the child lives in child/ (child.h, context.h). Callers
 * include this header and the half they use; the entry points keep the mt_runner_ prefix.
 * What it is not for: choosing which run goes next (scheduler.c) or keeping scratch
 * folders for --resume (recover.h).
 */
#ifndef MT_HARNESS_RUNNER_H
#define MT_HARNESS_RUNNER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "events.h"
#include "plan.h"

struct mt_runner_opts {
    const char *exe;          /* the memtrade executable */
    const char *scratch_root; /* per-run folders are created below it */
    const char *cache_dir;    /* model cache handed to plugins */
    const char *heap_mode;    /* "full", "sampled" or "off" */
    const char *launcher;     /* template with {ranks}, for multi-rank workloads */
    int keep_scratch;         /* keep the per-run folder after it is recorded */
    int shared_cores;         /* runs share the cores (--jobs > 1): OpenMP threads sleep
                                 instead of spinning while they wait */
    const char *db_path;      /* the database the runs go to (named in each scratch folder) */
};

struct mt_job {
    struct mt_plan *plan;    /* borrowed; NULL for `memtrade profile` */
    char *const *command;    /* `memtrade profile`: the program and its arguments */
    const char *heap_absent; /* why the heap profiler cannot see the program; NULL */
    int64_t run_id;
    int ranks;
    uint64_t mem_limit;
    double timeout_s;
    pid_t pid;
    char scratch[4096];
    double started, term_sent; /* CLOCK_MONOTONIC seconds; term_sent 0 = not yet */
    int timed_out, oom_killed, interrupted;
    uint64_t oom_rss; /* the RSS the watchdog saw */
    int reaped, wstatus;
    struct rusage ru;
    double wall_s;
    struct mt_events_reader *progress; /* one per rank */
    double done, total;                /* latest progress of rank 0 */
    int event_ranks;     /* ranks that write an event file (0 for `memtrade profile`) */
    int exec_errno;      /* the program could not be executed (the job is then reaped) */
    char exec_what[512]; /* which program, and where its name came from */
    int rusage_unknown;  /* recovered by --resume after the harness died: no wait4 figures */
    int harness_died;    /* recovered: the harness was killed while the run went on */
    /* filled by mt_runner_record for the terminal: */
    size_t warnings;         /* log lines of level warn or error, all ranks */
    char first_warning[512]; /* the first of them, "" when none */
    double reference_s;      /* rank 0's top-level region "reference" (preparing the
                                reference model: loading it, or training it when it is
                                not cached), left out of the stored wall_s */
};

#endif
