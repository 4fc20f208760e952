/* results/store.h — the memtrade results store: one SQLite database per sweep output.
 *
 * What it is for: opening (creating, migrating, refusing) a memtrade database, writing
 * everything a run reports (runs, params, metrics, regions and their counters, samples,
 * logs, tensors, allocation stacks), the canned read queries of `memtrade query`
 * (runs, show, compare, pareto, sites, folded, sql) and `memtrade merge`.
 * What it is not for: knowing any workload, plot or event-stream format. The harness
 * parent is the only writer; children and the heap interposer never link this. Programs
 * that draw or check results read through reader.h (typed rows) and decide fronts with
 * pareto.h; nobody outside results/ holds the SQLite connection.
 *
 * Errors: functions on an open store return 0 on success and -1 on error, and the message
 * (naming the database file) is then in mt_store_error(store) until the next call on that
 * store. Functions without a store (open, merge) take `char *err, size_t errlen` and write
 * a NUL-terminated message there (truncated to errlen; err may be NULL when errlen is 0).
 *
 * Thread safety: a struct mt_store is used by one thread at a time. Different stores on the
 * same file may live in different threads or processes (WAL), with one writer at a time:
 * a read-write store holds the file's writer lock until it is closed (store_guard.c), and
 * a second one is refused with the holder's pid. A writer waits for SQLite's write lock
 * (another connection's transaction) up to mt_store_set_wait's bound (default 600 s);
 * readers wait 10 s.
 *
 * Nullable arguments: a NULL string is stored as SQL NULL, and so are integers in the
 * "no value" range their field comment gives ("-1 = unknown", "<= 0 = none") and doubles
 * documented as "NaN = unknown".
 *
 * How the harness calls it (a sweep):
 *
 *     struct mt_store *st;
 *     char err[512];
 *     if (mt_store_open(db_path, MT_STORE_READWRITE_CREATE, &st, err, sizeof err) != 0)
 *         { fprintf(stderr, "memtrade: %s\n", err); return EXIT_DB; }
 *     size_t n_int;
 *     mt_store_mark_interrupted_running(st, "harness died before the run ended", &n_int);
 *     int64_t sweep;
 *     mt_store_sweep_begin(st, &(struct mt_store_sweep_info){.name = "quick", ...}, &sweep);
 *     for each grid point (key = mt_store_config_key(workload, params, n, ...)):
 *         if (resume && mt_store_find_ok(st, key, repeat, NULL) == 1) continue;
 *         int64_t run;
 *         mt_store_run_begin(st, &(struct mt_store_run_info){...}, &run); // row 'running'
 *         ... child runs; for every batch of events:
 *         mt_store_begin(st); mt_store_metric(...); mt_store_sample(...); ...
 *         mt_store_commit(st);
 *         mt_store_run_finish(st, run, &(struct mt_store_run_end){.status = MT_RUN_OK, ...});
 *     mt_store_sweep_finish(st, sweep);
 *     mt_store_close(st);
 *
 * Resume policy: a run left `running` by a killed harness is marked `interrupted` (with
 * everything it reported kept, as the history of that attempt). --resume then runs that
 * configuration again as a NEW row; the interrupted row stays. Only rows with status 'ok'
 * count: mt_store_find_ok() skips a (config_key, repeat) that has one, so a grid finished
 * by --resume has exactly one 'ok' row per (config_key, repeat) and never a duplicate.
 * Without --resume the harness may record a second 'ok' row for the same configuration
 * (a re-measurement); readers see every ok run.
 */
#ifndef MEMTRADE_RESULTS_STORE_H
#define MEMTRADE_RESULTS_STORE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mt_store;

/* The schema version (PRAGMA user_version) this build creates and migrates up to. */
#define MT_STORE_SCHEMA_VERSION 8

/* ---------------------------------------------------------------- open / close */

enum mt_store_flags {
    MT_STORE_READWRITE_CREATE = 0, /* create the file (and its parent folders), migrate */
    MT_STORE_READONLY = 1          /* SQLITE_OPEN_READONLY; never creates nor migrates */
};

