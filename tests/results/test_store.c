/* tests/results/test_store.c — tests of the results store (ctest store.*).
 *
 * What it is for: proving the store keeps what it is given, refuses what it must refuse
 * (leaving the file byte-identical), stores unavailable metrics honestly, guards `query
 * sql`, computes the exact Pareto front, merges shards without duplicates, handles
 * interrupted runs as store.h documents, and escapes CSV/JSON. One executable, one
 * test per argv[1]. Not for: harness behaviour (tests/harness).
 */
#define _GNU_SOURCE
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "format.h"
#include "reader.h"
#include "store_internal.h"
#include "test_util.h"

/* ---------------------------------------------------------------- fixtures */

struct fixture_run {
    const char *workload, *key;
    int repeat;
    enum mt_run_status status;
    double bpb, infer, train; /* NaN: not reported */
};

static int add_run(struct mt_store *st, int64_t sweep, const struct fixture_run *r, int64_t *id)
{
    struct mt_store_kv params[] = {{"bits", "4"}, {"model", "tiny"}};
    struct mt_store_run_info info = {.sweep_id = sweep,
                                     .workload = r->workload,
                                     .label = "lbl",
                                     .config_key = r->key,
                                     .repeat = r->repeat,
                                     .seed = 42,
                                     .ranks = 1,
                                     .threads = 2,
                                     .git_rev = "abc123",
                                     .abi_version = "1.0",
                                     .facts_json = "{\"cc\":\"gcc\"}",
                                     .params = params,
                                     .n_params = 2};
    OK(st, mt_store_run_begin(st, &info, id));
    if (!isnan(r->bpb)) OK(st, mt_store_metric(st, *id, -1, "val_bpb", r->bpb, "bits/byte"));
    if (!isnan(r->infer))
        OK(st, mt_store_metric(st, *id, -1, "infer_peak_bytes", r->infer, "bytes"));
    if (!isnan(r->train))
        OK(st, mt_store_metric(st, *id, -1, "train_peak_bytes", r->train, "bytes"));
    if (r->status != MT_RUN_RUNNING) {
        struct mt_store_run_end end = {
            .status = r->status, .exit_code = 0, .signal = -1, .wall_s = 1.5};
        OK(st, mt_store_run_finish(st, *id, &end));
    }
    return 0;
}

/* Frames shared by the profile fixtures; stacks are innermost first. */
static const struct mt_store_frame F_MALLOC_WRAP = {"mt_alloc", "/usr/lib/libmt.so", "alloc.c", 10,
                                                    "b1"};
static const struct mt_store_frame F_FORWARD = {"forward", "/bin/mt", "model.c", 200, NULL};
static const struct mt_store_frame F_MAIN = {"main", "/bin/mt", "main.c", 5, NULL};
static const struct mt_store_frame F_UNKNOWN = {NULL, "/lib/x86_64-linux-gnu/libc.so.6", NULL, -1,
                                                NULL};
static const struct mt_store_frame F_BACKWARD = {"backward", "/bin/mt", "model.c", 300, NULL};

/* Adds a region with counters, samples, a log, a tensor and two allocation sites. */
static int add_profile(struct mt_store *st, int64_t run, int variant)
{
    int64_t region;
    OK(st, mt_store_region(st, run, 0, "train/step/forward", 10, 2.5, 2.0, &region));
    OK(st, mt_store_region_counter(st, region, "PAPI_TOT_INS", 12345));
    OK(st, mt_store_region_counter_unavailable(st, region, "PAPI_L1_DCM", "no hardware counters"));
    OK(st, mt_store_sample(st, run, 0, "heap.live.weights", 0.01, 4096, "forward"));
    OK(st, mt_store_sample(st, run, 0, "heap.live.weights", 0.02, 8192, NULL));
    OK(st, mt_store_log(st, run, 0, 0.5, "info", "hello, \"world\""));
    OK(st, mt_store_tensor(st, run, 0, "wte", "weights", 65536));
    struct mt_store_frame s1[] = {F_MALLOC_WRAP, F_FORWARD, F_MAIN};
    struct mt_store_frame s2[] = {F_UNKNOWN, variant ? F_BACKWARD : F_FORWARD, F_MAIN};
    int64_t k1, k2;
    OK(st, mt_store_stack_from_frames(st, s1, 3, &k1));
    OK(st, mt_store_stack_from_frames(st, s2, 3, &k2));
    struct mt_store_alloc_site a = {0, k1, "activations", 10, 10000, 4000, 2, 0, 0, 0, NULL};
    struct mt_store_alloc_site b = {0, k2, "weights", 1, 65536, 65536, 0, 100, 1, 0, "host"};
    OK(st, mt_store_alloc_site(st, run, &a));
    OK(st, mt_store_alloc_site(st, run, &b));
    return 0;
}

/* The store at path opened with flags, or NULL with the reason printed. */
static struct mt_store *open_as(const char *path, enum mt_store_flags flags)
{
    struct mt_store *st = NULL;
    char err[512];
    if (mt_store_open(path, flags, &st, err, sizeof err) != 0)
        fprintf(stderr, "open %s: %s\n", path, err);
    return st;
}

static struct mt_store *open_rw(const char *path)
{
    return open_as(path, MT_STORE_READWRITE_CREATE);
}

static struct mt_store *open_ro(const char *path)
{
    return open_as(path, MT_STORE_READONLY);
}

/* A new read-write store in the scratch folder; its path goes to path[n]. */
static struct mt_store *open_new(const char *name, char *path, size_t n)
{
    snprintf(path, n, "%s", tu_path(name));
    return open_rw(path);
}

/* open_new with run r added (its id in *run); NULL, the reason printed, when either fails. */
static struct mt_store *open_new_with_run(const char *name, char *path, size_t n,
                                          const struct fixture_run *r, int64_t *run)
{
    struct mt_store *st = open_new(name, path, n);
    if (st && add_run(st, 0, r, run) != 0) {
        fprintf(stderr, "add_run %s to %s failed\n", r->key, path);
        mt_store_close(st);
        st = NULL;
    }
    return st;
}

/* One-value queries and the values they must give. */
struct sql_want {
    const char *what, *sql;
    long long want;
};

/* Runs every query of w on db and prints each whose value differs; returns how many do. */
static size_t sql_mismatches(sqlite3 *db, const struct sql_want *w, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        long long got = tu_int(db, w[i].sql);
        if (got != w[i].want) {
            fprintf(stderr, "%s: got %lld, want %lld: %s\n", w[i].what, got, w[i].want, w[i].sql);
            bad++;
        }
    }
    return bad;
}

/* ---------------------------------------------------------------- tests */

