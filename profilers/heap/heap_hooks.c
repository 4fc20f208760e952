/* heap_hooks.c — the LD_PRELOAD hooks of the heap profiler.
 *
 * What it is for: interposing malloc, calloc, realloc, reallocarray, free,
 * malloc_usable_size, posix_memalign, aligned_alloc, memalign, valloc, pvalloc, anonymous
 * private mmap/mmap64/munmap/mremap, pthread_create (the timeline thread starts with the
 * program's first thread) and _exit/_Exit (the report first). What it is not for: keeping
 * counts or tables (heap_tracker.h), stacks (heap_stacks.h), the report (heap_output.c).
 *
 * Hooks do three things, as heaptrack's do: lazy init, call the real function found with
 * dlsym(RTLD_NEXT), record. A static pool serves the calloc dlsym itself makes; the
 * thread-local guard makes allocations of our own (libunwind, libdw, SDE) pass through
 * unrecorded. Each block carries a 16-byte header of ours below it (heap_tracker.h).
 */
#define _GNU_SOURCE
#include "heap_internal.h"

#include "heap_maps.h"
#include "heap_output.h"
#include "heap_sample.h"
#include "heap_stacks.h"
#include "heap_tracker.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define B mt_heap_g.boot

/* ---- bootstrap ---------------------------------------------------------------------- */

/* dlsym calls calloc before we know the real one; this pool serves it. Never freed. */
static __attribute__((noinline)) void *boot_alloc(size_t n)
{
    size_t off = (B.used + 15) & ~(size_t)15;
    if (n > sizeof B.pool - off - 16) return NULL;
    *(size_t *)(B.pool + off) = n;
    B.used = off + 16 + n;
    return B.pool + off + 16;
}

static int in_boot_pool(const void *p)
{
    return (const char *)p >= B.pool && (const char *)p < B.pool + sizeof B.pool;
}

/* Counts block p (header holding size and shift), below a page, at a site already known
 * (no table changes): without the lock while the process has one thread. hit: whether the
 * stack came from the stack cache. */
static inline __attribute__((always_inline)) void count_at_site(void *p, uint64_t n, unsigned shift,
                                                                int cat, uint32_t site, int hit)
{
    int solo = mt_heap_solo();
    if (solo)
        mt_heap_room_flush(); /* the counters change outside the room */
    else if (!mt_heap_lock_tracking())
        return;
    mt_heap_count_stack(hit);
    mt_heap_count_small(p, n, cat, site, shift);
    if (!solo) mt_heap_unlock();
    mt_heap_point_check();
}

/* Records block p (header written, not counted) at the stack st. */
static inline __attribute__((always_inline)) void
record_alloc_with(void *p, uint64_t n, unsigned shift, const struct mt_heap_stack *st)
{
    int cat = mt_heap_tls.cat;
    if (MT_LIKELY(n < (uint64_t)mt_heap_g.cfg.page_size) && MT_LIKELY(st->sites != NULL) &&
        MT_LIKELY(st->sites[cat] != MT_HEAP_NO_SITE)) {
        count_at_site(p, n, shift, cat, st->sites[cat], st->hit);
        return;
    }
    if (!mt_heap_lock_tracking()) return;
    mt_heap_record_block(p, n, cat, mt_heap_stack_site(st, cat), shift);
}

/* The general stack path: capture (or the cache's lookup), then the site under the lock.
 * sampled: the sampler's verdict (always 1 in full mode). */
static __attribute__((noinline)) void record_stack(void *p, uint64_t n, unsigned shift,
                                                   uintptr_t anchor, int sampled)
{
    mt_heap_guard(1);
    struct mt_heap_stack st;
    mt_heap_stack_capture(&st, sampled, anchor);
    record_alloc_with(p, n, shift, &st);
    mt_heap_guard(0);
}

