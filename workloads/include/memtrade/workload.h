/* memtrade/workload.h — the plugin ABI.
 *
 * What it is for: a workload plugin is a shared object that exports exactly one symbol,
 * `memtrade_workload`, a `struct mt_workload` descriptor. The harness dlopens it, checks
 * the descriptor (ABI major version, struct_size, required hooks, the parameter table)
 * before any child starts, resolves and range-checks the user's parameters against the
 * table, and later calls run(ctx) in an isolated child process.
 * What it is not for: a plugin never writes the database, prints to the terminal or calls
 * exit(); everything it has to say goes through the context `ctx`.
 *
 * Versioning (SQLite's iVersion / fio's ops version, without fio's exact equality):
 * - MEMTRADE_WORKLOAD_ABI_MAJOR changes when a field changes meaning; the loader refuses
 *   any other major.
 * - Fields are only ever appended. A plugin built against an older minor has a smaller
 *   struct_size; the loader treats the missing tail as NULL/0. The same holds for
 *   struct mt_ctx_ops: test `MT_CTX_HAS(ctx, field)` before calling a newer hook.
 * - A minor may give a meaning to a field that older plugins had no use for (1.3:
 *   `choices` on INT parameters); the loader keeps the old meaning for their plugins.
 *
 * See workloads/skeleton/skeleton.c for a commented example plugin.
 */
#ifndef MEMTRADE_WORKLOAD_H
#define MEMTRADE_WORKLOAD_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <memtrade/memcat.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEMTRADE_WORKLOAD_ABI_MAJOR 1
#define MEMTRADE_WORKLOAD_ABI_MINOR 4 /* 1.1: check(); 1.2: unavailable; 1.3: INT choices;
                                      * 1.4: plan() */
#define MEMTRADE_WORKLOAD_SYMBOL "memtrade_workload"

/* ---------------------------------------------------------------- parameters */

enum mt_param_type {
    MT_PARAM_INT = 1,    /* int64; range [min, max]; from ABI 1.3 optionally one of `choices` */
    MT_PARAM_FLOAT = 2,  /* double; range [min, max] */
    MT_PARAM_STRING = 3, /* free text (a path, a prompt) */
    MT_PARAM_CHOICE = 4, /* one of `choices`, a '|'-separated list: "fp32|bf16|fp16" */
    MT_PARAM_BOOL = 5    /* on|off, true|false, 1|0, yes|no */
};

struct mt_param_spec {
    const char *name;        /* [a-z0-9_]+, unique within the plugin */
    enum mt_param_type type; /* see above */
    const char *def;         /* default, as text; must itself pass the checks */
    double min, max;         /* inclusive range for INT and FLOAT; ignored otherwise */
    /* CHOICE: the allowed texts, "a|b|c". INT (ABI 1.3): the allowed integers, "16|8|4"
     * (each within [min, max]); NULL = any integer in range. A plugin of an older minor
     * keeps the old meaning: the harness ignores `choices` on its INT parameters. */
    const char *choices;
    const char *help;        /* one line, shown by `memtrade describe` */
};

/* ---------------------------------------------------------------- context */

struct mt_ctx;

enum mt_log_level { MT_LOG_DEBUG = 0, MT_LOG_INFO = 1, MT_LOG_WARN = 2, MT_LOG_ERROR = 3 };

/* The harness's side of the ABI: every hook a plugin may call. All hooks are safe to
 * call from the thread that entered run(); `metric`, `sample`, `log` and `progress` are
 * also safe from other threads. Strings passed in are copied before the hook returns. */
struct mt_ctx_ops {
    size_t struct_size; /* sizeof(struct mt_ctx_ops) of the harness that filled it */

    /* Typed parameters, already validated against the table. Asking for a name that is
     * not in the table, or with the wrong type, is a plugin bug: the call returns 0/NULL
     * and the run fails with a message naming the parameter. */
    int64_t (*param_int)(struct mt_ctx *ctx, const char *name);
    double (*param_float)(struct mt_ctx *ctx, const char *name);
    const char *(*param_str)(struct mt_ctx *ctx, const char *name); /* STRING and CHOICE */
    int (*param_bool)(struct mt_ctx *ctx, const char *name);

