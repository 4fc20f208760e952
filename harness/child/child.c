/* harness/child/child.c — `memtrade __child`: one run (or one rank of it) in its own process.
 * See child.h. */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <omp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "context.h"
#include "events.h"
#include "nvml.h"
#include "plugins.h"
#include "util.h"

#ifdef MT_HAVE_COUNTERS
#include "counters.h"
#include "procfile.h"
#endif

#define MAX_PARAMS 256
#ifndef MT_REL_HEAP_LIB
#define MT_REL_HEAP_LIB "lib/memtrade/libmt_heap.so"
#endif

void mt_child_rank(int *rank, int *nranks)
{
    static const char *const pairs[][2] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                                           {"PMIX_RANK", "OMPI_COMM_WORLD_SIZE"},
                                           {"PMI_RANK", "PMI_SIZE"},
                                           {"SLURM_PROCID", "SLURM_NTASKS"}};
    *rank = 0;
    *nranks = 1;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const char *r = getenv(pairs[i][0]), *n = getenv(pairs[i][1]);
        if (r && n && atoi(n) > 0) {
            *rank = atoi(r);
            *nranks = atoi(n);
            return;
        }
    }
}

const char *mt_child_heap_lib(char *buf, size_t cap)
{
#ifdef MT_ASAN
    (void)buf, (void)cap;
    return NULL;
#else
    /* Next to the executable first (a moved install), then the configured paths. */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(buf, cap, "%s/../%s", exe, MT_REL_HEAP_LIB);
    if (n > 0 && access(buf, R_OK) == 0) return buf;
    static const char *const candidates[] = {
#ifdef MT_HEAP_LIB_BUILD
        MT_HEAP_LIB_BUILD,
#endif
#ifdef MT_HEAP_LIB_INSTALL
        MT_HEAP_LIB_INSTALL,
#endif
        NULL};
    for (size_t i = 0; candidates[i]; i++) {
        if (access(candidates[i], R_OK) == 0) {
            snprintf(buf, cap, "%s", candidates[i]);
            return buf;
        }
    }
    return NULL;
#endif
}

/* ---------------------------------------------------------------- fatal signals */

static int fatal_fd = -1; /* the event file, for the signal handler (set once) */
/* The run's context, for the signal handler: the resident peaks it kept across the
 * per-phase resets of VmHWM (phaserss.h). Set once, before run(). */
static const struct mt_context *fatal_ctx;
static long long kept_rss = -1; /* what it kept, once the context is finished */

/* Reads "Key:   123 kB" from /proc/self/status without allocating. */
static long long proc_status_kib(const char *key)
{
    char buf[4096];
    if (mt_proc_read("/proc/self/status", buf, sizeof buf) <= 0) return -1;
    size_t klen = strlen(key);
    for (char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
            long long v = 0;
            for (p += klen + 1; *p == ' ' || *p == '\t'; p++) {
            }
            for (; *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (*p - '0');
            return v;
        }
    }
    return -1;
}

/* The whole run's resident peak: getrusage's, which a per-phase reset lowers, or the
 * larger peak the context kept before it. */
static long long maxrss_bytes(void)
{
    struct rusage ru;
    long long self = getrusage(RUSAGE_SELF, &ru) == 0 ? (long long)ru.ru_maxrss * 1024 : -1;
    if (fatal_ctx) return mt_phase_rss_whole(&fatal_ctx->rss, self);
    return kept_rss > self ? kept_rss : self;
}

