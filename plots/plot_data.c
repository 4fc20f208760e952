/* plots/plot_data.c — load the selected runs from a results database and aggregate them.
 *
 * What it is for: one read-only pass over runs, params and metrics (rank -1) of the chosen
 * sweep into struct pl_ctx; grouping successful runs into configurations (same
 * config_key, repeats aggregated by median), workload families, point labels, the Pareto
 * test. Per-run series (samples, regions, sites) are read later by the plots that need
 * them. What it is not for: writing anything; the store module owns writing.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/metrics.h>

#include "plot_internal.h"

/* The runs of the selection (?1 = sweep id, < 0 for all): the sweep and every other
 * attempt of it (same name and spec file: `memtrade sweep --resume` starts a new sweep row
 * and leaves the runs it skips in the earlier one). */
#define SELECTED(r)                                                                                \
    "(?1 < 0 OR " r ".sweep_id = ?1 OR " r ".sweep_id IN (SELECT s.id FROM sweeps s JOIN "         \
    "sweeps t ON s.name = t.name AND s.spec_path IS t.spec_path WHERE t.id = ?1))"

static int fail_sql(struct pl_ctx *ctx, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "reading %s from %s: %s", what, ctx->opts->db_path,
             sqlite3_errmsg(ctx->db));
    return -1;
}

static char *col_str(struct pl_ctx *ctx, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? pl_strdup(ctx, (const char *)t) : NULL;
}

/* First of several JSON paths that holds a scalar in facts (a JSON text), or NULL. */
static char *json_fact(struct pl_ctx *ctx, const char *facts, const char *const *paths)
{
    if (!facts) return NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ctx->db,
                           "SELECT json_extract(?1, ?2) WHERE json_valid(?1) AND "
                           "json_type(?1, ?2) IN ('text','integer','real')",
                           -1, &st, NULL) != SQLITE_OK)
        return NULL; /* an SQLite without JSON: the title says "unknown machine" */
    char *out = NULL;
    for (size_t i = 0; paths[i] && !out; i++) {
        sqlite3_bind_text(st, 1, facts, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, paths[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) out = col_str(ctx, st, 0);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return out;
}

/* "CPU model (N cores)" from the sweep's facts, else the first run's, else the host. */
static void load_machine(struct pl_ctx *ctx, const char *sweep_facts, const char *host)
{
    static const char *const cpu_paths[] = {"$.cpu_model",  "$.cpu.model",      "$.cpu",
                                            "$.model_name", "$.host.cpu_model", NULL};
    static const char *const core_paths[] = {"$.cpu_cores", "$.cores",      "$.nproc",
                                             "$.ncpus",     "$.cpus",       "$.online_cpus",
                                             "$.cpu.cores", "$.host.cores", NULL};
    char *run_facts = NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ctx->db,
                           "SELECT facts_json FROM runs WHERE facts_json IS NOT NULL AND " SELECTED(
                               "runs") " ORDER BY id LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, ctx->sweep_id);
        if (sqlite3_step(st) == SQLITE_ROW) run_facts = col_str(ctx, st, 0);
        sqlite3_finalize(st);
    }
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
    free(run_facts);
}

static int select_sweep(struct pl_ctx *ctx, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    long long want = ctx->opts->sweep_id;
    if (want == MT_PLOT_SWEEP_LATEST) {
        if (sqlite3_prepare_v2(ctx->db, "SELECT MAX(sweep_id) FROM runs", -1, &st, NULL) !=
            SQLITE_OK)
            return fail_sql(ctx, err, errlen, "runs");
        want = MT_PLOT_SWEEP_ALL; /* runs outside any sweep (memtrade run) */
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            want = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    } else if (want < 0) {
        want = MT_PLOT_SWEEP_ALL;
    }
    ctx->sweep_id = want;
    ctx->res->sweep_id = want;
    if (want < 0) {
        ctx->sweep_name = pl_strdup(ctx, "(all runs)");
        load_machine(ctx, NULL, NULL);
        return 0;
    }
    if (sqlite3_prepare_v2(ctx->db, "SELECT name, host, facts_json FROM sweeps WHERE id = ?1", -1,
                           &st, NULL) != SQLITE_OK)
        return fail_sql(ctx, err, errlen, "sweeps");
    sqlite3_bind_int64(st, 1, want);
    char *host = NULL, *facts = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        ctx->sweep_name = col_str(ctx, st, 0);
        host = col_str(ctx, st, 1);
        facts = col_str(ctx, st, 2);
    }
    sqlite3_finalize(st);
    if (!ctx->sweep_name) {
        if (ctx->opts->sweep_id > 0) {
            snprintf(err, errlen, "sweep %lld not found in %s", want, ctx->opts->db_path);
            free(host);
            free(facts);
            return -1;
        }
        ctx->sweep_name = pl_asprintf(ctx, "#%lld", want);
    }
    load_machine(ctx, facts, host);
    free(host);
    free(facts);
    return 0;
}

