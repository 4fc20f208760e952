/* results/store_read.c — the canned read queries of `memtrade query` and the guarded `sql`.
 *
 * What it is for: runs, show, compare, pareto, sites, folded and sql, each one prepared
 * statement with bound parameters printed through format.c. What it is not for: writing
 * (store.c) or merging (store_merge.c).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "pareto.h"
#include "store_internal.h"

/* How a query's rows sit in the output: the whole output (JSON ends with a newline), or
 * one section of a multi-part output, as an array or as one object. */
enum placement { TOP_LEVEL, SECTION_ROWS, SECTION_OBJECT };

/* Prepares `sql`, binds integers to ?1..?nints and texts to the following numbers (NULL
 * binds SQL NULL), prints the rows in `fmt`. */
static int print_query(struct mt_store *st, const char *sql, const int64_t *ints, size_t nints,
                       const char *const *texts, size_t ntexts, enum mt_store_format fmt,
                       enum placement where, FILE *out)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_fail_sql(st, "prepare query");
    for (size_t i = 0; i < nints; i++)
        sqlite3_bind_int64(s, (int)i + 1, ints[i]);
    for (size_t i = 0; i < ntexts; i++) {
        if (texts[i])
            sqlite3_bind_text(s, (int)(nints + i + 1), texts[i], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(s, (int)(nints + i + 1));
    }
    char msg[512];
    int rc = format_stmt(s, fmt, where == SECTION_OBJECT, out, msg, sizeof msg);
    sqlite3_finalize(s);
    if (rc != 0) return store_fail(st, "%s", msg);
    if (where == TOP_LEVEL && fmt == MT_FORMAT_JSON) fputc('\n', out);
    return 0;
}

static int run_exists(struct mt_store *st, int64_t run_id)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM runs WHERE id = ?1", -1, &s, NULL) != SQLITE_OK)
        return store_fail_sql(st, "find run");
    sqlite3_bind_int64(s, 1, run_id);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW) return 0;
    if (rc == SQLITE_DONE) return store_fail(st, "no run %lld", (long long)run_id);
    return store_fail_sql(st, "find run");
}

int mt_store_query_runs(struct mt_store *st, const struct mt_store_runs_filter *f,
                        enum mt_store_format fmt, FILE *out)
{
    struct mt_store_runs_filter none = {0};
    if (!f) f = &none;
    int64_t ints[] = {f->sweep_id};
    const char *texts[] = {f->workload, f->status};
    return print_query(st,
                       "SELECT id, sweep_id, workload, label, config_key, repeat, status,"
                       " exit_code, signal, wall_s, started_at, error FROM runs"
                       " WHERE (?1 = 0 OR sweep_id = ?1) AND (?2 IS NULL OR workload = ?2)"
                       " AND (?3 IS NULL OR status = ?3) ORDER BY id",
                       ints, 1, texts, 2, fmt, TOP_LEVEL, out);
}

/* Section framing of multi-part outputs (see store.h). */
static void section_begin(enum mt_store_format fmt, FILE *out, const char *name, int first)
{
    if (fmt == MT_FORMAT_JSON) {
        fprintf(out, "%s\"%s\": ", first ? "{" : ",\n ", name);
    } else {
        fprintf(out, "%s# %s\n", first ? "" : "\n", name);
    }
}

int mt_store_query_show(struct mt_store *st, int64_t run_id, enum mt_store_format fmt, FILE *out)
{
    if (run_exists(st, run_id) != 0) return -1;
    static const struct {
        const char *name, *sql;
    } sections[] = {
        {"run", "SELECT * FROM runs WHERE id = ?1"},
        {"params", "SELECT key, value FROM params WHERE run_id = ?1 ORDER BY key"},
        {"metrics", "SELECT rank, name, category, value, unit, unavailable FROM metrics"
                    " WHERE run_id = ?1 ORDER BY rank, name, category"},
        {"regions", "SELECT rank, path, calls, wall_s, cpu_s FROM regions WHERE run_id = ?1"
                    " ORDER BY rank, path"},
        {"region_counters", "SELECT r.rank, r.path, c.counter, c.category, c.value,"
                            " c.unavailable FROM regions r JOIN region_counters c"
                            " ON c.region_id = r.id WHERE r.run_id = ?1"
                            " ORDER BY r.rank, r.path, c.counter, c.category"},
    };
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        section_begin(fmt, out, sections[i].name, i == 0);
        if (print_query(st, sections[i].sql, &run_id, 1, NULL, 0, fmt,
                        i == 0 ? SECTION_OBJECT : SECTION_ROWS, out) != 0)
            return -1;
    }
    if (fmt == MT_FORMAT_JSON) fputs("}\n", out);
    return 0;
}

