/* zero.c — the `zero` workload (ZeRO, Rajbhandari et al. 2020): data parallel, but each
 * rank keeps AdamW's m and v only for its 1/N slice of the flat parameter vector
 * (stage 1; gradients reduce-scattered in place, the slice updated, parameters
 * all-gathered) and, at stage 2, also only that slice of the gradients: each layer's
 * gradients are reduce-scattered into their owners' slices as soon as backward finishes
 * the layer, from a one-layer window (workspace) instead of a full gradient slab; at
 * stage 3 also only that slice of the weights: each layer (and the embeddings and final
 * LayerNorm) is all-gathered into a layer window before its forward and again before its
 * backward; with `prefetch` (default) the next layer in pass order is gathered
 * (MPI_Iallgatherv) into a second layer window while one computes, else the gathers are
 * blocking and one window suffices. */
#include "plugin.h"

static const struct mt_param_spec params[] = {
    MT_DIST_BASE_PARAMS,
    MT_DIST_PARAM_OPTIMIZERS,
    {"stage", MT_PARAM_INT, "1", 1, 3, "1|2|3",
     "1: shard optimizer state; 2: also gradients; 3: also weights (gathered per layer)"},
    {"prefetch", MT_PARAM_BOOL, "on", 0, 0, NULL,
     "stage 3: gather the next layer while one computes (two layer windows; off: one)"},
    MT_DIST_PARAM_PRECISION,
};

MT_DIST_WORKLOAD("zero",
                 "ZeRO stage 1/2/3: optimizer state (gradients, weights) sharded over MPI ranks",
                 MT_DIST_ZERO, params);
