/* heap_device.c — device memory's counters, tables and sites (see heap_device.h).
 *
 * What it is for: the exact bookkeeping of what the CUDA driver handed out: per kind and
 * category live/peak bytes, a table of live blocks by address, of VMM handles and of their
 * mappings, and sites (stack, kind, category) with their share of their kind's peak, the
 * way heap_tracker.c keeps them for host heap. Its tables come from mt_heap_pages, never
 * from malloc. What it is not for: host heap, or calling the driver (heap_cuda.c).
 */
#define _GNU_SOURCE
#include "heap_device.h"

#include <string.h>

#define D mt_heap_g.dev

const char *const mt_heap_dev_kind_names[MT_DEV_NKIND] = {"device", "vmm", "managed", "pinned"};

/* ---- tables: open addressing, linear probing, backward-shift deletion -------------- */

static size_t slot_of(uint64_t key, size_t cap)
{
    return (size_t)mt_heap_mix64(key) & (cap - 1);
}

static int table_grow(struct mt_heap_dev_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    struct mt_heap_dev_rec *v = mt_heap_pages(cap * sizeof *v);
    if (!v) return -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->v[i].key) continue;
        size_t j = slot_of(t->v[i].key, cap);
        while (v[j].key)
            j = (j + 1) & (cap - 1);
        v[j] = t->v[i];
    }
    mt_heap_pages_free(t->v, t->cap * sizeof *t->v);
    t->v = v;
    t->cap = cap;
    return 0;
}

static struct mt_heap_dev_rec *table_find(struct mt_heap_dev_table *t, uint64_t key)
{
    if (!t->cap || !key) return NULL;
    for (size_t j = slot_of(key, t->cap); t->v[j].key; j = (j + 1) & (t->cap - 1))
        if (t->v[j].key == key) return &t->v[j];
    return NULL;
}

/* Inserts r (its key absent); -1 when out of memory. */
static int table_put(struct mt_heap_dev_table *t, const struct mt_heap_dev_rec *r)
{
    if ((t->count + 1) * 2 > t->cap && table_grow(t) != 0) return -1;
    size_t j = slot_of(r->key, t->cap);
    while (t->v[j].key)
        j = (j + 1) & (t->cap - 1);
    t->v[j] = *r;
    t->count++;
    return 0;
}

static void table_del(struct mt_heap_dev_table *t, struct mt_heap_dev_rec *r)
{
    size_t cap = t->cap, i = (size_t)(r - t->v);
    t->count--;
    for (size_t j = (i + 1) & (cap - 1);; j = (j + 1) & (cap - 1)) {
        if (!t->v[j].key) break;
        size_t home = slot_of(t->v[j].key, cap);
        /* can the entry at j move to the hole at i? (its home is not in (i, j]) */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            t->v[i] = t->v[j];
            i = j;
        }
    }
    memset(&t->v[i], 0, sizeof t->v[i]);
}

/* ---- sites --------------------------------------------------------------------------- */

static const uintptr_t *arena_copy(const uintptr_t *frames, int depth)
{
    size_t n = (size_t)depth * sizeof *frames;
    if (D.arena_used + n > D.arena_cap) {
        size_t cap = 1 << 20;
        char *a = mt_heap_pages(cap); /* the old chunk stays: sites point into it */
        if (!a) return NULL;
        D.arena = a;
        D.arena_cap = cap;
        D.arena_used = 0;
    }
    uintptr_t *dst = (uintptr_t *)(D.arena + D.arena_used);
    memcpy(dst, frames, n);
    D.arena_used += n;
    return dst;
}

static int site_same(const struct mt_heap_dev_site *s, uint64_t hash, int kind, int cat,
                     const uintptr_t *frames, int depth)
{
    return s->hash == hash && s->kind == kind && s->cat == cat && s->depth == (uint32_t)depth &&
           !memcmp(s->frames, frames, (size_t)depth * sizeof *frames);
}

static int index_grow(void)
{
    size_t cap = D.site_index_cap ? D.site_index_cap * 2 : 1024;
    uint32_t *ix = mt_heap_pages(cap * sizeof *ix);
    if (!ix) return -1;
    for (size_t i = 0; i < D.site_count; i++) {
        size_t j = slot_of(D.sites[i].hash ^ D.sites[i].kind ^ ((uint64_t)D.sites[i].cat << 8), cap);
        while (ix[j])
            j = (j + 1) & (cap - 1);
        ix[j] = (uint32_t)i + 1;
    }
    mt_heap_pages_free(D.site_index, D.site_index_cap * sizeof *D.site_index);
    D.site_index = ix;
    D.site_index_cap = cap;
    return 0;
}

