/* harness/fit_measure.h — what `memtrade fit` knows from measurement: a configuration's
 * run in the database (through results/' read API), or a short run fit starts itself by
 * executing `memtrade run` (an ordinary run, stored like any other), and the stored runtime
 * term of a configuration's class (results/runtime.h, measured by its probe on first need).
 * Not for: choosing (fit.c) or printing (cmd_fit.c).
 */
#ifndef MT_HARNESS_FIT_MEASURE_H
#define MT_HARNESS_FIT_MEASURE_H

#include <stddef.h>
#include <stdint.h>

#include "fit.h"

struct mt_fit_runner {
    const char *exe; /* the memtrade binary */
    const char *db, *out;
    int measure;    /* 1: start a run when the database lacks one */
    size_t started; /* runs started so far */
    /* runtime terms read so far, per class (results/runtime.h) */
    char rt_class[128][1024]; /* 128: tiny training searches up to 64 classes */
    long long rt_term[128];
    int rt_found[128];
    size_t rt_n;
};

/* The metrics fit reads from a run. */
enum mt_fit_metric {
    MT_FM_KL,        /* kl_mean */
    MT_FM_BPB,       /* val_bpb */
    MT_FM_INFER,     /* infer_peak_bytes */
    MT_FM_TRAIN,     /* train_peak_bytes */
    MT_FM_KV_KL,     /* kv_kl */
    MT_FM_KV_LOSS,   /* kv_val_loss */
    MT_FM_KV_LOSS32, /* kv_val_loss_fp32 */
    MT_FM_COUNT
};

struct mt_fit_measure {
    int64_t run; /* the run's id */
    int fresh;   /* 1: started by this fit, 0: found in the database */
    int has[MT_FM_COUNT];
    double v[MT_FM_COUNT];
    double peak_cat[MT_MEM_CAT_COUNT]; /* the goal's peak per category (NaN: not stored) */
};

/* Contract: the ok run of configuration c (its config key, as `memtrade run` computes
 * it) in the database; when there is none and r->measure, starts `memtrade run` for it
 * (heap profiler `heap`: "off" for accuracy, "sampled" for --verify; `force` starts one
 * even when the database has one; `label`, or NULL, is stored as the run's label) and
 * reads it back. Returns 1 with *m, 0 when the
 * database has none and measuring is off, -1 with err (a run that did not end ok, a
 * database error). Says on stderr what it starts. */
int mt_fit_measured(struct mt_fit_runner *r, const struct mt_fit *f, const struct mt_fit_config *c,
                    const char *heap, int force, const char *label, struct mt_fit_measure *m,
                    char *err, size_t errlen);

/* Contract: the runtime term of configuration c for fit's goal: the stored runtime term
 * `accounted` (results/runtime.h: the measured peak of the goal, infer_peak_bytes or
 * train_peak_bytes, beyond the plan of its phase without the corpus: the kernels' scratch
 * the plan does not size) of c's class on this build and machine, the larger of the
 * class's two histories; the same terms `memtrade plan` shows. When none is stored and
 * r->measure and c's plan (c->plan_bytes, mt_fit_plan) is within f->budget, the class's
 * probe runs first (harness/runtime_probe.h, a few seconds on tiny). Returns 1 with
 * *term, 0 when none is stored (*term = 0), or -1 with err. */
int mt_fit_runtime_term(struct mt_fit_runner *r, const struct mt_fit *f,
                        const struct mt_fit_config *c, long long *term, char *err, size_t errlen);

#endif
