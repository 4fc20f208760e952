/* tests/harness/badplugins/bad_choices.c — refused: a choice parameter with an empty
 * item.  */
#include <memtrade/workload.h>
static const struct mt_param_spec params[] = {
    {"dtype", MT_PARAM_CHOICE, "fp32", 0, 0, "fp32||bf16", "dtype"}};
static int run(struct mt_ctx *ctx)
{
    (void)ctx;
    return 0;
}
MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {
    .abi_major = MEMTRADE_WORKLOAD_ABI_MAJOR,
    .abi_minor = MEMTRADE_WORKLOAD_ABI_MINOR,
    .struct_size = sizeof(struct mt_workload),
    .name = "bad_choices",
    .summary = "empty choice",
    .params = params,
    .n_params = 1,
    .run = run};
