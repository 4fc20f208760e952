/* harness/events.h — the event stream from a run's child (or each MPI rank) to the parent.
 *
 * What it is for: a child reports everything (metrics, samples, logs, regions, progress,
 * its own end or crash) by appending lines to its own file, `events.<rank>` in the run's
 * scratch folder, with one write(2) per line on an O_APPEND descriptor. Appends of one
 * line are atomic with respect to each other, so any thread (and a fatal-signal handler)
 * may write; whatever was written before the child died is still in the file. The parent
 * tails the file for progress and ingests it into the store when the run ends.
 * What it is not for: the database, or talking back to the child.
 *
 * Line format (version 1):
 *
 *     TAG <TAB> field <TAB> field ... <LF>
 *
 * TAG is one ASCII letter (see enum mt_event_tag). Fields are text with four escapes:
 * backslash -> "\\", TAB -> "\t", LF -> "\n", CR -> "\r"; any other byte is itself.
 * Numbers are written with "%.17g" (so they round-trip exactly; "nan" and "inf" are
 * allowed). A line that does not end in LF (the writer died mid-line) is ignored; so is a
 * line with an unknown tag or the wrong field count, so the format can grow by adding
 * tags. Lines are at most MT_EVENT_LINE_MAX bytes: longer fields are cut at a character
 * boundary, never inside an escape.
 */
#ifndef MT_HARNESS_EVENTS_H
#define MT_HARNESS_EVENTS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define MT_EVENT_LINE_MAX 8192
#define MT_EVENT_MAX_FIELDS 8

/* Tags and their fields. */
enum mt_event_tag {
    MT_EV_HELLO = 'H',     /* pid rank nranks abi: the child is up */
    MT_EV_METRIC = 'M',    /* name value unit */
    MT_EV_METRIC_NA = 'N', /* name unit reason */
    MT_EV_SAMPLE = 'S',    /* series x y region ("" when none) */
    MT_EV_LOG = 'L',       /* t level text (t: seconds since the run started) */
    MT_EV_ERROR = 'E',     /* text errno (errno when mt_error was called) */
    MT_EV_PROGRESS = 'P',  /* done total */
    MT_EV_REGION = 'R',    /* path depth calls wall_s cpu_s ("" when unknown) */
    MT_EV_COUNTER = 'C',   /* region_path counter value reason (value "" when unavailable) */
    MT_EV_FACT = 'F',      /* key value: a reproduction fact only the child knows */
    MT_EV_DONE = 'D',      /* rc maxrss_bytes vmpeak_bytes: run() returned rc */
    MT_EV_FATAL = 'X'      /* signo errno maxrss_bytes vmpeak_bytes: fatal signal caught */
};

/* One decoded line. Field pointers point into the caller's line buffer (decoded in
 * place), valid while that buffer is. */
struct mt_event {
    char tag;
    size_t nfields;
    const char *field[MT_EVENT_MAX_FIELDS];
};

/* Contract: encodes TAG and `n` fields (n <= MT_EVENT_MAX_FIELDS) into `buf` (capacity
 * `cap` >= 3), including the final LF and a NUL after it; returns the line length without
 * the NUL. Fields that do not fit are cut (whole characters only). Never allocates,
 * async-signal-safe. NULL fields are written as empty. */
size_t mt_events_encode(char *buf, size_t cap, char tag, const char *const *fields, size_t n);

/* Contract: decodes one line (without its LF) in place: unescapes fields into `line`
 * itself and fills `ev`. Returns 0, or -1 when the line is empty, has a TAG that is not
 * one letter, or more than MT_EVENT_MAX_FIELDS fields. Unknown escapes keep the escaped
 * byte. Thread-safe, no allocation. */
int mt_events_decode(char *line, struct mt_event *ev);

/* Contract: the number of fields each known tag must have, or 0 for unknown tags. */
size_t mt_events_arity(char tag);

/* Contract: encodes and writes one event with a single write(2) on `fd` (retrying on
 * EINTR). Returns 0 or -1 with errno. Async-signal-safe, no allocation. */
int mt_events_write(int fd, char tag, const char *const *fields, size_t n);

/* Contract: the errno of the first mt_events_write of this process that failed, or 0.
 * Async-signal-safe. A child that lost an event must not end as if it had reported. */
int mt_events_write_errno(void);

/* Contract: formats `v` with "%.17g" into `buf` (>= 32 bytes); returns buf. */
char *mt_events_fmt_double(char *buf, size_t cap, double v);

/* Contract: async-signal-safe decimal formatting of a signed integer into `buf` (>= 24
 * bytes); returns buf. */
char *mt_events_fmt_i64(char *buf, long long v);

/* Incremental reader of one event file: reads what was appended since the last call and
 * hands complete, well-formed lines (known tag, right arity) to a callback. */
struct mt_events_reader {
    char *path; /* owned */
    off_t offset;
    char *partial; /* owned: bytes after the last LF read so far */
    size_t partial_len;
    size_t bad_lines; /* lines ignored: malformed, unknown tag or wrong arity */
};

typedef int (*mt_events_fn)(void *arg, const struct mt_event *ev);

/* Contract: initialises `r` for `path` (copied). Returns 0 or -1 (ENOMEM). */
int mt_events_reader_init(struct mt_events_reader *r, const char *path);
/* Contract: reads new complete lines and calls `fn` for each valid one; a missing file is
 * not an error (nothing appended yet). Every complete line is consumed; returns 0, -1 on a
 * read error (errno), or else the first non-zero value `fn` returned. */
int mt_events_reader_poll(struct mt_events_reader *r, mt_events_fn fn, void *arg);
/* Contract: frees what the reader owns. */
void mt_events_reader_free(struct mt_events_reader *r);

#endif
