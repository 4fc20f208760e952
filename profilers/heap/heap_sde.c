/* heap_sde.c — exports the heap profiler's exact counters as PAPI software-defined events.
 *
 * What it is for: registering, under the library name "memtrade", instant read-only
 * counters that PAPI reads in place or through a callback (live bytes, sums): live_bytes,
 * peak_bytes, alloc_calls (all categories) and live_bytes.<cat>, peak_bytes.<cat>,
 * alloc_calls.<cat> per memory category; PAPI
 * names them "sde:::memtrade::live_bytes.weights" and so on. What it is not for: reading
 * PAPI (profilers/counters does that). Runs once from the constructor, with the recursion
 * guard set, so libsde's own allocations are never recorded.
 */
#include "heap_output.h"
#include "heap_tracker.h"

#include <sde_lib.h>
#include <string.h>

static char names[3 * (MT_HEAP_NCAT + 1)][48]; /* libsde may keep the pointers */

/* Live bytes and allocation calls are not single counters in the tracker (room, sampled
 * mode's room, sums): read through callbacks; param: the category + 1, 0 for all. */
static long long live_cb(void *param)
{
    return mt_heap_tracker_live_now((int)(intptr_t)param - 1);
}

static long long allocs_cb(void *param)
{
    int cat = (int)(intptr_t)param - 1;
    return cat < 0 ? mt_heap_tracker_allocs_now() : mt_heap_tracker_allocs_of(cat);
}

/* The name base[.cat] in names[slot]. */
static const char *name_of(size_t slot, const char *base, const char *cat)
{
    char *n = names[slot];
    size_t k = strlen(base);
    memcpy(n, base, k);
    if (cat) {
        n[k++] = '.';
        size_t c = strlen(cat);
        memcpy(n + k, cat, c);
        k += c;
    }
    n[k] = '\0';
    return n;
}

/* Registers a counter read in place (counter) or through fn(param). */
static void reg(papi_handle_t h, size_t slot, const char *base, const char *cat, long long *counter,
                papi_sde_fptr_t fn, intptr_t param, const char *what)
{
    const char *n = name_of(slot, base, cat);
    if (counter)
        papi_sde_register_counter(h, n, PAPI_SDE_RO | PAPI_SDE_INSTANT, PAPI_SDE_long_long,
                                  counter);
    else
        papi_sde_register_counter_cb(h, n, PAPI_SDE_RO | PAPI_SDE_INSTANT, PAPI_SDE_long_long, fn,
                                     (void *)param);
    papi_sde_describe_counter(h, n, what);
}

void mt_heap_sde_init(void)
{
    papi_handle_t h = papi_sde_init("memtrade");
    if (!h) return;
    struct mt_heap_cats *k = mt_heap_tracker_counters();
    size_t slot = 0;
    reg(h, slot++, "live_bytes", NULL, NULL, live_cb, 0, "heap bytes live now, all categories");
    reg(h, slot++, "peak_bytes", NULL, &k->peak_total, NULL, 0, "peak live heap bytes so far");
    reg(h, slot++, "alloc_calls", NULL, NULL, allocs_cb, 0, "allocation calls so far");
    for (int c = 0; c < MT_HEAP_NCAT; c++) {
        reg(h, slot++, "live_bytes", mt_mem_cat_names[c], NULL, live_cb, c + 1,
            "heap bytes live now in this memory category");
        reg(h, slot++, "peak_bytes", mt_mem_cat_names[c], &k->peak[c], NULL, 0,
            "peak live heap bytes of this memory category");
        reg(h, slot++, "alloc_calls", mt_mem_cat_names[c], NULL, allocs_cb, c + 1,
            "allocation calls in this memory category");
    }
}
