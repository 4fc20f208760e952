/* tests/harness/plugins/t_fail.c — a test workload that reports a metric, then fails:
 * with a known message (mode=error), by misusing the ABI (mode=misuse: reads a float
 * parameter with the int getter), or without a message (mode=silent). */
#include <string.h>

#include "../test_plugin.h"

static const struct mt_param_spec params[] = {
    {"mode", MT_PARAM_CHOICE, "error", 0, 0, "error|misuse|silent", "how to fail"},
    {"x", MT_PARAM_FLOAT, "0.5", 0, 1, NULL, "a float parameter"},
};

static int run(struct mt_ctx *ctx)
{
    mt_metric(ctx, "before_failure", 1.0, "1");
    const char *mode = mt_param_str(ctx, "mode");
    if (strcmp(mode, "misuse") == 0)
        return (int)mt_param_int(ctx, "x"); /* 0: the harness fails the run anyway */
    if (strcmp(mode, "silent") == 0) return 3;
    return mt_error(ctx, "deliberate failure, code %d", 42);
}

MT_TEST_PLUGIN(.name = "t_fail", .summary = "test: returns an error", .params = params,
               .n_params = 2);
