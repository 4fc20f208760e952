/* known.c — programs of known allocation behaviour, run under the heap profiler.
 *
 * What it is for: each mode makes allocations whose sites, sizes, peak, leaks and
 * categories are known exactly, so check_heap.c can compare the report with them:
 *   known    several sites and categories, a known peak and its consumers, known leaks,
 *            threads, a realloc chain, an mmap'd buffer partly unmapped, posix_memalign,
 *            aligned_alloc, memalign, valloc, mremap, a file mapping (not heap), named
 *            tensors
 *   sampled  large sites for sampled-mode estimates (fixed seed)
 *   fork     a fork that exits and a fork that execs this program ("exec-child")
 *   crash    killed by SIGKILL while weights are live
 *   threads  four threads allocate known blocks (malloc, calloc, some of a page or more) in
 *            one category while the main thread churns in another; after a barrier each
 *            frees another thread's blocks: exact counters and peak across threads; the
 *            main thread's "workspace" blocks made (some freed) before the threads start
 *            are freed by them (what one thread counted alone, then threads)
 * What it is not for: checking anything itself. The expected numbers live in
 * check_heap.c; keep the two in step. Every site_* function is one call site.
 */
#define _GNU_SOURCE
#include "heap_test_xt.h"

#include <memtrade/memcat.h>

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SITE __attribute__((noinline, noclone))

static void *volatile sink[128];
static void *keep_a[100];

