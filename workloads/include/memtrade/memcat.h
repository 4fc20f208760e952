/* memtrade/memcat.h — memory categories and the tagging API seen by the heap profiler.
 *
 * What it is for: any code (the reference model, a plugin, an arena) tells the heap
 * profiler which category the calling thread's next allocations belong to, and lets slab
 * or arena owners report sub-allocations as named tensors so an arena is not one opaque
 * block. What it is not for: allocating memory, or anything that needs the harness.
 *
 * The functions below are weak references to symbols defined by the LD_PRELOAD heap
 * profiler (profilers/heap). When the profiler is not preloaded they resolve to NULL and
 * the inline wrappers are no-ops, so code that uses them runs anywhere with no cost but a
 * branch. Thread-safety: the category is per thread; reports may come from any thread.
 */
#ifndef MEMTRADE_MEMCAT_H
#define MEMTRADE_MEMCAT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Categories. Values are part of the ABI and of the database: append only. */
enum mt_mem_cat {
    MT_MEM_OTHER = 0,       /* anything untagged */
    MT_MEM_WEIGHTS = 1,     /* model parameters, in whatever format they are stored */
    MT_MEM_GRADIENTS = 2,   /* parameter gradients */
    MT_MEM_OPTIMIZER = 3,   /* optimizer state (AdamW m and v, master weights) */
    MT_MEM_ACTIVATIONS = 4, /* forward activations kept for backward or inference */
    MT_MEM_ACT_GRADS = 5,   /* gradients with respect to activations */
    MT_MEM_KV_CACHE = 6,    /* attention key/value cache for decoding */
    MT_MEM_WORKSPACE = 7,   /* scratch buffers (GEMM workspace, packing) */
    MT_MEM_DATA = 8,        /* corpus, token batches, calibration data */
    MT_MEM_CAT_COUNT = 9
};

/* Short lowercase names, index = enum value: "other", "weights", ... Stable. */
static const char *const mt_mem_cat_names[MT_MEM_CAT_COUNT] = {
    "other",       "weights",  "gradients", "optimizer", "activations",
    "act_grads",   "kv_cache", "workspace", "data"};

/* Defined by the preloaded heap profiler only. Sets the calling thread's current
 * category, returns the previous one. */
extern int mt_heap_set_category(int cat) __attribute__((weak));
/* Reports that [ptr, ptr+size) inside an already tracked block holds tensor `name` of
 * category `cat`; the profiler moves those bytes from the block's category to `cat` and
 * lists the tensor by name. `name` must stay valid until the process exits. */
extern void mt_heap_report_tensor(const void *ptr, size_t size, int cat, const char *name)
    __attribute__((weak));

/* Defined by the preloaded heap profiler only: names the current phase ("forward",
 * "eval", ...) for its timeline; NULL clears it. `name` must stay valid until replaced. */
extern void mt_heap_set_region(const char *name) __attribute__((weak));

/* Contract: sets this thread's allocation category; returns the previous one, or
 * MT_MEM_OTHER when no profiler is loaded. Never allocates. */
static inline int mt_memcat_set(int cat)
{
    return mt_heap_set_category ? mt_heap_set_category(cat) : MT_MEM_OTHER;
}

/* Contract: reports a named sub-allocation (see mt_heap_report_tensor); no-op without
 * the profiler. */
static inline void mt_memcat_report(const void *ptr, size_t size, int cat, const char *name)
{
    if (mt_heap_report_tensor)
        mt_heap_report_tensor(ptr, size, cat, name);
}

/* Contract: tells the profiler's timeline the current phase; no-op without it. */
static inline void mt_memcat_region(const char *name)
{
    if (mt_heap_set_region)
        mt_heap_set_region(name);
}

#ifdef __cplusplus
}
#endif
#endif
