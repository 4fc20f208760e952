/* results/store.c — opening, migrating and writing a memtrade database.
 *
 * What it is for: mt_store_open/close (with the checks that refuse foreign, truncated and
 * newer files before anything is written), transactions, the writers and the canonical
 * config key. What it is not for: read queries (store_read.c), merge (store_merge.c) or
 * text formatting (format.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memtrade/metrics.h>

#include "store_internal.h"

#ifndef MT_SCHEMA_LATEST
#error "MT_SCHEMA_LATEST comes from results/CMakeLists.txt"
#endif
_Static_assert(MT_SCHEMA_LATEST == MT_STORE_SCHEMA_VERSION,
               "store.h MT_STORE_SCHEMA_VERSION must equal the last migration number");

#define BUSY_TIMEOUT_MS 10000 /* readers */
#define WRITER_WAIT_S 600.0   /* writers, unless mt_store_set_wait says otherwise */
#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

static const char *const stmt_sql[SS_COUNT] = {
    [SS_SWEEP_INS] = "INSERT INTO sweeps(name, spec_path, spec_text, shard, started_at, host,"
                     " facts_json) VALUES(?1, ?2, ?3, ?4, " NOW_SQL ", ?5, ?6)",
    [SS_SWEEP_FIN] = "UPDATE sweeps SET finished_at = " NOW_SQL " WHERE id = ?1",
    [SS_RUN_INS] = "INSERT INTO runs(sweep_id, workload, label, config_key, repeat, status,"
                   " started_at, seed, ranks, threads, git_rev, abi_version, facts_json)"
                   " VALUES(?1, ?2, ?3, ?4, ?5, 'running', " NOW_SQL ", ?6, ?7, ?8, ?9, ?10, ?11)",
    [SS_PARAM_UPS] = "INSERT INTO params(run_id, key, value) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(run_id, key) DO UPDATE SET value = excluded.value",
    [SS_RUN_FIN] = "UPDATE runs SET status = ?2, exit_code = ?3, signal = ?4, error = ?5,"
                   " wall_s = ?6, finished_at = " NOW_SQL " WHERE id = ?1",
    [SS_FIND_OK] = "SELECT id FROM runs WHERE config_key = ?1 AND repeat = ?2 AND status = 'ok'"
                   " ORDER BY id LIMIT 1",
    [SS_METRIC_UPS] = "INSERT INTO metrics(run_id, rank, name, value, unit, unavailable,"
                      " category) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                      " ON CONFLICT(run_id, rank, name, category) DO UPDATE"
                      " SET value = excluded.value, unit = excluded.unit,"
                      " unavailable = excluded.unavailable",
    [SS_REGION_UPS] = "INSERT INTO regions(run_id, rank, path, name, depth, calls, wall_s, cpu_s)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(run_id, rank, path)"
                      " DO UPDATE SET calls = excluded.calls, wall_s = excluded.wall_s,"
                      " cpu_s = excluded.cpu_s RETURNING id",
    [SS_RCOUNTER_UPS] = "INSERT INTO region_counters(region_id, counter, value, unavailable,"
                        " category) VALUES(?1, ?2, ?3, ?4, ?5)"
                        " ON CONFLICT(region_id, counter, category) DO UPDATE"
                        " SET value = excluded.value, unavailable = excluded.unavailable",
    [SS_SAMPLE_INS] = "INSERT INTO samples(run_id, rank, series, x, y, region, category)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SS_LOG_INS] = "INSERT INTO logs(run_id, rank, t, level, text) VALUES(?1, ?2, ?3, ?4, ?5)",
    [SS_TENSOR_UPS] = "INSERT INTO tensors(run_id, rank, name, category, bytes)"
                      " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(run_id, rank, name) DO UPDATE"
                      " SET category = excluded.category, bytes = excluded.bytes",
    [SS_FRAME_FIND] = "SELECT id, build_id FROM frames WHERE function IS ?1 AND module IS ?2"
                      " AND file IS ?3 AND line IS ?4 ORDER BY id LIMIT 1",
    [SS_FRAME_INS] = "INSERT INTO frames(function, module, file, line, build_id)"
                     " VALUES(?1, ?2, ?3, ?4, ?5)",
    [SS_FRAME_BUILD_ID] = "UPDATE frames SET build_id = ?2 WHERE id = ?1 AND build_id IS NULL",
    [SS_STACK_FIND] = "SELECT id FROM stacks WHERE hash = ?1",
    [SS_STACK_FRAMES] = "SELECT frame_id FROM stack_frames WHERE stack_id = ?1 ORDER BY depth",
    [SS_STACK_INS] = "INSERT INTO stacks(hash) VALUES(?1)",
    [SS_STACK_FRAME_INS] = "INSERT INTO stack_frames(stack_id, depth, frame_id) VALUES(?1, ?2, ?3)",
    [SS_SITE_UPS] = "INSERT INTO alloc_sites(run_id, rank, stack_id, category, allocs, bytes,"
                    " peak_bytes, temporary, leaked_bytes, leaked_allocs, estimated, space)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                    " ON CONFLICT(run_id, rank, stack_id, category, space) DO UPDATE SET"
                    " allocs = allocs + excluded.allocs, bytes = bytes + excluded.bytes,"
                    " peak_bytes = peak_bytes + excluded.peak_bytes,"
                    " temporary = temporary + excluded.temporary,"
                    " leaked_bytes = leaked_bytes + excluded.leaked_bytes,"
                    " leaked_allocs = leaked_allocs + excluded.leaked_allocs,"
                    " estimated = max(estimated, excluded.estimated)",
    [SS_SITE_CLEAR] = "DELETE FROM alloc_sites WHERE run_id = ?1 AND rank = ?2",
};