/* record_new_slow's counting (see there). */
static inline __attribute__((always_inline)) void
record_new_counted(void *p, uint64_t n, unsigned shift, uintptr_t anchor)
{
    int small = n < (uint64_t)mt_heap_g.cfg.page_size;
    int64_t left = mt_heap_tls.countdown - (int64_t)n;
    if (left > 0 && small) {
        mt_heap_tls.countdown = left;
        int cat = mt_heap_tls.cat;
        if (mt_heap_lock_tracking()) {
            mt_heap_count_small(p, n, cat, MT_HEAP_NO_SITE, shift);
            mt_heap_unlock();
            mt_heap_point_check();
        }
        return;
    }
    int sampled = mt_heap_sample_take(n);
    /* sampled mode: the inline path leaves the timeline to here (every R bytes on average) */
    if (mt_heap_g.cfg.mode == MT_HEAP_SAMPLED) mt_heap_point_if_due();
    if (sampled && small) {
        int cat = mt_heap_tls.cat;
        uint32_t site = mt_heap_stack_recent_site(anchor, cat);
        if (MT_LIKELY(site != MT_HEAP_NO_SITE)) {
            count_at_site(p, n, shift, cat, site, 1);
            return;
        }
    }
    record_stack(p, n, shift, anchor, sampled);
}

/* Arms this thread's inline paths (record_new, full mode's count_full) when it records,
 * and in sampled mode with one thread opens the room (heap_internal.h) for its category:
 * the end of every slow path, after whatever closed the room. */
static void arm(void)
{
    if (!mt_heap_should_record()) return;
    int cat = mt_heap_tls.cat;
    mt_heap_tls.plain_tail = mt_heap_hdr_tail(MT_HEAP_NO_SITE, cat, MT_REC_TRACKED, MT_HDR_SHIFT);
    if (mt_heap_g.cfg.mode == MT_HEAP_SAMPLED && mt_heap_solo()) mt_heap_room_open(cat);
    mt_heap_tls.fast_limit = (uint64_t)mt_heap_g.cfg.page_size; /* full mode's path */
}

/* Everything record_new does not inline: the stack path (every block in full mode, a
 * sampled block, a block of a page or more, our own allocations), and sampled mode's
 * common case while the process has threads (under the lock); then arms the inline path.
 * p's header holds its size and shift only. A call, never a jump: anchor is the hook's
 * frame, which must stay. Full mode's common case, one of the thread's last stacks with
 * its site known, needs no capture, no guard and (one thread) no lock. */
static __attribute__((noinline)) void record_new_slow(void *p, uint64_t n, unsigned shift,
                                                      uintptr_t anchor)
{
    if (!mt_heap_should_record()) return;
    if (__libc_single_threaded) mt_heap_room_flush(); /* the countdown handed back */
    record_new_counted(p, n, shift, anchor);
    arm();
}

/* mt_heap_count_settle of this thread's category, then p: the rare step of count_full as
 * a jump, so that they keep p in no saved register (the
 * category read again: no register set up for it on the common path). */
static __attribute__((noinline)) void *settle_then(void *p)
{
    mt_heap_count_settle(mt_heap_tls.cat);
    return p;
}

/* mt_heap_room_settle, then p: sampled mode's inline path's rare step, as settle_then. */
static __attribute__((noinline)) void *room_settle_then(void *p)
{
    mt_heap_room_settle();
    return p;
}

/* Counts block p of n bytes at site (from recent_site, never MT_HEAP_NO_SITE) in this
 * thread's category and returns p: full mode's common case with one thread, armed (the
 * caller checked), so no capture, guard, lock or table change. Armed, plain_tail is this
 * category's header word without a site: the site replaces its low half, and shift_bits,
 * (shift ^ MT_HDR_SHIFT) << 48, an aligned block's shift. The hooks jump to it. */
static __attribute__((noinline)) void *count_full(void *p, uint64_t n, uint64_t shift_bits,
                                                  uint32_t site)
{
    if (site == MT_HEAP_NO_SITE) __builtin_unreachable();
    unsigned cat = (unsigned)mt_heap_tls.cat; /* never negative: no sign extension */
    mt_heap_count_stack(1);
    uint64_t tail = mt_heap_tls.plain_tail ^ (uint64_t)(MT_HEAP_NO_SITE ^ site) ^ shift_bits;
    if (MT_UNLIKELY(mt_heap_count_quick(p, n, cat, site, tail, 1))) /* full mode */
        return settle_then(p);
    return p;
}

/* The header of block p (real block 2^shift bytes below) of n bytes with size and shift
 * only, then record_new_slow; returns p, so that the hooks keep no register for it across
 * this call. A call, never a jump (record_new keeps it one): anchor is the hook's frame,
 * which must stay. */