/* Contract: opens the memtrade database at `path` and stores a new handle in *out.
 * READWRITE_CREATE creates missing parent folders and the file, initialises an empty
 * database (schema, meta.application = 'memtrade') and applies pending migrations in one
 * transaction, then sets WAL, foreign_keys=ON, busy_timeout. It refuses, with a message
 * naming the file and leaving it byte-identical: a file that is not SQLite (wrong magic), a
 * truncated SQLite file, an SQLite database that is not a memtrade database (has tables but
 * no meta.application = 'memtrade'), and a database whose user_version is newer than
 * MT_STORE_SCHEMA_VERSION. READWRITE_CREATE also takes the writer lock: while another
 * read-write store (any process) has the file open it fails, naming that process's pid.
 * READONLY additionally refuses a missing or empty file, and reads an older schema
 * through a copy migrated in memory (the file is never written; the copy costs memory of
 * the file's size, once, until a writer migrates the file); it never creates files: where a WAL
 * database has no -wal/-shm files and this process could not create them for the database's owner
 * (another user, a folder it cannot write, a read-only mount), it reads the file immutable (no
 * locks; what a live writer has not yet checkpointed is not seen). Returns 0, or -1 with *out =
 * NULL. */
int mt_store_open(const char *path, enum mt_store_flags flags, struct mt_store **out, char *err,
                  size_t errlen);

/* Contract: rolls back an open transaction, finalizes statements, closes, releases the
 * writer lock. NULL is a no-op. */
void mt_store_close(struct mt_store *st);

/* Contract: how a writer waits when another connection holds SQLite's write lock: with
 * back-off up to max_s seconds per statement, then the statement fails (busy). After the
 * first second of a wait notify(arg, path, max_s) is called once (to say what it waits
 * for); a non-zero *stop ends the wait early. NULLs allowed. */
void mt_store_set_wait(struct mt_store *st, double max_s,
                       void (*notify)(void *arg, const char *path, double max_s), void *arg,
                       volatile sig_atomic_t *stop);

/* Contract: the last error message of `st` (never NULL; "" when none). Owned by `st`. */
const char *mt_store_error(const struct mt_store *st);

/* Contract: the path `st` was opened with. Owned by `st`. */
const char *mt_store_path(const struct mt_store *st);

/* Contract: PRAGMA integrity_check is 'ok' and PRAGMA foreign_key_check returns nothing.
 * Returns 0 when both hold, -1 otherwise (the first problem is in mt_store_error). */
int mt_store_integrity_check(struct mt_store *st);

/* ---------------------------------------------------------------- transactions */

/* Contract: BEGIN IMMEDIATE / COMMIT / ROLLBACK. Not nestable: begin inside an open
 * transaction fails. Writers outside a transaction autocommit each call. */
int mt_store_begin(struct mt_store *st);
int mt_store_commit(struct mt_store *st);
int mt_store_rollback(struct mt_store *st);

/* ---------------------------------------------------------------- statuses, keys */

enum mt_run_status {
    MT_RUN_RUNNING = 0,
    MT_RUN_OK,
    MT_RUN_FAILED,
    MT_RUN_CRASHED,
    MT_RUN_TIMEOUT,
    MT_RUN_OOM,
    MT_RUN_INTERRUPTED
};

/* Contract: "running", "ok", ... (the values of runs.status); NULL for an unknown value. */
const char *mt_run_status_name(enum mt_run_status s);
/* Contract: parses a status name; returns 0, or -1 for an unknown name. */
int mt_run_status_parse(const char *name, enum mt_run_status *out);

struct mt_store_kv {
    const char *key;
    const char *value;
};

/* Contract: the canonical configuration key "workload?k1=v1&k2=v2" with pairs sorted by
 * key (byte order), whatever their input order; "workload" alone when n == 0. Bytes other
 * than [A-Za-z0-9._~,:/+-] in keys and values (and in the workload) are percent-encoded
 * as %XX (uppercase hex), so '&', '=', '?', '%', spaces, newlines and UTF-8 never collide.
 * Returns a malloc'd string the caller frees, or NULL on a duplicate key, a NULL key or
 * value, or out of memory (message in err). Thread-safe. */
char *mt_store_config_key(const char *workload, const struct mt_store_kv *pairs, size_t n,
                          char *err, size_t errlen);

