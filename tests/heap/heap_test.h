/* heap_test.h — the CHECK macro shared by the heap profiler's test programs.
 *
 * What it is for: counting failed assertions and printing each with its line, so a test
 * reports every mismatch instead of stopping at the first. Not for anything else.
 */
#ifndef MT_HEAP_TEST_H
#define MT_HEAP_TEST_H

#include "mt_check.h"

static int failures;
#define CHECK(cond, ...) MT_CHECK_OR(failures++, cond, #cond, __VA_ARGS__)

#endif
