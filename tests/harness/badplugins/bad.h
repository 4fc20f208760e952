/* tests/harness/badplugins/bad.h — the parts the broken test plugins share: a run() that
 * does nothing and a descriptor that is right but for what each file breaks. */
#ifndef MT_TESTS_BAD_H
#define MT_TESTS_BAD_H

#include "../test_plugin.h"

/* Overriding a field of the default descriptor is the point of these files. */
#pragma GCC diagnostic ignored "-Woverride-init"

__attribute__((unused)) static int run(struct mt_ctx *ctx)
{
    (void)ctx;
    return 0;
}

/* A descriptor with every field right; FIELDS (designated initializers) override. */
#define MT_BAD_PLUGIN(...) MT_TEST_PLUGIN(.summary = "broken on purpose", __VA_ARGS__)

#endif