/* The site of (frames, kind, cat), created when new; MT_HEAP_NO_SITE when out of memory. */
static uint32_t site_get(uint64_t hash, int kind, int cat, const uintptr_t *frames, int depth)
{
    if ((D.site_count + 1) * 2 > D.site_index_cap && index_grow() != 0) return MT_HEAP_NO_SITE;
    size_t j = slot_of(hash ^ (uint64_t)kind ^ ((uint64_t)cat << 8), D.site_index_cap);
    for (; D.site_index[j]; j = (j + 1) & (D.site_index_cap - 1))
        if (site_same(&D.sites[D.site_index[j] - 1], hash, kind, cat, frames, depth))
            return D.site_index[j] - 1;
    if (D.site_count == D.site_cap) {
        size_t cap = D.site_cap ? D.site_cap * 2 : 256;
        struct mt_heap_dev_site *s = mt_heap_pages(cap * sizeof *s);
        if (!s) return MT_HEAP_NO_SITE;
        if (D.site_count) memcpy(s, D.sites, D.site_count * sizeof *s);
        mt_heap_pages_free(D.sites, D.site_cap * sizeof *D.sites);
        D.sites = s;
        D.site_cap = cap;
    }
    const uintptr_t *copy = depth ? arena_copy(frames, depth) : frames;
    if (!copy) return MT_HEAP_NO_SITE;
    struct mt_heap_dev_site *s = &D.sites[D.site_count];
    memset(s, 0, sizeof *s);
    s->hash = hash;
    s->frames = copy;
    s->depth = (uint32_t)depth;
    s->kind = (uint8_t)kind;
    s->cat = (uint8_t)cat;
    s->peak_epoch = D.epoch[kind];
    D.site_index[j] = (uint32_t)D.site_count + 1;
    return (uint32_t)D.site_count++;
}

/* Before a site's live bytes change: when its kind reached a new peak since the site last
 * changed, its live bytes then were the current ones (heap_tracker.h's rule). */
static void site_touch(struct mt_heap_dev_site *s)
{
    if (s->peak_epoch != D.epoch[s->kind]) {
        s->peak_live = s->live;
        s->peak_epoch = D.epoch[s->kind];
    }
}

/* ---- counting ------------------------------------------------------------------------ */

static void peak_up(struct mt_heap_dev_counts *c)
{
    if (c->live > c->peak) c->peak = c->live;
}

static void count_add(int kind, int cat, uint32_t site, long long n)
{
    struct mt_heap_dev_counts *k = &D.k[kind], *c = &D.cat[kind][cat];
    k->allocs++, c->allocs++;
    k->bytes += n, c->bytes += n;
    k->live += n, c->live += n;
    peak_up(c);
    if (site != MT_HEAP_NO_SITE) {
        struct mt_heap_dev_site *s = &D.sites[site];
        site_touch(s);
        s->allocs++;
        s->bytes += n;
        s->live += n;
        s->live_allocs++;
    }
    if (k->live > k->peak) {
        k->peak = k->live;
        D.epoch[kind]++;
    }
    if (kind == MT_DEV_DEVICE || kind == MT_DEV_VMM) {
        D.gpu_cat_live[cat] += n;
        if (D.gpu_cat_live[cat] > D.gpu_cat_peak[cat]) D.gpu_cat_peak[cat] = D.gpu_cat_live[cat];
        D.gpu_live += n;
        if (D.gpu_live > D.gpu_peak) {
            D.gpu_peak = D.gpu_live;
            D.gpu_peak_t = (double)(mt_heap_now_ns() - mt_heap_g.cfg.t0_ns) * 1e-9;
        }
    }
}

static void count_sub(const struct mt_heap_dev_rec *r)
{
    long long n = (long long)r->size;
    struct mt_heap_dev_counts *k = &D.k[r->kind], *c = &D.cat[r->kind][r->cat];
    k->frees++, c->frees++;
    k->live -= n, c->live -= n;
    if (r->site != MT_HEAP_NO_SITE) {
        struct mt_heap_dev_site *s = &D.sites[r->site];
        site_touch(s);
        s->live -= n;
        s->live_allocs--;
    }
    if (r->kind == MT_DEV_DEVICE || r->kind == MT_DEV_VMM) {
        D.gpu_live -= n;
        D.gpu_cat_live[r->cat] -= n;
    }
}

