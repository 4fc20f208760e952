/* heap_stacks.h — call stacks of allocations: capture (libunwind) and the per-thread
 * stack cache.
 *
 * What it is for: the stack above a hook, without our own frames, as cheaply as possible
 * (a cache hit costs one load and compare per frame), and its site in the tracker. What
 * it is not for: deciding whether a block gets a stack (heap_sample.h) or counting bytes
 * (heap_tracker.h).
 */
#ifndef MT_HEAP_STACKS_H
#define MT_HEAP_STACKS_H

#include "heap_tracker.h"

struct mt_heap_sc_ent;

/* One captured stack. `sampled` says whether it was wanted at all (0: no stack). */
struct mt_heap_stack {
    int sampled, depth, hit;
    uint64_t hash;
    const uintptr_t *frames;    /* buf, or the cache entry's ips */
    struct mt_heap_sc_ent *ent; /* the cache entry holding this stack, or NULL */
    uint32_t *sites;            /* that entry's site per category, or NULL */
    uintptr_t buf[MT_HEAP_MAX_FRAMES];
};

/* Fills st with the stack above `anchor`, the hook's __builtin_frame_address(0) (its
 * return address lies right above it), when `sampled`; else only marks it unsampled.
 * This thread's recursion guard must be set (libunwind may allocate). */
MT_HIDDEN void mt_heap_stack_capture(struct mt_heap_stack *st, int sampled, uintptr_t anchor);

/* The tracker's site of st in category cat (MT_HEAP_NO_SITE when st is unsampled or the
 * tables are full), remembered in the cache entry. Counts the stack's origin. Lock held.
 * The common case (a cached stack whose site in cat is known) is inline. */
MT_HIDDEN uint32_t mt_heap_stack_site_slow(const struct mt_heap_stack *st, int cat);
static inline uint32_t mt_heap_stack_site(const struct mt_heap_stack *st, int cat)
{
    if (MT_LIKELY(st->sites != NULL) && MT_LIKELY(st->sites[cat] != MT_HEAP_NO_SITE)) {
        mt_heap_count_stack(st->hit);
        return st->sites[cat];
    }
    return mt_heap_stack_site_slow(st, cat);
}

/* The site in category cat of the stack above anchor (as for mt_heap_stack_capture) when it
 * is one of this thread's last few stacks, validated slot by slot, and its site in cat is
 * known; else MT_HEAP_NO_SITE (then capture the stack). No lock, no allocation, no guard
 * needed: the hot path of full mode. */
MT_HIDDEN uint32_t mt_heap_stack_recent_site(uintptr_t anchor, int cat);

/* From the constructor: per-thread caches are released at thread exit from now on. */
MT_HIDDEN void mt_heap_stacks_init(void);

#endif
