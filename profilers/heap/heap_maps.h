/* heap_maps.h — anonymous private mappings as heap: the list of live ones and their
 * accounting.
 *
 * What it is for: the mmap/munmap/mremap hooks' bookkeeping (bytes counted in the
 * tracker like blocks, partial unmaps split or trim a mapping) and the lookup of the
 * mapping around a tensor. What it is not for: the hooks themselves (heap_hooks.c).
 * All functions: lock held.
 */
#ifndef MT_HEAP_MAPS_H
#define MT_HEAP_MAPS_H

#include "heap_internal.h"

/* Counts mapping [p, p + n) of category cat at site (weight: its sampled-mode weight, 1
 * in full mode). Out of memory: not counted. */
MT_HIDDEN void mt_heap_map_record(void *p, uint64_t n, int cat, uint32_t site, double weight);
/* Removes [lo, hi) from the tracked mappings, releasing the bytes, splitting a mapping
 * that loses its middle. */
MT_HIDDEN void mt_heap_map_remove(uintptr_t lo, uintptr_t hi);
/* Whether any tracked mapping overlaps [lo, hi). */
MT_HIDDEN int mt_heap_map_overlaps(uintptr_t lo, uintptr_t hi);
/* The tracked mapping containing p, or NULL. */
MT_HIDDEN struct mt_heap_map *mt_heap_map_around(uintptr_t p);

#endif
