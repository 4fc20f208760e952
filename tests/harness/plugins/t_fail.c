/* tests/harness/plugins/t_fail.c — a test workload that reports a metric, then fails
 * with a known message. */
#include <memtrade/workload.h>

static int run(struct mt_ctx *ctx)
{
    mt_metric(ctx, "before_failure", 1.0, "1");
    return mt_error(ctx, "deliberate failure, code %d", 42);
}

MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {
    .abi_major = MEMTRADE_WORKLOAD_ABI_MAJOR,
    .abi_minor = MEMTRADE_WORKLOAD_ABI_MINOR,
    .struct_size = sizeof(struct mt_workload),
    .name = "t_fail",
    .summary = "test: returns an error",
    .run = run,
};
