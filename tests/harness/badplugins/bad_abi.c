/* tests/harness/badplugins/bad_abi.c — refused: ABI major 99. */
#include <memtrade/workload.h>
static int run(struct mt_ctx *ctx)
{
    (void)ctx;
    return 0;
}
MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {.abi_major = 99,
                                                                 .abi_minor = 0,
                                                                 .struct_size =
                                                                     sizeof(struct mt_workload),
                                                                 .name = "bad_abi",
                                                                 .summary = "wrong ABI",
                                                                 .run = run};
