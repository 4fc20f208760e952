/* heap_tracker.c — the tracker's tables: sites, the frame arena, the large-block table,
 * new global peaks, and the read side for output and SDE.
 *
 * What it is for: the out-of-line half of heap_tracker.h (the hooks' hot path is inline
 * there). Tables live in pages from the real mmap, never from malloc. What it is not for:
 * stacks (heap_stacks.c), mappings (heap_maps.c), tensors and regions (heap_tags.c).
 */
#define _GNU_SOURCE
#include "heap_tracker.h"

#include <string.h>

#define T mt_heap_g.trk

void mt_heap_new_peak(void)
{
    T.c.peak_total = T.c.seg_peak_total; /* the live bytes now */
    T.epoch++;
    struct timespec ts; /* coarse: a vDSO read, not a clock query, per new peak */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    T.peak_t = (double)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec -
                        mt_heap_g.cfg.t0_coarse_ns) *
               1e-9;
}

void mt_heap_count_settle(int cat)
{
    mt_heap_cat_add(cat, 0); /* room below 0: rises */
    mt_heap_total_add(0);
    mt_heap_point_check();
}

/* ---- sampled mode's room (heap_internal.h) ---------------------------------------- */

/* Moves what the room holds into its category's and the total's counters; the room stays
 * as it is (open or closed) with nothing pending, the countdown left in it. */
static void room_fold(void)
{
    struct mt_heap_room *r = &T.room;
    int k = r->cat;
    long long live = r->base - r->left;
    r->base = r->left;
    T.c.room[k] -= live;
    T.c.room_total -= live;
    T.c.allocs[k] += r->allocs;
    T.c.bytes[k] += r->due + r->budget;
    r->budget = -r->due; /* the countdown left */
    T.c.frees[k] += r->frees;
    if (r->allocs) T.last_alloc = 0; /* the room's blocks came after it */
    r->allocs = r->frees = 0;
}

/* left = base: the smaller of the room's category's and the total's. */
static void room_start(void)
{
    struct mt_heap_room *r = &T.room;
    long long a = T.c.room[r->cat], b = T.c.room_total;
    r->left = r->base = a < b ? a : b;
}

void mt_heap_room_open(int cat)
{
    struct mt_heap_room *r = &T.room;
    mt_heap_room_flush(); /* an open one's countdown handed back first */
    room_fold();          /* what an interrupted inline path left in a closed one */
    r->cat = cat;
    room_start();
    r->budget = mt_heap_tls.countdown;
    r->due = -mt_heap_tls.countdown;
    r->owner = &mt_heap_tls;
    r->tail = mt_heap_hdr_tail(MT_HEAP_NO_SITE, cat, MT_REC_TRACKED, MT_HDR_SHIFT);
    r->open = 1;
    r->limit = (uint64_t)mt_heap_g.cfg.page_size;
}

void mt_heap_room_close(void)
{
    struct mt_heap_room *r = &T.room;
    room_fold();
    if (r->owner == &mt_heap_tls) mt_heap_tls.countdown = r->budget; /* handed back */
    r->owner = NULL;
    r->tail |= (uint64_t)MT_REC_CLOSED << 40; /* a header word still: see heap_internal.h */
    r->open = 0;
    r->limit = 0;
    mt_heap_tls.fast_limit = 0;
}

void mt_heap_room_settle(void)
{
    int k = T.room.cat;
    room_fold();
    mt_heap_cat_add(k, 0); /* room below 0: rises */
    mt_heap_total_add(0);
    room_start();
}

/* ---- sites ------------------------------------------------------------------------ */

uint64_t mt_heap_hash_frames(const uintptr_t *f, int depth)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)depth;
    for (int i = 0; i < depth; i++)
        h = (h ^ f[i]) * 0x100000001b3ULL;
    return mt_heap_mix64(h);
}