static int test_reopen(void)
{
    char path[1024];
    struct mt_store *st = open_new("sub/dir/a.db", path, sizeof path); /* parents created */
    CHECK(st, "create");
    int64_t sweep, run;
    struct mt_store_sweep_info si = {.name = "quick",
                                     .spec_path = "sweeps/quick.ini",
                                     .spec_text = "[sweep]\nname=quick\n",
                                     .shard = "1/2",
                                     .host = "box",
                                     .facts_json = "{}"};
    OK(st, mt_store_sweep_begin(st, &si, &sweep));
    struct fixture_run r = {"quantize", "quantize?bits=4&model=tiny", 0, MT_RUN_OK, 1.25, 1000,
                            NAN};
    CHECK(add_run(st, sweep, &r, &run) == 0, "add_run");
    OK(st, mt_store_begin(st));
    CHECK(add_profile(st, run, 0) == 0, "add_profile");
    OK(st, mt_store_commit(st));
    OK(st, mt_store_sweep_finish(st, sweep));
    CHECK(mt_store_sweep_finish(st, 999) != 0, "unknown sweep must fail");
    CHECK(strstr(mt_store_error(st), path) != NULL, "error names the file: %s", mt_store_error(st));
    mt_store_close(st);

    for (int ro = 0; ro < 2; ro++) {
        st = ro ? open_ro(path) : open_rw(path);
        CHECK(st, "reopen ro=%d", ro);
        sqlite3 *db = mt_store_db(st);
        char *app = tu_text(db, "SELECT value FROM meta WHERE key = 'application'");
        CHECK(strcmp(app, "memtrade") == 0, "application %s", app);
        free(app);
        char *jm = tu_text(db, "PRAGMA journal_mode");
        CHECK(strcmp(jm, "wal") == 0, "journal_mode %s", jm);
        free(jm);
        static const struct sql_want want[] = {
            {"user_version", "PRAGMA user_version", MT_STORE_SCHEMA_VERSION},
            {"run row",
             "SELECT count(*) FROM runs WHERE status = 'ok' AND wall_s = 1.5 AND seed = 42"
             " AND threads = 2 AND exit_code = 0 AND signal IS NULL AND finished_at IS NOT NULL",
             1},
            {"params", "SELECT count(*) FROM params WHERE run_id = 1", 2},
            {"metric", "SELECT value FROM metrics WHERE name = 'infer_peak_bytes'", 1000},
            {"region",
             "SELECT count(*) FROM regions WHERE name = 'forward' AND depth = 2 AND calls = 10"
             " AND cpu_s = 2.0",
             1},
            {"counter",
             "SELECT count(*) FROM region_counters WHERE value IS NULL"
             " AND unavailable = 'no hardware counters'",
             1},
            {"samples", "SELECT count(*) FROM samples", 2},
            {"logs", "SELECT count(*) FROM logs", 1},
            {"tensors", "SELECT bytes FROM tensors", 65536},
            {"frames deduped (main, forward)", "SELECT count(*) FROM frames", 4},
            {"stacks", "SELECT count(*) FROM stacks", 2},
            {"build id", "SELECT count(*) FROM frames WHERE build_id = 'b1'", 1},
            {"sweep", "SELECT count(*) FROM sweeps WHERE finished_at IS NOT NULL AND shard = '1/2'",
             1},
            {"migration 2 view", "SELECT count(*) FROM sqlite_schema WHERE name = 'run_metrics'",
             1}};
        CHECK(sql_mismatches(db, want, sizeof want / sizeof want[0]) == 0, "reopened, ro=%d", ro);
        OK(st, mt_store_integrity_check(st));
        if (ro) {
            int64_t x;
            CHECK(mt_store_sweep_begin(st, &si, &x) != 0, "read-only store must refuse writes");
        }
        mt_store_close(st);
    }

    /* Deduplication holds across calls: the same stack again gives the same id. */
    st = open_rw(path);
    CHECK(st, "reopen");
    struct mt_store_frame s1[] = {F_MALLOC_WRAP, F_FORWARD, F_MAIN};
    int64_t again;
    OK(st, mt_store_stack_from_frames(st, s1, 3, &again));
    CHECK(again == 1, "stack id %lld", (long long)again);
    mt_store_close(st);
    return 0;
}

/* A version-1 database (schema.sql only, as the first build wrote it) is migrated. */
static int test_migrate(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", tu_path("v1.db"));
    CHECK(tu_exec(path, mt_store_schema_sql) == 0, "v1 schema");
    CHECK(tu_exec(path, "INSERT INTO meta VALUES('application', 'memtrade');"
                        "INSERT INTO runs(workload, config_key, status, started_at)"
                        " VALUES('w', 'w', 'ok', 'now')") == 0,
          "v1 data");
    struct tu_blob before = tu_read(path);
    struct mt_store *st = open_ro(path);
    CHECK(st, "read-only opens an older schema");
    CHECK(tu_int(mt_store_db(st), "PRAGMA user_version") == MT_STORE_SCHEMA_VERSION,
          "read-only reads a copy migrated in memory");
    mt_store_close(st);
    CHECK(tu_unchanged(&before, path), "read-only left the older file as it was");
    st = open_rw(path);
    CHECK(st, "migrate");
    sqlite3 *db = mt_store_db(st);
    CHECK(tu_int(db, "PRAGMA user_version") == MT_STORE_SCHEMA_VERSION, "migrated");
    CHECK(tu_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'logs_by_run'") == 1,
          "index");
    /* migration 3: the trade-off says what each run scored and its budget */
    CHECK(tu_int(db, "SELECT count(*) FROM pragma_table_info('tradeoff') WHERE name IN "
                     "('eval_bytes', 'train_budget')") == 2,
          "tradeoff columns");
    CHECK(tu_int(db, "SELECT count(*) FROM runs") == 1, "data kept");
    mt_store_close(st);
    return 0;
}

/* A version-3 database (the last before the category column) with names that carry their
 * memory category: read-only reads the split without touching the file; the first
 * writer migrates it for good (migration 4). */
