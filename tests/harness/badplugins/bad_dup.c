/* tests/harness/badplugins/bad_dup.c — refused: two parameters with one name. */
#include <memtrade/workload.h>
static const struct mt_param_spec params[] = {
    {"steps", MT_PARAM_INT, "1", 1, 10, NULL, "steps"},
    {"steps", MT_PARAM_INT, "2", 1, 10, NULL, "steps again"}};
static int run(struct mt_ctx *ctx)
{
    (void)ctx;
    return 0;
}
MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {
    .abi_major = MEMTRADE_WORKLOAD_ABI_MAJOR,
    .abi_minor = MEMTRADE_WORKLOAD_ABI_MINOR,
    .struct_size = sizeof(struct mt_workload),
    .name = "bad_dup",
    .summary = "duplicate parameter",
    .params = params,
    .n_params = 2,
    .run = run};