    /* A result. `name` is a standard metric name (DESIGN.md) or a plugin-specific one;
     * `unit` is mandatory ("bytes", "bits/byte", "nats/byte", "tokens/s", "s", "ratio",
     * "count", ...). Reporting the same name twice keeps the last value. */
    void (*metric)(struct mt_ctx *ctx, const char *name, double value, const char *unit);
    /* A metric that could not be measured: stored as unavailable with the reason, never
     * as zero. */
    void (*metric_na)(struct mt_ctx *ctx, const char *name, const char *unit,
                      const char *reason);
    /* One point of a named series (loss curve: series "train_loss", x = step). */
    void (*sample)(struct mt_ctx *ctx, const char *series, double x, double y);

    /* Phases. Regions nest (forward inside step); begin/end must pair on one thread. The
     * harness records wall time, CPU time and counter deltas per region, and the heap
     * profiler's timeline shows the current region. */
    void (*region_begin)(struct mt_ctx *ctx, const char *name);
    void (*region_end)(struct mt_ctx *ctx, const char *name);

    /* Tags the calling thread's following allocations (enum mt_mem_cat); returns the
     * previous category. */
    int (*mem_category)(struct mt_ctx *ctx, int cat);

    /* Work done so far out of `total` (any unit, e.g. steps); drives progress and ETA. */
    void (*progress)(struct mt_ctx *ctx, double done, double total);
    void (*vlog)(struct mt_ctx *ctx, enum mt_log_level level, const char *fmt, va_list ap);
    /* Sets the error message that run() returning non-zero will be recorded with. */
    void (*verror)(struct mt_ctx *ctx, const char *fmt, va_list ap);

    /* Seeded RNG (the run's seed): a uniform 64-bit value; reproducible per run. */
    uint64_t (*rng_u64)(struct mt_ctx *ctx);

    /* Environment of the run. */
    uint64_t (*seed)(struct mt_ctx *ctx);       /* the run's seed parameter */
    int (*threads)(struct mt_ctx *ctx);          /* threads this rank may use */
    int (*rank)(struct mt_ctx *ctx);             /* 0 .. nranks-1 */
    int (*nranks)(struct mt_ctx *ctx);           /* 1 unless started through the launcher */
    const char *(*cache_dir)(struct mt_ctx *ctx);  /* model cache, created, writable */
    /* Text file or folder to train/evaluate on ($MEMTRADE_CORPUS; "" = the model's
     * default). A STRING parameter named `corpus` overrides it by convention: the harness
     * hashes whichever one a run reads into its configuration and refuses a missing one. */
    const char *(*corpus)(struct mt_ctx *ctx);
    const char *(*scratch_dir)(struct mt_ctx *ctx); /* per-run temporary folder */
};

/* The context a plugin receives. Opaque beyond `ops`. */
struct mt_ctx {
    const struct mt_ctx_ops *ops;
};

#define MT_CTX_HAS(ctx, field)                                                             \
    ((ctx)->ops->struct_size >= offsetof(struct mt_ctx_ops, field) + sizeof((ctx)->ops->field))

/* ---------------------------------------------------------------- memory plan (1.4) */

/* What a run will hold, computed without running it: the bytes of every memory category
 * (enum mt_mem_cat) in each phase of the run, per rank. A phase is a stretch of the run
 * in which the same allocations are live together (a training step, the evaluation, the
 * serving deployment); `goal` says which axis it belongs to. */
enum mt_plan_goal { MT_PLAN_TRAINING = 0, MT_PLAN_SERVING = 1 };
#define MT_MEM_PLAN_MAX_PHASES 8
struct mt_mem_plan_phase {
    char name[24];        /* "train", "eval", "infer", as the run's region names */
    int goal;             /* enum mt_plan_goal */
    size_t bytes[MT_MEM_CAT_COUNT];
    char region[24];      /* the run's region of the phase when not `name` ("": name) */
};
struct mt_mem_plan {
    size_t n_phases;
    struct mt_mem_plan_phase phase[MT_MEM_PLAN_MAX_PHASES];
};

/* ---------------------------------------------------------------- descriptor */

