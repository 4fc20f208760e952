/* harness/nvml.h — NVML, the second witness of device memory: the used device memory of
 * a program's processes, sampled while it runs (`memtrade profile --device`).
 *
 * What it is for: libnvidia-ml.so.1 opened at run time (no build dependency), a thread
 * that samples nvmlDeviceGetComputeRunningProcesses_v3 every interval and adds up
 * usedGpuMemory of the processes in the program's tree (the root pid and its
 * descendants), and each device's used memory (nvmlDeviceGetMemoryInfo) above what it was
 * at the start, a witness that needs no pid (a container sees other pids than NVML).
 * What it is not for: the interposer's figures (profilers/heap), storing (the caller).
 * Thread-safety: one sampler per root; start and stop from the same thread.
 */
#ifndef MT_HARNESS_NVML_H
#define MT_HARNESS_NVML_H

#include <stddef.h>
#include <sys/types.h>

struct mt_nvml;

/* One sample: seconds since start, bytes of the tree's processes (-1: NVML listed none of
 * them), device used bytes above the start (all devices). */
struct mt_nvml_sample {
    double t;
    long long tree_bytes, used_delta_bytes;
};

/* Contract: opens NVML and starts sampling the processes of the tree rooted at `root`
 * every interval_ms. Returns the sampler, or NULL with the reason in why ("libnvidia-
 * ml.so.1 not found", an NVML error, no device); never blocks on the GPU for long. */
struct mt_nvml *mt_nvml_start(pid_t root, long interval_ms, char *why, size_t whylen);

/* Contract: stops the thread (one last sample first), keeps the samples; NULL is a no-op. */
void mt_nvml_stop(struct mt_nvml *n);

/* Contract: the samples taken (valid until mt_nvml_free). */
const struct mt_nvml_sample *mt_nvml_samples(const struct mt_nvml *n, size_t *count);

/* Contract: the tree's peak in *bytes and 0, or -1 with why it has none (per-process
 * memory not reported by this driver, no process of the tree seen). */
int mt_nvml_tree_peak(const struct mt_nvml *n, long long *bytes, char *why, size_t whylen);

/* Contract: the devices' used-memory peak above the start in *bytes. */
long long mt_nvml_used_delta_peak(const struct mt_nvml *n);

/* Contract: shuts NVML down and frees everything; NULL is a no-op. */
void mt_nvml_free(struct mt_nvml *n);

#endif
