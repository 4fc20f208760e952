/* pipeline_parallel.c — the `pipeline_parallel` workload: consecutive layers form one
 * stage per rank (the first also embeds, the last holds the final LayerNorm and LM head;
 * the tied embedding's two gradients are summed between them); the batch runs as
 * `micro_batches` micro-batches, GPipe (all forwards, then all backwards) or 1F1B
 * (PipeDream-Flush: at most ranks-stage micro-batches in flight), activations and their
 * gradients sent point to point. */
#include "plugin.h"

static const struct mt_param_spec params[] = {
    MT_DIST_BASE_PARAMS,
    MT_DIST_PARAM_OPTIMIZERS,
    {"micro_batches", MT_PARAM_INT, "4", 1, 4096, NULL, "micro-batches per step (divide batch)"},
    {"schedule", MT_PARAM_CHOICE, "gpipe", 0, 0, "gpipe|1f1b", "pipeline schedule"},
};

MT_DIST_WORKLOAD("pipeline_parallel",
                 "pipeline parallel: layer stages over MPI ranks, GPipe or 1F1B micro-batches",
                 MT_DIST_PP, params);
