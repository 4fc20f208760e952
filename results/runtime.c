/* results/runtime.c — the runtime terms of the plan (runtime.h). */
#include "runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

const char *const mt_runtime_term_names[MT_RUNTIME_TERMS] = {"workspace", "untagged", "heap_other",
                                                             "resident"};

/* Prepares `sql` into *s; -1 with the store's error naming `what`. */
static int prep(struct mt_store *st, const char *sql, sqlite3_stmt **s, const char *what)
{
    *s = NULL;
    return sqlite3_prepare_v2(mt_store_db(st), sql, -1, s, NULL) == SQLITE_OK
               ? 0
               : store_fail_sql(st, what);
}

static void copy_col(sqlite3_stmt *s, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

/* Runs `sql` (?1 bound to text or to an id) for one row of the two key columns. */
static int key_query(struct mt_store *st, const char *sql, const char *text, int64_t id,
                     struct mt_runtime_key *key)
{
    sqlite3_stmt *s;
    if (prep(st, sql, &s, "runtime key") != 0) return -1;
    if (text)
        sqlite3_bind_text(s, 1, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        copy_col(s, 0, key->build, sizeof key->build);
        copy_col(s, 1, key->machine, sizeof key->machine);
        rc = 0;
    } else if (rc == SQLITE_ROW) {
        rc = 1; /* a run without facts */
    } else if (rc == SQLITE_DONE) {
        rc = store_fail(st, "run %lld does not exist", (long long)id);
    } else {
        rc = store_fail_sql(st, "runtime key");
    }
    sqlite3_finalize(s);
    return rc;
}

int mt_runtime_key(struct mt_store *st, const char *facts_json, struct mt_runtime_key *key)
{
    int rc = key_query(st,
                       "SELECT " MT_RUNTIME_BUILD_SQL("?1") ", " MT_RUNTIME_MACHINE_SQL(
                           "?1") " WHERE json_valid(?1)",
                       facts_json ? facts_json : "", 0, key);
    return rc == 0 ? 0 : rc == 1 ? store_fail(st, "facts are not a JSON object") : -1;
}

int mt_runtime_run_key(struct mt_store *st, int64_t run_id, struct mt_runtime_key *key)
{
    return key_query(st,
                     "SELECT CASE WHEN json_valid(facts_json) THEN " MT_RUNTIME_BUILD_SQL(
                         "facts_json") " END, " MT_RUNTIME_MACHINE_SQL("facts_json")
                                       " FROM runs WHERE id = ?1",
                     NULL, run_id, key);
}

/* One row per planned phase of run ?1: heap peak (total, workspace, other), plan (total,
 * workspace, other), the phase's resident peak or why it is missing. */
static const char derive_sql[] =
    "WITH ph AS (SELECT DISTINCT substr(name, 6, length(name) - 16) AS phase FROM metrics"
    "   WHERE run_id = ?1 AND rank = -1 AND category = ''"
    "   AND name LIKE 'plan\\_%\\_peak\\_bytes' ESCAPE '\\'),"
    " h AS (SELECT g.path AS phase, c.category, c.value FROM regions g"
    "   JOIN region_counters c ON c.region_id = g.id WHERE g.run_id = ?1 AND g.rank = 0"
    "   AND c.counter = 'heap_peak_bytes'),"
    " p AS (SELECT substr(name, 6, length(name) - 16) AS phase, category, value FROM metrics"
    "   WHERE run_id = ?1 AND rank = -1 AND name LIKE 'plan\\_%\\_peak\\_bytes' ESCAPE '\\')"
    " SELECT ph.phase,"
    " (SELECT value FROM h WHERE h.phase = ph.phase AND category = ''),"
    " COALESCE((SELECT value FROM h WHERE h.phase = ph.phase AND category = 'workspace'), 0),"
    " COALESCE((SELECT value FROM h WHERE h.phase = ph.phase AND category = 'other'), 0),"
    " (SELECT value FROM p WHERE p.phase = ph.phase AND category = ''),"
    " COALESCE((SELECT value FROM p WHERE p.phase = ph.phase AND category = 'workspace'), 0),"
    " COALESCE((SELECT value FROM p WHERE p.phase = ph.phase AND category = 'other'), 0),"
    " m.value, m.unavailable FROM ph LEFT JOIN metrics m ON m.run_id = ?1 AND m.rank = -1"
    "   AND m.category = '' AND m.name = ph.phase || '_rss_peak_bytes'"
    " ORDER BY ph.phase";

static int put(struct mt_store *st, sqlite3_stmt *ins, const struct mt_runtime_key *key,
               const char *phase, const char *term, double bytes, const char *why, int64_t run)
{
    sqlite3_reset(ins);
    sqlite3_bind_text(ins, 1, key->build, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 2, key->machine, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 3, phase, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 4, term, -1, SQLITE_STATIC);
    if (why)
        sqlite3_bind_null(ins, 5);
    else
        sqlite3_bind_double(ins, 5, bytes);
    if (why)
        sqlite3_bind_text(ins, 6, why, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(ins, 6);
    sqlite3_bind_int64(ins, 7, run);
    return sqlite3_step(ins) == SQLITE_DONE ? 0 : store_fail_sql(st, "runtime terms");
}

int mt_runtime_derive(struct mt_store *st, int64_t probe_run, const struct mt_runtime_key *key)
{
    if (st->readonly) return store_fail(st, "opened read-only, cannot write");
    static const char ins_sql[] =
        "INSERT OR REPLACE INTO runtime_terms(build_id, machine, phase, term, bytes,"
        " unavailable, run_id, measured_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7,"
        " strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))";
    sqlite3_stmt *q, *ins = NULL;
    if (prep(st, derive_sql, &q, "runtime terms") != 0) return -1;
    if (prep(st, ins_sql, &ins, "runtime terms") != 0) {
        sqlite3_finalize(q);
        return -1;
    }
    sqlite3_bind_int64(q, 1, probe_run);
    int rc = 0, phases = 0, step;
    while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW) {
        char phase[64];
        copy_col(q, 0, phase, sizeof phase);
        double heap = sqlite3_column_double(q, 1), plan = sqlite3_column_double(q, 4);
        double v[MT_RUNTIME_TERMS];
        v[0] = sqlite3_column_double(q, 2) - sqlite3_column_double(q, 5);
        v[1] = sqlite3_column_double(q, 3) - sqlite3_column_double(q, 6);
        v[2] = heap - plan - v[0] - v[1];
        v[3] = sqlite3_column_double(q, 7) - heap;
        char rss_why[300];
        const char *why = sqlite3_column_type(q, 1) == SQLITE_NULL
                              ? "the probe has no heap profiler figure for this phase"
                              : NULL;
        snprintf(rss_why, sizeof rss_why, "%s",
                 sqlite3_column_type(q, 7) != SQLITE_NULL ? ""
                 : sqlite3_column_text(q, 8) ? (const char *)sqlite3_column_text(q, 8)
                                             : "the probe stored no resident peak of this phase");
        for (int t = 0; rc == 0 && t < MT_RUNTIME_TERMS; t++)
            rc = put(st, ins, key, phase, mt_runtime_term_names[t], v[t],
                     why ? why : (t == 3 && rss_why[0] ? rss_why : NULL), probe_run);
        phases++;
    }
    if (rc == 0 && step != SQLITE_DONE) rc = store_fail_sql(st, "runtime terms of the probe");
    sqlite3_finalize(q);
    sqlite3_finalize(ins);
    return rc == 0 ? phases : -1;
}

int mt_runtime_get(struct mt_store *st, const struct mt_runtime_key *key,
                   struct mt_runtime_term **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    static const char sql[] =
        "SELECT phase, term, bytes, unavailable, COALESCE(run_id, 0), measured_at"
        " FROM runtime_terms WHERE build_id = ?1 AND machine = ?2 ORDER BY phase,"
        " CASE term WHEN 'workspace' THEN 0 WHEN 'untagged' THEN 1 WHEN 'heap_other' THEN 2"
        " ELSE 3 END";
    sqlite3_stmt *s;
    if (prep(st, sql, &s, "runtime terms") != 0) return -1;
    sqlite3_bind_text(s, 1, key->build, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key->machine, -1, SQLITE_STATIC);
    int rc = 0, step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        struct mt_runtime_term *grown = realloc(*out, (*n + 1) * sizeof **out);
        if (!grown) {
            rc = store_fail(st, "out of memory");
            break;
        }
        *out = grown;
        struct mt_runtime_term *t = &grown[(*n)++];
        memset(t, 0, sizeof *t);
        copy_col(s, 0, t->phase, sizeof t->phase);
        copy_col(s, 1, t->term, sizeof t->term);
        t->has = sqlite3_column_type(s, 2) != SQLITE_NULL;
        t->bytes = t->has ? sqlite3_column_double(s, 2) : NAN;
        copy_col(s, 3, t->unavailable, sizeof t->unavailable);
        t->run_id = sqlite3_column_int64(s, 4);
        copy_col(s, 5, t->measured_at, sizeof t->measured_at);
    }
    if (rc == 0 && step != SQLITE_DONE) rc = store_fail_sql(st, "runtime terms");
    sqlite3_finalize(s);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int mt_runtime_phase_heap(const struct mt_runtime_term *terms, size_t n, const char *phase,
                          double *bytes)
{
    double sum = 0.0;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(terms[i].phase, phase) != 0 || strcmp(terms[i].term, "resident") == 0)
            continue;
        if (!terms[i].has) return 0;
        sum += terms[i].bytes;
        found++;
    }
    if (found) *bytes = sum;
    return found > 0;
}

/* One integer from `sql` with ?1 = text and ?2 = after; 0 when it yields NULL. */
static int query_id(struct mt_store *st, const char *sql, const char *text, int64_t after,
                    int64_t *id)
{
    sqlite3_stmt *s;
    *id = 0;
    if (prep(st, sql, &s, "runs") != 0) return -1;
    if (text) sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, after);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) *id = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return step == SQLITE_ROW || step == SQLITE_DONE ? 0 : store_fail_sql(st, "runs");
}

int mt_runtime_last_run(struct mt_store *st, int64_t *id)
{
    return query_id(st, "SELECT COALESCE(max(id), 0) + 0 * ?2 FROM runs", NULL, 0, id);
}

int mt_runtime_ok_run_after(struct mt_store *st, const char *workload, int64_t after,
                            int64_t *id)
{
    return query_id(st,
                    "SELECT id FROM runs WHERE id > ?2 AND workload = ?1 AND status = 'ok'"
                    " ORDER BY id LIMIT 1",
                    workload, after, id);
}