static int grow_site_index(void)
{
    size_t cap = T.site_index_cap ? T.site_index_cap * 2 : 4096;
    uint32_t *idx = mt_heap_pages(cap * sizeof *idx);
    if (!idx) return -1;
    for (size_t i = 0; i < T.site_count; i++) {
        size_t j = mt_heap_site_at(i)->hash & (cap - 1);
        while (idx[j])
            j = (j + 1) & (cap - 1);
        idx[j] = (uint32_t)i + 1;
    }
    mt_heap_pages_free(T.site_index, T.site_index_cap * sizeof *idx);
    T.site_index = idx;
    T.site_index_cap = cap;
    return 0;
}

static const uintptr_t *arena_copy(const uintptr_t *f, int depth)
{
    size_t need = (size_t)depth * sizeof *f;
    if (T.arena_used + need > T.arena_cap) {
        size_t cap = 1u << 20;
        char *a = mt_heap_pages(cap);
        if (!a) return NULL;
        T.arena = a; /* the old chunk stays: sites point into it */
        T.arena_used = 0;
        T.arena_cap = cap;
    }
    uintptr_t *dst = (uintptr_t *)(T.arena + T.arena_used);
    memcpy(dst, f, need);
    T.arena_used += need;
    return dst;
}

uint32_t mt_heap_site_get(uint64_t h, const uintptr_t *f, int depth, int cat)
{
    h = mt_heap_mix64(h ^ (uint64_t)cat);
    if ((T.site_count + 1) * 2 > T.site_index_cap && grow_site_index() != 0) return MT_HEAP_NO_SITE;
    size_t mask = T.site_index_cap - 1;
    for (size_t j = h & mask;; j = (j + 1) & mask) {
        uint32_t v = T.site_index[j];
        if (!v) break;
        struct mt_heap_site *s = mt_heap_site_at(v - 1);
        if (s->hash == h && s->cat == (uint32_t)cat && s->depth == (uint32_t)depth &&
            memcmp(s->frames, f, (size_t)depth * sizeof *f) == 0)
            return v - 1;
    }
    size_t i = T.site_count;
    if (i / MT_SITE_CHUNK >= sizeof T.site_chunks / sizeof T.site_chunks[0]) return MT_HEAP_NO_SITE;
    if (!T.site_chunks[i / MT_SITE_CHUNK]) {
        T.site_chunks[i / MT_SITE_CHUNK] =
            mt_heap_pages(MT_SITE_CHUNK * sizeof(struct mt_heap_site));
        if (!T.site_chunks[i / MT_SITE_CHUNK]) return MT_HEAP_NO_SITE;
    }
    const uintptr_t *copy = depth ? arena_copy(f, depth) : NULL;
    if (depth && !copy) return MT_HEAP_NO_SITE;
    struct mt_heap_site *s = mt_heap_site_at(i);
    memset(s, 0, sizeof *s);
    s->hash = h;
    s->frames = copy;
    s->depth = (uint32_t)depth;
    s->cat = (uint32_t)cat;
    s->peak_epoch = T.epoch;
    T.site_count++;
    size_t j = h & mask;
    while (T.site_index[j])
        j = (j + 1) & mask;
    T.site_index[j] = (uint32_t)i + 1;
    return (uint32_t)i;
}

/* ---- the large-block table -------------------------------------------------------- */

/* Fibonacci hashing of the address without its alignment bits. */
static inline size_t rec_slot(uintptr_t p, unsigned shift)
{
    return (size_t)(((uint64_t)(p >> 4) * 0x9e3779b97f4a7c15ULL) >> shift);
}

static int grow_recs(void)
{
    size_t cap = T.rec_cap ? T.rec_cap * 2 : (1u << 14);
    struct mt_heap_rec *t = mt_heap_pages(cap * sizeof *t);
    if (!t) return -1;
    unsigned shift = 64 - (unsigned)__builtin_ctzll(cap);
    for (size_t i = 0; i < T.rec_cap; i++) {
        if (!T.recs[i].ptr) continue;
        size_t j = rec_slot(T.recs[i].ptr, shift);
        while (t[j].ptr)
            j = (j + 1) & (cap - 1);
        t[j] = T.recs[i];
    }
    mt_heap_pages_free(T.recs, T.rec_cap * sizeof *t);
    T.recs = t;
    T.rec_cap = cap;
    T.rec_shift = shift;
    return 0;
}