static int test_migrate_v3(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", tu_path("v3.db"));
    CHECK(tu_exec(path, mt_store_schema_sql) == 0, "v1 schema");
    for (const struct mt_store_migration *m = mt_store_migrations; m->sql && m->version <= 3; m++)
        CHECK(tu_exec(path, m->sql) == 0, "migration %s", m->name);
    CHECK(tu_exec(path, "PRAGMA user_version = 3;"
                        "INSERT INTO meta VALUES('application', 'memtrade');"
                        "INSERT INTO runs(id, workload, config_key, status, started_at)"
                        " VALUES(1, 'w', 'w', 'ok', 'now');"
                        "INSERT INTO metrics(run_id, rank, name, value, unit) VALUES"
                        " (1, -1, 'val_bpb', 2.5, 'bits/byte'),"
                        " (1, -1, 'infer_peak_bytes', 1000, 'bytes'),"
                        " (1, -1, 'infer_peak_kv_cache_bytes', 300, 'bytes'),"
                        " (1, -1, 'peak_heap_bytes', 2000, 'bytes'),"
                        " (1, -1, 'peak_weights_bytes', 700, 'bytes'),"
                        " (1, -1, 'peak_rss_bytes', 4000, 'bytes'),"
                        " (1, -1, 'train_peak_rss_bytes', 3000, 'bytes'),"
                        " (1, -1, 'peak_foo_bytes', 5, 'bytes'),"
                        " (1, 0, 'train_peak_act_grads_bytes', 60, 'bytes');"
                        "INSERT INTO regions VALUES(1, 1, 0, 'infer', 'infer', 0, 1, 1.0, NULL);"
                        "INSERT INTO region_counters VALUES(1, 'heap_peak_bytes', 900, NULL),"
                        " (1, 'heap_peak_bytes.weights', 500, NULL),"
                        " (1, 'heap_peak_bytes.kv_cache', NULL, 'profiler off'),"
                        " (1, 'PAPI_TOT_INS', 77, NULL);"
                        "INSERT INTO samples VALUES(1, 0, 'heap.live', 0, 10, NULL),"
                        " (1, 0, 'heap.live.kv_cache', 0, 4, 'infer'), (1, 0, 'rss', 0, 20, NULL),"
                        " (1, 0, 'heap.live.nocat', 0, 1, NULL)") == 0,
          "v3 data");
    /* Read-only: the split arrives through the read API, the file stays byte-identical. */
    struct tu_blob before = tu_read(path);
    struct mt_store *st = open_ro(path);
    CHECK(st, "read-only opens a v3 database");
    struct mt_read *rd;
    struct mt_read_metric *ms;
    size_t n;
    OK(st, mt_read_open(st, &rd));
    OK(st, mt_read_metrics(rd, 1, -1, &ms, &n));
    CHECK(n == 8 && !strcmp(ms[0].name, "infer_peak_bytes") && !ms[0].category &&
              !strcmp(ms[1].name, "infer_peak_bytes") && !strcmp(ms[1].category, "kv_cache") &&
              ms[1].value == 300,
          "read-only metrics (%zu)", n);
    mt_read_close(rd);
    mt_store_close(st);
    CHECK(tu_unchanged(&before, path), "read-only left the v3 file as it was");

    st = open_rw(path);
    CHECK(st, "migrate v3");
    sqlite3 *db = mt_store_db(st);
    char *got = tu_text(db, "SELECT group_concat(rank || ':' || name || '[' || category || ']=' ||"
                            " coalesce(value, unavailable), ' ') FROM (SELECT * FROM metrics"
                            " ORDER BY rank, name, category)");
    const char *want = "-1:infer_peak_bytes[]=1000.0 -1:infer_peak_bytes[kv_cache]=300.0"
                       " -1:peak_foo_bytes[]=5.0 -1:peak_heap_bytes[]=2000.0"
                       " -1:peak_heap_bytes[weights]=700.0 -1:peak_rss_bytes[]=4000.0"
                       " -1:train_peak_rss_bytes[]=3000.0 -1:val_bpb[]=2.5"
                       " 0:train_peak_bytes[act_grads]=60.0";
    CHECK(!strcmp(got, want), "metrics after migration:\n got %s\nwant %s", got, want);
    free(got);
    got = tu_text(db, "SELECT group_concat(counter || '[' || category || ']=' ||"
                      " coalesce(value, unavailable), ' ') FROM (SELECT * FROM region_counters"
                      " ORDER BY counter, category)");
    want = "PAPI_TOT_INS[]=77.0 heap_peak_bytes[]=900.0 heap_peak_bytes[kv_cache]=profiler off"
           " heap_peak_bytes[weights]=500.0";
    CHECK(!strcmp(got, want), "counters after migration:\n got %s\nwant %s", got, want);
    free(got);
    got = tu_text(db, "SELECT group_concat(series || '[' || category || ']', ' ') FROM"
                      " (SELECT * FROM samples ORDER BY rowid)");
    want = "heap.live[] heap.live[kv_cache] rss[] heap.live.nocat[]";
    CHECK(!strcmp(got, want), "samples after migration:\n got %s\nwant %s", got, want);
    free(got);
    static const struct sql_want w[] = {
        {"user_version", "PRAGMA user_version", MT_STORE_SCHEMA_VERSION},
        {"tradeoff reads the whole", "SELECT memory_bytes FROM tradeoff", 1000},
        {"pareto view gone", "SELECT count(*) FROM sqlite_schema WHERE name = 'pareto'", 0},
        {"run_metrics has the category",
         "SELECT count(*) FROM run_metrics WHERE name = 'peak_heap_bytes'"
         " AND category = 'weights'",
         1}};
    CHECK(sql_mismatches(db, w, sizeof w / sizeof w[0]) == 0, "migrated v3");
    OK(st, mt_store_integrity_check(st));
    /* A writer now stores the split (the same rule as the migration). */
    OK(st, mt_store_metric(st, 1, -1, "train_peak_weights_bytes", 11, "bytes"));
    CHECK(tu_int(db, "SELECT count(*) FROM metrics WHERE name = 'train_peak_bytes'"
                     " AND category = 'weights' AND value = 11") == 1,
          "writer split");
    mt_store_close(st);
    return 0;
}

/* Each bad file is refused by both open modes, with a message naming the file and the
 * problem, and is left byte-identical (and no -wal/-shm appears). */
static int expect_refused(const char *path, const char *needle)
{
    struct tu_blob before = tu_read(path);
    for (int ro = 0; ro < 2; ro++) {
        struct mt_store *st = NULL;
        char err[512] = "";
        int rc = mt_store_open(path, ro ? MT_STORE_READONLY : MT_STORE_READWRITE_CREATE, &st, err,
                               sizeof err);
        CHECK(rc == -1 && st == NULL, "%s must be refused (ro=%d)", path, ro);
        CHECK(strstr(err, path) != NULL, "message names the file: %s", err);
        CHECK(strstr(err, needle) != NULL, "message says '%s': %s", needle, err);
    }
    CHECK(tu_unchanged(&before, path), "%s changed", path);
    char side[1100];
    snprintf(side, sizeof side, "%s-wal", path);
    CHECK(!tu_exists(side), "%s appeared", side);
    return 0;
}

static int test_refuse(void)
{
    char p[1024];
    snprintf(p, sizeof p, "%s", tu_path("text.db"));
    const char *text = "this is, plainly, a text file\nwith two lines\n";
    CHECK(tu_write(p, text, strlen(text)) == 0, "write");
    if (expect_refused(p, "not an SQLite database")) return 1;

    snprintf(p, sizeof p, "%s", tu_path("random.db"));
    unsigned char noise[8192];
    unsigned x = 12345;
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 16);
    CHECK(tu_write(p, noise, sizeof noise) == 0, "write");
    if (expect_refused(p, "not an SQLite database")) return 1;

    /* A real memtrade database with data, cut in the middle. */
    char good[1024];
    snprintf(good, sizeof good, "%s", tu_path("good.db"));
    struct mt_store *st = open_rw(good);
    CHECK(st, "create");
    for (int i = 0; i < 200; i++) {
        int64_t run;
        char key[64];
        snprintf(key, sizeof key, "w?i=%d", i);
        struct fixture_run r = {"w", key, 0, MT_RUN_OK, 1, 2, NAN};
        CHECK(add_run(st, 0, &r, &run) == 0, "add");
    }
    mt_store_close(st); /* checkpoints: everything is in the main file */
    struct tu_blob full = tu_read(good);
    CHECK(full.n > 3 * 4096, "db has several pages (%zu bytes)", full.n);
    snprintf(p, sizeof p, "%s", tu_path("truncated.db"));
    CHECK(tu_write(p, full.data, full.n / 2 + 100) == 0, "write");
    if (expect_refused(p, "truncated")) return 1;
    CHECK(tu_write(p, full.data, 60) == 0, "write");
    if (expect_refused(p, "truncated")) return 1;

    /* An SQLite database of something else. */
    snprintf(p, sizeof p, "%s", tu_path("other.db"));
    CHECK(tu_exec(p, "CREATE TABLE notes(t TEXT); INSERT INTO notes VALUES('hi');") == 0, "other");
    if (expect_refused(p, "not a memtrade database")) return 1;

    /* A memtrade database from a newer build. */
    snprintf(p, sizeof p, "%s", tu_path("newer.db"));
    CHECK(tu_write(p, full.data, full.n) == 0, "copy");
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", MT_STORE_SCHEMA_VERSION + 1);
    CHECK(tu_exec(p, sql) == 0, "bump");
    CHECK(tu_exec(p, "PRAGMA journal_mode = DELETE") == 0, "no wal");
    if (expect_refused(p, "newer")) return 1;
    free(full.data);

    /* Read-only never creates. */
    struct mt_store *ro = NULL;
    char err[512];
    snprintf(p, sizeof p, "%s", tu_path("missing.db"));
    CHECK(mt_store_open(p, MT_STORE_READONLY, &ro, err, sizeof err) != 0 && !tu_exists(p),
          "read-only open of a missing file must fail without creating it");
    return 0;
}

