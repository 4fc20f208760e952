/* heap_tracker.h — the tracker of the heap profiler: exact counters, block headers, the
 * large-block table and the per-(stack, category) sites.
 *
 * What it is for: the one door to the tracker's state. The hooks record and forget blocks
 * through the inline functions of the first part (they run on every malloc and free, so
 * they are inlined into the hooks); the output, SDE, mappings and tags modules read and
 * change it through the functions of the second part. What it is not for: capturing
 * stacks (heap_stacks.h), deciding what is sampled (heap_sample.h), writing anything.
 *
 * Locking: functions marked "lock held" expect the caller to hold mt_heap_lock (taken with
 * mt_heap_lock_tracking); the others take it themselves or say so.
 */
#ifndef MT_HEAP_TRACKER_H
#define MT_HEAP_TRACKER_H

#include "heap_internal.h"
#include "heap_sample.h"

#include <time.h>

/* ---- block headers -------------------------------------------------------------------
 *
 * Every block the malloc family hands out carries 16 bytes of ours right below it: its
 * requested size, site and category. A free reads them next to glibc's own chunk header,
 * in a cache line glibc touches anyway, so exact per-category counters cost no table
 * lookup (a table of every live block cost a cache miss per malloc and per free). The
 * real block starts 2^shift bytes lower (16; an aligned block's alignment). */
struct mt_heap_hdr {
    uint64_t size; /* requested */
    union {
        struct {
            uint32_t site; /* MT_HEAP_NO_SITE when the block has no stack */
            uint8_t cat;
            uint8_t
                flags; /* MT_REC_TRACKED (counted), MT_REC_TABLE (also recorded), MT_REC_TENSORS */
            uint8_t shift;
            uint8_t magic;
        };
        uint64_t tail; /* the four above, written with one store */
    };
};
enum { MT_HDR = 16, MT_HDR_SHIFT = 4, MT_HDR_MAGIC = 0xa5 };
_Static_assert(sizeof(struct mt_heap_hdr) == MT_HDR, "header size");

static inline struct mt_heap_hdr *mt_heap_hdr_of(const void *p)
{
    return (struct mt_heap_hdr *)p - 1;
}

/* The last 8 bytes of a header as one word (x86-64 and every target we build for are
 * little-endian: site in the low half, magic in the top byte). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "header word layout");
static inline uint64_t mt_heap_hdr_tail(uint32_t site, int cat, uint8_t flags, unsigned shift)
{
    return (uint64_t)site | (uint64_t)(uint8_t)cat << 32 | (uint64_t)flags << 40 |
           (uint64_t)shift << 48 | (uint64_t)MT_HDR_MAGIC << 56;
}

/* Writes the whole header of block p (handed out 2^shift bytes above its real block). */
static inline void mt_heap_hdr_set(void *p, uint64_t n, uint32_t site, int cat, uint8_t flags,
                                   unsigned shift)
{
    struct mt_heap_hdr *d = mt_heap_hdr_of(p);
    d->size = n;
    d->tail = mt_heap_hdr_tail(site, cat, flags, shift);
}

/* Writes the header of a fresh real block (not yet counted); returns the pointer handed
 * out, 2^shift bytes above `real`. */
static inline void *mt_heap_hdr_init(void *real, unsigned shift, uint64_t n)
{
    char *p = (char *)real + ((size_t)1 << shift);
    mt_heap_hdr_set(p, n, MT_HEAP_NO_SITE, 0, 0, shift);
    return p;
}

/* ---- the hot path (inlined into the hooks) ------------------------------------------ */

#define MT_TRK mt_heap_g.trk

/* *x += n, as one addition in memory on x86-64: where a rare branch before it also reads *x
 * (mt_heap_site_touch), GCC would otherwise keep the value in a register and store it back. */
static inline __attribute__((always_inline)) void mt_heap_add_mem(long long *x, long long n)
{
#if defined(__x86_64__)
    __asm__("addq %1, %0" : "+m"(*x) : "er"(n) : "cc");
#else
    *x += n;
#endif
}

