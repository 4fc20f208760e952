/* fake_cuda.c — a fake CUDA driver (libcuda.so.1) for the device-memory profiler's tests.
 *
 * What it is for: the driver's memory calls with their real ABI (profilers/heap/cuda_abi.h),
 * backed by host memory, so every path of the interposer runs without a GPU: direct calls,
 * cuGetProcAddress (v1 and _v2, with CUDA versions and per-thread-stream variants that are
 * distinct functions), async frees, pools, VMM create/map/unmap/release, managed and
 * pinned memory. FAKE_CUDA_FAIL_AT=N makes the Nth allocation call (of any kind, counted
 * from 1) return CUDA_ERROR_OUT_OF_MEMORY. Frees of an address it never handed out return
 * CUDA_ERROR_INVALID_VALUE, as the driver does. What it is not for: anything that reads
 * or writes device memory (there is none); thread-safety (the tests are single-threaded).
 */
#define _GNU_SOURCE
#include "cuda_abi.h"

#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

enum { MAX_LIVE = 1024 };
static void *live[MAX_LIVE];
static long alloc_calls;

/* Whether this allocation call is the one FAKE_CUDA_FAIL_AT names. */
static int must_fail(void)
{
    const char *s = getenv("FAKE_CUDA_FAIL_AT");
    return ++alloc_calls == (s ? atol(s) : -1);
}

static CUresult give(void **out, size_t n)
{
    if (must_fail()) return MT_CUDA_ERROR_OUT_OF_MEMORY;
    void *p = malloc(n ? n : 1);
    if (!p) return MT_CUDA_ERROR_OUT_OF_MEMORY;
    for (size_t i = 0; i < MAX_LIVE; i++)
        if (!live[i]) {
            live[i] = p;
            *out = p;
            return MT_CUDA_SUCCESS;
        }
    free(p);
    return MT_CUDA_ERROR_OUT_OF_MEMORY;
}

static CUresult take(void *p)
{
    for (size_t i = 0; p && i < MAX_LIVE; i++)
        if (live[i] == p) {
            live[i] = NULL;
            free(p);
            return MT_CUDA_SUCCESS;
        }
    return MT_CUDA_ERROR_INVALID_VALUE;
}

static CUresult give_dev(CUdeviceptr *d, size_t n)
{
    void *p = NULL;
    CUresult rc = d ? give(&p, n) : MT_CUDA_ERROR_INVALID_VALUE;
    if (rc == MT_CUDA_SUCCESS) *d = (CUdeviceptr)(uintptr_t)p;
    return rc;
}

EXPORT CUresult cuInit(unsigned int flags)
{
    (void)flags;
    return MT_CUDA_SUCCESS;
}

/* The pre-3.2 ABI (32-bit sizes and pointers): never wrapped; hands out numbers. */
EXPORT CUresult cuMemAlloc(unsigned int *d, unsigned int n)
{
    static unsigned int next = 0x1000;
    (void)n;
    *d = next += 0x1000;
    return MT_CUDA_SUCCESS;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *d, size_t n)
{
    return give_dev(d, n);
}

EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *d, size_t *pitch, size_t width, size_t height,
                                   unsigned int elem)
{
    (void)elem;
    *pitch = (width + 511) / 512 * 512;
    return give_dev(d, *pitch * height);
}

EXPORT CUresult cuMemAllocAsync(CUdeviceptr *d, size_t n, CUstream s)
{
    (void)s;
    return give_dev(d, n);
}

EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *d, size_t n, CUstream s)
{
    (void)s;
    return give_dev(d, n);
}

EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *d, size_t n, CUmemoryPool pool, CUstream s)
{
    (void)s;
    return pool ? give_dev(d, n) : MT_CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *d, size_t n, CUmemoryPool pool,
                                             CUstream s)
{
    return cuMemAllocFromPoolAsync(d, n, pool, s);
}

EXPORT CUresult cuMemAllocManaged(CUdeviceptr *d, size_t n, unsigned int flags)
{
    (void)flags;
    return give_dev(d, n);
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr d)
{
    return take((void *)(uintptr_t)d);
}

EXPORT CUresult cuMemFreeAsync(CUdeviceptr d, CUstream s)
{
    (void)s;
    return take((void *)(uintptr_t)d);
}

EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr d, CUstream s)
{
    (void)s;
    return take((void *)(uintptr_t)d);
}

