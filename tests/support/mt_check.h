/* mt_check.h — how the test programs under tests/ report a failed expectation.
 *
 * What it is for: the one place that prints a failed check. Each area defines its CHECK
 * in one line with MT_CHECK_OR, choosing what a failure does next: count it and go on
 * (`failures++`), leave the test (`return 1`) or the program (`exit(1)`):
 *     #define CHECK(cond, ...) MT_CHECK_OR(failures++, cond, #cond, __VA_ARGS__)
 * (the area's macro stringifies, so the message shows the condition as written). The
 * output is "file:line: CHECK(cond) failed: message" on stderr. mt_check_status() turns
 * a failure count into main's exit status.
 * What it is not for: a test framework (no registration, fixtures or output parsing).
 * Single-threaded tests only: the counters the areas keep are plain ints.
 */
#ifndef MT_TESTS_CHECK_H
#define MT_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>

/* Prints where a check failed, its condition and the printf-style message. */
static inline void __attribute__((format(printf, 4, 5)))
mt_check_print(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: CHECK(%s) failed: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* When cond is false: prints text (cond as written) with the message (printf format and
 * arguments), then runs the statement on_fail. */
#define MT_CHECK_OR(on_fail, cond, text, ...)                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            mt_check_print(__FILE__, __LINE__, text, __VA_ARGS__);                                 \
            on_fail;                                                                               \
        }                                                                                          \
    } while (0)

/* When call returns non-zero: prints text (the call as written) with the error text msg,
 * then runs on_fail. */
#define MT_CALL_OK_OR(on_fail, call, text, msg) MT_CHECK_OR(on_fail, (call) == 0, text, "%s", msg)

/* main's exit status after n_failed failed checks: 0 when none, else 1 (and says so). */
static inline int mt_check_status(int n_failed)
{
    if (n_failed) fprintf(stderr, "%d check(s) failed\n", n_failed);
    return n_failed != 0;
}

#endif