/* *x -= n, as mt_heap_add_mem. */
static inline __attribute__((always_inline)) void mt_heap_sub_mem(long long *x, long long n)
{
#if defined(__x86_64__)
    __asm__("subq %1, %0" : "+m"(*x) : "er"(n) : "cc");
#else
    *x -= n;
#endif
}

/* *x -= n; returns whether *x went below 0. On x86-64 one subtraction in memory whose sign
 * flag the caller branches on (GCC otherwise loads, subtracts, stores and tests). */
static inline __attribute__((always_inline)) int mt_heap_sub_below(long long *x, long long n)
{
#if defined(__x86_64__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
    int below;
    __asm__("subq %2, %0" : "+m"(*x), "=@ccs"(below) : "er"(n));
    return below;
#else
    return (*x -= n) < 0;
#endif
}

static inline struct mt_heap_site *mt_heap_site_at(size_t i)
{
    return &MT_TRK.site_chunks[i / MT_SITE_CHUNK][i % MT_SITE_CHUNK];
}

/* Takes the lock when the tracker still records; returns 1 with the lock held, else 0. */
static inline int mt_heap_lock_tracking(void)
{
    mt_heap_lock();
    if (MT_UNLIKELY(!atomic_load_explicit(&MT_TRK.tracking, memory_order_relaxed))) {
        mt_heap_unlock();
        return 0;
    }
    return 1;
}

/* Whether the tracker records (0 before init and after the report). */
static inline int mt_heap_tracking(void)
{
    return atomic_load_explicit(&MT_TRK.tracking, memory_order_relaxed);
}

/* Starts (init) or stops (exit, with the lock held; a forked child not followed) recording.
 * Disarms this thread's inline path (mt_heap_tls.fast_limit): while the process has one
 * thread, that is every thread's. */
static inline void mt_heap_set_tracking(int on)
{
    atomic_store(&MT_TRK.tracking, on);
    mt_heap_disarm();
}

/* In the child of a fork: the lock the parent's atfork handler held is free again. */
static inline void mt_heap_lock_reset(void)
{
    atomic_store(&MT_TRK.lock, 0);
}

/* Whether any thread is inside the lock now (the _exit path must not wait for it). */
static inline int mt_heap_lock_busy(void)
{
    return atomic_load(&MT_TRK.lock) != 0;
}

/* Whether this thread's allocations are recorded now (not inside the profiler itself). */
static inline int mt_heap_should_record(void)
{
    return !mt_heap_tls.guard && atomic_load_explicit(&MT_TRK.tracking, memory_order_relaxed);
}

/* Called before a site's live bytes change: if a global peak happened since the site last
 * changed, its live bytes then were the current ones, so keep them as its peak share.
 * Lock held. */
static inline void mt_heap_site_touch(struct mt_heap_site *s)
{
    if (s->peak_epoch != MT_TRK.epoch) {
        s->peak_live = s->live + (double)s->n_live;
        s->peak_epoch = MT_TRK.epoch;
    }
}

/* Adds n (may be negative) live bytes to category cat, raising its peaks. Lock held. */
static inline void mt_heap_cat_add(int cat, long long n)
{
    struct mt_heap_cats *c = &MT_TRK.c;
    if (MT_UNLIKELY((c->room[cat] -= n) < 0)) { /* above the running peak */
        c->seg_peak[cat] -= c->room[cat];
        c->room[cat] = 0;
        if (c->seg_peak[cat] > c->peak[cat]) c->peak[cat] = c->seg_peak[cat];
    }
}

MT_HIDDEN void mt_heap_new_peak(void);

/* Adds n (>= 0) live bytes to the total, raising its peaks (a new global peak: a new epoch).
 * Lock held. */
