/* results/store_merge.c — `memtrade merge`: joins shard databases into one.
 *
 * What it is for: copying every row of read-only input stores into an output store with
 * new ids (sweeps, runs, regions) or deduplicated ones (frames, stacks), in one output
 * transaction, skipping ok runs whose (config_key, repeat) is already ok in the output.
 * What it is not for: reconciling different runs of one configuration (both are kept
 * unless both are ok), or schema migration of the inputs (they are only read).
 *
 * Inputs are read through their own connections and written through the output's, so the
 * whole merge is one transaction without ATTACH (which SQLite forbids inside one).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <memtrade/grow.h>

#include "store_internal.h"

/* old id -> new id, sorted by old id (inputs are read ORDER BY id, so appends stay sorted;
 * an out-of-order insert is still placed correctly). */
struct idmap {
    struct idpair {
        int64_t old_id, new_id;
    } * v;
    size_t n, cap;
};

static int idmap_put(struct idmap *m, int64_t old_id, int64_t new_id)
{
    if (mt_grow(&m->v, &m->cap, m->n + 1, sizeof *m->v, 256)) return -1;
    size_t i = m->n;
    while (i > 0 && m->v[i - 1].old_id > old_id) {
        m->v[i] = m->v[i - 1];
        i--;
    }
    m->v[i] = (struct idpair){old_id, new_id};
    m->n++;
    return 0;
}

/* Returns 1 and the new id when mapped, 0 when not. */
static int idmap_get(const struct idmap *m, int64_t old_id, int64_t *new_id)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->v[mid].old_id < old_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < m->n && m->v[lo].old_id == old_id) {
        *new_id = m->v[lo].new_id;
        return 1;
    }
    return 0;
}

struct merge {
    struct mt_store *out;
    struct mt_store *in;
    struct idmap sweeps, runs, regions, frames, stacks;
    struct mt_store_merge_stats *stats;
};

static void merge_reset_maps(struct merge *m)
{
    struct idmap *maps[] = {&m->sweeps, &m->runs, &m->regions, &m->frames, &m->stacks};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        free(maps[i]->v);
        *maps[i] = (struct idmap){0};
    }
}

static int in_fail(struct merge *m, const char *what)
{
    return store_fail(m->out, "reading %s: %s: %s", m->in->path, what, sqlite3_errmsg(m->in->db));
}

/* One table copy: the columns `cols` of `table` from the input into the output's. With
 * `id_map`, the input row's own id is selected first (column 0): it is not inserted, and
 * last_insert_rowid becomes its mapping. maps[k] remaps column map_cols[k] (counting that
 * id); a non-NULL value without a mapping skips the row (it belongs to a skipped run). */
struct copy_spec {
    const char *table;
    const char *cols;   /* copied in this order: selected, then bound to the insert */
    const char *order;  /* NULL, or appended to the select ("ORDER BY ...") */
    const char *select; /* NULL, or the select itself where a column is derived */
    const char *upsert; /* NULL, or appended to the insert ("ON CONFLICT ...") */
    struct idmap *id_map;
    struct idmap *maps[4];
    int map_cols[4];
    int (*keep)(struct merge *m, sqlite3_stmt *sel); /* NULL, or 1 copy, 0 skip, -1 error */
    size_t *copied;                                  /* counts inserted rows, or NULL */
};

/* The spec's select and insert (sqlite3_free both); 0, or -1 out of memory. */
static int copy_sql(const struct copy_spec *c, char **select, char **insert)
{
    *select = c->select ? sqlite3_mprintf("%s", c->select)
                        : sqlite3_mprintf("SELECT %s%s FROM %s %s", c->id_map ? "id, " : "",
                                          c->cols, c->table, c->order ? c->order : "");
    sqlite3_str *ins = sqlite3_str_new(NULL);
    sqlite3_str_appendf(ins, "INSERT INTO %s(%s) VALUES(?", c->table, c->cols);
    for (const char *p = c->cols; *p; p++)
        if (*p == ',') sqlite3_str_appendall(ins, ", ?");
    sqlite3_str_appendf(ins, ")%s", c->upsert ? c->upsert : "");
    *insert = sqlite3_str_finish(ins);
    return *select && *insert ? 0 : -1;
}

