/* omp.c — OpenMP threads allocating under the heap profiler.
 *
 * What it is for: 40,000 allocations of 32..95 bytes (i % 64 + 32) from four OpenMP
 * threads through one call site, each freed at once, all in category "workspace";
 * check_heap.c (kind omp) asserts that none is lost. What it is not for: timing.
 */
#include <memtrade/memcat.h>

#include <stdlib.h>

static void *volatile sink[64];

__attribute__((noinline, noclone)) void *omp_site(size_t n)
{
    return malloc(n);
}

int main(void)
{
    long lost = 0;
#pragma omp parallel num_threads(4) reduction(+ : lost)
    {
        mt_memcat_set(MT_MEM_WORKSPACE);
#pragma omp for schedule(dynamic, 64)
        for (long i = 0; i < 40000; i++) {
            char *p = omp_site(32 + (size_t)(i % 64));
            if (!p) {
                lost++;
                continue;
            }
            p[0] = 1;
            sink[i % 64] = p;
            free(p);
        }
        mt_memcat_set(MT_MEM_OTHER);
    }
    return lost != 0;
}
