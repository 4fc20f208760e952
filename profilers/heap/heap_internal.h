/* heap_internal.h — the one global state of the LD_PRELOAD heap profiler, and the
 * primitives every module of it shares.
 *
 * What it is for: the state of the interposer in one place (`mt_heap_g`, defined in
 * heap_state.c, and the per-thread `mt_heap_tls`), split into one member per module —
 * each module's file touches its own member only; the tracker's is read by the others
 * through heap_tracker.h — plus the lock, the real allocator entry points, our own page
 * allocator and the recursion guard. What it is not for: anything a client includes; the
 * public surface is memtrade/memcat.h (the weak API) and FORMAT.md (the report).
 * Everything here is internal to libmt_heap.so (hidden).
 *
 * The modules: heap_hooks.c (interposition) -> heap_tracker.c (exact counters, block
 * headers, the large-block table, sites) <- heap_stacks.c (stack capture and cache),
 * heap_sample.h (the byte sampler), heap_maps.c (anonymous mappings), heap_tags.c
 * (categories, tensors, regions); heap_output.c and heap_sde.c read the tracker through
 * its interface; heap_process.c (init, fork, exit); heap_cuda.c (the CUDA driver's memory
 * calls, dlsym and cuGetProcAddress) -> heap_device.c (device memory's own counters,
 * tables and sites: heap_device.h).
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
#define MT_EXPORT __attribute__((visibility("default")))
#define MT_LIKELY(x) __builtin_expect(!!(x), 1)
#define MT_UNLIKELY(x) __builtin_expect(!!(x), 0)

enum { MT_HEAP_MAX_FRAMES = 64, MT_HEAP_NCAT = MT_MEM_CAT_COUNT };
enum { MT_HEAP_MAX_REGIONS = 64, MT_HEAP_REGION_NAME = 128 };
enum mt_heap_mode { MT_HEAP_FULL = 0, MT_HEAP_SAMPLED = 1 };

#define MT_HEAP_NO_SITE UINT32_MAX

/* ---- the state of each module ------------------------------------------------------ */

/* Configuration, written once by init (heap_process.c) and read-only afterwards. */
struct mt_heap_config {
    int mode;
    /* The header word's magic, shift and flags (mt_heap_hdr_tail, site and category 0) of
     * the blocks free takes in free_site: full mode's counted plain blocks; 0 in sampled
     * mode (matches no header: its blocks with a site are freed through free_slow). */
    uint64_t site_tail;
    double sample_bytes; /* R: mean sampling interval in bytes (sampled mode) */
    uint64_t seed;
    long interval_ms;
    int follow_exec; /* MEMTRADE_HEAP_FOLLOW_EXEC: descendants are profiled (default 1) */
    int device;      /* MEMTRADE_HEAP_DEVICE: the CUDA driver's memory calls are recorded */
    char out_pattern[4096];
    long page_size;
    uint64_t t0_ns;             /* CLOCK_MONOTONIC at init */
    uint64_t t0_coarse_ns;      /* CLOCK_MONOTONIC_COARSE at init (for peak_t) */
    uintptr_t self_lo, self_hi; /* our own text, skipped in stacks */
};

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
    /* Full mode's hot paths (count_full, free_site: weight 1) count here instead, in
     * integers: an add in memory each, no conversion. The site's allocs, bytes, live and
     * live_allocs are the doubles above plus these (mt_heap_site_touch adds n_live;
     * mt_heap_tracker_finish_sites folds them in before anything reads the sites). */
    long long n_allocs, n_bytes, n_live, n_live_allocs;
};

/* One live block of at least a page from malloc and friends, keyed by address (0 = empty
 * slot): what mt_memcat_report searches for the block around a tensor. Every block's own
 * size, site and category are in its header (heap_tracker.h), not here. */
struct mt_heap_rec {
    uintptr_t ptr;
    uint64_t size;
    uint32_t site; /* MT_HEAP_NO_SITE when not sampled */
    uint8_t cat;
    uint8_t flags; /* MT_REC_TENSORS */
};
/* MT_REC_CLOSED: in the header word of sampled mode's closed room (heap_internal.h), so a
 * block an interrupted inline path writes with it is still counted and freed right (a
 * header of its own, through free_slow); no block carries it otherwise. */
enum { MT_REC_TENSORS = 1, MT_REC_TRACKED = 2, MT_REC_TABLE = 4, MT_REC_CLOSED = 0x80 };

