/* heap_sample.h — sampled mode's byte sampler.
 *
 * What it is for: deciding which allocations get a stack in sampled mode, as tcmalloc's
 * sampler does: a Poisson process of rate 1/R over the bytes each thread allocates (R =
 * MEMTRADE_HEAP_SAMPLE_BYTES), so a block is sampled when a point falls in it, with
 * probability 1 - exp(-size/R), and carries weight 1 / that probability; the weights make
 * per-site estimates unbiased. Each thread counts down its own byte budget (an exponential
 * interval from its own xorshift stream, seeded from MEMTRADE_HEAP_SEED and the thread's
 * order of first allocation), so the common case is one subtraction and one compare. What
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

/* The hooks' inline test: takes n bytes from this thread's countdown and returns whether
 * some are left (not sampled: nearly every block). Whoever then leaves the inline path gives
 * them back (mt_heap_tls.countdown += n) before mt_heap_sample_take. On x86-64 one
 * subtraction in memory whose flags the caller branches on. */
static inline __attribute__((always_inline)) int mt_heap_countdown_take(uint64_t n)
{
#if defined(__x86_64__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
    int left;
    __asm__("subq %2, %0" : "+m"(mt_heap_tls.countdown), "=@ccg"(left) : "er"((int64_t)n));
    return left;
#else
    return (mt_heap_tls.countdown -= (int64_t)n) > 0;
#endif
}

/* Whether a block of n bytes is sampled (always in full mode, where the budget stays 0);
 * advances the budget. The hooks inline the common case themselves: budget left after n
 * bytes means not sampled (heap_hooks.c, record_new). */
static inline int mt_heap_sample_take(uint64_t n)
{
    if (mt_heap_g.cfg.mode == MT_HEAP_FULL) return 1;
    if (MT_UNLIKELY(!mt_heap_tls.rng_ready)) mt_heap_tls.countdown = mt_heap_sample_interval();
    mt_heap_tls.countdown -= (int64_t)n;
    if (mt_heap_tls.countdown > 0) return 0;
    while (mt_heap_tls.countdown <= 0)
        mt_heap_tls.countdown += mt_heap_sample_interval();
    return 1;
}

#endif