static __attribute__((noinline)) void *record_rare(void *p, uint64_t n, unsigned shift,
                                                   uintptr_t anchor)
{
    mt_heap_hdr_set(p, n, MT_HEAP_NO_SITE, 0, 0, shift);
    record_new_slow(p, n, shift, anchor);
    return p;
}

/* recent_site's answer: p given back, and the site, or on a miss anchor | MT_SITE_MISS (a
 * user-space address never has its top bit set). */
struct mt_heap_p_site {
    void *p;
    uint64_t site;
};
#define MT_SITE_MISS ((uint64_t)1 << 63)

/* Full mode's lookup, for block p while the process has one thread: the site in this
 * thread's category of the stack above anchor when it is one of the thread's last stacks
 * with that site known (the hook then jumps to count_full), else anchor | MT_SITE_MISS
 * (the hook then calls record_rare with it). A leaf; p and anchor come back in the return
 * registers, so the hooks keep no register for them across this call (the old record_full,
 * lookup and counting in one frame, saved six). */
static __attribute__((noinline)) struct mt_heap_p_site recent_site(void *p, uintptr_t anchor)
{
    uint32_t site = mt_heap_stack_recent_site(anchor, mt_heap_tls.cat);
    return (struct mt_heap_p_site){
        p, MT_LIKELY(site != MT_HEAP_NO_SITE) ? site : (uint64_t)anchor | MT_SITE_MISS};
}

/* The hook's frame address, as __builtin_frame_address(0) gives it with a frame pointer
 * (its return address right above). On x86-64 that is the CFA - 16, which asks for no
 * frame pointer: the malloc family's hooks then set up none (saves three instructions). */
#if defined(__x86_64__)
#define HOOK_ANCHOR() ((uintptr_t)__builtin_dwarf_cfa() - 16)
#else
#define HOOK_ANCHOR() ((uintptr_t)__builtin_frame_address(0))
#endif

/* Writes the header of a new real block of n bytes (NULL: nothing) and records it; returns
 * the pointer handed out, 2^shift bytes above. Sampled mode's common case is inline in
 * every hook: while the process has one thread (mt_heap_solo), a block the sampler skips
 * (nearly all of them) costs a countdown, the header and the room (heap_internal.h: its
 * category's exact counters in one place): no stack, no lock, no call (none of ours
 * allocates, so the recursion guard stays as it is); its rare step (a running peak that
 * may have risen) is a jump to room_settle_then, which returns p. Armed in sampled mode
 * with one thread, the room is open for this thread's category (arm; whatever closes it
 * disarms).
 * Full mode keeps this thread's countdown at 0 (mt_heap_sample_take returns before
 * touching it), so one compare sends every block past that path: with one thread to
 * recent_site and count_full, else to record_rare (record_new_slow), as are a thread's
 * first allocation and blocks of a page or more (the large-block table). No value but n
 * lives across a call (the real one; p and anchor come back from recent_site and
 * record_rare), so the hooks save one register, not three. Always inlined into the hook,
 * whose frame address (HOOK_ANCHOR) the paths past the common one read. room: 0 where the
 * hook tested sampled mode's inline path itself, before the real call (malloc).
 */
