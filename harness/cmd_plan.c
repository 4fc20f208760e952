/* cmd_plan.c — `memtrade plan WORKLOAD [-p key=value]...`: the bytes a run of a workload
 * will hold, per memory category and phase, per rank, for training and for serving,
 * without running it or allocating its model (the plugin's plan() hook, ABI 1.4).
 * Not for: measuring (run, sweep), or choosing a configuration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"
#include "plan.h"
#include "runtime_probe.h"
#include "store.h"
#include "util.h"

static const char *const goal_names[] = {"training", "serving"};

static const char help[] =
    "usage: memtrade plan WORKLOAD [-p key=value]... [--for training|serving]\n"
    "                     [--format table|csv|json] [--csv] [--json] [--plugin PATH.so]\n"
    "                     [--db FILE] [--measure-runtime] [--no-runtime]\n"
    "       memtrade plan --measure-runtime [--all [-p key=value]...] [--db FILE]\n\n"
    "Predicts the bytes a run of WORKLOAD with these parameters will hold, per rank, for\n"
    "every memory category (weights, gradients, optimizer, activations, act_grads,\n"
    "kv_cache, workspace, data, other): the peak of each category over the phases of\n"
    "training and of serving, the phase it occurs in, and the largest phase total.\n"
    "Nothing runs and the model is not allocated: the plugin computes its plan with the\n"
    "same functions that size the run's slabs. Parameters are the workload's own\n"
    "(memtrade describe WORKLOAD), checked as `memtrade run` checks them.\n\n"
    "  -p, --param k=v    set a parameter\n"
    "  --for GOAL         only training or only serving\n"
    "  --format F         table (default), csv or json; --csv and --json are short forms\n"
    "  --plugin PATH.so   load a workload plugin from outside the plugin folders\n"
    "  --db FILE          database of the runtime terms (default $MEMTRADE_DB, else\n"
    "                     out/memtrade.db)\n"
    "  --measure-runtime  measure the runtime terms of this configuration's class now (its\n"
    "                     probe: 1-2 short runs of it, stored in the database); alone, of\n"
    "                     the default probe (baseline on tiny); without it a class is\n"
    "                     measured on first need when the database exists and the plan\n"
    "                     holds at most 1 GiB\n"
    "  --all              with --measure-runtime and no workload: the class of every\n"
    "                     workload with a plan (at its defaults and the -p parameters it\n"
    "                     declares, e.g. -p model=small) that has no stored terms is\n"
    "                     probed now; one line each (stored, measured now, failed or\n"
    "                     skipped with why: multi-rank workloads are measured alone)\n"
    "  --no-runtime       leave the runtime line out\n\n"
    "The runtime line: what the plan cannot derive (library workspace such as oneDNN's\n"
    "scratch and JIT buffers, untagged library allocations, OpenBLAS's buffers, the heap's\n"
    "peak beyond its categories'), measured once per build, machine and class (the\n"
    "workload, its shape, data type and kernel parameters, the threads of a default run,\n"
    "and whether the run trains or loads its model: the larger is shown), apart from the\n"
    "plan: plan + runtime is what the heap profiler should see.\n";

/* The runtime terms of this build and machine (results/runtime.h) for the configuration's
 * class, or why there are none. The class's two histories (the run trains its model, or
 * loads it from the cache: `plan` cannot know which) are both read; each phase shows the
 * larger, naming its class. */
struct rt_view {
    struct mt_runtime_term *t[2];
    size_t n[2];
    char cls[2][1024];
    char why[1400];
};

/* What to probe and which classes to read. */
struct rt_req {
    const char *workload;
    const char *const *params; /* "k=v" for the probe */
    size_t n;
    char cls[2][1024]; /* trained=yes, trained=no ("" when unknown: the probe's are read) */
    size_t plan_total; /* the plan's largest phase total, for the lazy probe's limit */
};

