/* witness.c — the plan beside the measured peaks of a run (witness.h). */
#include "witness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "reader.h"
#include "runtime.h"
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

/* Stores <phase>_runtime_bytes (the runtime terms of the run's class: what the heap holds
 * beyond the plan, measured once per build and machine) and <phase>_residual_bytes (the
 * unaccounted bytes minus them), each unavailable with the reason when not known.
 * `unaccounted` is NaN with `no_heap` saying why when the heap profiler has no figure. */
static int store_runtime(struct mt_store *st, int64_t run_id, const struct mt_plan *p,
                         const char *phase, double unaccounted, const char *no_heap)
{
    static const char pre[] = "no runtime terms: "; /* the residual's reason, then the term's */
    char rt[96], res[96], why[2400];
    char *rt_why = why + sizeof pre - 1;
    size_t rt_cap = sizeof why - (sizeof pre - 1);
    double bytes = 0.0;
    memcpy(why, pre, sizeof pre);
    snprintf(rt, sizeof rt, "%s_runtime_bytes", phase);
    snprintf(res, sizeof res, "%s_residual_bytes", phase);
    int has = mt_runtime_run_status(st, run_id, phase, &bytes, NULL, rt_why, rt_cap);
    if (has < 0) return -1;
    if (!has && p->runtime_note) snprintf(rt_why, rt_cap, "%s", p->runtime_note);
    int rc = has ? mt_store_metric(st, run_id, -1, rt, bytes, "bytes")
                 : mt_store_metric_unavailable(st, run_id, -1, rt, "bytes", rt_why);
    if (rc == 0 && has && !isnan(unaccounted))
        return mt_store_metric(st, run_id, -1, res, unaccounted - bytes, "bytes");
    if (rc == 0 && has) snprintf(why, sizeof why, "no heap figure of the phase: %s", no_heap);
    return rc ? rc : mt_store_metric_unavailable(st, run_id, -1, res, "bytes", why);
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
        int has_heap = measured(regs, n, ph->region[0] ? ph->region : ph->name, &heap, &why);
        if (rc == 0)
            rc = has_heap ? mt_store_metric(st, run_id, -1, name, heap - total, "bytes")
                          : mt_store_metric_unavailable(st, run_id, -1, name, "bytes", why);
        if (rc == 0)
            rc = store_runtime(st, run_id, p, ph->name, has_heap ? heap - total : NAN,
                               has_heap ? NULL : why);
    }
    if (rc != 0) snprintf(err, errlen, "witnesses: %s", mt_store_error(st));
    mt_read_close(rd);
    return rc;
}