SITE void site_a(void)
{
    for (int i = 0; i < 100; i++)
        keep_a[i] = malloc(1000);
}
SITE void *site_arena(void)
{
    return malloc(1 << 20);
}
SITE void *site_map(void)
{
    return mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
SITE void *site_pm(void)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, 4096) != 0) return NULL;
    return p;
}
SITE void site_leak(void)
{
    for (int i = 0; i < 7; i++)
        sink[i] = malloc(333);
}
SITE void *site_big(void)
{
    return malloc(5000000);
}
SITE void site_tmp(void)
{
    for (int i = 0; i < 10; i++) {
        char *p = calloc(10, 20);
        sink[20] = p;
        free(p);
    }
}
SITE void *site_r0(void)
{
    return malloc(100);
}
SITE void *site_realloc(void *p, size_t n)
{
    return realloc(p, n);
}
SITE void *site_aligned(void)
{
    return aligned_alloc(256, 512);
}
SITE void *site_memalign(void)
{
    return memalign(128, 384);
}
SITE void *site_valloc(void)
{
    return valloc(1000);
}
SITE void *site_filemap(int fd)
{
    return mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
}
SITE void *site_thread(void)
{
    return malloc(48);
}
SITE void *site_mremap_src(void)
{
    return mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
SITE void *site_mremap(void *p)
{
    return mremap(p, 8192, 16384, MREMAP_MAYMOVE);
}

/* Two callers with the same frame size around one allocating leaf, 20 identical frames
 * below them: the profiler's stack cache sees the same hook frame, return address and
 * first 16 slots for both and must still tell them apart (700 allocations through
 * path_a, 300 through path_b, interleaved). */
SITE void *common_leaf(void)
{
    return malloc(24);
}
SITE void *deep(int n)
{
    if (n == 0) return common_leaf();
    void *p = deep(n - 1);
    sink[31] = p;
    return p;
}
SITE void *path_a(void)
{
    return deep(20);
}
SITE void *path_b(void)
{
    return deep(20);
}
static void run_paths(void)
{
    for (int i = 0; i < 1000; i++) {
        void *p = (i % 10 < 7) ? path_a() : path_b();
        sink[30] = p;
        free(p);
    }
}

static void *noop(void *arg)
{
    return arg;
}

static void *worker(void *arg)
{
    (void)arg;
    mt_memcat_set(MT_MEM_GRADIENTS);
    for (int i = 0; i < 1000; i++) {
        void *p = site_thread();
        sink[40] = p;
        free(p);
    }
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int run_known(const char *self)
{
    /* a first thread starts the profiler's timeline thread; its own bytes are "other" */
    pthread_t t0;
    pthread_create(&t0, NULL, noop, NULL);
    pthread_join(t0, NULL);

    /* the peak phase: everything below is live at once */
    mt_memcat_set(MT_MEM_WEIGHTS);
    site_a();
    mt_memcat_set(MT_MEM_OTHER);
    char *arena = site_arena();
    mt_memcat_report(arena, 256 * 1024, MT_MEM_WEIGHTS, "wte");
    mt_memcat_report(arena + 512 * 1024, 128 * 1024, MT_MEM_KV_CACHE, "kv");
    mt_memcat_set(MT_MEM_ACTIVATIONS);
    char *map = site_map();
    munmap(map + 16384, 16384);
    mt_memcat_set(MT_MEM_DATA);
    sink[10] = site_pm();
    site_leak();
    mt_memcat_set(MT_MEM_OTHER);
    int fd = open(self, O_RDONLY);
    void *fm = fd >= 0 ? site_filemap(fd) : MAP_FAILED;
    mt_memcat_set(MT_MEM_ACTIVATIONS);
    void *big = site_big();
    memset(big, 1, 4096);
    mt_memcat_region("peak_phase");
    sleep_ms(100);
    free(big);
    mt_memcat_region("after");
    if (fm != MAP_FAILED) munmap(fm, 4096);
    if (fd >= 0) close(fd);

    for (int i = 0; i < 100; i++)
        free(keep_a[i]);
    free(arena);
    munmap(map + 32768, 32768); /* pages 0-3 stay mapped: a 16 KiB leak */

    mt_memcat_set(MT_MEM_WORKSPACE);
    site_tmp();
    void *m = site_mremap(site_mremap_src());
    if (m != MAP_FAILED) munmap(m, 16384);
    mt_memcat_set(MT_MEM_OPTIMIZER);
    void *r = site_r0();
    for (size_t n = 200; n <= 800; n *= 2)
        r = site_realloc(r, n);
    free(r);
    mt_memcat_set(MT_MEM_ACT_GRADS);
    void *p = site_aligned();
    free(p);
    p = site_memalign();
    free(p);
    p = site_valloc();
    free(p);
    mt_memcat_set(MT_MEM_OTHER);

    run_paths();

    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    return 0;
}

SITE void site_s1(void)
{
    for (int i = 0; i < 2000; i++) {
        void *p = malloc(1 << 20);
        sink[50] = p;
        free(p);
    }
}
SITE void site_s2(void)
{
    for (int i = 0; i < 4000; i++) {
        void *p = malloc(256 << 10);
        sink[51] = p;
        free(p);
    }
}
SITE void site_s3(void)
{
    for (int i = 0; i < 100000; i++) {
        void *p = malloc(64);
        sink[52] = p;
        free(p);
    }
}

static int run_sampled(void)
{
    mt_memcat_set(MT_MEM_WEIGHTS);
    site_s1();
    mt_memcat_set(MT_MEM_ACTIVATIONS);
    site_s2();
    mt_memcat_set(MT_MEM_DATA);
    site_s3();
    return 0;
}

SITE void site_parent(void)
{
    for (int i = 0; i < 2; i++)
        sink[60 + i] = malloc(111);
}
SITE void site_child_nofork(void)
{
    for (int i = 0; i < 3; i++)
        sink[70 + i] = malloc(222);
}
SITE void site_exec_child(void)
{
    for (int i = 0; i < 5; i++)
        sink[80 + i] = malloc(444);
}

static int run_fork(const char *self)
{
    mt_memcat_set(MT_MEM_DATA);
    site_parent();
    pid_t a = fork();
    if (a == 0) {
        site_child_nofork();
        exit(0);
    }
    pid_t b = fork();
    if (b == 0) {
        execl(self, self, "exec-child", (char *)NULL);
        _exit(127);
    }
    int sa = -1, sb = -1;
    if (a < 0 || b < 0 || waitpid(a, &sa, 0) != a || waitpid(b, &sb, 0) != b) return 1;
    return (WIFEXITED(sa) && WEXITSTATUS(sa) == 0 && WIFEXITED(sb) && WEXITSTATUS(sb) == 0) ? 0 : 1;
}

/* Dies by SIGKILL with 100 x 1000 bytes of weights live: the streamed timeline must
 * survive without the exit report. */
static int run_crash(void)
{
    pthread_t t0;
    pthread_create(&t0, NULL, noop, NULL);
    pthread_join(t0, NULL);
    mt_memcat_set(MT_MEM_WEIGHTS);
    site_a();
    mt_memcat_region("crashing");
    sleep_ms(100);
    kill(getpid(), SIGKILL);
    return 1;
}

/* ---- threads: exact counters and peak with frees across threads ------------------------- */

static void *xt_blocks[XT_THREADS][XT_BLOCKS];
static void *xt_handoff[XT_HANDOFF];
static pthread_barrier_t xt_barrier;

SITE void *site_xt(size_t n)
{
    return malloc(n);
}
SITE void *site_xt_calloc(size_t n)
{
    return calloc(1, n);
}
SITE void *site_xt_temp(size_t n)
{
    return malloc(n);
}

/* Phase 1: temporaries (at most one live per thread); phase 2: the kept blocks (all live at
 * the second barrier: the category's peak is their sum); phase 3: the next thread's blocks
 * are freed. */
static void *xt_worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    mt_memcat_set(MT_MEM_KV_CACHE);
    for (int i = 0; i < XT_TEMPS; i++) {
        char *p = site_xt_temp(xt_temp_size(t, i));
        if (!p) abort();
        p[0] = 1;
        free(p);
    }
    for (int i = 2 * t; i < XT_HANDOFF; i += 2 * XT_THREADS)
        free(xt_handoff[i]);
    pthread_barrier_wait(&xt_barrier);
    for (int i = 0; i < XT_BLOCKS; i++) {
        size_t n = xt_size(t, i);
        char *p = i % 3 == 0 ? site_xt_calloc(n) : site_xt(n);
        if (!p) abort();
        p[n - 1] = 1;
        xt_blocks[t][i] = p;
    }
    pthread_barrier_wait(&xt_barrier);
    int o = (t + 1) % XT_THREADS;
    for (int i = 0; i < XT_BLOCKS; i++)
        free(xt_blocks[o][i]);
    return NULL;
}

static int run_threads(void)
{
    pthread_t th[XT_THREADS];
    mt_memcat_set(MT_MEM_WORKSPACE); /* one thread yet: all of it peaks here */
    for (int i = 0; i < XT_HANDOFF; i++)
        if (!(xt_handoff[i] = site_xt(xt_handoff_size(i)))) return 1;
    mt_memcat_set(MT_MEM_OTHER); /* the threads' stacks (mmap) are not workspace */
    for (int i = 1; i < XT_HANDOFF; i += 2)
        free(xt_handoff[i]);
    if (pthread_barrier_init(&xt_barrier, NULL, XT_THREADS)) return 1;
    for (int t = 0; t < XT_THREADS; t++)
        if (pthread_create(&th[t], NULL, xt_worker, (void *)(intptr_t)t)) return 1;
    mt_memcat_set(MT_MEM_ACTIVATIONS); /* the main thread churns meanwhile, elsewhere */
    for (int i = 0; i < 20000; i++)
        free(site_xt_temp(64 + (size_t)(i % 512)));
    for (int t = 0; t < XT_THREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&xt_barrier);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "known")) return run_known(argv[0]);
    if (!strcmp(mode, "sampled")) return run_sampled();
    if (!strcmp(mode, "fork")) return run_fork(argv[0]);
    if (!strcmp(mode, "crash")) return run_crash();
    if (!strcmp(mode, "threads")) return run_threads();
    if (!strcmp(mode, "exec-child")) {
        mt_memcat_set(MT_MEM_DATA);
        site_exec_child();
        return 0;
    }
    fprintf(stderr, "usage: %s known|sampled|fork|crash|threads\n", argv[0]);
    return 2;
}
