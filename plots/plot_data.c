/* plots/plot_data.c — load the selected runs through the read API and aggregate them.
 *
 * What it is for: the runs, params and run-level metrics of the chosen sweep
 * (results/reader.h: mt_read_runs) into struct pl_ctx; grouping successful runs into
 * configurations (same config_key, repeats aggregated by median), workload families,
 * point labels. Per-run series (samples, regions, sites) are read later by the plots that
 * need them. What it is not for: SQL (results/ owns every query) or writing anything.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/metrics.h>

#include "plot_internal.h"

static int fail_read(struct pl_ctx *ctx, char *err, size_t errlen)
{
    snprintf(err, errlen, "reading %s", mt_store_error(ctx->st));
    return -1;
}

/* First of several JSON paths that holds a scalar in facts (a JSON text), or NULL. */
static char *json_fact(struct pl_ctx *ctx, const char *facts, const char *const *paths)
{
    const char *v = NULL;
    if (mt_read_json_fact(ctx->rd, facts, paths, &v) != 0 || !v) return NULL;
    return pl_strdup(ctx, v);
}

/* "CPU model (N cores)" from the sweep's facts, else the first run's, else the host. */
static void load_machine(struct pl_ctx *ctx, const char *sweep_facts, const char *host,
                         const char *run_facts)
{
    static const char *const cpu_paths[] = {"$.cpu_model",  "$.cpu.model",      "$.cpu",
                                            "$.model_name", "$.host.cpu_model", NULL};
    static const char *const core_paths[] = {"$.cpu_cores", "$.cores",      "$.nproc",
                                             "$.ncpus",     "$.cpus",       "$.online_cpus",
                                             "$.cpu.cores", "$.host.cores", NULL};
    char *cpu = json_fact(ctx, sweep_facts, cpu_paths);
    if (!cpu) cpu = json_fact(ctx, run_facts, cpu_paths);
    char *cores = json_fact(ctx, sweep_facts, core_paths);
    if (!cores) cores = json_fact(ctx, run_facts, core_paths);
    if (cpu && cores)
        ctx->machine = pl_asprintf(ctx, "%s (%s cores)", cpu, cores);
    else if (cpu)
        ctx->machine = pl_strdup(ctx, cpu);
    else if (host)
        ctx->machine = pl_asprintf(ctx, "host %s%s%s%s", host, cores ? " (" : "",
                                   cores ? cores : "", cores ? " cores)" : "");
    else
        ctx->machine = pl_strdup(ctx, "unknown machine (no CPU facts recorded)");
    free(cpu);
    free(cores);
}

/* Picks the sweep (ctx->sweep_id, its name); the machine is described once the runs are
 * read (their facts are the fallback). */
static int select_sweep(struct pl_ctx *ctx, struct mt_read_sweep *sw, char *err, size_t errlen)
{
    long long want = ctx->opts->sweep_id;
    memset(sw, 0, sizeof *sw);
    if (want == MT_PLOT_SWEEP_LATEST) {
        int64_t latest;
        int found = mt_read_latest_sweep(ctx->rd, &latest);
        if (found < 0) return fail_read(ctx, err, errlen);
        want = found ? (long long)latest : MT_PLOT_SWEEP_ALL; /* runs outside any sweep */
    } else if (want < 0) {
        want = MT_PLOT_SWEEP_ALL;
    }
    ctx->sweep_id = want;
    ctx->res->sweep_id = want;
    if (want < 0) {
        ctx->sweep_name = pl_strdup(ctx, "(all runs)");
        return 0;
    }
    int found = mt_read_sweep(ctx->rd, want, sw);
    if (found < 0) return fail_read(ctx, err, errlen);
    if (found && sw->name) {
        ctx->sweep_name = pl_strdup(ctx, sw->name);
    } else if (ctx->opts->sweep_id > 0) {
        snprintf(err, errlen, "sweep %lld not found in %s", want, ctx->opts->db_path);
        return -1;
    } else {
        ctx->sweep_name = pl_asprintf(ctx, "#%lld", want);
    }
    return 0;
}

static int is_ok(const struct pl_run *r)
{
    return r->status && strcmp(r->status, "ok") == 0;
}

/* Keeps one run per (config_key, repeat): the latest ok one, else the latest attempt.
 * Earlier attempts (a failure that a resumed sweep re-ran, a configuration re-run without
 * --resume) are history, not results. Runs are in ascending id. */
