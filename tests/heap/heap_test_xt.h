/* heap_test_xt.h — the block sizes of known.c's "threads" kind, shared with check_heap.c.
 *
 * What it is for: one definition of what each thread allocates, so the program and the
 * checker cannot drift apart. Not for anything else.
 */
#ifndef MT_HEAP_TEST_XT_H
#define MT_HEAP_TEST_XT_H

#include <stddef.h>

enum { XT_THREADS = 4, XT_BLOCKS = 2000, XT_TEMPS = 3000, XT_HANDOFF = 4000 };

/* Size of block i of thread t: 16..3015 bytes (the hooks' inline-sized blocks), every 97th
 * one of 5000 bytes (a page or more: the large-block table). */
static inline size_t xt_size(int t, int i)
{
    return i % 97 == 0 ? 5000 : 16 + (size_t)((i * 37 + t * 101) % 3000);
}

/* Size of temporary i of thread t (made and freed at once, before the kept blocks). */
static inline size_t xt_temp_size(int t, int i)
{
    return 16 + (size_t)((i * 53 + t * 7) % 200);
}

/* Size of handoff block i: made by the main thread in "workspace" before any thread
 * starts (the odd ones freed then too), the even ones freed by the threads. */
static inline size_t xt_handoff_size(int i)
{
    return 16 + (size_t)((i * 61) % 2000);
}

#endif
