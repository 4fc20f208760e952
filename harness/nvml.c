/* harness/nvml.c — NVML sampling of a program's device memory (see nvml.h). */
#define _GNU_SOURCE
#include "nvml.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The NVML ABI we use (nvml.h of CUDA 11 to 13). */
typedef int nvml_ret;
typedef struct nvml_device_st *nvml_device;
struct nvml_process_info { /* nvmlProcessInfo_t (v2 layout), filled by ..._v3 */
    unsigned int pid;
    unsigned long long used_gpu_memory;
    unsigned int gpu_instance_id, compute_instance_id;
};
struct nvml_memory { /* nvmlMemory_t */
    unsigned long long total, free, used;
};
enum { NVML_OK = 0, NVML_ERROR_INSUFFICIENT_SIZE = 7, MAX_DEVICES = 64, MAX_PROCS = 1024 };
#define NVML_VALUE_NOT_AVAILABLE 0xFFFFFFFFFFFFFFFFULL

struct mt_nvml {
    void *lib;
    nvml_ret (*init)(void);
    nvml_ret (*shutdown)(void);
    nvml_ret (*count)(unsigned int *);
    nvml_ret (*handle)(unsigned int, nvml_device *);
    nvml_ret (*procs)(nvml_device, unsigned int *, struct nvml_process_info *);
    nvml_ret (*meminfo)(nvml_device, struct nvml_memory *);
    const char *(*error_string)(nvml_ret);
    nvml_device dev[MAX_DEVICES];
    unsigned int ndev;
    unsigned long long used0[MAX_DEVICES];
    pid_t root;
    long interval_ms;
    double t0;
    pthread_t thread;
    atomic_int stop;
    int running;
    int not_available; /* the driver reported usedGpuMemory as not available */
    struct mt_nvml_sample *s;
    size_t n, cap;
    struct nvml_process_info info[MAX_PROCS];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Whether pid is root or one of its descendants (/proc's parent links). */
static int in_tree(pid_t pid, pid_t root)
{
    for (int depth = 0; pid > 1 && depth < 64; depth++) {
        if (pid == root) return 1;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f) return 0;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = '\0';
        const char *paren = strrchr(buf, ')'); /* the name may hold spaces and ')' */
        int ppid;
        if (!paren || sscanf(paren + 1, " %*c %d", &ppid) != 1) return 0;
        pid = (pid_t)ppid;
    }
    return 0;
}

static void sample(struct mt_nvml *n)
{
    long long tree = -1, delta = 0;
    for (unsigned int d = 0; d < n->ndev; d++) {
        unsigned int count = MAX_PROCS;
        if (n->procs(n->dev[d], &count, n->info) == NVML_OK) {
            for (unsigned int i = 0; i < count && i < MAX_PROCS; i++) {
                if (!in_tree((pid_t)n->info[i].pid, n->root)) continue;
                if (n->info[i].used_gpu_memory == NVML_VALUE_NOT_AVAILABLE) {
                    n->not_available = 1;
                    continue;
                }
                tree = (tree < 0 ? 0 : tree) + (long long)n->info[i].used_gpu_memory;
            }
        }
        struct nvml_memory m;
        if (n->meminfo(n->dev[d], &m) == NVML_OK && m.used > n->used0[d])
            delta += (long long)(m.used - n->used0[d]);
    }
    if (n->n == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 4096;
        struct mt_nvml_sample *g = realloc(n->s, cap * sizeof *g);
        if (!g) return;
        n->s = g;
        n->cap = cap;
    }
    n->s[n->n++] = (struct mt_nvml_sample){now_s() - n->t0, tree, delta};
}

static void *sampler(void *arg)
{
    struct mt_nvml *n = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!atomic_load(&n->stop)) {
        sample(n);
        next.tv_nsec += n->interval_ms * 1000000L;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    sample(n);
    return NULL;
}

#define SYM(field, name)                                                                           \
    do {                                                                                           \
        *(void **)&n->field = dlsym(n->lib, name);                                                 \
        if (!n->field) {                                                                           \
            snprintf(why, whylen, "libnvidia-ml.so.1 has no %s (driver too old)", name);            \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

struct mt_nvml *mt_nvml_start(pid_t root, long interval_ms, char *why, size_t whylen)
{
    struct mt_nvml *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    n->root = root;
    n->interval_ms = interval_ms > 0 ? interval_ms : 10;
    n->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!n->lib) {
        snprintf(why, whylen, "libnvidia-ml.so.1 not found");
        free(n);
        return NULL;
    }
    SYM(init, "nvmlInit_v2");
    SYM(shutdown, "nvmlShutdown");
    SYM(count, "nvmlDeviceGetCount_v2");
    SYM(handle, "nvmlDeviceGetHandleByIndex_v2");
    SYM(procs, "nvmlDeviceGetComputeRunningProcesses_v3");
    SYM(meminfo, "nvmlDeviceGetMemoryInfo");
    *(void **)&n->error_string = dlsym(n->lib, "nvmlErrorString");
    nvml_ret rc = n->init();
    if (rc != NVML_OK) {
        snprintf(why, whylen, "nvmlInit failed: %s",
                 n->error_string ? n->error_string(rc) : "NVML error");
        goto fail;
    }
    if (n->count(&n->ndev) != NVML_OK || n->ndev == 0) {
        snprintf(why, whylen, "NVML sees no GPU");
        n->shutdown();
        goto fail;
    }
    if (n->ndev > MAX_DEVICES) n->ndev = MAX_DEVICES;
    for (unsigned int d = 0; d < n->ndev; d++) {
        struct nvml_memory m;
        if (n->handle(d, &n->dev[d]) != NVML_OK) {
            snprintf(why, whylen, "nvmlDeviceGetHandleByIndex(%u) failed", d);
            n->shutdown();
            goto fail;
        }
        n->used0[d] = n->meminfo(n->dev[d], &m) == NVML_OK ? m.used : 0;
    }
    n->t0 = now_s();
    if (pthread_create(&n->thread, NULL, sampler, n) != 0) {
        snprintf(why, whylen, "cannot start the NVML sampling thread");
        n->shutdown();
        goto fail;
    }
    n->running = 1;
    return n;
fail:
    dlclose(n->lib);
    free(n);
    return NULL;
}

void mt_nvml_stop(struct mt_nvml *n)
{
    if (!n || !n->running) return;
    atomic_store(&n->stop, 1);
    pthread_join(n->thread, NULL);
    n->running = 0;
}

const struct mt_nvml_sample *mt_nvml_samples(const struct mt_nvml *n, size_t *count)
{
    *count = n ? n->n : 0;
    return n ? n->s : NULL;
}

int mt_nvml_tree_peak(const struct mt_nvml *n, long long *bytes, char *why, size_t whylen)
{
    long long peak = -1;
    for (size_t i = 0; i < n->n; i++)
        if (n->s[i].tree_bytes > peak) peak = n->s[i].tree_bytes;
    if (peak >= 0) {
        *bytes = peak;
        return 0;
    }
    snprintf(why, whylen, "%s",
             n->not_available ? "NVML does not report per-process memory on this system "
                                "(usedGpuMemory not available)"
                              : "NVML listed no process of the program (it used no GPU, or it "
                                "runs in another PID namespace than NVML's)");
    return -1;
}

long long mt_nvml_used_delta_peak(const struct mt_nvml *n)
{
    long long peak = 0;
    for (size_t i = 0; i < n->n; i++)
        if (n->s[i].used_delta_bytes > peak) peak = n->s[i].used_delta_bytes;
    return peak;
}

void mt_nvml_free(struct mt_nvml *n)
{
    if (!n) return;
    mt_nvml_stop(n);
    n->shutdown();
    dlclose(n->lib);
    free(n->s);
    free(n);
}
