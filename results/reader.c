/* results/reader.c — the read API (contract in reader.h).
 *
 * What it is for: one prepared statement per question, with bound parameters, copied into
 * an arena that the reader owns. The memory category is the column the store writes
 * (migration 004; '' becomes NULL here); no name is cut. What it is not for: the canned
 * query tables (store_read.c) or writing (store.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"
#include "store_internal.h"

/* qsort for arrays that may be empty: an empty array may be NULL, which qsort's contract
 * (glibc: nonnull) does not allow. */
static void sort_n(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1) qsort(base, n, size, cmp);
}

/* Every allocation of a reader: a list of blocks freed together. */
struct block {
    struct block *next;
    max_align_t data[];
};

struct mt_read {
    struct mt_store *st;
    struct block *blocks;
    const void *arg; /* what a row function needs beyond its row (read_rows) */
};

int mt_read_open(struct mt_store *st, struct mt_read **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return store_fail(st, "reader: out of memory");
    (*out)->st = st;
    return 0;
}

void mt_read_close(struct mt_read *rd)
{
    if (!rd) return;
    for (struct block *b = rd->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(rd);
}

static void *rd_alloc(struct mt_read *rd, size_t size)
{
    struct block *b = malloc(sizeof *b + (size ? size : 1));
    if (!b) return NULL;
    b->next = rd->blocks;
    rd->blocks = b;
    return b->data;
}

/* Grows *v (elements of `elem` bytes, *cap of them) to hold `need`; arena memory, so
 * the old block stays until close: sweeps are small and rows are copied at most log n
 * times. */
static int rd_grow(struct mt_read *rd, void **v, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *g = rd_alloc(rd, n * elem);
    if (!g) return -1;
    if (*v) memcpy(g, *v, *cap * elem);
    *v = g;
    *cap = n;
    return 0;
}

static const char *col_text(struct mt_read *rd, sqlite3_stmt *s, int i, int *oom)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    if (!t) return NULL;
    size_t n = (size_t)sqlite3_column_bytes(s, i);
    char *copy = rd_alloc(rd, n + 1);
    if (!copy) {
        *oom = 1;
        return NULL;
    }
    memcpy(copy, t, n + 1);
    return copy;
}

static int is_null(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL;
}

static double col_real_or_nan(sqlite3_stmt *s, int i)
{
    return is_null(s, i) ? NAN : sqlite3_column_double(s, i);
}

static sqlite3_stmt *prepare(struct mt_read *rd, const char *sql, const char *what)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(rd->st->db, sql, -1, &s, NULL) != SQLITE_OK) {
        store_fail_sql(rd->st, what);
        return NULL;
    }
    return s;
}

/* prepare() with ?1 bound to id: the statements that read one sweep's or one run's rows. */
static sqlite3_stmt *prepare_id(struct mt_read *rd, const char *sql, const char *what, int64_t id)
{
    sqlite3_stmt *s = prepare(rd, sql, what);
    if (s) sqlite3_bind_int64(s, 1, id);
    return s;
}

/* Ends a row loop: finalizes and turns the last step's code into 0 or -1. */
static int finish(struct mt_read *rd, sqlite3_stmt *s, int rc, int oom, const char *what)
{
    if (oom) {
        sqlite3_finalize(s);
        return store_fail(rd->st, "%s: out of memory", what);
    }
    if (rc != SQLITE_DONE) {
        store_fail_sql(rd->st, what);
        sqlite3_finalize(s);
        return -1;
    }
    sqlite3_finalize(s);
    return 0;
}

/* Fills one element from the current row; returns 1 to keep it, 0 to skip the row. */
typedef int row_fn(struct mt_read *rd, sqlite3_stmt *s, void *elem, int *oom);

/* Runs `sql` with integers ints[0..nints) bound to ?1.., and appends one element of `elem`
 * bytes per row that `fn` keeps to *out (reader memory), counting them in *n. */
