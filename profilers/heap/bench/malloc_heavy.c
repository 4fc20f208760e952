/* malloc_heavy.c — the heap profiler's benchmark program: allocation churn, deep stacks.
 *
 * What it is for: 10,000,000 allocations of 16..4096 bytes (uniform, fixed seed), each
 * made 11 frames below main through a chain of distinct functions (leaf, l9..l2, l1a or
 * l1b, top), kept in a ring of 4096 live blocks so frees are interleaved and the live set
 * stays small; each block is written once. scripts/bench_heap.sh times it bare and under each profiler. What it is
 * not for: a test (it checks nothing) or a model of any real workload.
 * Usage: mt_heap_bench_malloc [allocations]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RING = 4096 };
static void *ring[RING];
static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

/* One allocation at the bottom of the chain; `i` picks the ring slot. */
static __attribute__((noinline)) size_t leaf(size_t i)
{
    size_t n = 16 + (size_t)(next() % 4081);
    char *p = malloc(n);
    if (!p) abort();
    p[0] = (char)i;
    p[n - 1] = (char)n;
    free(ring[i % RING]);
    ring[i % RING] = p;
    return n;
}

/* Ten distinct frames between main and leaf; branch on i so several stacks appear. */
#define LEVEL(name, callee)                                                                        \
    static __attribute__((noinline)) size_t name(size_t i)                                         \
    {                                                                                              \
        size_t r = callee(i);                                                                      \
        return r + (i & 1);                                                                        \
    }
LEVEL(l9, leaf)
LEVEL(l8, l9)
LEVEL(l7, l8)
LEVEL(l6, l7)
LEVEL(l5, l6)
LEVEL(l4, l5)
LEVEL(l3, l4)
LEVEL(l2, l3)
LEVEL(l1a, l2)
LEVEL(l1b, l2)

static __attribute__((noinline)) size_t top(size_t i)
{
    return (i % 3 == 0) ? l1a(i) : l1b(i);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000000;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += top(i);
    for (size_t i = 0; i < RING; i++)
        free(ring[i]);
    printf("%zu allocations, %zu bytes\n", n, total);
    return 0;
}