int mt_heap_rec_put(uintptr_t ptr, uint64_t size, uint32_t site, uint8_t cat, uint8_t flags,
                    struct mt_heap_rec *old)
{
    if (MT_UNLIKELY((T.rec_count + 1) * 2 > T.rec_cap) && grow_recs() != 0) return -1;
    size_t mask = T.rec_cap - 1;
    size_t j = rec_slot(ptr, T.rec_shift);
    while (T.recs[j].ptr && T.recs[j].ptr != ptr)
        j = (j + 1) & mask;
    struct mt_heap_rec *d = &T.recs[j];
    int had = d->ptr != 0;
    if (MT_UNLIKELY(had))
        *old = *d;
    else
        T.rec_count++;
    d->ptr = ptr;
    d->size = size;
    d->site = site;
    d->cat = cat;
    d->flags = flags;
    return had;
}

struct mt_heap_rec *mt_heap_rec_find(uintptr_t p)
{
    if (!T.rec_cap) return NULL;
    size_t mask = T.rec_cap - 1;
    for (size_t j = rec_slot(p, T.rec_shift); T.recs[j].ptr; j = (j + 1) & mask)
        if (T.recs[j].ptr == p) return &T.recs[j];
    return NULL;
}

struct mt_heap_rec *mt_heap_rec_around(uintptr_t p)
{
    struct mt_heap_rec *r = mt_heap_rec_find(p);
    for (size_t i = 0; !r && i < T.rec_cap; i++)
        if (T.recs[i].ptr && T.recs[i].ptr <= p && p < T.recs[i].ptr + T.recs[i].size)
            r = &T.recs[i];
    return r;
}

/* Backward-shift delete keeps probe chains intact without tombstones. */
int mt_heap_rec_take(uintptr_t p, struct mt_heap_rec *out)
{
    struct mt_heap_rec *r = mt_heap_rec_find(p);
    if (!r) return 0;
    *out = *r;
    size_t mask = T.rec_cap - 1;
    size_t i = (size_t)(r - T.recs);
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!T.recs[j].ptr) break;
        size_t home = rec_slot(T.recs[j].ptr, T.rec_shift);
        /* move j back to i unless its home lies cyclically in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            T.recs[i] = T.recs[j];
            i = j;
        }
    }
    T.recs[i].ptr = 0;
    T.rec_count--;
    return 1;
}

/* ---- tensors and regions ------------------------------------------------------- */

void mt_heap_tracker_move(int from, int to, long long n, uint32_t sf, uint32_t st, double w,
                          int counted)
{
    T.c.room[from] += n;
    mt_heap_cat_add(to, n);
    if (counted) {
        T.c.bytes[from] -= n;
        T.c.bytes[to] += n;
    }
    if (sf == MT_HEAP_NO_SITE || st == MT_HEAP_NO_SITE) return;
    struct mt_heap_site *a = mt_heap_site_at(sf), *b = mt_heap_site_at(st);
    double wn = w * (double)n;
    mt_heap_site_touch(a);
    mt_heap_site_touch(b);
    a->live -= wn;
    b->live += wn;
    if (counted) {
        a->bytes -= wn;
        b->bytes += wn;
    }
}

void mt_heap_tracker_fold_peaks(long long *peak_total, long long peak[MT_HEAP_NCAT])
{
    if (T.c.seg_peak_total > *peak_total) *peak_total = T.c.seg_peak_total;
    for (int c = 0; c < MT_HEAP_NCAT; c++)
        if (T.c.seg_peak[c] > peak[c]) peak[c] = T.c.seg_peak[c];
}

