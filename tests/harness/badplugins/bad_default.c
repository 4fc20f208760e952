/* tests/harness/badplugins/bad_default.c — refused: a default outside its own range. */
#include <memtrade/workload.h>
static const struct mt_param_spec params[] = {{"steps", MT_PARAM_INT, "0", 1, 10, NULL, "steps"}};
static int run(struct mt_ctx *ctx)
{
    (void)ctx;
    return 0;
}
MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {
    .abi_major = MEMTRADE_WORKLOAD_ABI_MAJOR,
    .abi_minor = MEMTRADE_WORKLOAD_ABI_MINOR,
    .struct_size = sizeof(struct mt_workload),
    .name = "bad_default",
    .summary = "default out of range",
    .params = params,
    .n_params = 1,
    .run = run};