/* ---------------------------------------------------------------- errors, statements */

static void vset_err(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
}

static int fail_to(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_to(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset_err(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int store_fail(struct mt_store *st, const char *fmt, ...)
{
    /* The message may use st->err itself as an argument: format it aside first. */
    char msg[sizeof st->err];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n = (size_t)snprintf(st->err, sizeof st->err, "%s: ", st->path);
    if (n < sizeof st->err)
        snprintf(st->err + n, sizeof st->err - n, "%.*s", (int)(sizeof st->err - n - 1), msg);
    return -1;
}

int store_fail_sql(struct mt_store *st, const char *what)
{
    return store_fail(st, "%s: %s", what, sqlite3_errmsg(st->db));
}

sqlite3_stmt *store_stmt(struct mt_store *st, enum store_stmt id)
{
    if (st->readonly) {
        store_fail(st, "opened read-only, cannot write");
        return NULL;
    }
    if (!st->stmt[id]) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[id],
                               NULL) != SQLITE_OK) {
            store_fail_sql(st, "prepare");
            return NULL;
        }
    }
    sqlite3_reset(st->stmt[id]);
    sqlite3_clear_bindings(st->stmt[id]);
    return st->stmt[id];
}

sqlite3_stmt *store_stmt_id(struct mt_store *st, enum store_stmt id, int64_t key)
{
    sqlite3_stmt *s = store_stmt(st, id);
    if (s) sqlite3_bind_int64(s, 1, key);
    return s;
}

int store_step_done(struct mt_store *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        store_fail_sql(st, what);
        sqlite3_reset(s);
        return -1;
    }
    sqlite3_reset(s);
    return 0;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static void bind_int_or_null(sqlite3_stmt *s, int i, int64_t v, int64_t null_below)
{
    if (v < null_below)
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_int64(s, i, v);
}

static void bind_real_or_null(sqlite3_stmt *s, int i, double v)
{
    if (isnan(v))
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_double(s, i, v);
}

const char *mt_store_error(const struct mt_store *st)
{
    return st->err;
}

const char *mt_store_path(const struct mt_store *st)
{
    return st->path;
}

struct sqlite3 *mt_store_db(struct mt_store *st)
{
    return st->db;
}

/* ---------------------------------------------------------------- open */

/* mkdir -p of the folder holding `path`. */
static int make_parent_dirs(const char *path, char *err, size_t errlen)
{
    char *dir = strdup(path);
    if (!dir) return fail_to(err, errlen, "%s: out of memory", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        free(dir);
        return 0;
    }
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            fail_to(err, errlen, "%s: cannot create folder %s: %s", path, dir, strerror(e));
            free(dir);
            return -1;
        }
        *p = saved;
        if (saved == '\0') break;
    }
    free(dir);
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Looks at the file before SQLite does, so that a file that is not SQLite or is truncated
 * is refused without SQLite touching it. *exists_nonempty tells whether there is content. */
static int precheck_file(const char *path, int readonly, int *exists_nonempty, char *err,
                         size_t errlen)
{
    struct stat sb;
    *exists_nonempty = 0;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT && !readonly) return 0;
        return fail_to(err, errlen, "%s: cannot open database: %s", path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode)) return fail_to(err, errlen, "%s: not a regular file", path);
    if (sb.st_size == 0) {
        if (readonly) return fail_to(err, errlen, "%s: empty file, not a memtrade database", path);
        return 0;
    }
    unsigned char h[100];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail_to(err, errlen, "%s: cannot open database: %s", path, strerror(errno));
    ssize_t got = read(fd, h, sizeof h);
    close(fd);
    static const char magic[16] = "SQLite format 3";
    size_t cmp = got < 16 ? (got < 0 ? 0 : (size_t)got) : 16;
    if (got <= 0 || memcmp(h, magic, cmp) != 0)
        return fail_to(err, errlen, "%s: not an SQLite database (no SQLite header)", path);
    if (got < (ssize_t)sizeof h)
        return fail_to(err, errlen, "%s: truncated SQLite database (%zd bytes)", path, got);
    uint32_t page_size = (uint32_t)h[16] << 8 | h[17];
    if (page_size == 1) page_size = 65536;
    if (page_size < 512 || (page_size & (page_size - 1)) != 0)
        return fail_to(err, errlen, "%s: not an SQLite database (bad page size)", path);
    uint32_t pages = be32(h + 28);
    /* The in-header size is valid only when the change counter matches version-valid-for.
     * While a WAL file exists a checkpoint may be growing the file right now, so the size is
     * only held against the header when there is none (a copied or cut file has none). */
    char wal[4200];
    struct stat wb;
    snprintf(wal, sizeof wal, "%s-wal", path);
    int wal_active = stat(wal, &wb) == 0 && wb.st_size > 0;
    if (!wal_active && pages > 0 && be32(h + 24) == be32(h + 92)) {
        uint64_t want = (uint64_t)pages * page_size;
        if ((uint64_t)sb.st_size < want)
            return fail_to(err, errlen,
                           "%s: truncated SQLite database (header says %llu bytes, file has %lld)",
                           path, (unsigned long long)want, (long long)sb.st_size);
    }
    if (!wal_active && (uint64_t)sb.st_size % page_size != 0)
        return fail_to(err, errlen,
                       "%s: truncated SQLite database (size %lld is not a multiple of the page "
                       "size %u)",
                       path, (long long)sb.st_size, page_size);
    *exists_nonempty = 1;
    return 0;
}