void mt_heap_tracker_restart_peaks(void)
{
    T.c.seg_peak_total -= T.c.room_total;
    T.c.room_total = 0;
    for (int c = 0; c < MT_HEAP_NCAT; c++) {
        T.c.seg_peak[c] -= T.c.room[c];
        T.c.room[c] = 0;
    }
}

/* ---- exit and the read side ------------------------------------------------------- */

void mt_heap_tracker_finish_sites(void)
{
    for (size_t i = 0; i < T.site_count; i++) {
        struct mt_heap_site *s = mt_heap_site_at(i);
        mt_heap_site_touch(s);
        s->allocs += (double)s->n_allocs; /* full mode's integers folded in */
        s->bytes += (double)s->n_bytes;
        s->live += (double)s->n_live;
        s->live_allocs += (double)s->n_live_allocs;
        s->n_allocs = s->n_bytes = s->n_live = s->n_live_allocs = 0;
        s->leaked_bytes = s->live;
        s->leaked_allocs = s->live_allocs;
    }
}

struct mt_heap_cats *mt_heap_tracker_counters(void)
{
    return &T.c;
}

long long mt_heap_tracker_live_now(int cat)
{
    if (__libc_single_threaded) mt_heap_room_flush(); /* with threads: closed by the lock */
    if (cat < 0) return T.c.seg_peak_total - T.c.room_total;
    return T.c.seg_peak[cat] - T.c.room[cat];
}

long long mt_heap_tracker_allocs_of(int cat)
{
    if (__libc_single_threaded) mt_heap_room_flush();
    return T.c.allocs[cat];
}

long long mt_heap_tracker_allocs_now(void)
{
    if (__libc_single_threaded) mt_heap_room_flush();
    long long n = 0;
    for (int c = 0; c < MT_HEAP_NCAT; c++)
        n += T.c.allocs[c];
    return n;
}

void mt_heap_tracker_live(long long live[MT_HEAP_NCAT], long long *total)
{
    mt_heap_lock();
    for (int c = 0; c < MT_HEAP_NCAT; c++)
        live[c] = mt_heap_tracker_live_now(c);
    *total = mt_heap_tracker_live_now(-1);
    mt_heap_unlock();
}

void mt_heap_tracker_cats(struct mt_heap_totals *out)
{
    mt_heap_lock();
    memcpy(out->allocs, T.c.allocs, sizeof out->allocs);
    memcpy(out->frees, T.c.frees, sizeof out->frees);
    memcpy(out->bytes, T.c.bytes, sizeof out->bytes);
    memcpy(out->peak, T.c.peak, sizeof out->peak);
    for (int c = 0; c < MT_HEAP_NCAT; c++)
        out->live[c] = mt_heap_tracker_live_now(c);
    out->allocs_total = mt_heap_tracker_allocs_now();
    out->live_total = mt_heap_tracker_live_now(-1);
    out->peak_total = T.c.peak_total;
    mt_heap_unlock();
}

void mt_heap_tracker_summary(struct mt_heap_summary *out)
{
    mt_heap_lock();
    long long leaked_allocs = 0, bytes = 0;
    for (int c = 0; c < MT_HEAP_NCAT; c++) {
        leaked_allocs += T.c.allocs[c] - T.c.frees[c];
        bytes += T.c.bytes[c];
    }
    *out = (struct mt_heap_summary){.allocs = mt_heap_tracker_allocs_now(),
                                    .bytes = bytes,
                                    .peak_bytes = T.c.peak_total,
                                    .leaked_bytes = mt_heap_tracker_live_now(-1),
                                    .leaked_allocs = leaked_allocs,
                                    .sites = (long long)T.site_count,
                                    .stack_unwinds = T.stack_unwinds,
                                    .stack_hits = T.stack_hits,
                                    .peak_t = T.peak_t};
    mt_heap_unlock();
}

size_t mt_heap_tracker_site_count(void)
{
    return T.site_count;
}

const struct mt_heap_site *mt_heap_tracker_site(size_t i)
{
    return mt_heap_site_at(i);
}
