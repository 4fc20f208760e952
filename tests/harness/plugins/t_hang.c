/* tests/harness/plugins/t_hang.c — a test workload that never returns (ignoring
 * SIGTERM): the run must end `timeout` after --timeout, killed with SIGKILL. */
#include <signal.h>
#include <unistd.h>

#include "../test_plugin.h"

static int run(struct mt_ctx *ctx)
{
    mt_metric(ctx, "before_hang", 3.0, "1");
    signal(SIGTERM, SIG_IGN);
    for (;;)
        pause();
    return 0;
}

MT_TEST_PLUGIN(.name = "t_hang", .summary = "test: hangs");
