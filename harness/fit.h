/* harness/fit.h — `memtrade fit`: the most accurate configuration of a model under a
 * memory budget, for serving or for training.
 *
 * What it is for: enumerating the configurations of the knobs memtrade has (fit.c),
 * predicting each one's bytes exactly with the workloads' plan() hooks (fit_plan.c) plus
 * the runtime term measured by earlier runs, and its accuracy from runs in the database
 * or from short runs fit starts itself (fit_measure.c); per-tensor bit widths come from
 * the knapsack of fit_solve.h over measured per-layer sensitivities.
 * What it is not for: printing (cmd_fit.c), or running anything itself (it execs
 * `memtrade run`, so every measured run is an ordinary run in the database).
 */
#ifndef MT_HARNESS_FIT_H
#define MT_HARNESS_FIT_H

#include <stddef.h>
#include <stdint.h>

#include <memtrade/workload.h>

#include "plugins.h"

#define MT_FIT_MAX_PARAMS 16

/* One configuration: a workload and the parameters fit sets (the others at defaults). */
struct mt_fit_config {
    char family[32];      /* "fp32", "uniform", "mixed"; training: "fp32-adamw", ...,
                           * "zero-2", "fine-tune-lora", "fine-tune-qlora" */
    const char *workload; /* static, or the registry's name */
    size_t n;
    char key[MT_FIT_MAX_PARAMS][24];
    char val[MT_FIT_MAX_PARAMS][512];
    /* the prediction: the plan of the goal's phase (infer or train) without the corpus the
     * run holds whole (a deployment does not), plus the runtime term */
    size_t plan_bytes;
    size_t cat[MT_MEM_CAT_COUNT];
    long long runtime; /* measured residual added (bytes; may be negative), see runtime_src */
    int runtime_known; /* 1: runtime is its class's stored term; 0: none is stored for the
                        * class (--no-measure runs no probe): runtime is 0 and unavailable */
    size_t bytes;      /* plan_bytes + runtime */
    /* the predicted accuracy (metric of struct mt_fit; lower is better) */
    int has_acc;
    double acc;
    double acc_kv;     /* of acc: the KV-cache format's delta (serving) */
    char acc_src[160]; /* "db run 12", "measured run 40", "sensitivity: base run 3 + ..." */
    /* the fill (mt_fit_fill): the knobs that move bytes but not the math, set to spend
     * what the budget leaves; filled = 1 once done */
    int filled;
    char fill[192];       /* "decode_sequences=5", "micro_batch=16 every=1 ...", "" */
    size_t unused;        /* budget - bytes */
    char unused_why[384]; /* when 5 % or more is unused: why no step takes it */
    int unused_coarse;    /* 5 % or more unused although the fill tried every step of its
                           * knobs: the smallest step above c is larger than what is left
                           * ("no finer step: "), or c is at the knobs' largest ("nothing
                           * left to spend: ") */
};

/* Contract: sets (appends or replaces) parameter k of c. Returns 0, or -1 when full or the
 * value does not fit. */
int mt_fit_set(struct mt_fit_config *c, const char *k, const char *v);
/* Contract: the value of parameter k in c, or NULL. */
const char *mt_fit_get(const struct mt_fit_config *c, const char *k);
/* Contract: "k=v k=v" of c's parameters other than model and eval_tokens, into buf. */
char *mt_fit_brief(const struct mt_fit_config *c, char *buf, size_t cap);

struct mt_store;
struct mt_fit_runner; /* fit_measure.c */

struct mt_fit {
    const struct mt_registry *reg;
    int goal;      /* MT_PLAN_SERVING or MT_PLAN_TRAINING */
    size_t budget; /* bytes */
    const char *model;
    size_t context;     /* serving: decode_tokens (0 = the model's); training: seq (0 = default) */
    int metric;         /* 0: kl_mean (serving), 1: val_bpb */
    size_t eval_tokens; /* validation bytes every measured run scores */
    size_t steps;       /* training: steps of every training run (0 = workload default);
                         * fine-tune: the adapters' steps (finetune_steps) */
    int finetune;       /* training goal, fine-tuning the trained reference: LoRA / QLoRA */
    size_t ranks;       /* training: > 1 adds the multi-rank workloads with a plan() (ZeRO
                         * stages, ...) at this many ranks; the budget is per rank */
    struct mt_fit_runner *runner; /* database reads and measured runs */
};

/* What a search gives back. */
struct mt_fit_result {
    struct mt_fit_config best;
    int has_best;
    /* the best fitting configuration of each family (the chosen one's family too) */
    struct mt_fit_config family_best[16];
    size_t n_families;
    size_t considered, fitting; /* configurations planned, and those within the budget */
    /* largest serving context (decode_tokens) and concurrent sequences, or largest
     * micro-batch for training, with the chosen knobs; 0 = not found */
    size_t max_context, max_sequences, max_batch;
    size_t model_context; /* the model's trained context T that bounds max_context (0: unknown) */
    /* mixed: per-layer sensitivities measured, and the knapsack's capacity */
    size_t n_sensitivity_runs;
    /* what was not searched and why ("workload zero has no plan() in this build"), or "" */
    char not_searched[512];
};

/* Contract: searches every configuration of f's goal for f->model, fills *out. Returns 0,
 * 1 when nothing fits the budget (out->best empty; the smallest configuration in
 * out->family_best), or -1 with err (a parameter a workload refuses, a run that failed,
 * a database error). Starts runs through f->runner when an accuracy is missing. */
int mt_fit_search(const struct mt_fit *f, struct mt_fit_result *out, char *err, size_t errlen);

/* Contract: spends what f->budget leaves over c (a configuration that fits) on the knobs
 * of its workload that move bytes but keep its accuracy: serving workloads (those with
 * decode_sequences) the most concurrent sequences at c's context, then the longest
 * context of one more sequence that still fits (decode_extra_tokens); mixed_precision the
 * largest micro-batch dividing the batch (accumulation keeps it), the least checkpointing
 * (every), no selective recompute and the dense attention kernel, whichever fits with the
 * most bytes (ties in that order of preference); others none. Sets c->filled, fill,
 * unused and, when 5 % or more stays unused, unused_why (the next step's bytes, or that
 * the workload has no such knob; unused_coarse = 1 unless the latter). Training also
 * offloads the optimizer state (offload=optimizer, last in preference); when 5 % or more
 * stays unused at the whole batch without recompute, the largest batch that fits as one
 * micro-batch is measured through f->runner (a larger batch changes the training) and
 * taken when its accuracy is no worse than c's (c->acc, acc_src then that run's). c->bytes
 * never exceeds the budget. Returns 0, or -1 with err (a plan failed, a measured run
 * failed). */
int mt_fit_fill(const struct mt_fit *f, struct mt_fit_config *c, char *err, size_t errlen);

/* Contract: the plan of c for goal (fills plan_bytes, cat, and the config key in
 * key[keycap], when key is not NULL). Returns 0, or -1 with err (the workload is unknown
 * or refuses the parameters, or has no plan). fit_plan.c. */
int mt_fit_plan(const struct mt_registry *reg, int goal, struct mt_fit_config *c, char *key,
                size_t keycap, char *err, size_t errlen);

#endif
