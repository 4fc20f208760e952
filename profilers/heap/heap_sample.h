/* heap_sample.h — sampled mode's byte sampler.
 *
 * What it is for: deciding which allocations get a stack in sampled mode, as tcmalloc's
 * sampler does: a Poisson process of rate 1/R over the bytes each thread allocates (R =
 * MEMTRADE_HEAP_SAMPLE_BYTES), so a block is sampled when a point falls in it, with
 * probability 1 - exp(-size/R), and carries weight 1 / that probability; the weights make
 * per-site estimates unbiased. Each thread counts down its own byte budget (an exponential
 * interval from its own xorshift stream, seeded from MEMTRADE_HEAP_SEED and the thread's
 * order of first allocation), so the common case is one addition and a branch (with one
 * thread in the room, heap_tracker.h's mt_heap_room_due). What
 * it is not for: the exact totals (the tracker counts every block in both modes).
 */
#ifndef MT_HEAP_SAMPLE_H
#define MT_HEAP_SAMPLE_H

#include "heap_internal.h"

#include <math.h>

/* The next exponential interval of this thread's stream, in whole bytes (at least 1;
 * seeds the stream first). */
MT_HIDDEN int64_t mt_heap_sample_interval(void);

/* Weight of a sampled block of `size` bytes: 1 in full mode, 1/(1 - exp(-size/R)) in
 * sampled mode. */
static inline double mt_heap_sample_weight(uint64_t size)
{
    if (mt_heap_g.cfg.mode != MT_HEAP_SAMPLED) return 1.0;
    return 1.0 / -expm1(-(double)size / mt_heap_g.cfg.sample_bytes);
}

/* Whether a block of n bytes is sampled (always in full mode, where the budget stays 0);
 * advances the budget. With one thread, sampled mode's inline path keeps the countdown in
 * the room while it is open (heap_internal.h, mt_heap_room_due): closed here first. */
static inline int mt_heap_sample_take(uint64_t n)
{
    if (mt_heap_g.cfg.mode == MT_HEAP_FULL) return 1;
    if (__libc_single_threaded) mt_heap_room_flush(); /* its countdown handed back */
    if (MT_UNLIKELY(!mt_heap_tls.rng_ready)) mt_heap_tls.countdown = mt_heap_sample_interval();
    mt_heap_tls.countdown -= (int64_t)n;
    if (mt_heap_tls.countdown > 0) return 0;
    while (mt_heap_tls.countdown <= 0)
        mt_heap_tls.countdown += mt_heap_sample_interval();
    return 1;
}

#endif
