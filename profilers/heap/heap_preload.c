/* heap_preload.c — the LD_PRELOAD hooks and the in-memory tables of the heap profiler.
 *
 * What it is for: interposing malloc, calloc, realloc, reallocarray, free,
 * malloc_usable_size, posix_memalign, aligned_alloc, memalign, valloc, pvalloc and
 * anonymous private mmap/munmap/mremap; recording every block (or, in sampled mode, exact
 * counters for every block and a stack for the sampled ones) under one lock, so that the
 * global peak and the per-site live bytes at that peak are exact; and the weak-symbol API
 * of memtrade/memcat.h. What it is not for: writing the report or resolving symbols
 * (heap_output.c), PAPI SDE (heap_sde.c).
 *
 * Hooks do three things, as heaptrack's do: lazy init, call the real function found with
 * dlsym(RTLD_NEXT), record. A static pool serves the calloc dlsym itself makes; a
 * thread-local guard makes allocations of our own (libunwind, libdw, SDE) pass through
 * unrecorded; tables live in pages from the real mmap, never from malloc. Each block
 * carries a 16-byte header of ours below it (see "block headers").
 */
#define _GNU_SOURCE
#include "heap_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#define MT_EXPORT __attribute__((visibility("default")))

struct mt_heap_state mt_heap_g = {.out_fd = -1, .region_cur = -1};
struct mt_heap_real mt_heap_real;
#define G mt_heap_g
#define R mt_heap_real

/* Per-thread state. initial-exec TLS: the general-dynamic model may call malloc. */
struct mt_heap_tls {
    int guard;
    int cat;
    int rng_ready;
    int in_init;
    double countdown; /* sampled mode: bytes until the next sample */
    uint64_t rng;
};
static __thread struct mt_heap_tls tls __attribute__((tls_model("initial-exec")));

/* ---- bootstrap ---------------------------------------------------------------------- */

/* dlsym calls calloc before we know the real one; this pool serves it. Never freed. */
static _Alignas(64) char boot_pool[64 * 1024];
static size_t boot_used;

static void *boot_alloc(size_t n)
{
    size_t off = (boot_used + 15) & ~(size_t)15;
    if (n > sizeof boot_pool - off - 16) return NULL;
    *(size_t *)(boot_pool + off) = n;
    boot_used = off + 16 + n;
    return boot_pool + off + 16;
}

static int in_boot_pool(const void *p)
{
    return (const char *)p >= boot_pool && (const char *)p < boot_pool + sizeof boot_pool;
}

/* ---- block headers -------------------------------------------------------------------
 *
 * Every block the malloc family hands out carries 16 bytes of ours right below it: its
 * requested size, site and category. A free reads them next to glibc's own chunk header,
 * in a cache line glibc touches anyway, so exact per-category counters cost no table
 * lookup (a table of every live block cost a cache miss per malloc and per free). The
 * real block starts 2^shift bytes lower (16; an aligned block's alignment). */
struct mt_heap_hdr {
    uint64_t size; /* requested */
    uint32_t site; /* MT_HEAP_NO_SITE when the block has no stack */
    uint8_t cat;
    uint8_t flags; /* MT_REC_TRACKED (counted), MT_REC_TABLE (also recorded), MT_REC_TENSORS */
    uint8_t shift;
    uint8_t magic;
};
enum { HDR = 16, HDR_SHIFT = 4, HDR_MAGIC = 0xa5 };
_Static_assert(sizeof(struct mt_heap_hdr) == HDR, "header size");

static inline struct mt_heap_hdr *hdr_of(const void *p)
{
    return (struct mt_heap_hdr *)p - 1;
}

/* Writes the header of a fresh real block; returns the pointer handed out. */
static inline void *hdr_init(void *real, unsigned shift, uint64_t n)
{
    char *p = (char *)real + ((size_t)1 << shift);
    struct mt_heap_hdr *h = hdr_of(p);
    h->size = n;
    h->site = MT_HEAP_NO_SITE;
    h->cat = 0;
    h->flags = 0;
    h->shift = (uint8_t)shift;
    h->magic = HDR_MAGIC;
    return p;
}

static atomic_int init_state; /* 0 none, 1 in progress, 2 done */

void mt_heap_yield(void)
{
    sched_yield();
}

int mt_heap_guard(int on)
{
    int old = tls.guard;
    tls.guard = on;
    return old;
}

uint64_t mt_heap_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *mt_heap_pages(size_t bytes)
{
    void *p = R.mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void mt_heap_pages_free(void *p, size_t bytes)
{
    if (p) R.munmap(p, bytes);
}

static int find_self(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t me = (uintptr_t)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (me >= lo && me < hi) {
            G.self_lo = lo;
            G.self_hi = hi;
            return 1;
        }
    }
    return 0;
}

static long env_long(const char *name, long def, long lo, long hi)
{
    const char *s = getenv(name);
    if (!s || !*s) return def;
    char *end;
    long v = strtol(s, &end, 10);
    return (*end || v < lo || v > hi) ? def : v;
}

static void *resolve(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

/* Resolves the real functions and reads the configuration. Runs once, in whichever hook
 * comes first (usually during libc's own startup, single-threaded). */
static void init_slow(void)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&init_state, &expect, 1)) {
        while (atomic_load(&init_state) != 2)
            sched_yield();
        return;
    }
    tls.in_init = 1;
    R.malloc = resolve("malloc");
    R.free = resolve("free");
    R.calloc = resolve("calloc");
    R.realloc = resolve("realloc");
    R.posix_memalign = resolve("posix_memalign");
    R.malloc_usable_size = resolve("malloc_usable_size");
    R.memalign = resolve("memalign");
    R.mmap = resolve("mmap");
    R.munmap = resolve("munmap");
    R.mremap = resolve("mremap");
    R.pthread_create = resolve("pthread_create");
    tls.in_init = 0;

    int old = mt_heap_guard(1);
    const char *mode = getenv("MEMTRADE_HEAP_MODE");
    G.mode = (mode && strcmp(mode, "sampled") == 0) ? MT_HEAP_SAMPLED : MT_HEAP_FULL;
    G.sample_bytes = (double)env_long("MEMTRADE_HEAP_SAMPLE_BYTES", 512 * 1024, 1, 1L << 40);
    G.seed = (uint64_t)env_long("MEMTRADE_HEAP_SEED", 1, 0, __LONG_MAX__);
    G.interval_ms = env_long("MEMTRADE_HEAP_INTERVAL_MS", 10, 0, 3600 * 1000);
    G.follow_exec = (int)env_long("MEMTRADE_HEAP_FOLLOW_EXEC", 1, 0, 1);
    const char *out = getenv("MEMTRADE_HEAP_OUT");
    if (!out || !*out) out = "memtrade-heap.%p.txt";
    size_t n = strlen(out);
    if (n >= sizeof G.out_pattern) n = sizeof G.out_pattern - 1;
    memcpy(G.out_pattern, out, n);
    G.out_pattern[n] = '\0';
    G.page_size = sysconf(_SC_PAGESIZE);
    G.t0_ns = mt_heap_now_ns();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    G.t0_coarse_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    dl_iterate_phdr(find_self, (void *)(uintptr_t)&init_slow);
    mt_heap_out_open(0);
    mt_heap_guard(old);
    atomic_store(&G.tracking, 1);
    atomic_store(&init_state, 2);
}

static inline void ensure_init(void)
{
    if (MT_UNLIKELY(atomic_load_explicit(&init_state, memory_order_acquire) != 2)) init_slow();
}

