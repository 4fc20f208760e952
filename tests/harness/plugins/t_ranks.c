/* tests/harness/plugins/t_ranks.c — a multi-rank test workload (ranks_param "ranks"):
 * each rank reports metrics that depend on its rank; crash_rank makes one rank crash. */
#include "../test_plugin.h"

static const struct mt_param_spec params[] = {
    {"ranks", MT_PARAM_INT, "2", 1, 16, NULL, "MPI ranks"},
    {"crash_rank", MT_PARAM_INT, "-1", -1, 15, NULL, "rank that segfaults (-1: none)"},
};

static int run(struct mt_ctx *ctx)
{
    int rank = ctx->ops->rank(ctx), n = ctx->ops->nranks(ctx);
    mt_metric(ctx, "nranks_seen", n, "count");
    mt_metric(ctx, "rank_seen", rank, "count");
    mt_metric(ctx, "train_peak_bytes", 1000.0 * (rank + 1), "bytes");
    /* one metric of each aggregation in the vocabulary (metrics.h) */
    mt_metric(ctx, "comm_bytes_sent", 100.0 * (rank + 1), "bytes");  /* sum */
    mt_metric(ctx, "train_loss", 2.0 + rank, "nats/byte");           /* mean */
    mt_metric(ctx, "val_bpb", 3.0 + rank, "bits/byte");              /* rank 0's */
    mt_metric(ctx, "t_ranks_own_bytes", 10.0 * (2 - rank), "bytes"); /* catch-all: max */
    mt_sample(ctx, "loss", 0, 5.0 + rank);
    if (rank == mt_param_int(ctx, "crash_rank")) {
        volatile uintptr_t bad = 16; /* not NULL: UBSan would report a NULL store itself */
        volatile int *volatile p = (int *)bad;
        *p = 1;
    }
    return 0;
}

MT_TEST_PLUGIN(.name = "t_ranks", .summary = "test: reports per-rank metrics", .params = params,
               .n_params = 2, .ranks_param = "ranks");