/* Per-category exact counters; long long because PAPI SDE reads some in place. Live
 * bytes are kept as `room`, the bytes left below the running peak (seg_peak - live, never
 * negative): an allocation subtracts its size and tests the sign that subtraction sets, so
 * the peak test of the hot path costs no compare with a second counter and no load of it.
 * Read live bytes through mt_heap_tracker_live or mt_heap_tracker_cats. */
struct mt_heap_cats {
    long long allocs[MT_HEAP_NCAT], frees[MT_HEAP_NCAT], bytes[MT_HEAP_NCAT];
    long long room[MT_HEAP_NCAT], room_total;
    /* Peaks since the innermost region last changed (the live bytes then, at least). They
     * never exceed the global peaks, so the hooks test against these only (through room)
     * and the global peak inside: one test per allocation, as before region peaks existed. */
    long long seg_peak[MT_HEAP_NCAT], seg_peak_total;
    long long peak[MT_HEAP_NCAT], peak_total;
};

enum { MT_SITE_CHUNK = 4096 };

/* Sampled mode's room: while the process has one thread, the hooks' inline paths count
 * the blocks without a site of one category (the thread's, when it armed them) here, in
 * one place, instead of in that category's and the total's counters. An allocation adds
 * its size to `due` (the bytes and the sampler's countdown at once), counts allocs and
 * takes its size from `left`; a free of a block whose header word is `tail` gives it back
 * and counts frees. `left` starts (mt_heap_room_open) at the smaller of the category's room
 * and the total's, and every change of either outside the room that lowers it first folds
 * the room in (mt_heap_room_close): so `left` never exceeds either, and its sign still
 * says, at the very allocation, that a running peak may have risen (mt_heap_room_settle
 * then folds and raises it exactly). Pending: base - left live bytes, due + budget bytes
 * and the two counts, folded (heap_tracker.c) by every taker of the lock and every reader,
 * so whatever reads the counters sees them exact; last_alloc is cleared at a fold that
 * brought allocations (they came after it). Opened only in sampled mode with one thread;
 * once threads exist, the first taker of the lock closes it for good. */
struct mt_heap_room {
    /* the hooks' fields first: one cache line (the struct is aligned to one) */
    /* header word of the blocks it counts; closed: with MT_REC_CLOSED (before it first
     * opens: MT_REC_CLOSED and the magic alone, heap_state.c), which no block's header
     * matches but one an interrupted inline path wrote */
    _Alignas(64) uint64_t tail;
    uint64_t limit; /* blocks below it take the inline malloc path: the page size while the
                     * owner is armed, 0 otherwise (mt_heap_disarm) */
    /* Bytes allocated in the room minus the owner's sampling countdown when it was last
     * folded (`budget`): from below 0, an allocation that brings it to 0 or above is due
     * for a sample (the countdown, kept here while the room is open; handed back to the
     * owner's mt_heap_tls.countdown when it closes it). */
    long long due;
    long long left;
    long long allocs, frees;
    long long base, budget;
    const struct mt_heap_tls *owner; /* the thread that opened it */
    int cat;
    int open;
};

/* heap_tracker.c: everything a change of live bytes touches, guarded by `lock`. */
struct mt_heap_tracker {
    atomic_int lock;     /* spinlock; guards everything below that is not atomic */
    atomic_int tracking; /* 1 while hooks record; 0 before init and after the report */
    struct mt_heap_cats c;
    uint64_t epoch;                      /* bumped at every new global peak */
    long long stack_hits, stack_unwinds; /* stacks from the stack cache / from unwinding */
    double peak_t;                       /* seconds since t0 of the global peak */
    uintptr_t last_alloc;
    struct mt_heap_room room; /* sampled mode, one thread (see above) */

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
};

/* One live anonymous private mapping (or the part of it still mapped). */
struct mt_heap_map {
    uintptr_t start, end;
    uint32_t site;
    uint8_t cat;
    uint8_t flags;
    double weight; /* sampled-mode weight of the original mapping (1 in full mode) */
};