/* Runs a one-integer query; -1 on error with st->err set. */
static int query_int(struct mt_store *st, const char *sql, int64_t *out)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_fail_sql(st, "cannot read the database");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        *out = 0;
    else {
        store_fail_sql(st, "cannot read the database");
        sqlite3_finalize(s);
        return -1;
    }
    sqlite3_finalize(s);
    return 0;
}

static int exec(struct mt_store *st, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        store_fail(st, "%s: %s", what, msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* SQL functions mt_name_base(name) and mt_name_category(name): metrics.h's split of a name
 * in a category form (the name and '' for any other), for migration 004 to use the rule
 * the writers use. */
static const int part_base = 0, part_category = 1;

static void sql_name_part(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *name = (const char *)sqlite3_value_text(argv[0]);
    if (!name) {
        sqlite3_result_null(ctx);
        return;
    }
    const char *cat = "", *base = mt_metric_split(name, &cat);
    if (sqlite3_user_data(ctx) == &part_category)
        sqlite3_result_text(ctx, cat, -1, SQLITE_STATIC);
    else if (base)
        sqlite3_result_text(ctx, base, -1, SQLITE_STATIC);
    else
        sqlite3_result_value(ctx, argv[0]);
}

static int register_functions(struct mt_store *st)
{
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC;
    if (sqlite3_create_function(st->db, "mt_name_base", 1, flags, (void *)&part_base, sql_name_part,
                                NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(st->db, "mt_name_category", 1, flags, (void *)&part_category,
                                sql_name_part, NULL, NULL) != SQLITE_OK)
        return store_fail_sql(st, "cannot register the name functions");
    return 0;
}

/* Classifies an existing database: 0 empty (no schema at all), 1 memtrade, -1 refused. */
static int classify(struct mt_store *st, int64_t *user_version)
{
    int64_t objects, has_meta, is_memtrade = 0;
    if (query_int(st, "PRAGMA user_version", user_version) != 0 ||
        query_int(st, "SELECT count(*) FROM sqlite_schema", &objects) != 0 ||
        query_int(st, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'meta'",
                  &has_meta) != 0)
        return -1;
    if (objects == 0 && *user_version == 0) return 0;
    if (has_meta && query_int(st,
                              "SELECT count(*) FROM meta WHERE key = 'application'"
                              " AND value = 'memtrade'",
                              &is_memtrade) != 0)
        return -1;
    if (!is_memtrade)
        return store_fail(st, "an SQLite database but not a memtrade database "
                              "(no meta.application = 'memtrade')");
    if (*user_version > MT_STORE_SCHEMA_VERSION)
        return store_fail(st,
                          "schema version %lld is newer than this memtrade build knows (%d); "
                          "use a newer memtrade",
                          (long long)*user_version, MT_STORE_SCHEMA_VERSION);
    if (*user_version < 1)
        return store_fail(st, "memtrade database without a schema version (user_version 0)");
    return 1;
}

/* Creates or migrates inside one IMMEDIATE transaction; a concurrent opener that got there
 * first is seen through the re-read of user_version under the write lock. */
static int initialise_or_migrate(struct mt_store *st)
{
    if (exec(st, "BEGIN IMMEDIATE", "cannot lock the database") != 0) return -1;
    int64_t uv = 0;
    int kind = classify(st, &uv);
    if (kind < 0) goto fail;
    if (kind == 0) {
        if (exec(st, mt_store_schema_sql, "cannot create the schema") != 0) goto fail;
        sqlite3_stmt *s;
        if (sqlite3_prepare_v2(st->db,
                               "INSERT INTO meta(key, value) VALUES('application', 'memtrade'),"
                               " ('created_at', " NOW_SQL "), ('created_by', ?1)",
                               -1, &s, NULL) != SQLITE_OK) {
            store_fail_sql(st, "cannot write meta");
            goto fail;
        }
        sqlite3_bind_text(s, 1, "memtrade " MT_VERSION " (sqlite " SQLITE_VERSION ")", -1,
                          SQLITE_STATIC);
        int rc = sqlite3_step(s);
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) {
            store_fail_sql(st, "cannot write meta");
            goto fail;
        }
        uv = 1;
    }
    for (const struct mt_store_migration *m = mt_store_migrations; m->sql; m++) {
        if (m->version <= uv) continue;
        char what[128], pragma[64];
        snprintf(what, sizeof what, "migration %s failed", m->name);
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m->version);
        if (exec(st, m->sql, what) != 0 || exec(st, pragma, what) != 0) goto fail;
        uv = m->version;
    }
    if (exec(st, "COMMIT", "cannot commit the schema") != 0) goto fail;
    return 0;
fail:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* A read-only store of an older schema reads a copy migrated in memory: the file is never
 * written, and every reader sees the current schema (categories as a column). */
static int migrate_in_memory(struct mt_store *st)
{
    sqlite3 *mem = NULL;
    if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_close(mem);
        return store_fail(st, "cannot open memory to migrate an older database into");
    }
    sqlite3_backup *b = sqlite3_backup_init(mem, "main", st->db, "main");
    int rc = b ? sqlite3_backup_step(b, -1) : SQLITE_ERROR;
    if (b) sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        store_fail(st, "cannot copy the older database into memory to read it: %s",
                   sqlite3_errmsg(mem));
        sqlite3_close(mem);
        return -1;
    }
    sqlite3_close_v2(st->db);
    st->db = mem;
    sqlite3_extended_result_codes(st->db, 1);
    return register_functions(st) == 0 ? initialise_or_migrate(st) : -1;
}