int mt_store_query_check(struct mt_store *st, int64_t run_id, enum mt_store_format fmt, FILE *out)
{
    if (run_exists(st, run_id) != 0) return -1;
    char frac[32], bytes[32];
    snprintf(frac, sizeof frac, "%.17g", MT_WITNESS_FLAG_FRAC);
    snprintf(bytes, sizeof bytes, "%.17g", MT_WITNESS_FLAG_BYTES);
    const char *const limits[] = {frac, bytes};
    return print_query(
        st,
        "WITH ph AS (SELECT DISTINCT substr(name, 6, length(name) - 16) AS phase FROM metrics"
        "   WHERE run_id = ?1 AND rank = -1 AND category = ''"
        "   AND name LIKE 'plan\\_%\\_peak\\_bytes' ESCAPE '\\'),"
        " reg AS (SELECT g.path AS phase, c.category, c.value, c.unavailable FROM regions g"
        "   JOIN region_counters c ON c.region_id = g.id WHERE g.run_id = ?1 AND g.rank = 0"
        "   AND c.counter = 'heap_peak_bytes'),"
        " cats AS (SELECT ph.phase, m.category FROM ph JOIN metrics m ON m.run_id = ?1"
        "   AND m.rank = -1 AND m.name IN ('plan_' || ph.phase || '_peak_bytes',"
        "   ph.phase || '_peak_bytes')"
        "   UNION SELECT reg.phase, reg.category FROM reg JOIN ph ON ph.phase = reg.phase"
        "   WHERE reg.value IS NULL OR reg.value <> 0 OR reg.category = ''),"
        " tot AS (SELECT g.path AS phase, c.value FROM regions g JOIN region_counters c"
        "   ON c.region_id = g.id WHERE g.run_id = ?1 AND g.rank = 0"
        "   AND c.counter = 'heap_peak_bytes' AND c.category = ''),"
        " rows AS (SELECT c.phase, CASE c.category WHEN '' THEN 'total' ELSE c.category END AS "
        "category,"
        " p.value AS plan_bytes, a.value AS accounted_bytes, h.value AS heap_bytes,"
        " h.value - COALESCE(p.value, 0) AS heap_minus_plan_bytes,"
        " CASE WHEN c.category = '' THEN (SELECT COALESCE(value, unavailable) FROM metrics"
        "   WHERE run_id = ?1 AND rank = -1 AND name = c.phase || '_rss_peak_bytes'"
        "   AND category = '') END AS rss_bytes,"
        " CASE WHEN c.category = '' THEN COALESCE(u.value, u.unavailable) END AS unaccounted,"
        " CASE WHEN c.category <> '' OR u.value IS NULL THEN NULL"
        "   WHEN abs(u.value) > CAST(?2 AS REAL) * h.value"
        "   AND abs(u.value) > CAST(?3 AS REAL) THEN 'over' ELSE 'ok' END AS flag"
        " FROM cats c"
        " LEFT JOIN metrics p ON p.run_id = ?1 AND p.rank = -1"
        "   AND p.name = 'plan_' || c.phase || '_peak_bytes' AND p.category = c.category"
        " LEFT JOIN metrics a ON a.run_id = ?1 AND a.rank = -1"
        "   AND a.name = c.phase || '_peak_bytes' AND a.category = c.category"
        " LEFT JOIN reg h ON h.phase = c.phase AND h.category = c.category"
        " LEFT JOIN metrics u ON u.run_id = ?1 AND u.rank = -1 AND c.category = ''"
        "   AND u.name = c.phase || '_unaccounted_bytes' AND u.category = ''"
        /* the runtime terms of the run's build, machine and class as the run stored them
         * (witness.h): what the heap holds beyond the plan, predicted (plan_bytes) against
         * measured (heap_bytes), the residual beside, or why they are unavailable */
        " UNION ALL SELECT ph.phase, 'runtime', rt.value, NULL, u.value, res.value, NULL,"
        " CASE WHEN res.value IS NOT NULL THEN res.value WHEN rt.run_id IS NOT NULL AND"
        "   rt.value IS NULL THEN rt.unavailable WHEN res.run_id IS NOT NULL THEN res.unavailable"
        "   ELSE 'runtime status not stored with this run (recorded before memtrade stored it)' "
        "END,"
        " CASE WHEN res.value IS NULL OR tot.value IS NULL THEN NULL"
        "   WHEN abs(res.value) > CAST(?2 AS REAL) * tot.value"
        "   AND abs(res.value) > CAST(?3 AS REAL) THEN 'over' ELSE 'ok' END"
        " FROM ph LEFT JOIN tot ON tot.phase = ph.phase"
        " LEFT JOIN metrics u ON u.run_id = ?1 AND u.rank = -1"
        "   AND u.name = ph.phase || '_unaccounted_bytes' AND u.category = ''"
        " LEFT JOIN metrics rt ON rt.run_id = ?1 AND rt.rank = -1"
        "   AND rt.name = ph.phase || '_runtime_bytes' AND rt.category = ''"
        " LEFT JOIN metrics res ON res.run_id = ?1 AND res.rank = -1"
        "   AND res.name = ph.phase || '_residual_bytes' AND res.category = '')"
        " SELECT * FROM rows ORDER BY phase, CASE category WHEN 'total' THEN 2"
        "   WHEN 'runtime' THEN 1 ELSE 0 END, category",
        &run_id, 1, limits, 2, fmt, TOP_LEVEL, out);
}
int mt_store_query_compare(struct mt_store *st, int64_t run_a, int64_t run_b,
                           enum mt_store_format fmt, FILE *out)
{
    if (run_exists(st, run_a) != 0 || run_exists(st, run_b) != 0) return -1;
    int64_t ints[] = {run_a, run_b};
    return print_query(
        st,
        "WITH names AS (SELECT DISTINCT rank, name, category FROM metrics"
        "   WHERE run_id IN (?1, ?2))"
        " SELECT n.rank, n.name, n.category, COALESCE(a.unit, b.unit) AS unit, a.value AS a,"
        " b.value AS b,"
        " CASE WHEN a.value IS NULL OR b.value IS NULL OR a.value = 0 OR a.unit IS NOT b.unit"
        " THEN NULL ELSE b.value / a.value END AS ratio,"
        " a.unavailable AS a_unavailable, b.unavailable AS b_unavailable"
        " FROM names n"
        " LEFT JOIN metrics a ON a.run_id = ?1 AND a.rank = n.rank AND a.name = n.name"
        "   AND a.category = n.category"
        " LEFT JOIN metrics b ON b.run_id = ?2 AND b.rank = n.rank AND b.name = n.name"
        "   AND b.category = n.category"
        " ORDER BY n.rank, n.name, n.category",
        ints, 2, NULL, 0, fmt, TOP_LEVEL, out);
}

