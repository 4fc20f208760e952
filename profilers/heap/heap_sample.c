/* heap_sample.c — the random streams of sampled mode's byte sampler (heap_sample.h).
 *
 * What it is for: each thread's exponential intervals, from a xorshift64* stream seeded
 * from MEMTRADE_HEAP_SEED and the thread's order of first sampled allocation, so a run of
 * a deterministic single-threaded program samples the same blocks every time. What it is
 * not for: the countdown itself (heap_sample.h; with one thread, sampled mode's room holds
 * it while open: heap_tracker.h, mt_heap_room_due).
 */
#include "heap_sample.h"

static uint64_t rng_next(void)
{
    struct mt_heap_tls *t = &mt_heap_tls;
    if (!t->rng_ready) {
        uint64_t k = atomic_fetch_add(&mt_heap_g.sample_streams, 1) + 1;
        t->rng = mt_heap_mix64(mt_heap_g.cfg.seed * 0x9e3779b97f4a7c15ULL + k);
        t->rng_ready = 1;
    }
    uint64_t x = t->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* Rounded up to whole bytes, as tcmalloc's sampler counts: the hooks then compare
 * integers, and a block's chance of a sample stays 1 - exp(-size/R) within O(1/R). */
int64_t mt_heap_sample_interval(void)
{
    double u = ((double)(rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double v = ceil(-mt_heap_g.cfg.sample_bytes * log(u));
    return v < 1 ? 1 : v > 0x1p62 ? (int64_t)1 << 62 : (int64_t)v;
}