static int copy_table(struct merge *m, const struct copy_spec *c)
{
    sqlite3_stmt *sel = NULL, *ins = NULL;
    char *select_sql, *insert_sql;
    int rc = -1, step, id_col = c->id_map ? 0 : -1;
    if (copy_sql(c, &select_sql, &insert_sql) != 0) {
        store_fail(m->out, "out of memory");
        goto done;
    }
    if (sqlite3_prepare_v2(m->in->db, select_sql, -1, &sel, NULL) != SQLITE_OK) {
        in_fail(m, c->table);
        goto done;
    }
    if (sqlite3_prepare_v2(m->out->db, insert_sql, -1, &ins, NULL) != SQLITE_OK) {
        store_fail_sql(m->out, c->table);
        goto done;
    }
    int nc = sqlite3_column_count(sel);
    while ((step = sqlite3_step(sel)) == SQLITE_ROW) {
        int keep = c->keep ? c->keep(m, sel) : 1;
        if (keep < 0) goto done;
        if (!keep) continue;
        sqlite3_reset(ins);
        int skip = 0, param = 1;
        for (int col = 0; col < nc && !skip; col++) {
            if (col == id_col) continue;
            sqlite3_value *v = sqlite3_column_value(sel, col);
            struct idmap *map = NULL;
            for (int k = 0; k < 4; k++)
                if (c->maps[k] && c->map_cols[k] == col) map = c->maps[k];
            if (map && sqlite3_value_type(v) != SQLITE_NULL) {
                int64_t id;
                if (!idmap_get(map, sqlite3_value_int64(v), &id))
                    skip = 1;
                else
                    sqlite3_bind_int64(ins, param, id);
            } else {
                sqlite3_bind_value(ins, param, v);
            }
            param++;
        }
        if (skip) continue;
        if (sqlite3_step(ins) != SQLITE_DONE) {
            store_fail_sql(m->out, c->table);
            goto done;
        }
        if (id_col >= 0 && idmap_put(c->id_map, sqlite3_column_int64(sel, id_col),
                                     sqlite3_last_insert_rowid(m->out->db)) != 0) {
            store_fail(m->out, "out of memory");
            goto done;
        }
        if (c->copied) (*c->copied)++;
    }
    if (step != SQLITE_DONE) {
        in_fail(m, c->table);
        goto done;
    }
    rc = 0;
done:
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    sqlite3_free(select_sql);
    sqlite3_free(insert_sql);
    return rc;
}

static int merge_frames(struct merge *m)
{
    sqlite3_stmt *sel;
    if (sqlite3_prepare_v2(m->in->db,
                           "SELECT id, function, module, file, line, build_id FROM frames"
                           " ORDER BY id",
                           -1, &sel, NULL) != SQLITE_OK)
        return in_fail(m, "frames");
    int step, rc = 0;
    while (rc == 0 && (step = sqlite3_step(sel)) == SQLITE_ROW) {
        struct mt_store_frame f = {
            .function = (const char *)sqlite3_column_text(sel, 1),
            .module = (const char *)sqlite3_column_text(sel, 2),
            .file = (const char *)sqlite3_column_text(sel, 3),
            .line = sqlite3_column_type(sel, 4) == SQLITE_NULL ? -1 : sqlite3_column_int(sel, 4),
            .build_id = (const char *)sqlite3_column_text(sel, 5)};
        int64_t id;
        int created;
        rc = store_frame_id(m->out, &f, &id, &created);
        if (rc == 0 && idmap_put(&m->frames, sqlite3_column_int64(sel, 0), id) != 0)
            rc = store_fail(m->out, "out of memory");
        if (rc == 0 && created && m->stats) m->stats->frames_new++;
    }
    if (rc == 0 && step != SQLITE_DONE) rc = in_fail(m, "frames");
    sqlite3_finalize(sel);
    return rc;
}

/* Stacks: the input's frame id lists, remapped, looked up or created in the output. */
static int merge_stacks(struct merge *m)
{
    sqlite3_stmt *sel;
    if (sqlite3_prepare_v2(m->in->db,
                           "SELECT stack_id, frame_id FROM stack_frames ORDER BY stack_id, depth",
                           -1, &sel, NULL) != SQLITE_OK)
        return in_fail(m, "stacks");
    int64_t *ids = NULL, cur = -1;
    size_t n = 0, cap = 0;
    int rc = 0, step;
    for (;;) {
        step = sqlite3_step(sel);
        int64_t stack = step == SQLITE_ROW ? sqlite3_column_int64(sel, 0) : -1;
        if (cur >= 0 && stack != cur) {
            int64_t id;
            int created;
            rc = store_stack_id(m->out, ids, n, &id, &created);
            if (rc == 0 && idmap_put(&m->stacks, cur, id) != 0)
                rc = store_fail(m->out, "out of memory");
            if (rc == 0 && created && m->stats) m->stats->stacks_new++;
            n = 0;
        }
        if (rc != 0 || step != SQLITE_ROW) break;
        cur = stack;
        if (mt_grow(&ids, &cap, n + 1, sizeof *ids, 64)) {
            rc = store_fail(m->out, "out of memory");
            break;
        }
        if (!idmap_get(&m->frames, sqlite3_column_int64(sel, 1), &ids[n++])) {
            rc = store_fail(m->out, "reading %s: stack %lld uses a missing frame", m->in->path,
                            (long long)cur);
            break;
        }
    }
    if (rc == 0 && step != SQLITE_DONE) rc = in_fail(m, "stacks");
    free(ids);
    sqlite3_finalize(sel);
    return rc;
}