static inline __attribute__((always_inline)) void *record_new(void *real, uint64_t n,
                                                              unsigned shift, int room)
{
    if (MT_UNLIKELY(!real)) return NULL;
    void *p = (char *)real + ((size_t)1 << shift);
    if (room && MT_LIKELY(n < MT_TRK.room.limit) && MT_LIKELY(__libc_single_threaded)) {
        /* armed, sampled mode: not guarded, tracking, n < a page, the room open */
        if (MT_LIKELY(!mt_heap_room_due(n))) {
            uint64_t tail =
                MT_LIKELY(shift == MT_HDR_SHIFT)
                    ? MT_TRK.room.tail /* this category's */
                    : mt_heap_hdr_tail(MT_HEAP_NO_SITE, MT_TRK.room.cat, MT_REC_TRACKED, shift);
            if (MT_UNLIKELY(mt_heap_room_take(p, n, tail))) return room_settle_then(p);
            return p;
        }
        MT_TRK.room.due -= (long long)n; /* given back: the slow path takes them itself */
    }
    uintptr_t anchor = HOOK_ANCHOR(); /* here, not on the common path */
    if (MT_LIKELY(n < mt_heap_tls.fast_limit) && mt_heap_g.cfg.mode == MT_HEAP_FULL &&
        MT_LIKELY(__libc_single_threaded)) {
        struct mt_heap_p_site r = recent_site(p, anchor);
        if (MT_LIKELY(!(r.site & MT_SITE_MISS)))
            return count_full(r.p, n, (uint64_t)(shift ^ MT_HDR_SHIFT) << 48, (uint32_t)r.site);
        p = r.p;
        anchor = (uintptr_t)(r.site ^ MT_SITE_MISS); /* the same: no register kept for it */
    }
    p = record_rare(p, n, shift, anchor);
    __asm__("" : "+r"(p)); /* a call, not a jump: the hook's frame stays for the stacks */
    return p;
}

/* Records `real`, the hook's real block (record_new reads the hook's frame address after
 * the real call, so the hook keeps no register for it across that call). */
#define RECORD(real, n, shift) record_new((real), (n), (shift), 1)

/* ---- malloc family hooks ------------------------------------------------------------ */

/* A real block of n + 16 bytes, room for the header; NULL (errno set) when it cannot. */
static inline void *plain_alloc(size_t n)
{
    size_t total;
    if (MT_UNLIKELY(__builtin_add_overflow(n, (size_t)MT_HDR, &total))) {
        errno = ENOMEM;
        return NULL;
    }
    return mt_heap_real.malloc(total);
}

/* A real block for n bytes aligned to `align` (a power of two), the header in the
 * alignment's room, the block handed out 2^*shift bytes above it; NULL (errno set). */