/* ---------------------------------------------------------------- writers: sweeps, runs */

struct mt_store_sweep_info {
    const char *name;       /* required */
    const char *spec_path;  /* the .ini path, or NULL for `memtrade run` */
    const char *spec_text;  /* its full text, or NULL */
    const char *shard;      /* "I/N" or NULL */
    const char *host;       /* NULL: gethostname() */
    const char *facts_json; /* reproduction facts common to the sweep, or NULL */
};

/* Contract: inserts a sweep row (started_at = now, UTC) and returns its id in *id. */
int mt_store_sweep_begin(struct mt_store *st, const struct mt_store_sweep_info *info, int64_t *id);
/* Contract: sets finished_at = now. Fails when no such sweep exists. */
int mt_store_sweep_finish(struct mt_store *st, int64_t sweep_id);

struct mt_store_run_info {
    int64_t sweep_id;                 /* 0: not part of a sweep (NULL) */
    const char *workload;             /* required */
    const char *label;                /* sweep section label, or NULL */
    const char *config_key;           /* required: mt_store_config_key() of the resolved params */
    int repeat;                       /* 0-based */
    int64_t seed;                     /* stored as given */
    int ranks;                        /* <= 0 means 1 */
    int threads;                      /* <= 0 = unknown */
    const char *git_rev;              /* or NULL */
    const char *abi_version;          /* e.g. "1.0", or NULL */
    const char *facts_json;           /* compiler, flags, CPU, kernel, library versions; or NULL */
    const struct mt_store_kv *params; /* resolved parameters, stored in `params` */
    size_t n_params;
};

/* Contract: inserts the run as 'running' (started_at = now) together with its params, in
 * one transaction unless the caller already has one open; returns the new id in *run_id. */
int mt_store_run_begin(struct mt_store *st, const struct mt_store_run_info *info, int64_t *run_id);

/* Contract: adds or replaces one parameter of an existing run. */
int mt_store_param_set(struct mt_store *st, int64_t run_id, const char *key, const char *value);

struct mt_store_run_end {
    enum mt_run_status status; /* anything but MT_RUN_RUNNING */
    int exit_code;             /* -1 = unknown / not exited */
    int signal;                /* <= 0 = none */
    const char *error;         /* the failure text, or NULL */
    double wall_s;             /* NaN = unknown */
};

/* Contract: records the outcome of a run (finished_at = now). Fails for an unknown run or
 * status MT_RUN_RUNNING. */
int mt_store_run_finish(struct mt_store *st, int64_t run_id, const struct mt_store_run_end *end);

/* Contract: looks for a run with status 'ok' and this (config_key, repeat). Returns 1 and
 * its id in *run_id (if not NULL) when found, 0 when not, -1 on error. */
int mt_store_find_ok(struct mt_store *st, const char *config_key, int repeat, int64_t *run_id);

/* Contract: the distinct metric names stored (any rank), sorted, in *names (*n of them;
 * free each and the array with free()). Returns 0, or -1 on error. */
int mt_store_metric_names(struct mt_store *st, char ***names, size_t *n);

/* Contract: the status of run `run_id` in *status. Returns 1 when the run exists, 0 when
 * not, -1 on error. */
int mt_store_run_status(struct mt_store *st, int64_t run_id, enum mt_run_status *status);

/* Contract: turns every row still 'running' into 'interrupted' with error = reason (NULL:
 * "harness stopped before the run ended") and finished_at = now; *count (if not NULL) gets
 * how many. Call it only when no other harness writes this database (at startup of a
 * sweep or run); see the resume policy at the top of this file. */
int mt_store_mark_interrupted_running(struct mt_store *st, const char *reason, size_t *count);

/* ---------------------------------------------------------------- writers: measurements */

/* rank: -1 = the whole run (metrics only), >= 0 = one MPI rank. */

/* Names in one of metrics.h's category forms (`train_peak_weights_bytes`,
 * `heap.live.kv_cache`, `heap_peak_bytes.weights`) are stored as their base name and
 * the memory category (column `category`; '' for a figure of all categories together):
 * metrics, region counters and sample series alike. */