static void on_fatal(int sig)
{
    int saved = errno; /* ENOMEM here: the crash followed a failed allocation */
    if (fatal_fd >= 0) {
        char s[24], e[24], rss[24], vm[24];
        long long peak = proc_status_kib("VmPeak");
        const char *f[] = {mt_events_fmt_i64(s, sig), mt_events_fmt_i64(e, saved),
                           mt_events_fmt_i64(rss, maxrss_bytes()),
                           mt_events_fmt_i64(vm, peak < 0 ? -1 : peak * 1024)};
        mt_events_write(fatal_fd, MT_EV_FATAL, f, 4);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_fatal_signals(void)
{
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* ---------------------------------------------------------------- main */

struct child_args {
    const char *plugin, *events, *scratch, *cache, *heap;
    unsigned long long seed;
    int threads;
    const char *keys[MAX_PARAMS], *values[MAX_PARAMS];
    char keybuf[MAX_PARAMS][128];
    size_t n;
};

static int parse_args(int argc, char **argv, struct child_args *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->threads = 1;
    a->heap = "off";
    a->cache = "";
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i];
        if (i + 1 >= argc) {
            snprintf(err, errlen, "option %s needs a value", opt);
            return -1;
        }
        const char *v = argv[++i];
        if (strcmp(opt, "--plugin") == 0)
            a->plugin = v;
        else if (strcmp(opt, "--events") == 0)
            a->events = v;
        else if (strcmp(opt, "--scratch") == 0)
            a->scratch = v;
        else if (strcmp(opt, "--cache") == 0)
            a->cache = v;
        else if (strcmp(opt, "--heap") == 0)
            a->heap = v;
        else if (strcmp(opt, "--seed") == 0)
            a->seed = strtoull(v, NULL, 10);
        else if (strcmp(opt, "--threads") == 0)
            a->threads = atoi(v) > 0 ? atoi(v) : 1;
        else if (strcmp(opt, "-p") == 0) {
            const char *eq = strchr(v, '=');
            if (!eq || a->n == MAX_PARAMS) {
                snprintf(err, errlen, "bad parameter '%s'", v);
                return -1;
            }
            size_t klen = (size_t)(eq - v);
            if (klen >= sizeof a->keybuf[0]) {
                snprintf(err, errlen, "bad parameter '%s'", v);
                return -1;
            }
            /* argv stays intact: it may be exec'd again (heap preload). */
            memcpy(a->keybuf[a->n], v, klen);
            a->keybuf[a->n][klen] = '\0';
            a->keys[a->n] = a->keybuf[a->n];
            a->values[a->n++] = eq + 1;
        } else {
            snprintf(err, errlen, "unknown option %s", opt);
            return -1;
        }
    }
    if (!a->plugin || !a->events || !a->scratch) {
        snprintf(err, errlen, "--plugin, --events and --scratch are required");
        return -1;
    }
    return 0;
}

/* A run on the GPU (-p device=cuda): the interposer books device memory and NVML samples
 * this process, the two witnesses of `memtrade profile --device`. */
static int wants_device(const struct child_args *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (!strcmp(a->keys[i], "device") && !strcmp(a->values[i], "cuda")) return 1;
    return 0;
}

/* Stops NVML's sampler and reports nvml_peak_device_bytes (unavailable with the reason
 * when NVML could not start or saw nothing of this process). */
static void report_nvml(struct mt_ctx *ctx, struct mt_nvml *nv, const char *absent)
{
    char why[256];
    long long peak = 0;
    mt_nvml_stop(nv);
    if (nv && mt_nvml_tree_peak(nv, &peak, why, sizeof why) == 0)
        mt_metric(ctx, "nvml_peak_device_bytes", (double)peak, "bytes");
    else
        mt_metric_na(ctx, "nvml_peak_device_bytes", "bytes", nv ? why : absent);
    mt_nvml_free(nv);
}

/* Re-executes this process with the heap profiler preloaded (once). Returns only when
 * that is not wanted or not possible. */
static void maybe_preload_heap(char **argv, const struct child_args *a, int rank)
{
    char libbuf[PATH_MAX];
    const char *lib = mt_child_heap_lib(libbuf, sizeof libbuf);
    if (!lib || strcmp(a->heap, "off") == 0 || getenv("MEMTRADE_CHILD_PRELOADED")) return;
    char out[PATH_MAX], preload[PATH_MAX * 2];
    snprintf(out, sizeof out, "%s/heap.%d", a->scratch, rank);
    const char *old = getenv("LD_PRELOAD");
    snprintf(preload, sizeof preload, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
    setenv("MEMTRADE_HEAP_OUT", out, 1);
    setenv("MEMTRADE_HEAP_MODE", a->heap, 1);
    if (wants_device(a)) setenv("MEMTRADE_HEAP_DEVICE", "1", 1); /* the driver's memory too */
    setenv("MEMTRADE_CHILD_PRELOADED", "1", 1);
    setenv("LD_PRELOAD", preload, 1);
    execv("/proc/self/exe", argv);
    /* exec failed: run without the profiler, and say so in the events. */
    unsetenv("LD_PRELOAD");
}

static int start_error(int fd, const char *msg)
{
    fprintf(stderr, "memtrade __child: %s\n", msg);
    if (fd >= 0) {
        const char *f[] = {msg, "0"};
        mt_events_write(fd, MT_EV_ERROR, f, 2);
    }
    return 2;
}

int mt_child_main(int argc, char **argv)
{
    struct child_args a;
    char err[PATH_MAX + 2048];
    if (parse_args(argc, argv, &a, err, sizeof err) != 0) return start_error(-1, err);
    int rank, nranks;
    mt_child_rank(&rank, &nranks);
    maybe_preload_heap(argv, &a, rank);

    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/events.%d", a.events, rank);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, sizeof err, "cannot open %s: %s", path, strerror(errno));
        return start_error(-1, err);
    }
    fatal_fd = fd;
    catch_fatal_signals();

    char threads[16];
    snprintf(threads, sizeof threads, "%d", a.threads);
    setenv("OMP_NUM_THREADS", threads, 1);
    omp_set_num_threads(a.threads);

    struct mt_plugin plugin;
    if (mt_plugins_open(a.plugin, &plugin, err, sizeof err) != 0) return start_error(fd, err);
    if (plugin.desc.unavailable) { /* the parent refuses these; a direct start says why too */
        snprintf(err, sizeof err, "workload '%s' is unavailable: %s", plugin.desc.name,
                 plugin.desc.unavailable);
        mt_plugins_close(&plugin);
        return start_error(fd, err);
    }
    struct mt_params params;
    if (mt_params_resolve(&plugin.desc, a.keys, a.values, a.n, &params, err, sizeof err) != 0) {
        mt_plugins_close(&plugin);
        return start_error(fd, err);
    }

    struct mt_counters *counters = NULL;
#ifdef MT_HAVE_COUNTERS
    if (mt_counters_open(NULL, &counters, err, sizeof err) != 0) {
        const char *f[] = {"0", "warn", err};
        mt_events_write(fd, MT_EV_LOG, f, 3);
        counters = NULL;
    }
#endif

    struct mt_context ctx;
    const struct mt_context_run run = {
        .seed = a.seed,
        .threads = a.threads,
        .rank = rank,
        .nranks = nranks,
        .cache_dir = a.cache,
        .corpus = getenv("MEMTRADE_CORPUS") ? getenv("MEMTRADE_CORPUS") : "",
        .scratch_dir = a.scratch};
    mt_context_init(&ctx, &params, fd, &run, counters);
    fatal_ctx = &ctx;
    char pid[24], r[24], n[24], abi[32];
    snprintf(abi, sizeof abi, "%u.%u", (unsigned)plugin.desc.abi_major,
             (unsigned)plugin.desc.abi_minor);
    const char *hello[] = {mt_events_fmt_i64(pid, getpid()), mt_events_fmt_i64(r, rank),
                           mt_events_fmt_i64(n, nranks), abi};
    mt_events_write(fd, MT_EV_HELLO, hello, 4);
    const char *heap_fact[] = {"heap_profiler",
                               getenv("MEMTRADE_CHILD_PRELOADED") ? a.heap : "off"};
    mt_events_write(fd, MT_EV_FACT, heap_fact, 2);

    char nvml_absent[256] = "";
    struct mt_nvml *nv = wants_device(&a) && rank == 0
                             ? mt_nvml_start(getpid(), 10, nvml_absent, sizeof nvml_absent)
                             : NULL;
    int rc = plugin.desc.run(&ctx.pub);
    if (wants_device(&a) && rank == 0) report_nvml(&ctx.pub, nv, nvml_absent);
    if (rc == 0 && ctx.bug[0]) rc = 1; /* the ERROR event naming the misuse is already written */
    if (rc != 0 && !ctx.error[0] && !ctx.bug[0]) {
        const char *f[] = {"run() failed without a message (mt_error was not called)", "0"};
        mt_events_write(fd, MT_EV_ERROR, f, 2);
    }
    mt_context_finish(&ctx);
    kept_rss = mt_phase_rss_whole(&ctx.rss, -1);
    fatal_ctx = NULL;
#ifdef MT_HAVE_COUNTERS
    mt_counters_close(counters);
#endif
    char rcs[24], rss[24], vm[24];
    long long peak = proc_status_kib("VmPeak");
    const char *done[] = {mt_events_fmt_i64(rcs, rc), mt_events_fmt_i64(rss, maxrss_bytes()),
                          mt_events_fmt_i64(vm, peak < 0 ? -1 : peak * 1024)};
    mt_events_write(fd, MT_EV_DONE, done, 3);
    mt_params_free(&params);
    mt_plugins_close(&plugin);
    int lost = mt_events_write_errno();
    if (lost) { /* on a full disk this line is lost too; the exit status is not */
        fprintf(stderr, "memtrade __child: cannot write the event file %s: %s\n", path,
                strerror(lost));
        return MT_CHILD_EXIT_EVENTS;
    }
    /* The plugin stays loaded: its destructors and the heap profiler's exit report run
     * at exit(). */
    return rc == 0 ? 0 : 1;
}