static int read_rows(struct mt_read *rd, const char *sql, const char *what, const int64_t *ints,
                     size_t nints, size_t elem, row_fn *fn, void **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s = prepare(rd, sql, what);
    if (!s) return -1;
    for (size_t i = 0; i < nints; i++)
        sqlite3_bind_int64(s, (int)i + 1, ints[i]);
    size_t cap = 0;
    int rc, oom = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (rd_grow(rd, out, &cap, *n + 1, elem) != 0) {
            oom = 1;
            break;
        }
        char *e = (char *)*out + *n * elem;
        memset(e, 0, elem);
        if (fn(rd, s, e, &oom)) (*n)++;
        if (oom) break;
    }
    return finish(rd, s, oom ? SQLITE_DONE : rc, oom, what);
}

/* ---------------------------------------------------------------- sweeps */

int mt_read_latest_sweep(struct mt_read *rd, int64_t *sweep_id)
{
    sqlite3_stmt *s = prepare(rd, "SELECT MAX(sweep_id) FROM runs", "latest sweep");
    if (!s) return -1;
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW && !is_null(s, 0);
    if (found) *sweep_id = sqlite3_column_int64(s, 0);
    if (finish(rd, s, rc == SQLITE_ROW ? SQLITE_DONE : rc, 0, "latest sweep") != 0) return -1;
    return found;
}

int mt_read_sweep(struct mt_read *rd, int64_t id, struct mt_read_sweep *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = prepare_id(
        rd, "SELECT name, spec_path, host, facts_json FROM sweeps WHERE id = ?1", "sweep", id);
    if (!s) return -1;
    int rc = sqlite3_step(s), oom = 0, found = rc == SQLITE_ROW;
    if (found) {
        out->id = id;
        out->name = col_text(rd, s, 0, &oom);
        out->spec_path = col_text(rd, s, 1, &oom);
        out->host = col_text(rd, s, 2, &oom);
        out->facts_json = col_text(rd, s, 3, &oom);
    }
    if (finish(rd, s, found ? SQLITE_DONE : rc, oom, "sweep") != 0) return -1;
    return found;
}

/* ---------------------------------------------------------------- runs */

/* The runs of the selection: ?1 = sweep id (< 0: all), ?2 = one run id (0: any). */
#define SELECTED(r)                                                                                \
    "(?1 < 0 OR " r ".sweep_id = ?1 OR " r ".sweep_id IN (SELECT s.id FROM sweeps s JOIN "         \
    "sweeps t ON s.name = t.name AND s.spec_path IS t.spec_path WHERE t.id = ?1))"                 \
    " AND (?2 = 0 OR " r ".id = ?2)"

