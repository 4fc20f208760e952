/* harness/runtime_probe.h — measuring the plan's runtime terms (results/runtime.h) once
 * per build and machine.
 *
 * What it is for: the probe is an ordinary run of the reference workload (`baseline` on
 * `tiny`, 3 training steps, 2048 evaluation tokens, trained afresh in a temporary model
 * cache so that its train phase runs) started as `memtrade run` in a child process with
 * the heap profiler; its three witnesses, stored like any run's, give each phase's terms
 * (mt_runtime_derive), stored under the key of this build and machine (mt_facts_json).
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

/* Contract: runs the probe into database `db` with executable `exe` (this memtrade) and
 * `threads` threads (0: the run's default), its output to stderr, then derives and stores
 * the terms of this build and machine; *probe_run is the probe's run id. The database
 * must not be open for writing in this process (the probe's harness takes the writer
 * lock). Returns 0, or -1 with err (the probe failed: its status and error). */
int mt_runtime_probe_measure(const char *exe, const char *db, int threads, int64_t *probe_run,
                             char *err, size_t errlen);

#endif
