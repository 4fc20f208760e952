/* sde_read.c — reads the heap profiler's PAPI SDE counters back through PAPI.
 *
 * What it is for: proving that live_bytes.weights, peak_bytes.weights and
 * alloc_calls.weights are readable like any other PAPI event ("sde:::memtrade::...")
 * and hold the exact values: three 1,000,000-byte blocks in category weights, then one
 * freed. Run under LD_PRELOAD=libmt_heap.so; exits 1 with a message on any mismatch.
 * What it is not for: testing PAPI presets (profilers/counters does).
 */
#include <memtrade/memcat.h>

#include <papi.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const events[3] = {"sde:::memtrade::live_bytes.weights",
                                      "sde:::memtrade::peak_bytes.weights",
                                      "sde:::memtrade::alloc_calls.weights"};

static char *volatile blocks[3]; /* volatile: the compiler may not elide the mallocs */

static int expect(int es, long long live, long long peak, long long calls)
{
    long long v[3] = {0};
    int rc = PAPI_read(es, v);
    if (rc != PAPI_OK) {
        printf("PAPI_read: %s\n", PAPI_strerror(rc));
        return 1;
    }
    long long want[3] = {live, peak, calls};
    int bad = 0;
    for (int i = 0; i < 3; i++)
        if (v[i] != want[i]) {
            printf("%s = %lld, want %lld\n", events[i], v[i], want[i]);
            bad = 1;
        }
    return bad;
}

int main(void)
{
    if (!mt_heap_set_category) {
        printf("the heap profiler is not preloaded\n");
        return 1;
    }
    mt_memcat_set(MT_MEM_WEIGHTS);
    for (int i = 0; i < 3; i++)
        blocks[i] = malloc(1000000);
    mt_memcat_set(MT_MEM_OTHER);
    int rc = PAPI_library_init(PAPI_VER_CURRENT);
    if (rc != PAPI_VER_CURRENT) {
        printf("PAPI_library_init: %d\n", rc);
        return 1;
    }
    int es = PAPI_NULL;
    if (PAPI_create_eventset(&es) != PAPI_OK) return 1;
    for (int i = 0; i < 3; i++)
        if ((rc = PAPI_add_named_event(es, events[i])) != PAPI_OK) {
            printf("PAPI_add_named_event(%s): %s\n", events[i], PAPI_strerror(rc));
            return 1;
        }
    if (PAPI_start(es) != PAPI_OK) return 1;
    int bad = expect(es, 3000000, 3000000, 3);
    free(blocks[1]);
    bad |= expect(es, 2000000, 3000000, 3);
    long long v[3];
    PAPI_stop(es, v);
    free(blocks[0]);
    free(blocks[2]);
    printf(bad ? "FAIL\n" : "ok: SDE counters read through PAPI\n");
    return bad;
}
