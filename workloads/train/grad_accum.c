/* grad_accum.c — the `grad_accum` workload: gradient accumulation, k micro-batches of batch/k per
 * optimizer step.
 *
 * What it is for: the shared training loop (trainloop.h) with this plugin's defaults;
 * it accepts every knob of the other training-memory plugins, so runs can combine them.
 * What it is not for: the loop or the engine themselves (trainloop.c, tmodel.c).
 */
#include <memtrade/workload.h>

#include "trainloop.h"

/* micro_batch, accum_steps, precision, loss_scale, every, alloc */
MT_TRAIN_WORKLOAD("grad_accum",
                  "gradient accumulation, k micro-batches of batch/k per optimizer step", "0", "4",
                  "fp32", "auto", "1", "pool");
