/* heap_tags.h — the tagging API of memtrade/memcat.h: categories, named tensors, regions.
 *
 * What it is for: the weak-symbol functions a program calls (mt_heap_set_category,
 * mt_heap_report_tensor, mt_heap_set_region, defined in heap_tags.c) and what the rest of
 * the profiler needs of their state. What it is not for: counting blocks (the tracker).
 */
#ifndef MT_HEAP_TAGS_H
#define MT_HEAP_TAGS_H

#include "heap_internal.h"

/* At exit, lock held: folds the peaks since the last region switch into its entry, and
 * moves the leaked bytes of tensors still inside live blocks back to their blocks' sites
 * (after mt_heap_tracker_finish_sites). */
MT_HIDDEN void mt_heap_tags_finish(void);

/* The innermost region's name now (NULL: none); any thread, no lock. */
MT_HIDDEN const char *mt_heap_tags_region_now(void);
/* Read-only views for the report, after mt_heap_tags_finish. */
MT_HIDDEN size_t mt_heap_tags_region_count(void);
MT_HIDDEN const struct mt_heap_region *mt_heap_tags_region(size_t i);
MT_HIDDEN long long mt_heap_tags_regions_dropped(void);
MT_HIDDEN size_t mt_heap_tags_tensor_count(void);
MT_HIDDEN const struct mt_heap_tensor *mt_heap_tags_tensor(size_t i);

#endif
