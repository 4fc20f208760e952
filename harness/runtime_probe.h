/* harness/runtime_probe.h — measuring the plan's runtime terms (results/runtime.h) once
 * per build and machine.
 *
 * What it is for: the probe is an ordinary run of the reference workload (`baseline` on
 * `tiny`, 3 training steps, 2048 evaluation tokens, trained afresh in a temporary model
 * cache so that its train phase runs) started as `memtrade run` in a child process with
 * the heap profiler, into a temporary database of its own (so that the probe joins no
 * trade-off of the user's); its three witnesses give each phase's terms
 * (mt_runtime_derive), stored in the user's database under the key of this build and
 * machine (the probe run's facts, which are this executable's).
 * What it is not for: the terms' arithmetic and storage (results/runtime.c), printing.
 */
#ifndef MT_HARNESS_RUNTIME_PROBE_H
#define MT_HARNESS_RUNTIME_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

struct mt_store;

/* Contract: the key of this build and machine (the facts every run stores). Returns 0, or
 * -1 with mt_store_error(st). */
int mt_runtime_probe_key(struct mt_store *st, struct mt_runtime_key *key);

/* The probe's configuration, as stored with its terms. */
#define MT_RUNTIME_PROBE "baseline model=tiny steps=3 eval_tokens=2048 (heap sampled)"

/* Contract: runs the probe with executable `exe` (this memtrade) and `threads` threads
 * (0: the run's default), its output to stderr, then stores the terms of this build and
 * machine in database `db` (created when missing). `db` must not be open for writing in
 * this process. Returns 0, or -1 with err (the probe failed: its exit status). */
int mt_runtime_probe_measure(const char *exe, const char *db, int threads, char *err,
                             size_t errlen);

#endif
