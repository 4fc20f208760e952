/* tests/harness/badplugins/bad_norun.c — refused: no run() hook. */
#include <memtrade/workload.h>
MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {
    .abi_major = MEMTRADE_WORKLOAD_ABI_MAJOR,
    .abi_minor = MEMTRADE_WORKLOAD_ABI_MINOR,
    .struct_size = sizeof(struct mt_workload),
    .name = "bad_norun",
    .summary = "no run"};
