/* heap_internal.h — state shared by the files of the LD_PRELOAD heap profiler.
 *
 * What it is for: the one global state of the interposer (tables, counters, config) and
 * the helpers the hook file, the output file and the SDE file share. What it is not for:
 * anything a client includes; the public surface is memtrade/memcat.h (the weak API) and
 * FORMAT.md (the report). Everything here is internal to libmt_heap.so (hidden).
 */
#ifndef MT_HEAP_INTERNAL_H
#define MT_HEAP_INTERNAL_H

#include <memtrade/memcat.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/single_threaded.h>
#include <sys/types.h>

#define MT_HIDDEN __attribute__((visibility("hidden")))
#define MT_LIKELY(x) __builtin_expect(!!(x), 1)
#define MT_UNLIKELY(x) __builtin_expect(!!(x), 0)

enum { MT_HEAP_MAX_FRAMES = 64, MT_HEAP_NCAT = MT_MEM_CAT_COUNT };
enum { MT_HEAP_MAX_REGIONS = 64, MT_HEAP_REGION_NAME = 128 };
enum mt_heap_mode { MT_HEAP_FULL = 0, MT_HEAP_SAMPLED = 1 };

#define MT_HEAP_NO_SITE UINT32_MAX

/* One (stack, category) pair. Counters are doubles: sums of integers stay exact below
 * 2^53 in full mode, and sampled mode adds fractional weights. */
struct mt_heap_site {
    uint64_t hash;
    const uintptr_t *frames; /* innermost first, in the frame arena */
    uint32_t depth;
    uint32_t cat;
    double allocs, bytes, live, temporary, leaked_bytes, leaked_allocs;
    double live_allocs;  /* blocks (and mapping pieces) of the site still live */
    double peak_live;    /* live at the last global peak (valid when peak_epoch matches) */
    uint64_t peak_epoch; /* the global epoch peak_live was taken in */
};

/* One live block of at least a page from malloc and friends, keyed by address (0 = empty
 * slot): what mt_memcat_report searches for the block around a tensor. Every block's own
 * size, site and category are in its header (heap_preload.c), not here. */
struct mt_heap_rec {
    uintptr_t ptr;
    uint64_t size;
    uint32_t site; /* MT_HEAP_NO_SITE when not sampled */
    uint8_t cat;
    uint8_t flags; /* MT_REC_TENSORS */
};
enum { MT_REC_TENSORS = 1, MT_REC_TRACKED = 2, MT_REC_TABLE = 4 };

/* One live anonymous private mapping (or the part of it still mapped). */
struct mt_heap_map {
    uintptr_t start, end;
    uint32_t site;
    uint8_t cat;
    uint8_t flags;
    double weight; /* sampled-mode weight of the original mapping (1 in full mode) */
};

/* A named tensor reported through mt_heap_report_tensor. While `block` is non-zero the
 * bytes are counted in `cat` instead of the block's own category. */
struct mt_heap_tensor {
    const char *name;
    uintptr_t block; /* start of the containing block, 0 when detached or untracked */
    uint64_t size;
    uint8_t cat, from_cat;
    uint32_t site_from, site_to;
    double weight;
};

/* Per-category exact counters; long long because PAPI SDE reads them in place. */
struct mt_heap_cats {
    long long allocs[MT_HEAP_NCAT], frees[MT_HEAP_NCAT], bytes[MT_HEAP_NCAT];
    long long live[MT_HEAP_NCAT], peak[MT_HEAP_NCAT];
    long long allocs_total, live_total, peak_total;
    /* Peaks since the innermost region last changed (the live bytes then, at least). They
     * never exceed the global peaks, so the hooks compare against these only and test the
     * global peak inside: one compare per allocation, as before region peaks existed. */
    long long seg_peak[MT_HEAP_NCAT], seg_peak_total;
};

/* One region name's exact peaks over every stretch of time it was the innermost region. */
struct mt_heap_region {
    char name[MT_HEAP_REGION_NAME];
    long long peak_total, peak[MT_HEAP_NCAT];
};

struct mt_heap_state {
    atomic_int lock;     /* spinlock; guards everything below that is not atomic */
    atomic_int tracking; /* 1 while hooks record; 0 before init and after the report */
    int mode;
    double sample_bytes; /* R: mean sampling interval in bytes (sampled mode) */
    uint64_t seed;
    long interval_ms;
    int out_fd;
    int follow_exec; /* MEMTRADE_HEAP_FOLLOW_EXEC: descendants are profiled (default 1) */
    long report_pid; /* the process that opened out_fd (a vfork child is not it) */
    char out_pattern[4096];
    long page_size;
    uint64_t t0_ns;             /* CLOCK_MONOTONIC at init */
    uint64_t t0_coarse_ns;      /* CLOCK_MONOTONIC_COARSE at init (for peak_t) */
    uintptr_t self_lo, self_hi; /* our own text, skipped in stacks */

