/* tests/counters/test_presets.c — the default PAPI presets are honest on any machine.
 *
 * Each default preset is either available (and then a busy loop gives non-negative
 * deltas, and instructions > 0) or unavailable with a non-empty reason; when PAPI itself
 * reports no hardware counters, the reason must say the CPU component is disabled. An
 * unknown event name is listed as unavailable with a reason, never dropped or zero.
 * The perf cycles/instructions fallback appears exactly when the PAPI preset is missing.
 */
#include "check.h"

#include <papi.h>

static volatile double sink;

static void busy(long n)
{
    double x = 1.0;
    for (long i = 0; i < n; i++)
        x = x * 1.0000001 + 1e-9;
    sink = x;
}

static const char *const defaults[] = {"PAPI_TOT_INS", "PAPI_TOT_CYC", "PAPI_L1_DCM",
                                       "PAPI_L2_DCM",  "PAPI_L3_TCM",  "PAPI_TLB_DM",
                                       "PAPI_BR_MSP",  "PAPI_FP_OPS"};

int main(void)
{
    char err[512] = "";
    struct mt_counters_opts opts = {.events = "default,NOT_AN_EVENT_XYZ"};
    struct mt_counters *c = NULL;
    MUST(mt_counters_open(&opts, &c, err, sizeof err), err);

    /* mt_counters_open has initialised PAPI: ask it what the machine has */
    int hw = PAPI_num_hwctrs();
    const PAPI_component_info_t *cpu = PAPI_get_component_info(0);
    int cpu_disabled = cpu && cpu->disabled;
    printf("PAPI_num_hwctrs()=%d, component 0 (%s) %s%s\n", hw, cpu ? cpu->name : "?",
           cpu_disabled ? "disabled: " : "enabled", cpu_disabled ? cpu->disabled_reason : "");

    MUST(mt_counters_region_begin(c, "busy", err, sizeof err), err);
    busy(20 * 1000 * 1000);
    MUST(mt_counters_region_end(c, "busy", err, sizeof err), err);
    struct region_list l = {.n = 0};
    mt_counters_region_foreach(c, collect_region, &l);
    const struct region_copy *r = find_region(&l, "busy");
    CHECK(r != NULL);
    if (!r) return 1;

    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        const struct mt_counter *k = find_counter(r->v, r->n, defaults[i]);
        CHECK(k != NULL);
        if (!k) continue;
        printf("%-14s %s %s\n", k->name,
               k->available ? "available" : "unavailable:", k->available ? "" : k->reason);
        CHECK(counter_is_honest(k));
        if (k->available) {
            CHECK(k->value >= 0);
            CHECK(k->scope && (!strcmp(k->scope, "process") || !strcmp(k->scope, "thread")));
            if (!strcmp(k->name, "PAPI_TOT_INS"))
                CHECK(k->value > 20 * 1000 * 1000); /* at least one per iteration */
        } else {
            CHECK(k->value == 0);
            if (hw == 0 && cpu_disabled) {
                CHECK(strstr(k->reason, "component disabled") != NULL);
                CHECK(strstr(k->reason, cpu->disabled_reason) != NULL);
            }
        }
    }

    const struct mt_counter *bad = find_counter(r->v, r->n, "NOT_AN_EVENT_XYZ");
    CHECK(bad && !bad->available && counter_is_honest(bad));
    if (bad) printf("NOT_AN_EVENT_XYZ unavailable: %s\n", bad->reason);

    /* perf fallback for cycles/instructions: present iff the PAPI preset is not */
    const char *pairs[2][2] = {{"PAPI_TOT_CYC", "perf_cycles"},
                               {"PAPI_TOT_INS", "perf_instructions"}};
    for (int i = 0; i < 2; i++) {
        const struct mt_counter *p = find_counter(r->v, r->n, pairs[i][0]);
        const struct mt_counter *f = find_counter(r->v, r->n, pairs[i][1]);
        CHECK(p != NULL);
        if (!p) continue;
        CHECK((f != NULL) == !p->available);
        if (f) {
            printf("%-17s %s %s\n", f->name,
                   f->available ? "available" : "unavailable:", f->available ? "" : f->reason);
            CHECK(counter_is_honest(f));
            if (f->available && !strcmp(f->name, "perf_instructions"))
                CHECK(f->value > 20 * 1000 * 1000);
        }
    }

    /* every counter, defaults or not, is honest in the totals too */
    struct mt_counters_region tot;
    MUST(mt_counters_read_total(c, &tot, err, sizeof err), err);
    for (size_t i = 0; i < tot.ncounters; i++)
        CHECK(counter_is_honest(&tot.counters[i]));
    mt_counters_close(c);
    return mt_check_status(check_failures);
}
