/* tests/results/test_util.h — tiny helpers shared by the store tests.
 *
 * What it is for: a CHECK macro that reports file:line and fails the test, a scratch
 * folder, whole-file snapshots (to prove a refused file is byte-identical) and capturing
 * a reader's output in memory. What it is not for: anything outside tests/results/.
 */
#ifndef MEMTRADE_TESTS_RESULTS_UTIL_H
#define MEMTRADE_TESTS_RESULTS_UTIL_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_check.h"
#include "store.h"

#define CHECK(cond, ...) MT_CHECK_OR(return 1, cond, #cond, __VA_ARGS__)

/* Runs a store call that must succeed; prints the store's error otherwise. */
#define OK(st, call) CHECK((call) == 0, "%s", mt_store_error(st))

/* Runs `call`, a reader that writes to the FILE * named OUT, and checks that it succeeds
 * and prints exactly `want` (both texts are shown when not). */
#define EXPECT_OUTPUT(st, want, OUT, call)                                                         \
    do {                                                                                           \
        struct tu_cap cap_;                                                                        \
        tu_cap_open(&cap_);                                                                        \
        FILE *OUT = cap_.f;                                                                        \
        int rc_ = (call);                                                                          \
        const char *got_ = tu_cap_text(&cap_), *want_ = (want);                                    \
        int same_ = rc_ == 0 && strcmp(got_, want_) == 0;                                          \
        if (!same_)                                                                                \
            fprintf(stderr, "want:\n%s\ngot (rc %d):\n%s\n%s\n", want_, rc_, got_,                 \
                    mt_store_error(st));                                                           \
        tu_cap_free(&cap_);                                                                        \
        CHECK(same_, "output of %s", #call);                                                       \
    } while (0)

/* A fresh scratch folder (removed by tu_cleanup) and paths inside it. */
const char *tu_dir(void);
/* Returns a static buffer holding "<dir>/<name>"; copy it before the next call. */
const char *tu_path(const char *name);
void tu_cleanup(void);

/* The whole content of a file; n = (size_t)-1 when it cannot be read. */
struct tu_blob {
    char *data;
    size_t n;
};
struct tu_blob tu_read(const char *path);
/* 1 when the file at path now holds exactly *before (a tu_read of it), else 0; frees
 * *before either way. */
int tu_unchanged(struct tu_blob *before, const char *path);
int tu_write(const char *path, const void *data, size_t n);
int tu_exists(const char *path);

/* Capture of FILE* output: tu_cap_open, write through cap.f, tu_cap_text (closes). */
struct tu_cap {
    FILE *f;
    char *buf;
    size_t n;
};
void tu_cap_open(struct tu_cap *c);
const char *tu_cap_text(struct tu_cap *c);
void tu_cap_free(struct tu_cap *c);

/* One-value SQL helpers over a raw connection (setup and checks outside the store API). */
long long tu_int(sqlite3 *db, const char *sql);
/* Returns a malloc'd copy of the first column of the first row ("(null)" for NULL). */
char *tu_text(sqlite3 *db, const char *sql);
int tu_exec(const char *path, const char *sql);

#endif