/* ---- stacks and sites ------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Captures the caller's stack without our own frames; returns the depth. */
static __attribute__((noinline)) int capture(uintptr_t *out)
{
    void *buf[MT_HEAP_MAX_FRAMES + 16];
    int n = unw_backtrace(buf, MT_HEAP_MAX_FRAMES + 16);
    int i = 0;
    while (i < n && (uintptr_t)buf[i] >= G.self_lo && (uintptr_t)buf[i] < G.self_hi)
        i++;
    int depth = 0;
    for (; i < n && depth < MT_HEAP_MAX_FRAMES; i++)
        out[depth++] = (uintptr_t)buf[i];
    return depth;
}

static uint64_t hash_frames(const uintptr_t *f, int depth)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)depth;
    for (int i = 0; i < depth; i++)
        h = (h ^ f[i]) * 0x100000001b3ULL;
    return mix64(h);
}

static int grow_site_index(void)
{
    size_t cap = G.site_index_cap ? G.site_index_cap * 2 : 4096;
    uint32_t *idx = mt_heap_pages(cap * sizeof *idx);
    if (!idx) return -1;
    for (size_t i = 0; i < G.site_count; i++) {
        size_t j = mt_heap_site_at(i)->hash & (cap - 1);
        while (idx[j])
            j = (j + 1) & (cap - 1);
        idx[j] = (uint32_t)i + 1;
    }
    mt_heap_pages_free(G.site_index, G.site_index_cap * sizeof *idx);
    G.site_index = idx;
    G.site_index_cap = cap;
    return 0;
}

static const uintptr_t *arena_copy(const uintptr_t *f, int depth)
{
    size_t need = (size_t)depth * sizeof *f;
    if (G.arena_used + need > G.arena_cap) {
        size_t cap = 1u << 20;
        char *a = mt_heap_pages(cap);
        if (!a) return NULL;
        G.arena = a; /* the old chunk stays: sites point into it */
        G.arena_used = 0;
        G.arena_cap = cap;
    }
    uintptr_t *dst = (uintptr_t *)(G.arena + G.arena_used);
    memcpy(dst, f, need);
    G.arena_used += need;
    return dst;
}

/* Finds or creates the site of (frames, cat). Caller holds the lock. */
static uint32_t site_get(uint64_t h, const uintptr_t *f, int depth, int cat)
{
    h = mix64(h ^ (uint64_t)cat);
    if ((G.site_count + 1) * 2 > G.site_index_cap && grow_site_index() != 0) return MT_HEAP_NO_SITE;
    size_t mask = G.site_index_cap - 1;
    for (size_t j = h & mask;; j = (j + 1) & mask) {
        uint32_t v = G.site_index[j];
        if (!v) break;
        struct mt_heap_site *s = mt_heap_site_at(v - 1);
        if (s->hash == h && s->cat == (uint32_t)cat && s->depth == (uint32_t)depth &&
            memcmp(s->frames, f, (size_t)depth * sizeof *f) == 0)
            return v - 1;
    }
    size_t i = G.site_count;
    if (i / MT_SITE_CHUNK >= sizeof G.site_chunks / sizeof G.site_chunks[0]) return MT_HEAP_NO_SITE;
    if (!G.site_chunks[i / MT_SITE_CHUNK]) {
        G.site_chunks[i / MT_SITE_CHUNK] =
            mt_heap_pages(MT_SITE_CHUNK * sizeof(struct mt_heap_site));
        if (!G.site_chunks[i / MT_SITE_CHUNK]) return MT_HEAP_NO_SITE;
    }
    const uintptr_t *copy = depth ? arena_copy(f, depth) : NULL;
    if (depth && !copy) return MT_HEAP_NO_SITE;
    struct mt_heap_site *s = mt_heap_site_at(i);
    memset(s, 0, sizeof *s);
    s->hash = h;
    s->frames = copy;
    s->depth = (uint32_t)depth;
    s->cat = (uint32_t)cat;
    s->peak_epoch = G.epoch;
    G.site_count++;
    size_t j = h & mask;
    while (G.site_index[j])
        j = (j + 1) & mask;
    G.site_index[j] = (uint32_t)i + 1;
    return (uint32_t)i;
}

/* Called before a site's live bytes change: if a global peak happened since the site last
 * changed, its live bytes then were the current ones, so keep them as its peak share. */
static inline void site_touch(struct mt_heap_site *s)
{
    if (s->peak_epoch != G.epoch) {
        s->peak_live = s->live;
        s->peak_epoch = G.epoch;
    }
}

/* ---- records ---------------------------------------------------------------------- */

/* Fibonacci hashing of the address without its alignment bits. */
static inline size_t rec_slot(uintptr_t p, unsigned shift)
{
    return (size_t)(((uint64_t)(p >> 4) * 0x9e3779b97f4a7c15ULL) >> shift);
}

static int grow_recs(void)
{
    size_t cap = G.rec_cap ? G.rec_cap * 2 : (1u << 14);
    struct mt_heap_rec *t = mt_heap_pages(cap * sizeof *t);
    if (!t) return -1;
    unsigned shift = 64 - (unsigned)__builtin_ctzll(cap);
    for (size_t i = 0; i < G.rec_cap; i++) {
        if (!G.recs[i].ptr) continue;
        size_t j = rec_slot(G.recs[i].ptr, shift);
        while (t[j].ptr)
            j = (j + 1) & (cap - 1);
        t[j] = G.recs[i];
    }
    mt_heap_pages_free(G.recs, G.rec_cap * sizeof *t);
    G.recs = t;
    G.rec_cap = cap;
    G.rec_shift = shift;
    return 0;
}

/* Inserts the record (ptr, size, site, cat, flags). If one existed for ptr (a block whose
 * free we missed), it is copied to *old and 1 is returned; 0 if not; -1 when out of memory.
 * The fields come by value, not as a struct the caller just built on its stack: copying
 * such a struct is a 16-byte load of two 8-byte stores, which store-to-load forwarding
 * cannot serve, and that stall cost more than anything else in a hook. */
static int rec_put(uintptr_t ptr, uint64_t size, uint32_t site, uint8_t cat, uint8_t flags,
                   struct mt_heap_rec *old)
{
    if (MT_UNLIKELY((G.rec_count + 1) * 2 > G.rec_cap) && grow_recs() != 0) return -1;
    size_t mask = G.rec_cap - 1;
    size_t j = rec_slot(ptr, G.rec_shift);
    while (G.recs[j].ptr && G.recs[j].ptr != ptr)
        j = (j + 1) & mask;
    struct mt_heap_rec *d = &G.recs[j];
    int had = d->ptr != 0;
    if (MT_UNLIKELY(had))
        *old = *d;
    else
        G.rec_count++;
    d->ptr = ptr;
    d->size = size;
    d->site = site;
    d->cat = cat;
    d->flags = flags;
    return had;
}

static struct mt_heap_rec *rec_find(uintptr_t p)
{
    if (!G.rec_cap) return NULL;
    size_t mask = G.rec_cap - 1;
    for (size_t j = rec_slot(p, G.rec_shift); G.recs[j].ptr; j = (j + 1) & mask)
        if (G.recs[j].ptr == p) return &G.recs[j];
    return NULL;
}

/* Removes the record of p into *out; returns 1 if there was one. Backward-shift delete
 * keeps probe chains intact without tombstones. */
