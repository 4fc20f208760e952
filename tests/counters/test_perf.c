/* tests/counters/test_perf.c — perf software events count what the program did.
 *
 * Touching N fresh pages inside a region raises page_faults (and page_faults_min) by at
 * least N, also when a thread created after open does the touching (inherit=1); a busy
 * loop raises task_clock_ns by at least most of its CPU time. Where perf_event_open is
 * refused, each event must instead be unavailable with a reason.
 */
#include "check.h"

#include <pthread.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { NPAGES = 512 };

static volatile double sink;

/* Maps NPAGES fresh pages (no huge pages: one fault per page) and writes each once. */
static void touch_fresh_pages(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = NPAGES * page;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    madvise(p, len, MADV_NOHUGEPAGE);
    for (size_t i = 0; i < len; i += page)
        p[i] = (char)i;
    munmap(p, len);
}

static void *thread_touch(void *arg)
{
    (void)arg;
    touch_fresh_pages();
    return NULL;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
    touch_fresh_pages();
    MUST(mt_counters_region_end(c, "touch", err, sizeof err), err);

    MUST(mt_counters_region_begin(c, "thread_touch", err, sizeof err), err);
    pthread_t t;
    CHECK_I64(pthread_create(&t, NULL, thread_touch, NULL), 0);
    pthread_join(t, NULL);
    MUST(mt_counters_region_end(c, "thread_touch", err, sizeof err), err);

    MUST(mt_counters_region_begin(c, "busy", err, sizeof err), err);
    double cpu0 = cpu_now(), x = 1.0;
    while (cpu_now() - cpu0 < 0.05)
        for (int i = 0; i < 10000; i++)
            x = x * 1.0000001 + 1e-9;
    sink = x;
    double busy_cpu = cpu_now() - cpu0;
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
    if (check_failures) fprintf(stderr, "%d check(s) failed\n", check_failures);
    return check_failures != 0;
}
