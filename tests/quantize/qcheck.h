/* qcheck.h — the CHECK macro the quantize tests share.
 *
 * What it is for: recording a failed expectation with its location and message and
 * carrying on, so one run lists every failure; main() turns `failures` into the exit
 * status. What it is not for: anything outside tests/quantize.
 */
#ifndef MT_TESTS_QCHECK_H
#define MT_TESTS_QCHECK_H

#include "mt_check.h"

static int failures;
#define CHECK(cond, ...) MT_CHECK_OR(failures++, cond, #cond, __VA_ARGS__)

#endif