/* Contract: upserts metric (run, rank, name) = value with its unit (required, "" allowed
 * for dimensionless values is discouraged: use "1"). The last write wins. A non-finite
 * value is stored as unavailable with reason "non-finite value (nan|inf|-inf)", so a
 * NaN never becomes 0 or NULL without a reason. 0 is stored as 0. */
int mt_store_metric(struct mt_store *st, int64_t run_id, int rank, const char *name, double value,
                    const char *unit);
/* Contract: upserts metric (run, rank, name) as unavailable: value NULL, reason required. */
int mt_store_metric_unavailable(struct mt_store *st, int64_t run_id, int rank, const char *name,
                                const char *unit, const char *reason);

/* Contract: upserts the region (run, rank, path); name and depth are derived from path
 * ('train/step/forward' -> 'forward', depth 2). cpu_s NaN = unknown. The last write wins
 * for calls and times. Its id goes to *region_id (if not NULL), stable across upserts. */
int mt_store_region(struct mt_store *st, int64_t run_id, int rank, const char *path, int64_t calls,
                    double wall_s, double cpu_s, int64_t *region_id);
/* Contract: upserts one counter of a region; a non-finite value becomes unavailable. */
int mt_store_region_counter(struct mt_store *st, int64_t region_id, const char *counter,
                            double value);
int mt_store_region_counter_unavailable(struct mt_store *st, int64_t region_id, const char *counter,
                                        const char *reason);

/* Contract: appends a sample of `series` (x seconds or step, y). region may be NULL.
 * Non-finite x or y fails (samples have no unavailable form). */
int mt_store_sample(struct mt_store *st, int64_t run_id, int rank, const char *series, double x,
                    double y, const char *region);

/* Contract: appends a log line (t seconds since run start; level "debug|info|warn|error"). */
int mt_store_log(struct mt_store *st, int64_t run_id, int rank, double t, const char *level,
                 const char *text);

/* Contract: upserts a named tensor (run, rank, name) of `category` and size. */
int mt_store_tensor(struct mt_store *st, int64_t run_id, int rank, const char *name,
                    const char *category, int64_t bytes);

struct mt_store_frame {
    const char *function; /* NULL when unknown */
    const char *module;   /* shared object path, or NULL */
    const char *file;     /* source file, or NULL */
    int line;             /* -1 = unknown */
    const char *build_id; /* hex, or NULL; not part of the identity */
};

/* Contract: finds or inserts a frame identified by (function, module, file, line), NULLs
 * comparing equal; returns its id. A build_id given later fills a NULL one. */
int mt_store_frame_id(struct mt_store *st, const struct mt_store_frame *f, int64_t *frame_id);

/* Contract: finds or inserts the stack made of frame ids `frames[0..n)` (innermost first,
 * n >= 1); stacks are deduplicated by a 128-bit hex digest of the id list, checked against
 * the stored frames (a digest collision is reported as an error, never merged). */
int mt_store_stack_id(struct mt_store *st, const int64_t *frames, size_t n, int64_t *stack_id);

/* Contract: mt_store_frame_id for each frame then mt_store_stack_id; the convenient form. */
int mt_store_stack_from_frames(struct mt_store *st, const struct mt_store_frame *frames, size_t n,
                               int64_t *stack_id);

struct mt_store_alloc_site {
    int rank;
    int64_t stack_id;
    const char *category; /* memcat name: "weights", "activations", ... */
    int64_t allocs, bytes, peak_bytes, temporary, leaked_bytes, leaked_allocs;
    int estimated;     /* 1 in sampled mode */
    const char *space; /* "host" (NULL means host), "device", "vmm", "managed", "pinned" */
};

/* Contract: adds the site's figures to the row (run, rank, stack, category, space), creating it
 * at zero. Raw stacks that resolve to the same frames (no line information; two call
 * sites in one function) are one stored site, so their counts add up; so do their
 * peak_bytes, since both were live at the same instant, the global peak. estimated is
 * set if either was. Writing the same report twice counts it twice: a caller that may
 * store a rank again clears it first (mt_store_alloc_sites_clear). */
int mt_store_alloc_site(struct mt_store *st, int64_t run_id, const struct mt_store_alloc_site *s);