static int rec_take(uintptr_t p, struct mt_heap_rec *out)
{
    struct mt_heap_rec *r = rec_find(p);
    if (!r) return 0;
    *out = *r;
    size_t mask = G.rec_cap - 1;
    size_t i = (size_t)(r - G.recs);
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!G.recs[j].ptr) break;
        size_t home = rec_slot(G.recs[j].ptr, G.rec_shift);
        /* move j back to i unless its home lies cyclically in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            G.recs[i] = G.recs[j];
            i = j;
        }
    }
    G.recs[i].ptr = 0;
    G.rec_count--;
    return 1;
}

/* ---- accounting (lock held) ------------------------------------------------------- */

static inline double sample_weight(uint64_t size)
{
    if (G.mode != MT_HEAP_SAMPLED) return 1.0;
    return 1.0 / -expm1(-(double)size / G.sample_bytes);
}

static inline void cat_add(int cat, long long n)
{
    G.c.live[cat] += n;
    if (G.c.live[cat] > G.c.seg_peak[cat]) {
        G.c.seg_peak[cat] = G.c.live[cat];
        if (G.c.live[cat] > G.c.peak[cat]) G.c.peak[cat] = G.c.live[cat];
    }
}

static inline void account_alloc(uintptr_t p, uint64_t n, int cat, uint32_t site)
{
    G.c.allocs[cat]++;
    G.c.bytes[cat] += (long long)n;
    G.c.allocs_total++;
    cat_add(cat, (long long)n);
    if (site != MT_HEAP_NO_SITE) {
        struct mt_heap_site *s = mt_heap_site_at(site);
        double w = sample_weight(n);
        site_touch(s);
        s->allocs += w;
        s->bytes += w * (double)n;
        s->live += w * (double)n;
        s->live_allocs += w;
    }
    G.c.live_total += (long long)n;
    if (G.c.live_total > G.c.seg_peak_total) {
        G.c.seg_peak_total = G.c.live_total;
        if (G.c.live_total > G.c.peak_total) {
            G.c.peak_total = G.c.live_total;
            G.epoch++;
            struct timespec ts; /* coarse: a vDSO read, not a clock query, per new peak */
            clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
            G.peak_t = (double)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec -
                                G.t0_coarse_ns) *
                       1e-9;
        }
    }
    G.last_alloc = p;
}

/* Removes `n` bytes of a block (all of it, or a partial unmap) from the counters. */
static inline void account_release(uint64_t n, int cat, uint32_t site, double w)
{
    G.c.live[cat] -= (long long)n;
    G.c.live_total -= (long long)n;
    if (site != MT_HEAP_NO_SITE) {
        struct mt_heap_site *s = mt_heap_site_at(site);
        site_touch(s);
        s->live -= w * (double)n;
    }
}

static void tensors_detach(uintptr_t block);

static inline __attribute__((always_inline)) void account_free(const struct mt_heap_rec *r)
{
    if (r->flags & MT_REC_TENSORS) tensors_detach(r->ptr);
    G.c.frees[r->cat]++;
    double w = r->site != MT_HEAP_NO_SITE ? sample_weight(r->size) : 1.0;
    account_release(r->size, r->cat, r->site, w);
    if (r->site != MT_HEAP_NO_SITE) mt_heap_site_at(r->site)->live_allocs -= w;
    if (r->ptr == G.last_alloc) {
        if (r->site != MT_HEAP_NO_SITE) mt_heap_site_at(r->site)->temporary += w;
        G.last_alloc = 0;
    }
}

/* ---- the recording path ------------------------------------------------------------ */