static void drop_superseded(struct pl_ctx *ctx)
{
    char *gone = calloc(ctx->n_runs + 1, 1);
    if (!gone) {
        ctx->oom = 1;
        return;
    }
    for (size_t i = 0; i < ctx->n_runs; i++) {
        const struct pl_run *r = &ctx->runs[i];
        for (size_t j = 0; j < ctx->n_runs && !gone[i]; j++) {
            const struct pl_run *o = &ctx->runs[j];
            if (j == i || o->repeat != r->repeat ||
                strcmp(pl_s(o->config_key), pl_s(r->config_key)) != 0)
                continue;
            /* o wins over r when it is ok and r is not, or both alike and o is later */
            gone[i] = is_ok(o) != is_ok(r) ? is_ok(o) : o->id > r->id;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < ctx->n_runs; i++) {
        if (gone[i])
            ctx->n_superseded++;
        else
            ctx->runs[kept++] = ctx->runs[i];
    }
    ctx->n_runs = kept;
    free(gone);
}

static int load_runs(struct pl_ctx *ctx, const struct mt_read_sweep *sw, char *err, size_t errlen)
{
    struct mt_read_run *rows;
    size_t n;
    if (mt_read_runs(ctx->rd, ctx->sweep_id < 0 ? MT_READ_ALL_SWEEPS : ctx->sweep_id, &rows, &n) !=
        0)
        return fail_read(ctx, err, errlen);
    const char *run_facts = NULL; /* the first run's that has facts */
    for (size_t i = 0; i < n && !run_facts; i++)
        run_facts = rows[i].facts_json;
    load_machine(ctx, sw->facts_json, sw->host, run_facts);
    ctx->runs = calloc(n + 1, sizeof *ctx->runs);
    if (!ctx->runs) {
        ctx->oom = 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mt_read_run *w = &rows[i];
        ctx->runs[i] = (struct pl_run){.id = w->id,
                                       .workload = w->workload,
                                       .label = w->label,
                                       .config_key = w->config_key,
                                       .status = w->status,
                                       .error = w->error,
                                       .repeat = w->repeat,
                                       .exit_code = w->exit_code,
                                       .signal = w->signal,
                                       .has_exit = w->has_exit,
                                       .has_signal = w->has_signal,
                                       .wall_s = w->wall_s,
                                       .has_wall = w->has_wall,
                                       .params = w->params,
                                       .n_params = w->n_params,
                                       .row = w};
    }
    ctx->n_runs = n;
    drop_superseded(ctx);
    return 0;
}

static const struct mt_read_metric *find_metric(const struct mt_read_metric *v, size_t n,
                                                const char *name, size_t len, const char *category)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i].name) == len && strncmp(v[i].name, name, len) == 0 &&
            (category ? v[i].category && strcmp(v[i].category, category) == 0 : !v[i].category))
            return &v[i];
    return NULL;
}

const struct mt_read_metric *pl_run_metric_cat(const struct pl_run *run, const char *name,
                                               const char *category)
{
    static const char suffix[] = "@rankmax";
    size_t n = strlen(name), k = sizeof suffix - 1;
    if (n > k && strcmp(name + n - k, suffix) == 0)
        return find_metric(run->row->rank_max, run->row->n_rank_max, name, n - k, category);
    return find_metric(run->row->metrics, run->row->n_metrics, name, n, category);
}

const struct mt_read_metric *pl_run_metric(const struct pl_run *run, const char *name)
{
    return pl_run_metric_cat(run, name, NULL);
}

const char *pl_run_param(const struct pl_run *run, const char *key)
{
    for (size_t i = 0; i < run->n_params; i++)
        if (run->params[i].key && strcmp(run->params[i].key, key) == 0) return run->params[i].value;
    return NULL;
}

