/* tests/counters/test_sde.c — the PAPI path for real, through software-defined events.
 *
 * This program registers its own SDE counters with libsde (as the heap profiler does
 * with "memtrade"), opens mt_counters on them, runs nested regions that move the counters
 * by known amounts, and checks every region's delta exactly: inner regions count in the
 * outer ones, a gauge can fall, a counter nobody registered is unavailable with a reason.
 */
#include "check.h"

#include <sde_lib.h>

static long long bytes; /* SDE counter read straight from this variable */
static long long live;  /* an instant gauge: goes up and down */

int main(void)
{
    char err[512] = "";
    papi_handle_t h = papi_sde_init("mt_test");
    CHECK(h != NULL);
    CHECK_I64(papi_sde_register_counter(h, "bytes", PAPI_SDE_RO | PAPI_SDE_DELTA,
                                        PAPI_SDE_long_long, &bytes),
              0);
    CHECK_I64(papi_sde_register_counter(h, "live", PAPI_SDE_RO | PAPI_SDE_INSTANT,
                                        PAPI_SDE_long_long, &live),
              0);
    void *calls = NULL;
    CHECK_I64(papi_sde_create_counter(h, "calls", PAPI_SDE_DELTA, &calls), 0);

    struct mt_counters_opts opts = {
        .events = " sde:::mt_test::bytes, sde:::mt_test::live,sde:::mt_test::calls,"
                  "sde:::mt_test::never_registered,sde:::mt_test::bytes",
        .no_perf = 1};
    struct mt_counters *c = NULL;
    MUST(mt_counters_open(&opts, &c, err, sizeof err), err);

    /* duplicates kept once, order kept, unregistered listed with a reason */
    CHECK_I64(mt_counters_count(c), 4);
    CHECK(strcmp(mt_counters_get(c, 0)->name, "sde:::mt_test::bytes") == 0);
    CHECK(strcmp(mt_counters_get(c, 2)->name, "sde:::mt_test::calls") == 0);
    for (size_t i = 0; i < 3; i++) {
        const struct mt_counter *k = mt_counters_get(c, i);
        CHECK(k->available);
        CHECK(k->source == MT_COUNTER_PAPI);
        CHECK(strcmp(k->scope, "process") == 0);
        if (!k->available) fprintf(stderr, "  %s: %s\n", k->name, k->reason);
    }
    const struct mt_counter *nr = mt_counters_get(c, 3);
    CHECK(!nr->available && nr->reason && strstr(nr->reason, "not registered"));

    /* train { +10 bytes; 3 x step { +100 bytes; forward { +1000 bytes, live +7 }; live -2 } } */
    bytes += 5; /* before any region: only in the totals */
    MUST(mt_counters_region_begin(c, "train", err, sizeof err), err);
    bytes += 10;
    for (int s = 0; s < 3; s++) {
        MUST(mt_counters_region_begin(c, "step", err, sizeof err), err);
        bytes += 100;
        papi_sde_inc_counter(calls, 1);
        MUST(mt_counters_region_begin(c, "forward", err, sizeof err), err);
        CHECK(strcmp(mt_counters_region_path(c), "train/step/forward") == 0);
        CHECK_I64(mt_counters_region_depth(c), 3);
        bytes += 1000;
        live += 7;
        papi_sde_inc_counter(calls, 2);
        MUST(mt_counters_region_end(c, "forward", err, sizeof err), err);
        live -= 2;
        MUST(mt_counters_region_end(c, "step", err, sizeof err), err);
    }
    MUST(mt_counters_region_begin(c, "eval", err, sizeof err), err);
    live -= 40; /* a gauge falls: negative delta */
    MUST(mt_counters_region_end(c, "eval", err, sizeof err), err);
    MUST(mt_counters_region_end(c, "train", err, sizeof err), err);

    struct region_list l = {.n = 0};
    CHECK_I64(mt_counters_region_foreach(c, collect_region, &l), 0);
    CHECK_I64(l.n, 4);
    const char *order[] = {"train", "train/step", "train/step/forward", "train/eval"};
    const size_t depth[] = {0, 1, 2, 1};
    const unsigned long long ncalls[] = {1, 3, 3, 1};
    for (size_t i = 0; i < 4 && i < l.n; i++) {
        CHECK(strcmp(l.r[i].path, order[i]) == 0);
        CHECK_I64(l.r[i].depth, depth[i]);
        CHECK_I64(l.r[i].calls, ncalls[i]);
        CHECK(l.r[i].wall_s >= 0 && l.r[i].cpu_s >= 0);
        const struct mt_counter *k =
            find_counter(l.r[i].v, l.r[i].n, "sde:::mt_test::never_registered");
        CHECK(k && !k->available && k->reason && k->reason[0]);
    }
    CHECK_I64(region_value(&l, "train", "sde:::mt_test::bytes"), 10 + 3 * 1100);
    CHECK_I64(region_value(&l, "train/step", "sde:::mt_test::bytes"), 3 * 1100);
    CHECK_I64(region_value(&l, "train/step/forward", "sde:::mt_test::bytes"), 3 * 1000);
    CHECK_I64(region_value(&l, "train/eval", "sde:::mt_test::bytes"), 0);
    CHECK_I64(region_value(&l, "train/step/forward", "sde:::mt_test::live"), 3 * 7);
    CHECK_I64(region_value(&l, "train/step", "sde:::mt_test::live"), 3 * 5);
    CHECK_I64(region_value(&l, "train/eval", "sde:::mt_test::live"), -40);
    CHECK_I64(region_value(&l, "train", "sde:::mt_test::live"), 15 - 40);
    CHECK_I64(region_value(&l, "train/step", "sde:::mt_test::calls"), 9);
    CHECK_I64(region_value(&l, "train/step/forward", "sde:::mt_test::calls"), 6);

    /* a callback's non-zero return stops the walk and is returned */
    struct region_list one = {.n = 44}; /* room for exactly the 4 regions */
    CHECK_I64(mt_counters_region_foreach(c, collect_region, &one), 0);
    one.n = 46; /* room for 2: the third call says stop */
    CHECK_I64(mt_counters_region_foreach(c, collect_region, &one), 1);

    /* a second handle on the same thread: PAPI runs one eventset per component per
     * thread, so its SDE counter is unavailable with PAPI's reason, or (if PAPI allows)
     * available and exact — never silently wrong */
    struct mt_counters_opts opts2 = {.events = "sde:::mt_test::bytes", .no_perf = 1};
    struct mt_counters *c2 = NULL;
    MUST(mt_counters_open(&opts2, &c2, err, sizeof err), err);
    const struct mt_counter *k2 = mt_counters_get(c2, 0);
    CHECK(k2 && counter_is_honest(k2));
    if (k2)
        printf("second handle: %s %s\n",
               k2->available ? "available" : "unavailable:", k2->available ? "" : k2->reason);
    if (k2 && k2->available) {
        MUST(mt_counters_region_begin(c2, "again", err, sizeof err), err);
        bytes += 77;
        MUST(mt_counters_region_end(c2, "again", err, sizeof err), err);
        struct region_list l2 = {.n = 0};
        mt_counters_region_foreach(c2, collect_region, &l2);
        CHECK_I64(region_value(&l2, "again", "sde:::mt_test::bytes"), 77);
    }
    long long extra = k2 && k2->available ? 77 : 0;
    mt_counters_close(c2);

    struct mt_counters_region tot;
    MUST(mt_counters_read_total(c, &tot, err, sizeof err), err);
    CHECK_I64(tot.ncounters, 4);
    const struct mt_counter *tb = find_counter(tot.counters, tot.ncounters, "sde:::mt_test::bytes");
    CHECK(tb && tb->available);
    if (tb) CHECK_I64(tb->value, 5 + 10 + 3 * 1100 + extra);
    CHECK(tot.wall_s >= l.r[0].wall_s);

    mt_counters_close(c);
    papi_sde_shutdown(h);
    return mt_check_status(check_failures);
}