static int test_unavailable(void)
{
    char path[1024];
    int64_t run;
    struct fixture_run r = {"w", "w", 0, MT_RUN_RUNNING, NAN, NAN, NAN};
    struct mt_store *st = open_new_with_run("m.db", path, sizeof path, &r, &run);
    CHECK(st, "open, add a run");
    OK(st, mt_store_metric_unavailable(st, run, -1, "peak_rss_bytes", "bytes", "no wait4 rusage"));
    OK(st, mt_store_metric(st, run, -1, "zero", 0.0, "1"));
    OK(st, mt_store_metric(st, run, -1, "nan", NAN, "1"));
    OK(st, mt_store_metric(st, run, 0, "last", 1.0, "s"));
    OK(st, mt_store_metric(st, run, 0, "last", 2.0, "s"));
    OK(st, mt_store_metric_unavailable(st, run, -1, "flip", "1", "first unavailable"));
    OK(st, mt_store_metric(st, run, -1, "flip", 7.0, "1"));
    CHECK(mt_store_metric_unavailable(st, run, -1, "x", "1", "") != 0, "a reason is required");
    sqlite3 *db = mt_store_db(st);
    CHECK(tu_int(db, "SELECT count(*) FROM metrics WHERE name = 'peak_rss_bytes'"
                     " AND value IS NULL AND unavailable = 'no wait4 rusage'") == 1,
          "unavailable");
    CHECK(tu_int(db, "SELECT count(*) FROM metrics WHERE name = 'zero' AND value = 0"
                     " AND typeof(value) = 'real' AND unavailable IS NULL") == 1,
          "zero stays 0");
    char *why = tu_text(db, "SELECT unavailable FROM metrics WHERE name = 'nan' AND value IS NULL");
    CHECK(strcmp(why, "non-finite value (nan)") == 0, "nan reason %s", why);
    free(why);
    CHECK(tu_int(db, "SELECT value FROM metrics WHERE name = 'last' AND rank = 0") == 2, "upsert");
    CHECK(tu_int(db, "SELECT count(*) FROM metrics WHERE name = 'last'") == 1, "one row");
    CHECK(tu_int(db, "SELECT count(*) FROM metrics WHERE name = 'flip' AND value = 7"
                     " AND unavailable IS NULL") == 1,
          "flip to available");
    /* show prints the reason and the unit. */
    struct tu_cap c;
    tu_cap_open(&c);
    OK(st, mt_store_query_show(st, run, MT_FORMAT_CSV, c.f));
    const char *out = tu_cap_text(&c);
    CHECK(strstr(out, "-1,peak_rss_bytes,,,bytes,no wait4 rusage\n") != NULL, "show: %s", out);
    CHECK(strstr(out, "-1,zero,,0,1,\n") != NULL, "show zero: %s", out);
    tu_cap_free(&c);
    mt_store_close(st);
    return 0;
}

static int test_sql_guard(void)
{
    char path[1024];
    int64_t run;
    struct fixture_run r = {"w", "w?a=1", 0, MT_RUN_OK, 1.5, 100, NAN};
    struct mt_store *st = open_new_with_run("g.db", path, sizeof path, &r, &run);
    CHECK(st, "open, add a run");
    CHECK(mt_store_query_sql(st, "SELECT 1", MT_FORMAT_CSV, stdout) != 0,
          "sql on a read-write store must be refused");
    mt_store_close(st);
    struct tu_blob before = tu_read(path);

    st = open_ro(path);
    CHECK(st, "open ro");
    static const char *const bad[] = {
        "INSERT INTO runs(workload, config_key, status, started_at) VALUES('x','x','ok','t')",
        "DROP TABLE runs",
        "SELECT 1; DROP TABLE runs",
        "SELECT 1;\n/* hidden */ DELETE FROM runs",
        "ATTACH DATABASE ':memory:' AS other",
        "PRAGMA user_version=5",
        "PRAGMA journal_mode=DELETE",
        "UPDATE runs SET status = 'failed'",
        "WITH x AS (SELECT 1) DELETE FROM runs",
        "CREATE TEMP TABLE t(x)",
        "VACUUM",
        "BEGIN",
        "",
        "   -- only a comment",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tu_cap c;
        tu_cap_open(&c);
        int rc = mt_store_query_sql(st, bad[i], MT_FORMAT_CSV, c.f);
        tu_cap_text(&c);
        CHECK(rc != 0, "must refuse: %s", bad[i]);
        CHECK(c.n == 0, "refused statement printed output: %s", bad[i]);
        tu_cap_free(&c);
    }
    CHECK(strstr(mt_store_error(st), "refused") || strstr(mt_store_error(st), "empty"), "%s",
          mt_store_error(st));
    struct tu_cap c;
    EXPECT_OUTPUT(st, "id,status,config_key\n1,ok,w?a=1\n", out,
                  mt_store_query_sql(st, "SELECT id, status, config_key FROM runs; -- done",
                                     MT_FORMAT_CSV, out));
    char uv[32];
    snprintf(uv, sizeof uv, "user_version\n%d\n", MT_STORE_SCHEMA_VERSION);
    EXPECT_OUTPUT(st, uv, out, mt_store_query_sql(st, "PRAGMA user_version", MT_FORMAT_CSV, out));
    tu_cap_open(&c);
    OK(st, mt_store_query_sql(st, "PRAGMA table_info(params)", MT_FORMAT_CSV, c.f));
    const char *head = "cid,name,type,notnull,dflt_value,pk\n0,run_id,INTEGER,1,,1\n";
    CHECK(strncmp(tu_cap_text(&c), head, strlen(head)) == 0, "got %s", c.buf);
    tu_cap_free(&c);
    mt_store_close(st);
    CHECK(tu_unchanged(&before, path), "database changed");
    return 0;
}