/* Sweeps: one already in the output with the same name, shard, host and start time is
 * the same sweep (a shard merged twice): it is mapped to that one and not copied. */
static int keep_sweep(struct merge *m, sqlite3_stmt *sel)
{
    sqlite3_stmt *find;
    if (sqlite3_prepare_v2(m->out->db,
                           "SELECT id FROM sweeps WHERE name IS ?1 AND shard IS ?2 AND"
                           " started_at IS ?3 AND host IS ?4",
                           -1, &find, NULL) != SQLITE_OK)
        return store_fail_sql(m->out, "sweeps");
    static const int cols[] = {1, 4, 5, 7}; /* name, shard, started_at, host */
    for (int i = 0; i < 4; i++)
        sqlite3_bind_value(find, i + 1, sqlite3_column_value(sel, cols[i]));
    int step = sqlite3_step(find), keep = 1;
    if (step == SQLITE_ROW) {
        keep = 0;
        if (idmap_put(&m->sweeps, sqlite3_column_int64(sel, 0), sqlite3_column_int64(find, 0)))
            keep = store_fail(m->out, "out of memory");
    } else if (step != SQLITE_DONE) {
        keep = store_fail_sql(m->out, "sweeps");
    }
    sqlite3_finalize(find);
    return keep;
}

/* Runs: an ok run whose (config_key, repeat) is already ok in the output is skipped and
 * left unmapped, so every row it owns is skipped by copy_table too. */
static int keep_run(struct merge *m, sqlite3_stmt *sel)
{
    const char *status = (const char *)sqlite3_column_text(sel, 6);
    if (!status || strcmp(status, "ok") != 0) return 1;
    int found = mt_store_find_ok(m->out, (const char *)sqlite3_column_text(sel, 4),
                                 sqlite3_column_int(sel, 5), NULL);
    if (found > 0 && m->stats) m->stats->runs_skipped++;
    return found < 0 ? -1 : !found;
}

/* The input's runtime terms (results/runtime.h): not a run's rows but a measurement of a
 * build, machine and class. A term the output already has is replaced only by a later
 * measurement. An input from before migration 7 has none; one of migration 7 has no class
 * (its rows get migration 8's 'probe of migration 7'). */
static int merge_runtime_terms(struct merge *m)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(m->in->db,
                           "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                           " AND name = 'runtime_terms'), (SELECT count(*) FROM"
                           " pragma_table_info('runtime_terms') WHERE name = 'class')",
                           -1, &q, NULL) != SQLITE_OK)
        return in_fail(m, "runtime_terms");
    int has = 0, has_class = 0;
    if (sqlite3_step(q) == SQLITE_ROW) {
        has = sqlite3_column_int(q, 0);
        has_class = sqlite3_column_int(q, 1);
    }
    sqlite3_finalize(q);
    if (!has) return 0;
    const struct copy_spec terms = {
        .table = "runtime_terms",
        .cols = "build_id, machine, class, phase, term, bytes, unavailable, probe, measured_at",
        .select = has_class ? NULL
                            : "SELECT build_id, machine, 'probe of migration 7', phase, term,"
                              " bytes, unavailable, probe, measured_at FROM runtime_terms",
        .upsert = " ON CONFLICT(build_id, machine, class, phase, term) DO UPDATE SET"
                  " bytes = excluded.bytes, unavailable = excluded.unavailable,"
                  " probe = excluded.probe, measured_at = excluded.measured_at"
                  " WHERE excluded.measured_at > runtime_terms.measured_at",
        .copied = m->stats ? &m->stats->runtime_terms : NULL};
    return copy_table(m, &terms);
}

