/* tests/harness/plugins/t_hang.c — a test workload that never returns (ignoring
 * SIGTERM): the run must end `timeout` after --timeout, killed with SIGKILL. */
#include <signal.h>
#include <unistd.h>

#include <memtrade/workload.h>

static int run(struct mt_ctx *ctx)
{
    mt_metric(ctx, "before_hang", 3.0, "1");
    signal(SIGTERM, SIG_IGN);
    for (;;)
        pause();
    return 0;
}

MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {
    .abi_major = MEMTRADE_WORKLOAD_ABI_MAJOR,
    .abi_minor = MEMTRADE_WORKLOAD_ABI_MINOR,
    .struct_size = sizeof(struct mt_workload),
    .name = "t_hang",
    .summary = "test: hangs",
    .run = run,
};
