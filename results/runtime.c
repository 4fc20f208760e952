/* results/runtime.c — the runtime terms of the plan (runtime.h). */
#include "runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

const char *const mt_runtime_term_names[MT_RUNTIME_TERMS] = {
    "workspace", "untagged", "blas_buffer", "heap_other", "resident", "accounted"};

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

/* Runs `sql` (?1 bound to text or to an id) for one row of the key columns (build,
 * machine and, when the query has a third, class). */
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
        key->cls[0] = '\0';
        if (sqlite3_column_count(s) > 2) copy_col(s, 2, key->cls, sizeof key->cls);
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
                     "SELECT CASE WHEN json_valid(facts_json) THEN " MT_RUNTIME_BUILD_SQL("facts_"
                                                                                          "json") " END, " MT_RUNTIME_MACHINE_SQL(
                         "facts_json") ", " MT_RUNTIME_CLASS_SQL("r") " FROM runs r WHERE id = ?1",
                     NULL, run_id, key);
}

int mt_runtime_class_key(const char *key)
{
    static const char list[] = MT_RUNTIME_CLASS_KEYS;
    size_t len = strlen(key);
    for (const char *p = strstr(list, key); p; p = strstr(p + 1, key))
        if (p > list && p[-1] == '\'' && p[len] == '\'') return 1;
    return 0;
}

int mt_runtime_class(const char *workload, const char *const *keys, const char *const *vals,
                     size_t n, int threads, int trained, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "%s", workload);
    const char *last = "";
    for (;;) { /* the next class key after `last`, in byte order like SQLite's BINARY */
        size_t pick = n;
        for (size_t i = 0; i < n; i++)
            if (mt_runtime_class_key(keys[i]) && strcmp(keys[i], last) > 0 &&
                (pick == n || strcmp(keys[i], keys[pick]) < 0))
                pick = i;
        if (pick == n || used >= cap) break;
        used += (size_t)snprintf(buf + used, cap - used, " %s=%s", keys[pick], vals[pick]);
        last = keys[pick];
    }
    if (used < cap)
        used += (size_t)snprintf(buf + used, cap - used, " threads=%d trained=%s", threads,
                                 trained ? "yes" : "no");
    return used < cap ? 0 : -1;
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
    " m.value, m.unavailable,"
    " (SELECT COALESCE(sum(a.peak_bytes), 0) FROM alloc_sites a WHERE a.run_id = ?1"
    "   AND a.rank = 0 AND EXISTS (SELECT 1 FROM stack_frames sf JOIN frames f"
    "   ON f.id = sf.frame_id WHERE sf.stack_id = a.stack_id"
    "   AND f.function = 'blas_memory_alloc')),"
    " (SELECT value FROM metrics WHERE run_id = ?1 AND rank = -1 AND category = ''"
    "   AND name = ph.phase || '_peak_bytes'),"
    " COALESCE((SELECT CAST(value AS REAL) FROM params WHERE run_id = ?1"
    "   AND key = 'corpus.bytes'), 0)"
    " FROM ph LEFT JOIN metrics m ON m.run_id = ?1 AND m.rank = -1"
    "   AND m.category = '' AND m.name = ph.phase || '_rss_peak_bytes'"
    " ORDER BY ph.phase";

/* Appends one term to *out; -1 (out of memory) with the store's error. */
static int add(struct mt_store *st, struct mt_runtime_term **out, size_t *n, const char *phase,
               const char *term, double bytes, const char *why, const char *probe)
{
    struct mt_runtime_term *grown = realloc(*out, (*n + 1) * sizeof **out);
    if (!grown) return store_fail(st, "out of memory");
    *out = grown;
    struct mt_runtime_term *t = &grown[(*n)++];
    memset(t, 0, sizeof *t);
    snprintf(t->phase, sizeof t->phase, "%s", phase);
    snprintf(t->term, sizeof t->term, "%s", term);
    t->has = why == NULL;
    t->bytes = why ? NAN : bytes;
    snprintf(t->unavailable, sizeof t->unavailable, "%s", why ? why : "");
    snprintf(t->probe, sizeof t->probe, "%s", probe);
    return 0;
}

