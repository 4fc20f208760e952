/* results/format.c — rows of a prepared statement as an aligned table, RFC 4180 CSV or JSON.
 *
 * What it is for: every `memtrade query` output goes through format_stmt, so quoting and
 * escaping live in one place and are tested once. What it is not for: choosing columns or
 * building SQL (store_read.c does that).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/grow.h>

#include "format.h"
#include "store_internal.h"

/* Shortest "%.*g" that reads back as the same double; integral values print without a
 * decimal point (within 2^53 they are exact). */
static void real_text(double v, char *buf, size_t len, int table)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, len, "%.0f", v);
        return;
    }
    if (table) {
        snprintf(buf, len, "%.6g", v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* The characters JSON strings write with a short escape, and their escapes. */
static const char *const json_escapes[128] = {
    ['"'] = "\\\"", ['\\'] = "\\\\", ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t"};

void mt_format_json_string(FILE *out, const char *s, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 128 && json_escapes[c])
            fputs(json_escapes[c], out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

void mt_format_csv_field(FILE *out, const char *s, size_t n)
{
    int quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        fwrite(s, 1, n, out);
        return;
    }
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') fputc('"', out);
        fputc(s[i], out);
    }
    fputc('"', out);
}

/* The text of column i of the current row (for csv and table); NULL for SQL NULL. `buf`
 * holds numbers; text and blobs point into the statement or into *heap (hex of a blob). */
static const char *cell_text(sqlite3_stmt *s, int i, char *buf, size_t len, int table, size_t *n,
                             char **heap)
{
    switch (sqlite3_column_type(s, i)) {
    case SQLITE_NULL:
        *n = 0;
        return NULL;
    case SQLITE_INTEGER:
        *n = (size_t)snprintf(buf, len, "%lld", (long long)sqlite3_column_int64(s, i));
        return buf;
    case SQLITE_FLOAT:
        real_text(sqlite3_column_double(s, i), buf, len, table);
        *n = strlen(buf);
        return buf;
    case SQLITE_BLOB: {
        const unsigned char *b = sqlite3_column_blob(s, i);
        size_t bn = (size_t)sqlite3_column_bytes(s, i);
        *heap = malloc(2 * bn + 1);
        if (!*heap) {
            *n = 0;
            return "";
        }
        for (size_t k = 0; k < bn; k++)
            snprintf(*heap + 2 * k, 3, "%02x", b[k]);
        (*heap)[2 * bn] = '\0';
        *n = 2 * bn;
        return *heap;
    }
    default: {
        const char *t = (const char *)sqlite3_column_text(s, i);
        *n = (size_t)sqlite3_column_bytes(s, i);
        return t ? t : "";
    }
    }
}

static int step_error(sqlite3_stmt *s, char *err, size_t errlen)
{
    snprintf(err, errlen, "query failed: %s", sqlite3_errmsg(sqlite3_db_handle(s)));
    return -1;
}

static int format_csv(sqlite3_stmt *s, FILE *out, char *err, size_t errlen)
{
    int nc = sqlite3_column_count(s);
    for (int i = 0; i < nc; i++) {
        const char *name = sqlite3_column_name(s, i);
        if (i) fputc(',', out);
        mt_format_csv_field(out, name, strlen(name));
    }
    fputc('\n', out);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        for (int i = 0; i < nc; i++) {
            char buf[64], *heap = NULL;
            size_t n;
            const char *t = cell_text(s, i, buf, sizeof buf, 0, &n, &heap);
            if (i) fputc(',', out);
            if (t) mt_format_csv_field(out, t, n);
            free(heap);
        }
        fputc('\n', out);
    }
    return rc == SQLITE_DONE ? 0 : step_error(s, err, errlen);
}

static void json_row(sqlite3_stmt *s, FILE *out)
{
    int nc = sqlite3_column_count(s);
    fputc('{', out);
    for (int i = 0; i < nc; i++) {
        const char *name = sqlite3_column_name(s, i);
        if (i) fputs(", ", out);
        mt_format_json_string(out, name, strlen(name));
        fputs(": ", out);
        int type = sqlite3_column_type(s, i);
        char buf[64], *heap = NULL;
        size_t n;
        if (type == SQLITE_NULL ||
            (type == SQLITE_FLOAT && !isfinite(sqlite3_column_double(s, i)))) {
            fputs("null", out);
            continue;
        }
        const char *t = cell_text(s, i, buf, sizeof buf, 0, &n, &heap);
        if (type == SQLITE_INTEGER || type == SQLITE_FLOAT)
            fwrite(t, 1, n, out);
        else
            mt_format_json_string(out, t, n);
        free(heap);
    }
    fputc('}', out);
}

static int format_json(sqlite3_stmt *s, int single, FILE *out, char *err, size_t errlen)
{
    int rc, rows = 0;
    if (!single) fputc('[', out);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (single && rows > 0) break;
        fputs(rows++ ? ",\n " : (single ? "" : "\n "), out);
        json_row(s, out);
    }
    if (single && rows == 0) fputs("null", out);
    if (!single) fputs(rows ? "\n]" : "]", out);
    if (rc == SQLITE_ROW) rc = SQLITE_DONE; /* single: the rest is ignored by contract */
    return rc == SQLITE_DONE ? 0 : step_error(s, err, errlen);
}