int mt_store_open(const char *path, enum mt_store_flags flags, struct mt_store **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    int readonly = flags == MT_STORE_READONLY;
    if (!path || !*path) return fail_to(err, errlen, "no database path given");
    if (!readonly && make_parent_dirs(path, err, errlen) != 0) return -1;
    int nonempty;
    if (precheck_file(path, readonly, &nonempty, err, errlen) != 0) return -1;

    struct mt_store *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return fail_to(err, errlen, "%s: out of memory", path);
    }
    st->readonly = readonly;
    st->lock_fd = -1;
    st->wait_s = WRITER_WAIT_S;
    int oflags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    char uri[4200];
    const char *name = path;
    if (readonly && store_reader_immutable(path)) { /* never leave side files (store_guard.c) */
        if (store_reader_uri(path, uri, sizeof uri) != 0) {
            store_fail(st, "path too long");
            goto fail;
        }
        name = uri;
        oflags |= SQLITE_OPEN_URI;
    }
    if (sqlite3_open_v2(name, &st->db, oflags, NULL) != SQLITE_OK) {
        store_fail(st, "cannot open database: %s",
                   st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    if (readonly)
        sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    else
        store_install_wait(st);
    sqlite3_extended_result_codes(st->db, 1);
    if (register_functions(st) != 0) goto fail;
    if (!readonly && sqlite3_db_readonly(st->db, "main") == 1) {
        store_fail(st, "cannot open for writing (permission denied?)");
        goto fail;
    }
    if (!readonly && store_writer_lock(st) != 0) goto fail;

    /* Everything up to here only read the file; now decide before writing anything. */
    int64_t uv = 0;
    int kind = classify(st, &uv);
    if (kind < 0) goto fail;
    if (kind == 0 && readonly) {
        store_fail(st, "empty database, not a memtrade database");
        goto fail;
    }
    if (readonly) {
        if (uv < MT_STORE_SCHEMA_VERSION && migrate_in_memory(st) != 0) goto fail;
        if (exec(st, "PRAGMA query_only = ON", "cannot set query_only") != 0) goto fail;
    } else {
        if (exec(st, "PRAGMA journal_mode = WAL", "cannot switch to WAL") != 0 ||
            exec(st, "PRAGMA synchronous = NORMAL", "cannot set synchronous") != 0 ||
            exec(st, "PRAGMA foreign_keys = ON", "cannot enable foreign keys") != 0)
            goto fail;
        if ((kind == 0 || uv < MT_STORE_SCHEMA_VERSION) && initialise_or_migrate(st) != 0)
            goto fail;
    }
    (void)nonempty;
    *out = st;
    return 0;
fail:
    fail_to(err, errlen, "%s", st->err);
    mt_store_close(st);
    return -1;
}

void mt_store_close(struct mt_store *st)
{
    if (!st) return;
    for (int i = 0; i < SS_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db) {
        if (!sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close_v2(st->db);
    }
    store_writer_unlock(st);
    free(st->path);
    free(st);
}

int mt_store_integrity_check(struct mt_store *st)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK)
        return store_fail_sql(st, "integrity_check");
    int rc = sqlite3_step(s);
    int ok = rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0;
    if (!ok) {
        if (rc == SQLITE_ROW)
            store_fail(st, "integrity_check: %s", (const char *)sqlite3_column_text(s, 0));
        else
            store_fail_sql(st, "integrity_check");
    }
    sqlite3_finalize(s);
    if (!ok) return -1;
    if (sqlite3_prepare_v2(st->db, "PRAGMA foreign_key_check", -1, &s, NULL) != SQLITE_OK)
        return store_fail_sql(st, "foreign_key_check");
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        store_fail(st, "foreign_key_check: row %lld of %s points to a missing %s row",
                   (long long)sqlite3_column_int64(s, 1), (const char *)sqlite3_column_text(s, 0),
                   (const char *)sqlite3_column_text(s, 2));
    else if (rc != SQLITE_DONE)
        store_fail_sql(st, "foreign_key_check");
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---------------------------------------------------------------- transactions */

int mt_store_begin(struct mt_store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        return store_fail(st, "begin: a transaction is already open");
    return exec(st, "BEGIN IMMEDIATE", "begin");
}

int mt_store_commit(struct mt_store *st)
{
    return exec(st, "COMMIT", "commit");
}

int mt_store_rollback(struct mt_store *st)
{
    return exec(st, "ROLLBACK", "rollback");
}

/* Runs `body` in a transaction unless the caller already holds one. */
static int tx_open_if_needed(struct mt_store *st, int *opened)
{
    *opened = sqlite3_get_autocommit(st->db);
    return *opened ? exec(st, "BEGIN IMMEDIATE", "begin") : 0;
}

static int tx_close_if_opened(struct mt_store *st, int opened, int rc)
{
    if (!opened) return rc;
    if (rc == 0) return exec(st, "COMMIT", "commit");
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---------------------------------------------------------------- statuses, config keys */

static const char *const status_names[] = {
    [MT_RUN_RUNNING] = "running",        [MT_RUN_OK] = "ok",           [MT_RUN_FAILED] = "failed",
    [MT_RUN_CRASHED] = "crashed",        [MT_RUN_TIMEOUT] = "timeout", [MT_RUN_OOM] = "oom",
    [MT_RUN_INTERRUPTED] = "interrupted"};

const char *mt_run_status_name(enum mt_run_status s)
{
    if ((unsigned)s >= sizeof status_names / sizeof status_names[0]) return NULL;
    return status_names[s];
}

int mt_run_status_parse(const char *name, enum mt_run_status *out)
{
    for (size_t i = 0; name && i < sizeof status_names / sizeof status_names[0]; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (enum mt_run_status)i;
            return 0;
        }
    }
    return -1;
}

static int key_byte_plain(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("._~,:/+-", c) != NULL;
}

/* Appends `s` percent-encoded at buf+*len (buf sized by key_encoded_len). */
static void key_append(char *buf, size_t *len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (key_byte_plain(*p)) {
            buf[(*len)++] = (char)*p;
        } else {
            buf[(*len)++] = '%';
            buf[(*len)++] = hex[*p >> 4];
            buf[(*len)++] = hex[*p & 15];
        }
    }
}

