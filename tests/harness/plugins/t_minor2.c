/* tests/harness/plugins/t_minor2.c — a plugin built against ABI 1.2, when `choices` meant
 * nothing on an INT parameter: its table sets one anyway (a list its default is not in),
 * and the loader must keep the 1.2 meaning (any integer in range). Not for: anything
 * outside tests. */
#include "../test_plugin.h"

/* Overriding the descriptor's minor version is the point of this file. */
#pragma GCC diagnostic ignored "-Woverride-init"

static const struct mt_param_spec params[] = {
    {"bits", MT_PARAM_INT, "5", 1, 16, "4|8", "bits; the list was ignored before 1.3"},
};

static int run(struct mt_ctx *ctx)
{
    mt_metric(ctx, "bits_seen", (double)mt_param_int(ctx, "bits"), "count");
    return 0;
}

MT_TEST_PLUGIN(.abi_minor = 2, .name = "t_minor2", .summary = "a plugin of ABI 1.2",
               .params = params, .n_params = sizeof params / sizeof params[0]);