/* Table: all cells are collected first so that columns can be aligned. */
struct table {
    int nc;
    size_t rows, cap;
    char **cells;  /* rows * nc, malloc'd, NULL for SQL NULL */
    size_t *width; /* display width per column */
    int *numeric;  /* -1: only NULLs so far; 1: every non-NULL value is a number; 0: text */
};

/* Display width of UTF-8 text: code points, not bytes. */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

/* A copy of the cell with control characters made visible, so one row stays one line. */
static char *table_cell(const char *t, size_t n)
{
    char *c = malloc(2 * n + 1), *p = c;
    if (!c) return NULL;
    for (size_t i = 0; i < n; i++) {
        char e = t[i] == '\n' ? 'n' : t[i] == '\r' ? 'r' : t[i] == '\t' ? 't' : 0;
        if (e) {
            *p++ = '\\';
            *p++ = e;
        } else {
            *p++ = t[i];
        }
    }
    *p = '\0';
    return c;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->rows * (size_t)t->nc; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->width);
    free(t->numeric);
}

static void pad(FILE *out, size_t n)
{
    while (n--)
        fputc(' ', out);
}

static void table_print_row(const struct table *t, FILE *out, char *const *row)
{
    for (int i = 0; i < t->nc; i++) {
        const char *v = row[i] ? row[i] : "-";
        size_t w = display_width(v);
        int last = i == t->nc - 1;
        if (i) fputs("  ", out);
        if (t->numeric[i] == 1) pad(out, t->width[i] - w);
        fputs(v, out);
        if (t->numeric[i] != 1 && !last) pad(out, t->width[i] - w);
    }
    fputc('\n', out);
}

/* Table cells of numeric columns named "...bytes" read as 1.5 KiB, 3.0 GiB (csv and json
 * keep the exact number). `buf` holds the cell's digits (cell_text puts numbers there); it
 * is rewritten for 1 KiB and above, and the new length returned; n is kept otherwise. */
static size_t human_bytes(double v, char *buf, size_t len, size_t n)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (!(fabs(v) >= 1024.0)) return n;
    int u = -1;
    while (fabs(v) >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    return (size_t)snprintf(buf, len, "%.1f %s", v, units[u]);
}