static inline void mt_heap_total_add(long long n)
{
    struct mt_heap_cats *c = &MT_TRK.c;
    if (MT_UNLIKELY((c->room_total -= n) < 0)) {
        c->seg_peak_total -= c->room_total;
        c->room_total = 0;
        if (c->seg_peak_total > c->peak_total) mt_heap_new_peak();
    }
}

/* Takes n live bytes out of category cat and the total. Lock held. */
static inline void mt_heap_cat_sub(int cat, long long n)
{
    MT_TRK.c.room[cat] += n;
    MT_TRK.c.room_total += n;
}

/* Counts an allocation of n bytes of weight w at site (not MT_HEAP_NO_SITE). Lock held. */
static inline __attribute__((always_inline)) void mt_heap_site_alloc(uint32_t site, uint64_t n,
                                                                     double w)
{
    struct mt_heap_site *s = mt_heap_site_at(site);
    mt_heap_site_touch(s);
    s->allocs += w;
    s->bytes += w * (double)n;
    s->live += w * (double)n;
    s->live_allocs += w;
}

/* mt_heap_site_alloc with weight 1 (full mode's hot path), in the site's integers. */
static inline __attribute__((always_inline)) void mt_heap_site_alloc1(uint32_t site, uint64_t n)
{
    struct mt_heap_site *s = mt_heap_site_at(site);
    mt_heap_site_touch(s);
    s->n_allocs++;
    s->n_bytes += (long long)n;
    mt_heap_add_mem(&s->n_live, (long long)n);
    s->n_live_allocs++;
}

/* Counts a new block (or mapping) p of n bytes in cat at site. Lock held. */
static inline __attribute__((always_inline)) void mt_heap_account_alloc(uintptr_t p, uint64_t n,
                                                                        int cat, uint32_t site)
{
    struct mt_heap_cats *c = &MT_TRK.c;
    c->allocs[cat]++;
    c->bytes[cat] += (long long)n;
    mt_heap_cat_add(cat, (long long)n);
    if (site != MT_HEAP_NO_SITE) mt_heap_site_alloc(site, n, mt_heap_sample_weight(n));
    mt_heap_total_add((long long)n);
    MT_TRK.last_alloc = p;
}

/* Removes `n` bytes of a block (all of it, or a partial unmap) from the counters. Lock
 * held. */
static inline void mt_heap_account_release(uint64_t n, int cat, uint32_t site, double w)
{
    mt_heap_cat_sub(cat, (long long)n);
    if (site != MT_HEAP_NO_SITE) {
        struct mt_heap_site *s = mt_heap_site_at(site);
        mt_heap_site_touch(s);
        s->live -= w * (double)n;
    }
}

MT_HIDDEN void mt_heap_tensors_detach(uintptr_t block); /* heap_tags.c, lock held */

/* Counts the free of the block described by r (whole). Lock held. */
static inline __attribute__((always_inline)) void mt_heap_account_free(const struct mt_heap_rec *r)
{
    if (r->flags & MT_REC_TENSORS) mt_heap_tensors_detach(r->ptr);
    MT_TRK.c.frees[r->cat]++;
    if (MT_LIKELY(r->site == MT_HEAP_NO_SITE)) {
        mt_heap_cat_sub(r->cat, (long long)r->size);
        if (r->ptr == MT_TRK.last_alloc) MT_TRK.last_alloc = 0;
        return;
    }
    double w = mt_heap_sample_weight(r->size);
    mt_heap_account_release(r->size, r->cat, r->site, w);
    struct mt_heap_site *s = mt_heap_site_at(r->site);
    s->live_allocs -= w;
    if (r->ptr == MT_TRK.last_alloc) {
        s->temporary += w;
        MT_TRK.last_alloc = 0;
    }
}

