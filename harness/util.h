/* harness/util.h — small text helpers the harness commands share: byte sizes with
 * suffixes, durations, edit distance for "did you mean", number canonicalisation.
 * Not for: anything with state; every function here is pure and thread-safe. */
#ifndef MT_HARNESS_UTIL_H
#define MT_HARNESS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* MT_ASAN is 1 in AddressSanitizer builds: ASan reserves terabytes of address space (so
 * RLIMIT_AS cannot cap memory) and owns malloc (so the heap profiler cannot be
 * preloaded). */
#if defined(__SANITIZE_ADDRESS__)
#define MT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MT_ASAN 1
#endif
#endif

/* Contract: parses a byte size: a non-negative number (may have a fraction) and an
 * optional suffix, case-insensitive: B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB. Every
 * suffix is binary (K = 1024), as memory sizes are. Returns 0 and sets *out, or -1 on a
 * malformed or overflowing value. */
int mt_util_parse_bytes(const char *text, uint64_t *out);

/* Contract: parses a duration in seconds: a non-negative number with an optional suffix
 * s, m, h (e.g. "90", "1.5m"). Returns 0 and sets *out, or -1. */
int mt_util_parse_seconds(const char *text, double *out);

/* Contract: formats a byte count for people ("1.5 GiB") into buf; returns buf. */
char *mt_util_fmt_bytes(char *buf, size_t cap, double bytes);

/* Contract: edit distance (insert, delete, substitute, adjacent swap) between a and b;
 * inputs longer than 255 bytes count as far apart. */
size_t mt_util_edit_distance(const char *a, const char *b);

/* Contract: among `n` candidates, the one nearest to `word` if it is near enough to be a
 * plausible typo (distance <= max(2, len/3)), else NULL. Returns a pointer into
 * candidates. */
const char *mt_util_nearest(const char *word, const char *const *candidates, size_t n);

/* Contract: writes the n names to buf (cap bytes, truncated with "...") as "a, b, c",
 * nearest to `word` first (edit distance, then alphabetical). Returns buf. */
char *mt_util_names_nearest_first(const char *word, const char *const *names, size_t n, char *buf,
                                  size_t cap);

/* Contract: parses a strict decimal integer (optional sign, no trailing text). */
int mt_util_parse_i64(const char *text, int64_t *out);
/* Contract: parses a strict finite floating-point number (no trailing text). */
int mt_util_parse_double(const char *text, double *out);

/* Contract: the shortest "%.Ng" text that reads back to exactly `v`; into buf (>= 32). */
char *mt_util_fmt_double_short(char *buf, size_t cap, double v);

/* Contract: trims ASCII whitespace on both ends, in place; returns the new start. */
char *mt_util_trim(char *s);

/* A growable list of strings it owns, kept NULL-terminated (v[n] == NULL once one was
 * pushed), so that v serves as an argv. */
struct mt_util_strv {
    char **v;
    size_t n, cap;
};
/* Contract: appends a copy of s; 0, or -1 when out of memory (the list is unchanged). */
int mt_util_strv_push(struct mt_util_strv *a, const char *s);
/* Contract: frees every string and the array; the list is empty again. */
void mt_util_strv_free(struct mt_util_strv *a);

#endif