EXPORT CUresult cuMemHostAlloc(void **pp, size_t n, unsigned int flags)
{
    (void)flags;
    return give(pp, n);
}

EXPORT CUresult cuMemAllocHost_v2(void **pp, size_t n)
{
    return give(pp, n);
}

EXPORT CUresult cuMemFreeHost(void *p)
{
    return take(p);
}

/* VMM: a handle is the address of its host backing; mapping is bookkeeping only. */
EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *h, size_t n,
                            const CUmemAllocationProp *prop, unsigned long long flags)
{
    (void)prop, (void)flags;
    void *p = NULL;
    CUresult rc = give(&p, n);
    if (rc == MT_CUDA_SUCCESS) *h = (CUmemGenericAllocationHandle)(uintptr_t)p;
    return rc;
}

EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle h)
{
    return take((void *)(uintptr_t)h);
}

EXPORT CUresult cuMemMap(CUdeviceptr va, size_t n, size_t off, CUmemGenericAllocationHandle h,
                         unsigned long long flags)
{
    (void)n, (void)off, (void)flags;
    return va && h ? MT_CUDA_SUCCESS : MT_CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuMemUnmap(CUdeviceptr va, size_t n)
{
    (void)n;
    return va ? MT_CUDA_SUCCESS : MT_CUDA_ERROR_INVALID_VALUE;
}

/* ---- cuGetProcAddress ---------------------------------------------------------------- */

EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags);
EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags,
                                    CUdriverProcAddressQueryResult *status);

/* base name, the version its newer ABI started, the function before and after it, and
 * the per-thread default stream variant (NULL: none) */
static const struct entry {
    const char *base;
    int since;
    void *old, *cur, *ptsz;
} entries[] = {
    {"cuInit", 2000, NULL, (void *)cuInit, NULL},
    {"cuMemAlloc", 3020, (void *)cuMemAlloc, (void *)cuMemAlloc_v2, NULL},
    {"cuMemAllocPitch", 3020, NULL, (void *)cuMemAllocPitch_v2, NULL},
    {"cuMemAllocAsync", 11020, NULL, (void *)cuMemAllocAsync, (void *)cuMemAllocAsync_ptsz},
    {"cuMemAllocFromPoolAsync", 11020, NULL, (void *)cuMemAllocFromPoolAsync,
     (void *)cuMemAllocFromPoolAsync_ptsz},
    {"cuMemAllocManaged", 6000, NULL, (void *)cuMemAllocManaged, NULL},
    {"cuMemFree", 3020, NULL, (void *)cuMemFree_v2, NULL},
    {"cuMemFreeAsync", 11020, NULL, (void *)cuMemFreeAsync, (void *)cuMemFreeAsync_ptsz},
    {"cuMemHostAlloc", 2020, NULL, (void *)cuMemHostAlloc, NULL},
    {"cuMemAllocHost", 3020, NULL, (void *)cuMemAllocHost_v2, NULL},
    {"cuMemFreeHost", 2000, NULL, (void *)cuMemFreeHost, NULL},
    {"cuMemCreate", 10020, NULL, (void *)cuMemCreate, NULL},
    {"cuMemRelease", 10020, NULL, (void *)cuMemRelease, NULL},
    {"cuMemMap", 10020, NULL, (void *)cuMemMap, NULL},
    {"cuMemUnmap", 10020, NULL, (void *)cuMemUnmap, NULL},
    {"cuGetProcAddress", 12000, (void *)cuGetProcAddress, (void *)cuGetProcAddress_v2, NULL},
};

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags,
                             CUdriverProcAddressQueryResult *status)
{
    if (!symbol || !pfn) return MT_CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        const struct entry *e = &entries[i];
        if (strcmp(symbol, e->base)) continue;
        void *f = version >= e->since ? e->cur : e->old;
        if (e->ptsz && (flags & MT_CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)) f = e->ptsz;
        if (status)
            *status = f ? MT_CU_GET_PROC_ADDRESS_SUCCESS
                        : MT_CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
        *pfn = f;
        return f ? MT_CUDA_SUCCESS : MT_CUDA_ERROR_NOT_FOUND;
    }
    if (status) *status = MT_CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return MT_CUDA_ERROR_NOT_FOUND;
}

CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags)
{
    return cuGetProcAddress_v2(symbol, pfn, version, flags, NULL);
}
