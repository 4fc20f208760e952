/* tests/counters/test_regions.c — region bookkeeping: nesting, errors, time, the event
 * list from the environment, and the cost of a begin/end pair (printed, not asserted:
 * performance targets belong in benchmarks).
 */
#include "check.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/* region_begin from a thread that did not open the handle: must fail. */
static void *foreign_begin(void *arg)
{
    char err[256] = "";
    int rc = mt_counters_region_begin(arg, "foreign", err, sizeof err);
    return (void *)(intptr_t)(rc == -1 && strstr(err, "thread") != NULL);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ns per begin/end pair over n pairs, on a handle opened with `events`. */
static double pair_cost(const char *events, int no_perf, long n)
{
    char err[512];
    struct mt_counters_opts opts = {.events = events, .no_perf = no_perf};
    struct mt_counters *c = NULL;
    if (mt_counters_open(&opts, &c, err, sizeof err) != 0) return -1;
    double t0 = mono();
    for (long i = 0; i < n; i++) {
        mt_counters_region_begin(c, "pair", err, sizeof err);
        mt_counters_region_end(c, "pair", err, sizeof err);
    }
    double ns = (mono() - t0) * 1e9 / (double)n;
    mt_counters_close(c);
    return ns;
}

int main(void)
{
    char err[512] = "";
    struct mt_counters_opts opts = {.events = "none", .no_perf = 1};
    struct mt_counters *c = NULL;
    MUST(mt_counters_open(&opts, &c, err, sizeof err), err);
    CHECK_I64(mt_counters_count(c), 0);
    CHECK(strcmp(mt_counters_region_path(c), "") == 0);

    /* errors leave everything as it was */
    err[0] = '\0';
    CHECK(mt_counters_region_end(c, "x", err, sizeof err) == -1 && strstr(err, "no region open"));
    CHECK(mt_counters_region_begin(c, "", err, sizeof err) == -1);
    CHECK(mt_counters_region_begin(c, "a/b", err, sizeof err) == -1 && strstr(err, "'/'"));
    char longname[MT_COUNTERS_REGION_NAME_MAX + 1];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK(mt_counters_region_begin(c, longname, err, sizeof err) == -1);
    CHECK(mt_counters_region_begin(c, NULL, err, sizeof err) == -1);
    pthread_t t;
    void *refused = NULL;
    CHECK_I64(pthread_create(&t, NULL, foreign_begin, c), 0);
    pthread_join(t, &refused);
    CHECK(refused == (void *)1);
    CHECK_I64(mt_counters_region_depth(c), 0);

    MUST(mt_counters_region_begin(c, "outer", err, sizeof err), err);
    MUST(mt_counters_region_begin(c, "inner", err, sizeof err), err);
    CHECK(mt_counters_region_end(c, "outer", err, sizeof err) == -1);
    CHECK(strstr(err, "'outer'") && strstr(err, "outer/inner"));
    CHECK(mt_counters_region_end(c, NULL, err, sizeof err) == -1);
    CHECK_I64(mt_counters_region_depth(c), 2);
    CHECK(strcmp(mt_counters_region_path(c), "outer/inner") == 0);
    struct timespec nap = {0, 20 * 1000 * 1000};
    nanosleep(&nap, NULL);
    MUST(mt_counters_region_end(c, "inner", err, sizeof err), err);
    MUST(mt_counters_region_end(c, "outer", err, sizeof err), err);
    CHECK(mt_counters_region_end(c, "outer", err, sizeof err) == -1);

    /* the same name under different parents is a different path */
    MUST(mt_counters_region_begin(c, "inner", err, sizeof err), err);
    MUST(mt_counters_region_end(c, "inner", err, sizeof err), err);

    /* depth limit */
    int opened = 0;
    while (mt_counters_region_begin(c, "deep", err, sizeof err) == 0)
        opened++;
    CHECK_I64(opened, MT_COUNTERS_DEPTH_MAX);
    CHECK(strstr(err, "deeper") != NULL);
    for (int i = 0; i < opened; i++)
        MUST(mt_counters_region_end(c, "deep", err, sizeof err), err);

    struct region_list l = {.n = 0};
    mt_counters_region_foreach(c, collect_region, &l);
    CHECK_I64(l.n, 3 + MT_COUNTERS_DEPTH_MAX);
    CHECK(l.n > 2 && !strcmp(l.r[0].path, "outer") && !strcmp(l.r[1].path, "outer/inner") &&
          !strcmp(l.r[2].path, "inner"));
    const struct region_copy *inner = find_region(&l, "outer/inner");
    const struct region_copy *outer = find_region(&l, "outer");
    CHECK(inner && outer);
    if (inner && outer) {
        CHECK(inner->wall_s >= 0.019 && inner->wall_s < 1.0);
        CHECK(outer->wall_s >= inner->wall_s);
        CHECK(inner->cpu_s < inner->wall_s); /* asleep, not busy */
        CHECK_I64(inner->calls, 1);
    }
    CHECK(l.n > 3 && l.r[3].depth == 0 &&
          l.r[3 + MT_COUNTERS_DEPTH_MAX - 1].depth == MT_COUNTERS_DEPTH_MAX - 1);
    mt_counters_close(c);
    mt_counters_close(NULL);

    /* the event list comes from MEMTRADE_COUNTERS when opts->events is NULL */
    setenv(MT_COUNTERS_ENV, "NOT_AN_EVENT_1, NOT_AN_EVENT_2", 1);
    struct mt_counters_opts from_env = {.events = NULL, .no_perf = 1};
    MUST(mt_counters_open(&from_env, &c, err, sizeof err), err);
    CHECK_I64(mt_counters_count(c), 2);
    CHECK(mt_counters_count(c) == 2 && !strcmp(mt_counters_get(c, 1)->name, "NOT_AN_EVENT_2"));
    CHECK(mt_counters_get(c, 0) && counter_is_honest(mt_counters_get(c, 0)));
    mt_counters_close(c);
    unsetenv(MT_COUNTERS_ENV);

    /* malformed lists are errors */
    char big[MT_COUNTERS_NAME_MAX + 8];
    memset(big, 'E', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct mt_counters_opts bad = {.events = big, .no_perf = 1};
    CHECK(mt_counters_open(&bad, &c, err, sizeof err) == -1 && c == NULL);
    CHECK(strstr(err, "too long") != NULL);

    /* cost of a begin/end pair */
    printf("begin/end pair: %.0f ns (no counters), %.0f ns (perf software events), "
           "%.0f ns (default PAPI list + perf)\n",
           pair_cost("none", 1, 200000), pair_cost("none", 0, 50000),
           pair_cost("default", 0, 50000));
    return mt_check_status(check_failures);
}
