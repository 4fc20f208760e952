/* heap_stacks.c — stack capture (libunwind) and the per-thread stack cache.
 *
 * What it is for: mt_heap_stack_capture and mt_heap_stack_site (heap_stacks.h). Each
 * thread's cache lives in pages of its own, released by a pthread key at thread exit.
 * What it is not for: sampling decisions or counters.
 */
#define _GNU_SOURCE
#include "heap_stacks.h"

#include "heap_tracker.h"

#include <string.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

/* Captures the caller's stack without our own frames; returns the depth. */
static __attribute__((noinline)) int capture(uintptr_t *out)
{
    void *buf[MT_HEAP_MAX_FRAMES + 16];
    int n = unw_backtrace(buf, MT_HEAP_MAX_FRAMES + 16);
    int i = 0;
    while (i < n && (uintptr_t)buf[i] >= mt_heap_g.cfg.self_lo &&
           (uintptr_t)buf[i] < mt_heap_g.cfg.self_hi)
        i++;
    int depth = 0;
    for (; i < n && depth < MT_HEAP_MAX_FRAMES; i++)
        out[depth++] = (uintptr_t)buf[i];
    return depth;
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
enum { SC_SETS = 64, SC_WAYS = 16 };

struct mt_heap_sc_ent {
    uintptr_t anchor; /* 0 = empty */
    uint32_t depth;
    uint32_t vdepth; /* depth rounded up to 4: off and ips repeat the last frame up to it */
    uint32_t failed; /* no slots found for the stack returning to ips[0]: do not rescan */
    uint64_t key;    /* the lookup key it was filed under (see struct sc_hint) */
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
enum { SC_HINTS = 128, SC_HINT_WAYS = 4, SC_HINT_FRAMES = 16 };
struct sc_hint {
    uintptr_t anchor, ret;
    uint32_t n;
    uint32_t off[SC_HINT_FRAMES];
};

/* The stacks of the last few hits are tried first, by validation alone: a program's
 * allocations mostly come from a few stacks in turn, and comparing their slots (loads
 * that do not depend on each other) costs less than hashing a hint's 16 slots to find
 * the set. */
enum { SC_RECENT = 4 };

struct mt_heap_stack_cache {
    uintptr_t lo, hi; /* this thread's stack */
    unsigned next[SC_SETS];
    uint64_t tag[SC_SETS][SC_WAYS]; /* e[s][w].key, contiguous: a lookup reads one line */
    struct sc_hint hint[SC_HINTS][SC_HINT_WAYS];
    unsigned char hint_next[SC_HINTS]; /* the way to replace next when a row is full */
    struct mt_heap_sc_ent e[SC_SETS][SC_WAYS];
    struct mt_heap_sc_ent *recent[SC_RECENT]; /* entries of the last stacks seen, or NULL */
    unsigned recent_next;
};

static void sc_release(void *p)
{
    mt_heap_tls.sc_state = -1; /* later allocations of this exiting thread go uncached */
    mt_heap_tls.sc = NULL;
    mt_heap_pages_free(p, sizeof(struct mt_heap_stack_cache));
}

static struct mt_heap_stack_cache *sc_get(void)
{
    if (MT_LIKELY(mt_heap_tls.sc_state == 1)) return mt_heap_tls.sc;
    if (mt_heap_tls.sc_state < 0 ||
        !atomic_load_explicit(&mt_heap_g.stk.enabled, memory_order_relaxed))
        return NULL;
    mt_heap_tls.sc_state = -1;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return NULL;
    int rc = pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    if (rc != 0) return NULL;
    struct mt_heap_stack_cache *c = mt_heap_pages(sizeof *c);
    if (!c) return NULL;
    c->lo = (uintptr_t)addr;
    c->hi = (uintptr_t)addr + size;
    pthread_setspecific(mt_heap_g.stk.key, c);
    mt_heap_tls.sc = c;
    mt_heap_tls.sc_state = 1;
    return c;
}

/* Whether every return-address slot of e still holds its address. Four slots per step
 * (vdepth is a multiple of 4: the last frame is repeated up to it), without a branch
 * between them: the loads are independent, and a hit (the common case) reads them all
 * anyway. */
static inline int sc_valid(const struct mt_heap_sc_ent *e, uintptr_t anchor)
{
#define SLOT(k) (*(const uintptr_t *)(anchor + e->off[k]) ^ e->ips[k])
    for (uint32_t k = 0; k < e->vdepth; k += 4)
        if (SLOT(k) | SLOT(k + 1) | SLOT(k + 2) | SLOT(k + 3)) return 0;
    return 1;
#undef SLOT
}

/* Finds the slots of ips in the stack above the hook's frame; 0 when one is missing. The
 * hook keeps a frame pointer, so its return address, ips[0], must sit right above it;
 * from there each next address is searched upward, through the application's frames
 * only (our own frames, with stale copies of earlier stacks, lie below). */
static int sc_fill(struct mt_heap_sc_ent *e, const struct mt_heap_stack_cache *c, uintptr_t anchor,
                   const uintptr_t *ips, int depth, uint64_t hash)
{
    if (depth < 1 || *(const uintptr_t *)(anchor + sizeof(uintptr_t)) != ips[0]) return 0;
    uintptr_t pos = anchor + sizeof(uintptr_t);
    const uintptr_t end = c->hi; /* all mapped: the used part of this thread's stack */
    for (int k = 0; k < depth; k++) {
        const uintptr_t want = ips[k]; /* a local: the stores below may alias the stack */
        while (pos + sizeof(uintptr_t) <= end && *(const uintptr_t *)pos != want)
            pos += sizeof(uintptr_t);
        if (pos + sizeof(uintptr_t) > end || pos - anchor > UINT32_MAX) return 0;
        e->off[k] = (uint32_t)(pos - anchor);
        e->ips[k] = ips[k];
        pos += sizeof(uintptr_t);
    }
    e->anchor = anchor;
    e->failed = 0;
    e->probe = 0;
    e->depth = (uint32_t)depth;
    e->vdepth = ((uint32_t)depth + 3) & ~3u; /* <= MT_HEAP_MAX_FRAMES, a multiple of 4 */
    for (uint32_t k = e->depth; k < e->vdepth; k++) {
        e->off[k] = e->off[k - 1];
        e->ips[k] = e->ips[k - 1];
    }
    e->hash = hash;
    for (int i = 0; i < MT_HEAP_NCAT; i++)
        e->site[i] = MT_HEAP_NO_SITE;
    return 1;
}

/* Fills st from entry e (a validated hit); keeps e among the recent ones when `remember`. */
static inline void sc_hit(struct mt_heap_stack_cache *c, struct mt_heap_sc_ent *e,
                          struct mt_heap_stack *st, int remember)
{
    st->frames = e->ips;
    st->depth = (int)e->depth;
    st->hash = e->hash;
    st->ent = e;
    st->sites = e->site;
    st->hit = 1;
    if (remember) c->recent[c->recent_next++ % SC_RECENT] = e;
}

/* A recent entry that holds the stack now above anchor, or NULL. Recent entries are never
 * failed ones (stack_lookup drops an entry from them when it marks it failed), and their
 * first slot is the hook's return address, so validation alone decides. Each recent entry
 * first checks the one slot that told it apart from the stack it last failed on: recent
 * stacks that share most frames are then rejected with one compare instead of a validation
 * that runs up to where they part. */
static inline struct mt_heap_sc_ent *sc_recent(const struct mt_heap_stack_cache *c,
                                               uintptr_t anchor)
{
    for (int k = 0; k < SC_RECENT; k++) {
        struct mt_heap_sc_ent *e = c->recent[k];
        if (!e || e->anchor != anchor) continue;
        uint32_t q = e->probe;
        if (*(const uintptr_t *)(anchor + e->off[q]) != e->ips[q]) continue;
        if (sc_valid(e, anchor)) return e;
        while (*(const uintptr_t *)(anchor + e->off[q]) == e->ips[q])
            q = q + 1 < e->depth ? q + 1 : 0;
        e->probe = q;
    }
    return NULL;
}

/* The lookup key of the stack now above anchor under a hint: its values in the hint's
 * slots (all below the stack top, hence mapped: see sc_fill). */
static inline uint64_t hint_key(const struct sc_hint *hint, uint64_t key0, uintptr_t anchor)
{
    uint64_t k = key0;
    for (uint32_t i = 1; i < hint->n; i++)
        k = (k ^ *(const uintptr_t *)(anchor + hint->off[i])) * 0x100000001b3ULL;
    return k;
}

/* Looks for the stack above anchor in set s under key k; fills st and returns 1 on a hit.
 * Clears *rescan when a scan for this return address failed here before (costly). */
static inline int sc_lookup(struct mt_heap_stack_cache *c, unsigned s, uint64_t k, uintptr_t anchor,
                            uintptr_t ret, struct mt_heap_stack *st, int *rescan)
{
    for (int w = 0; w < SC_WAYS; w++) {
        struct mt_heap_sc_ent *e = &c->e[s][w];
        if (c->tag[s][w] != k || e->anchor != anchor) continue;
        if (e->failed) {
            *rescan &= e->ips[0] != ret;
        } else if (sc_valid(e, anchor)) {
            sc_hit(c, e, st, 1);
            return 1;
        }
    }
    return 0;
}

/* The stack above anchor when no recent entry holds it: a cache lookup through the hints,
 * else unwinding (filed in the cache when its slots are found). c may be NULL (no cache
 * for this thread or this stack). Kept out of mt_heap_stack_capture: its frame holds a
 * whole cache entry. */
static __attribute__((noinline)) void stack_lookup(struct mt_heap_stack *st,
                                                   struct mt_heap_stack_cache *c, uintptr_t anchor,
                                                   uintptr_t ret)
{
    uint64_t key0 = mt_heap_mix64(anchor ^ (ret << 16));
    size_t row = key0 & (SC_HINTS - 1);
    uint64_t key = key0; /* the first candidate's key: where a failed scan is filed */
    unsigned set = (unsigned)(mt_heap_mix64(key0) & (SC_SETS - 1));
    int rescan = c != NULL;
    if (c) {
        int any = 0, first = 1;
        for (int h = 0; h <= SC_HINT_WAYS; h++) {
            uint64_t k = key0;
            if (h < SC_HINT_WAYS) {
                const struct sc_hint *hint = &c->hint[row][h];
                if (hint->anchor != anchor || hint->ret != ret) continue;
                k = hint_key(hint, key0, anchor);
                any = 1;
            } else if (any) {
                break;
            }
            unsigned s_ = (unsigned)(mt_heap_mix64(k) & (SC_SETS - 1));
            if (first) {
                key = k;
                set = s_;
                first = 0;
            }
            if (sc_lookup(c, s_, k, anchor, ret, st, &rescan)) return;
        }
    }
    st->depth = capture(st->buf);
    st->hash = mt_heap_hash_frames(st->buf, st->depth);
    if (!rescan) return;
    struct mt_heap_sc_ent tmp;
    if (!sc_fill(&tmp, c, anchor, st->buf, st->depth, st->hash)) {
        unsigned w = c->next[set]++ % SC_WAYS;
        struct mt_heap_sc_ent *e = &c->e[set][w];
        for (int k = 0; k < SC_RECENT; k++)
            if (c->recent[k] == e) c->recent[k] = NULL;
        e->key = key;
        c->tag[set][w] = key;
        e->anchor = anchor;
        e->failed = 1;
        e->depth = 0;
        e->ips[0] = ret;
        return;
    }
    /* File it under the hint whose slots are this stack's own (a new one if none is):
     * then its key is made of its own return addresses, the same at every lookup. */
    uint32_t hn = tmp.depth < SC_HINT_FRAMES ? tmp.depth : SC_HINT_FRAMES;
    struct sc_hint *hint = NULL;
    for (int h = 0; h < SC_HINT_WAYS && !hint; h++) {
        struct sc_hint *x = &c->hint[row][h];
        if (x->anchor == anchor && x->ret == ret && x->n == hn &&
            memcmp(x->off, tmp.off, hn * sizeof *x->off) == 0)
            hint = x;
    }
    if (!hint) {
        int h = 0;
        while (h < SC_HINT_WAYS && c->hint[row][h].anchor)
            h++;
        if (h == SC_HINT_WAYS) h = c->hint_next[row]++ % SC_HINT_WAYS;
        hint = &c->hint[row][h];
        hint->anchor = anchor;
        hint->ret = ret;
        hint->n = hn;
        memcpy(hint->off, tmp.off, hn * sizeof *hint->off);
    }
    key = hint_key(hint, key0, anchor);
    set = (unsigned)(mt_heap_mix64(key) & (SC_SETS - 1));
    unsigned w = c->next[set]++ % SC_WAYS;
    struct mt_heap_sc_ent *e = &c->e[set][w];
    memcpy(e, &tmp, sizeof tmp);
    e->key = key;
    c->tag[set][w] = key;
    st->ent = e;
    st->sites = e->site;
    c->recent[c->recent_next++ % SC_RECENT] = e;
}

void mt_heap_stack_capture(struct mt_heap_stack *st, int sampled, uintptr_t anchor)
{
    st->sampled = sampled;
    st->depth = 0;
    st->hash = 0;
    st->frames = st->buf;
    st->ent = NULL;
    st->sites = NULL;
    st->hit = 0;
    if (!st->sampled) return;
    struct mt_heap_stack_cache *c = sc_get();
    if (c && !(anchor > c->lo && anchor + 2 * sizeof(uintptr_t) <= c->hi)) c = NULL;
    uintptr_t ret = c ? *(const uintptr_t *)(anchor + sizeof(uintptr_t)) : 0;
    if (c) {
        struct mt_heap_sc_ent *e = sc_recent(c, anchor);
        if (e) {
            sc_hit(c, e, st, 0);
            return;
        }
    }
    stack_lookup(st, c, anchor, ret);
}

uint32_t mt_heap_stack_recent_site(uintptr_t anchor, int cat)
{
    if (MT_UNLIKELY(mt_heap_tls.sc_state != 1)) return MT_HEAP_NO_SITE;
    const struct mt_heap_sc_ent *e = sc_recent(mt_heap_tls.sc, anchor);
    return e ? e->site[cat] : MT_HEAP_NO_SITE;
}

uint32_t mt_heap_stack_site_slow(const struct mt_heap_stack *st, int cat)
{
    if (!st->sampled) return MT_HEAP_NO_SITE;
    mt_heap_count_stack(st->hit);
    if (st->ent && st->ent->site[cat] != MT_HEAP_NO_SITE) return st->ent->site[cat];
    uint32_t site = mt_heap_site_get(st->hash, st->frames, st->depth, cat);
    if (st->ent) st->ent->site[cat] = site;
    return site;
}

void mt_heap_stacks_init(void)
{
    if (pthread_key_create(&mt_heap_g.stk.key, sc_release) == 0)
        atomic_store(&mt_heap_g.stk.enabled, 1);
}