static struct mt_read_run *run_by_id(struct mt_read_run *runs, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (runs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && runs[lo].id == id ? &runs[lo] : NULL;
}

static void read_metric_row(struct mt_read *rd, sqlite3_stmt *s, int first,
                            struct mt_read_metric *m, int *oom)
{
    memset(m, 0, sizeof *m);
    m->name = col_text(rd, s, first, oom);
    m->category = col_text(rd, s, first + 1, oom);
    m->rank = sqlite3_column_int(s, first + 2);
    m->has = !is_null(s, first + 3);
    m->value = sqlite3_column_double(s, first + 3);
    m->unit = col_text(rd, s, first + 4, oom);
    m->unavailable = col_text(rd, s, first + 5, oom);
    if (m->has && !isfinite(m->value)) m->has = 0; /* a NaN cannot be placed on an axis */
}

/* The order of named figures (metrics, counters): by name, then category, a figure
 * without a category first. */
static int cmp_name_category(const char *name_a, const char *cat_a, const char *name_b,
                             const char *cat_b)
{
    int c = strcmp(name_a, name_b);
    if (c) return c;
    if (!cat_a || !cat_b) return (cat_a != NULL) - (cat_b != NULL);
    return strcmp(cat_a, cat_b);
}

static int cmp_metric(const void *a, const void *b)
{
    const struct mt_read_metric *x = a, *y = b;
    return cmp_name_category(x->name, x->category, y->name, y->category);
}

/* Appends metric rows (run_id, name, category, rank, value, unit, unavailable) to the
 * runs they belong to: run-level ones to metrics, per-rank maxima to rank_max. */
static int attach_metrics(struct mt_read *rd, sqlite3_stmt *s, struct mt_read_run *runs, size_t n,
                          int to_rank_max, size_t *caps, const char *what)
{
    int rc, oom = 0;
    while (!oom && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct mt_read_run *r = run_by_id(runs, n, sqlite3_column_int64(s, 0));
        if (!r) continue;
        struct mt_read_metric **v = to_rank_max ? &r->rank_max : &r->metrics;
        size_t *cnt = to_rank_max ? &r->n_rank_max : &r->n_metrics;
        size_t *cap = &caps[r - runs];
        if (rd_grow(rd, (void **)v, cap, *cnt + 1, sizeof **v) != 0) {
            oom = 1;
            break;
        }
        read_metric_row(rd, s, 1, &(*v)[(*cnt)++], &oom);
    }
    return finish(rd, s, oom ? SQLITE_DONE : rc, oom, what);
}

static int load_runs(struct mt_read *rd, int64_t sweep_id, int64_t run_id, struct mt_read_run **out,
                     size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *s = prepare(
        rd,
        "SELECT r.id, r.sweep_id, r.workload, r.label, r.config_key, r.repeat, r.status,"
        " r.exit_code, r.signal, r.error, r.wall_s, r.facts_json, r.ranks,"
        " (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.rank = -1"
        "  AND m.category = '' AND m.name = 'eval_bytes'),"
        " (SELECT CAST(p.value AS REAL) FROM params p WHERE p.run_id = r.id AND p.key = 'steps')"
        " * (SELECT CAST(p.value AS REAL) FROM params p WHERE p.run_id = r.id AND p.key = 'batch')"
        " FROM runs r WHERE " SELECTED("r") " ORDER BY r.id",
        "runs");
    if (!s) return -1;
    sqlite3_bind_int64(s, 1, sweep_id);
    sqlite3_bind_int64(s, 2, run_id);
    struct mt_read_run *runs = NULL;
    size_t n = 0, cap = 0;
    int rc, oom = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (rd_grow(rd, (void **)&runs, &cap, n + 1, sizeof *runs) != 0) {
            oom = 1;
            break;
        }
        struct mt_read_run *r = &runs[n++];
        memset(r, 0, sizeof *r);
        r->id = sqlite3_column_int64(s, 0);
        r->sweep_id = sqlite3_column_int64(s, 1);
        r->workload = col_text(rd, s, 2, &oom);
        r->label = col_text(rd, s, 3, &oom);
        r->config_key = col_text(rd, s, 4, &oom);
        r->repeat = sqlite3_column_int64(s, 5);
        r->status = col_text(rd, s, 6, &oom);
        r->has_exit = !is_null(s, 7);
        r->exit_code = sqlite3_column_int64(s, 7);
        r->has_signal = !is_null(s, 8);
        r->signal = sqlite3_column_int64(s, 8);
        r->error = col_text(rd, s, 9, &oom);
        r->has_wall = !is_null(s, 10);
        r->wall_s = sqlite3_column_double(s, 10);
        r->facts_json = col_text(rd, s, 11, &oom);
        r->ranks = sqlite3_column_int(s, 12);
        r->eval_bytes = col_real_or_nan(s, 13);
        r->train_budget = col_real_or_nan(s, 14);
    }
    if (finish(rd, s, oom ? SQLITE_DONE : rc, oom, "runs") != 0) return -1;
    if (n == 0) return 0;

    size_t *caps = calloc(n, sizeof *caps);
    if (!caps) return store_fail(rd->st, "runs: out of memory");
    int ret = -1;
    if (!(s = prepare(rd,
                      "SELECT p.run_id, p.key, p.value FROM params p JOIN runs r ON"
                      " r.id = p.run_id WHERE " SELECTED("r") " ORDER BY p.key",
                      "params")))
        goto out;
    sqlite3_bind_int64(s, 1, sweep_id);
    sqlite3_bind_int64(s, 2, run_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct mt_read_run *r = run_by_id(runs, n, sqlite3_column_int64(s, 0));
        if (!r) continue;
        if (rd_grow(rd, (void **)&r->params, &caps[r - runs], r->n_params + 1, sizeof *r->params) !=
            0) {
            oom = 1;
            break;
        }
        struct mt_read_param *p = &r->params[r->n_params++];
        p->key = col_text(rd, s, 1, &oom);
        p->value = col_text(rd, s, 2, &oom);
    }
    if (finish(rd, s, oom ? SQLITE_DONE : rc, oom, "params") != 0) goto out;

    memset(caps, 0, n * sizeof *caps);
    if (!(s = prepare(rd,
                      "SELECT m.run_id, m.name, NULLIF(m.category, ''), m.rank, m.value, m.unit,"
                      " m.unavailable"
                      " FROM metrics m JOIN runs r ON r.id = m.run_id WHERE m.rank = -1"
                      " AND " SELECTED("r"),
                      "metrics")))
        goto out;
    sqlite3_bind_int64(s, 1, sweep_id);
    sqlite3_bind_int64(s, 2, run_id);
    if (attach_metrics(rd, s, runs, n, 0, caps, "metrics") != 0) goto out;

    memset(caps, 0, n * sizeof *caps);
    if (!(s = prepare(rd,
                      "SELECT m.run_id, m.name, NULLIF(m.category, ''), -1, MAX(m.value),"
                      " MIN(m.unit), NULL"
                      " FROM metrics m JOIN runs r ON r.id = m.run_id WHERE m.rank >= 0"
                      " AND m.value IS NOT NULL AND " SELECTED(
                          "r") " GROUP BY m.run_id, m.name, m.category",
                      "per-rank metrics")))
        goto out;
    sqlite3_bind_int64(s, 1, sweep_id);
    sqlite3_bind_int64(s, 2, run_id);
    if (attach_metrics(rd, s, runs, n, 1, caps, "per-rank metrics") != 0) goto out;
    for (size_t i = 0; i < n; i++) {
        sort_n(runs[i].metrics, runs[i].n_metrics, sizeof *runs[i].metrics, cmp_metric);
        sort_n(runs[i].rank_max, runs[i].n_rank_max, sizeof *runs[i].rank_max, cmp_metric);
    }
    *out = runs;
    *n_out = n;
    ret = 0;
out:
    free(caps);
    return ret;
}