/* The points of `memtrade query pareto`: one per ok run with both metrics, or (?4) one per
 * configuration (the mean over its ok repeats). ?1 x metric, ?2 y metric, ?3 sweep (0:
 * all); "memory_bytes" is the tradeoff view's column. `id` names a point: its run, or the
 * configuration's first run. */
#define PARETO_POINTS                                                                              \
    "WITH pts AS (SELECT t.run_id, t.sweep_id, t.memory_kind, t.workload, t.label,"                \
    "   t.config_key, t.repeat, t.eval_bytes, t.train_budget,"                                     \
    "   CASE WHEN ?1 = 'memory_bytes' THEN t.memory_bytes ELSE (SELECT m.value FROM metrics m"     \
    "     WHERE m.run_id = t.run_id AND m.rank = -1 AND m.category = '' AND m.name = ?1) END AS "  \
    "x,"                                                                                           \
    "   CASE WHEN ?2 = 'memory_bytes' THEN t.memory_bytes ELSE (SELECT m.value FROM metrics m"     \
    "     WHERE m.run_id = t.run_id AND m.rank = -1 AND m.category = '' AND m.name = ?2) END AS y" \
    "   FROM tradeoff t WHERE ?3 = 0 OR t.sweep_id = ?3),"                                         \
    " p AS (SELECT min(run_id) AS id, sweep_id, memory_kind, workload, label, config_key,"         \
    "   min(eval_bytes) AS eval_bytes, min(train_budget) AS train_budget,"                         \
    "   CASE WHEN ?4 THEN count(*) ELSE min(repeat) END AS n, avg(x) AS x, avg(y) AS y"            \
    "   FROM pts WHERE x IS NOT NULL AND y IS NOT NULL"                                            \
    "   GROUP BY sweep_id, memory_kind, config_key, CASE WHEN ?4 THEN 0 ELSE run_id END)"