/* Large-block table (heap_tracker.c), lock held. rec_put inserts (ptr, size, site, cat,
 * flags): 1 if a record for ptr existed (copied to *old), 0 if not, -1 out of memory. The
 * fields come by value: copying a struct just built on the stack is a 16-byte load of two
 * 8-byte stores, which store-to-load forwarding cannot serve. rec_take removes the record
 * of p into *out; returns 1 if there was one. rec_find: the record of p or NULL; rec_around:
 * the record whose block contains p, or NULL (a scan). */
MT_HIDDEN int mt_heap_rec_put(uintptr_t ptr, uint64_t size, uint32_t site, uint8_t cat,
                              uint8_t flags, struct mt_heap_rec *old);
MT_HIDDEN int mt_heap_rec_take(uintptr_t p, struct mt_heap_rec *out);
MT_HIDDEN struct mt_heap_rec *mt_heap_rec_find(uintptr_t p);
MT_HIDDEN struct mt_heap_rec *mt_heap_rec_around(uintptr_t p);

MT_HIDDEN void mt_heap_point_if_due(void); /* heap_output.c */

/* Counts block p of n bytes, below a page, in category cat at site (MT_HEAP_NO_SITE: no
 * stack) and writes its header (its real block 2^shift bytes below). Lock held, or
 * mt_heap_solo() (no table changes here). */
static inline __attribute__((always_inline)) void mt_heap_count_small(void *p, uint64_t n, int cat,
                                                                      uint32_t site, unsigned shift)
{
    mt_heap_hdr_set(p, n, site, cat, MT_REC_TRACKED, shift);
    mt_heap_account_alloc((uintptr_t)p, n, cat, site);
}

/* mt_heap_count_small for a block of any size: one of a page or more also goes into the
 * large-block table. Lock held. */
static inline __attribute__((always_inline)) void mt_heap_count_block(void *p, uint64_t n, int cat,
                                                                      uint32_t site, unsigned shift)
{
    if (MT_LIKELY(n < (uint64_t)mt_heap_g.cfg.page_size)) {
        mt_heap_count_small(p, n, cat, site, shift);
        return;
    }
    uint8_t flags = MT_REC_TRACKED; /* tensors may live in it */
    struct mt_heap_rec stale;
    if (mt_heap_rec_put((uintptr_t)p, n, site, (uint8_t)cat, 0, &stale) >= 0) flags |= MT_REC_TABLE;
    mt_heap_hdr_set(p, n, site, cat, flags, shift);
    mt_heap_account_alloc((uintptr_t)p, n, cat, site);
}

/* Every few hundred allocations (of this thread's category, the one just counted), a
 * timeline point when one is due (no helper thread). The category is read again, not
 * passed: the hooks then keep no register for it across the calls of their rare paths. */
static inline __attribute__((always_inline)) void mt_heap_point_check(void)
{
    if (MT_UNLIKELY((MT_TRK.c.allocs[mt_heap_tls.cat] & 255) == 0)) mt_heap_point_if_due();
}

/* mt_heap_count_small with mt_heap_solo() (a site only in full mode: weight 1, counted in
 * the site's integers; the header word given, mt_heap_hdr_tail(site, cat, MT_REC_TRACKED,
 * shift)), minus two rare steps: a raised running peak and the timeline point (only when
 * `point`: sampled mode's inline path leaves the timeline to the sampler's slow path, which
 * runs every R bytes on average). Returns nonzero when one of them is due: the caller then
 * calls mt_heap_count_settle(cat). Split so that the hooks' common cases keep no register
 * across a call (their rare steps all happen in that one call). */
static inline __attribute__((always_inline)) int
mt_heap_count_quick(void *p, uint64_t n, unsigned cat, uint32_t site, uint64_t tail, int point)
{
    struct mt_heap_cats *c = &MT_TRK.c;
    struct mt_heap_hdr *d = mt_heap_hdr_of(p);
    d->size = n;
    d->tail = tail;
    long long a = ++c->allocs[cat];
    c->bytes[cat] += (long long)n;
    if (site != MT_HEAP_NO_SITE) mt_heap_site_alloc1(site, n);
    MT_TRK.last_alloc = (uintptr_t)p;
    if (MT_UNLIKELY(mt_heap_sub_below(&c->room_total, (long long)n))) {
        c->room[cat] -= (long long)n;
        return 1;
    }
    if (MT_UNLIKELY(mt_heap_sub_below(&c->room[cat], (long long)n))) return 1;
    return point && (a & 255) == 0;
}

