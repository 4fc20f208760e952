/* heap_maps.c — the live anonymous private mappings (heap_maps.h).
 *
 * What it is for: a small unordered array of mappings (programs map few), each with its
 * site, category and weight, so munmap can release exactly the bytes it unmaps. What it is
 * not for: file or shared mappings (not heap), or the hooks.
 */
#include "heap_maps.h"

#include "heap_tracker.h"

#include <string.h>

#define M mt_heap_g.map

static int map_add(const struct mt_heap_map *m)
{
    if (M.map_count == M.map_cap) {
        size_t cap = M.map_cap ? M.map_cap * 2 : 256;
        struct mt_heap_map *t = mt_heap_pages(cap * sizeof *t);
        if (!t) return -1;
        if (M.map_count) memcpy(t, M.maps, M.map_count * sizeof *t);
        mt_heap_pages_free(M.maps, M.map_cap * sizeof *t);
        M.maps = t;
        M.map_cap = cap;
    }
    M.maps[M.map_count++] = *m;
    return 0;
}

void mt_heap_map_record(void *p, uint64_t n, int cat, uint32_t site, double weight)
{
    struct mt_heap_map m = {.start = (uintptr_t)p,
                            .end = (uintptr_t)p + n,
                            .site = site,
                            .cat = (uint8_t)cat,
                            .weight = weight};
    if (map_add(&m) == 0) mt_heap_account_alloc(m.start, n, cat, site);
}

void mt_heap_map_remove(uintptr_t lo, uintptr_t hi)
{
    for (size_t i = 0; i < M.map_count;) {
        struct mt_heap_map m = M.maps[i];
        if (m.end <= lo || m.start >= hi) {
            i++;
            continue;
        }
        if (m.flags & MT_REC_TENSORS) {
            mt_heap_tensors_detach(m.start);
            M.maps[i].flags &= (uint8_t)~MT_REC_TENSORS;
            m.flags &= (uint8_t)~MT_REC_TENSORS;
        }
        uintptr_t a = m.start > lo ? m.start : lo, b = m.end < hi ? m.end : hi;
        int whole = a == m.start && b == m.end;
        mt_heap_account_unmap(m.start, b - a, m.cat, m.site, m.weight, whole);
        if (whole) {
            M.maps[i] = M.maps[--M.map_count];
            continue;
        }
        if (a == m.start) {
            M.maps[i].start = b;
        } else if (b == m.end) {
            M.maps[i].end = a;
        } else {
            M.maps[i].end = a;
            struct mt_heap_map tail = m;
            tail.start = b;
            if (map_add(&tail) == 0) mt_heap_account_split(m.site, m.weight); /* two pieces */
        }
        i++;
    }
}

int mt_heap_map_overlaps(uintptr_t lo, uintptr_t hi)
{
    for (size_t i = 0; i < M.map_count; i++)
        if (M.maps[i].start < hi && M.maps[i].end > lo) return 1;
    return 0;
}

struct mt_heap_map *mt_heap_map_around(uintptr_t p)
{
    for (size_t i = 0; i < M.map_count; i++)
        if (M.maps[i].start <= p && p < M.maps[i].end) return &M.maps[i];
    return NULL;
}