int mt_runtime_derive(struct mt_store *st, int64_t probe_run, const char *probe,
                      struct mt_runtime_term **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q;
    if (prep(st, derive_sql, &q, "runtime terms") != 0) return -1;
    sqlite3_bind_int64(q, 1, probe_run);
    int rc = 0, step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(q)) == SQLITE_ROW) {
        char phase[64];
        copy_col(q, 0, phase, sizeof phase);
        double heap = sqlite3_column_double(q, 1), plan = sqlite3_column_double(q, 4);
        double v[MT_RUNTIME_TERMS];
        double other = sqlite3_column_double(q, 3) - sqlite3_column_double(q, 6);
        double blas = fmin(sqlite3_column_double(q, 9), fmax(other, 0.0));
        v[0] = sqlite3_column_double(q, 2) - sqlite3_column_double(q, 5);
        v[1] = other - blas;
        v[2] = blas;
        v[3] = heap - plan - v[0] - v[1] - v[2];
        v[4] = sqlite3_column_double(q, 7) - heap;
        v[5] = sqlite3_column_double(q, 10) - (plan - sqlite3_column_double(q, 11));
        int has_acc = sqlite3_column_type(q, 10) != SQLITE_NULL;
        char rss_why[300];
        const char *why = sqlite3_column_type(q, 1) == SQLITE_NULL
                              ? "the probe has no heap profiler figure for this phase"
                              : NULL;
        snprintf(rss_why, sizeof rss_why, "%s",
                 sqlite3_column_type(q, 7) != SQLITE_NULL ? ""
                 : sqlite3_column_text(q, 8)              ? (const char *)sqlite3_column_text(q, 8)
                                             : "the probe stored no resident peak of this phase");
        for (int t = 0; rc == 0 && t < MT_RUNTIME_TERMS; t++)
            rc = add(st, out, n, phase, mt_runtime_term_names[t], v[t],
                     t == 5 ? (has_acc ? NULL : "the probe stored no accounted peak of this phase")
                     : why  ? why
                     : t == 4 ? (rss_why[0] ? rss_why : NULL)
                              : NULL,
                     probe);
    }
    if (rc == 0 && step != SQLITE_DONE) rc = store_fail_sql(st, "runtime terms of the probe");
    sqlite3_finalize(q);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int mt_runtime_put(struct mt_store *st, const struct mt_runtime_key *key,
                   const struct mt_runtime_term *terms, size_t n)
{
    if (st->readonly) return store_fail(st, "opened read-only, cannot write");
    static const char ins_sql[] =
        "INSERT OR REPLACE INTO runtime_terms(build_id, machine, phase, term, bytes,"
        " unavailable, probe, class, measured_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
        " strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))";
    sqlite3_stmt *ins;
    if (prep(st, ins_sql, &ins, "runtime terms") != 0) return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct mt_runtime_term *t = &terms[i];
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, key->build, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, key->machine, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, t->phase, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, t->term, -1, SQLITE_STATIC);
        if (t->has)
            sqlite3_bind_double(ins, 5, t->bytes);
        else
            sqlite3_bind_null(ins, 5);
        if (t->has)
            sqlite3_bind_null(ins, 6);
        else
            sqlite3_bind_text(ins, 6, t->unavailable, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 7, t->probe, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 8, key->cls, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) rc = store_fail_sql(st, "runtime terms");
    }
    sqlite3_finalize(ins);
    return rc;
}

