/* heap_process.c — the heap profiler's life in its process: init, fork, exec, exit.
 *
 * What it is for: resolving the real functions and reading the configuration (once, in
 * whichever hook comes first, usually during libc's own startup), the constructor and
 * destructor, pthread_atfork handlers that keep a forked child sane, steering exec'd
 * descendants (report path, LD_PRELOAD) through environ without allocating, and the
 * report at exit (also through _exit). What it is not for: the hooks (heap_hooks.c) or
 * the report's content (heap_output.c).
 */
#define _GNU_SOURCE
#include "heap_internal.h"

#include "heap_device.h"
#include "heap_output.h"
#include "heap_stacks.h"
#include "heap_tags.h"
#include "heap_tracker.h"

#include <dlfcn.h>
#include <link.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define C mt_heap_g.cfg
#define E mt_heap_g.env

static int find_self(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t me = (uintptr_t)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (me >= lo && me < hi) {
            C.self_lo = lo;
            C.self_hi = hi;
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
void mt_heap_init_slow(void)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&mt_heap_g.init_state, &expect, 1)) {
        while (atomic_load(&mt_heap_g.init_state) != 2)
            sched_yield();
        return;
    }
    mt_heap_tls.in_init = 1;
    mt_heap_real.malloc = resolve("malloc");
    mt_heap_real.free = resolve("free");
    mt_heap_real.calloc = resolve("calloc");
    mt_heap_real.realloc = resolve("realloc");
    mt_heap_real.posix_memalign = resolve("posix_memalign");
    mt_heap_real.malloc_usable_size = resolve("malloc_usable_size");
    mt_heap_real.memalign = resolve("memalign");
    mt_heap_real.mmap = resolve("mmap");
    mt_heap_real.munmap = resolve("munmap");
    mt_heap_real.mremap = resolve("mremap");
    mt_heap_real.pthread_create = resolve("pthread_create");
    mt_heap_tls.in_init = 0;

    int old = mt_heap_guard(1);
    const char *mode = getenv("MEMTRADE_HEAP_MODE");
    C.mode = (mode && strcmp(mode, "sampled") == 0) ? MT_HEAP_SAMPLED : MT_HEAP_FULL;
    C.site_tail = C.mode == MT_HEAP_FULL ? mt_heap_hdr_tail(0, 0, MT_REC_TRACKED, MT_HDR_SHIFT) : 0;
    C.sample_bytes = (double)env_long("MEMTRADE_HEAP_SAMPLE_BYTES", 512 * 1024, 1, 1L << 40);
    C.seed = (uint64_t)env_long("MEMTRADE_HEAP_SEED", 1, 0, __LONG_MAX__);
    C.interval_ms = env_long("MEMTRADE_HEAP_INTERVAL_MS", 10, 0, 3600 * 1000);
    C.follow_exec = (int)env_long("MEMTRADE_HEAP_FOLLOW_EXEC", 1, 0, 1);
    C.device = (int)env_long("MEMTRADE_HEAP_DEVICE", 0, 0, 1);
    const char *out = getenv("MEMTRADE_HEAP_OUT");
    if (!out || !*out) out = "memtrade-heap.%p.txt";
    size_t n = strlen(out);
    if (n >= sizeof C.out_pattern) n = sizeof C.out_pattern - 1;
    memcpy(C.out_pattern, out, n);
    C.out_pattern[n] = '\0';
    C.page_size = sysconf(_SC_PAGESIZE);
    C.t0_ns = mt_heap_now_ns();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    C.t0_coarse_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    dl_iterate_phdr(find_self, (void *)(uintptr_t)&mt_heap_init_slow);
    mt_heap_out_open(0);
    mt_heap_guard(old);
    mt_heap_set_tracking(1);
    atomic_store(&mt_heap_g.init_state, 2);
}

static void atfork_prepare(void)
{
    mt_heap_guard(mt_heap_tls.guard + 1);
    mt_heap_lock();
}

static void atfork_parent(void)
{
    mt_heap_unlock();
    mt_heap_guard(mt_heap_tls.guard - 1);
}

/* The child keeps its inherited blocks and counters and writes a report of its own (see
 * mt_heap_out_open); the hooks write its timeline until it starts a thread. Not followed
 * (MEMTRADE_HEAP_FOLLOW_EXEC=0): it stops recording and writes no report. */
static void atfork_child(void)
{
    mt_heap_lock_reset();
    mt_heap_out_after_fork(C.follow_exec);
    if (!C.follow_exec) mt_heap_set_tracking(0);
    mt_heap_guard(mt_heap_tls.guard - 1);
}

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
    if (!strstr(C.out_pattern, "%p")) {
        static const char key[] = "MEMTRADE_HEAP_OUT=";
        size_t len = strlen(C.out_pattern); /* < sizeof C.out_pattern */
        memcpy(E.out, key, sizeof key - 1);
        memcpy(E.out + sizeof key - 1, C.out_pattern, len);
        memcpy(E.out + sizeof key - 1 + len, ".%p", 4);
        env_replace("MEMTRADE_HEAP_OUT", E.out);
    }
    const char *pre = getenv("LD_PRELOAD");
    if (C.follow_exec || !pre) return;
    static const char key[] = "LD_PRELOAD=";
    memcpy(E.preload, key, sizeof key - 1);
    size_t n = sizeof key - 1;
    for (const char *s = pre; *s;) {
        size_t len = strcspn(s, ": ");
        const char *base = s + len;
        while (base > s && base[-1] != '/')
            base--;
        int ours = !strncmp(base, "libmt_heap.so", 13);
        if (!ours && len && n + len + 2 < sizeof E.preload) {
            if (E.preload[n - 1] != '=') E.preload[n++] = ':';
            memcpy(E.preload + n, s, len);
            n += len;
        }
        s += len;
        if (*s) s++;
    }
    E.preload[n] = '\0';
    env_replace("LD_PRELOAD", E.preload);
}

/* Stops recording and computes what is only known at exit: the last region stretch, each
 * site's peak share and leaks. Once, at exit. */
static void finish(void)
{
    mt_heap_lock();
    mt_heap_set_tracking(0);
    mt_heap_tracker_finish_sites();
    mt_heap_tags_finish();
    mt_heap_dev_finish();
    mt_heap_unlock();
}

__attribute__((constructor)) static void mt_heap_ctor(void)
{
    mt_heap_ensure_init();
    int old = mt_heap_guard(1);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    steer_descendants();
    mt_heap_stacks_init();
    mt_heap_sde_init();
    if (!__libc_single_threaded) mt_heap_helper_start();
    mt_heap_guard(old);
}

__attribute__((destructor)) static void mt_heap_dtor(void)
{
    if (atomic_load(&mt_heap_g.init_state) != 2 || !mt_heap_tracking()) return;
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
void mt_heap_exit_now(int status)
{
    int free_lock = 0;
    for (int i = 0; i < 1000 && !free_lock; i++) {
        free_lock = !mt_heap_lock_busy();
        if (!free_lock) sched_yield();
    }
    if (free_lock && atomic_load(&mt_heap_g.init_state) == 2 && !mt_heap_tls.guard &&
        mt_heap_out_is_ours())
        mt_heap_dtor();
    syscall(SYS_exit_group, status);
    for (;;)
        ;
}