int mt_read_runs(struct mt_read *rd, int64_t sweep_id, struct mt_read_run **runs, size_t *n)
{
    return load_runs(rd, sweep_id < 0 ? -1 : sweep_id, 0, runs, n);
}

int mt_read_run(struct mt_read *rd, int64_t run_id, struct mt_read_run **run)
{
    size_t n;
    *run = NULL;
    if (run_id <= 0) return 0;
    if (load_runs(rd, -1, run_id, run, &n) != 0) return -1;
    return n > 0;
}

static int metric_row(struct mt_read *rd, sqlite3_stmt *s, void *elem, int *oom)
{
    read_metric_row(rd, s, 0, elem, oom);
    return 1;
}

int mt_read_metrics(struct mt_read *rd, int64_t run_id, int rank, struct mt_read_metric **out,
                    size_t *n)
{
    int64_t ints[] = {run_id, rank};
    if (read_rows(rd,
                  "SELECT name, NULLIF(category, ''), rank, value, unit, unavailable FROM metrics"
                  " WHERE run_id = ?1 AND rank = ?2",
                  "metrics", ints, 2, sizeof **out, metric_row, (void **)out, n) != 0)
        return -1;
    sort_n(*out, *n, sizeof **out, cmp_metric);
    return 0;
}

/* ---------------------------------------------------------------- samples */

/* Whether a stored series is one of the wanted names. */
static int series_wanted(const char *stored, const char *const *series, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(stored, series[i]) == 0) return 1;
    return 0;
}

/* The distinct series of a run with the lowest rank each has: few rows (series, not
 * samples), filtered here so that the wanted names need no SQL of their own. */
static int lowest_rank(struct mt_read *rd, int64_t run_id, const char *const *series,
                       size_t n_series, int *rank)
{
    sqlite3_stmt *s =
        prepare_id(rd, "SELECT series, MIN(rank) FROM samples WHERE run_id = ?1 GROUP BY series",
                   "samples", run_id);
    if (!s) return -1;
    int rc, found = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!series_wanted((const char *)sqlite3_column_text(s, 0), series, n_series)) continue;
        int r = sqlite3_column_int(s, 1);
        if (!found || r < *rank) *rank = r;
        found = 1;
    }
    if (finish(rd, s, rc, 0, "samples") != 0) return -1;
    return found;
}

int mt_read_has_samples(struct mt_read *rd, int64_t run_id, const char *const *series,
                        size_t n_series)
{
    int rank;
    return lowest_rank(rd, run_id, series, n_series, &rank);
}

