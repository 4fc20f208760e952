/* harness/heapingest.h — puts one heap profiler report (profilers/heap/FORMAT.md) into the
 * store: frames, stacks, alloc_sites, tensors, the timeline as samples ('heap.live' total
 * and per category, 'rss'), metrics (peak_heap_bytes, peak_<category>_bytes, heap_allocs,
 * leaked_bytes) through a callback, so the runner decides their rank, and the region
 * counters heap_peak_bytes (total and per category) on the region rows already stored.
 * Names go out in the event stream's category forms (heap.live.<category>, ...); the
 * store keeps the category in its own column (metrics.h, mt_metric_split).
 * What it is not for: parsing (heapreport.c does) or deciding run statuses. */
#ifndef MT_HARNESS_HEAPINGEST_H
#define MT_HARNESS_HEAPINGEST_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* A run-level metric from the report: value, or NaN with `reason` when unavailable. */
typedef void (*mt_heapingest_metric_fn)(void *arg, const char *name, double value, const char *unit,
                                        const char *reason);

/* Contract: reads the report at `path` (written by rank `rank`) and writes its rows for
 * run `run_id` inside the caller's transaction; metrics go to `metric`. A report cut
 * short by a crash still gives its timeline; its totals become unavailable with a
 * reason. Returns 0, or -1 with a message (parse or store error) in err. */
int mt_heapingest_file(struct mt_store *st, int64_t run_id, int rank, const char *path,
                       mt_heapingest_metric_fn metric, void *arg, char *err, size_t errlen);

/* Contract: for a rank without a heap report (the profiler was off, or never wrote one):
 * stores heap_peak_bytes as unavailable with `reason` on every region row of (run_id,
 * rank), inside the caller's transaction. Call it after the region rows are stored.
 * Returns 0, or -1 with a message in err. */
int mt_heapingest_no_report(struct mt_store *st, int64_t run_id, int rank, const char *reason,
                            char *err, size_t errlen);

#endif