/* `alias` names the count column: "repeat" per run, "repeats" per configuration. ?5: the
 * ids of the points on the front, as a JSON array. */
#define PARETO_ROWS(alias)                                                                         \
    PARETO_POINTS " SELECT sweep_id, memory_kind, id AS run_id, workload, label, config_key,"      \
                  " n AS " alias ", x, y FROM p WHERE id IN (SELECT value FROM json_each(?5))"     \
                  " ORDER BY sweep_id, memory_kind, x, y, id"

/* A value that may be NULL, compared as SQL's IS does. */
struct maybe {
    int null;
    double v;
};

static struct maybe col_maybe(sqlite3_stmt *s, int i)
{
    return (struct maybe){sqlite3_column_type(s, i) == SQLITE_NULL, sqlite3_column_double(s, i)};
}

static int same_maybe(struct maybe a, struct maybe b)
{
    return a.null == b.null && (a.null || a.v == b.v);
}

/* What may be compared (pareto.h's groups): same sweep, memory kind, text scored and
 * training budget. */
struct pareto_key {
    struct maybe sweep, eval_bytes, budget;
    char kind[16];
};

static int same_key(const struct pareto_key *a, const struct pareto_key *b)
{
    return same_maybe(a->sweep, b->sweep) && strcmp(a->kind, b->kind) == 0 &&
           same_maybe(a->eval_bytes, b->eval_bytes) && same_maybe(a->budget, b->budget);
}

/* Reads the points, marks the front (mt_pareto_mark) and writes its ids as a JSON array
 * into *ids (malloc'd). */