/* The wanted series of mt_read_samples, for its row function. */
struct wanted {
    const char *const *series;
    size_t n;
};

static int sample_row(struct mt_read *rd, sqlite3_stmt *s, void *elem, int *oom)
{
    const struct wanted *w = rd->arg;
    if (!series_wanted((const char *)sqlite3_column_text(s, 0), w->series, w->n)) return 0;
    struct mt_read_sample *p = elem;
    p->series = col_text(rd, s, 0, oom);
    p->category = col_text(rd, s, 1, oom);
    p->x = sqlite3_column_double(s, 2);
    p->y = sqlite3_column_double(s, 3);
    p->region = col_text(rd, s, 4, oom);
    if (p->region && !*p->region) p->region = NULL; /* "" is how an event says "none" */
    return 1;
}

int mt_read_samples(struct mt_read *rd, int64_t run_id, const char *const *series, size_t n_series,
                    struct mt_read_sample **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rank = 0, found = lowest_rank(rd, run_id, series, n_series, &rank);
    if (found <= 0) return found;
    struct wanted w = {series, n_series};
    int64_t ints[] = {run_id, rank};
    rd->arg = &w;
    int rc = read_rows(rd,
                       "SELECT series, NULLIF(category, ''), x, y, region FROM samples"
                       " WHERE run_id = ?1 AND rank = ?2 ORDER BY x, series, category, rowid",
                       "samples", ints, 2, sizeof **out, sample_row, (void **)out, n);
    rd->arg = NULL;
    return rc;
}

/* ---------------------------------------------------------------- regions */

static int cmp_counter(const void *a, const void *b)
{
    const struct mt_read_counter *x = a, *y = b;
    return cmp_name_category(x->name, x->category, y->name, y->category);
}

static struct mt_read_region *region_by_id(struct mt_read_region *v, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id) return &v[i];
    return NULL;
}

static int region_row(struct mt_read *rd, sqlite3_stmt *s, void *elem, int *oom)
{
    struct mt_read_region *g = elem;
    g->id = sqlite3_column_int64(s, 0);
    g->rank = sqlite3_column_int(s, 1);
    g->path = col_text(rd, s, 2, oom);
    g->name = col_text(rd, s, 3, oom);
    g->depth = sqlite3_column_int(s, 4);
    g->calls = sqlite3_column_int64(s, 5);
    g->wall_s = sqlite3_column_double(s, 6);
    g->has_cpu = !is_null(s, 7);
    g->cpu_s = sqlite3_column_double(s, 7);
    return 1;
}

int mt_read_regions(struct mt_read *rd, int64_t run_id, struct mt_read_region **out, size_t *n)
{
    int64_t ints[] = {run_id};
    if (read_rows(rd,
                  "SELECT id, rank, path, name, depth, calls, wall_s, cpu_s"
                  " FROM regions WHERE run_id = ?1 ORDER BY rank, path",
                  "regions", ints, 1, sizeof **out, region_row, (void **)out, n) != 0)
        return -1;
    if (*n == 0) return 0;
    sqlite3_stmt *s;
    size_t cap = 0;
    int rc, oom = 0;
    if (!(s = prepare(
              rd,
              "SELECT c.region_id, c.counter, NULLIF(c.category, ''), c.value, c.unavailable"
              " FROM region_counters c JOIN regions g ON g.id = c.region_id"
              " WHERE g.run_id = ?1 ORDER BY c.region_id",
              "region counters")))
        return -1;
    sqlite3_bind_int64(s, 1, run_id);
    struct mt_read_region *g = NULL;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(s, 0);
        if (!g || g->id != id) {
            g = region_by_id(*out, *n, id);
            cap = g ? g->n_counters : 0;
        }
        if (!g) continue;
        if (rd_grow(rd, (void **)&g->counters, &cap, g->n_counters + 1, sizeof *g->counters) != 0) {
            oom = 1;
            break;
        }
        struct mt_read_counter *c = &g->counters[g->n_counters++];
        c->name = col_text(rd, s, 1, &oom);
        c->category = col_text(rd, s, 2, &oom);
        c->has = !is_null(s, 3);
        c->value = sqlite3_column_double(s, 3);
        c->unavailable = col_text(rd, s, 4, &oom);
    }
    if (finish(rd, s, oom ? SQLITE_DONE : rc, oom, "region counters") != 0) return -1;
    for (size_t i = 0; i < *n; i++)
        sort_n((*out)[i].counters, (*out)[i].n_counters, sizeof *(*out)[i].counters, cmp_counter);
    return 0;
}

