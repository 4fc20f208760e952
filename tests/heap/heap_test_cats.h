/* heap_test_cats.h — the C lines of a heap report, as the heap profiler's tests keep them.
 *
 * What it is for: check_heap.c and sampling.c collect a report's per-category counters
 * (names copied: the reader's strings last only through its callback) and look them up by
 * name. Not for: checking them (each test has its own expectations).
 */
#ifndef MT_HEAP_TEST_CATS_H
#define MT_HEAP_TEST_CATS_H

#include <stdio.h>
#include <string.h>

#include "heapreport.h"

struct heap_test_cats {
    struct mt_heapreport_category v[MT_HEAPREPORT_MAX_CATS];
    char name[MT_HEAPREPORT_MAX_CATS][32];
    size_t n;
};

/* Keeps c (a full table drops it: the tests then miss it by name). */
static inline void heap_test_cats_add(struct heap_test_cats *k,
                                      const struct mt_heapreport_category *c)
{
    if (k->n == MT_HEAPREPORT_MAX_CATS) return;
    snprintf(k->name[k->n], sizeof k->name[0], "%s", c->name);
    k->v[k->n] = *c;
    k->v[k->n].name = k->name[k->n];
    k->n++;
}

/* The kept category `name`, or NULL. */
static inline const struct mt_heapreport_category *heap_test_cat(const struct heap_test_cats *k,
                                                                 const char *name)
{
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->v[i].name, name)) return &k->v[i];
    return NULL;
}

/* Defines on_category, the reader's C-line callback, for a report type whose member
 * `member` is a struct heap_test_cats (the reader's user pointer is the report). */
#define HEAP_TEST_ON_CATEGORY(report_type, member)                                                 \
    static int on_category(const struct mt_heapreport_category *c, void *u)                        \
    {                                                                                              \
        heap_test_cats_add(&((report_type *)u)->member, c);                                        \
        return 0;                                                                                  \
    }

#endif
