/* tests/harness/check.h — the CHECK macro of the harness unit tests: counts failures
 * instead of stopping, so one run reports every broken expectation. */
#ifndef MT_TESTS_HARNESS_CHECK_H
#define MT_TESTS_HARNESS_CHECK_H

#include "mt_check.h"

static int failures;
#define CHECK(cond) MT_CHECK_OR(failures++, cond, #cond, "%s", "")

#endif
