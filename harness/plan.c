/* harness/plan.c — derived fields of a planned run (see plan.h). */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child/context.h"
#include "data.h"
#include "store.h"

/* Corpora already hashed by this process, by path: a grid hashes each one once. The
 * parent is single-threaded while it plans. */
struct corpus_seen {
    struct corpus_seen *next;
    int ok;
    uint64_t hash;
    size_t bytes;
    char *why; /* when !ok */
    char path[];
};
static struct corpus_seen *seen;

static const struct corpus_seen *corpus_lookup(const char *path)
{
    for (const struct corpus_seen *c = seen; c; c = c->next)
        if (strcmp(c->path, path) == 0) return c;
    size_t len = strlen(path);
    struct corpus_seen *c = calloc(1, sizeof *c + len + 1);
    if (!c) return NULL;
    memcpy(c->path, path, len + 1);
    char why[1024];
    size_t files;
    c->ok = mt_corpus_fingerprint(path, &c->hash, &c->bytes, &files, why, sizeof why) == 0;
    if (!c->ok && !(c->why = strdup(why))) {
        free(c);
        return NULL;
    }
    c->next = seen;
    seen = c;
    return c;
}

/* Fills the plan's corpus identity; -1 with err for a corpus the user named that cannot
 * be read or is empty. */
static int plan_corpus(struct mt_plan *p, char *err, size_t errlen)
{
    const struct mt_workload *wl = &p->plugin->desc;
    long k = mt_params_index(wl, "corpus");
    const char *path = NULL, *from = "parameter 'corpus'";
    if (k >= 0 && wl->params[k].type == MT_PARAM_STRING && p->params.value[k][0])
        path = p->params.value[k];
    if (!path && getenv("MEMTRADE_CORPUS") && getenv("MEMTRADE_CORPUS")[0])
        path = getenv("MEMTRADE_CORPUS"), from = "MEMTRADE_CORPUS";
    int named = path != NULL;
    if (!path) path = MT_CORPUS_DEFAULT_DIR;
    const struct corpus_seen *c = corpus_lookup(path);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (named && !c->ok) {
        snprintf(err, errlen, "workload '%s': %s: %s", wl->name, from, c->why);
        return -1;
    }
    if (named && c->bytes == 0) {
        snprintf(err, errlen, "workload '%s': %s: corpus %s is empty", wl->name, from, path);
        return -1;
    }
    free(p->corpus_name);
    if (!(p->corpus_name = strdup(path))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* The default folder may be absent where no workload reads it; one that does fails in
     * its child with the loader's message, as before. */
    if (c->ok)
        snprintf(p->corpus_hash, sizeof p->corpus_hash, "%016llx", (unsigned long long)c->hash);
    else
        snprintf(p->corpus_hash, sizeof p->corpus_hash, "none");
    snprintf(p->corpus_bytes, sizeof p->corpus_bytes, "%zu", c->ok ? c->bytes : (size_t)0);
    return 0;
}

size_t mt_plan_kv(const struct mt_plan *p, struct mt_store_kv *kv, int keyed_only)
{
    const struct mt_workload *wl = &p->plugin->desc;
    size_t n = 0;
    for (size_t i = 0; i < wl->n_params; i++)
        kv[n++] = (struct mt_store_kv){wl->params[i].name, p->params.value[i]};
    kv[n++] = (struct mt_store_kv){"corpus.hash", p->corpus_hash};
    kv[n++] = (struct mt_store_kv){"corpus.bytes", p->corpus_bytes};
    if (!keyed_only && p->corpus_name)
        kv[n++] = (struct mt_store_kv){"corpus.name", p->corpus_name};
    return n;
}

void mt_plan_free(struct mt_plan *p)
{
    free(p->label);
    free(p->config_key);
    free(p->corpus_name);
    free(p->runtime_note);
    mt_params_free(&p->params);
    memset(p, 0, sizeof *p);
}

/* Whether a plugin hook run in the params-only context `c` refused the parameters: `bad`
 * is the hook's return value. On refusal writes "workload '<name>': <why>" to err, the
 * reason being the hook's bug, its mt_error, or `fallback`, and returns 1; else 0. */
static int hook_refused(const struct mt_context *c, const char *name, int bad, const char *fallback,
                        char *err, size_t errlen)
{
    if (!bad && !c->bug[0]) return 0;
    snprintf(err, errlen, "workload '%s': %s", name,
             c->bug[0]     ? c->bug
             : c->error[0] ? c->error
                           : fallback);
    return 1;
}

int mt_plan_finish(struct mt_plan *p, uint64_t fallback_seed, uint64_t unknown_estimate, char *err,
                   size_t errlen)
{
    const struct mt_workload *wl = &p->plugin->desc;
    if (wl->unavailable) {
        /* A stand-in (ABI 1.2): listed, never run; a usage error like a refused check. */
        snprintf(err, errlen, "workload '%s' is unavailable: %s", wl->name, wl->unavailable);
        return -1;
    }
    if (wl->check) {
        /* Cross-parameter constraints, before any child starts: a refusal is a usage
         * error. Only the param_* getters and mt_error work in this context. */
        struct mt_context c;
        mt_context_init_params_only(&c, &p->params);
        if (hook_refused(&c, wl->name, wl->check(&c.pub),
                         "parameters refused by the plugin's check (no reason given)", err, errlen))
            return -1;
    }
    if (plan_corpus(p, err, errlen)) return -1;
    struct mt_store_kv *kv = calloc(wl->n_params + MT_PLAN_EXTRA_KV, sizeof *kv);
    if (!kv) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t nkv = mt_plan_kv(p, kv, 1);
    free(p->config_key);
    p->config_key = mt_store_config_key(wl->name, kv, nkv, err, errlen);
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

int mt_plan_memory(const struct mt_plan *p, struct mt_mem_plan *out, char *err, size_t errlen)
{
    const struct mt_workload *wl = &p->plugin->desc;
    memset(out, 0, sizeof *out);
    if (!wl->plan) return 0;
    struct mt_context c;
    mt_context_init_params_only(&c, &p->params);
    if (hook_refused(&c, wl->name, wl->plan(&c.pub, out),
                     "its plan() refused the parameters (no reason given)", err, errlen))
        return -1;
    size_t corpus = (size_t)strtoull(p->corpus_bytes, NULL, 10);
    if (mt_params_index(wl, "corpus") >= 0)
        for (size_t i = 0; i < out->n_phases && i < MT_MEM_PLAN_MAX_PHASES; i++)
            out->phase[i].bytes[MT_MEM_DATA] += corpus;
    return 1;
}

void mt_plan_peaks(const struct mt_mem_plan *p, int goal, struct mt_plan_peaks *out)
{
    memset(out, 0, sizeof *out);
    out->total_phase = -1;
    for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++)
        out->phase[cat] = -1;
    for (size_t i = 0; i < p->n_phases && i < MT_MEM_PLAN_MAX_PHASES; i++) {
        const struct mt_mem_plan_phase *ph = &p->phase[i];
        if (ph->goal != goal) continue;
        size_t sum = 0;
        for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++) {
            sum += ph->bytes[cat];
            if (ph->bytes[cat] > out->bytes[cat] || (out->phase[cat] < 0 && ph->bytes[cat])) {
                out->bytes[cat] = ph->bytes[cat];
                out->phase[cat] = (int)i;
            }
        }
        if (out->total_phase < 0 || sum > out->total) {
            out->total = sum;
            out->total_phase = (int)i;
        }
    }
}