static int format_table(sqlite3_stmt *s, FILE *out, char *err, size_t errlen)
{
    struct table t = {.nc = sqlite3_column_count(s)};
    size_t nc = (size_t)t.nc;
    t.width = calloc(nc ? nc : 1, sizeof *t.width);
    t.numeric = calloc(nc ? nc : 1, sizeof *t.numeric);
    char **header = calloc(nc ? nc : 1, sizeof *header);
    int *is_bytes = calloc(nc ? nc : 1, sizeof *is_bytes);
    int rc = -1, step;
    if (!t.width || !t.numeric || !header || !is_bytes) goto oom;
    for (size_t i = 0; i < nc; i++) {
        header[i] = (char *)sqlite3_column_name(s, (int)i);
        size_t hn = strlen(header[i]);
        is_bytes[i] = hn >= 5 && strcmp(header[i] + hn - 5, "bytes") == 0;
        t.width[i] = display_width(header[i]);
        t.numeric[i] = -1;
    }
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (mt_grow(&t.cells, &t.cap, t.rows + 1, (nc ? nc : 1) * sizeof *t.cells, 64)) goto oom;
        char **row = t.cells + t.rows * nc;
        memset(row, 0, nc * sizeof *row);
        t.rows++;
        for (size_t i = 0; i < nc; i++) {
            char buf[64], *heap = NULL;
            size_t n;
            int type = sqlite3_column_type(s, (int)i);
            const char *v = cell_text(s, (int)i, buf, sizeof buf, 1, &n, &heap);
            if (is_bytes[i] && (type == SQLITE_INTEGER || type == SQLITE_FLOAT))
                n = human_bytes(sqlite3_column_double(s, (int)i), buf, sizeof buf, n);
            if (type == SQLITE_INTEGER || type == SQLITE_FLOAT)
                t.numeric[i] = t.numeric[i] ? 1 : 0;
            else if (type != SQLITE_NULL)
                t.numeric[i] = 0;
            if (v) {
                row[i] = table_cell(v, n);
                free(heap);
                if (!row[i]) goto oom;
                size_t w = display_width(row[i]);
                if (w > t.width[i]) t.width[i] = w;
            }
        }
    }
    if (step != SQLITE_DONE) {
        rc = step_error(s, err, errlen);
        goto done;
    }
    table_print_row(&t, out, header);
    for (size_t i = 0; i < nc; i++) {
        if (i) fputs("  ", out);
        for (size_t k = 0; k < t.width[i]; k++)
            fputc('-', out);
    }
    fputc('\n', out);
    for (size_t r = 0; r < t.rows; r++)
        table_print_row(&t, out, t.cells + r * nc);
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "out of memory while formatting");
done:
    free(header);
    free(is_bytes);
    table_free(&t);
    return rc;
}

/* One row as "column  value" lines: a wide single record (a run) reads better vertically. */
static int format_record(sqlite3_stmt *s, FILE *out, char *err, size_t errlen)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return step_error(s, err, errlen);
    int nc = sqlite3_column_count(s);
    size_t w = 0;
    for (int i = 0; i < nc; i++) {
        size_t n = display_width(sqlite3_column_name(s, i));
        w = n > w ? n : w;
    }
    for (int i = 0; i < nc; i++) {
        const char *name = sqlite3_column_name(s, i);
        char buf[64], *heap = NULL, *cell = NULL;
        size_t n;
        const char *v = cell_text(s, i, buf, sizeof buf, 1, &n, &heap);
        if (v) cell = table_cell(v, n);
        fputs(name, out);
        pad(out, w - display_width(name) + 2);
        fprintf(out, "%s\n", cell ? cell : "-");
        free(cell);
        free(heap);
    }
    return 0;
}

int format_stmt(sqlite3_stmt *stmt, enum mt_store_format fmt, int single, FILE *out, char *err,
                size_t errlen)
{
    if (single && fmt == MT_FORMAT_TABLE) return format_record(stmt, out, err, errlen);
    switch (fmt) {
    case MT_FORMAT_CSV:
        return format_csv(stmt, out, err, errlen);
    case MT_FORMAT_JSON:
        return format_json(stmt, single, out, err, errlen);
    case MT_FORMAT_TABLE:
        return format_table(stmt, out, err, errlen);
    }
    snprintf(err, errlen, "unknown output format %d", (int)fmt);
    return -1;
}

int mt_format_stmt(struct sqlite3_stmt *stmt, enum mt_store_format fmt, FILE *out, char *err,
                   size_t errlen)
{
    int rc = format_stmt(stmt, fmt, 0, out, err, errlen);
    if (rc == 0 && fmt == MT_FORMAT_JSON) fputc('\n', out);
    return rc;
}

int mt_store_format_parse(const char *name, enum mt_store_format *out)
{
    static const char *const names[] = {"table", "csv", "json"};
    for (int i = 0; name && i < 3; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum mt_store_format)i;
            return 0;
        }
    }
    return -1;
}
