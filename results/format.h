/* results/format.h — prints the rows of any prepared SQLite statement as a table, CSV or JSON.
 *
 * What it is for: the one place that turns query results into text for `memtrade query`
 * (aligned table, RFC 4180 CSV, JSON array of objects). What it is not for: building SQL,
 * or the folded-stack format (see store.c). Thread-safe as long as the statement is not
 * shared.
 */
#ifndef MEMTRADE_RESULTS_FORMAT_H
#define MEMTRADE_RESULTS_FORMAT_H

#include <stddef.h>
#include <stdio.h>

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sqlite3_stmt;

/* Contract: steps `stmt` (already bound, not yet stepped) to completion and prints every
 * row in `fmt` to `out`; resets nothing and does not finalize. table buffers all rows to
 * align columns; csv and json stream. NULL: '-' in table, empty in csv, null in json;
 * integers and reals are JSON numbers (a non-finite real becomes null); blobs print as
 * hex strings. Returns 0, or -1 with a message in err (a step error or out of memory). */
int mt_format_stmt(struct sqlite3_stmt *stmt, enum mt_store_format fmt, FILE *out, char *err,
                   size_t errlen);

/* Contract: writes `s` (UTF-8, n bytes) as a JSON string literal with quotes: '"' and '\\'
 * escaped, control characters as \n, \t, \r or \u00XX, everything else passed through. */
void mt_format_json_string(FILE *out, const char *s, size_t n);

/* Contract: writes `s` as one CSV field: quoted (with '"' doubled) when it contains a
 * comma, a quote, CR or LF, or starts/ends with a space; as is otherwise. */
void mt_format_csv_field(FILE *out, const char *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif
