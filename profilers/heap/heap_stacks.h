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

/* ---- the per-thread stack cache ------------------------------------------------------
 *
 * unw_backtrace costs more than everything else in a hook. But a stack is a function of
 * the stack memory: if, at the same stack address, every slot that held a return address
 * of a stack seen before still holds it, unwinding would find the same return addresses.
 * So each thread keeps recent stacks keyed by the hook's frame address, with the offsets
 * of their return-address slots (found by scanning upward for each address unw_backtrace
 * returned, within the thread's stack); a hit costs one load and compare per frame, and
 * also remembers the site of each category. A stack whose slots cannot all be found, or a
 * frame outside the thread's stack (coroutines), is simply not cached. */
enum { MT_SC_SETS = 64, MT_SC_WAYS = 16 };

struct mt_heap_sc_ent {
    uintptr_t anchor; /* 0 = empty */
    uint32_t depth;
    uint32_t vdepth; /* depth rounded up to 4: off and ips repeat the last frame up to it */
    uint32_t failed; /* no slots found for the stack returning to ips[0]: do not rescan */
    uint64_t key;    /* the lookup key it was filed under (see struct mt_heap_sc_hint) */
    uint32_t site[MT_HEAP_NCAT]; /* MT_HEAP_NO_SITE until known */
    uint32_t probe; /* the frame that told this stack from the last other one checked */
    uint64_t hash;
    uint32_t off[MT_HEAP_MAX_FRAMES]; /* slot of ips[k] = anchor + off[k] */
    uintptr_t ips[MT_HEAP_MAX_FRAMES];
};

/* Many stacks can share the hook's frame and return address (every scratch buffer a
 * GEMM library allocates, from each layer). A hint keeps, per (frame, return address),
 * the slot offsets of the first 16 return addresses of a stack cached there; the set is
 * chosen by the values now in those slots, so such stacks spread over the sets. A lookup
 * tries each hint of its (frame, return address) in turn; a stack is filed under the hint
 * of its own slot layout (one is added when none matches), so its key is made of its own
 * return addresses. With a single hint per pair, a stack of another layout read locals
 * in those slots, got a new key at every call and missed every time (half of a training
 * run's allocations unwound, depending on ASLR). Correctness never depends on the hints
 * (entries are validated). */
enum { MT_SC_HINTS = 128, MT_SC_HINT_WAYS = 4, MT_SC_HINT_FRAMES = 16 };
struct mt_heap_sc_hint {
    uintptr_t anchor, ret;
    uint32_t n;
    uint32_t off[MT_SC_HINT_FRAMES];
};

/* The stacks of the last few hits are tried first, by validation alone: a program's
 * allocations mostly come from a few stacks in turn, and comparing their slots (loads
 * that do not depend on each other) costs less than hashing a hint's 16 slots to find
 * the set. */
enum { MT_SC_RECENT = 4 };

struct mt_heap_stack_cache {
    uintptr_t lo, hi; /* this thread's stack */
    unsigned next[MT_SC_SETS];
    uint64_t tag[MT_SC_SETS][MT_SC_WAYS]; /* e[s][w].key, contiguous: a lookup reads one line */
    struct mt_heap_sc_hint hint[MT_SC_HINTS][MT_SC_HINT_WAYS];
    unsigned char hint_next[MT_SC_HINTS]; /* the way to replace next when a row is full */
    struct mt_heap_sc_ent e[MT_SC_SETS][MT_SC_WAYS];
    struct mt_heap_sc_ent *recent[MT_SC_RECENT]; /* entries of the last stacks seen, or NULL */
    unsigned recent_next;
};

/* Whether every return-address slot of e still holds its address. Four slots per step
 * (vdepth is a multiple of 4: the last frame is repeated up to it), without a branch
 * between them: the loads are independent, and a hit (the common case) reads them all
 * anyway. */
static inline int mt_heap_sc_valid(const struct mt_heap_sc_ent *e, uintptr_t anchor)
{
#define SLOT(k) (*(const uintptr_t *)(anchor + e->off[k]) ^ e->ips[k])
    for (uint32_t k = 0; k < e->vdepth; k += 4)
        if (SLOT(k) | SLOT(k + 1) | SLOT(k + 2) | SLOT(k + 3)) return 0;
    return 1;
#undef SLOT
}

/* A recent entry that holds the stack now above anchor, or NULL. Recent entries are never
 * failed ones (stack_lookup drops an entry from them when it marks it failed), and their
 * first slot is the hook's return address, so validation alone decides. Each recent entry
 * first checks the one slot that told it apart from the stack it last failed on: recent
 * stacks that share most frames are then rejected with one compare instead of a validation
 * that runs up to where they part. */
static inline struct mt_heap_sc_ent *mt_heap_sc_recent(const struct mt_heap_stack_cache *c,
                                                       uintptr_t anchor)
{
    for (int k = 0; k < MT_SC_RECENT; k++) {
        struct mt_heap_sc_ent *e = c->recent[k];
        if (!e || e->anchor != anchor) continue;
        uint32_t q = e->probe;
        if (*(const uintptr_t *)(anchor + e->off[q]) != e->ips[q]) continue;
        if (mt_heap_sc_valid(e, anchor)) return e;
        while (*(const uintptr_t *)(anchor + e->off[q]) == e->ips[q])
            q = q + 1 < e->depth ? q + 1 : 0;
        e->probe = q;
    }
    return NULL;
}

/* The site in category cat of the stack above anchor (as for mt_heap_stack_capture) when it
 * is one of this thread's last few stacks, validated slot by slot, and its site in cat is
 * known; else MT_HEAP_NO_SITE (then capture the stack). No lock, no allocation, no guard
 * needed: the hot path of full mode, inline in the hook that calls it. */
static inline __attribute__((always_inline)) uint32_t mt_heap_stack_recent_site(uintptr_t anchor,
                                                                              int cat)
{
    if (MT_UNLIKELY(mt_heap_tls.sc_state != 1)) return MT_HEAP_NO_SITE;
    const struct mt_heap_sc_ent *e = mt_heap_sc_recent(mt_heap_tls.sc, anchor);
    return e ? e->site[cat] : MT_HEAP_NO_SITE;
}

/* From the constructor: per-thread caches are released at thread exit from now on. */
MT_HIDDEN void mt_heap_stacks_init(void);

#endif