static struct pl_run *run_by_id(struct pl_ctx *ctx, long long id)
{
    size_t lo = 0, hi = ctx->n_runs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ctx->runs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ctx->n_runs && ctx->runs[lo].id == id ? &ctx->runs[lo] : NULL;
}

static void free_run(struct pl_run *r)
{
    free(r->workload);
    free(r->label);
    free(r->config_key);
    free(r->status);
    free(r->error);
    for (size_t p = 0; p < r->n_params; p++) {
        free(r->params[p].key);
        free(r->params[p].value);
    }
    free(r->params);
    for (size_t m = 0; m < r->n_metrics; m++) {
        free(r->metrics[m].name);
        free(r->metrics[m].unit);
        free(r->metrics[m].unavailable);
    }
    free(r->metrics);
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
        if (gone[i]) {
            free_run(&ctx->runs[i]);
            ctx->n_superseded++;
        } else {
            ctx->runs[kept++] = ctx->runs[i];
        }
    }
    ctx->n_runs = kept;
    free(gone);
}

static int load_runs(struct pl_ctx *ctx, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ctx->db,
                           "SELECT id, workload, label, config_key, repeat, status, exit_code, "
                           "signal, error, wall_s FROM runs r WHERE " SELECTED("r") " "
                                                                                    "ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return fail_sql(ctx, err, errlen, "runs");
    sqlite3_bind_int64(st, 1, ctx->sweep_id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct pl_run *runs = pl_grow(ctx, ctx->runs, &cap, ctx->n_runs + 1, sizeof *runs);
        if (!runs) break;
        ctx->runs = runs;
        struct pl_run *r = &runs[ctx->n_runs++];
        memset(r, 0, sizeof *r);
        r->id = sqlite3_column_int64(st, 0);
        r->workload = col_str(ctx, st, 1);
        r->label = col_str(ctx, st, 2);
        r->config_key = col_str(ctx, st, 3);
        r->repeat = sqlite3_column_int64(st, 4);
        r->status = col_str(ctx, st, 5);
        r->has_exit = sqlite3_column_type(st, 6) != SQLITE_NULL;
        r->exit_code = sqlite3_column_int64(st, 6);
        r->has_signal = sqlite3_column_type(st, 7) != SQLITE_NULL;
        r->signal = sqlite3_column_int64(st, 7);
        r->error = col_str(ctx, st, 8);
        r->has_wall = sqlite3_column_type(st, 9) != SQLITE_NULL;
        r->wall_s = sqlite3_column_double(st, 9);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && !ctx->oom) return fail_sql(ctx, err, errlen, "runs");
    drop_superseded(ctx);

    if (sqlite3_prepare_v2(ctx->db,
                           "SELECT p.run_id, p.key, p.value FROM params p JOIN runs r ON "
                           "r.id = p.run_id WHERE " SELECTED("r") " ORDER BY p.key",
                           -1, &st, NULL) != SQLITE_OK)
        return fail_sql(ctx, err, errlen, "params");
    sqlite3_bind_int64(st, 1, ctx->sweep_id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct pl_run *r = run_by_id(ctx, sqlite3_column_int64(st, 0));
        if (!r) continue;
        size_t pcap = r->n_params; /* grown one by one: capacity is the count */
        struct pl_param *p = pl_grow(ctx, r->params, &pcap, r->n_params + 1, sizeof *p);
        if (!p) break;
        r->params = p;
        p[r->n_params].key = col_str(ctx, st, 1);
        p[r->n_params].value = col_str(ctx, st, 2);
        r->n_params++;
    }
    sqlite3_finalize(st);

    if (sqlite3_prepare_v2(
            ctx->db,
            /* whole-run metrics, and for multi-rank runs the largest
               per-rank value as '<name>@rankmax' (memory per rank) */
            "SELECT m.run_id, m.name, m.value, m.unit, m.unavailable FROM metrics m "
            "JOIN runs r ON r.id = m.run_id WHERE m.rank = -1 AND " SELECTED(
                "r") " UNION ALL "
                     "SELECT m.run_id, m.name || '@rankmax', MAX(m.value), MIN(m.unit), NULL "
                     "FROM metrics m JOIN runs r ON r.id = m.run_id WHERE m.rank >= 0 AND "
                     "m.value IS NOT NULL AND " SELECTED(
                         "r") " "
                              "GROUP BY m.run_id, m.name ORDER BY 2",
            -1, &st, NULL) != SQLITE_OK)
        return fail_sql(ctx, err, errlen, "metrics");
    sqlite3_bind_int64(st, 1, ctx->sweep_id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct pl_run *r = run_by_id(ctx, sqlite3_column_int64(st, 0));
        if (!r) continue;
        size_t mcap = r->n_metrics;
        struct pl_metric *m = pl_grow(ctx, r->metrics, &mcap, r->n_metrics + 1, sizeof *m);
        if (!m) break;
        r->metrics = m;
        m += r->n_metrics++;
        memset(m, 0, sizeof *m);
        m->name = col_str(ctx, st, 1);
        m->has = sqlite3_column_type(st, 2) != SQLITE_NULL;
        m->value = sqlite3_column_double(st, 2);
        m->unit = col_str(ctx, st, 3);
        m->unavailable = col_str(ctx, st, 4);
        if (m->has && !isfinite(m->value))
            m->has = 0; /* a NaN or infinity cannot be placed on an axis */
    }
    sqlite3_finalize(st);
    return 0;
}

