/* harness/witness.h — the three witnesses of a run (issue 21): the plan's prediction, the
 * heap profiler's measured peak and the kernel's RSS, per phase and category, with the
 * residual the plan does not name stored as a metric of its own.
 *
 * What it is for: after a run's events and heap report are stored, asking its plugin for
 * the memory plan (workload.h ABI 1.4) and storing it beside what was measured:
 *   plan_<phase>_peak_<category>_bytes and plan_<phase>_peak_bytes   (the prediction)
 *   <phase>_unaccounted_bytes = heap_peak_bytes of region <phase> - plan_<phase>_peak_bytes
 * (unavailable, with the reason, when the heap profiler has no figure for the region or
 * the run never entered it), and the runtime status of the phase:
 *   <phase>_runtime_bytes  = the runtime terms of the run's build, machine and class
 *                            (results/runtime.h: what the heap holds beyond any plan)
 *   <phase>_residual_bytes = <phase>_unaccounted_bytes - <phase>_runtime_bytes
 * each unavailable with the reason when the class was not probed (or its probe failed:
 * the plan's runtime_note), never 0. peak_rss_bytes and <phase>_rss_peak_bytes (the
 * kernel's) are the runner's already.
 * What it is not for: reading them back (`memtrade query check`, results/), or the plan
 * itself (the plugins').
 */
#ifndef MT_HARNESS_WITNESS_H
#define MT_HARNESS_WITNESS_H

#include <stdint.h>

#include "plan.h"

struct mt_store;

/* Contract: stores the plan of run `run_id` (plugin and params of *p), the residual of
 * each planned phase on rank 0's regions and its runtime status (the terms stored for the
 * run's class in `st`, read after its regions are stored: the class's history is whether
 * a `train` region exists), inside the caller's transaction. A plugin
 * without a plan() hook stores nothing. Returns 0; 1 with err when the plugin's plan()
 * refused the configuration (one whose bytes only the run decides, such as prune's
 * scope=global: nothing stored, the reason is worth a note); -1 with err for a store
 * error. */
int mt_witness_store(struct mt_store *st, int64_t run_id, const struct mt_plan *p, char *err,
                     size_t errlen);

#endif