/* Contract: deletes the alloc sites of (run, rank), before that rank's reports are stored. */
int mt_store_alloc_sites_clear(struct mt_store *st, int64_t run_id, int rank);

/* ---------------------------------------------------------------- readers */

enum mt_store_format { MT_FORMAT_TABLE = 0, MT_FORMAT_CSV, MT_FORMAT_JSON };

/* Contract: "table" | "csv" | "json" -> format; returns 0, or -1 for anything else. */
int mt_store_format_parse(const char *name, enum mt_store_format *out);

/* Every reader writes to `out` and binds its parameters (no SQL built from user text).
 * table: aligned columns with a header and a rule, NULL shown as '-', numbers in columns
 * whose name ends in "bytes" shown in binary units from 1 KiB up ("1.5 KiB");
 * csv: RFC 4180 (header row, CRLF-free "\n" line ends, fields with , " CR LF quoted, quotes
 * doubled), NULL as an empty field; json: an array of objects, integers and reals as JSON
 * numbers, NULL as null, strings escaped (UTF-8 passed through, control chars \uXXXX).
 * Readers that produce several sections (show) print, in table and csv, each section after
 * a "# name" line and a blank line between sections (the one-row `run` section of show is
 * printed as "column  value" lines in table form); in json one object whose members are
 * the sections. */

struct mt_store_runs_filter {
    int64_t sweep_id;     /* 0: any */
    const char *workload; /* NULL: any */
    const char *status;   /* NULL: any; else a status name */
};
/* Contract: runs (id, sweep_id, workload, label, config_key, repeat, status, exit_code,
 * signal, wall_s, started_at, error) ordered by id. */
int mt_store_query_runs(struct mt_store *st, const struct mt_store_runs_filter *f,
                        enum mt_store_format fmt, FILE *out);

/* Contract: the sections `run` (one row, every column of runs), `params` (key, value),
 * `metrics` (rank, name, category, value, unit, unavailable), `regions` (rank, path,
 * calls, wall_s, cpu_s) and `region_counters` (rank, path, counter, category, value,
 * unavailable). Fails when the
 * run does not exist. */
int mt_store_query_show(struct mt_store *st, int64_t run_id, enum mt_store_format fmt, FILE *out);

/* The threshold of a flagged residual (issue 21): a phase whose heap profiler peak differs
 * from its plan by more than MT_WITNESS_FLAG_FRAC of that peak and more than
 * MT_WITNESS_FLAG_BYTES is flagged by `memtrade query check` and the report. */
#define MT_WITNESS_FLAG_FRAC 0.05
#define MT_WITNESS_FLAG_BYTES 4194304.0

/* Contract: the three witnesses of run `run_id` (harness/witness.h), one row per planned
 * phase and category: plan_bytes (predicted), accounted_bytes (the plugin's own
 * <phase>_peak_bytes), heap_bytes (the heap profiler's peak of region <phase>, rank 0),
 * heap_minus_plan_bytes, and on each phase's total row the kernel's resident peak of
 * the phase (metric <phase>_rss_peak_bytes, or why it is unavailable), the residual metric <phase>_unaccounted_bytes (or why it is
 * unavailable) and `flag` ('over' beyond the threshold above, 'ok' within it). Returns 0,
 * or -1 (unknown run, SQL error; mt_store_error). */
int mt_store_query_check(struct mt_store *st, int64_t run_id, enum mt_store_format fmt, FILE *out);

/* Contract: metrics of run a and run b side by side (rank, name, category, unit, a, b,
 * ratio b/a, a_unavailable, b_unavailable), over the union of their (name, category); ratio NULL
 * when either side is NULL or a is 0. Fails when either run does not exist. */
int mt_store_query_compare(struct mt_store *st, int64_t run_a, int64_t run_b,
                           enum mt_store_format fmt, FILE *out);