const struct pl_metric *pl_run_metric(const struct pl_run *run, const char *name)
{
    for (size_t i = 0; i < run->n_metrics; i++)
        if (run->metrics[i].name && strcmp(run->metrics[i].name, name) == 0)
            return &run->metrics[i];
    return NULL;
}

const char *pl_run_param(const struct pl_run *run, const char *key)
{
    for (size_t i = 0; i < run->n_params; i++)
        if (run->params[i].key && strcmp(run->params[i].key, key) == 0) return run->params[i].value;
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int pl_config_stat(const struct pl_ctx *ctx, const struct pl_config *cfg, const char *metric,
                   struct pl_stat *st)
{
    memset(st, 0, sizeof *st);
    double small[64];
    double *v = cfg->n_runs <= 64 ? small : malloc(cfg->n_runs * sizeof *v);
    if (!v) return 0;
    for (size_t i = 0; i < cfg->n_runs; i++) {
        const struct pl_metric *m = pl_run_metric(&ctx->runs[cfg->runs[i]], metric);
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

const char *pl_metric_unit(const struct pl_ctx *ctx, const char *metric)
{
    for (size_t i = 0; i < ctx->n_runs; i++) {
        const struct pl_metric *m = pl_run_metric(&ctx->runs[i], metric);
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

void pl_pareto(const double *x, const double *y, size_t n, int y_higher, int *on_front)
{
    for (size_t i = 0; i < n; i++) {
        on_front[i] = 1;
        for (size_t j = 0; j < n && on_front[i]; j++) {
            double yi = y_higher ? -y[i] : y[i], yj = y_higher ? -y[j] : y[j];
            if (j != i && x[j] <= x[i] && yj <= yi && (x[j] < x[i] || yj < yi)) on_front[i] = 0;
        }
    }
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
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(ctx->db,
                           "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                           "('runs','params','metrics','samples','regions','alloc_sites')",
                           -1, &st, NULL) != SQLITE_OK)
        return fail_sql(ctx, err, errlen, "the schema");
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (n != 6) {
        snprintf(err, errlen, "%s is not a memtrade results database (missing tables)",
                 ctx->opts->db_path);
        return -1;
    }
    if (select_sweep(ctx, err, errlen) != 0 || load_runs(ctx, err, errlen) != 0) return -1;
    return build_configs(ctx) == 0 ? 0 : (snprintf(err, errlen, "out of memory"), -1);
}

void pl_ctx_free(struct pl_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_runs; i++)
        free_run(&ctx->runs[i]);
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
    if (ctx->db) sqlite3_close(ctx->db);
    memset(ctx, 0, sizeof *ctx);
}
