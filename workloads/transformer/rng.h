/* rng.h — the model's seeded random numbers (splitmix64 stream + Box-Muller normals).
 *
 * What it is for: reproducible initialization, batch sampling and token sampling: the
 * same seed gives the same numbers on every machine, independent of threads.
 * What it is not for: cryptography, or the harness's run RNG (that is ctx->rng_u64).
 * Thread safety: a struct mt_rng is plain state; one thread per struct.
 */
#ifndef MT_TRANSFORMER_RNG_H
#define MT_TRANSFORMER_RNG_H

#include <math.h>
#include <stdint.h>

struct mt_rng {
    uint64_t state;
};

static inline void mt_rng_seed(struct mt_rng *r, uint64_t seed)
{
    r->state = seed;
}

/* Next 64 uniform bits (splitmix64). */
static inline uint64_t mt_rng_next(struct mt_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double mt_rng_uniform(struct mt_rng *r)
{
    return (double)(mt_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n), n > 0 (multiply-shift; bias below 2^-32 for n < 2^32). */
static inline uint64_t mt_rng_below(struct mt_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)mt_rng_next(r) * n) >> 64);
}

/* Standard normal (Box-Muller, one value per call). */
static inline double mt_rng_normal(struct mt_rng *r)
{
    double u1 = mt_rng_uniform(r), u2 = mt_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Two independent standard normals (both Box-Muller outputs) into z[0], z[1]. */
static inline void mt_rng_normal2(struct mt_rng *r, double z[2])
{
    double u1 = mt_rng_uniform(r), u2 = mt_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    double rad = sqrt(-2.0 * log(u1)), ang = 6.283185307179586 * u2;
    z[0] = rad * cos(ang);
    z[1] = rad * sin(ang);
}

#endif
