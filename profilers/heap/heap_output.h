/* heap_output.h — the report file of the heap profiler (FORMAT.md) and its timeline.
 *
 * What it is for: what the process module and the hooks call to open the report, stream
 * timeline points and append the exit report. What it is not for: anything that records
 * (the report reads the tracker and tags through their interfaces).
 */
#ifndef MT_HEAP_OUTPUT_H
#define MT_HEAP_OUTPUT_H

#include "heap_internal.h"

/* Opens the report for this process and writes the header; no report when it cannot. */
MT_HIDDEN void mt_heap_out_open(int forked);
/* In the child of a fork: drops the parent's report and timeline thread; opens the
 * child's own report when `follow`. */
MT_HIDDEN void mt_heap_out_after_fork(int follow);
/* Whether this process opened the report (a vfork child is not it). */
MT_HIDDEN int mt_heap_out_is_ours(void);
MT_HIDDEN void mt_heap_helper_start(void); /* starts the timeline thread */
MT_HIDDEN void mt_heap_point_if_due(void); /* hooks: writes a point when due, no helper */
MT_HIDDEN void mt_heap_helper_stop(void);  /* stops and joins it */
MT_HIDDEN void mt_heap_write_report(void); /* symbolizes and appends the exit report */

/* heap_sde.c: registers the exact counters as PAPI software-defined events. */
MT_HIDDEN void mt_heap_sde_init(void);

#endif