/* Sampled mode's inline allocation into the room (heap_internal.h, struct mt_heap_room),
 * when it is not due for a sample (mt_heap_room_due first): writes the header of block p
 * (n bytes, header word `tail`: the room's, or an aligned block's of the room's category)
 * and counts it there. Returns nonzero when the room went below 0 (a running peak may have
 * risen): the caller then calls mt_heap_room_settle. Armed, sampled mode, one thread (the
 * room is then open for this thread's category). */
static inline __attribute__((always_inline)) int mt_heap_room_take(void *p, uint64_t n,
                                                                   uint64_t tail)
{
    struct mt_heap_room *r = &MT_TRK.room;
    struct mt_heap_hdr *d = mt_heap_hdr_of(p);
    d->size = n;
    d->tail = tail;
    r->allocs++; /* and no last_alloc: pending allocations of the room make it stale */
    return mt_heap_sub_below(&r->left, (long long)n);
}

/* Counts n bytes against the room's sampling countdown; returns nonzero when they reach it
 * (the block is sampled: the caller gives them back, r->due -= n, and takes the slow path,
 * which closes the room and hands the countdown back first). On x86-64 one addition in
 * memory whose sign flag the caller branches on. */
static inline __attribute__((always_inline)) int mt_heap_room_due(uint64_t n)
{
#if defined(__x86_64__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
    int due;
    __asm__("addq %2, %0" : "+m"(MT_TRK.room.due), "=@ccns"(due) : "er"((long long)n));
    return due;
#else
    return (MT_TRK.room.due += (long long)n) >= 0;
#endif
}

/* Opens the room for category cat (folding what it held) with this thread's sampling
 * countdown and arms its inline malloc path: sampled mode, one thread. mt_heap_solo(). */
MT_HIDDEN void mt_heap_room_open(int cat);
/* The rest of mt_heap_room_take: folds the room, raises the running peaks its category and
 * the total went above, and starts it again from there. mt_heap_solo(). */
MT_HIDDEN void mt_heap_room_settle(void);

/* The rest of mt_heap_count_quick: raises the running peaks (category cat, total) where the
 * block went above them, then writes a timeline point when one is due. mt_heap_solo(). */
MT_HIDDEN void mt_heap_count_settle(int cat);

/* Whether the hooks may change the counters (not the tables) without the lock: the process
 * has one thread (glibc's __libc_single_threaded, which only this thread can clear, in
 * pthread_create: nobody else can be inside the lock) and the tracker records. A signal
 * handler's _exit can then see counters one block apart, never a table half changed. */
static inline int mt_heap_solo(void)
{
    return __libc_single_threaded && atomic_load_explicit(&MT_TRK.tracking, memory_order_relaxed);
}

/* Records block p as mt_heap_count_block does, then releases the lock, which the caller
 * took with mt_heap_lock_tracking. */
static inline __attribute__((always_inline)) void
mt_heap_record_block(void *p, uint64_t n, int cat, uint32_t site, unsigned shift)
{
    mt_heap_count_block(p, n, cat, site, shift);
    mt_heap_unlock();
    mt_heap_point_check();
}

/* Takes a counted block of n bytes in cat out of the per-category counters (not its site's).
 * Lock held, or mt_heap_solo(). */
static inline __attribute__((always_inline)) void mt_heap_uncount_cat(int cat, long long n)
{
    MT_TRK.c.frees[cat]++;
    mt_heap_cat_sub(cat, n);
}

