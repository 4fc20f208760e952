/* tests/counters/test_perf.c — perf software events count what the program did.
 *
 * Touching N fresh pages inside a region raises page_faults (and page_faults_min) by at
 * least N, also when a thread created after open does the touching (inherit=1); a busy
 * loop raises task_clock_ns by at least most of its CPU time. Where perf_event_open is
 * refused, each event must instead be unavailable with a reason.
 */
#include "check.h"

#include <pthread.h>

enum { NPAGES = 512 };

static void *thread_touch(void *arg)
{
    (void)arg;
    touch_fresh_pages(NPAGES);
    return NULL;
}

int main(void)
{
    char err[512] = "";
    struct mt_counters_opts opts = {.events = "none"};
    struct mt_counters *c = NULL;
    MUST(mt_counters_open(&opts, &c, err, sizeof err), err);
    const char *names[] = {"page_faults",   "page_faults_min",  "page_faults_maj",
                           "task_clock_ns", "context_switches", "cpu_migrations"};
    CHECK_I64(mt_counters_count(c), 6); /* "none": no PAPI event, no hw fallback */
    for (size_t i = 0; i < 6 && i < mt_counters_count(c); i++) {
        const struct mt_counter *k = mt_counters_get(c, i);
        CHECK(strcmp(k->name, names[i]) == 0);
        CHECK(k->source == MT_COUNTER_PERF);
        CHECK(counter_is_honest(k));
        printf("%-17s %s %s\n", k->name, k->available ? "available" : "unavailable:",
               k->available ? (k->note ? k->note : "") : k->reason);
    }

    MUST(mt_counters_region_begin(c, "touch", err, sizeof err), err);
    touch_fresh_pages(NPAGES);
    MUST(mt_counters_region_end(c, "touch", err, sizeof err), err);

    MUST(mt_counters_region_begin(c, "thread_touch", err, sizeof err), err);
    pthread_t t;
    CHECK_I64(pthread_create(&t, NULL, thread_touch, NULL), 0);
    pthread_join(t, NULL);
    MUST(mt_counters_region_end(c, "thread_touch", err, sizeof err), err);

    MUST(mt_counters_region_begin(c, "busy", err, sizeof err), err);
    double busy_cpu = busy_thread_cpu(0.05);
    MUST(mt_counters_region_end(c, "busy", err, sizeof err), err);

    struct region_list l = {.n = 0};
    mt_counters_region_foreach(c, collect_region, &l);
    CHECK_I64(l.n, 3);
    const struct mt_counter *pf = find_counter(l.r[0].v, l.r[0].n, "page_faults");
    if (pf && pf->available) {
        long long touch = region_value(&l, "touch", "page_faults");
        long long thread = region_value(&l, "thread_touch", "page_faults");
        long long minor = region_value(&l, "touch", "page_faults_min");
        printf("page faults for %d pages: %lld (minor %lld), from a new thread: %lld\n", NPAGES,
               touch, minor, thread);
        CHECK(touch >= NPAGES);
        CHECK(thread >= NPAGES);
        if (minor != -12345) CHECK(minor >= NPAGES);
        CHECK(region_value(&l, "busy", "page_faults") < NPAGES / 2);
    } else {
        CHECK(pf && pf->reason && pf->reason[0]);
    }
    long long tc = region_value(&l, "busy", "task_clock_ns");
    if (tc != -12345) {
        printf("task clock over a %.3f s busy loop: %.3f s\n", busy_cpu, (double)tc * 1e-9);
        CHECK(tc >= (long long)(0.8 * busy_cpu * 1e9));
        const struct region_copy *busy = find_region(&l, "busy");
        CHECK(busy && tc <= (long long)(busy->wall_s * 1e9 * 2 + 1e7)); /* 2 threads at most */
    }
    mt_counters_close(c);
    return mt_check_status(check_failures);
}