static int test_pareto(void)
{
    char path[1024];
    struct mt_store *st = open_new("p.db", path, sizeof path);
    CHECK(st, "open");
    int64_t s1, s2, id;
    struct mt_store_sweep_info si = {.name = "s"};
    OK(st, mt_store_sweep_begin(st, &si, &s1));
    OK(st, mt_store_sweep_begin(st, &si, &s2));
    /* Sweep 1, serving: A, B, E (tie with B), D, F on the front; C dominated by B (but
     * B and E scored other text, below, so C is on the front of its own);
     * G failed; H has no bpb. Training: T1 on the front, T2 dominated.
     * Sweep 2: S dominated by nothing in its own sweep (B would dominate it in sweep 1). */
    const struct fixture_run runs[] = {
        {"q", "q?n=A", 0, MT_RUN_OK, 3.0, 100, NAN},    /* 1 */
        {"q", "q?n=B", 0, MT_RUN_OK, 2.0, 200, NAN},    /* 2 */
        {"q", "q?n=C", 0, MT_RUN_OK, 2.5, 300, NAN},    /* 3 */
        {"q", "q?n=D", 0, MT_RUN_OK, 4.0, 50, NAN},     /* 4 */
        {"q", "q?n=E", 0, MT_RUN_OK, 2.0, 200, NAN},    /* 5 */
        {"q", "q?n=F", 0, MT_RUN_OK, 1.0, 400, NAN},    /* 6 */
        {"q", "q?n=G", 0, MT_RUN_FAILED, 0.1, 10, NAN}, /* 7 */
        {"q", "q?n=H", 0, MT_RUN_OK, NAN, 5, NAN},      /* 8 */
        {"t", "t?n=1", 0, MT_RUN_OK, 5.0, NAN, 100},    /* 9 */
        {"t", "t?n=2", 0, MT_RUN_OK, 6.0, NAN, 150},    /* 10 */
        {"q", "q?n=S", 0, MT_RUN_OK, 2.2, 250, NAN},    /* 11, sweep 2 */
        {"q", "q?n=C2", 0, MT_RUN_OK, 2.5, 250, NAN},   /* 12, sweep 2, dominated by S */
        {"q", "q?n=R", 0, MT_RUN_OK, 3.75, 60, NAN},    /* 13, sweep 3: R has two repeats */
        {"q", "q?n=R", 1, MT_RUN_OK, 3.25, 80, NAN},    /* 14, R's mean is (70, 3.5) */
        {"q", "q?n=Q", 0, MT_RUN_OK, 3.625, 70, NAN},   /* 15, dominated by R's mean only */
    };
    int64_t s3;
    OK(st, mt_store_sweep_begin(st, &si, &s3));
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++)
        CHECK(add_run(st, i < 10 ? s1 : i < 12 ? s2 : s3, &runs[i], &id) == 0, "run %zu", i);
    /* model_bytes (higher better in the second check: a made-up "more is better"). */
    OK(st, mt_store_metric(st, 1, -1, "model_bytes", 10, "bytes"));
    OK(st, mt_store_metric(st, 2, -1, "model_bytes", 20, "bytes"));
    OK(st, mt_store_metric(st, 3, -1, "model_bytes", 30, "bytes"));
    /* B and E were scored on other text than the rest of sweep 1: they dominate C no more
     * (C joins the front); they stay on the front of their own text. */
    OK(st, mt_store_metric(st, 2, -1, "eval_bytes", 2048, "bytes"));
    OK(st, mt_store_metric(st, 5, -1, "eval_bytes", 2048, "bytes"));
    mt_store_close(st);

    st = open_ro(path);
    CHECK(st, "ro");
    const char *want = "sweep_id,memory_kind,run_id,workload,label,config_key,repeat,x,y\n"
                       "1,serving,4,q,lbl,q?n=D,0,50,4\n"
                       "1,serving,1,q,lbl,q?n=A,0,100,3\n"
                       "1,serving,2,q,lbl,q?n=B,0,200,2\n"
                       "1,serving,5,q,lbl,q?n=E,0,200,2\n"
                       "1,serving,3,q,lbl,q?n=C,0,300,2.5\n"
                       "1,serving,6,q,lbl,q?n=F,0,400,1\n"
                       "1,training,9,t,lbl,t?n=1,0,100,5\n"
                       "2,serving,11,q,lbl,q?n=S,0,250,2.2\n"
                       "3,serving,13,q,lbl,q?n=R,0,60,3.75\n"
                       "3,serving,15,q,lbl,q?n=Q,0,70,3.625\n"
                       "3,serving,14,q,lbl,q?n=R,1,80,3.25\n";
    EXPECT_OUTPUT(st, want, out, mt_store_query_pareto(st, NULL, MT_FORMAT_CSV, out));

    /* Per configuration: R's mean (70, 3.5) dominates Q (70, 3.625). */
    struct mt_store_pareto_opts byc = {.sweep_id = s3, .by_config = 1};
    want = "sweep_id,memory_kind,run_id,workload,label,config_key,repeats,x,y\n"
           "3,serving,13,q,lbl,q?n=R,2,70,3.5\n";
    EXPECT_OUTPUT(st, want, out, mt_store_query_pareto(st, &byc, MT_FORMAT_CSV, out));

    /* x = model_bytes higher is better, y = val_bpb lower is better, sweep 1 only:
     * A (10, 3), B (20, 2), C (30, 2.5): B and C are on the front, A is dominated by B. */
    struct mt_store_pareto_opts o = {
        .x_metric = "model_bytes", .y_metric = "val_bpb", .x_higher_better = 1, .sweep_id = s1};
    want = "sweep_id,memory_kind,run_id,workload,label,config_key,repeat,x,y\n"
           "1,serving,2,q,lbl,q?n=B,0,20,2\n"
           "1,serving,3,q,lbl,q?n=C,0,30,2.5\n";
    EXPECT_OUTPUT(st, want, out, mt_store_query_pareto(st, &o, MT_FORMAT_CSV, out));

    /* One definition of the front (pareto.h): migration 4 dropped the schema's view. */
    CHECK(tu_int(mt_store_db(st), "SELECT count(*) FROM sqlite_schema WHERE name = 'pareto'") == 0,
          "pareto view still there");
    mt_store_close(st);
    return 0;
}

/* Two shards with overlapping frames and configurations. */
static int make_shard(const char *path, int which)
{
    struct mt_store *st = open_rw(path);
    CHECK(st, "open shard");
    int64_t sweep, run;
    struct mt_store_sweep_info si = {.name = "grid", .shard = which ? "2/2" : "1/2", .host = "h"};
    OK(st, mt_store_sweep_begin(st, &si, &sweep));
    /* Shard 0: k1 ok (with profile), k2 failed.  Shard 1: a throwaway frame first (so ids
     * differ), k2 ok, k1 ok (a duplicate of shard 0's), k3 interrupted (running). */
    if (which == 1) {
        int64_t fid;
        struct mt_store_frame only1 = {"only_in_shard2", "/bin/mt", NULL, -1, NULL};
        OK(st, mt_store_frame_id(st, &only1, &fid));
    }
    struct fixture_run k1 = {"q", "q?k=1", 0, MT_RUN_OK, 2.0, 100, NAN};
    struct fixture_run k2f = {"q", "q?k=2", 0, MT_RUN_FAILED, NAN, NAN, NAN};
    struct fixture_run k2 = {"q", "q?k=2", 0, MT_RUN_OK, 1.5, 150, NAN};
    struct fixture_run k3 = {"q", "q?k=3", 0, MT_RUN_RUNNING, NAN, NAN, NAN};
    if (which == 0) {
        CHECK(add_run(st, sweep, &k1, &run) == 0, "k1");
        CHECK(add_profile(st, run, 0) == 0, "profile");
        CHECK(add_run(st, sweep, &k2f, &run) == 0, "k2f");
    } else {
        CHECK(add_run(st, sweep, &k2, &run) == 0, "k2");
        CHECK(add_profile(st, run, 1) == 0, "profile");
        CHECK(add_run(st, sweep, &k1, &run) == 0, "k1 dup");
        CHECK(add_run(st, sweep, &k3, &run) == 0, "k3");
    }
    OK(st, mt_store_sweep_finish(st, sweep));
    mt_store_close(st);
    return 0;
}

static char *folded_of(const char *path, int64_t run)
{
    struct mt_store *st = open_ro(path);
    if (!st) return strdup("(open failed)");
    struct tu_cap c;
    tu_cap_open(&c);
    if (mt_store_query_folded(st, run, MT_FOLDED_PEAK_BYTES, c.f) != 0)
        fprintf(stderr, "%s\n", mt_store_error(st));
    char *s = strdup(tu_cap_text(&c));
    tu_cap_free(&c);
    mt_store_close(st);
    return s;
}

