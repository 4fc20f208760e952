/* harness/plan.c — derived fields of a planned run (see plan.h). */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "store.h"

void mt_plan_free(struct mt_plan *p)
{
    free(p->label);
    free(p->config_key);
    mt_params_free(&p->params);
    memset(p, 0, sizeof *p);
}

int mt_plan_finish(struct mt_plan *p, uint64_t fallback_seed, uint64_t unknown_estimate, char *err,
                   size_t errlen)
{
    const struct mt_workload *wl = &p->plugin->desc;
    struct mt_store_kv *kv = calloc(wl->n_params + 1, sizeof *kv);
    if (!kv) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < wl->n_params; i++)
        kv[i] = (struct mt_store_kv){wl->params[i].name, p->params.value[i]};
    free(p->config_key);
    p->config_key = mt_store_config_key(wl->name, kv, wl->n_params, err, errlen);
    free(kv);
    if (!p->config_key) return -1;

    long k = mt_params_index(wl, "seed");
    p->seed = k >= 0 ? strtoull(p->params.value[k], NULL, 10) : fallback_seed;
    p->ranks = 1;
    if (wl->ranks_param) {
        long r = mt_params_index(wl, wl->ranks_param);
        p->ranks = (int)strtol(p->params.value[r], NULL, 10);
        if (p->ranks < 1) p->ranks = 1;
    }
    /* Ranks share the cores the run was given: N ranks of all cores each would
     * oversubscribe the machine N-fold and measure the scheduler, not the workload. */
    if (p->threads_auto && p->ranks > 1) {
        p->threads /= p->ranks;
        if (p->threads < 1) p->threads = 1;
    }
    p->estimate_known = 0;
    p->mem_estimate = unknown_estimate * (uint64_t)p->ranks;
    if (wl->mem_estimate) {
        struct mt_context c;
        mt_context_init_params_only(&c, &p->params);
        size_t est = wl->mem_estimate(&c.pub);
        if (est > 0 && !c.bug[0]) {
            p->mem_estimate = (uint64_t)est * (uint64_t)p->ranks;
            p->estimate_known = 1;
        }
    }
    return 0;
}

char *mt_plan_brief(const struct mt_plan *p, char *buf, size_t cap)
{
    const struct mt_workload *wl = &p->plugin->desc;
    size_t off = (size_t)snprintf(buf, cap, "%s", wl->name);
    if (p->label && off < cap) off += (size_t)snprintf(buf + off, cap - off, ".%s", p->label);
    for (size_t i = 0; i < wl->n_params && off < cap; i++) {
        char canon[256], why[256];
        /* Only what differs from the default: that is what tells runs apart. */
        if (mt_params_check_value(wl->name, &wl->params[i], wl->params[i].def, canon, sizeof canon,
                                  why, sizeof why) == 0 &&
            strcmp(canon, p->params.value[i]) == 0)
            continue;
        off += (size_t)snprintf(buf + off, cap - off, " %s=%s", wl->params[i].name,
                                p->params.value[i]);
    }
    if (p->repeat && off < cap) snprintf(buf + off, cap - off, " #%zu", p->repeat);
    return buf;
}
