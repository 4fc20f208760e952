/* tensor_parallel.c — the `tensor_parallel` workload (Megatron-LM, Shoeybi et al. 2019):
 * attention split by heads and the MLP's first matrix by columns, second by rows, so
 * each layer all-reduces twice forward and twice backward; embeddings, LayerNorms and
 * the LM head are replicated. Every rank sees the whole batch. */
#include "plugin.h"

static const struct mt_param_spec params[] = {
    MT_DIST_BASE_PARAMS,
    MT_DIST_PARAM_OPTIMIZERS,
};

MT_DIST_WORKLOAD("tensor_parallel",
                 "Megatron tensor parallel: heads and MLP columns/rows split over MPI ranks",
                 MT_DIST_TP, params);