/* A lazy probe runs only for a configuration whose plan holds at most this (bytes). */
#define RT_LAZY_MAX (1024.0 * 1024 * 1024)

/* The history whose heap runtime of `phase` is larger: its index and *bytes, or -1. */
static int rt_pick(const struct rt_view *rt, const char *phase, double *bytes)
{
    int best = -1;
    for (int h = 0; rt && h < 2; h++) {
        double b;
        if (rt->n[h] && mt_runtime_phase_heap(rt->t[h], rt->n[h], phase, &b) &&
            (best < 0 || b > *bytes))
            best = h, *bytes = b;
    }
    return best;
}

/* The heap runtime of the phase where goal's total peaks: 1 and *bytes, or 0. */
static int rt_bytes(const struct rt_view *rt, const struct mt_mem_plan *p,
                    const struct mt_plan_peaks *pk, double *bytes)
{
    return rt && pk->total_phase >= 0 && rt_pick(rt, p->phase[pk->total_phase].name, bytes) >= 0;
}

/* One table line per runtime term of `phase`, and why when there is none. */
static void rt_table(const struct rt_view *rt, const char *phase, size_t total)
{
    char b[32];
    double sum = 0;
    if (!rt) return;
    int h = rt_pick(rt, phase, &sum);
    if (h < 0) {
        printf("%-12s %14s %18s  %s\n", "runtime", "-", "-",
               rt->n[0] || rt->n[1] ? "no term of this phase measured for the class" : rt->why);
        return;
    }
    printf("%-12s %14s %18.0f  %s (measured %s by a probe run of class: %s)\n", "runtime",
           mt_util_fmt_bytes(b, sizeof b, sum), sum, phase, rt->t[h][0].measured_at, rt->cls[h]);
    for (size_t i = 0; i < rt->n[h]; i++) {
        const struct mt_runtime_term *t = &rt->t[h][i];
        if (strcmp(t->phase, phase) != 0) continue;
        if (t->has)
            printf("  %-10s %14s %18.0f  %s\n", t->term, mt_util_fmt_bytes(b, sizeof b, t->bytes),
                   t->bytes, !strcmp(t->term, "resident") ? "(beyond the heap: RSS only)" : "");
        else
            printf("  %-10s %14s %18s  %s\n", t->term, "-", "-", t->unavailable);
    }
    printf("%-12s %14s %18.0f  %s (what the heap profiler should see)\n", "plan+runtime",
           mt_util_fmt_bytes(b, sizeof b, (double)total + sum), (double)total + sum, phase);
}

/* Reads the terms of q's classes into *rt. Returns 0, or -1 after a message. */
static int runtime_read(const char *db, const struct rt_req *q, struct rt_view *rt)
{
    char err[2048];
    struct mt_store *st = NULL;
    struct mt_runtime_key key;
    int rc = mt_store_open(db, MT_STORE_READONLY, &st, err, sizeof err) != 0 ||
             mt_runtime_probe_key(st, &key) != 0;
    for (int h = 0; rc == 0 && h < 2; h++) {
        free(rt->t[h]);
        rt->t[h] = NULL, rt->n[h] = 0;
        snprintf(rt->cls[h], sizeof rt->cls[h], "%s", q->cls[h]);
        snprintf(key.cls, sizeof key.cls, "%s", q->cls[h]);
        if (q->cls[h][0]) rc = mt_runtime_get(st, &key, &rt->t[h], &rt->n[h]) != 0;
    }
    if (rc) fprintf(stderr, "memtrade plan: %s\n", st ? mt_store_error(st) : err);
    mt_store_close(st);
    return rc ? -1 : 0;
}

/* Fills *rt from the database: measured now (`measure`), or read, and measured on first
 * need when the database exists but holds no terms of this build, machine and class (and
 * the plan is at most RT_LAZY_MAX). Without a database, rt->why says so. Returns 0, or -1
 * after a message on stderr. */
