/* check.h — the little test harness shared by the prune and distill tests.
 *
 * What it is for: CHECK(cond, fmt, ...) counts and prints a failed check without stopping,
 * and mt_test_main() runs the named test group(s) and turns the count into an exit code.
 * What it is not for: anything outside tests/prune and tests/distill.
 */
#ifndef MT_PRUNE_TEST_CHECK_H
#define MT_PRUNE_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

#include "mt_check.h"

static int failures;

#define CHECK(cond, ...) MT_CHECK_OR(failures++, cond, #cond, __VA_ARGS__)

struct mt_test {
    const char *name;
    void (*fn)(void);
};

/* Runs the test named `name` (all of them when NULL); returns the process exit code:
 * 0 all checks passed, 1 a check failed, 2 unknown name. */
static inline int mt_test_run(const struct mt_test *tests, size_t n, const char *name)
{
    int ran = 0;
    for (size_t i = 0; i < n; i++)
        if (!name || strcmp(name, tests[i].name) == 0) {
            tests[i].fn();
            ran++;
        }
    if (!ran) {
        fprintf(stderr, "unknown test %s\n", name);
        return 2;
    }
    return mt_check_status(failures);
}

#endif
