/* data_parallel.c — the `data_parallel` workload: every rank holds the whole model and
 * trains on its B/N rows of the global batch; gradients are summed with MPI_Allreduce,
 * in buckets of at most `bucket_mb` MiB, optionally started during backward (`overlap`:
 * one MPI_Iallreduce per bucket of finished layers). See plugin.h for the metrics. */
#include "plugin.h"

static const struct mt_param_spec params[] = {
    MT_DIST_BASE_PARAMS,
    MT_DIST_PARAM_OPTIMIZERS,
    {"bucket_mb", MT_PARAM_FLOAT, "0", 0, 4096, NULL,
     "all-reduce bucket size in MiB (0 = one bucket; with overlap, one per layer)"},
    {"overlap", MT_PARAM_BOOL, "off", 0, 0, NULL,
     "start each bucket's all-reduce as soon as backward has finished its layers"},
    MT_DIST_PARAM_PRECISION,
};

MT_DIST_WORKLOAD("data_parallel",
                 "data parallel over MPI ranks: whole model per rank, gradients all-reduced",
                 MT_DIST_DP, params);
