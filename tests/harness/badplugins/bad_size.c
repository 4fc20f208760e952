/* tests/harness/badplugins/bad_size.c — refused: struct_size smaller than ABI 1.0's. */
#include <memtrade/workload.h>
static int run(struct mt_ctx *ctx)
{
    (void)ctx;
    return 0;
}
MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {
    .abi_major = MEMTRADE_WORKLOAD_ABI_MAJOR,
    .abi_minor = MEMTRADE_WORKLOAD_ABI_MINOR,
    .struct_size = 16,
    .name = "bad_size",
    .summary = "truncated",
    .run = run};
