/* harness/runner_record.h — recording one reaped run: its events into the store, its
 * ranks folded into run-level metrics, its status decided.
 *
 * What it is for: after the watchdog (runner_spawn.h) reaped a job, read every rank's
 * event file (metrics, samples, logs, regions and counters, errors, the end of run() or
 * the fatal signal it caught) and the heap profiler's reports, store them in one
 * transaction, aggregate multi-rank metrics as the metric vocabulary says
 * (memtrade/metrics.h: max, sum, mean or rank 0's), and decide the status.
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
 * What it is not for: starting, watching or killing processes (runner_spawn.h); keeping
 * scratch folders for --resume (recover.h), which calls mt_runner_record on what a killed
 * harness left.
 */
#ifndef MT_HARNESS_RUNNER_RECORD_H
#define MT_HARNESS_RUNNER_RECORD_H

#include <stddef.h>

#include "runner.h"
#include "store.h"

/* Contract: after the job is reaped: ingests every rank's events (and heap reports when
 * the heap profiler ran) into the store in one transaction, decides the status (see the
 * top of this file), writes the outcome, removes the scratch folder (unless kept), and
 * frees the job's readers. *status gets the outcome; the job's warnings, first_warning
 * and reference_s are filled for the terminal. Returns 0; -1 on a database error
 * (message from the store in err): then the scratch folder stays, with outcome.txt, and
 * --resume stores it (recover.h); -2 when the run's measurements were lost to a system
 * fault (a child could not write its event file: a full scratch disk): the run is
 * recorded `interrupted` with the cause, err says it, and the caller should stop. Uses
 * `st` from the calling thread only. */
int mt_runner_record(struct mt_store *st, const struct mt_runner_opts *o, struct mt_job *job,
                     enum mt_run_status *status, char *err, size_t errlen);

#endif