static int kv_cmp(const void *a, const void *b)
{
    const struct mt_store_kv *x = *(const struct mt_store_kv *const *)a;
    const struct mt_store_kv *y = *(const struct mt_store_kv *const *)b;
    return strcmp(x->key, y->key);
}

char *mt_store_config_key(const char *workload, const struct mt_store_kv *pairs, size_t n,
                          char *err, size_t errlen)
{
    if (!workload || !*workload) {
        fail_to(err, errlen, "config key: no workload name");
        return NULL;
    }
    size_t cap = 3 * strlen(workload) + 2;
    for (size_t i = 0; i < n; i++) {
        if (!pairs[i].key || !pairs[i].value || !*pairs[i].key) {
            fail_to(err, errlen, "config key of %s: parameter %zu has no key or value", workload,
                    i);
            return NULL;
        }
        cap += 3 * (strlen(pairs[i].key) + strlen(pairs[i].value)) + 2;
    }
    const struct mt_store_kv **sorted = malloc((n ? n : 1) * sizeof *sorted);
    char *buf = malloc(cap);
    if (!sorted || !buf) {
        free(sorted);
        free(buf);
        fail_to(err, errlen, "config key: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = &pairs[i];
    qsort(sorted, n, sizeof *sorted, kv_cmp);
    size_t len = 0;
    key_append(buf, &len, workload);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
            fail_to(err, errlen, "config key of %s: parameter '%s' given twice", workload,
                    sorted[i]->key);
            free(sorted);
            free(buf);
            return NULL;
        }
        buf[len++] = i == 0 ? '?' : '&';
        key_append(buf, &len, sorted[i]->key);
        buf[len++] = '=';
        key_append(buf, &len, sorted[i]->value);
    }
    buf[len] = '\0';
    free(sorted);
    return buf;
}

/* ---------------------------------------------------------------- sweeps and runs */

int mt_store_sweep_begin(struct mt_store *st, const struct mt_store_sweep_info *info, int64_t *id)
{
    if (!info || !info->name) return store_fail(st, "sweep_begin: a sweep needs a name");
    char host[256] = "";
    const char *h = info->host;
    if (!h && gethostname(host, sizeof host - 1) == 0) h = host;
    sqlite3_stmt *s = store_stmt(st, SS_SWEEP_INS);
    if (!s) return -1;
    bind_text(s, 1, info->name);
    bind_text(s, 2, info->spec_path);
    bind_text(s, 3, info->spec_text);
    bind_text(s, 4, info->shard);
    bind_text(s, 5, h && *h ? h : NULL);
    bind_text(s, 6, info->facts_json);
    if (store_step_done(st, s, "insert sweep") != 0) return -1;
    *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int mt_store_sweep_finish(struct mt_store *st, int64_t sweep_id)
{
    sqlite3_stmt *s = store_stmt_id(st, SS_SWEEP_FIN, sweep_id);
    if (!s) return -1;
    if (store_step_done(st, s, "finish sweep") != 0) return -1;
    if (sqlite3_changes(st->db) != 1)
        return store_fail(st, "finish sweep: no sweep %lld", (long long)sweep_id);
    return 0;
}

static int param_set(struct mt_store *st, int64_t run_id, const char *key, const char *value)
{
    if (!key || !value)
        return store_fail(st, "run %lld: parameter without key or value", (long long)run_id);
    sqlite3_stmt *s = store_stmt_id(st, SS_PARAM_UPS, run_id);
    if (!s) return -1;
    bind_text(s, 2, key);
    bind_text(s, 3, value);
    return store_step_done(st, s, "insert param");
}

int mt_store_param_set(struct mt_store *st, int64_t run_id, const char *key, const char *value)
{
    return param_set(st, run_id, key, value);
}

int mt_store_run_begin(struct mt_store *st, const struct mt_store_run_info *info, int64_t *run_id)
{
    if (!info || !info->workload || !info->config_key)
        return store_fail(st, "run_begin: a run needs a workload and a config key");
    int opened;
    if (tx_open_if_needed(st, &opened) != 0) return -1;
    int rc = -1;
    sqlite3_stmt *s = store_stmt(st, SS_RUN_INS);
    if (!s) goto done;
    bind_int_or_null(s, 1, info->sweep_id, 1);
    bind_text(s, 2, info->workload);
    bind_text(s, 3, info->label);
    bind_text(s, 4, info->config_key);
    sqlite3_bind_int(s, 5, info->repeat);
    sqlite3_bind_int64(s, 6, info->seed);
    sqlite3_bind_int(s, 7, info->ranks > 0 ? info->ranks : 1);
    bind_int_or_null(s, 8, info->threads, 1);
    bind_text(s, 9, info->git_rev);
    bind_text(s, 10, info->abi_version);
    bind_text(s, 11, info->facts_json);
    if (store_step_done(st, s, "insert run") != 0) goto done;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    for (size_t i = 0; i < info->n_params; i++)
        if (param_set(st, id, info->params[i].key, info->params[i].value) != 0) goto done;
    *run_id = id;
    rc = 0;
done:
    return tx_close_if_opened(st, opened, rc);
}

int mt_store_run_finish(struct mt_store *st, int64_t run_id, const struct mt_store_run_end *end)
{
    const char *status = end ? mt_run_status_name(end->status) : NULL;
    if (!status || end->status == MT_RUN_RUNNING)
        return store_fail(st, "run_finish of run %lld: not a final status", (long long)run_id);
    sqlite3_stmt *s = store_stmt_id(st, SS_RUN_FIN, run_id);
    if (!s) return -1;
    bind_text(s, 2, status);
    bind_int_or_null(s, 3, end->exit_code, 0);
    bind_int_or_null(s, 4, end->signal, 1);
    bind_text(s, 5, end->error);
    bind_real_or_null(s, 6, end->wall_s);
    if (store_step_done(st, s, "finish run") != 0) return -1;
    if (sqlite3_changes(st->db) != 1)
        return store_fail(st, "finish run: no run %lld", (long long)run_id);
    return 0;
}

int mt_store_find_ok(struct mt_store *st, const char *config_key, int repeat, int64_t *run_id)
{
    sqlite3_stmt *s;
    /* Readers may use this on a read-only store too, so prepare outside the write cache. */
    if (sqlite3_prepare_v2(st->db, stmt_sql[SS_FIND_OK], -1, &s, NULL) != SQLITE_OK)
        return store_fail_sql(st, "find ok run");
    bind_text(s, 1, config_key);
    sqlite3_bind_int(s, 2, repeat);
    int rc = sqlite3_step(s);
    int found = rc == SQLITE_ROW;
    if (found && run_id) *run_id = sqlite3_column_int64(s, 0);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) found = store_fail_sql(st, "find ok run");
    sqlite3_finalize(s);
    return found;
}

