/* witness.c — the plan beside the measured peaks of a run (witness.h). */
#include "witness.h"

#include <stdio.h>
#include <string.h>

#include "reader.h"
#include "store.h"

/* The heap profiler's figure for region `phase` of rank 0: 1 and *v, 0 with *why. */
static int measured(const struct mt_read_region *regs, size_t n, const char *phase, double *v,
                    const char **why)
{
    *why = "the run never entered this phase (no region of its name)";
    for (size_t i = 0; i < n; i++) {
        if (regs[i].rank != 0 || strcmp(regs[i].path, phase) != 0) continue;
        *why = "the heap profiler has no figure for this region (heap profiling off?)";
        for (size_t c = 0; c < regs[i].n_counters; c++) {
            const struct mt_read_counter *k = &regs[i].counters[c];
            if (strcmp(k->name, "heap_peak_bytes") != 0 || (k->category && k->category[0]))
                continue;
            if (!k->has) {
                *why = k->unavailable ? k->unavailable : *why;
                return 0;
            }
            *v = k->value;
            return 1;
        }
    }
    return 0;
}

int mt_witness_store(struct mt_store *st, int64_t run_id, const struct mt_plan *p, char *err,
                     size_t errlen)
{
    struct mt_mem_plan plan;
    int have = mt_plan_memory(p, &plan, err, errlen);
    if (have <= 0) return have < 0 ? 1 : 0; /* a refusal: the configuration has no plan */
    struct mt_read *rd = NULL;
    struct mt_read_region *regs = NULL;
    size_t n = 0;
    int rc = mt_read_open(st, &rd) || mt_read_regions(rd, run_id, &regs, &n) ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < plan.n_phases; i++) {
        const struct mt_mem_plan_phase *ph = &plan.phase[i];
        char name[96];
        double total = 0.0;
        for (int cat = 0; rc == 0 && cat < MT_MEM_CAT_COUNT; cat++) {
            total += (double)ph->bytes[cat];
            if (!ph->bytes[cat]) continue;
            snprintf(name, sizeof name, "plan_%s_peak_%s_bytes", ph->name, mt_mem_cat_names[cat]);
            rc = mt_store_metric(st, run_id, -1, name, (double)ph->bytes[cat], "bytes");
        }
        snprintf(name, sizeof name, "plan_%s_peak_bytes", ph->name);
        if (rc == 0) rc = mt_store_metric(st, run_id, -1, name, total, "bytes");
        double heap = 0.0;
        const char *why = NULL;
        snprintf(name, sizeof name, "%s_unaccounted_bytes", ph->name);
        if (rc == 0)
            rc = measured(regs, n, ph->region[0] ? ph->region : ph->name, &heap, &why)
                     ? mt_store_metric(st, run_id, -1, name, heap - total, "bytes")
                     : mt_store_metric_unavailable(st, run_id, -1, name, "bytes", why);
    }
    if (rc != 0) snprintf(err, errlen, "witnesses: %s", mt_store_error(st));
    mt_read_close(rd);
    return rc;
}
