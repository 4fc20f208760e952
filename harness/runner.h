/* harness/runner.h — starting, watching, stopping and recording one run's process.
 *
 * What it is for: the parent side of a run. mt_runner_start forks; the child puts itself
 * in its own process group, asks to die with the harness (PR_SET_PDEATHSIG), caps its
 * address space (RLIMIT_AS = --mem-limit; not in AddressSanitizer builds), sends its
 * output to <scratch>/output.log and execs `memtrade __child ...` (through the launcher
 * for multi-rank workloads, or any command for `memtrade profile`). mt_runner_poll reaps
 * it, enforces the timeout (SIGTERM to the group, SIGKILL 2 s later) and the memory
 * limit, and reads progress. mt_runner_record ingests the event files and the heap
 * reports into the store and writes the outcome.
 *
 * How a status is decided (in this order):
 *   interrupted  the harness was asked to stop (SIGINT/SIGTERM/SIGHUP) and killed the
 *                run, or the run's events could not be written (a full scratch disk:
 *                the harness stops), or --resume found it left by a killed harness;
 *   timeout      the run outlived --timeout and was killed;
 *   oom          a process of the run had more than --mem-limit resident (the harness
 *                polls RSS every 25 ms and kills the group), or the run died or failed
 *                right after running out of address space: a fatal signal or an error
 *                with errno ENOMEM, or a peak virtual size (VmPeak) within 10 % of the
 *                limit; RLIMIT_AS makes an unbounded allocation fail rather than take
 *                the machine;
 *   crashed      killed by a signal (signal stored), or a rank died without reporting;
 *   failed       run() returned non-zero (its mt_error text), or the child could not
 *                start (non-zero exit; its message), or its program (the launcher)
 *                could not be executed;
 *   ok           every rank reported run() == 0 and the process exited 0.
 * peak_rss_bytes (rank -1) comes from wait4's ru_maxrss of the process the harness
 * started (for a launcher: the largest of its descendants); each rank also reports its
 * own (getrusage) as peak_rss_bytes with its rank when the run has several ranks.
 * What it is not for: choosing which run goes next (scheduler.c).
 */
#ifndef MT_HARNESS_RUNNER_H
#define MT_HARNESS_RUNNER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "events.h"
#include "plan.h"
#include "store.h"

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
    size_t warnings;          /* log lines of level warn or error, all ranks */
    char first_warning[512];  /* the first of them, "" when none */
    double reference_s;       /* rank 0's top-level region "reference" (preparing the
                                 reference model: loading it, or training it when it is
                                 not cached), left out of the stored wall_s */
};

/* Contract: creates the job's scratch folder (with run.txt naming the database and the
 * run, for --resume) and starts its process. `job` must have plan or command, run_id,
 * ranks, mem_limit and timeout_s set. Returns 0, or -1 with err (nothing left running). A
 * program that cannot be executed (a missing launcher) is not an error here: the job is
 * returned reaped with exec_errno set, and mt_runner_record records it `failed` with the
 * reason. */
int mt_runner_start(const struct mt_runner_opts *o, struct mt_job *job, char *err, size_t errlen);

/* Contract: one watch step at time `now` (CLOCK_MONOTONIC seconds): reaps the process
 * if it ended, kills it on timeout or over the memory limit, reads new progress. Returns
 * 1 once the job is reaped (then call mt_runner_record), else 0. */
int mt_runner_poll(struct mt_job *job, double now);

/* Contract: asks the job to stop because the harness is stopping (SIGTERM now, SIGKILL
 * after 2 s through later polls); the run will be recorded as interrupted. */
void mt_runner_interrupt(struct mt_job *job, double now);

/* Contract: after the job is reaped: ingests every rank's events (and heap reports when
 * the heap profiler ran) into the store in one transaction, decides the status (see the
 * top of this file), writes the outcome, removes the scratch folder (unless kept), and
 * frees the job's readers. *status gets the outcome. Returns 0; -1 on a database error
 * (message from the store in err): then the scratch folder stays, with outcome.txt, and
 * --resume stores it (recover.h); -2 when the run's measurements were lost to a system
 * fault (a child could not write its event file: a full scratch disk): the run is
 * recorded `interrupted` with the cause, err says it, and the caller should stop. */
int mt_runner_record(struct mt_store *st, const struct mt_runner_opts *o, struct mt_job *job,
                     enum mt_run_status *status, char *err, size_t errlen);

/* Contract: monotonic clock in seconds. */
double mt_runner_now(void);

#endif