int mt_store_run_status(struct mt_store *st, int64_t run_id, enum mt_run_status *status)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT status FROM runs WHERE id = ?1", -1, &s, NULL) !=
        SQLITE_OK)
        return store_fail_sql(st, "run status");
    sqlite3_bind_int64(s, 1, run_id);
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW;
    if (found && mt_run_status_parse((const char *)sqlite3_column_text(s, 0), status) != 0)
        found = store_fail(st, "run %lld has an unknown status", (long long)run_id);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) found = store_fail_sql(st, "run status");
    sqlite3_finalize(s);
    return found;
}

int mt_store_mark_interrupted_running(struct mt_store *st, const char *reason, size_t *count)
{
    if (st->readonly) return store_fail(st, "opened read-only, cannot write");
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db,
                           "UPDATE runs SET status = 'interrupted', error = ?1,"
                           " finished_at = " NOW_SQL " WHERE status = 'running'",
                           -1, &s, NULL) != SQLITE_OK)
        return store_fail_sql(st, "mark interrupted");
    bind_text(s, 1, reason ? reason : "harness stopped before the run ended");
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) return store_fail_sql(st, "mark interrupted");
    if (count) *count = (size_t)sqlite3_changes(st->db);
    return 0;
}

/* ---------------------------------------------------------------- measurements */

/* Binds a measured value at `vi` and its unavailable reason at `ri`. A non-finite value
 * without a reason becomes unavailable ("non-finite value (nan)"): never 0, never a silent
 * NULL. */
