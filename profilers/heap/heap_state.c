/* heap_state.c — the one definition of the heap profiler's global and per-thread state,
 * and the primitives of heap_internal.h that are not inline.
 *
 * What it is for: keeping every piece of mutable global state of libmt_heap.so in one
 * place (mt_heap_g, mt_heap_tls, mt_heap_real); each module reads and writes its own
 * member only. What it is not for: logic of any module.
 */
#define _GNU_SOURCE
#include "heap_internal.h"
#include "heap_tracker.h"

#include <sched.h>
#include <sys/mman.h>
#include <time.h>

/* The room starts closed with a header word no block has (shift 0, magic set), not 0: free's
 * inline test compares a block's header word with it, and a bootstrap pool block from calloc
 * (heap_hooks.c) has 0 there; it must reach free_slow, never the real free. */
struct mt_heap_state mt_heap_g = {
    .out = {.fd = -1},
    .tag = {.region_cur = -1},
    .trk = {.room = {.tail = (uint64_t)MT_REC_CLOSED << 40 | (uint64_t)MT_HDR_MAGIC << 56}}};
__thread struct mt_heap_tls mt_heap_tls __attribute__((tls_model("initial-exec")));
struct mt_heap_real mt_heap_real = {.malloc = mt_heap_malloc_boot};

void mt_heap_lock_contended(void)
{
    atomic_int *l = &mt_heap_g.trk.lock;
    for (int spins = 0;; spins++) {
        while (atomic_load_explicit(l, memory_order_relaxed)) {
            if (++spins > 64)
                sched_yield();
            else
                __builtin_ia32_pause();
        }
        if (!atomic_exchange_explicit(l, 1, memory_order_acquire)) return;
    }
}

uint64_t mt_heap_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *mt_heap_pages(size_t bytes)
{
    void *p =
        mt_heap_real.mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void mt_heap_pages_free(void *p, size_t bytes)
{
    if (p) mt_heap_real.munmap(p, bytes);
}
