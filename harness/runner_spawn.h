/* harness/runner_spawn.h — the watchdog: starting one run's process, watching it and
 * reaping it.
 *
 * What it is for: mt_runner_start forks; the child puts itself in its own process group,
 * asks to die with the harness (PR_SET_PDEATHSIG), caps its address space (RLIMIT_AS =
 * --mem-limit; not in AddressSanitizer builds), sends its output to <scratch>/output.log
 * and execs `memtrade __child ...` (through the launcher for multi-rank workloads, or any
 * command for `memtrade profile`). mt_runner_poll reaps it, enforces the timeout (SIGTERM
 * to the group, SIGKILL 2 s later) and the memory limit (the largest resident process of
 * the group, polled by the caller every 25 ms, killed over the limit), and reads progress.
 * What it sets in struct mt_job (timed_out, oom_killed, interrupted, exec_errno, wstatus,
 * ru, wall_s) is what runner_record.h decides the status from.
 * What it is not for: reading what the run reported or deciding its status
 * (runner_record.h); the child's side (child/child.h).
 */
#ifndef MT_HARNESS_RUNNER_SPAWN_H
#define MT_HARNESS_RUNNER_SPAWN_H

#include <stddef.h>

#include "runner.h"

/* Contract: creates the job's scratch folder (with run.txt naming the database and the
 * run, for --resume) and starts its process. `job` must have plan or command, run_id,
 * ranks, mem_limit and timeout_s set. Returns 0, or -1 with err (nothing left running). A
 * program that cannot be executed (a missing launcher) is not an error here: the job is
 * returned reaped with exec_errno set, and mt_runner_record records it `failed` with the
 * reason. On success the job owns one progress reader per rank, freed by
 * mt_runner_record. Not thread-safe (fork); call from the harness's main thread. */
int mt_runner_start(const struct mt_runner_opts *o, struct mt_job *job, char *err, size_t errlen);

/* Contract: one watch step at time `now` (mt_runner_now): reaps the process if it ended
 * (and kills anything it left in its process group), kills it on timeout or over the
 * memory limit, reads new progress into done/total. Never blocks. Returns 1 once the job
 * is reaped (then call mt_runner_record), else 0. */
int mt_runner_poll(struct mt_job *job, double now);

/* Contract: asks the job to stop because the harness is stopping (SIGTERM now, SIGKILL
 * after 2 s through later polls); the run will be recorded as interrupted. Does nothing
 * to a job already reaped or already interrupted. */
void mt_runner_interrupt(struct mt_job *job, double now);

/* Contract: monotonic clock (CLOCK_MONOTONIC) in seconds; thread-safe. */
double mt_runner_now(void);

#endif