    struct mt_heap_cats c;
    uint64_t epoch;                      /* bumped at every new global peak */
    long long stack_hits, stack_unwinds; /* stacks from the stack cache / from unwinding */
    double peak_t;                       /* seconds since t0 of the global peak */
    uintptr_t last_alloc;

    /* records: open addressing, linear probing, backward-shift deletion */
    struct mt_heap_rec *recs;
    size_t rec_cap, rec_count;
    unsigned rec_shift; /* 64 - log2(rec_cap) */

    /* sites: chunked array + index table of (site index + 1) */
    struct mt_heap_site *site_chunks[4096];
    size_t site_count;
    uint32_t *site_index;
    size_t site_index_cap;

    /* frame arena */
    char *arena;
    size_t arena_used, arena_cap;

    struct mt_heap_map *maps;
    size_t map_count, map_cap;

    struct mt_heap_tensor *tensors;
    size_t tensor_count, tensor_cap;

    uint64_t next_point_ns; /* when the hooks write the next timeline point (no helper) */
    const char *_Atomic region;
    /* Region peaks, by name (copied: the caller's string may change). region_cur indexes
     * `regions` while the innermost region is tracked, -1 otherwise (none, or the table
     * was full or the name too long: regions_dropped counts those switches). */
    struct mt_heap_region regions[MT_HEAP_MAX_REGIONS];
    size_t region_count;
    int region_cur;
    long long regions_dropped;
    atomic_int helper_stop;
    atomic_int helper_running;
    pthread_t helper;
};

MT_HIDDEN extern struct mt_heap_state mt_heap_g;

enum { MT_SITE_CHUNK = 4096 };
static inline struct mt_heap_site *mt_heap_site_at(size_t i)
{
    return &mt_heap_g.site_chunks[i / MT_SITE_CHUNK][i % MT_SITE_CHUNK];
}

/* The one lock: a test-and-test-and-set spinlock that yields the CPU after a short spin
 * (critical sections are a few dozen instructions; a mutex costs twice as much). While the
 * process has a single thread (glibc's __libc_single_threaded, which only the thread
 * holding no lock can clear, inside pthread_create) it is a plain store: an atomic
 * exchange per malloc costs more than the rest of the sampled-mode hook. */
MT_HIDDEN void mt_heap_yield(void);
static inline void mt_heap_lock(void)
{
    if (__libc_single_threaded) {
        atomic_store_explicit(&mt_heap_g.lock, 1, memory_order_relaxed);
        return;
    }
    for (int spins = 0;; spins++) {
        if (!atomic_exchange_explicit(&mt_heap_g.lock, 1, memory_order_acquire)) return;
        while (atomic_load_explicit(&mt_heap_g.lock, memory_order_relaxed)) {
            if (++spins > 64)
                mt_heap_yield();
            else
                __builtin_ia32_pause();
        }
    }
}

static inline void mt_heap_unlock(void)
{
    atomic_store_explicit(&mt_heap_g.lock, 0, memory_order_release);
}

/* Real allocator entry points, resolved with dlsym(RTLD_NEXT). */
struct mt_heap_real {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    size_t (*malloc_usable_size)(void *);
    void *(*memalign)(size_t, size_t);
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    int (*munmap)(void *, size_t);
    void *(*mremap)(void *, size_t, size_t, int, ...);
    int (*pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
};
MT_HIDDEN extern struct mt_heap_real mt_heap_real;

/* Memory for our own tables, straight from the kernel (never through the hooks). */
MT_HIDDEN void *mt_heap_pages(size_t bytes);
MT_HIDDEN void mt_heap_pages_free(void *p, size_t bytes);
MT_HIDDEN uint64_t mt_heap_now_ns(void);
/* Sets/clears this thread's recursion guard; returns the previous value. */
MT_HIDDEN int mt_heap_guard(int on);

/* heap_output.c */
/* Opens the report for this process (forked: in the child of a fork) and writes the
 * header; out_fd stays -1 when it cannot. */
MT_HIDDEN void mt_heap_out_open(int forked);
MT_HIDDEN void mt_heap_helper_start(void); /* starts the timeline thread */
MT_HIDDEN void mt_heap_point_if_due(void); /* hooks: writes a point when due, no helper */
MT_HIDDEN void mt_heap_helper_stop(void);  /* stops and joins it */
MT_HIDDEN void mt_heap_write_report(void); /* symbolizes and appends the exit report */

/* heap_sde.c */
MT_HIDDEN void mt_heap_sde_init(void);

#endif
