/* fit_plan.c — a fit configuration's parameters and its exact bytes (fit.h): the same
 * resolution and plan() hook `memtrade plan` and `memtrade run` use (plan.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fit.h"
#include "plan.h"

int mt_fit_set(struct mt_fit_config *c, const char *k, const char *v)
{
    size_t i = 0;
    while (i < c->n && strcmp(c->key[i], k) != 0)
        i++;
    if (i == MT_FIT_MAX_PARAMS || strlen(k) >= sizeof c->key[0] || strlen(v) >= sizeof c->val[0])
        return -1;
    snprintf(c->key[i], sizeof c->key[i], "%s", k);
    snprintf(c->val[i], sizeof c->val[i], "%s", v);
    if (i == c->n) c->n++;
    return 0;
}

const char *mt_fit_get(const struct mt_fit_config *c, const char *k)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->key[i], k)) return c->val[i];
    return NULL;
}

char *mt_fit_brief(const struct mt_fit_config *c, char *buf, size_t cap)
{
    size_t at = 0;
    buf[0] = 0;
    at += (size_t)snprintf(buf, cap, "%s", c->workload);
    for (size_t i = 0; i < c->n && at < cap; i++) {
        if (!strcmp(c->key[i], "model") || !strcmp(c->key[i], "eval_tokens") ||
            !strcmp(c->key[i], "steps"))
            continue;
        at += (size_t)snprintf(buf + at, cap - at, " %s=%s", c->key[i], c->val[i]);
    }
    return buf;
}

int mt_fit_plan(const struct mt_registry *reg, int goal, struct mt_fit_config *c, char *key,
                size_t keycap, char *err, size_t errlen)
{
    const struct mt_plugin *pl = mt_plugins_find(reg, c->workload);
    if (!pl) {
        snprintf(err, errlen, "fit needs workload '%s', which this build does not have",
                 c->workload);
        return -1;
    }
    const char *keys[MT_FIT_MAX_PARAMS], *vals[MT_FIT_MAX_PARAMS];
    for (size_t i = 0; i < c->n; i++)
        keys[i] = c->key[i], vals[i] = c->val[i];
    struct mt_plan rp = {0};
    struct mt_mem_plan plan;
    rp.plugin = pl;
    rp.threads = 1;
    int rc = -1;
    if (mt_params_resolve(&pl->desc, keys, vals, c->n, &rp.params, err, errlen) != 0 ||
        mt_plan_finish(&rp, 1, MT_UNKNOWN_ESTIMATE, err, errlen) != 0)
        goto out;
    int have = mt_plan_memory(&rp, &plan, err, errlen);
    if (have == 0) snprintf(err, errlen, "workload '%s' has no memory plan", c->workload);
    if (have <= 0) goto out;
    const char *phase = goal == MT_PLAN_SERVING ? "infer" : "train";
    const struct mt_mem_plan_phase *ph = NULL;
    for (size_t i = 0; i < plan.n_phases && !ph; i++)
        if (!strcmp(plan.phase[i].name, phase)) ph = &plan.phase[i];
    if (!ph) {
        snprintf(err, errlen, "workload '%s' plans no phase '%s'", c->workload, phase);
        goto out;
    }
    /* the corpus the run holds whole is the harness's, not the deployment's or the step's */
    size_t corpus =
        mt_params_index(&pl->desc, "corpus") >= 0 ? (size_t)strtoull(rp.corpus_bytes, NULL, 10) : 0;
    c->plan_bytes = 0;
    for (int k = 0; k < MT_MEM_CAT_COUNT; k++) {
        c->cat[k] = ph->bytes[k];
        if (k == MT_MEM_DATA) c->cat[k] -= corpus < c->cat[k] ? corpus : c->cat[k];
        c->plan_bytes += c->cat[k];
    }
    if (key) snprintf(key, keycap, "%s", rp.config_key);
    rc = 0;
out:
    mt_plan_free(&rp);
    return rc;
}
