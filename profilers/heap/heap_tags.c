/* heap_tags.c — the tagging API of memtrade/memcat.h (heap_tags.h).
 *
 * What it is for: this thread's category for its next allocations; named tensors, whose
 * bytes move from the category of the block they live in to their own while that block
 * lives; region peaks. What it is not for: counting blocks (heap_tracker.c).
 */
#include "heap_tags.h"

#include "heap_maps.h"
#include "heap_tracker.h"

#include <string.h>

#define A mt_heap_g.tag

/* ---- tensors ------------------------------------------------------------------------ */

/* Moves `size` bytes of a block's live bytes from category `from` to `to` (and the same
 * between its sites). Lock held. */
static void move_bytes(struct mt_heap_tensor *t, int reverse)
{
    if (reverse)
        mt_heap_tracker_move(t->cat, t->from_cat, (long long)t->size, t->site_to, t->site_from,
                             t->weight, 0);
    else
        mt_heap_tracker_move(t->from_cat, t->cat, (long long)t->size, t->site_from, t->site_to,
                             t->weight, 1);
}

void mt_heap_tensors_detach(uintptr_t block)
{
    for (size_t i = 0; i < A.tensor_count; i++) {
        struct mt_heap_tensor *t = &A.tensors[i];
        if (t->block == block) {
            move_bytes(t, 1);
            t->block = 0;
        }
    }
}

MT_EXPORT void mt_heap_report_tensor(const void *ptr, size_t size, int cat, const char *name)
{
    mt_heap_ensure_init();
    if (cat < 0 || cat >= MT_HEAP_NCAT || !name) return;
    int old = mt_heap_guard(1);
    if (!mt_heap_lock_tracking()) {
        mt_heap_guard(old);
        return;
    }
    if (A.tensor_count == A.tensor_cap) {
        size_t cap = A.tensor_cap ? A.tensor_cap * 2 : 256;
        struct mt_heap_tensor *t = mt_heap_pages(cap * sizeof *t);
        if (!t) goto out;
        if (A.tensor_count) memcpy(t, A.tensors, A.tensor_count * sizeof *t);
        mt_heap_pages_free(A.tensors, A.tensor_cap * sizeof *t);
        A.tensors = t;
        A.tensor_cap = cap;
    }
    struct mt_heap_tensor t = {.name = name,
                               .size = size,
                               .cat = (uint8_t)cat,
                               .weight = 1.0,
                               .site_from = MT_HEAP_NO_SITE,
                               .site_to = MT_HEAP_NO_SITE};
    uintptr_t p = (uintptr_t)ptr;
    /* the containing block: a malloc'd block (exact start first, then a scan) or a map */
    struct mt_heap_rec *r = mt_heap_rec_around(p);
    struct mt_heap_map *m = r ? NULL : mt_heap_map_around(p);
    if (r || m) {
        uintptr_t start = r ? r->ptr : m->start, end = r ? r->ptr + r->size : m->end;
        if (p + size > end) t.size = end - p;
        t.block = start;
        t.from_cat = r ? r->cat : m->cat;
        t.site_from = r ? r->site : m->site;
        if (t.site_from != MT_HEAP_NO_SITE) {
            struct mt_heap_site *s = mt_heap_site_at(t.site_from);
            t.site_to = mt_heap_site_get(s->hash, s->frames, (int)s->depth, cat);
            /* site_get may have grown the chunk list but never moves sites */
            t.weight = r ? mt_heap_sample_weight(r->size) : m->weight;
        }
        if (r)
            mt_heap_hdr_of((const void *)r->ptr)->flags |=
                MT_REC_TENSORS; /* free reads the header */
        else
            m->flags |= MT_REC_TENSORS;
        move_bytes(&t, 0);
    }
    A.tensors[A.tensor_count++] = t;
out:
    mt_heap_unlock();
    mt_heap_guard(old);
}

MT_EXPORT int mt_heap_set_category(int cat)
{
    int old = mt_heap_tls.cat;
    mt_heap_tls.cat = (cat >= 0 && cat < MT_HEAP_NCAT) ? cat : MT_MEM_OTHER;
    mt_heap_disarm(); /* the inline path's header word is the old category's */
    return old;
}

/* Lock held: folds the peaks since the last switch into the innermost region's entry. */
static void region_fold(void)
{
    if (A.region_cur < 0) return;
    struct mt_heap_region *r = &A.regions[A.region_cur];
    mt_heap_tracker_fold_peaks(&r->peak_total, r->peak);
}

/* Lock held: the entry of `name` (added if new), or -1 when it cannot be tracked. */
static int region_index(const char *name)
{
    size_t len = strnlen(name, MT_HEAP_REGION_NAME);
    if (len == MT_HEAP_REGION_NAME) return -1;
    for (size_t i = 0; i < A.region_count; i++)
        if (!memcmp(A.regions[i].name, name, len + 1)) return (int)i;
    if (A.region_count == MT_HEAP_MAX_REGIONS) return -1;
    struct mt_heap_region *r = &A.regions[A.region_count];
    memcpy(r->name, name, len + 1);
    return (int)A.region_count++;
}

/* The region's peaks start at the live bytes of the moment it becomes innermost. */
MT_EXPORT void mt_heap_set_region(const char *name)
{
    mt_heap_lock();
    region_fold();
    A.region_cur = name ? region_index(name) : -1;
    if (name && A.region_cur < 0) A.regions_dropped++;
    mt_heap_tracker_restart_peaks();
    mt_heap_unlock();
    atomic_store(&A.region, name);
}

void mt_heap_tags_finish(void)
{
    region_fold();
    /* Leaked = still live: each site's live blocks and bytes, with the bytes of tensors
     * still inside them counted at the block's own site, not the tensor's. */
    for (size_t i = 0; i < A.tensor_count; i++) {
        const struct mt_heap_tensor *t = &A.tensors[i];
        if (!t->block || t->site_from == MT_HEAP_NO_SITE || t->site_to == MT_HEAP_NO_SITE) continue;
        double wn = t->weight * (double)t->size;
        mt_heap_site_at(t->site_from)->leaked_bytes += wn;
        mt_heap_site_at(t->site_to)->leaked_bytes -= wn;
    }
}

const char *mt_heap_tags_region_now(void)
{
    return atomic_load(&A.region);
}

size_t mt_heap_tags_region_count(void)
{
    return A.region_count;
}

const struct mt_heap_region *mt_heap_tags_region(size_t i)
{
    return &A.regions[i];
}

long long mt_heap_tags_regions_dropped(void)
{
    return A.regions_dropped;
}

size_t mt_heap_tags_tensor_count(void)
{
    return A.tensor_count;
}

const struct mt_heap_tensor *mt_heap_tags_tensor(size_t i)
{
    return &A.tensors[i];
}