static int runtime_load(struct mt_cli_common *co, int measure, struct rt_req *q, struct rt_view *rt)
{
    char err[2048];
    if (mt_cli_finish_common(co, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade plan: %s\n", err);
        return -1;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (measure) {
            char got[2][1024];
            fprintf(stderr,
                    "memtrade plan: measuring the runtime terms of this build and machine "
                    "for %s (probe runs of %s, class %s)\n",
                    co->db, q->workload, q->cls[0][0] ? q->cls[0] : "of the probe");
            if (mt_runtime_probe_measure(co->exe, co->db, q->workload, q->params, q->n, 0, got, err,
                                         sizeof err) != 0) {
                fprintf(stderr, "memtrade plan: %s\n", err);
                return -1;
            }
            if (!q->cls[0][0]) memcpy(q->cls, got, sizeof got);
        }
        if (access(co->db, F_OK) != 0) {
            snprintf(rt->why, sizeof rt->why,
                     "not measured: no database at %s (--measure-runtime creates it)", co->db);
            return 0;
        }
        if (runtime_read(co->db, q, rt) != 0) return -1;
        if (rt->n[0] || rt->n[1] || measure) break;
        if ((double)q->plan_total > RT_LAZY_MAX) {
            snprintf(rt->why, sizeof rt->why,
                     "not measured for class %s: a probe run would hold %zu bytes (over the "
                     "lazy probe's 1 GiB); --measure-runtime runs it",
                     q->cls[0], q->plan_total);
            return 0;
        }
        measure = 1; /* first need: none stored for this build, machine and class */
    }
    if (!rt->n[0] && !rt->n[1])
        snprintf(rt->why, sizeof rt->why, "the probe stored no term (see its output above)");
    return 0;
}

/* The stored terms, one line each (plan --measure-runtime without a workload). */
static void print_terms(const struct rt_view *rt)
{
    char b[32];
    if (!rt->n[0] && !rt->n[1]) printf("runtime terms: %s\n", rt->why);
    for (int h = 0; h < 2; h++)
        for (size_t i = 0; i < rt->n[h]; i++) {
            const struct mt_runtime_term *t = &rt->t[h][i];
            if (i == 0)
                printf("%sruntime terms of this build and machine, class %s (measured %s by a "
                       "probe run: %s)\n%-8s %-11s %14s %14s\n",
                       h && rt->n[0] ? "\n" : "", rt->cls[h], t->measured_at, t->probe, "phase",
                       "term", "", "bytes");
            if (t->has)
                printf("%-8s %-11s %14s %14.0f\n", t->phase, t->term,
                       mt_util_fmt_bytes(b, sizeof b, t->bytes), t->bytes);
            else
                printf("%-8s %-11s %14s %14s  %s\n", t->phase, t->term, "-", "-", t->unavailable);
        }
}

static void print_table(const struct mt_mem_plan *p, int goal, const struct rt_view *rt)
{
    struct mt_plan_peaks pk;
    char b[32];
    mt_plan_peaks(p, goal, &pk);
    if (pk.total_phase < 0) {
        printf("%s: no phase planned by this workload\n\n", goal_names[goal]);
        return;
    }
    printf("%s, per rank\n%-12s %14s %18s  %s\n", goal_names[goal], "category", "peak", "bytes",
           "phase");
    for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++) {
        if (pk.phase[cat] < 0) continue;
        printf("%-12s %14s %18zu  %s\n", mt_mem_cat_names[cat],
               mt_util_fmt_bytes(b, sizeof b, (double)pk.bytes[cat]), pk.bytes[cat],
               p->phase[pk.phase[cat]].name);
    }
    printf("%-12s %14s %18zu  %s (largest phase total)\n", "total",
           mt_util_fmt_bytes(b, sizeof b, (double)pk.total), pk.total,
           p->phase[pk.total_phase].name);
    rt_table(rt, p->phase[pk.total_phase].name, pk.total);
    printf("\n");
}