int mt_runtime_get(struct mt_store *st, const struct mt_runtime_key *key,
                   struct mt_runtime_term **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    static const char sql[] =
        "SELECT phase, term, unavailable, probe, measured_at, bytes"
        " FROM runtime_terms WHERE build_id = ?1 AND machine = ?2 AND class = ?3 ORDER BY phase,"
        " CASE term WHEN 'workspace' THEN 0 WHEN 'untagged' THEN 1 WHEN 'blas_buffer' THEN 2"
        " WHEN 'heap_other' THEN 3 WHEN 'resident' THEN 4 ELSE 5 END";
    sqlite3_stmt *s;
    if (prep(st, sql, &s, "runtime terms") != 0) return -1;
    sqlite3_bind_text(s, 1, key->build, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key->machine, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, key->cls, -1, SQLITE_STATIC);
    int rc = 0, step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *f[5]; /* phase, term, unavailable, probe, measured_at */
        for (int c = 0; c < 5; c++)
            f[c] = sqlite3_column_text(s, c) ? (const char *)sqlite3_column_text(s, c) : "";
        int has = sqlite3_column_type(s, 5) != SQLITE_NULL;
        rc = add(st, out, n, f[0], f[1], sqlite3_column_double(s, 5), has ? NULL : f[2], f[3]);
        if (rc == 0) snprintf((*out)[*n - 1].measured_at, sizeof(*out)[0].measured_at, "%s", f[4]);
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
        if (strcmp(terms[i].phase, phase) != 0 || !strcmp(terms[i].term, "resident") ||
            !strcmp(terms[i].term, "accounted"))
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

int mt_runtime_ok_run_after(struct mt_store *st, const char *workload, int64_t after, int64_t *id)
{
    return query_id(st,
                    "SELECT id FROM runs WHERE id > ?2 AND workload = ?1 AND status = 'ok'"
                    " ORDER BY id LIMIT 1",
                    workload, after, id);
}

/* Whether any class has terms under key's build and machine: 1, 0, or -1. */
static int any_class(struct mt_store *st, const struct mt_runtime_key *key)
{
    sqlite3_stmt *s;
    if (prep(st, "SELECT 1 FROM runtime_terms WHERE build_id = ?1 AND machine = ?2 LIMIT 1", &s,
             "runtime terms") != 0)
        return -1;
    sqlite3_bind_text(s, 1, key->build, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key->machine, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    sqlite3_finalize(s);
    return step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : store_fail_sql(st, "runtime terms");
}

int mt_runtime_run_status(struct mt_store *st, int64_t run_id, const char *phase, double *bytes,
                          char *cls, char *why, size_t cap)
{
    struct mt_runtime_key key;
    struct mt_runtime_term *t = NULL;
    size_t n = 0;
    int rc = mt_runtime_run_key(st, run_id, &key);
    if (cls) snprintf(cls, sizeof key.cls, "%s", rc == 0 ? key.cls : "");
    if (rc != 0) {
        if (rc == 1) snprintf(why, cap, "the run has no facts: its build and machine are unknown");
        return rc == 1 ? 0 : -1;
    }
    if (mt_runtime_get(st, &key, &t, &n) != 0) return -1;
    int any = n ? 1 : any_class(st, &key);
    rc = any < 0 ? -1 : 0;
    if (rc == 0 && !any)
        snprintf(why, cap,
                 "runtime terms not measured on this build and machine (memtrade run "
                 "--measure-runtime, or memtrade plan --measure-runtime --all)");
    else if (rc == 0 && !n)
        snprintf(why, cap,
                 "runtime terms of class %s not measured on this build and machine (memtrade "
                 "run --measure-runtime probes it)",
                 key.cls);
    else if (rc == 0 && mt_runtime_phase_heap(t, n, phase, bytes))
        rc = 1;
    else if (rc == 0) {
        snprintf(why, cap, "no runtime term of phase %s measured for class %s", phase, key.cls);
        for (size_t i = 0; i < n; i++)
            if (!t[i].has && !strcmp(t[i].phase, phase) && strcmp(t[i].term, "resident") &&
                strcmp(t[i].term, "accounted")) {
                snprintf(why, cap, "runtime term %s of phase %s unavailable in the probe: %s",
                         t[i].term, phase, t[i].unavailable);
                break;
            }
    }
    free(t);
    return rc;
}