static int test_merge(void)
{
    char a[1024], b[1024], out[1024], bad[1024];
    snprintf(a, sizeof a, "%s", tu_path("shard1.db"));
    snprintf(b, sizeof b, "%s", tu_path("shard2.db"));
    snprintf(out, sizeof out, "%s", tu_path("merged/all.db"));
    snprintf(bad, sizeof bad, "%s", tu_path("notes.db"));
    CHECK(make_shard(a, 0) == 0 && make_shard(b, 1) == 0, "shards");
    char *fold_a = folded_of(a, 1), *fold_b = folded_of(b, 1);
    CHECK(strcmp(fold_a, "main;forward;mt_alloc 4000\nmain;forward;libc.so.6+? 65536\n") == 0,
          "folded a: %s", fold_a);

    const char *ins[] = {a, b};
    struct mt_store_merge_stats ms;
    char err[512];
    CHECK(mt_store_merge(out, ins, 2, &ms, err, sizeof err) == 0, "merge: %s", err);
    CHECK(ms.inputs == 2 && ms.sweeps == 2 && ms.runs == 4 && ms.runs_skipped == 1,
          "stats inputs=%zu sweeps=%zu runs=%zu skipped=%zu", ms.inputs, ms.sweeps, ms.runs,
          ms.runs_skipped);
    /* frames: shard1 has 4 (mt_alloc, forward, main, libc); shard2 adds only_in_shard2 and
     * backward. stacks: s1 shared, s2 differs (forward vs backward) -> 3. */
    CHECK(ms.frames_new == 6 && ms.stacks_new == 3, "frames %zu stacks %zu", ms.frames_new,
          ms.stacks_new);

    struct mt_store *st = open_ro(out);
    CHECK(st, "open merged");
    sqlite3 *db = mt_store_db(st);
    OK(st, mt_store_integrity_check(st));
    static const struct sql_want merged[] = {
        {"runs", "SELECT count(*) FROM runs", 4},
        {"duplicate ok config",
         "SELECT count(*) FROM (SELECT config_key, repeat FROM runs WHERE status = 'ok'"
         " GROUP BY 1, 2 HAVING count(*) > 1)",
         0},
        {"ok runs", "SELECT count(*) FROM runs WHERE status = 'ok'", 2},
        {"failed kept", "SELECT count(*) FROM runs WHERE status = 'failed'", 1},
        {"running kept", "SELECT count(*) FROM runs WHERE status = 'running'", 1},
        {"frames", "SELECT count(*) FROM frames", 6},
        {"frames deduped",
         "SELECT count(*) FROM (SELECT function, module, file, line FROM frames"
         " GROUP BY 1, 2, 3, 4 HAVING count(*) > 1)",
         0},
        {"stacks", "SELECT count(*) FROM stacks", 3},
        {"sites", "SELECT count(*) FROM alloc_sites", 4},
        {"counters", "SELECT count(*) FROM region_counters", 4},
        {"params: 4 runs x 2", "SELECT count(*) FROM params", 8},
        {"samples", "SELECT count(*) FROM samples", 4},
        {"logs", "SELECT count(*) FROM logs", 2},
        /* Runs get new ids; their children follow them. */
        {"shard 2's runs point to its sweep",
         "SELECT count(*) FROM runs r JOIN sweeps s ON s.id = r.sweep_id WHERE s.shard = '2/2'",
         2}};
    CHECK(sql_mismatches(db, merged, sizeof merged / sizeof merged[0]) == 0, "merged store");
    int64_t k2;
    CHECK(mt_store_find_ok(st, "q?k=2", 0, &k2) == 1, "k2 ok");
    CHECK(tu_int(db, "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id"
                     " WHERE r.config_key = 'q?k=2' AND r.status = 'ok' AND m.name = 'val_bpb'"
                     " AND m.value = 1.5") == 1,
          "k2 metric follows its run");
    mt_store_close(st);
    char *fold_m1 = folded_of(out, 1);
    char *fold_m2 = folded_of(out, k2);
    CHECK(strcmp(fold_m1, fold_a) == 0, "merged folded of k1 %s vs %s", fold_m1, fold_a);
    CHECK(strcmp(fold_m2, fold_b) == 0, "merged folded of k2 %s vs %s", fold_m2, fold_b);
    free(fold_a);
    free(fold_b);
    free(fold_m1);
    free(fold_m2);

    /* Merging the same shards again adds only the non-ok history, never a second ok. */
    CHECK(mt_store_merge(out, ins, 2, &ms, err, sizeof err) == 0, "merge again: %s", err);
    CHECK(ms.runs_skipped == 3 && ms.sweeps == 0 && ms.frames_new == 0, "again: skipped %zu",
          ms.runs_skipped);
    st = open_ro(out);
    CHECK(st, "open merged");
    CHECK(tu_int(mt_store_db(st), "SELECT count(*) FROM runs WHERE status = 'ok'") == 2, "ok");
    mt_store_close(st);

    /* A foreign input is refused and the output is left byte-identical. */
    CHECK(tu_exec(bad, "CREATE TABLE notes(t TEXT)") == 0, "bad");
    struct tu_blob before = tu_read(out);
    const char *ins2[] = {a, bad};
    CHECK(mt_store_merge(out, ins2, 2, NULL, err, sizeof err) != 0, "must refuse");
    CHECK(strstr(err, bad) && strstr(err, "not a memtrade database"), "message: %s", err);
    char newer[1024];
    snprintf(newer, sizeof newer, "%s", tu_path("newer_shard.db"));
    CHECK(make_shard(newer, 1) == 0, "shard");
    char bump[64];
    snprintf(bump, sizeof bump, "PRAGMA user_version = %d", MT_STORE_SCHEMA_VERSION + 1);
    CHECK(tu_exec(newer, bump) == 0, "bump");
    const char *ins4[] = {a, newer};
    CHECK(mt_store_merge(out, ins4, 2, NULL, err, sizeof err) != 0, "newer input must be refused");
    CHECK(strstr(err, newer) && strstr(err, "newer"), "message: %s", err);
    /* A broken second input fails the merge half way: the first input's rows, already
     * written in the transaction, are rolled back. */
    char broken[1024];
    snprintf(broken, sizeof broken, "%s", tu_path("broken.db"));
    char broken_sql[256]; /* the current version (an older one would be migrated, and
                             refused, when opened, before anything is written) */
    snprintf(broken_sql, sizeof broken_sql,
             "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
             "INSERT INTO meta VALUES('application', 'memtrade');"
             "PRAGMA user_version = %d;",
             MT_STORE_SCHEMA_VERSION);
    CHECK(tu_exec(broken, broken_sql) == 0, "broken");
    char fresh[1024];
    snprintf(fresh, sizeof fresh, "%s", tu_path("fresh.db"));
    const char *ins5[] = {b, broken};
    CHECK(mt_store_merge(out, ins5, 2, &ms, err, sizeof err) != 0, "broken input must fail");
    CHECK(strstr(err, broken) != NULL, "message names the broken input: %s", err);
    CHECK(ms.runs == 0 && ms.inputs == 0, "stats are cleared on failure");
    CHECK(mt_store_merge(fresh, ins5, 2, NULL, err, sizeof err) != 0, "broken input must fail");
    st = open_ro(fresh);
    CHECK(st && tu_int(mt_store_db(st), "SELECT count(*) FROM runs") == 0,
          "nothing of the first input stays");
    mt_store_close(st);
    const char *ins3[] = {out};
    CHECK(mt_store_merge(out, ins3, 1, NULL, err, sizeof err) != 0, "output as input");
    CHECK(tu_unchanged(&before, out), "output changed");
    return 0;
}

/* The resume policy of store.h: a killed harness leaves 'running' rows; they become
 * 'interrupted' and stay; the redo is a new row; exactly one ok per (config_key, repeat). */