static void bind_measure(sqlite3_stmt *s, int vi, int ri, double value, const char *reason)
{
    char why[64];
    if (!reason && !isfinite(value)) {
        snprintf(why, sizeof why, "non-finite value (%s)",
                 isnan(value) ? "nan"
                 : value > 0  ? "inf"
                              : "-inf");
        reason = why;
    }
    if (reason) {
        sqlite3_bind_null(s, vi);
        sqlite3_bind_text(s, ri, reason, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_double(s, vi, value);
        sqlite3_bind_null(s, ri);
    }
}

/* Binds a name as metrics.h's category forms split it: the base name at `ni`, the
 * memory category ('' for a name without one) at `ci`. */
static void bind_name(sqlite3_stmt *s, int ni, int ci, const char *name)
{
    const char *cat = "", *base = mt_metric_split(name, &cat);
    bind_text(s, ni, base ? base : name);
    bind_text(s, ci, cat);
}

static int metric_put(struct mt_store *st, int64_t run_id, int rank, const char *name, double value,
                      const char *unit, const char *reason)
{
    if (!name || !unit)
        return store_fail(st, "metric of run %lld: name and unit are required", (long long)run_id);
    sqlite3_stmt *s = store_stmt_id(st, SS_METRIC_UPS, run_id);
    if (!s) return -1;
    sqlite3_bind_int(s, 2, rank);
    bind_name(s, 3, 7, name);
    bind_measure(s, 4, 6, value, reason);
    bind_text(s, 5, unit);
    return store_step_done(st, s, "insert metric");
}

int mt_store_metric(struct mt_store *st, int64_t run_id, int rank, const char *name, double value,
                    const char *unit)
{
    return metric_put(st, run_id, rank, name, value, unit, NULL);
}

int mt_store_metric_unavailable(struct mt_store *st, int64_t run_id, int rank, const char *name,
                                const char *unit, const char *reason)
{
    if (!reason || !*reason)
        return store_fail(st, "metric %s: an unavailable metric needs a reason", name ? name : "?");
    return metric_put(st, run_id, rank, name, NAN, unit, reason);
}

int mt_store_region(struct mt_store *st, int64_t run_id, int rank, const char *path, int64_t calls,
                    double wall_s, double cpu_s, int64_t *region_id)
{
    if (!path || !*path || !isfinite(wall_s))
        return store_fail(st, "region of run %lld: needs a path and a finite wall time",
                          (long long)run_id);
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    int depth = 0;
    for (const char *p = path; *p; p++)
        depth += *p == '/';
    sqlite3_stmt *s = store_stmt_id(st, SS_REGION_UPS, run_id);
    if (!s) return -1;
    sqlite3_bind_int(s, 2, rank);
    bind_text(s, 3, path);
    bind_text(s, 4, name);
    sqlite3_bind_int(s, 5, depth);
    sqlite3_bind_int64(s, 6, calls);
    sqlite3_bind_double(s, 7, wall_s);
    bind_real_or_null(s, 8, isfinite(cpu_s) ? cpu_s : NAN);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        store_fail_sql(st, "insert region");
        sqlite3_reset(s);
        return -1;
    }
    if (region_id) *region_id = sqlite3_column_int64(s, 0);
    return store_step_done(st, s, "insert region");
}

static int counter_put(struct mt_store *st, int64_t region_id, const char *counter, double value,
                       const char *reason)
{
    if (!counter)
        return store_fail(st, "region %lld: counter without a name", (long long)region_id);
    sqlite3_stmt *s = store_stmt_id(st, SS_RCOUNTER_UPS, region_id);
    if (!s) return -1;
    bind_name(s, 2, 5, counter);
    bind_measure(s, 3, 4, value, reason);
    return store_step_done(st, s, "insert region counter");
}

int mt_store_region_counter(struct mt_store *st, int64_t region_id, const char *counter,
                            double value)
{
    return counter_put(st, region_id, counter, value, NULL);
}

int mt_store_region_counter_unavailable(struct mt_store *st, int64_t region_id, const char *counter,
                                        const char *reason)
{
    if (!reason || !*reason)
        return store_fail(st, "counter %s: an unavailable counter needs a reason",
                          counter ? counter : "?");
    return counter_put(st, region_id, counter, NAN, reason);
}

int mt_store_sample(struct mt_store *st, int64_t run_id, int rank, const char *series, double x,
                    double y, const char *region)
{
    if (!series || !isfinite(x) || !isfinite(y))
        return store_fail(st, "sample of run %lld: needs a series and finite x, y",
                          (long long)run_id);
    sqlite3_stmt *s = store_stmt_id(st, SS_SAMPLE_INS, run_id);
    if (!s) return -1;
    sqlite3_bind_int(s, 2, rank);
    bind_name(s, 3, 7, series);
    sqlite3_bind_double(s, 4, x);
    sqlite3_bind_double(s, 5, y);
    bind_text(s, 6, region);
    return store_step_done(st, s, "insert sample");
}

int mt_store_log(struct mt_store *st, int64_t run_id, int rank, double t, const char *level,
                 const char *text)
{
    if (!level || !text)
        return store_fail(st, "log of run %lld: needs a level and a text", (long long)run_id);
    sqlite3_stmt *s = store_stmt_id(st, SS_LOG_INS, run_id);
    if (!s) return -1;
    sqlite3_bind_int(s, 2, rank);
    sqlite3_bind_double(s, 3, isfinite(t) ? t : 0.0);
    bind_text(s, 4, level);
    bind_text(s, 5, text);
    return store_step_done(st, s, "insert log");
}

int mt_store_tensor(struct mt_store *st, int64_t run_id, int rank, const char *name,
                    const char *category, int64_t bytes)
{
    if (!name || !category)
        return store_fail(st, "tensor of run %lld: needs a name and a category", (long long)run_id);
    sqlite3_stmt *s = store_stmt_id(st, SS_TENSOR_UPS, run_id);
    if (!s) return -1;
    sqlite3_bind_int(s, 2, rank);
    bind_text(s, 3, name);
    bind_text(s, 4, category);
    sqlite3_bind_int64(s, 5, bytes);
    return store_step_done(st, s, "insert tensor");
}

/* ---------------------------------------------------------------- frames and stacks */

int store_frame_id(struct mt_store *st, const struct mt_store_frame *f, int64_t *id, int *created)
{
    *created = 0;
    sqlite3_stmt *s = store_stmt(st, SS_FRAME_FIND);
    if (!s) return -1;
    bind_text(s, 1, f->function);
    bind_text(s, 2, f->module);
    bind_text(s, 3, f->file);
    bind_int_or_null(s, 4, f->line, 0);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        int need_build_id = sqlite3_column_type(s, 1) == SQLITE_NULL && f->build_id;
        sqlite3_reset(s);
        if (!need_build_id) return 0;
        s = store_stmt_id(st, SS_FRAME_BUILD_ID, *id);
        if (!s) return -1;
        bind_text(s, 2, f->build_id);
        return store_step_done(st, s, "update frame");
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_fail_sql(st, "find frame");
    s = store_stmt(st, SS_FRAME_INS);
    if (!s) return -1;
    bind_text(s, 1, f->function);
    bind_text(s, 2, f->module);
    bind_text(s, 3, f->file);
    bind_int_or_null(s, 4, f->line, 0);
    bind_text(s, 5, f->build_id);
    if (store_step_done(st, s, "insert frame") != 0) return -1;
    *id = sqlite3_last_insert_rowid(st->db);
    *created = 1;
    return 0;
}