struct mt_store_pareto_opts {
    const char *x_metric; /* NULL: "memory_bytes" (tradeoff view's memory column) */
    const char *y_metric; /* NULL: "val_bpb" */
    int x_higher_better;  /* 0: lower is better (default) */
    int y_higher_better;
    int64_t sweep_id; /* 0: every sweep */
    int by_config;    /* 1: one point per configuration, the mean over its ok repeats */
};
/* Contract: the Pareto front of the ok runs with both metrics available (run-level,
 * rank -1; "memory_bytes" means the tradeoff view's column), computed separately per
 * (sweep_id, memory_kind): a run is on the front when no other run of its group is at
 * least as good on both axes and strictly better on one. Columns: sweep_id, memory_kind,
 * run_id, workload, label, config_key, repeat, x, y; ordered by sweep_id, memory_kind, x.
 * With by_config the points are configurations (x, y the means over their repeats that
 * have both metrics; run_id the first such run) and `repeat` becomes `repeats`, the count. */
int mt_store_query_pareto(struct mt_store *st, const struct mt_store_pareto_opts *o,
                          enum mt_store_format fmt, FILE *out);

/* Contract: the top `limit` allocation sites of a run (0: all) by peak_bytes, then bytes:
 * rank, category, stack_id, allocs, bytes, peak_bytes, temporary, leaked_bytes,
 * leaked_allocs, estimated, and `frames`: the innermost symbolized frames
 * "func (file:line) <- caller <- ..." (at most 4). Fails when the run does not exist. */
int mt_store_query_sites(struct mt_store *st, int64_t run_id, size_t limit,
                         enum mt_store_format fmt, FILE *out);

/* Which column of alloc_sites the folded output weighs stacks by. */
enum mt_store_folded_weight {
    MT_FOLDED_PEAK_BYTES = 0,
    MT_FOLDED_BYTES,
    MT_FOLDED_LEAKED_BYTES,
    MT_FOLDED_ALLOCS
};
/* Contract: collapsed stacks for flamegraph tools, one line per stack with a non-zero
 * weight (summed over ranks and categories): "outer;...;inner weight\n", outermost first.
 * A frame prints as its function, else "module+?" basename, else "[unknown]"; ';' and
 * whitespace inside a name become '_'. Lines ordered by stack id. */
int mt_store_query_folded(struct mt_store *st, int64_t run_id, enum mt_store_folded_weight weight,
                          FILE *out);

/* Contract: runs one user-supplied read-only statement and prints its rows. `st` must have
 * been opened MT_STORE_READONLY. Refuses (without running anything): several statements
 * (anything but whitespace/comments after the first), a statement that is not
 * sqlite3_stmt_readonly, and any write, ATTACH/DETACH, PRAGMA with a value, or other
 * non-read action (an authorizer denies them). The database is unchanged afterwards. */
int mt_store_query_sql(struct mt_store *st, const char *sql, enum mt_store_format fmt, FILE *out);

/* ---------------------------------------------------------------- merge */

struct mt_store_merge_stats {
    size_t inputs;
    size_t sweeps;        /* sweeps copied */
    size_t runs;          /* runs copied (new ids) */
    size_t runs_skipped;  /* ok runs whose (config_key, repeat) already had an ok row */
    size_t frames_new;    /* frames not already in the output */
    size_t stacks_new;    /* stacks not already in the output */
    size_t runtime_terms; /* runtime terms read from the inputs (each copied unless the
                           * output holds a measurement of it as recent) */
};

/* Contract: joins shard databases into out_path (created with READWRITE_CREATE rules if
 * missing, or an existing memtrade database that is added to). Each input is opened
 * read-only and refused if it is not a memtrade database, is newer than this build, or is
 * the output itself. Copies sweeps, runs (new ids), params, metrics, regions and their
 * counters, samples, logs, tensors, frames and stacks (deduplicated in the output, ids
 * remapped), alloc_sites and the runtime terms (a term the output has is replaced only by
 * a later measurement of it). A run whose status is 'ok' is skipped (with everything it
 * owns) when the output already has an 'ok' run with the same (config_key, repeat) — from
 * an earlier input or from before — so the output never holds two ok rows from merging;
 * non-ok runs (failed, interrupted, ...) are always copied as history. Everything happens
 * in one transaction: on any error the output keeps its content (an output the merge had to
 * create stays an empty memtrade database) and *stats is zeroed. stats may be NULL. */
int mt_store_merge(const char *out_path, const char *const *in_paths, size_t n,
                   struct mt_store_merge_stats *stats, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
