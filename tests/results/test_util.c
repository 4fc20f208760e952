/* tests/results/test_util.c — scratch folder, file snapshots and output capture for the
 * store tests. Not for anything outside tests/results/. */
#define _GNU_SOURCE
#include "test_util.h"

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[512];
static char pathbuf[1024];

const char *tu_dir(void)
{
    if (!scratch[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(scratch, sizeof scratch, "%s/mt_store_test.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(scratch)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return scratch;
}

const char *tu_path(const char *name)
{
    snprintf(pathbuf, sizeof pathbuf, "%s/%s", tu_dir(), name);
    return pathbuf;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void tu_cleanup(void)
{
    if (scratch[0]) nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct tu_blob tu_read(const char *path)
{
    struct tu_blob b = {NULL, (size_t)-1};
    FILE *f = fopen(path, "rb");
    if (!f) return b;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b.data = malloc((size_t)n + 1);
    b.n = fread(b.data, 1, (size_t)n, f);
    fclose(f);
    return b;
}

int tu_unchanged(struct tu_blob *before, const char *path)
{
    struct tu_blob now = tu_read(path);
    int same =
        now.n == before->n && now.n != (size_t)-1 && memcmp(now.data, before->data, now.n) == 0;
    free(now.data);
    free(before->data);
    before->data = NULL;
    return same;
}

int tu_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

int tu_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

void tu_cap_open(struct tu_cap *c)
{
    c->buf = NULL;
    c->n = 0;
    c->f = open_memstream(&c->buf, &c->n);
}

const char *tu_cap_text(struct tu_cap *c)
{
    if (c->f) {
        fclose(c->f);
        c->f = NULL;
    }
    return c->buf ? c->buf : "";
}

void tu_cap_free(struct tu_cap *c)
{
    if (c->f) fclose(c->f);
    free(c->buf);
    c->f = NULL;
    c->buf = NULL;
}

long long tu_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    long long v = -999999;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "tu_int: %s: %s\n", sql, sqlite3_errmsg(db));
        return v;
    }
    if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

char *tu_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    char *v = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "tu_text: %s: %s\n", sql, sqlite3_errmsg(db));
        return strdup("(error)");
    }
    if (sqlite3_step(s) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        v = strdup(t ? t : "(null)");
    }
    sqlite3_finalize(s);
    return v ? v : strdup("(no row)");
}

int tu_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) return -1;
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) fprintf(stderr, "tu_exec: %s\n", msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}