void mt_heap_dev_alloc(int kind, uint64_t key, uint64_t n, int cat, const uintptr_t *frames,
                       int depth, uint64_t hash)
{
    struct mt_heap_dev_table *t = kind == MT_DEV_VMM ? &D.handles : &D.ptrs;
    struct mt_heap_dev_rec *stale = table_find(t, key);
    if (stale) { /* another thread freed it and the driver handed it out again */
        struct mt_heap_dev_rec old = *stale;
        table_del(t, stale);
        count_sub(&old);
    }
    uint32_t site = site_get(hash, kind, cat, frames, depth);
    struct mt_heap_dev_rec r = {
        .key = key, .size = n, .site = site, .kind = (uint8_t)kind, .cat = (uint8_t)cat};
    count_add(kind, cat, site, (long long)n);
    if (key && table_put(t, &r) != 0) count_sub(&r); /* out of memory: cannot follow it */
}

int mt_heap_dev_take(uint64_t key, struct mt_heap_dev_rec *out)
{
    struct mt_heap_dev_rec *r = table_find(&D.ptrs, key);
    if (!r) return 0;
    *out = *r;
    table_del(&D.ptrs, r);
    return 1;
}

void mt_heap_dev_release(const struct mt_heap_dev_rec *r)
{
    count_sub(r);
}

void mt_heap_dev_restore(const struct mt_heap_dev_rec *r)
{
    if (!table_find(&D.ptrs, r->key) && table_put(&D.ptrs, r) == 0) return;
    count_sub(r); /* its address was handed out again meanwhile, or no memory */
}

void mt_heap_dev_failed(int kind)
{
    D.k[kind].failed++;
}

void mt_heap_dev_unknown_free(int kind)
{
    D.k[kind].unknown_frees++;
}

int mt_heap_dev_handle_release(uint64_t handle)
{
    struct mt_heap_dev_rec *r = table_find(&D.handles, handle);
    if (!r || r->released) return 0;
    r->released = 1;
    if (r->maps == 0) { /* the driver frees a handle's memory when released and unmapped */
        struct mt_heap_dev_rec old = *r;
        table_del(&D.handles, r);
        count_sub(&old);
    }
    return 1;
}

void mt_heap_dev_map(uint64_t va, uint64_t n, uint64_t handle)
{
    struct mt_heap_dev_rec m = {.key = va, .size = n, .aux = handle, .site = MT_HEAP_NO_SITE};
    if (table_find(&D.maps, va) || table_put(&D.maps, &m) != 0) return;
    struct mt_heap_dev_rec *h = table_find(&D.handles, handle);
    if (h) h->maps++;
    D.mapped_live += (long long)n;
    if (D.mapped_live > D.mapped_peak) D.mapped_peak = D.mapped_live;
}

size_t mt_heap_dev_unmap(uint64_t va, uint64_t n)
{
    size_t gone = 0;
    for (size_t i = 0; i < D.maps.cap;) {
        struct mt_heap_dev_rec *m = &D.maps.v[i];
        if (!m->key || m->key < va || m->key - va >= n) {
            i++;
            continue;
        }
        uint64_t handle = m->aux;
        D.mapped_live -= (long long)m->size;
        table_del(&D.maps, m); /* slot i now holds another entry (or none): look again */
        gone++;
        struct mt_heap_dev_rec *h = table_find(&D.handles, handle);
        if (h && h->maps && --h->maps == 0 && h->released) {
            struct mt_heap_dev_rec old = *h;
            table_del(&D.handles, h);
            count_sub(&old);
        }
    }
    return gone;
}

void mt_heap_dev_live(long long live[MT_DEV_NKIND])
{
    mt_heap_lock();
    for (int k = 0; k < MT_DEV_NKIND; k++)
        live[k] = D.k[k].live;
    mt_heap_unlock();
}

void mt_heap_dev_finish(void)
{
    for (size_t i = 0; i < D.site_count; i++) {
        struct mt_heap_dev_site *s = &D.sites[i];
        site_touch(s);
        s->leaked_bytes = s->live;
        s->leaked_allocs = s->live_allocs;
    }
}

const struct mt_heap_device *mt_heap_dev_state(void)
{
    return &D;
}