static void print_csv(const struct mt_mem_plan *p, int goal, int header, const struct rt_view *rt)
{
    struct mt_plan_peaks pk;
    mt_plan_peaks(p, goal, &pk);
    if (header) printf("goal,category,peak_bytes,phase\n");
    if (pk.total_phase < 0) return;
    for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++)
        if (pk.phase[cat] >= 0)
            printf("%s,%s,%zu,%s\n", goal_names[goal], mt_mem_cat_names[cat], pk.bytes[cat],
                   p->phase[pk.phase[cat]].name);
    printf("%s,total,%zu,%s\n", goal_names[goal], pk.total, p->phase[pk.total_phase].name);
    double r;
    if (rt_bytes(rt, p, &pk, &r))
        printf("%s,runtime,%.0f,%s\n%s,total_with_runtime,%.0f,%s\n", goal_names[goal], r,
               p->phase[pk.total_phase].name, goal_names[goal], (double)pk.total + r,
               p->phase[pk.total_phase].name);
}

static void print_json(const struct mt_mem_plan *p, const char *workload, int only,
                       const struct rt_view *rt)
{
    printf("{\"workload\":");
    mt_format_json_string(stdout, workload, strlen(workload));
    for (int goal = 0; goal < 2; goal++) {
        if (only >= 0 && goal != only) continue;
        struct mt_plan_peaks pk;
        mt_plan_peaks(p, goal, &pk);
        printf(",\"%s\":", goal_names[goal]);
        if (pk.total_phase < 0) {
            printf("null");
            continue;
        }
        printf("{\"peak_bytes\":{");
        int first = 1;
        for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++)
            if (pk.phase[cat] >= 0) {
                printf("%s\"%s\":%zu", first ? "" : ",", mt_mem_cat_names[cat], pk.bytes[cat]);
                first = 0;
            }
        printf("},\"peak_phase\":{");
        first = 1;
        for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++)
            if (pk.phase[cat] >= 0) {
                printf("%s\"%s\":", first ? "" : ",", mt_mem_cat_names[cat]);
                const char *n = p->phase[pk.phase[cat]].name;
                mt_format_json_string(stdout, n, strlen(n));
                first = 0;
            }
        printf("},\"total_bytes\":%zu,\"total_phase\":", pk.total);
        const char *tn = p->phase[pk.total_phase].name;
        mt_format_json_string(stdout, tn, strlen(tn));
        double r;
        if (rt_bytes(rt, p, &pk, &r))
            printf(",\"runtime_bytes\":%.0f", r);
        else if (rt)
            printf(",\"runtime_bytes\":null");
        printf("}");
    }
    printf(",\"phases\":[");
    for (size_t i = 0; i < p->n_phases; i++) {
        const struct mt_mem_plan_phase *ph = &p->phase[i];
        if (only >= 0 && ph->goal != only) continue;
        printf("%s{\"name\":", i ? "," : "");
        mt_format_json_string(stdout, ph->name, strlen(ph->name));
        printf(",\"goal\":\"%s\",\"bytes\":{", goal_names[ph->goal ? 1 : 0]);
        for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++)
            printf("%s\"%s\":%zu", cat ? "," : "", mt_mem_cat_names[cat], ph->bytes[cat]);
        printf("}}");
    }
    printf("]}\n");
}

/* The configuration's two classes (it trains its model, or loads it) with the threads
 * `memtrade run` gives a run by default, and the plan's largest phase total. -1 when a
 * class does not fit. */
static int runtime_classes(const struct mt_plan *rp, const struct mt_mem_plan *plan,
                           struct rt_req *q)
{
    for (int goal = 0; goal < 2; goal++) {
        struct mt_plan_peaks pk;
        mt_plan_peaks(plan, goal, &pk);
        if (pk.total_phase >= 0 && pk.total > q->plan_total) q->plan_total = pk.total;
    }
    return mt_runtime_probe_classes(&rp->plugin->desc, rp->params.value, mt_cli_default_threads(),
                                    q->cls);
}

