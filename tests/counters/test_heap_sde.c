/* tests/counters/test_heap_sde.c — the heap profiler's SDE counters, read through
 * mt_counters, follow a known allocation pattern.
 *
 * Run by ctest with LD_PRELOAD=libmt_heap.so (profilers/heap). Inside region
 * "load_weights" the thread's category is weights and it allocates 1 MiB: live bytes of
 * weights rise by 1 MiB (allowing a page of bookkeeping), "other" does not move; region
 * "free" gives the MiB back (a negative delta); peak bytes never fall. Without the
 * preload it skips (exit 77): it checks our reading of their counters, not their absence.
 */
#include "check.h"

#include <memtrade/memcat.h>
#include <stdlib.h>

#define MIB (1 << 20)

int main(void)
{
    if (!mt_heap_set_category) {
        printf("heap profiler not preloaded: skipped\n");
        return 77;
    }
    char err[512] = "";
    struct mt_counters_opts opts = {
        .events = "sde:::memtrade::live_bytes,sde:::memtrade::live_bytes.weights,"
                  "sde:::memtrade::live_bytes.other,sde:::memtrade::alloc_calls.weights,"
                  "sde:::memtrade::peak_bytes",
        .no_perf = 1};
    struct mt_counters *c = NULL;
    MUST(mt_counters_open(&opts, &c, err, sizeof err), err);
    for (size_t i = 0; i < mt_counters_count(c); i++) {
        const struct mt_counter *k = mt_counters_get(c, i);
        CHECK(k->available);
        if (!k->available) fprintf(stderr, "  %s: %s\n", k->name, k->reason);
    }

    MUST(mt_counters_region_begin(c, "load_weights", err, sizeof err), err);
    int old = mt_memcat_set(MT_MEM_WEIGHTS);
    char *volatile p = malloc(MIB);
    mt_memcat_set(old);
    MUST(mt_counters_region_end(c, "load_weights", err, sizeof err), err);
    CHECK(p != NULL);
    if (p) p[0] = 1;
    MUST(mt_counters_region_begin(c, "free", err, sizeof err), err);
    mt_memcat_set(MT_MEM_WEIGHTS);
    free(p);
    mt_memcat_set(old);
    MUST(mt_counters_region_end(c, "free", err, sizeof err), err);

    struct region_list l = {.n = 0};
    mt_counters_region_foreach(c, collect_region, &l);
    long long w = region_value(&l, "load_weights", "sde:::memtrade::live_bytes.weights");
    long long all = region_value(&l, "load_weights", "sde:::memtrade::live_bytes");
    long long other = region_value(&l, "load_weights", "sde:::memtrade::live_bytes.other");
    long long calls = region_value(&l, "load_weights", "sde:::memtrade::alloc_calls.weights");
    long long freed = region_value(&l, "free", "sde:::memtrade::live_bytes.weights");
    long long peak = region_value(&l, "free", "sde:::memtrade::peak_bytes");
    printf("load_weights: weights %+lld, all %+lld, other %+lld, calls %lld; free: %+lld, "
           "peak %+lld\n",
           w, all, other, calls, freed, peak);
    CHECK(w >= MIB && w <= MIB + 4096);
    CHECK(all >= w && all <= w + 4096);
    CHECK_I64(other, all - w);
    CHECK(calls >= 1 && calls <= 4);
    CHECK(freed <= -MIB && freed >= -(MIB + 4096));
    CHECK(peak >= 0);
    mt_counters_close(c);
    return mt_check_status(check_failures);
}