/* ---------------------------------------------------------------- sites, stacks */

int mt_read_has(struct mt_read *rd, int64_t run_id, enum mt_read_what what)
{
    sqlite3_stmt *s =
        prepare_id(rd,
                   what == MT_READ_SITES ? "SELECT 1 FROM alloc_sites WHERE run_id = ?1 LIMIT 1"
                                         : "SELECT 1 FROM regions WHERE run_id = ?1 LIMIT 1",
                   "probe", run_id);
    if (!s) return -1;
    int rc = sqlite3_step(s), has = rc == SQLITE_ROW;
    if (finish(rd, s, has ? SQLITE_DONE : rc, 0, "probe") != 0) return -1;
    return has;
}

static int site_row(struct mt_read *rd, sqlite3_stmt *s, void *elem, int *oom)
{
    struct mt_read_site *t = elem;
    t->stack_id = sqlite3_column_int64(s, 0);
    t->category = col_text(rd, s, 1, oom);
    t->peak_bytes = sqlite3_column_double(s, 2);
    t->bytes = sqlite3_column_double(s, 3);
    t->allocs = sqlite3_column_double(s, 4);
    t->estimated = sqlite3_column_int(s, 5);
    return 1;
}

int mt_read_top_sites(struct mt_read *rd, int64_t run_id, size_t limit, struct mt_read_site **out,
                      size_t *n)
{
    int64_t ints[] = {run_id, limit ? (int64_t)limit : -1};
    return read_rows(
        rd,
        "SELECT stack_id, category, SUM(peak_bytes), SUM(bytes), SUM(allocs), MAX(estimated)"
        " FROM alloc_sites WHERE run_id = ?1 AND space = 'host' AND rank ="
        " (SELECT MIN(rank) FROM alloc_sites WHERE run_id = ?1)"
        " GROUP BY stack_id, category HAVING SUM(peak_bytes) > 0"
        " ORDER BY 3 DESC, 1, 2 LIMIT ?2",
        "alloc sites", ints, 2, sizeof **out, site_row, (void **)out, n);
}

static int frame_row(struct mt_read *rd, sqlite3_stmt *s, void *elem, int *oom)
{
    struct mt_read_frame *f = elem;
    f->function = col_text(rd, s, 0, oom);
    f->module = col_text(rd, s, 1, oom);
    f->file = col_text(rd, s, 2, oom);
    f->line = is_null(s, 3) ? -1 : sqlite3_column_int(s, 3);
    return 1;
}

int mt_read_stack(struct mt_read *rd, int64_t stack_id, struct mt_read_frame **out, size_t *n)
{
    int64_t ints[] = {stack_id};
    return read_rows(rd,
                     "SELECT f.function, f.module, f.file, f.line FROM stack_frames s"
                     " JOIN frames f ON f.id = s.frame_id WHERE s.stack_id = ?1"
                     " ORDER BY s.depth",
                     "stack", ints, 1, sizeof **out, frame_row, (void **)out, n);
}

/* ---------------------------------------------------------------- facts */

int mt_read_json_fact(struct mt_read *rd, const char *json, const char *const *paths,
                      const char **out)
{
    *out = NULL;
    if (!json) return 0;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(rd->st->db,
                           "SELECT json_extract(?1, ?2) WHERE json_valid(?1) AND"
                           " json_type(?1, ?2) IN ('text','integer','real')",
                           -1, &s, NULL) != SQLITE_OK)
        return 0; /* an SQLite without JSON: no fact, as for a run that recorded none */
    int oom = 0, rc = SQLITE_DONE;
    for (size_t i = 0; paths[i] && !*out && !oom; i++) {
        sqlite3_bind_text(s, 1, json, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, paths[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *out = col_text(rd, s, 0, &oom);
            rc = SQLITE_DONE;
        }
        sqlite3_reset(s);
    }
    return finish(rd, s, rc, oom, "facts");
}