static int pareto_front_ids(struct mt_store *st, const struct mt_store_pareto_opts *o,
                            const char *xm, const char *ym, char **ids)
{
    sqlite3_stmt *s;
    *ids = NULL;
    if (sqlite3_prepare_v2(st->db,
                           PARETO_POINTS " SELECT id, sweep_id, memory_kind, eval_bytes,"
                                         " train_budget, x, y FROM p ORDER BY id",
                           -1, &s, NULL) != SQLITE_OK)
        return store_fail_sql(st, "prepare pareto");
    sqlite3_bind_text(s, 1, xm, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, ym, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, o->sweep_id);
    sqlite3_bind_int(s, 4, o->by_config ? 1 : 0);
    size_t n = 0, cap = 0;
    int64_t *id = NULL;
    double *x = NULL, *y = NULL;
    size_t *group = NULL;
    struct pareto_key *keys = NULL;
    int *front = NULL, rc, ret = -1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            int64_t *gi = realloc(id, cap * sizeof *id);
            if (gi) id = gi;
            double *gx = realloc(x, cap * sizeof *x);
            if (gx) x = gx;
            double *gy = realloc(y, cap * sizeof *y);
            if (gy) y = gy;
            struct pareto_key *gk = realloc(keys, cap * sizeof *keys);
            if (gk) keys = gk;
            if (!gi || !gx || !gy || !gk) break;
        }
        id[n] = sqlite3_column_int64(s, 0);
        struct pareto_key *k = &keys[n];
        k->sweep = col_maybe(s, 1);
        snprintf(k->kind, sizeof k->kind, "%s", (const char *)sqlite3_column_text(s, 2));
        k->eval_bytes = col_maybe(s, 3);
        k->budget = col_maybe(s, 4);
        x[n] = sqlite3_column_double(s, 5);
        y[n] = sqlite3_column_double(s, 6);
        n++;
    }
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW) {
        store_fail(st, "pareto: out of memory");
        goto out;
    }
    if (rc != SQLITE_DONE) {
        store_fail_sql(st, "pareto");
        goto out;
    }
    group = calloc(n + 1, sizeof *group);
    front = calloc(n + 1, sizeof *front);
    *ids = malloc(n * 21 + 3);
    if (!group || !front || !*ids) {
        store_fail(st, "pareto: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) { /* group = the first point with the same key */
        group[i] = i;
        for (size_t j = 0; j < i && group[i] == i; j++)
            if (same_key(&keys[i], &keys[j])) group[i] = group[j];
    }
    mt_pareto_mark(x, y, group, n, o->x_higher_better, o->y_higher_better, front);
    size_t len = 0;
    (*ids)[len++] = '[';
    for (size_t i = 0; i < n; i++)
        if (front[i])
            len += (size_t)sprintf(*ids + len, "%s%lld", len > 1 ? "," : "", (long long)id[i]);
    (*ids)[len++] = ']';
    (*ids)[len] = 0;
    ret = 0;
out:
    if (ret != 0) {
        free(*ids);
        *ids = NULL;
    }
    free(id);
    free(x);
    free(y);
    free(keys);
    free(group);
    free(front);
    return ret;
}

int mt_store_query_pareto(struct mt_store *st, const struct mt_store_pareto_opts *o,
                          enum mt_store_format fmt, FILE *out)
{
    struct mt_store_pareto_opts def = {0};
    if (!o) o = &def;
    const char *xm = o->x_metric ? o->x_metric : "memory_bytes";
    const char *ym = o->y_metric ? o->y_metric : "val_bpb";
    char *ids;
    if (pareto_front_ids(st, o, xm, ym, &ids) != 0) return -1;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, o->by_config ? PARETO_ROWS("repeats") : PARETO_ROWS("repeat"),
                           -1, &s, NULL) != SQLITE_OK) {
        free(ids);
        return store_fail_sql(st, "prepare pareto");
    }
    sqlite3_bind_text(s, 1, xm, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, ym, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, o->sweep_id);
    sqlite3_bind_int(s, 4, o->by_config ? 1 : 0);
    sqlite3_bind_text(s, 5, ids, -1, SQLITE_STATIC);
    char msg[512];
    int rc = format_stmt(s, fmt, 0, out, msg, sizeof msg);
    sqlite3_finalize(s);
    free(ids);
    if (rc != 0) return store_fail(st, "%s", msg);
    if (fmt == MT_FORMAT_JSON) fputc('\n', out);
    return 0;
}

void store_frame_label(const char *function, const char *module, char *buf, size_t buflen)
{
    if (function && *function) {
        snprintf(buf, buflen, "%s", function);
    } else if (module && *module) {
        const char *base = strrchr(module, '/');
        snprintf(buf, buflen, "%s+?", base ? base + 1 : module);
    } else {
        snprintf(buf, buflen, "[unknown]");
    }
}