/* `plan --measure-runtime --all`: the classes of every workload with a plan() hook at its
 * defaults and the -p parameters it declares; those with no stored term are probed. One
 * line each; returns MT_EXIT_OK, or MT_EXIT_DB when a probe or the database failed. */
static int measure_all(struct mt_cli_common *co, const char *const *keys, const char *const *vals,
                       size_t nkv)
{
    char err[2048];
    struct mt_registry reg;
    if (mt_cli_load_plugins(co, &reg, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_USAGE;
    }
    if (mt_cli_finish_common(co, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade plan: %s\n", err);
        mt_plugins_free(&reg);
        return MT_EXIT_USAGE;
    }
    enum { MAX_P = 256 };
    size_t stored = 0, measured = 0, failed = 0, skipped = 0;
    char(*probe_buf)[MT_RUNTIME_PROBE_PARAM] = calloc(MAX_P, sizeof *probe_buf);
    if (!probe_buf) fputs("memtrade plan: out of memory for the probe parameters\n", stderr);
    for (size_t i = 0; probe_buf && i < reg.n; i++) {
        const struct mt_plugin *pl = &reg.items[i];
        const char *k[MAX_P], *v[MAX_P], *probe_p[MAX_P];
        size_t n = 0;
        const char *skip = !pl->desc.plan         ? "no plan() hook: no plan to add terms to"
                           : pl->desc.unavailable ? pl->desc.unavailable
                           : pl->desc.ranks_param ? "multi-rank: its probe launches ranks (measure "
                                                    "it alone: plan WORKLOAD --measure-runtime)"
                           : pl->desc.n_params > MAX_P ? "too many parameters"
                                                       : NULL;
        if (skip) {
            printf("%-18s skipped: %s\n", pl->desc.name, skip);
            skipped++;
            continue;
        }
        for (size_t j = 0; j < nkv; j++) /* the -p parameters this workload declares */
            if (mt_params_index(&pl->desc, keys[j]) >= 0) k[n] = keys[j], v[n++] = vals[j];
        struct mt_plan rp = {.plugin = pl, .threads = 1};
        struct mt_mem_plan plan;
        struct rt_view rt = {0};
        struct rt_req q = {.workload = pl->desc.name, .params = probe_p};
        int rc = mt_params_resolve(&pl->desc, k, v, n, &rp.params, err, sizeof err) != 0 ||
                         mt_plan_finish(&rp, 1, MT_UNKNOWN_ESTIMATE, err, sizeof err) != 0 ||
                         mt_plan_memory(&rp, &plan, err, sizeof err) <= 0
                     ? -1
                     : 0;
        if (rc == 0) {
            q.n = mt_runtime_probe_params(&pl->desc, rp.params.value, k, n, probe_p, probe_buf);
            if (runtime_classes(&rp, &plan, &q) != 0) {
                snprintf(err, sizeof err, "the runtime class is too long");
                rc = -1;
            }
        }
        int had = 0;
        if (rc == 0 && access(co->db, F_OK) == 0) {
            rc = runtime_read(co->db, &q, &rt);
            had = rt.n[0] || rt.n[1];
        }
        if (rc == 0 && !had) rc = runtime_load(co, 1, &q, &rt);
        if (rc != 0) {
            printf("%-18s failed: %s\n", pl->desc.name, err[0] ? err : "see the output above");
            failed++;
        } else {
            printf("%-18s %s: class %s\n", pl->desc.name, had ? "stored" : "measured now",
                   q.cls[0]);
            had ? stored++ : measured++;
        }
        err[0] = 0;
        free(rt.t[0]);
        free(rt.t[1]);
        mt_plan_free(&rp);
    }
    printf("%zu classes: %zu already stored, %zu measured now, %zu failed; %zu workloads "
           "skipped\n",
           stored + measured + failed, stored, measured, failed, skipped);
    free(probe_buf);
    mt_plugins_free(&reg);
    return failed || !probe_buf ? MT_EXIT_DB : MT_EXIT_OK;
}

int mt_cmd_plan(int argc, char **argv)
{
    enum { OPT_FOR = MT_OPT_OWN, OPT_FORMAT, OPT_CSV, OPT_JSON, MAX_P = 256 };
    const char *keys[MAX_P], *vals[MAX_P];
    size_t nkv = 0;
    int only = -1, c, measure = 0, no_runtime = 0, all = 0;
    const char *format = "table";
    const struct mt_cli_opt own[] = {MT_CLI_ARG("param", 'p'),
                                     MT_CLI_ARG("for", OPT_FOR),
                                     MT_CLI_ARG("format", OPT_FORMAT),
                                     MT_CLI_BARE("csv", OPT_CSV),
                                     MT_CLI_BARE("json", OPT_JSON),
                                     MT_CLI_FLAG("measure-runtime", &measure, 1),
                                     MT_CLI_FLAG("no-runtime", &no_runtime, 1),
                                     MT_CLI_FLAG("all", &all, 1),
                                     {0}};
    struct mt_cli_parser op = {.cmd = "plan",
                               .shared = MT_CLI_DB | MT_CLI_PLUGIN,
                               .shortopts = "p:",
                               .own = own,
                               .help = help};
    while ((c = mt_cli_next_option(&op, argc, argv)) > 0) {
        if (c == 'p') {
            if (mt_cli_param_option("plan", optarg, keys, vals, &nkv, MAX_P)) return MT_EXIT_USAGE;
        } else if (c == OPT_FOR) {
            if (!strcmp(optarg, "training"))
                only = MT_PLAN_TRAINING;
            else if (!strcmp(optarg, "serving"))
                only = MT_PLAN_SERVING;
            else {
                fprintf(stderr, "memtrade plan: --for takes training or serving, not '%s'\n",
                        optarg);
                return MT_EXIT_USAGE;
            }
        } else if (c == OPT_FORMAT) {
            if (strcmp(optarg, "table") && strcmp(optarg, "csv") && strcmp(optarg, "json")) {
                fprintf(stderr, "memtrade plan: --format takes table, csv or json, not '%s'\n",
                        optarg);
                return MT_EXIT_USAGE;
            }
            format = optarg;
        } else {
            format = c == OPT_CSV ? "csv" : "json";
        }
    }
    if (c < 0) return mt_cli_options_exit(c);
    struct mt_cli_common co = op.co;
    if (measure && no_runtime) {
        fputs("memtrade plan: --measure-runtime and --no-runtime exclude each other\n", stderr);
        return MT_EXIT_USAGE;
    }
    if (all && (!measure || optind != argc)) {
        fputs("memtrade plan: --all goes with --measure-runtime and no workload\n", stderr);
        return MT_EXIT_USAGE;
    }
    if (all) return measure_all(&co, keys, vals, nkv);
    if (measure && optind == argc) {
        static const char *const dflt[] = MT_RUNTIME_PROBE_PARAMS;
        struct rt_req q = {.workload = MT_RUNTIME_PROBE_WORKLOAD,
                           .params = dflt,
                           .n = sizeof dflt / sizeof dflt[0]};
        struct rt_view rt = {0};
        int rc = runtime_load(&co, 1, &q, &rt);
        if (rc == 0) print_terms(&rt);
        free(rt.t[0]);
        free(rt.t[1]);
        return rc == 0 ? MT_EXIT_OK : MT_EXIT_DB;
    }
    if (optind + 1 != argc) {
        fputs("usage: memtrade plan WORKLOAD [-p key=value]... (see --help)\n", stderr);
        return MT_EXIT_USAGE;
    }
    char err[2048];
    struct mt_registry reg;
    if (mt_cli_load_plugins(&co, &reg, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_USAGE;
    }
    int code = MT_EXIT_USAGE;
    struct mt_plan rp = {0};
    struct mt_mem_plan plan;
    struct rt_view rtv = {0};
    const char *probe_p[MAX_P];
    char(*probe_buf)[MT_RUNTIME_PROBE_PARAM] = calloc(MAX_P, sizeof *probe_buf);
    if (!probe_buf) {
        fputs("memtrade plan: out of memory\n", stderr);
        mt_plugins_free(&reg);
        return MT_EXIT_USAGE;
    }
    const struct mt_plugin *pl = mt_plugins_find(&reg, argv[optind]);
    if (!pl) {
        mt_plugins_explain_unknown(&reg, argv[optind], err, sizeof err);
        fprintf(stderr, "memtrade: %s\n", err);
        goto out;
    }
    /* as `memtrade run` checks a configuration: the table, the plugin's check(), the corpus */
    rp.plugin = pl;
    rp.threads = 1;
    if (mt_params_resolve(&pl->desc, keys, vals, nkv, &rp.params, err, sizeof err) != 0 ||
        mt_plan_finish(&rp, 1, MT_UNKNOWN_ESTIMATE, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        goto out;
    }
    int have = mt_plan_memory(&rp, &plan, err, sizeof err);
    if (have < 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        goto out;
    }
    if (have == 0) {
        fprintf(stderr,
                "memtrade plan: workload '%s' has no memory plan (its plugin declares no "
                "plan() hook, ABI 1.4); workloads with one: ",
                pl->desc.name);
        int n = 0;
        for (size_t i = 0; i < reg.n; i++)
            if (reg.items[i].desc.plan)
                fprintf(stderr, "%s%s", n++ ? ", " : "", reg.items[i].desc.name);
        fprintf(stderr, "%s\n", n ? "" : "none");
        goto out;
    }
    struct rt_view *rt = no_runtime ? NULL : &rtv;
    if (rt) {
        struct rt_req q = {.workload = pl->desc.name,
                           .params = probe_p,
                           .n = mt_runtime_probe_params(&pl->desc, rp.params.value, keys, nkv,
                                                        probe_p, probe_buf)};
        if (runtime_classes(&rp, &plan, &q) != 0) {
            fputs("memtrade plan: the runtime class is too long\n", stderr);
            goto out;
        }
        if (runtime_load(&co, measure, &q, rt) != 0) {
            code = MT_EXIT_DB;
            goto out;
        }
    }
    if (!strcmp(format, "json")) {
        print_json(&plan, pl->desc.name, only, rt);
    } else if (!strcmp(format, "csv")) {
        int header = 1;
        for (int goal = 0; goal < 2; goal++)
            if (only < 0 || goal == only) {
                print_csv(&plan, goal, header, rt);
                header = 0;
            }
    } else {
        printf("memtrade plan %s (predicted, nothing run)\n", pl->desc.name);
        if (mt_params_index(&pl->desc, "corpus") >= 0)
            printf("data includes the corpus the run holds whole: %s bytes of %s\n",
                   rp.corpus_bytes, rp.corpus_name);
        printf("\n");
        for (int goal = 0; goal < 2; goal++)
            if (only < 0 || goal == only) print_table(&plan, goal, rt);
        printf("phases:");
        for (size_t i = 0; i < plan.n_phases; i++)
            printf(" %s (%s)", plan.phase[i].name, goal_names[plan.phase[i].goal ? 1 : 0]);
        printf("\n");
    }
    code = MT_EXIT_OK;
out:
    free(probe_buf);
    free(rtv.t[0]);
    free(rtv.t[1]);
    mt_plan_free(&rp);
    mt_plugins_free(&reg);
    return code;
}