static int test_interrupted(void)
{
    char path[1024];
    struct mt_store *st = open_new("i.db", path, sizeof path);
    CHECK(st, "open");
    mt_store_close(st);

    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        /* The "harness": one run committed as running with a metric, then a batch left
         * half-written when SIGKILL arrives. */
        struct mt_store *c = open_rw(path);
        int64_t run;
        struct fixture_run r = {"q", "q?k=1", 0, MT_RUN_RUNNING, 2.0, NAN, NAN};
        if (!c || add_run(c, 0, &r, &run) != 0 || mt_store_begin(c) != 0) _exit(3);
        for (int i = 0; i < 1000; i++)
            mt_store_sample(c, run, 0, "heap", i, i, NULL);
        raise(SIGKILL);
        _exit(4);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
          "child status %d", status);

    st = open_rw(path);
    CHECK(st, "reopen after kill");
    OK(st, mt_store_integrity_check(st));
    sqlite3 *db = mt_store_db(st);
    CHECK(tu_int(db, "SELECT count(*) FROM samples") == 0, "uncommitted batch gone");
    CHECK(mt_store_find_ok(st, "q?k=1", 0, NULL) == 0, "not ok yet");
    size_t n = 99;
    OK(st, mt_store_mark_interrupted_running(st, NULL, &n));
    CHECK(n == 1, "marked %zu", n);
    CHECK(tu_int(db, "SELECT count(*) FROM runs WHERE status = 'interrupted' AND error IS NOT NULL"
                     " AND finished_at IS NOT NULL") == 1,
          "interrupted row");
    /* Resume: redo as a new row. */
    int64_t redo, found;
    struct fixture_run r = {"q", "q?k=1", 0, MT_RUN_OK, 1.9, NAN, NAN};
    CHECK(mt_store_find_ok(st, "q?k=1", 0, NULL) == 0, "still not ok");
    CHECK(add_run(st, 0, &r, &redo) == 0, "redo");
    CHECK(mt_store_find_ok(st, "q?k=1", 0, &found) == 1 && found == redo, "redo is the ok row");
    CHECK(mt_store_find_ok(st, "q?k=1", 1, NULL) == 0, "other repeat not ok");
    OK(st, mt_store_mark_interrupted_running(st, "again", &n));
    CHECK(n == 0, "nothing left running");
    CHECK(tu_int(db, "SELECT count(*) FROM runs WHERE config_key = 'q?k=1' AND status = 'ok'") == 1,
          "one ok");
    CHECK(tu_int(db, "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id"
                     " WHERE r.status = 'interrupted' AND m.name = 'val_bpb'") == 1,
          "what the interrupted run reported is kept");
    mt_store_close(st);
    return 0;
}

/* `memtrade query` while a sweep writes: a reader opened during an open write transaction
 * sees the committed rows only and never waits; a second writer waits for the lock. */
static int test_concurrent(void)
{
    char path[1024];
    int64_t run;
    struct fixture_run r = {"q", "q?k=1", 0, MT_RUN_OK, 2.0, 100, NAN};
    struct mt_store *w = open_new_with_run("c.db", path, sizeof path, &r, &run);
    CHECK(w, "writer, add a run");
    OK(w, mt_store_begin(w));
    struct fixture_run r2 = {"q", "q?k=2", 0, MT_RUN_RUNNING, NAN, NAN, NAN};
    CHECK(add_run(w, 0, &r2, &run) == 0, "uncommitted run");
    struct mt_store *rd = open_ro(path);
    CHECK(rd, "reader during a write transaction");
    EXPECT_OUTPUT(rd, "n\n1\n", out,
                  mt_store_query_sql(rd, "SELECT count(*) AS n FROM runs", MT_FORMAT_CSV, out));
    OK(w, mt_store_commit(w));
    EXPECT_OUTPUT(rd, "n\n2\n", out,
                  mt_store_query_sql(rd, "SELECT count(*) AS n FROM runs", MT_FORMAT_CSV, out));
    CHECK(mt_store_begin(w) == 0 && mt_store_begin(w) != 0, "begin is not nestable");
    OK(w, mt_store_rollback(w));
    mt_store_close(rd);
    mt_store_close(w);
    return 0;
}

/* ---------------------------------------------------------------- formats */

static int format_sql(sqlite3 *db, const char *sql, enum mt_store_format fmt, const char *want)
{
    sqlite3_stmt *s;
    CHECK(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    struct tu_cap c;
    tu_cap_open(&c);
    char err[256];
    int rc = mt_format_stmt(s, fmt, c.f, err, sizeof err);
    sqlite3_finalize(s);
    CHECK(rc == 0, "%s", err);
    const char *got = tu_cap_text(&c);
    int same = strcmp(got, want) == 0;
    if (!same) fprintf(stderr, "want:\n%s\ngot:\n%s\n", want, got);
    tu_cap_free(&c);
    CHECK(same, "format %d", (int)fmt);
    return 0;
}

static int test_format(void)
{
    sqlite3 *db;
    CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK, "mem");
    const char *sql = "SELECT 'a,b' AS \"c,1\", 'say \"hi\"' AS q, 'l1' || char(10) || 'l2' AS nl,"
                      " 'h\xc3\xa9llo \xe2\x9c\x93' AS u, NULL AS n, 42 AS i, 1.5 AS r,"
                      " 'tab' || char(9) || char(1) AS c, ' pad' AS sp, 0.1 AS t"
                      " UNION ALL SELECT '', 'x', 'y', 'z', 1, -7, 1e300, 'back\\slash', 's', 1e-7";
    if (format_sql(
            db, sql, MT_FORMAT_CSV,
            "\"c,1\",q,nl,u,n,i,r,c,sp,t\n"
            "\"a,b\",\"say \"\"hi\"\"\",\"l1\nl2\",h\xc3\xa9llo \xe2\x9c\x93,,42,1.5,tab\t\x01,"
            "\" pad\",0.1\n"
            ",x,y,z,1,-7,1e+300,back\\slash,s,1e-07\n"))
        return 1;
    if (format_sql(db, sql, MT_FORMAT_JSON,
                   "[\n {\"c,1\": \"a,b\", \"q\": \"say \\\"hi\\\"\", \"nl\": \"l1\\nl2\","
                   " \"u\": \"h\xc3\xa9llo \xe2\x9c\x93\", \"n\": null, \"i\": 42, \"r\": 1.5,"
                   " \"c\": \"tab\\t\\u0001\", \"sp\": \" pad\", \"t\": 0.1},\n"
                   " {\"c,1\": \"\", \"q\": \"x\", \"nl\": \"y\", \"u\": \"z\", \"n\": 1,"
                   " \"i\": -7, \"r\": 1e+300, \"c\": \"back\\\\slash\", \"sp\": \"s\","
                   " \"t\": 1e-07}\n]\n"))
        return 1;
    if (format_sql(db,
                   "SELECT 'h\xc3\xa9' AS name, 1234 AS count, NULL AS x"
                   " UNION ALL SELECT 'a' || char(10) || 'b', 5, 2.5",
                   MT_FORMAT_TABLE,
                   "name  count    x\n"
                   "----  -----  ---\n"
                   "h\xc3\xa9     1234    -\n"
                   "a\\nb      5  2.5\n"))
        return 1;
    /* Byte columns read in binary units in tables only; csv keeps the exact number. */
    const char *bytes_sql = "SELECT 1536 AS peak_bytes, 100 AS bytes, 3221225472.0 AS model_bytes,"
                            " 2048 AS n";
    if (format_sql(db, bytes_sql, MT_FORMAT_TABLE,
                   "peak_bytes  bytes  model_bytes     n\n"
                   "----------  -----  -----------  ----\n"
                   "   1.5 KiB    100      3.0 GiB  2048\n") ||
        format_sql(db, bytes_sql, MT_FORMAT_CSV,
                   "peak_bytes,bytes,model_bytes,n\n1536,100,3221225472,2048\n"))
        return 1;
    if (format_sql(db, "SELECT 1 AS a WHERE 0", MT_FORMAT_JSON, "[]\n") ||
        format_sql(db, "SELECT 1 AS a WHERE 0", MT_FORMAT_CSV, "a\n"))
        return 1;
    sqlite3_close(db);
    enum mt_store_format f;
    CHECK(mt_store_format_parse("json", &f) == 0 && f == MT_FORMAT_JSON, "parse");
    CHECK(mt_store_format_parse("xml", &f) != 0, "xml");
    return 0;
}

