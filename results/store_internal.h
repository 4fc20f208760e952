/* results/store_internal.h — what store.c, store_read.c, store_merge.c and format.c share.
 *
 * What it is for: the store struct, the statement cache, error helpers and the embedded
 * SQL. What it is not for: anything outside results/ (the public API is store.h).
 */
#ifndef MEMTRADE_RESULTS_STORE_INTERNAL_H
#define MEMTRADE_RESULTS_STORE_INTERNAL_H

#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>

#include "store.h"

/* Embedded by the build from schema.sql and migrations/NNN_name.sql (store_sql.c). */
struct mt_store_migration {
    int version;      /* the user_version the migration brings the database to */
    const char *name; /* "002_indexes_and_run_metrics" */
    const char *sql;
};
extern const char *const mt_store_schema_sql;                 /* version 1 */
extern const struct mt_store_migration mt_store_migrations[]; /* ends with {0, NULL, NULL} */

/* Cached prepared statements of the writers, prepared on first use. */
enum store_stmt {
    SS_SWEEP_INS,
    SS_SWEEP_FIN,
    SS_RUN_INS,
    SS_PARAM_UPS,
    SS_RUN_FIN,
    SS_FIND_OK,
    SS_METRIC_UPS,
    SS_REGION_UPS,
    SS_RCOUNTER_UPS,
    SS_SAMPLE_INS,
    SS_LOG_INS,
    SS_TENSOR_UPS,
    SS_FRAME_FIND,
    SS_FRAME_INS,
    SS_FRAME_BUILD_ID,
    SS_STACK_FIND,
    SS_STACK_FRAMES,
    SS_STACK_INS,
    SS_STACK_FRAME_INS,
    SS_SITE_UPS,
    SS_SITE_CLEAR,
    SS_COUNT
};

struct mt_store {
    sqlite3 *db;
    char *path;
    int readonly;
    sqlite3_stmt *stmt[SS_COUNT];
    char err[1024];
    int lock_fd;               /* writers: the flock of store_guard.c; -1 = none */
    double wait_s, busy_since; /* bound of a wait for SQLite's write lock; its start */
    int busy_told;             /* this wait was announced */
    void (*wait_notify)(void *arg, const char *path, double max_s);
    void *wait_arg;
    volatile sig_atomic_t *wait_stop;
};

/* The underlying connection: results/ and tests that inspect the file only (everything
 * else reads through reader.h). Owned by `st`; do not close it; do not write through it. */
sqlite3 *mt_store_db(struct mt_store *st);

/* Sets st->err to "PATH: message" and returns -1. */
int store_fail(struct mt_store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets st->err to "PATH: what: sqlite message" and returns -1. */
int store_fail_sql(struct mt_store *st, const char *what);
/* The cached statement `id`, reset and with bindings cleared; NULL with st->err set. */
sqlite3_stmt *store_stmt(struct mt_store *st, enum store_stmt id);
/* store_stmt with ?1 bound to key (the sweep, run or region the statement writes for). */
sqlite3_stmt *store_stmt_id(struct mt_store *st, enum store_stmt id, int64_t key);
/* Steps a cached write statement to SQLITE_DONE (or ROW for RETURNING) and resets it. */
int store_step_done(struct mt_store *st, sqlite3_stmt *s, const char *what);

/* store_guard.c: the one-writer lock (taken after SQLite opened the file, released after
 * it closed it), the bounded busy wait of writers, and readers that must not create side
 * files (open immutable: store_reader_uri builds the "file:...?immutable=1" name). */
int store_writer_lock(struct mt_store *st);
void store_writer_unlock(struct mt_store *st);
void store_install_wait(struct mt_store *st);
int store_reader_immutable(const char *path);
int store_reader_uri(const char *path, char *buf, size_t cap);

/* Frame and stack lookup that also reports whether a row was created (merge stats). */
int store_frame_id(struct mt_store *st, const struct mt_store_frame *f, int64_t *id, int *created);
int store_stack_id(struct mt_store *st, const int64_t *frames, size_t n, int64_t *id, int *created);

/* Formats: like mt_format_stmt. With `single` only the first row is printed, as a JSON
 * object instead of an array, or in table form as "column  value" lines. */
int format_stmt(sqlite3_stmt *stmt, enum mt_store_format fmt, int single, FILE *out, char *err,
                size_t errlen);

/* "module+?" style label of a frame (used by sites and folded): function when known, else
 * the basename of module followed by "+?", else "[unknown]". Writes to buf. */
void store_frame_label(const char *function, const char *module, char *buf, size_t buflen);

#endif