static int merge_one(struct merge *m)
{
    struct mt_store_merge_stats unused;
    struct mt_store_merge_stats *stats = m->stats ? m->stats : &unused;
    const struct copy_spec sweeps = {
        .table = "sweeps",
        .cols = "name, spec_path, spec_text, shard, started_at, finished_at, host, facts_json",
        .order = "ORDER BY id",
        .id_map = &m->sweeps,
        .keep = keep_sweep,
        .copied = &stats->sweeps};
    const struct copy_spec runs = {
        .table = "runs",
        .cols = "sweep_id, workload, label, config_key, repeat, status, exit_code, signal, error,"
                " started_at, finished_at, wall_s, seed, ranks, threads, git_rev, abi_version,"
                " facts_json",
        .order = "ORDER BY id",
        .id_map = &m->runs,
        .maps = {&m->sweeps},
        .map_cols = {1},
        .keep = keep_run,
        .copied = &stats->runs};
    if (copy_table(m, &sweeps) != 0 || merge_frames(m) != 0 || merge_stacks(m) != 0 ||
        copy_table(m, &runs) != 0)
        return -1;
        /* Child rows: column 0 (or the listed ones) maps to the parent's new id. */
#define CHILD(t, c, o, map)                                                                        \
    {                                                                                              \
        .table = t, .cols = c, .order = o, .maps = { map }                                         \
    }
    const struct copy_spec specs[] = {
        CHILD("params", "run_id, key, value", "ORDER BY run_id", &m->runs),
        CHILD("metrics", "run_id, rank, name, category, value, unit, unavailable", NULL, &m->runs),
        {.table = "regions",
         .cols = "run_id, rank, path, name, depth, calls, wall_s, cpu_s",
         .order = "ORDER BY id",
         .id_map = &m->regions,
         .maps = {&m->runs},
         .map_cols = {1}},
        CHILD("region_counters", "region_id, counter, category, value, unavailable", NULL,
              &m->regions),
        CHILD("samples", "run_id, rank, series, category, x, y, region", "ORDER BY rowid",
              &m->runs),
        CHILD("logs", "run_id, rank, t, level, text", "ORDER BY rowid", &m->runs),
        CHILD("tensors", "run_id, rank, name, category, bytes", NULL, &m->runs),
        {.table = "alloc_sites",
         .cols = "run_id, rank, stack_id, category, allocs, bytes, peak_bytes, temporary,"
                 " leaked_bytes, leaked_allocs, estimated, space",
         .maps = {&m->runs, &m->stacks},
         .map_cols = {0, 2}},
    };
#undef CHILD
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        if (copy_table(m, &specs[i]) != 0) return -1;
    return merge_runtime_terms(m);
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

int mt_store_merge(const char *out_path, const char *const *in_paths, size_t n,
                   struct mt_store_merge_stats *stats, char *err, size_t errlen)
{
    if (stats) *stats = (struct mt_store_merge_stats){0};
    if (n == 0) {
        snprintf(err, errlen, "merge: no input databases");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (same_file(out_path, in_paths[i])) {
            snprintf(err, errlen, "merge: input %s is the output itself", in_paths[i]);
            return -1;
        }
    }
    /* Open every input first: a refused input must leave the output untouched. */
    struct mt_store **ins = calloc(n, sizeof *ins);
    if (!ins) {
        snprintf(err, errlen, "merge: out of memory");
        return -1;
    }
    struct merge m = {.stats = stats};
    int rc = -1;
    for (size_t i = 0; i < n; i++)
        if (mt_store_open(in_paths[i], MT_STORE_READONLY, &ins[i], err, errlen) != 0) goto done;
    if (mt_store_open(out_path, MT_STORE_READWRITE_CREATE, &m.out, err, errlen) != 0) goto done;
    if (mt_store_begin(m.out) != 0) goto fail_out;
    for (size_t i = 0; i < n; i++) {
        m.in = ins[i];
        merge_reset_maps(&m);
        if (merge_one(&m) != 0) {
            mt_store_rollback(m.out);
            goto fail_out;
        }
        if (stats) stats->inputs++;
    }
    if (mt_store_commit(m.out) != 0) {
        mt_store_rollback(m.out);
        goto fail_out;
    }
    rc = 0;
    goto done;
fail_out:
    snprintf(err, errlen, "merge: %s", mt_store_error(m.out));
    if (stats) *stats = (struct mt_store_merge_stats){0};
done:
    merge_reset_maps(&m);
    mt_store_close(m.out);
    for (size_t i = 0; i < n; i++)
        mt_store_close(ins[i]);
    free(ins);
    return rc;
}
