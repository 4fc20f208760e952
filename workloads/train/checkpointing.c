/* checkpointing.c — the `checkpointing` workload: activation checkpointing, block activations kept
 * every N blocks and recomputed in backward.
 *
 * What it is for: the shared training loop (trainloop.h) with this plugin's defaults;
 * it accepts every knob of the other training-memory plugins, so runs can combine them.
 * What it is not for: the loop or the engine themselves (trainloop.c, tmodel.c).
 */
#include <memtrade/workload.h>

#include "trainloop.h"

/* micro_batch, accum_steps, precision, loss_scale, every, alloc */
MT_TRAIN_WORKLOAD(
    "checkpointing",
    "activation checkpointing, block activations kept every N blocks and recomputed in backward",
    "0", "1", "fp32", "auto", "sqrt", "pool");