/* heap_maps.c (lock held). */
struct mt_heap_maps {
    struct mt_heap_map *maps;
    size_t map_count, map_cap;
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

/* One region name's exact peaks over every stretch of time it was the innermost region. */
struct mt_heap_region {
    char name[MT_HEAP_REGION_NAME];
    long long peak_total, peak[MT_HEAP_NCAT];
};

/* heap_tags.c (lock held, except `region`). */
struct mt_heap_tags {
    struct mt_heap_tensor *tensors;
    size_t tensor_count, tensor_cap;
    const char *_Atomic region;
    /* Region peaks, by name (copied: the caller's string may change). region_cur indexes
     * `regions` while the innermost region is tracked, -1 otherwise (none, or the table
     * was full or the name too long: regions_dropped counts those switches). */
    struct mt_heap_region regions[MT_HEAP_MAX_REGIONS];
    size_t region_count;
    int region_cur;
    long long regions_dropped;
};

/* heap_output.c. */
struct mt_heap_out {
    int fd;
    long report_pid;             /* the process that opened fd (a vfork child is not it) */
    atomic_ullong next_point_ns; /* when the hooks write the next point (no helper) */
    atomic_int helper_stop;
    atomic_int helper_running;
    pthread_t helper;
};

/* heap_stacks.c: the process-wide part of the per-thread stack caches. */
struct mt_heap_stacks_shared {
    pthread_key_t key;  /* releases a thread's cache when it exits */
    atomic_int enabled; /* set by the constructor: pthread calls are safe from then on */
};

/* heap_hooks.c: dlsym calls calloc before we know the real one; this pool serves it. */
struct mt_heap_boot {
    _Alignas(64) char pool[64 * 1024];
    size_t used;
};

/* heap_process.c: what the environment tells the programs this process execs (entries of
 * environ are pointed at these, so nothing is allocated). */
struct mt_heap_env {
    char out[4096 + 32];
    char preload[4096];
};

/* heap_device.c (lock held): device memory, one member per kind (heap_device.h). */
enum { MT_DEV_DEVICE = 0, MT_DEV_VMM, MT_DEV_MANAGED, MT_DEV_PINNED, MT_DEV_NKIND };
struct mt_heap_dev_counts {
    long long allocs, frees, bytes, live, peak, failed, unknown_frees;
};
/* One live device block (key: its address), VMM handle (key: the handle) or mapping (key:
 * its address, aux: the handle). key 0 = empty slot. */
struct mt_heap_dev_rec {
    uint64_t key, size, aux;
    uint32_t site, maps; /* maps: live mappings of a handle */
    uint8_t kind, cat, released;
};
struct mt_heap_dev_table {
    struct mt_heap_dev_rec *v;
    size_t cap, count;
};
struct mt_heap_dev_site {
    uint64_t hash;
    const uintptr_t *frames;
    uint32_t depth;
    uint8_t kind, cat;
    long long allocs, bytes, live, live_allocs, peak_live, leaked_bytes, leaked_allocs;
    uint64_t peak_epoch;
};
struct mt_heap_device {
    struct mt_heap_dev_counts k[MT_DEV_NKIND];
    struct mt_heap_dev_counts cat[MT_DEV_NKIND][MT_HEAP_NCAT]; /* failed, unknown_frees unused */
    uint64_t epoch[MT_DEV_NKIND];                              /* bumped at each kind's peak */
    long long gpu_live, gpu_peak;                              /* device + vmm */
    long long gpu_cat_live[MT_HEAP_NCAT], gpu_cat_peak[MT_HEAP_NCAT];
    double gpu_peak_t;
    long long mapped_live, mapped_peak;
    struct mt_heap_dev_table ptrs, handles, maps;
    struct mt_heap_dev_site *sites;
    size_t site_count, site_cap;
    uint32_t *site_index; /* site + 1, open addressing */
    size_t site_index_cap;
    char *arena;
    size_t arena_used, arena_cap;
};

/* heap_cuda.c: the driver's real entry points, one per wrapper (heap_cuda.c's slots). */
enum { MT_CUDA_SLOTS = 24 };
struct mt_heap_cuda {
    void *_Atomic real[MT_CUDA_SLOTS];
    void *_Atomic real_dlsym;
    atomic_llong unwrapped; /* entry points handed back unwrapped (a second driver) */
};

struct mt_heap_state {
    struct mt_heap_config cfg;
    struct mt_heap_tracker trk;
    struct mt_heap_maps map;
    struct mt_heap_tags tag;
    struct mt_heap_out out;
    struct mt_heap_stacks_shared stk;
    struct mt_heap_device dev;
    struct mt_heap_cuda cuda;
    atomic_ulong sample_streams; /* heap_sample.c: per-thread streams handed out */
    struct mt_heap_boot boot;
    struct mt_heap_env env;
    atomic_int init_state; /* 0 none, 1 in progress, 2 done */
};

MT_HIDDEN extern struct mt_heap_state mt_heap_g;

struct mt_heap_stack_cache; /* heap_stacks.c */

/* Per-thread state. initial-exec TLS: the general-dynamic model may call malloc. */
struct mt_heap_tls {
    int guard;
    int cat;
    int rng_ready;
    int in_init;
    int64_t countdown; /* sampled mode: bytes until the next sample; 0 in full mode */
    /* Blocks below this size may take the hooks' inline path: the page size while the
     * thread is "armed" (not inside the profiler, the tracker recording: set by the hooks'
     * slow path), 0 otherwise. Every change of `guard` and the end of tracking disarm it,
     * so one compare stands for three. */
    uint64_t fast_limit;
    /* The header word (mt_heap_hdr_tail) of a block of this thread's category without a
     * site, counted: written by the slow path when it arms the inline path, which stores it
     * as it is (a category change disarms). */
    uint64_t plain_tail;
    uint64_t rng;
    struct mt_heap_stack_cache *sc;
    int sc_state; /* 0 not yet, 1 ok, -1 off */
};
MT_HIDDEN extern __thread struct mt_heap_tls mt_heap_tls __attribute__((tls_model("initial-exec")));

/* Disarms this thread's inline paths (its fast_limit and, with one thread, the room's
 * limit: sampled mode's inline malloc path); the hooks' slow path arms them again. */
static inline void mt_heap_disarm(void)
{
    mt_heap_tls.fast_limit = 0;
    if (__libc_single_threaded) mt_heap_g.trk.room.limit = 0;
}

/* The configuration (read-only once init is done). */
static inline const struct mt_heap_config *mt_heap_config(void)
{
    return &mt_heap_g.cfg;
}

/* ---- shared primitives ------------------------------------------------------------- */

/* The one lock: a test-and-test-and-set spinlock that yields the CPU after a short spin
 * (critical sections are a few dozen instructions; a mutex costs twice as much). While the
 * process has a single thread (glibc's __libc_single_threaded, which only the thread
 * holding no lock can clear, inside pthread_create) it is a plain store: an atomic
 * exchange per malloc costs more than the rest of the sampled-mode hook. */
MT_HIDDEN void mt_heap_lock_contended(void); /* spins, then yields (heap_state.c) */

/* Folds sampled mode's room into the counters and closes it, disarming this thread's
 * inline path (heap_tracker.c). Lock held, or one thread. */
MT_HIDDEN void mt_heap_room_close(void);
/* mt_heap_room_close when the room is open. */
static inline void mt_heap_room_flush(void)
{
    if (MT_UNLIKELY(mt_heap_g.trk.room.open)) mt_heap_room_close();
}

/* Takes the lock; whoever holds it sees the counters without a room open (flushed). */
static inline void mt_heap_lock(void)
{
    atomic_int *l = &mt_heap_g.trk.lock;
    if (__libc_single_threaded)
        atomic_store_explicit(l, 1, memory_order_relaxed);
    else if (MT_UNLIKELY(atomic_exchange_explicit(l, 1, memory_order_acquire)))
        mt_heap_lock_contended();
    mt_heap_room_flush();
}

static inline void mt_heap_unlock(void)
{
    atomic_store_explicit(&mt_heap_g.trk.lock, 0, memory_order_release);
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
/* mt_heap_real.malloc until init resolves it (heap_hooks.c): init first, or the bootstrap
 * pool while init runs. */
MT_HIDDEN void *mt_heap_malloc_boot(size_t total);

/* Memory for our own tables, straight from the kernel (never through the hooks). NULL
 * when the kernel refuses; mt_heap_pages_free(NULL, n) does nothing. Thread-safe. */
MT_HIDDEN void *mt_heap_pages(size_t bytes);
MT_HIDDEN void mt_heap_pages_free(void *p, size_t bytes);
/* CLOCK_MONOTONIC in nanoseconds. */
MT_HIDDEN uint64_t mt_heap_now_ns(void);
/* Sets/clears this thread's recursion guard (and disarms its inline path: the hooks' slow
 * path arms it again); returns the previous value. The only writer of `guard`. */
static inline int mt_heap_guard(int on)
{
    int old = mt_heap_tls.guard;
    mt_heap_tls.guard = on;
    mt_heap_disarm();
    return old;
}

static inline uint64_t mt_heap_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* heap_process.c: resolves the real functions and reads the configuration, once, in
 * whichever hook comes first; the others wait for it. */
MT_HIDDEN void mt_heap_init_slow(void);
static inline void mt_heap_ensure_init(void)
{
    if (MT_UNLIKELY(atomic_load_explicit(&mt_heap_g.init_state, memory_order_acquire) != 2))
        mt_heap_init_slow();
}
/* The exit path of _exit/_Exit: writes the report when it safely can, then exits. */
MT_HIDDEN __attribute__((noreturn)) void mt_heap_exit_now(int status);

#endif
