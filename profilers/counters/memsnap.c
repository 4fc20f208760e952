/* profilers/counters/memsnap.c — the kernel's view of this process's memory.
 *
 * What it is for: resident set now (/proc/self/statm), its peak (VmHWM in
 * /proc/self/status), and resetting that peak so one phase can be measured. These work on
 * every Linux machine without PAPI or perf, so peak_rss_bytes is always measurable.
 * What it is not for: heap bytes by category (the heap profiler) or other processes.
 * Stateless: safe from any thread.
 */
#include "counters_internal.h"
#include "procfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Reads a whole small /proc file into buf (NUL-terminated), or says why not. */
static int read_proc(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
    if (mt_proc_read(path, buf, cap) < 0)
        return mt_ctr_err(err, errlen, "read %s: %s", path, strerror(errno));
    return 0;
}

int mt_counters_mem(struct mt_memsnap *out, char *err, size_t errlen)
{
    char buf[4096];
    if (read_proc("/proc/self/statm", buf, sizeof buf, err, errlen) != 0) return -1;
    unsigned long long size_pages = 0, resident_pages = 0;
    if (sscanf(buf, "%llu %llu", &size_pages, &resident_pages) != 2)
        return mt_ctr_err(err, errlen, "/proc/self/statm: unexpected format");
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return mt_ctr_err(err, errlen, "sysconf(_SC_PAGESIZE) failed");

    if (read_proc("/proc/self/status", buf, sizeof buf, err, errlen) != 0) return -1;
    const char *hwm = strstr(buf, "\nVmHWM:");
    unsigned long long hwm_kb = 0;
    if (!hwm || sscanf(hwm + 7, "%llu", &hwm_kb) != 1)
        return mt_ctr_err(err, errlen, "/proc/self/status: no VmHWM line");

    out->rss_bytes = (uint64_t)resident_pages * (uint64_t)page;
    out->vm_bytes = (uint64_t)size_pages * (uint64_t)page;
    out->peak_rss_bytes = (uint64_t)hwm_kb * 1024u;
    /* statm and status are two reads: keep peak >= now even if memory grew in between. */
    if (out->peak_rss_bytes < out->rss_bytes) out->peak_rss_bytes = out->rss_bytes;
    return 0;
}

int mt_counters_mem_reset_peak(char *err, size_t errlen)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return mt_ctr_err(err, errlen, "open /proc/self/clear_refs: %s", strerror(errno));
    ssize_t put = write(fd, "5", 1);
    int e = errno;
    close(fd);
    if (put != 1)
        return mt_ctr_err(err, errlen, "write /proc/self/clear_refs: %s",
                          put < 0 ? strerror(e) : "short write");
    return 0;
}
