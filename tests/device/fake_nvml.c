/* fake_nvml.c — a fake NVML (libnvidia-ml.so.1) for `memtrade profile --device`'s tests.
 *
 * What it is for: the few NVML calls the harness makes (harness/nvml.c), with one device
 * whose process list holds pid 1 (never in a profiled tree: must not be counted) with
 * 999999999 bytes, and every direct child of the calling process (the profiled program)
 * with the bytes written in the file $FAKE_NVML_USED (read at each call; absent or empty:
 * not listed). The device's used memory is 1000 bytes plus that number. What it is not
 * for: anything but those calls.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

struct info {
    unsigned int pid;
    unsigned long long used;
    unsigned int gi, ci;
};
struct memory {
    unsigned long long total, free, used;
};

static long long file_bytes(void)
{
    const char *path = getenv("FAKE_NVML_USED");
    FILE *f = path ? fopen(path, "re") : NULL;
    long long v = -1;
    if (f) {
        if (fscanf(f, "%lld", &v) != 1) v = -1;
        fclose(f);
    }
    return v;
}

static int parent_of(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = '\0';
    const char *p = strrchr(buf, ')');
    int ppid = -1;
    if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1) return -1;
    return ppid;
}

EXPORT int nvmlInit_v2(void)
{
    return 0;
}
EXPORT int nvmlShutdown(void)
{
    return 0;
}
EXPORT const char *nvmlErrorString(int rc)
{
    return rc ? "fake NVML error" : "success";
}
EXPORT int nvmlDeviceGetCount_v2(unsigned int *n)
{
    *n = 1;
    return 0;
}
EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **dev)
{
    *dev = (void *)(uintptr_t)(i + 1);
    return i == 0 ? 0 : 2;
}

EXPORT int nvmlDeviceGetMemoryInfo(void *dev, struct memory *m)
{
    (void)dev;
    long long v = file_bytes();
    m->total = 80ULL << 30;
    m->used = 1000 + (unsigned long long)(v > 0 ? v : 0);
    m->free = m->total - m->used;
    return 0;
}

EXPORT int nvmlDeviceGetComputeRunningProcesses_v3(void *dev, unsigned int *count, struct info *out)
{
    (void)dev;
    struct info all[64] = {{.pid = 1, .used = 999999999}};
    unsigned int n = 1;
    long long v = file_bytes();
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (v >= 0 && d && (e = readdir(d)) && n < 64) {
        int pid = atoi(e->d_name);
        if (pid > 0 && parent_of(pid) == (int)getpid())
            all[n++] = (struct info){.pid = (unsigned int)pid, .used = (unsigned long long)v};
    }
    if (d) closedir(d);
    if (*count < n) {
        *count = n;
        return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */
    }
    memcpy(out, all, n * sizeof *all);
    *count = n;
    return 0;
}