/* SQL function mt_frame_label(function, module, file, line): "func (file:line)". */
static void sql_frame_label(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    char label[512], full[1024];
    store_frame_label((const char *)sqlite3_value_text(argv[0]),
                      (const char *)sqlite3_value_text(argv[1]), label, sizeof label);
    const char *file = (const char *)sqlite3_value_text(argv[2]);
    if (file && *file) {
        const char *base = strrchr(file, '/');
        if (sqlite3_value_type(argv[3]) == SQLITE_INTEGER)
            snprintf(full, sizeof full, "%s (%s:%lld)", label, base ? base + 1 : file,
                     (long long)sqlite3_value_int64(argv[3]));
        else
            snprintf(full, sizeof full, "%s (%s)", label, base ? base + 1 : file);
    } else {
        snprintf(full, sizeof full, "%s", label);
    }
    sqlite3_result_text(ctx, full, -1, SQLITE_TRANSIENT);
}

int mt_store_query_sites(struct mt_store *st, int64_t run_id, size_t limit,
                         enum mt_store_format fmt, FILE *out)
{
    if (run_exists(st, run_id) != 0) return -1;
    if (sqlite3_create_function(st->db, "mt_frame_label", 4, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                NULL, sql_frame_label, NULL, NULL) != SQLITE_OK)
        return store_fail_sql(st, "register mt_frame_label");
    int64_t ints[] = {run_id, limit ? (int64_t)limit : -1};
    return print_query(
        st,
        "SELECT a.rank, a.category, a.stack_id, a.allocs, a.bytes, a.peak_bytes, a.temporary,"
        " a.leaked_bytes, a.leaked_allocs, a.estimated, a.space,"
        " (SELECT group_concat(lbl, ' <- ') FROM (SELECT mt_frame_label(f.function, f.module,"
        "   f.file, f.line) AS lbl FROM stack_frames sf JOIN frames f ON f.id = sf.frame_id"
        "   WHERE sf.stack_id = a.stack_id ORDER BY sf.depth LIMIT 4)) AS frames"
        " FROM alloc_sites a WHERE a.run_id = ?1"
        " ORDER BY a.space <> 'host', a.space, a.peak_bytes DESC, a.bytes DESC, a.stack_id, a.rank,"
        " a.category LIMIT ?2",
        ints, 2, NULL, 0, fmt, TOP_LEVEL, out);
}

/* Copies a frame label into a folded line, with ';' and whitespace made '_'. */
static void folded_name(FILE *out, const char *function, const char *module)
{
    char label[512];
    store_frame_label(function, module, label, sizeof label);
    for (char *p = label; *p; p++)
        if (*p == ';' || isspace((unsigned char)*p)) *p = '_';
    fputs(label, out);
}

int mt_store_query_folded(struct mt_store *st, int64_t run_id, enum mt_store_folded_weight weight,
                          FILE *out)
{
    if (run_exists(st, run_id) != 0) return -1;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(
            st->db,
            "WITH w AS (SELECT stack_id, SUM(CASE ?2 WHEN 0 THEN peak_bytes WHEN 1 THEN bytes"
            "   WHEN 2 THEN leaked_bytes ELSE allocs END) AS weight"
            "   FROM alloc_sites WHERE run_id = ?1 AND space = 'host' GROUP BY stack_id)"
            " SELECT w.stack_id, w.weight, f.function, f.module FROM w"
            " JOIN stack_frames sf ON sf.stack_id = w.stack_id JOIN frames f ON f.id = sf.frame_id"
            " WHERE w.weight > 0 ORDER BY w.stack_id, sf.depth DESC",
            -1, &s, NULL) != SQLITE_OK)
        return store_fail_sql(st, "prepare folded");
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int(s, 2, (int)weight);
    int64_t cur = -1, cur_weight = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t stack = sqlite3_column_int64(s, 0);
        if (stack != cur) {
            if (cur >= 0) fprintf(out, " %lld\n", (long long)cur_weight);
            cur = stack;
            cur_weight = sqlite3_column_int64(s, 1);
        } else {
            fputc(';', out);
        }
        folded_name(out, (const char *)sqlite3_column_text(s, 2),
                    (const char *)sqlite3_column_text(s, 3));
    }
    if (cur >= 0) fprintf(out, " %lld\n", (long long)cur_weight);
    if (rc != SQLITE_DONE) store_fail_sql(st, "folded");
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---------------------------------------------------------------- sql */

