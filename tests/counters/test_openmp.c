/* tests/counters/test_openmp.c — counters follow OpenMP worker threads.
 *
 * The OpenMP pool is created inside a region, after mt_counters_open, as in a run. perf
 * events are inherited by those workers: page faults made by every worker are counted
 * (>= pages touched), and task_clock_ns covers the workers' CPU time (close to the
 * process CPU time of the region). Unavailable events must carry a reason instead.
 */
#include "check.h"

#include <omp.h>

enum { NTHREADS = 2, PAGES_PER_THREAD = 256 };

int main(void)
{
    char err[512] = "";
    struct mt_counters_opts opts = {.events = "none"};
    struct mt_counters *c = NULL;
    MUST(mt_counters_open(&opts, &c, err, sizeof err), err);

    int team = 0;
    double sink = 0;
    MUST(mt_counters_region_begin(c, "parallel", err, sizeof err), err);
#pragma omp parallel num_threads(NTHREADS) reduction(+ : sink)
    {
#pragma omp single
        team = omp_get_num_threads();
        touch_fresh_pages(PAGES_PER_THREAD);
        sink += busy_thread_cpu(0.03);
    }
    MUST(mt_counters_region_end(c, "parallel", err, sizeof err), err);
    CHECK(sink > 0);

    struct region_list l = {.n = 0};
    mt_counters_region_foreach(c, collect_region, &l);
    const struct region_copy *r = find_region(&l, "parallel");
    CHECK(r != NULL);
    if (!r) return 1;
    long long faults = region_value(&l, "parallel", "page_faults");
    long long tc = region_value(&l, "parallel", "task_clock_ns");
    printf("team of %d: page faults %lld (>= %d), task clock %.3f s, process CPU %.3f s, "
           "wall %.3f s\n",
           team, faults, team * PAGES_PER_THREAD, (double)tc * 1e-9, r->cpu_s, r->wall_s);
    const struct mt_counter *pf = find_counter(r->v, r->n, "page_faults");
    const struct mt_counter *tk = find_counter(r->v, r->n, "task_clock_ns");
    CHECK(pf && counter_is_honest(pf) && tk && counter_is_honest(tk));
    if (pf && pf->available) CHECK(faults >= (long long)team * PAGES_PER_THREAD);
    if (tk && tk->available) {
        /* every worker's 30 ms of CPU is in the task clock, not only the opener's */
        CHECK(tc >= (long long)(team * 0.03 * 0.9e9));
        CHECK(tc >= (long long)(0.8 * r->cpu_s * 1e9));
    }
    mt_counters_close(c);
    return mt_check_status(check_failures);
}
