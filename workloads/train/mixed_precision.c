/* mixed_precision.c — the `mixed_precision` workload: bf16/fp16 storage of weights, gradients and
 * activations with fp32 compute.
 *
 * What it is for: the shared training loop (trainloop.h) with this plugin's defaults;
 * it accepts every knob of the other training-memory plugins, so runs can combine them.
 * What it is not for: the loop or the engine themselves (trainloop.c, tmodel.c).
 */
#include <memtrade/workload.h>

#include "trainloop.h"

/* micro_batch, accum_steps, precision, loss_scale, every, alloc */
MT_TRAIN_WORKLOAD("mixed_precision",
                  "bf16/fp16 storage of weights, gradients and activations with fp32 compute", "0",
                  "1", "bf16", "auto", "1", "pool");