static void *aligned_alloc_block(size_t align, size_t n, unsigned *shift)
{
    *shift = MT_HDR_SHIFT;
    if (align <= MT_HDR) return plain_alloc(n);
    size_t total;
    if (__builtin_add_overflow(n, align, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    *shift = (unsigned)__builtin_ctzl(align);
    return mt_heap_real.memalign(align, total);
}

/* memalign's rule: an alignment that is not a power of two is rounded up to one. */
static int round_align(size_t *align)
{
    size_t a = *align < MT_HDR ? MT_HDR : *align;
    if (a & (a - 1)) {
        if (a > (SIZE_MAX >> 1)) return -1;
        a = (size_t)1 << (64 - __builtin_clzl(a));
    }
    *align = a;
    return 0;
}

/* The real malloc until init has resolved it (mt_heap_real.malloc's first value, so that
 * the hook tests nothing): a real block of `total` bytes from the bootstrap pool while init
 * runs (dlsym), else init and then the real one. A block from the pool gets our header
 * (uncounted: nothing records before init is done) and is never freed (free_slow). */
void *mt_heap_malloc_boot(size_t total)
{
    if (mt_heap_tls.in_init) return boot_alloc(total);
    mt_heap_ensure_init();
    return mt_heap_real.malloc(total);
}

/* Sampled mode's common case is tested before the real call (which changes none of our
 * state): a block below a page then needs no overflow test. */
MT_EXPORT void *malloc(size_t n)
{
    if (MT_LIKELY(n < MT_TRK.room.limit) && MT_LIKELY(__libc_single_threaded)) {
        if (MT_LIKELY(!mt_heap_room_due(n))) {
            void *real = mt_heap_real.malloc(n + MT_HDR);
            if (MT_UNLIKELY(!real)) {
                MT_TRK.room.due -= (long long)n; /* nothing allocated */
                return NULL;
            }
            void *p = (char *)real + MT_HDR;
            if (MT_UNLIKELY(mt_heap_room_take(p, n, MT_TRK.room.tail))) return room_settle_then(p);
            return p;
        }
        MT_TRK.room.due -= (long long)n; /* given back: the slow path takes them itself */
    }
    return record_new(plain_alloc(n), n, MT_HDR_SHIFT, 0); /* the room's path tested above */
}

MT_EXPORT void *calloc(size_t a, size_t b)
{
    size_t n, total;
    if (__builtin_mul_overflow(a, b, &n) || __builtin_add_overflow(n, (size_t)MT_HDR, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (MT_UNLIKELY(!mt_heap_real.calloc)) {
        if (mt_heap_tls.in_init) return boot_alloc(n); /* the pool is static, hence zeroed */
        mt_heap_ensure_init();
    }
    return RECORD(mt_heap_real.calloc(1, total), n, MT_HDR_SHIFT);
}

/* free of a pointer without our header: one from the bootstrap pool (never freed) or not
 * ours at all (only possible from __libc_malloc and friends called directly). */
static __attribute__((noinline)) void free_foreign(void *p)
{
    if (in_boot_pool(p)) return;
    mt_heap_ensure_init();
    mt_heap_real.free(p);
}

/* free of every block but the common case below: a foreign pointer, a block of the
 * large-block table or holding tensors, one freed inside the profiler, or any while the
 * process has threads (the lock) or the tracker stopped. */
static __attribute__((noinline)) void free_slow(void *p)
{
    const struct mt_heap_hdr *h = mt_heap_hdr_of(p);
    if (MT_UNLIKELY(h->magic != MT_HDR_MAGIC || in_boot_pool(p))) {
        free_foreign(p);
        return;
    }
    uint8_t flags = h->flags;
    if (flags == MT_REC_TRACKED && !mt_heap_tls.guard) {
        mt_heap_forget_plain(p, h);
    } else if ((flags & MT_REC_TRACKED) && mt_heap_should_record()) {
        mt_heap_forget_block(p, h);
    }
    mt_heap_real.free((char *)p - ((size_t)1 << h->shift));
}

/* free's second case, out of line: one thread and a block whose header word (magic, shift,
 * flags) is cfg.site_tail: in full mode a counted block with a site (every block there)
 * outside the large-block table, holding no tensors, not aligned; in sampled mode none
 * (its few blocks with a site need the weight's expm1: free_slow). Everything else goes
 * to free_slow. One compare of the header word, no test of the mode. */
static __attribute__((noinline)) void free_site(void *p)
{
    const struct mt_heap_hdr *h = mt_heap_hdr_of(p);
    const uint64_t mask = (uint64_t)0xffff << 48 | (uint64_t)0xff << 40; /* magic, shift, flags */
    if (MT_LIKELY((h->tail & mask) == mt_heap_g.cfg.site_tail) &&
        MT_LIKELY(__libc_single_threaded)) {
        long long n = (long long)h->size;
        mt_heap_uncount_cat(h->cat, n);
        mt_heap_uncount_site1(p, h->site, n);  /* full mode: weight 1 */
        mt_heap_real.free((char *)p - MT_HDR); /* not from the header: see free */
        return;
    }
    free_slow(p);
}

/* A counted block implies init is done (the real malloc made it; the bootstrap pool's
 * blocks are uncounted: free_slow). The common case (one thread, sampled mode's room open
 * and the block one it counts: without site, outside the large-block table, holding no
 * tensors, not aligned, of the room's category: all of it checked in one compare of the
 * header word with the room's) is inline, takes no lock and counts in the room; a block
 * with a site (every block in full mode) goes to free_site, everything else to free_slow. Its real
 * block is p - 16 by that compare, not by the header's shift read back: the header is usually a
 * cache miss (blocks are freed long after they were made), and glibc's own read of its
 * chunk header then starts at once instead of after ours. With one thread, neither the
 * recursion guard nor the end of tracking matters to it: no lock can be held (our own code
 * frees only blocks it made uncounted), and after the report nobody reads the counters. */
MT_EXPORT void free(void *p)
{
    if (MT_UNLIKELY(!p)) return;
    const struct mt_heap_hdr *h = mt_heap_hdr_of(p);
    if (MT_LIKELY(h->tail == MT_TRK.room.tail) && MT_LIKELY(__libc_single_threaded)) {
        struct mt_heap_room *r = &MT_TRK.room;
        r->frees++;
        r->left += (long long)h->size;         /* its bytes stay counted (in the room's `due`) */
        mt_heap_real.free((char *)p - MT_HDR); /* not from the header: see above */
        return;
    }
    free_site(p);
}

MT_EXPORT size_t malloc_usable_size(void *p)
{
    if (!p) return 0;
    if (in_boot_pool(p)) return ((size_t *)p)[-2];
    mt_heap_ensure_init();
    const struct mt_heap_hdr *h = mt_heap_hdr_of(p);
    if (!mt_heap_real.malloc_usable_size) return h->magic == MT_HDR_MAGIC ? h->size : 0;
    if (h->magic != MT_HDR_MAGIC) return mt_heap_real.malloc_usable_size(p);
    size_t off = (size_t)1 << h->shift;
    return mt_heap_real.malloc_usable_size((char *)p - off) - off;
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
    mt_heap_ensure_init();
    if (!p) return RECORD(plain_alloc(n), n, MT_HDR_SHIFT);
    struct mt_heap_hdr *h = mt_heap_hdr_of(p);
    if (MT_UNLIKELY(h->magic != MT_HDR_MAGIC)) return mt_heap_real.realloc(p, n); /* not ours */
    if (n == 0) { /* glibc: frees the block, returns NULL */
        free(p);
        return NULL;
    }
    struct mt_heap_rec old = {
        .ptr = (uintptr_t)p, .size = h->size, .site = h->site, .cat = h->cat, .flags = h->flags};
    size_t off = (size_t)1 << h->shift;
    int rec = mt_heap_should_record();
    int tracked = rec && (old.flags & MT_REC_TRACKED), in_table = 0;
    struct mt_heap_stack st;
    st.sampled = 0;
    if (rec) {
        mt_heap_guard(1);
        mt_heap_stack_capture(&st, mt_heap_sample_take(n), (uintptr_t)__builtin_frame_address(0));
        if (tracked && (old.flags & MT_REC_TABLE) && mt_heap_lock_tracking()) {
            struct mt_heap_rec gone;
            in_table = mt_heap_rec_take(old.ptr, &gone);
            mt_heap_unlock();
        }
    }
    void *q;
    if (off == MT_HDR) {
        size_t total;
        void *real = NULL;
        if (__builtin_add_overflow(n, (size_t)MT_HDR, &total))
            errno = ENOMEM;
        else
            real = mt_heap_real.realloc((char *)p - MT_HDR, total);
        q = real ? mt_heap_hdr_init(real, MT_HDR_SHIFT, n) : NULL;
    } else {
        void *real = plain_alloc(n);
        q = real ? mt_heap_hdr_init(real, MT_HDR_SHIFT, n) : NULL;
        if (q) {
            memcpy(q, p, old.size < n ? old.size : n);
            mt_heap_real.free((char *)p - off);
        }
    }
    if (rec) {
        if (!q) {
            if (in_table && mt_heap_lock_tracking()) {
                struct mt_heap_rec stale;
                mt_heap_rec_put(old.ptr, old.size, old.site, old.cat, old.flags, &stale);
                mt_heap_unlock();
            }
        } else if (mt_heap_lock_tracking()) {
            if (tracked) mt_heap_account_free(&old);
            mt_heap_unlock();
            record_alloc_with(q, n, MT_HDR_SHIFT, &st);
        }
        mt_heap_guard(0);
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
    mt_heap_ensure_init();
    if (!align || (align & (align - 1)) || align % sizeof(void *)) return EINVAL;
    int saved = errno;
    unsigned shift;
    void *real = aligned_alloc_block(align, n, &shift);
    errno = saved;
    if (!real) return ENOMEM;
    *out = RECORD(real, n, shift);
    return 0;
}

/* aligned_alloc and memalign: glibc treats them alike (any alignment, rounded up). */
static inline __attribute__((always_inline)) void *memalign_hook(size_t align, size_t n)
{
    mt_heap_ensure_init();
    if (round_align(&align) != 0) {
        errno = EINVAL;
        return NULL;
    }
    unsigned shift;
    void *real = aligned_alloc_block(align, n, &shift);
    return RECORD(real, n, shift);
}

MT_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    return memalign_hook(align, n);
}

MT_EXPORT void *memalign(size_t align, size_t n)
{
    return memalign_hook(align, n);
}

MT_EXPORT void *valloc(size_t n)
{
    mt_heap_ensure_init();
    unsigned shift;
    void *real = aligned_alloc_block((size_t)mt_heap_g.cfg.page_size, n, &shift);
    return RECORD(real, n, shift);
}

MT_EXPORT void *pvalloc(size_t n)
{
    mt_heap_ensure_init();
    size_t ps = (size_t)mt_heap_g.cfg.page_size, rounded;
    if (__builtin_add_overflow(n, ps - 1, &rounded)) {
        errno = ENOMEM;
        return NULL;
    }
    unsigned shift;
    void *real = aligned_alloc_block(ps, rounded & ~(ps - 1), &shift);
    return RECORD(real, n, shift); /* the requested size, as for every block */
}

/* ---- anonymous mappings ------------------------------------------------------------- */

static void record_map(void *p, uint64_t n, uintptr_t anchor)
{
    struct mt_heap_stack st;
    mt_heap_stack_capture(&st, mt_heap_sample_take(n), anchor);
    int cat = mt_heap_tls.cat;
    if (!mt_heap_lock_tracking()) return;
    uint32_t site = mt_heap_stack_site(&st, cat);
    mt_heap_map_record(p, n, cat, site, site != MT_HEAP_NO_SITE ? mt_heap_sample_weight(n) : 1.0);
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
    if (MT_UNLIKELY(!mt_heap_real.mmap)) {
        if (mt_heap_tls.in_init) return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
        mt_heap_ensure_init();
    }
    void *p = mt_heap_real.mmap(addr, len, prot, flags, fd, off);
    if (p == MAP_FAILED || !mt_heap_should_record()) return p;
    mt_heap_guard(1);
    if ((flags & MAP_FIXED) && mt_heap_lock_tracking()) {
        mt_heap_map_remove((uintptr_t)p, (uintptr_t)p + len);
        mt_heap_unlock();
    }
    if (counts_as_heap(flags) && len) record_map(p, len, (uintptr_t)__builtin_frame_address(0));
    mt_heap_guard(0);
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
    if (MT_UNLIKELY(!mt_heap_real.munmap)) {
        if (mt_heap_tls.in_init) return (int)syscall(SYS_munmap, addr, len);
        mt_heap_ensure_init();
    }
    if (mt_heap_should_record() && len) {
        mt_heap_guard(1);
        if (mt_heap_lock_tracking()) {
            size_t ps = (size_t)mt_heap_g.cfg.page_size;
            mt_heap_map_remove((uintptr_t)addr, (uintptr_t)addr + ((len + ps - 1) / ps) * ps);
            mt_heap_unlock();
        }
        mt_heap_guard(0);
    }
    return mt_heap_real.munmap(addr, len);
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
    if (MT_UNLIKELY(!mt_heap_real.mremap)) mt_heap_ensure_init();
    void *p = mt_heap_real.mremap(old, old_len, new_len, flags, fixed);
    if (p == MAP_FAILED || !mt_heap_should_record()) return p;
    mt_heap_guard(1);
    int tracked = 0;
    if (mt_heap_lock_tracking()) {
        tracked = mt_heap_map_overlaps((uintptr_t)old, (uintptr_t)old + old_len);
        if (tracked) mt_heap_map_remove((uintptr_t)old, (uintptr_t)old + old_len);
        if (flags & MREMAP_FIXED) mt_heap_map_remove((uintptr_t)p, (uintptr_t)p + new_len);
        mt_heap_unlock();
    }
    if (tracked) record_map(p, new_len, (uintptr_t)__builtin_frame_address(0));
    mt_heap_guard(0);
    return p;
}

/* ---- threads and exit ---------------------------------------------------------------- */

/* The timeline thread starts with the program's first thread: until then the hooks write
 * the points, and the process stays single-threaded for glibc and for our lock. */
MT_EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                             void *arg)
{
    mt_heap_ensure_init();
    int rc = mt_heap_real.pthread_create(t, attr, fn, arg);
    if (rc == 0 && mt_heap_tracking()) { /* the helper starts once (it checks) */
        int old = mt_heap_guard(1);
        mt_heap_helper_start();
        mt_heap_guard(old);
    }
    return rc;
}

MT_EXPORT void _exit(int status)
{
    mt_heap_exit_now(status);
}

MT_EXPORT void _Exit(int status)
{
    mt_heap_exit_now(status);
}