double pl_run_param_num(const struct pl_run *run, const char *key)
{
    const char *v = pl_run_param(run, key);
    char *end;
    double d = v && *v ? strtod(v, &end) : NAN;
    return v && *v && !*end ? d : NAN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int pl_config_stat(const struct pl_ctx *ctx, const struct pl_config *cfg, const char *metric,
                   struct pl_stat *st)
{
    return pl_config_stat_cat(ctx, cfg, metric, NULL, st);
}

int pl_config_stat_cat(const struct pl_ctx *ctx, const struct pl_config *cfg, const char *metric,
                       const char *category, struct pl_stat *st)
{
    memset(st, 0, sizeof *st);
    double small[64];
    double *v = cfg->n_runs <= 64 ? small : malloc(cfg->n_runs * sizeof *v);
    if (!v) return 0;
    for (size_t i = 0; i < cfg->n_runs; i++) {
        const struct mt_read_metric *m =
            pl_run_metric_cat(&ctx->runs[cfg->runs[i]], metric, category);
        if (m && m->has) v[st->n++] = m->value;
    }
    if (st->n > 0) {
        qsort(v, st->n, sizeof *v, cmp_double);
        st->min = v[0];
        st->max = v[st->n - 1];
        st->median = st->n % 2 ? v[st->n / 2] : (v[st->n / 2 - 1] + v[st->n / 2]) / 2;
    }
    if (v != small) free(v);
    return st->n > 0;
}

char *pl_config_group_key(struct pl_ctx *ctx, const struct pl_config *c)
{
    const struct pl_run *r = &ctx->runs[c->runs[0]];
    struct pl_stat st;
    double budget = r->row->train_budget;
    double text = pl_config_stat(ctx, c, "eval_bytes", &st) ? st.median : NAN;
    struct pl_buf b = {0};
    pl_buf_printf(&b, "model %s, ", pl_run_param(r, "model") ? pl_run_param(r, "model") : "?");
    if (isnan(budget))
        pl_buf_printf(&b, "training budget not recorded, ");
    else
        pl_buf_printf(&b, "%.0f training sequences, ", budget);
    if (isnan(text))
        pl_buf_printf(&b, "text scored not recorded");
    else
        pl_buf_printf(&b, "scored on %.0f bytes", text);
    if (b.oom) ctx->oom = 1;
    return b.s;
}

const char *pl_metric_unit(const struct pl_ctx *ctx, const char *metric)
{
    for (size_t i = 0; i < ctx->n_runs; i++) {
        const struct mt_read_metric *m = pl_run_metric(&ctx->runs[i], metric);
        if (m && m->unit && *m->unit) return m->unit;
    }
    return NULL;
}

int pl_is_bytes_metric(const struct pl_ctx *ctx, const char *metric)
{
    const char *u = pl_metric_unit(ctx, metric);
    if (u) return strcmp(u, "bytes") == 0 || strcmp(u, "B") == 0 || strcmp(u, "byte") == 0;
    size_t n = strlen(metric);
    return n > 6 && strcmp(metric + n - 6, "_bytes") == 0;
}

int pl_higher_is_better(const char *metric)
{
    return mt_metric_lookup(metric)->better == MT_BETTER_HIGHER;
}

/* Order of runs inside the configuration grouping: config_key, then repeat, then id. */
static int cmp_run_ptr(const void *a, const void *b)
{
    const struct pl_run *x = *(const struct pl_run *const *)a,
                        *y = *(const struct pl_run *const *)b;
    int c = strcmp(pl_s(x->config_key), pl_s(y->config_key));
    if (c) return c;
    if (x->repeat != y->repeat) return x->repeat < y->repeat ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Params of cfg whose value differs in another configuration of the same workload. */
static char *varying_label(struct pl_ctx *ctx, const struct pl_config *cfg)
{
    const struct pl_run *r = &ctx->runs[cfg->runs[0]];
    struct pl_buf b = {0};
    for (size_t p = 0; p < r->n_params; p++) {
        int varies = 0;
        for (size_t c = 0; c < ctx->n_configs && !varies; c++) {
            const struct pl_config *o = &ctx->configs[c];
            if (o == cfg || strcmp(pl_s(o->workload), pl_s(cfg->workload)) != 0) continue;
            const char *v = pl_run_param(&ctx->runs[o->runs[0]], r->params[p].key);
            varies = !v || strcmp(v, pl_s(r->params[p].value)) != 0;
        }
        if (varies)
            pl_buf_printf(&b, "%s%s=%s", b.len ? " " : "", pl_s(r->params[p].key),
                          pl_s(r->params[p].value));
    }
    if (b.oom) ctx->oom = 1;
    if (b.len == 0) {
        pl_buf_free(&b);
        return pl_strdup(ctx, cfg->workload);
    }
    return b.s;
}

static int family_of(struct pl_ctx *ctx, const char *workload)
{
    for (size_t i = 0; i < ctx->n_families; i++)
        if (strcmp(ctx->families[i], workload) == 0) return (int)i;
    return -1;
}

static int cmp_family(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int bx = strcmp(x, "baseline") == 0, by = strcmp(y, "baseline") == 0;
    if (bx != by) return by - bx;
    return strcmp(x, y);
}

static int build_configs(struct pl_ctx *ctx)
{
    size_t n_ok = 0;
    for (size_t i = 0; i < ctx->n_runs; i++)
        n_ok += ctx->runs[i].status && strcmp(ctx->runs[i].status, "ok") == 0;
    ctx->res->n_runs = ctx->n_runs;
    ctx->res->n_ok = n_ok;
    if (n_ok == 0) return 0;
    const struct pl_run **ok = malloc(n_ok * sizeof *ok);
    ctx->configs = calloc(n_ok, sizeof *ctx->configs);
    ctx->families = calloc(n_ok, sizeof *ctx->families);
    if (!ok || !ctx->configs || !ctx->families) {
        free(ok);
        ctx->oom = 1;
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < ctx->n_runs; i++)
        if (ctx->runs[i].status && strcmp(ctx->runs[i].status, "ok") == 0) ok[k++] = &ctx->runs[i];
    qsort(ok, n_ok, sizeof *ok, cmp_run_ptr);
    for (size_t i = 0; i < n_ok; i++) {
        struct pl_config *c = ctx->n_configs ? &ctx->configs[ctx->n_configs - 1] : NULL;
        if (!c || strcmp(pl_s(c->config_key), pl_s(ok[i]->config_key)) != 0) {
            c = &ctx->configs[ctx->n_configs++];
            c->config_key = ok[i]->config_key;
            c->workload = ok[i]->workload ? ok[i]->workload : "";
            c->runs = malloc(n_ok * sizeof *c->runs);
            if (!c->runs) {
                ctx->oom = 1;
                break;
            }
            if (family_of(ctx, c->workload) < 0)
                ctx->families[ctx->n_families++] = pl_strdup(ctx, c->workload);
        }
        c->runs[c->n_runs++] = (size_t)(ok[i] - ctx->runs);
    }
    free(ok);
    if (ctx->oom) return -1;
    qsort(ctx->families, ctx->n_families, sizeof *ctx->families, cmp_family);
    for (size_t i = 0; i < ctx->n_configs; i++) {
        struct pl_config *c = &ctx->configs[i];
        c->family = family_of(ctx, c->workload);
        const char *label = NULL;
        for (size_t r = 0; r < c->n_runs && !label; r++)
            if (ctx->runs[c->runs[r]].label && *ctx->runs[c->runs[r]].label)
                label = ctx->runs[c->runs[r]].label;
        c->point_label = label ? pl_strdup(ctx, label) : varying_label(ctx, c);
    }
    return 0;
}

int pl_load(struct pl_ctx *ctx, char *err, size_t errlen)
{
    struct mt_read_sweep sw;
    if (mt_read_open(ctx->st, &ctx->rd) != 0) return fail_read(ctx, err, errlen);
    if (select_sweep(ctx, &sw, err, errlen) != 0 || load_runs(ctx, &sw, err, errlen) != 0)
        return -1;
    return !ctx->oom && build_configs(ctx) == 0 ? 0 : (snprintf(err, errlen, "out of memory"), -1);
}

void pl_ctx_free(struct pl_ctx *ctx)
{
    free(ctx->runs);
    for (size_t i = 0; i < ctx->n_configs; i++) {
        free(ctx->configs[i].runs);
        free(ctx->configs[i].point_label);
    }
    free(ctx->configs);
    for (size_t i = 0; i < ctx->n_families; i++)
        free(ctx->families[i]);
    free(ctx->families);
    free(ctx->sweep_name);
    free(ctx->machine);
    pl_buf_free(&ctx->report_tables);
    pl_buf_free(&ctx->memcheck_table);
    pl_buf_free(&ctx->fit_table);
    pl_buf_free(&ctx->device_table);
    mt_read_close(ctx->rd);
    mt_store_close(ctx->st);
    memset(ctx, 0, sizeof *ctx);
}
