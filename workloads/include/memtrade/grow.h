/* memtrade/grow.h — the one growable-array step, for every module.
 *
 * What it is for: making room in a heap array that grows by appending (n used, cap
 * allocated): the first allocation holds `first` elements, every later one doubles, so a
 * list appended to one element at a time reallocates exactly as the copies this replaced
 * did (golden_lib.c, import/names.c, import/tensors.c, distributed/train.c, tokenizer.c,
 * data.c, results/format.c, results/store_merge.c).
 * What it is not for: arrays sized once (use calloc), or arrays whose bytes a memory plan
 * predicts (slabs are allocated at their exact size).
 * Thread safety: none of its own; the array is the caller's.
 */
#ifndef MEMTRADE_GROW_H
#define MEMTRADE_GROW_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Contract: `pv` is the address of the array's pointer (any object pointer type: `&l->v`),
 * *cap its allocated elements of `elem` bytes. When `need` exceeds *cap, reallocates it to
 * `first` elements (when *cap is 0), else to twice *cap, doubling until need fits, and
 * updates the pointer and *cap. Returns 0, or -1 when out of memory (or the size would
 * overflow), the array and *cap then untouched. The pointer is read and written through
 * memcpy, so no pointer type is accessed as another. */
static inline int mt_grow(void *pv, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? 2 * *cap : first ? first : 1;
    while (c < need) {
        if (c > SIZE_MAX / 2) return -1;
        c *= 2;
    }
    if (elem && c > SIZE_MAX / elem) return -1;
    void *v;
    memcpy(&v, pv, sizeof v);
    v = realloc(v, c * elem);
    if (!v) return -1;
    memcpy(pv, &v, sizeof v);
    *cap = c;
    return 0;
}

#endif