/* Takes block p of n bytes and weight w out of its site's counters (site known). For a
 * block without site, last_alloc needs no reset: whatever is next recorded at this address
 * sets it. Lock held, or mt_heap_solo(). */
static inline __attribute__((always_inline)) void mt_heap_uncount_site(const void *p, uint32_t site,
                                                                       long long n, double w)
{
    struct mt_heap_site *s = mt_heap_site_at(site);
    mt_heap_site_touch(s);
    s->live -= w * (double)n;
    s->live_allocs -= w;
    if ((uintptr_t)p == MT_TRK.last_alloc) { /* the room's allocations came after it */
        if (!MT_TRK.room.allocs) s->temporary += w;
        MT_TRK.last_alloc = 0;
    }
}

/* mt_heap_uncount_site with weight 1 (full mode's hot path), in the site's integers. */
static inline __attribute__((always_inline)) void mt_heap_uncount_site1(const void *p,
                                                                        uint32_t site, long long n)
{
    struct mt_heap_site *s = mt_heap_site_at(site);
    mt_heap_site_touch(s);
    mt_heap_sub_mem(&s->n_live, n);
    s->n_live_allocs--;
    if ((uintptr_t)p == MT_TRK.last_alloc) {
        s->temporary += 1.0;
        MT_TRK.last_alloc = 0;
    }
}

/* Takes a counted block outside the large-block table and holding no tensors (flags ==
 * MT_REC_TRACKED: the common case, inlined in free) out of the counters, and its site's.
 * Lock held, or mt_heap_solo(). */
static inline __attribute__((always_inline)) void mt_heap_uncount_plain(const void *p,
                                                                        const struct mt_heap_hdr *h)
{
    long long n = (long long)h->size;
    mt_heap_uncount_cat(h->cat, n);
    if (h->site != MT_HEAP_NO_SITE)
        mt_heap_uncount_site(p, h->site, n, mt_heap_sample_weight((uint64_t)n));
}

/* mt_heap_uncount_plain, taking the lock unless mt_heap_solo(). Lock not held. */
static inline __attribute__((always_inline)) void mt_heap_forget_plain(const void *p,
                                                                       const struct mt_heap_hdr *h)
{
    if (MT_LIKELY(mt_heap_solo())) {
        mt_heap_uncount_plain(p, h);
        return;
    }
    if (!mt_heap_lock_tracking()) return;
    mt_heap_uncount_plain(p, h);
    mt_heap_unlock();
}

/* Takes a block out of the counters (and the table), from its header. Lock not held. */
static inline __attribute__((always_inline)) void mt_heap_forget_block(void *p,
                                                                       const struct mt_heap_hdr *h)
{
    struct mt_heap_rec r = {
        .ptr = (uintptr_t)p, .size = h->size, .site = h->site, .cat = h->cat, .flags = h->flags};
    if (!mt_heap_lock_tracking()) return;
    if (MT_UNLIKELY(r.flags & MT_REC_TABLE)) {
        struct mt_heap_rec gone;
        mt_heap_rec_take(r.ptr, &gone);
    }
    mt_heap_account_free(&r);
    mt_heap_unlock();
}

/* ---- the interface for the other modules ------------------------------------------- */

/* The site of (frames, depth) in category cat, created when new; h is hash of the frames
 * (mt_heap_hash_frames). MT_HEAP_NO_SITE when out of memory. Lock held. */
MT_HIDDEN uint32_t mt_heap_site_get(uint64_t h, const uintptr_t *frames, int depth, int cat);
MT_HIDDEN uint64_t mt_heap_hash_frames(const uintptr_t *f, int depth);

/* Mappings (heap_maps.c), lock held. Releases n bytes of a mapping starting at start, of
 * cat, site and weight w; `whole`: the mapping is gone (a free, temporary when it was the
 * last allocation). */
