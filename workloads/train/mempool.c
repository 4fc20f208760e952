/* mempool.c — the `mempool` workload: activations malloc/free per step versus one pooled arena.
 *
 * What it is for: the shared training loop (trainloop.h) with this plugin's defaults;
 * it accepts every knob of the other training-memory plugins, so runs can combine them.
 * What it is not for: the loop or the engine themselves (trainloop.c, tmodel.c).
 */
#include <memtrade/workload.h>

#include "trainloop.h"

/* micro_batch, accum_steps, precision, loss_scale, every, alloc */
MT_TRAIN_WORKLOAD("mempool", "activations malloc/free per step versus one pooled arena", "0", "1",
                  "fp32", "auto", "1", "malloc");