/* Pragmas that only read, allowed without a value (and table_info-like ones with a table
 * name as their argument). Anything else is denied. */
static const char *const read_pragmas_noarg[] = {
    "user_version",    "schema_version",  "application_id",
    "page_count",      "page_size",       "freelist_count",
    "database_list",   "compile_options", "function_list",
    "pragma_list",     "table_list",      "foreign_key_check",
    "integrity_check", "quick_check",     "encoding",
    "journal_mode",    "foreign_keys",    NULL};
static const char *const read_pragmas_table[] = {"table_info",
                                                 "table_xinfo",
                                                 "index_list",
                                                 "index_info",
                                                 "index_xinfo",
                                                 "foreign_key_list",
                                                 "foreign_key_check",
                                                 "integrity_check",
                                                 "quick_check",
                                                 "table_list",
                                                 NULL};

static int in_list(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (sqlite3_stricmp(*list, name) == 0) return 1;
    return 0;
}

static int sql_authorizer(void *user, int action, const char *a1, const char *a2, const char *db,
                          const char *trigger)
{
    (void)db;
    (void)trigger;
    int *denied = user;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    case SQLITE_PRAGMA:
        if (a2 == NULL ? in_list(read_pragmas_noarg, a1) : in_list(read_pragmas_table, a1))
            return SQLITE_OK;
        break;
    default:
        break;
    }
    *denied = action;
    return SQLITE_DENY;
}

/* Skips whitespace and SQL comments; returns where the next token starts. */
static const char *skip_blank(const char *p)
{
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            if (!end) return p; /* an unterminated comment is not blank */
            p = end + 2;
        } else {
            return p;
        }
    }
}

int mt_store_query_sql(struct mt_store *st, const char *sql, enum mt_store_format fmt, FILE *out)
{
    if (!st->readonly) return store_fail(st, "query sql needs a database opened read-only");
    if (!sql || !*skip_blank(sql)) return store_fail(st, "query sql: empty statement");
    int denied = 0;
    sqlite3_set_authorizer(st->db, sql_authorizer, &denied);
    sqlite3_stmt *s = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(st->db, sql, -1, 0, &s, &tail);
    int ret = -1;
    if (rc != SQLITE_OK) {
        if (denied)
            store_fail(st, "query sql: refused, only reading is allowed (%s)",
                       sqlite3_errmsg(st->db));
        else
            store_fail_sql(st, "query sql");
        goto done;
    }
    if (!s) {
        store_fail(st, "query sql: empty statement");
        goto done;
    }
    /* A trailing ';' is fine; any further statement is refused before anything runs. */
    const char *rest = skip_blank(tail);
    while (*rest == ';')
        rest = skip_blank(rest + 1);
    if (*rest) {
        store_fail(st, "query sql: refused, only one statement is allowed (found more after "
                       "the first ';')");
        goto done;
    }
    if (!sqlite3_stmt_readonly(s)) {
        store_fail(st, "query sql: refused, the statement would write");
        goto done;
    }
    char msg[512];
    if (format_stmt(s, fmt, 0, out, msg, sizeof msg) != 0) {
        store_fail(st, "query sql: %s", msg);
        goto done;
    }
    if (fmt == MT_FORMAT_JSON) fputc('\n', out);
    ret = 0;
done:
    sqlite3_finalize(s);
    sqlite3_set_authorizer(st->db, NULL, NULL);
    return ret;
}

int mt_store_metric_names(struct mt_store *st, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT DISTINCT name FROM metrics ORDER BY name", -1, &s,
                           NULL) != SQLITE_OK)
        return store_fail_sql(st, "metric names");
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(*names, cap * sizeof *grown);
            if (!grown) break;
            *names = grown;
        }
        if (!((*names)[*n] = strdup((const char *)sqlite3_column_text(s, 0)))) break;
        (*n)++;
    }
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW) return store_fail(st, "metric names: out of memory");
    if (rc != SQLITE_DONE) return store_fail_sql(st, "metric names");
    return 0;
}
