/* harness/plan.h — one planned run: which plugin, resolved parameters, repeat, seed and
 * limits. Produced by `memtrade run` (one plan) and the sweep expander (a grid), consumed
 * by the scheduler and the runner. Not for: running anything. */
#ifndef MT_HARNESS_PLAN_H
#define MT_HARNESS_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "plugins.h"

struct mt_plan {
    const struct mt_plugin *plugin; /* borrowed from the registry */
    char *label;                    /* owned; the sweep section label, or NULL */
    struct mt_params params;        /* owned */
    size_t repeat;                  /* 0-based */
    uint64_t seed;
    int threads;           /* threads per rank */
    int threads_auto;      /* 1: `threads` is the machine's share, split among ranks */
    double timeout_s;      /* 0 = none */
    uint64_t mem_limit;    /* bytes per rank, 0 = none */
    int ranks;             /* 1 unless the workload has ranks_param */
    uint64_t mem_estimate; /* bytes the scheduler counts for it (all ranks) */
    int estimate_known;
    char *config_key; /* owned: canonical 'workload?k=v&...' (params and corpus identity) */
    /* The corpus the run reads (the workload's `corpus` parameter when it declares one and
     * it is set, else $MEMTRADE_CORPUS, else the model library's default folder): what
     * makes it part of the configuration. */
    char corpus_hash[24];  /* FNV-1a 64 of its bytes, 16 hex digits; "none" when the
                            * default folder is missing (a plugin that needs it fails) */
    char corpus_bytes[24]; /* its size in bytes, decimal */
    char *corpus_name;     /* owned: the path it was read from */
    size_t grid_index;     /* position in the whole grid (before sharding) */
    char *runtime_note;    /* owned, or NULL: why `run --measure-runtime` left the class of
                            * its runtime terms unmeasured (its probe failed, multi-rank),
                            * stored as the reason of <phase>_runtime_bytes (witness.h) */
};

/* Pairs a run stores beside its parameters (keys outside the [a-z0-9_] of parameter
 * names, so they never collide): corpus.hash and corpus.bytes (in the config key too) and
 * corpus.name (stored, not keyed: the same text under another name is the same
 * configuration). */
#define MT_PLAN_EXTRA_KV 3

struct mt_store_kv;
/* Contract: fills kv (capacity n_params + MT_PLAN_EXTRA_KV) with the resolved parameters
 * then the corpus pairs, all borrowed from the plan; returns how many. `keyed_only`
 * leaves out the pairs that are not part of the config key. */
size_t mt_plan_kv(const struct mt_plan *p, struct mt_store_kv *kv, int keyed_only);

/* Contract: frees what a plan owns. */
void mt_plan_free(struct mt_plan *p);

/* Contract: fills the derived fields of `p` from its plugin and params: ranks (from
 * ranks_param; with threads_auto the threads are divided among the ranks, at least 1),
 * the corpus identity (content hashed once per path per process), config_key, seed (the
 * `seed` parameter when the workload declares one, else `fallback_seed`) and the memory
 * estimate (plugin's mem_estimate x ranks, or `unknown_estimate` when it has none). Runs
 * the plugin's check() hook. Returns 0, or -1 with err for a corpus path that cannot be
 * read or is empty, parameters the plugin's check() refuses, or a plugin marked
 * unavailable (ABI 1.2: a stand-in built without MPI; err gives its reason) — usage
 * errors: nothing has run. */
int mt_plan_finish(struct mt_plan *p, uint64_t fallback_seed, uint64_t unknown_estimate, char *err,
                   size_t errlen);

/* Contract: a one-line summary of the plan's non-default parameters ("model=tiny
 * steps=20"), into buf; returns buf. */
char *mt_plan_brief(const struct mt_plan *p, char *buf, size_t cap);

/* Contract: the memory plan (workload.h ABI 1.4) of a finished plan `p` (mt_plan_finish):
 * zeroes *out and calls its plugin's plan() hook in the parent (a params-only context),
 * then, for a workload that reads the corpus (it declares a `corpus` parameter), adds the
 * corpus to category data of every phase: the run holds the whole text (p->corpus_bytes).
 * Returns 1 when there is a plan, 0 when the plugin has no plan() hook (an older or a
 * plan-less plugin; *out stays empty), -1 with err when the plugin refused the
 * parameters. */
struct mt_mem_plan;
int mt_plan_memory(const struct mt_plan *p, struct mt_mem_plan *out, char *err, size_t errlen);

/* Contract: the peak of each category over the phases of `goal` (enum mt_plan_goal) and
 * the phase it occurs in (index into out->phase, -1 when no phase of the goal holds it),
 * and the largest phase total with its phase. Pure. */
struct mt_plan_peaks {
    size_t bytes[MT_MEM_CAT_COUNT];
    int phase[MT_MEM_CAT_COUNT];
    size_t total;
    int total_phase; /* -1 when the plan has no phase of the goal */
};
void mt_plan_peaks(const struct mt_mem_plan *p, int goal, struct mt_plan_peaks *out);

#endif