struct mt_workload {
    uint32_t abi_major;  /* MEMTRADE_WORKLOAD_ABI_MAJOR */
    uint32_t abi_minor;  /* MEMTRADE_WORKLOAD_ABI_MINOR */
    size_t struct_size;  /* sizeof(struct mt_workload) */
    const char *name;    /* [a-z0-9_]+, unique among plugins; required */
    const char *summary; /* one line; required */
    const struct mt_param_spec *params; /* the parameter table */
    size_t n_params;
    /* Name of the INT parameter that gives the number of ranks (MPI processes) the run
     * needs, or NULL for a single-process workload. */
    const char *ranks_param;
    /* Optional: peak memory in bytes one run with these parameters is expected to need
     * (per rank), for the scheduler's --mem-budget. Called in the parent with a context
     * whose only working hooks are the param_* getters. NULL = unknown. */
    size_t (*mem_estimate)(struct mt_ctx *ctx);
    /* Required: the work. Returns 0 on success; non-zero is a failure recorded with the
     * message given to mt_error(). Runs in a child process. */
    int (*run)(struct mt_ctx *ctx);
    /* --- ABI 1.1 --- */
    /* Optional: constraints the parameter table cannot say (one parameter's syntax beyond
     * its type, one that must divide another). Called in the parent for every planned
     * run, before the database is touched or any child starts, with a context whose only
     * working hooks are the param_* getters and mt_error(). Returns 0, or non-zero with
     * the reason given to mt_error(): the harness refuses the run as a usage error
     * (exit 2). NULL (or a 1.0 plugin) = the table's checks only. */
    int (*check)(struct mt_ctx *ctx);
    /* --- ABI 1.2 --- */
    /* Optional: why this plugin cannot run in this build, as a stand-in for one whose
     * dependency was missing when it was built ("built without MPI: install openmpi-bin
     * libopenmpi-dev"); NULL (or an older plugin) = it can run. Like PAPI's
     * disabled_reason: the plugin stays listed and described with the reason, and the
     * harness refuses to run it as a usage error (exit 2) before any child starts. Its
     * run() must still exist and should fail with the same reason. */
    const char *unavailable;
    /* --- ABI 1.4 --- */
    /* Optional: the run's memory plan (struct mt_mem_plan), per rank, without running it
     * and without allocating the model: the same functions that size the run's slabs, so
     * for memtrade's own engine the plan equals what the run allocates per category.
     * Called in the parent (`memtrade plan`, and before every run, whose plan is stored
     * beside what the heap profiler and the kernel measured) with a context whose only
     * working hooks are the param_* getters and mt_error(). Fills *out (zeroed by the
     * caller) and returns 0, or non-zero with the reason given to mt_error(). NULL (or an
     * older plugin) = no plan. */
    int (*plan)(struct mt_ctx *ctx, struct mt_mem_plan *out);
};

/* ---------------------------------------------------------------- conveniences */

static inline int64_t mt_param_int(struct mt_ctx *c, const char *n) { return c->ops->param_int(c, n); }
static inline double mt_param_float(struct mt_ctx *c, const char *n) { return c->ops->param_float(c, n); }
static inline const char *mt_param_str(struct mt_ctx *c, const char *n) { return c->ops->param_str(c, n); }
static inline int mt_param_bool(struct mt_ctx *c, const char *n) { return c->ops->param_bool(c, n); }
static inline void mt_metric(struct mt_ctx *c, const char *n, double v, const char *u) { c->ops->metric(c, n, v, u); }
static inline void mt_metric_na(struct mt_ctx *c, const char *n, const char *u, const char *why) { c->ops->metric_na(c, n, u, why); }
static inline void mt_sample(struct mt_ctx *c, const char *s, double x, double y) { c->ops->sample(c, s, x, y); }
static inline void mt_region_begin(struct mt_ctx *c, const char *n) { c->ops->region_begin(c, n); }
static inline void mt_region_end(struct mt_ctx *c, const char *n) { c->ops->region_end(c, n); }
static inline int mt_mem_category(struct mt_ctx *c, int cat) { return c->ops->mem_category(c, cat); }
static inline void mt_progress(struct mt_ctx *c, double d, double t) { c->ops->progress(c, d, t); }
static inline uint64_t mt_rng_u64(struct mt_ctx *c) { return c->ops->rng_u64(c); }

__attribute__((format(printf, 3, 4))) static inline void
mt_log(struct mt_ctx *c, enum mt_log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    c->ops->vlog(c, lvl, fmt, ap);
    va_end(ap);
}

/* Records the failure message and returns -1, so `return mt_error(ctx, ...)` reads well. */
__attribute__((format(printf, 2, 3))) static inline int mt_error(struct mt_ctx *c,
                                                                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    c->ops->verror(c, fmt, ap);
    va_end(ap);
    return -1;
}

/* Declares the exported descriptor with default visibility. */
#define MT_WORKLOAD_EXPORT __attribute__((visibility("default")))

#ifdef __cplusplus
}
#endif
#endif