int mt_store_frame_id(struct mt_store *st, const struct mt_store_frame *f, int64_t *frame_id)
{
    int created;
    return store_frame_id(st, f, frame_id, &created);
}

/* 128-bit digest of the id list: two independent 64-bit mixes (FNV-1a and a
 * splitmix-style multiply-xorshift), so an accidental collision needs both to collide;
 * the stored frame list is compared anyway. */
static void stack_digest(const int64_t *frames, size_t n, char hex[33])
{
    uint64_t a = 0xcbf29ce484222325ull, b = 0x9e3779b97f4a7c15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = (uint64_t)frames[i];
        for (int k = 0; k < 8; k++) {
            a ^= (v >> (8 * k)) & 0xff;
            a *= 0x100000001b3ull;
        }
        b ^= v + 0x9e3779b97f4a7c15ull + (b << 6) + (b >> 2);
        b = (b ^ (b >> 30)) * 0xbf58476d1ce4e5b9ull;
        b = (b ^ (b >> 27)) * 0x94d049bb133111ebull;
        b ^= b >> 31;
    }
    snprintf(hex, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

int store_stack_id(struct mt_store *st, const int64_t *frames, size_t n, int64_t *id, int *created)
{
    *created = 0;
    if (n == 0) return store_fail(st, "a stack needs at least one frame");
    char hash[33];
    stack_digest(frames, n, hash);
    sqlite3_stmt *s = store_stmt(st, SS_STACK_FIND);
    if (!s) return -1;
    bind_text(s, 1, hash);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        s = store_stmt_id(st, SS_STACK_FRAMES, *id);
        if (!s) return -1;
        size_t i = 0;
        int same = 1;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            same &= i < n && sqlite3_column_int64(s, 0) == frames[i];
            i++;
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return store_fail_sql(st, "read stack");
        if (!same || i != n)
            return store_fail(st, "stack digest %s collides with stack %lld", hash, (long long)*id);
        return 0;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_fail_sql(st, "find stack");
    int opened;
    if (tx_open_if_needed(st, &opened) != 0) return -1;
    int ret = -1;
    s = store_stmt(st, SS_STACK_INS);
    if (!s) goto done;
    bind_text(s, 1, hash);
    if (store_step_done(st, s, "insert stack") != 0) goto done;
    *id = sqlite3_last_insert_rowid(st->db);
    for (size_t i = 0; i < n; i++) {
        s = store_stmt(st, SS_STACK_FRAME_INS);
        if (!s) goto done;
        sqlite3_bind_int64(s, 1, *id);
        sqlite3_bind_int64(s, 2, (int64_t)i);
        sqlite3_bind_int64(s, 3, frames[i]);
        if (store_step_done(st, s, "insert stack frame") != 0) goto done;
    }
    *created = 1;
    ret = 0;
done:
    return tx_close_if_opened(st, opened, ret);
}

int mt_store_stack_id(struct mt_store *st, const int64_t *frames, size_t n, int64_t *stack_id)
{
    int created;
    return store_stack_id(st, frames, n, stack_id, &created);
}

int mt_store_stack_from_frames(struct mt_store *st, const struct mt_store_frame *frames, size_t n,
                               int64_t *stack_id)
{
    if (n == 0) return store_fail(st, "a stack needs at least one frame");
    int64_t *ids = malloc(n * sizeof *ids);
    if (!ids) return store_fail(st, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = mt_store_frame_id(st, &frames[i], &ids[i]);
    if (rc == 0) rc = mt_store_stack_id(st, ids, n, stack_id);
    free(ids);
    return rc;
}

int mt_store_alloc_site(struct mt_store *st, int64_t run_id, const struct mt_store_alloc_site *a)
{
    if (!a || !a->category)
        return store_fail(st, "alloc site of run %lld: needs a category", (long long)run_id);
    sqlite3_stmt *s = store_stmt_id(st, SS_SITE_UPS, run_id);
    if (!s) return -1;
    sqlite3_bind_int(s, 2, a->rank);
    sqlite3_bind_int64(s, 3, a->stack_id);
    bind_text(s, 4, a->category);
    sqlite3_bind_int64(s, 5, a->allocs);
    sqlite3_bind_int64(s, 6, a->bytes);
    sqlite3_bind_int64(s, 7, a->peak_bytes);
    sqlite3_bind_int64(s, 8, a->temporary);
    sqlite3_bind_int64(s, 9, a->leaked_bytes);
    sqlite3_bind_int64(s, 10, a->leaked_allocs);
    sqlite3_bind_int(s, 11, a->estimated ? 1 : 0);
    bind_text(s, 12, a->space ? a->space : "host");
    return store_step_done(st, s, "insert alloc site");
}

int mt_store_alloc_sites_clear(struct mt_store *st, int64_t run_id, int rank)
{
    sqlite3_stmt *s = store_stmt_id(st, SS_SITE_CLEAR, run_id);
    if (!s) return -1;
    sqlite3_bind_int(s, 2, rank);
    return store_step_done(st, s, "clear alloc sites");
}
