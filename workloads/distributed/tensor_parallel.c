/* tensor_parallel.c — the `tensor_parallel` workload (Megatron-LM, Shoeybi et al. 2019):
 * attention split by heads and the MLP's first matrix by columns, second by rows, so
 * each layer all-reduces twice forward and twice backward; embeddings, LayerNorms and
 * the LM head are replicated. Every rank sees the whole batch. */
#include "plugin.h"

static const struct mt_param_spec params[] = {
    MT_DIST_BASE_PARAMS,
};

static int run(struct mt_ctx *ctx)
{
    return mt_dist_plugin_run(ctx, MT_DIST_TP);
}

MT_WORKLOAD_EXPORT const struct mt_workload memtrade_workload = {
    .abi_major = MEMTRADE_WORKLOAD_ABI_MAJOR,
    .abi_minor = MEMTRADE_WORKLOAD_ABI_MINOR,
    .struct_size = sizeof(struct mt_workload),
    .name = "tensor_parallel",
    .summary = "Megatron tensor parallel: heads and MLP columns/rows split over MPI ranks",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .ranks_param = "ranks",
    .mem_estimate = mt_dist_plugin_estimate,
    .run = run,
};
