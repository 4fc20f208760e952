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

/* ---- the per-thread stack cache (its layout and its hit path: heap_stacks.h) ---------- */

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
    if (remember) c->recent[c->recent_next++ % MT_SC_RECENT] = e;
}

/* The lookup key of the stack now above anchor under a hint: its values in the hint's
 * slots (all below the stack top, hence mapped: see sc_fill). */
static inline uint64_t hint_key(const struct mt_heap_sc_hint *hint, uint64_t key0, uintptr_t anchor)
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
    for (int w = 0; w < MT_SC_WAYS; w++) {
        struct mt_heap_sc_ent *e = &c->e[s][w];
        if (c->tag[s][w] != k || e->anchor != anchor) continue;
        if (e->failed) {
            *rescan &= e->ips[0] != ret;
        } else if (mt_heap_sc_valid(e, anchor)) {
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
    size_t row = key0 & (MT_SC_HINTS - 1);
    uint64_t key = key0; /* the first candidate's key: where a failed scan is filed */
    unsigned set = (unsigned)(mt_heap_mix64(key0) & (MT_SC_SETS - 1));
    int rescan = c != NULL;
    if (c) {
        int any = 0, first = 1;
        for (int h = 0; h <= MT_SC_HINT_WAYS; h++) {
            uint64_t k = key0;
            if (h < MT_SC_HINT_WAYS) {
                const struct mt_heap_sc_hint *hint = &c->hint[row][h];
                if (hint->anchor != anchor || hint->ret != ret) continue;
                k = hint_key(hint, key0, anchor);
                any = 1;
            } else if (any) {
                break;
            }
            unsigned s_ = (unsigned)(mt_heap_mix64(k) & (MT_SC_SETS - 1));
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
        unsigned w = c->next[set]++ % MT_SC_WAYS;
        struct mt_heap_sc_ent *e = &c->e[set][w];
        for (int k = 0; k < MT_SC_RECENT; k++)
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
    uint32_t hn = tmp.depth < MT_SC_HINT_FRAMES ? tmp.depth : MT_SC_HINT_FRAMES;
    struct mt_heap_sc_hint *hint = NULL;
    for (int h = 0; h < MT_SC_HINT_WAYS && !hint; h++) {
        struct mt_heap_sc_hint *x = &c->hint[row][h];
        if (x->anchor == anchor && x->ret == ret && x->n == hn &&
            memcmp(x->off, tmp.off, hn * sizeof *x->off) == 0)
            hint = x;
    }
    if (!hint) {
        int h = 0;
        while (h < MT_SC_HINT_WAYS && c->hint[row][h].anchor)
            h++;
        if (h == MT_SC_HINT_WAYS) h = c->hint_next[row]++ % MT_SC_HINT_WAYS;
        hint = &c->hint[row][h];
        hint->anchor = anchor;
        hint->ret = ret;
        hint->n = hn;
        memcpy(hint->off, tmp.off, hn * sizeof *hint->off);
    }
    key = hint_key(hint, key0, anchor);
    set = (unsigned)(mt_heap_mix64(key) & (MT_SC_SETS - 1));
    unsigned w = c->next[set]++ % MT_SC_WAYS;
    struct mt_heap_sc_ent *e = &c->e[set][w];
    memcpy(e, &tmp, sizeof tmp);
    e->key = key;
    c->tag[set][w] = key;
    st->ent = e;
    st->sites = e->site;
    c->recent[c->recent_next++ % MT_SC_RECENT] = e;
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
        struct mt_heap_sc_ent *e = mt_heap_sc_recent(c, anchor);
        if (e) {
            sc_hit(c, e, st, 0);
            return;
        }
    }
    stack_lookup(st, c, anchor, ret);
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
