/* tests/harness/plugins/t_segv.c — a test workload that reports a metric and a sample,
 * then writes to an unmapped address: the run must end `crashed` with SIGSEGV and keep its data. */
#include "../test_plugin.h"

static int run(struct mt_ctx *ctx)
{
    mt_metric(ctx, "before_crash", 2.0, "1");
    mt_sample(ctx, "s", 1.0, 2.0);
    volatile int *volatile p = (int *)(uintptr_t)mt_param_int(ctx, "address");
    *p = 1;
    return 0;
}

static const struct mt_param_spec params[] = {
    {"address", MT_PARAM_INT, "16", 0, 4096, NULL,
     "address to write to (not 0: UBSan would catch a NULL store)"},
};

MT_TEST_PLUGIN(.name = "t_segv", .summary = "test: segfaults", .params = params, .n_params = 1);