static int test_config_key(void)
{
    struct mt_store_kv p[] = {
        {"seed", "1"}, {"bits", "4"}, {"a b", "x&y=z?%"}, {"model", "gpt-tiny/1.0,\xc3\xa9"}};
    char err[256];
    char *k = mt_store_config_key("quantize", p, 4, err, sizeof err);
    CHECK(k, "%s", err);
    CHECK(strcmp(k, "quantize?a%20b=x%26y%3Dz%3F%25&bits=4&model=gpt-tiny/1.0,%C3%A9&seed=1") == 0,
          "%s", k);
    free(k);
    struct mt_store_kv q[] = {
        {"bits", "4"}, {"seed", "1"}, {"model", "gpt-tiny/1.0,\xc3\xa9"}, {"a b", "x&y=z?%"}};
    char *k2 = mt_store_config_key("quantize", q, 4, err, sizeof err);
    k = mt_store_config_key("quantize", p, 4, err, sizeof err);
    CHECK(k && k2 && strcmp(k, k2) == 0, "order must not matter");
    free(k);
    free(k2);
    k = mt_store_config_key("baseline", NULL, 0, err, sizeof err);
    CHECK(k && strcmp(k, "baseline") == 0, "no params");
    free(k);
    struct mt_store_kv d[] = {{"a", "1"}, {"a", "2"}};
    CHECK(!mt_store_config_key("w", d, 2, err, sizeof err) && strstr(err, "'a' given twice"),
          "duplicate: %s", err);
    enum mt_run_status s;
    CHECK(mt_run_status_parse("timeout", &s) == 0 && s == MT_RUN_TIMEOUT, "status");
    CHECK(strcmp(mt_run_status_name(MT_RUN_INTERRUPTED), "interrupted") == 0, "status name");
    CHECK(mt_run_status_parse("bogus", &s) != 0, "bogus status");
    return 0;
}

/* show, compare, sites, folded and runs on a small fixture, exact text. */
static int test_readers(void)
{
    char path[1024];
    struct mt_store *st = open_new("r.db", path, sizeof path);
    CHECK(st, "open");
    int64_t r1, r2;
    struct fixture_run a = {"q", "q?k=1", 0, MT_RUN_OK, 2.0, 100, NAN};
    struct fixture_run b = {"q", "q?k=2", 0, MT_RUN_FAILED, 1.0, 50, NAN};
    CHECK(add_run(st, 0, &a, &r1) == 0 && add_run(st, 0, &b, &r2) == 0, "runs");
    CHECK(add_profile(st, r1, 0) == 0, "profile");
    OK(st, mt_store_metric_unavailable(st, r2, -1, "peak_rss_bytes", "bytes", "killed"));
    OK(st, mt_store_metric(st, r1, -1, "peak_rss_bytes", 0, "bytes"));
    mt_store_close(st);
    st = open_ro(path);
    CHECK(st, "ro");

    struct tu_cap c;
    const char *want = "rank,name,category,unit,a,b,ratio,a_unavailable,b_unavailable\n"
                       "-1,infer_peak_bytes,,bytes,100,50,0.5,,\n"
                       "-1,peak_rss_bytes,,bytes,0,,,,killed\n"
                       "-1,val_bpb,,bits/byte,2,1,0.5,,\n";
    EXPECT_OUTPUT(st, want, out, mt_store_query_compare(st, r1, r2, MT_FORMAT_CSV, out));

    want = "rank,category,stack_id,allocs,bytes,peak_bytes,temporary,leaked_bytes,leaked_allocs,"
           "estimated,space,frames\n"
           "0,weights,2,1,65536,65536,0,100,1,0,host,libc.so.6+? <- forward (model.c:200) <- main "
           "(main.c:5)\n";
    EXPECT_OUTPUT(st, want, out, mt_store_query_sites(st, r1, 1, MT_FORMAT_CSV, out));

    struct mt_store_runs_filter f = {.status = "failed"};
    tu_cap_open(&c);
    OK(st, mt_store_query_runs(st, &f, MT_FORMAT_JSON, c.f));
    CHECK(strstr(tu_cap_text(&c), "\"id\": 2, \"sweep_id\": null, \"workload\": \"q\"") &&
              !strstr(c.buf, "\"id\": 1,"),
          "runs:\n%s", c.buf);
    tu_cap_free(&c);

    tu_cap_open(&c);
    OK(st, mt_store_query_show(st, r1, MT_FORMAT_JSON, c.f));
    const char *show = tu_cap_text(&c);
    CHECK(strncmp(show, "{\"run\": {\"id\": 1,", 17) == 0, "show json: %.60s", show);
    CHECK(strstr(show, "\"params\": [\n {\"key\": \"bits\", \"value\": \"4\"}"), "params %s", show);
    CHECK(
        strstr(show,
               "{\"rank\": 0, \"path\": \"train/step/forward\", \"counter\": \"PAPI_L1_DCM\","
               " \"category\": \"\", \"value\": null, \"unavailable\": \"no hardware counters\"}"),
        "counters %s", show);
    CHECK(show[strlen(show) - 2] == '}', "show ends with an object");
    tu_cap_free(&c);

    tu_cap_open(&c);
    CHECK(mt_store_query_show(st, 77, MT_FORMAT_TABLE, c.f) != 0 &&
              strstr(mt_store_error(st), "no run 77"),
          "show of a missing run: %s", mt_store_error(st));
    tu_cap_free(&c);

    /* Names with spaces or ';' must not break the folded format. */
    struct mt_store *w = open_rw(path);
    CHECK(w, "rw");
    struct mt_store_frame odd[] = {
        {"operator new(unsigned long)", "/usr/lib/libstdc++.so.6", NULL, -1, NULL},
        {"a;b", NULL, NULL, -1, NULL},
        {NULL, NULL, NULL, -1, NULL}};
    int64_t odd_stack;
    OK(w, mt_store_stack_from_frames(w, odd, 3, &odd_stack));
    struct mt_store_alloc_site os = {0, odd_stack, "other", 3, 30, 0, 0, 0, 0, 0, NULL};
    OK(w, mt_store_alloc_site(w, r2, &os));
    mt_store_close(w);
    EXPECT_OUTPUT(st, "[unknown];a_b;operator_new(unsigned_long) 30\n", out,
                  mt_store_query_folded(st, r2, MT_FOLDED_BYTES, out));
    EXPECT_OUTPUT(st, "", out, mt_store_query_folded(st, r2, MT_FOLDED_PEAK_BYTES, out));

    EXPECT_OUTPUT(st, "main;forward;mt_alloc 10\nmain;forward;libc.so.6+? 1\n", out,
                  mt_store_query_folded(st, r1, MT_FOLDED_ALLOCS, out));
    mt_store_close(st);
    return 0;
}

/* ---------------------------------------------------------------- main */

int test_reader(void);      /* test_reader.c */
int test_pareto_mark(void); /* test_reader.c */

static const struct {
    const char *name;
    int (*fn)(void);
} tests[] = {
    {"reopen", test_reopen},           {"migrate", test_migrate},
    {"migrate_v3", test_migrate_v3},   {"refuse", test_refuse},
    {"unavailable", test_unavailable}, {"sql_guard", test_sql_guard},
    {"pareto", test_pareto},           {"merge", test_merge},
    {"interrupted", test_interrupted}, {"format", test_format},
    {"config_key", test_config_key},   {"readers", test_readers},
    {"concurrent", test_concurrent},   {"reader", test_reader},
    {"pareto_mark", test_pareto_mark},
};

int main(int argc, char **argv)
{
    int failed = 0, ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0) continue;
        ran++;
        int rc = tests[i].fn();
        fprintf(stderr, "%s: %s\n", tests[i].name, rc ? "FAILED" : "ok");
        failed |= rc;
    }
    if (!ran) {
        fprintf(stderr, "unknown test %s\n", argc > 1 ? argv[1] : "");
        return 2;
    }
    if (!failed)
        tu_cleanup();
    else
        fprintf(stderr, "scratch files kept in %s\n", tu_dir());
    return failed;
}