static inline void mt_heap_account_unmap(uintptr_t start, uint64_t n, int cat, uint32_t site,
                                         double w, int whole)
{
    mt_heap_account_release(n, cat, site, w);
    if (!whole) return;
    MT_TRK.c.frees[cat]++;
    struct mt_heap_site *s = site != MT_HEAP_NO_SITE ? mt_heap_site_at(site) : NULL;
    if (s) s->live_allocs -= w;
    if (start == MT_TRK.last_alloc) {
        if (s) s->temporary += w;
        MT_TRK.last_alloc = 0;
    }
}

/* A mapping of site split in two pieces: one more live piece at the site. Lock held. */
static inline void mt_heap_account_split(uint32_t site, double w)
{
    if (site != MT_HEAP_NO_SITE) mt_heap_site_at(site)->live_allocs += w;
}

/* Tensors (heap_tags.c), lock held: moves n live bytes (and, when `counted`, n allocated
 * bytes) from category `from` to `to`, and w * n between sites sf and st when both are
 * known. */
MT_HIDDEN void mt_heap_tracker_move(int from, int to, long long n, uint32_t sf, uint32_t st,
                                    double w, int counted);
/* Regions (heap_tags.c), lock held: raises *peak_total and peak[] to the peaks since the
 * last restart; restart: the running peaks start again at the live bytes of now. */
MT_HIDDEN void mt_heap_tracker_fold_peaks(long long *peak_total, long long peak[MT_HEAP_NCAT]);
MT_HIDDEN void mt_heap_tracker_restart_peaks(void);

/* Counts one stack's origin (hit: from the stack cache, else unwound). Lock held. */
static inline void mt_heap_count_stack(int hit)
{
    MT_TRK.stack_hits += hit != 0;
    MT_TRK.stack_unwinds += hit == 0;
}

/* At exit: each site's share of the last global peak, and its leaks (still live). Lock
 * held, tracking stopped. */
MT_HIDDEN void mt_heap_tracker_finish_sites(void);

/* The exact counters, for PAPI SDE to read in place (they change under the lock): peak
 * and peak_total only (sampled mode's room holds allocs, frees, bytes and live bytes
 * for a while); live bytes and allocation calls through the functions below. */
MT_HIDDEN struct mt_heap_cats *mt_heap_tracker_counters(void);
/* Live bytes of category cat (-1: all categories), allocation calls of category cat and
 * in all, now, without the lock (an instant read, as SDE's in-place counters are; with
 * one thread the room is folded in first). */
MT_HIDDEN long long mt_heap_tracker_live_now(int cat);
MT_HIDDEN long long mt_heap_tracker_allocs_of(int cat);
MT_HIDDEN long long mt_heap_tracker_allocs_now(void);
/* Copies the live bytes per category and in all (a consistent pair). Takes the lock. */
MT_HIDDEN void mt_heap_tracker_live(long long live[MT_HEAP_NCAT], long long *total);
/* The exact counters as read out (live bytes, where the tracker keeps room). */
struct mt_heap_totals {
    long long allocs[MT_HEAP_NCAT], frees[MT_HEAP_NCAT], bytes[MT_HEAP_NCAT];
    long long live[MT_HEAP_NCAT], peak[MT_HEAP_NCAT];
    long long allocs_total, live_total, peak_total;
};
/* Copies all exact counters. Takes the lock. */
MT_HIDDEN void mt_heap_tracker_cats(struct mt_heap_totals *out);

/* The run's summary (S lines of FORMAT.md); read after mt_heap_tracker_finish. */
struct mt_heap_summary {
    long long allocs, bytes, peak_bytes, leaked_bytes, leaked_allocs, sites;
    long long stack_unwinds, stack_hits;
    double peak_t;
};
MT_HIDDEN void mt_heap_tracker_summary(struct mt_heap_summary *out);
/* Sites, read-only, after mt_heap_tracker_finish: count and the i-th. */
MT_HIDDEN size_t mt_heap_tracker_site_count(void);
MT_HIDDEN const struct mt_heap_site *mt_heap_tracker_site(size_t i);

#endif