static uint64_t rng_next(void)
{
    if (!tls.rng_ready) {
        static atomic_ulong threads;
        tls.rng = mix64(G.seed * 0x9e3779b97f4a7c15ULL + atomic_fetch_add(&threads, 1) + 1);
        tls.rng_ready = 1;
    }
    uint64_t x = tls.rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    tls.rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static double next_interval(void)
{
    double u = ((double)(rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    return -G.sample_bytes * log(u);
}

/* Sampled mode: a Poisson process of rate 1/R over allocated bytes; a block is sampled when
 * a point falls in it, which happens with probability 1 - exp(-size/R). */
static int should_sample(uint64_t n)
{
    if (G.mode == MT_HEAP_FULL) return 1;
    if (MT_UNLIKELY(!tls.rng_ready)) tls.countdown = next_interval();
    tls.countdown -= (double)n;
    if (tls.countdown > 0) return 0;
    while (tls.countdown <= 0)
        tls.countdown += next_interval();
    return 1;
}

/* ---- the per-thread stack cache ------------------------------------------------------
 *
 * unw_backtrace costs more than everything else in a hook. But a stack is a function of
 * the stack memory: if, at the same stack address, every slot that held a return address
 * of a stack seen before still holds it, unwinding would find the same return addresses.
 * So each thread keeps recent stacks keyed by the hook's frame address, with the offsets
 * of their return-address slots (found by scanning upward for each address unw_backtrace
 * returned, within the thread's stack); a hit costs one load and compare per frame, and
 * also remembers the site of each category. A stack whose slots cannot all be found, or a
 * frame outside the thread's stack (coroutines), is simply not cached. */
enum { SC_SETS = 64, SC_WAYS = 16 };

struct sc_ent {
    uintptr_t anchor; /* 0 = empty */
    uint32_t depth;
    uint32_t failed; /* no slots found for the stack returning to ips[0]: do not rescan */
    uint64_t key;    /* the lookup key it was filed under (see struct sc_hint) */
    uint32_t site[MT_HEAP_NCAT]; /* MT_HEAP_NO_SITE until known */
    uint64_t hash;
    uint32_t off[MT_HEAP_MAX_FRAMES]; /* slot of ips[k] = anchor + off[k] */
    uintptr_t ips[MT_HEAP_MAX_FRAMES];
};

/* Many stacks can share the hook's frame and return address (every scratch buffer a
 * GEMM library allocates, from each layer). A hint keeps, per (frame, return address),
 * the slot offsets of the first 16 return addresses of a stack cached there; the set is
 * chosen by the values now in those slots, so such stacks spread over the sets. A lookup
 * tries each hint of its (frame, return address) in turn; a stack is filed under the hint
 * of its own slot layout (one is added when none matches), so its key is made of its own
 * return addresses. With a single hint per pair, a stack of another layout read locals
 * in those slots, got a new key at every call and missed every time (half of a training
 * run's allocations unwound, depending on ASLR). Correctness never depends on the hints
 * (entries are validated). */
enum { SC_HINTS = 128, SC_HINT_WAYS = 4, SC_HINT_FRAMES = 16 };
struct sc_hint {
    uintptr_t anchor, ret;
    uint32_t n;
    uint32_t off[SC_HINT_FRAMES];
};

struct sc {
    uintptr_t lo, hi; /* this thread's stack */
    unsigned next[SC_SETS];
    uint64_t tag[SC_SETS][SC_WAYS]; /* e[s][w].key, contiguous: a lookup reads one line */
    struct sc_hint hint[SC_HINTS][SC_HINT_WAYS];
    unsigned char hint_next[SC_HINTS]; /* the way to replace next when a row is full */
    struct sc_ent e[SC_SETS][SC_WAYS];
};

static __thread struct sc *tls_sc __attribute__((tls_model("initial-exec")));
static __thread int tls_sc_state __attribute__((tls_model("initial-exec"))); /* 0, 1 ok, -1 off */
static pthread_key_t sc_key;
static atomic_int sc_enabled; /* set by the constructor: pthread calls are safe from then on */

static void sc_release(void *p)
{
    tls_sc_state = -1; /* later allocations of this exiting thread go uncached */
    tls_sc = NULL;
    mt_heap_pages_free(p, sizeof(struct sc));
}

static struct sc *sc_get(void)
{
    if (MT_LIKELY(tls_sc_state == 1)) return tls_sc;
    if (tls_sc_state < 0 || !atomic_load_explicit(&sc_enabled, memory_order_relaxed)) return NULL;
    tls_sc_state = -1;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return NULL;
    int rc = pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    if (rc != 0) return NULL;
    struct sc *c = mt_heap_pages(sizeof *c);
    if (!c) return NULL;
    c->lo = (uintptr_t)addr;
    c->hi = (uintptr_t)addr + size;
    pthread_setspecific(sc_key, c);
    tls_sc = c;
    tls_sc_state = 1;
    return c;
}

static inline int sc_valid(const struct sc_ent *e, uintptr_t anchor)
{
    for (uint32_t k = 0; k < e->depth; k++)
        if (*(const uintptr_t *)(anchor + e->off[k]) != e->ips[k]) return 0;
    return 1;
}

/* Finds the slots of ips in the stack above the hook's frame; 0 when one is missing. The
 * hook keeps a frame pointer, so its return address, ips[0], must sit right above it;
 * from there each next address is searched upward, through the application's frames
 * only (our own frames, with stale copies of earlier stacks, lie below). */
static int sc_fill(struct sc_ent *e, const struct sc *c, uintptr_t anchor, const uintptr_t *ips,
                   int depth, uint64_t hash)
{
    if (depth < 1 || *(const uintptr_t *)(anchor + sizeof(uintptr_t)) != ips[0]) return 0;
    uintptr_t pos = anchor + sizeof(uintptr_t);
    const uintptr_t end = c->hi; /* all mapped: the used part of this thread's stack */
    for (int k = 0; k < depth; k++) {
        const uintptr_t want = ips[k]; /* a local: the stores below may alias the stack */
        while (pos + sizeof(uintptr_t) <= end && *(const uintptr_t *)pos != want)
            pos += sizeof(uintptr_t);
        if (pos + sizeof(uintptr_t) > end || pos - anchor > UINT32_MAX) return 0;
        e->off[k] = (uint32_t)(pos - anchor);
        e->ips[k] = ips[k];
        pos += sizeof(uintptr_t);
    }
    e->anchor = anchor;
    e->failed = 0;
    e->depth = (uint32_t)depth;
    e->hash = hash;
    for (int i = 0; i < MT_HEAP_NCAT; i++)
        e->site[i] = MT_HEAP_NO_SITE;
    return 1;
}

struct mt_heap_stack {
    int sampled, depth, hit;
    uint64_t hash;
    const uintptr_t *frames; /* buf, or the cache entry's ips */
    struct sc_ent *ent;      /* the cache entry holding this stack, or NULL */
    uintptr_t buf[MT_HEAP_MAX_FRAMES];
};

/* The lookup key of the stack now above anchor under a hint: its values in the hint's
 * slots (all below the stack top, hence mapped: see sc_fill). */
static inline uint64_t hint_key(const struct sc_hint *hint, uint64_t key0, uintptr_t anchor)
{
    uint64_t k = key0;
    for (uint32_t i = 1; i < hint->n; i++)
        k = (k ^ *(const uintptr_t *)(anchor + hint->off[i])) * 0x100000001b3ULL;
    return k;
}

/* Looks for the stack above anchor in set s under key k; fills st and returns 1 on a hit.
 * Clears *rescan when a scan for this return address failed here before (costly). */
static inline int sc_lookup(struct sc *c, unsigned s, uint64_t k, uintptr_t anchor, uintptr_t ret,
                            struct mt_heap_stack *st, int *rescan)
{
    for (int w = 0; w < SC_WAYS; w++) {
        struct sc_ent *e = &c->e[s][w];
        if (c->tag[s][w] != k || e->anchor != anchor) continue;
        if (e->failed) {
            *rescan &= e->ips[0] != ret;
        } else if (sc_valid(e, anchor)) {
            st->frames = e->ips;
            st->depth = (int)e->depth;
            st->hash = e->hash;
            st->ent = e;
            st->hit = 1;
            return 1;
        }
    }
    return 0;
}

/* anchor: the hook's __builtin_frame_address(0) (its return address lies right above). */
static __attribute__((noinline)) void stack_for(struct mt_heap_stack *st, uint64_t n,
                                                uintptr_t anchor)
{
    st->sampled = should_sample(n);
    st->depth = 0;
    st->hash = 0;
    st->frames = st->buf;
    st->ent = NULL;
    st->hit = 0;
    if (!st->sampled) return;
    struct sc *c = sc_get();
    if (c && !(anchor > c->lo && anchor + 2 * sizeof(uintptr_t) <= c->hi)) c = NULL;
    uintptr_t ret = c ? *(const uintptr_t *)(anchor + sizeof(uintptr_t)) : 0;
    uint64_t key0 = mix64(anchor ^ (ret << 16));
    size_t row = key0 & (SC_HINTS - 1);
    uint64_t key = key0; /* the first candidate's key: where a failed scan is filed */
    unsigned set = (unsigned)(mix64(key0) & (SC_SETS - 1));
    int rescan = c != NULL;
    if (c) {
        int any = 0, first = 1;
        for (int h = 0; h <= SC_HINT_WAYS; h++) {
            uint64_t k = key0;
            if (h < SC_HINT_WAYS) {
                const struct sc_hint *hint = &c->hint[row][h];
                if (hint->anchor != anchor || hint->ret != ret) continue;
                k = hint_key(hint, key0, anchor);
                any = 1;
            } else if (any) {
                break;
            }
            unsigned s_ = (unsigned)(mix64(k) & (SC_SETS - 1));
            if (first) {
                key = k;
                set = s_;
                first = 0;
            }
            if (sc_lookup(c, s_, k, anchor, ret, st, &rescan)) return;
        }
    }
    st->depth = capture(st->buf);
    st->hash = hash_frames(st->buf, st->depth);
    if (!rescan) return;
    struct sc_ent tmp;
    if (!sc_fill(&tmp, c, anchor, st->buf, st->depth, st->hash)) {
        unsigned w = c->next[set]++ % SC_WAYS;
        struct sc_ent *e = &c->e[set][w];
        e->key = key;
        c->tag[set][w] = key;
        e->anchor = anchor;
        e->failed = 1;
        e->depth = 0;
        e->ips[0] = ret;
        return;
    }
    /* File it under the hint whose slots are this stack's own (a new one if none is):
     * then its key is made of its own return addresses, the same at every lookup. */
    uint32_t hn = tmp.depth < SC_HINT_FRAMES ? tmp.depth : SC_HINT_FRAMES;
    struct sc_hint *hint = NULL;
    for (int h = 0; h < SC_HINT_WAYS && !hint; h++) {
        struct sc_hint *x = &c->hint[row][h];
        if (x->anchor == anchor && x->ret == ret && x->n == hn &&
            memcmp(x->off, tmp.off, hn * sizeof *x->off) == 0)
            hint = x;
    }
    if (!hint) {
        int h = 0;
        while (h < SC_HINT_WAYS && c->hint[row][h].anchor)
            h++;
        if (h == SC_HINT_WAYS) h = c->hint_next[row]++ % SC_HINT_WAYS;
        hint = &c->hint[row][h];
        hint->anchor = anchor;
        hint->ret = ret;
        hint->n = hn;
        memcpy(hint->off, tmp.off, hn * sizeof *hint->off);
    }
    key = hint_key(hint, key0, anchor);
    set = (unsigned)(mix64(key) & (SC_SETS - 1));
    unsigned w = c->next[set]++ % SC_WAYS;
    struct sc_ent *e = &c->e[set][w];
    memcpy(e, &tmp, sizeof tmp);
    e->key = key;
    c->tag[set][w] = key;
    st->ent = e;
}

/* The site of a captured stack in category cat, from the stack cache when it knows it.
 * Lock held. */
static uint32_t site_for(const struct mt_heap_stack *st, int cat)
{
    if (!st->sampled) return MT_HEAP_NO_SITE;
    if (st->hit)
        G.stack_hits++;
    else
        G.stack_unwinds++;
    if (st->ent && st->ent->site[cat] != MT_HEAP_NO_SITE) return st->ent->site[cat];
    uint32_t site = site_get(st->hash, st->frames, st->depth, cat);
    if (st->ent) st->ent->site[cat] = site;
    return site;
}

static inline int lock_tracking(void)
{
    mt_heap_lock();
    if (MT_UNLIKELY(!atomic_load_explicit(&G.tracking, memory_order_relaxed))) {
        mt_heap_unlock();
        return 0;
    }
    return 1;
}

/* Records block p of n bytes in category cat at site (MT_HEAP_NO_SITE: no stack), then
 * releases the lock, which the caller took with lock_tracking. */
static inline __attribute__((always_inline)) void record_block(void *p, uint64_t n, int cat,
                                                               uint32_t site)
{
    struct mt_heap_hdr *h = hdr_of(p);
    uint8_t flags = MT_REC_TRACKED;
    if (MT_UNLIKELY(n >= (uint64_t)G.page_size)) { /* a block tensors may be reported in */
        struct mt_heap_rec stale;
        if (rec_put((uintptr_t)p, n, site, (uint8_t)cat, 0, &stale) >= 0) flags |= MT_REC_TABLE;
    }
    h->site = site;
    h->cat = (uint8_t)cat;
    h->flags = flags;
    account_alloc((uintptr_t)p, n, cat, site);
    mt_heap_unlock();
    if (MT_UNLIKELY((G.c.allocs_total & 255) == 0)) mt_heap_point_if_due();
}

static void record_alloc_with(void *p, uint64_t n, const struct mt_heap_stack *st)
{
    int cat = tls.cat;
    if (!lock_tracking()) return;
    record_block(p, n, cat, site_for(st, cat));
}

/* Sampled mode's fast path, inlined in the hooks: an allocation the Poisson process does
 * not sample (nearly all of them) needs no stack, so it skips the stack machinery and
 * its calls. Returns 0 (nothing done) when the block must go the full way. */
static inline __attribute__((always_inline)) int record_unsampled(void *p, uint64_t n)
{
    if (G.mode != MT_HEAP_SAMPLED || MT_UNLIKELY(!tls.rng_ready)) return 0;
    double left = tls.countdown - (double)n;
    if (MT_UNLIKELY(left <= 0)) return 0; /* sampled: should_sample redoes the subtraction */
    tls.countdown = left;
    int cat = tls.cat;
    if (lock_tracking()) record_block(p, n, cat, MT_HEAP_NO_SITE);
    return 1;
}

static __attribute__((noinline)) void record_alloc(void *p, uint64_t n, uintptr_t anchor)
{
    struct mt_heap_stack st;
    stack_for(&st, n, anchor);
    record_alloc_with(p, n, &st);
}

static inline int should_record(void)
{
    return !tls.guard && atomic_load_explicit(&G.tracking, memory_order_relaxed);
}

#define RECORD(p, n)                                                                               \
    do {                                                                                           \
        if ((p) && should_record()) {                                                              \
            tls.guard = 1;                                                                         \
            if (!record_unsampled((p), (n)))                                                       \
                record_alloc((p), (n), (uintptr_t)__builtin_frame_address(0));                     \
            tls.guard = 0;                                                                         \
        }                                                                                          \
    } while (0)

/* ---- malloc family hooks ------------------------------------------------------------ */

/* A real block of n + 16 bytes with its header; NULL (errno set) when it cannot. */
static inline void *plain_alloc(size_t n)
{
    size_t total;
    if (MT_UNLIKELY(__builtin_add_overflow(n, (size_t)HDR, &total))) {
        errno = ENOMEM;
        return NULL;
    }
    void *real = R.malloc(total);
    return real ? hdr_init(real, HDR_SHIFT, n) : NULL;
}

/* A block aligned to `align` (a power of two): the header sits in the alignment's room. */
static void *aligned_alloc_block(size_t align, size_t n)
{
    if (align <= HDR) return plain_alloc(n);
    size_t total;
    if (__builtin_add_overflow(n, align, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *real = R.memalign(align, total);
    return real ? hdr_init(real, (unsigned)__builtin_ctzl(align), n) : NULL;
}

/* memalign's rule: an alignment that is not a power of two is rounded up to one. */
static int round_align(size_t *align)
{
    size_t a = *align < HDR ? HDR : *align;
    if (a & (a - 1)) {
        if (a > (SIZE_MAX >> 1)) return -1;
        a = (size_t)1 << (64 - __builtin_clzl(a));
    }
    *align = a;
    return 0;
}

/* Takes a block out of the counters (and the table). Lock not held. */
static inline __attribute__((always_inline)) void forget_block(void *p, const struct mt_heap_hdr *h)
{
    struct mt_heap_rec r = {
        .ptr = (uintptr_t)p, .size = h->size, .site = h->site, .cat = h->cat, .flags = h->flags};
    if (!lock_tracking()) return;
    if (r.flags & MT_REC_TABLE) {
        struct mt_heap_rec gone;
        rec_take(r.ptr, &gone);
    }
    account_free(&r);
    mt_heap_unlock();
}

MT_EXPORT void *malloc(size_t n)
{
    if (MT_UNLIKELY(!R.malloc)) {
        if (tls.in_init) return boot_alloc(n);
        ensure_init();
    }
    void *p = plain_alloc(n);
    RECORD(p, n);
    return p;
}

MT_EXPORT void *calloc(size_t a, size_t b)
{
    size_t n, total;
    if (__builtin_mul_overflow(a, b, &n) || __builtin_add_overflow(n, (size_t)HDR, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (MT_UNLIKELY(!R.calloc)) {
        if (tls.in_init) return boot_alloc(n); /* the pool is static, hence zeroed */
        ensure_init();
    }
    void *real = R.calloc(1, total);
    void *p = real ? hdr_init(real, HDR_SHIFT, n) : NULL;
    RECORD(p, n);
    return p;
}

MT_EXPORT void free(void *p)
{
    if (!p || MT_UNLIKELY(in_boot_pool(p))) return;
    ensure_init();
    struct mt_heap_hdr *h = hdr_of(p);
    if (MT_UNLIKELY(h->magic != HDR_MAGIC)) { /* not ours: should not happen */
        R.free(p);
        return;
    }
    if ((h->flags & MT_REC_TRACKED) && should_record()) forget_block(p, h);
    R.free((char *)p - ((size_t)1 << h->shift));
}

MT_EXPORT size_t malloc_usable_size(void *p)
{
    if (!p) return 0;
    if (in_boot_pool(p)) return ((size_t *)p)[-2];
    ensure_init();
    const struct mt_heap_hdr *h = hdr_of(p);
    if (!R.malloc_usable_size) return h->magic == HDR_MAGIC ? h->size : 0;
    if (h->magic != HDR_MAGIC) return R.malloc_usable_size(p);
    size_t off = (size_t)1 << h->shift;
    return R.malloc_usable_size((char *)p - off) - off;
}

/* realloc is a free of the old block and an allocation of the new one at the caller's
 * stack. A block in the record table is taken out of it first, so no other thread can
 * confuse it with a new block at the same address, and put back if the realloc fails. An
 * aligned block moves to a plain one (glibc's realloc keeps no alignment either). */
MT_EXPORT void *realloc(void *p, size_t n)
{
    if (MT_UNLIKELY(p && in_boot_pool(p))) {
        void *q = malloc(n);
        if (q) {
            size_t old = ((size_t *)p)[-2];
            memcpy(q, p, old < n ? old : n);
        }
        return q;
    }
    ensure_init();
    if (!p) {
        void *q = plain_alloc(n);
        RECORD(q, n);
        return q;
    }
    struct mt_heap_hdr *h = hdr_of(p);
    if (MT_UNLIKELY(h->magic != HDR_MAGIC)) return R.realloc(p, n); /* not ours */
    if (n == 0) { /* glibc: frees the block, returns NULL */
        free(p);
        return NULL;
    }
    struct mt_heap_rec old = {
        .ptr = (uintptr_t)p, .size = h->size, .site = h->site, .cat = h->cat, .flags = h->flags};
    size_t off = (size_t)1 << h->shift;
    int rec = should_record();
    int tracked = rec && (old.flags & MT_REC_TRACKED), in_table = 0;
    struct mt_heap_stack st;
    st.sampled = 0;
    if (rec) {
        tls.guard = 1;
        stack_for(&st, n, (uintptr_t)__builtin_frame_address(0));
        if (tracked && (old.flags & MT_REC_TABLE) && lock_tracking()) {
            struct mt_heap_rec gone;
            in_table = rec_take(old.ptr, &gone);
            mt_heap_unlock();
        }
    }
    void *q;
    if (off == HDR) {
        size_t total;
        void *real = NULL;
        if (__builtin_add_overflow(n, (size_t)HDR, &total))
            errno = ENOMEM;
        else
            real = R.realloc((char *)p - HDR, total);
        q = real ? hdr_init(real, HDR_SHIFT, n) : NULL;
    } else {
        q = plain_alloc(n);
        if (q) {
            memcpy(q, p, old.size < n ? old.size : n);
            R.free((char *)p - off);
        }
    }
    if (rec) {
        if (!q) {
            if (in_table && lock_tracking()) {
                struct mt_heap_rec stale;
                rec_put(old.ptr, old.size, old.site, old.cat, old.flags, &stale);
                mt_heap_unlock();
            }
        } else if (lock_tracking()) {
            if (tracked) account_free(&old);
            mt_heap_unlock();
            record_alloc_with(q, n, &st);
        }
        tls.guard = 0;
    }
    return q;
}

MT_EXPORT void *reallocarray(void *p, size_t a, size_t b)
{
    size_t n;
    if (__builtin_mul_overflow(a, b, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n);
}

MT_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    ensure_init();
    if (!align || (align & (align - 1)) || align % sizeof(void *)) return EINVAL;
    int saved = errno;
    void *p = aligned_alloc_block(align, n);
    errno = saved;
    if (!p) return ENOMEM;
    *out = p;
    RECORD(p, n);
    return 0;
}

MT_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    ensure_init();
    if (round_align(&align) != 0) {
        errno = EINVAL;
        return NULL;
    }
    void *p = aligned_alloc_block(align, n);
    RECORD(p, n);
    return p;
}

MT_EXPORT void *memalign(size_t align, size_t n)
{
    ensure_init();
    if (round_align(&align) != 0) {
        errno = EINVAL;
        return NULL;
    }
    void *p = aligned_alloc_block(align, n);
    RECORD(p, n);
    return p;
}

MT_EXPORT void *valloc(size_t n)
{
    ensure_init();
    void *p = aligned_alloc_block((size_t)G.page_size, n);
    RECORD(p, n);
    return p;
}

MT_EXPORT void *pvalloc(size_t n)
{
    ensure_init();
    size_t ps = (size_t)G.page_size, rounded;
    if (__builtin_add_overflow(n, ps - 1, &rounded)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = aligned_alloc_block(ps, rounded & ~(ps - 1));
    if (p) hdr_of(p)->size = n; /* the requested size, as for every block */
    RECORD(p, n);
    return p;
}

/* ---- anonymous mappings ------------------------------------------------------------- */

static int map_add(const struct mt_heap_map *m)
{
    if (G.map_count == G.map_cap) {
        size_t cap = G.map_cap ? G.map_cap * 2 : 256;
        struct mt_heap_map *t = mt_heap_pages(cap * sizeof *t);
        if (!t) return -1;
        if (G.map_count) memcpy(t, G.maps, G.map_count * sizeof *t);
        mt_heap_pages_free(G.maps, G.map_cap * sizeof *t);
        G.maps = t;
        G.map_cap = cap;
    }
    G.maps[G.map_count++] = *m;
    return 0;
}

/* Removes [lo, hi) from the tracked mappings, releasing the bytes, splitting a mapping
 * that loses its middle. Lock held. */
static void map_remove(uintptr_t lo, uintptr_t hi)
{
    for (size_t i = 0; i < G.map_count;) {
        struct mt_heap_map m = G.maps[i];
        if (m.end <= lo || m.start >= hi) {
            i++;
            continue;
        }
        if (m.flags & MT_REC_TENSORS) {
            tensors_detach(m.start);
            G.maps[i].flags &= (uint8_t)~MT_REC_TENSORS;
            m.flags &= (uint8_t)~MT_REC_TENSORS;
        }
        uintptr_t a = m.start > lo ? m.start : lo, b = m.end < hi ? m.end : hi;
        account_release(b - a, m.cat, m.site, m.weight);
        G.c.frees[m.cat] += (a == m.start && b == m.end);
        if (m.site != MT_HEAP_NO_SITE && (a == m.start && b == m.end))
            mt_heap_site_at(m.site)->live_allocs -= m.weight;
        if (a == m.start && b == m.end && m.start == G.last_alloc) { /* temporary, as free */
            if (m.site != MT_HEAP_NO_SITE) mt_heap_site_at(m.site)->temporary += m.weight;
            G.last_alloc = 0;
        }
        if (a == m.start && b == m.end) {
            G.maps[i] = G.maps[--G.map_count];
            continue;
        }
        if (a == m.start) {
            G.maps[i].start = b;
        } else if (b == m.end) {
            G.maps[i].end = a;
        } else {
            G.maps[i].end = a;
            struct mt_heap_map tail = m;
            tail.start = b;
            if (map_add(&tail) == 0 && m.site != MT_HEAP_NO_SITE) /* two pieces now */
                mt_heap_site_at(m.site)->live_allocs += m.weight;
        }
        i++;
    }
}

static void record_map(void *p, uint64_t n, uintptr_t anchor)
{
    struct mt_heap_stack st;
    stack_for(&st, n, anchor);
    int cat = tls.cat;
    if (!lock_tracking()) return;
    uint32_t site = site_for(&st, cat);
    struct mt_heap_map m = {.start = (uintptr_t)p,
                            .end = (uintptr_t)p + n,
                            .site = site,
                            .cat = (uint8_t)cat,
                            .weight = site != MT_HEAP_NO_SITE ? sample_weight(n) : 1.0};
    if (map_add(&m) == 0) account_alloc(m.start, n, cat, site);
    mt_heap_unlock();
}

/* Only private anonymous memory is heap; file and shared mappings are not. */
static inline int counts_as_heap(int flags)
{
    return (flags & MAP_ANONYMOUS) && !(flags & MAP_SHARED);
}

static inline __attribute__((always_inline)) void *mmap_hook(void *addr, size_t len, int prot,
                                                             int flags, int fd, off_t off)
{
    if (MT_UNLIKELY(!R.mmap)) {
        if (tls.in_init) return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
        ensure_init();
    }
    void *p = R.mmap(addr, len, prot, flags, fd, off);
    if (p == MAP_FAILED || !should_record()) return p;
    tls.guard = 1;
    if ((flags & MAP_FIXED) && lock_tracking()) {
        map_remove((uintptr_t)p, (uintptr_t)p + len);
        mt_heap_unlock();
    }
    if (counts_as_heap(flags) && len) record_map(p, len, (uintptr_t)__builtin_frame_address(0));
    tls.guard = 0;
    return p;
}

MT_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return mmap_hook(addr, len, prot, flags, fd, off);
}

MT_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return mmap_hook(addr, len, prot, flags, fd, off);
}

MT_EXPORT int munmap(void *addr, size_t len)
{
    if (MT_UNLIKELY(!R.munmap)) {
        if (tls.in_init) return (int)syscall(SYS_munmap, addr, len);
        ensure_init();
    }
    if (should_record() && len) {
        tls.guard = 1;
        if (lock_tracking()) {
            size_t ps = (size_t)G.page_size;
            map_remove((uintptr_t)addr, (uintptr_t)addr + ((len + ps - 1) / ps) * ps);
            mt_heap_unlock();
        }
        tls.guard = 0;
    }
    return R.munmap(addr, len);
}

/* mremap of a tracked mapping releases the old range and allocates the new one at the
 * caller's stack, like realloc. */
MT_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *fixed = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        fixed = va_arg(ap, void *);
        va_end(ap);
    }
    if (MT_UNLIKELY(!R.mremap)) ensure_init();
    void *p = R.mremap(old, old_len, new_len, flags, fixed);
    if (p == MAP_FAILED || !should_record()) return p;
    tls.guard = 1;
    int tracked = 0;
    if (lock_tracking()) {
        for (size_t i = 0; i < G.map_count && !tracked; i++)
            tracked = G.maps[i].start < (uintptr_t)old + old_len && G.maps[i].end > (uintptr_t)old;
        if (tracked) map_remove((uintptr_t)old, (uintptr_t)old + old_len);
        if (flags & MREMAP_FIXED) map_remove((uintptr_t)p, (uintptr_t)p + new_len);
        mt_heap_unlock();
    }
    if (tracked) record_map(p, new_len, (uintptr_t)__builtin_frame_address(0));
    tls.guard = 0;
    return p;
}

/* ---- tensors ------------------------------------------------------------------------ */

/* Moves `size` bytes of a block's live bytes from category `from` to `to` (and the same
 * between its sites). Lock held. */
static void move_bytes(struct mt_heap_tensor *t, int reverse)
{
    int from = reverse ? t->cat : t->from_cat, to = reverse ? t->from_cat : t->cat;
    uint32_t sf = reverse ? t->site_to : t->site_from, st = reverse ? t->site_from : t->site_to;
    long long n = (long long)t->size;
    G.c.live[from] -= n;
    cat_add(to, n);
    if (!reverse) {
        G.c.bytes[from] -= n;
        G.c.bytes[to] += n;
    }
    if (sf != MT_HEAP_NO_SITE && st != MT_HEAP_NO_SITE) {
        struct mt_heap_site *a = mt_heap_site_at(sf), *b = mt_heap_site_at(st);
        double wn = t->weight * (double)n;
        site_touch(a);
        site_touch(b);
        a->live -= wn;
        b->live += wn;
        if (!reverse) {
            a->bytes -= wn;
            b->bytes += wn;
        }
    }
}

static void tensors_detach(uintptr_t block)
{
    for (size_t i = 0; i < G.tensor_count; i++) {
        struct mt_heap_tensor *t = &G.tensors[i];
        if (t->block == block) {
            move_bytes(t, 1);
            t->block = 0;
        }
    }
}

MT_EXPORT void mt_heap_report_tensor(const void *ptr, size_t size, int cat, const char *name)
{
    ensure_init();
    if (cat < 0 || cat >= MT_HEAP_NCAT || !name) return;
    int old = mt_heap_guard(1);
    if (!lock_tracking()) {
        mt_heap_guard(old);
        return;
    }
    if (G.tensor_count == G.tensor_cap) {
        size_t cap = G.tensor_cap ? G.tensor_cap * 2 : 256;
        struct mt_heap_tensor *t = mt_heap_pages(cap * sizeof *t);
        if (!t) goto out;
        if (G.tensor_count) memcpy(t, G.tensors, G.tensor_count * sizeof *t);
        mt_heap_pages_free(G.tensors, G.tensor_cap * sizeof *t);
        G.tensors = t;
        G.tensor_cap = cap;
    }
    struct mt_heap_tensor t = {.name = name,
                               .size = size,
                               .cat = (uint8_t)cat,
                               .weight = 1.0,
                               .site_from = MT_HEAP_NO_SITE,
                               .site_to = MT_HEAP_NO_SITE};
    uintptr_t p = (uintptr_t)ptr;
    /* the containing block: a malloc'd block (exact start first, then a scan) or a map */
    struct mt_heap_rec *r = rec_find(p);
    for (size_t i = 0; !r && i < G.rec_cap; i++)
        if (G.recs[i].ptr && G.recs[i].ptr <= p && p < G.recs[i].ptr + G.recs[i].size)
            r = &G.recs[i];
    struct mt_heap_map *m = NULL;
    for (size_t i = 0; !r && !m && i < G.map_count; i++)
        if (G.maps[i].start <= p && p < G.maps[i].end) m = &G.maps[i];
    if (r || m) {
        uintptr_t start = r ? r->ptr : m->start, end = r ? r->ptr + r->size : m->end;
        if (p + size > end) t.size = end - p;
        t.block = start;
        t.from_cat = r ? r->cat : m->cat;
        t.site_from = r ? r->site : m->site;
        if (t.site_from != MT_HEAP_NO_SITE) {
            struct mt_heap_site *s = mt_heap_site_at(t.site_from);
            t.site_to = site_get(s->hash, s->frames, (int)s->depth, cat);
            /* site_get may have grown the chunk list but never moves sites */
            t.weight = r ? sample_weight(r->size) : m->weight;
        }
        if (r)
            hdr_of((const void *)r->ptr)->flags |= MT_REC_TENSORS; /* free reads the header */
        else
            m->flags |= MT_REC_TENSORS;
        move_bytes(&t, 0);
    }
    G.tensors[G.tensor_count++] = t;
out:
    mt_heap_unlock();
    mt_heap_guard(old);
}

/* The timeline thread starts with the program's first thread: until then the hooks write
 * the points, and the process stays single-threaded for glibc and for our lock. */
MT_EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                             void *arg)
{
    ensure_init();
    int rc = R.pthread_create(t, attr, fn, arg);
    if (rc == 0 && !atomic_load(&G.helper_running) && atomic_load(&G.tracking)) {
        int old = mt_heap_guard(1);
        mt_heap_helper_start();
        mt_heap_guard(old);
    }
    return rc;
}

MT_EXPORT int mt_heap_set_category(int cat)
{
    int old = tls.cat;
    tls.cat = (cat >= 0 && cat < MT_HEAP_NCAT) ? cat : MT_MEM_OTHER;
    return old;
}

/* Lock held: folds the peaks since the last switch into the innermost region's entry. */
static void region_fold(void)
{
    if (G.region_cur < 0) return;
    struct mt_heap_region *r = &G.regions[G.region_cur];
    if (G.c.seg_peak_total > r->peak_total) r->peak_total = G.c.seg_peak_total;
    for (int c = 0; c < MT_HEAP_NCAT; c++)
        if (G.c.seg_peak[c] > r->peak[c]) r->peak[c] = G.c.seg_peak[c];
}

/* Lock held: the entry of `name` (added if new), or -1 when it cannot be tracked. */
static int region_index(const char *name)
{
    size_t len = strnlen(name, MT_HEAP_REGION_NAME);
    if (len == MT_HEAP_REGION_NAME) return -1;
    for (size_t i = 0; i < G.region_count; i++)
        if (!memcmp(G.regions[i].name, name, len + 1)) return (int)i;
    if (G.region_count == MT_HEAP_MAX_REGIONS) return -1;
    struct mt_heap_region *r = &G.regions[G.region_count];
    memcpy(r->name, name, len + 1);
    return (int)G.region_count++;
}

/* The region's peaks start at the live bytes of the moment it becomes innermost. */
MT_EXPORT void mt_heap_set_region(const char *name)
{
    mt_heap_lock();
    region_fold();
    G.region_cur = name ? region_index(name) : -1;
    if (name && G.region_cur < 0) G.regions_dropped++;
    G.c.seg_peak_total = G.c.live_total;
    memcpy(G.c.seg_peak, G.c.live, sizeof G.c.seg_peak);
    mt_heap_unlock();
    atomic_store(&G.region, name);
}

/* ---- process lifecycle -------------------------------------------------------------- */

static void atfork_prepare(void)
{
    tls.guard++;
    mt_heap_lock();
}

static void atfork_parent(void)
{
    mt_heap_unlock();
    tls.guard--;
}

/* The child keeps its inherited blocks and counters and writes a report of its own (see
 * mt_heap_out_open); the hooks write its timeline until it starts a thread. Not followed
 * (MEMTRADE_HEAP_FOLLOW_EXEC=0): it stops recording and writes no report. */
static void atfork_child(void)
{
    atomic_store(&G.lock, 0);
    atomic_store(&G.helper_running, 0);
    if (G.out_fd >= 0) {
        close(G.out_fd);
        G.out_fd = -1;
    }
    if (G.follow_exec)
        mt_heap_out_open(1);
    else
        atomic_store(&G.tracking, 0);
    tls.guard--;
}

/* What the environment tells the programs this process execs; entries of environ are
 * replaced in place by these static strings, so nothing is allocated (no setenv). */
static char env_out[sizeof G.out_pattern + 32];
static char env_preload[4096];

/* Points environ's NAME=... entry at `entry`; 0 when the variable is absent. */
static int env_replace(const char *name, char *entry)
{
    size_t n = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=') {
            *e = entry;
            return 1;
        }
    return 0;
}

/* Exec'd descendants: without %p in the report path they would truncate and interleave
 * with this process's report, so they are told PATH.%p (each its own file, named by pid,
 * like a forked child's). Not followed: this library leaves their LD_PRELOAD. */
static void steer_descendants(void)
{
    if (!strstr(G.out_pattern, "%p")) {
        static const char key[] = "MEMTRADE_HEAP_OUT=";
        size_t len = strlen(G.out_pattern); /* < sizeof G.out_pattern */
        memcpy(env_out, key, sizeof key - 1);
        memcpy(env_out + sizeof key - 1, G.out_pattern, len);
        memcpy(env_out + sizeof key - 1 + len, ".%p", 4);
        env_replace("MEMTRADE_HEAP_OUT", env_out);
    }
    const char *pre = getenv("LD_PRELOAD");
    if (G.follow_exec || !pre) return;
    static const char key[] = "LD_PRELOAD=";
    memcpy(env_preload, key, sizeof key - 1);
    size_t n = sizeof key - 1;
    for (const char *s = pre; *s;) {
        size_t len = strcspn(s, ": ");
        const char *base = s + len;
        while (base > s && base[-1] != '/')
            base--;
        int ours = !strncmp(base, "libmt_heap.so", 13);
        if (!ours && len && n + len + 2 < sizeof env_preload) {
            if (env_preload[n - 1] != '=') env_preload[n++] = ':';
            memcpy(env_preload + n, s, len);
            n += len;
        }
        s += len;
        if (*s) s++;
    }
    env_preload[n] = '\0';
    env_replace("LD_PRELOAD", env_preload);
}

/* Leaks and the final pass over per-site peak shares; then the report. Called once, at
 * exit. Lock held while the tables are frozen. */
static void finish(void)
{
    mt_heap_lock();
    atomic_store(&G.tracking, 0);
    region_fold();
    for (size_t i = 0; i < G.site_count; i++)
        site_touch(mt_heap_site_at(i));
    /* Leaked = still live: each site's live blocks and bytes, with the bytes of tensors
     * still inside them counted at the block's own site, not the tensor's. */
    for (size_t i = 0; i < G.site_count; i++) {
        struct mt_heap_site *s = mt_heap_site_at(i);
        s->leaked_bytes = s->live;
        s->leaked_allocs = s->live_allocs;
    }
    for (size_t i = 0; i < G.tensor_count; i++) {
        const struct mt_heap_tensor *t = &G.tensors[i];
        if (!t->block || t->site_from == MT_HEAP_NO_SITE || t->site_to == MT_HEAP_NO_SITE) continue;
        double wn = t->weight * (double)t->size;
        mt_heap_site_at(t->site_from)->leaked_bytes += wn;
        mt_heap_site_at(t->site_to)->leaked_bytes -= wn;
    }
    mt_heap_unlock();
}

__attribute__((constructor)) static void mt_heap_ctor(void)
{
    ensure_init();
    int old = mt_heap_guard(1);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    steer_descendants();
    if (pthread_key_create(&sc_key, sc_release) == 0) atomic_store(&sc_enabled, 1);
    mt_heap_sde_init();
    if (!__libc_single_threaded) mt_heap_helper_start();
    mt_heap_guard(old);
}

__attribute__((destructor)) static void mt_heap_dtor(void)
{
    if (atomic_load(&init_state) != 2 || !atomic_load(&G.tracking)) return;
    int old = mt_heap_guard(1);
    mt_heap_helper_stop();
    finish();
    mt_heap_write_report();
    mt_heap_guard(old);
}

/* Shells (dash) and forked children leave through _exit, past the destructors: the
 * report is written first. Not in a vfork child, which shares our memory: its pid is
 * not the one that opened the report. Nor when the lock stays held: _exit may come from
 * a signal handler that interrupted a hook of this very thread (the report is then
 * left without its exit part, never a hang). */
__attribute__((noreturn)) static void exit_now(int status)
{
    int free_lock = 0;
    for (int i = 0; i < 1000 && !free_lock; i++) {
        free_lock = !atomic_load(&G.lock);
        if (!free_lock) sched_yield();
    }
    if (free_lock && atomic_load(&init_state) == 2 && !tls.guard && (long)getpid() == G.report_pid)
        mt_heap_dtor();
    syscall(SYS_exit_group, status);
    for (;;)
        ;
}

MT_EXPORT void _exit(int status)
{
    exit_now(status);
}

MT_EXPORT void _Exit(int status)
{
    exit_now(status);
}
