/* cuda_prog.c — a known pattern of CUDA driver memory calls, for the device-memory
 * profiler's tests; built twice.
 *
 * What it is for: cuda_direct (MT_DIRECT) calls the driver by symbol, linked to the fake
 * libcuda.so.1 of fake_cuda.c; cuda_runtime does what libcudart does: dlopen
 * ("libcuda.so.1"), dlsym cuGetProcAddress_v2 and take every entry point through it
 * (cuGetProcAddress itself, and the per-thread-stream variants of the async calls). Both
 * make the same calls, so check_device.c expects the same exact bytes of both; the runtime
 * variant also checks that dlsym(RTLD_NEXT) still answers for its caller under the
 * interposer, and calls the pre-3.2 cuMemAlloc, which must not be booked. What it is not
 * for: checking the report (check_device.c does).
 */
#define _GNU_SOURCE
#include "cuda_abi.h"
#include "mt_check.h"

#include <dlfcn.h>
#include <memtrade/memcat.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct api {
    mt_cu_alloc_fn *alloc;
    mt_cu_alloc_pitch_fn *pitch;
    mt_cu_alloc_async_fn *async, *async_ptsz;
    mt_cu_alloc_pool_fn *pool;
    mt_cu_alloc_managed_fn *managed;
    mt_cu_free_fn *free;
    mt_cu_free_async_fn *free_async, *free_async_ptsz;
    mt_cu_host_alloc_fn *host_alloc;
    mt_cu_alloc_host_fn *alloc_host;
    mt_cu_free_host_fn *free_host;
    mt_cu_create_fn *create;
    mt_cu_release_fn *release;
    mt_cu_map_fn *map;
    mt_cu_unmap_fn *unmap;
};

static int failures;
#define CHECK(call, want)                                                                          \
    do {                                                                                           \
        CUresult rc_ = (call);                                                                     \
        MT_CHECK_OR(failures++, rc_ == (want), #call, "returned %d, expected %d", rc_, (want));    \
    } while (0)

#ifdef MT_DIRECT
mt_cu_alloc_fn cuMemAlloc_v2;
mt_cu_alloc_pitch_fn cuMemAllocPitch_v2;
mt_cu_alloc_async_fn cuMemAllocAsync, cuMemAllocAsync_ptsz;
mt_cu_alloc_pool_fn cuMemAllocFromPoolAsync;
mt_cu_alloc_managed_fn cuMemAllocManaged;
mt_cu_free_fn cuMemFree_v2;
mt_cu_free_async_fn cuMemFreeAsync, cuMemFreeAsync_ptsz;
mt_cu_host_alloc_fn cuMemHostAlloc;
mt_cu_alloc_host_fn cuMemAllocHost_v2;
mt_cu_free_host_fn cuMemFreeHost;
mt_cu_create_fn cuMemCreate;
mt_cu_release_fn cuMemRelease;
mt_cu_map_fn cuMemMap;
mt_cu_unmap_fn cuMemUnmap;

static int get_api(struct api *a)
{
    *a = (struct api){cuMemAlloc_v2,   cuMemAllocPitch_v2,  cuMemAllocAsync, cuMemAllocAsync_ptsz,
                      cuMemAllocFromPoolAsync, cuMemAllocManaged, cuMemFree_v2, cuMemFreeAsync,
                      cuMemFreeAsync_ptsz, cuMemHostAlloc, cuMemAllocHost_v2, cuMemFreeHost,
                      cuMemCreate, cuMemRelease, cuMemMap, cuMemUnmap};
    return 0;
}
#else
/* What libcudart does, with the checks that the interposer keeps dlsym's caller. */
static int get_api(struct api *a)
{
    void *next = dlsym(RTLD_NEXT, "malloc"), *first = dlsym(RTLD_DEFAULT, "malloc");
    if (next != first) {
        fprintf(stderr, "cuda_prog: dlsym(RTLD_NEXT, malloc) = %p from the program, but the first "
                        "malloc is %p: dlsym answered for the wrong caller\n", next, first);
        return -1;
    }
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "cuda_prog: %s\n", dlerror());
        return -1;
    }
    mt_cu_getproc_v2_fn *gp2 = (mt_cu_getproc_v2_fn *)dlsym(h, "cuGetProcAddress_v2");
    mt_cu_getproc_fn *gp1 = (mt_cu_getproc_fn *)dlsym(h, "cuGetProcAddress");
    mt_cu_getproc_v2_fn *gp = NULL;
    CUdriverProcAddressQueryResult st = -1;
    if (!gp2 || !gp1) return -1;
    CHECK(gp2("cuGetProcAddress", (void **)&gp, 12080, 0, &st), MT_CUDA_SUCCESS);
    if (!gp || st != MT_CU_GET_PROC_ADDRESS_SUCCESS) return -1;
    const int v = 12080;
    const cuuint64_t pt = MT_CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
    struct {
        const char *name;
        void **dst;
        cuuint64_t flags;
        int v1;
    } want[] = {{"cuMemAlloc", (void **)&a->alloc, 0, 0},
                {"cuMemAllocPitch", (void **)&a->pitch, 0, 0},
                {"cuMemAllocAsync", (void **)&a->async, 0, 0},
                {"cuMemAllocAsync", (void **)&a->async_ptsz, pt, 0},
                {"cuMemAllocFromPoolAsync", (void **)&a->pool, 0, 0},
                {"cuMemAllocManaged", (void **)&a->managed, 0, 0},
                {"cuMemFree", (void **)&a->free, 0, 1},
                {"cuMemFreeAsync", (void **)&a->free_async, 0, 0},
                {"cuMemFreeAsync", (void **)&a->free_async_ptsz, pt, 0},
                {"cuMemHostAlloc", (void **)&a->host_alloc, 0, 1},
                {"cuMemAllocHost", (void **)&a->alloc_host, 0, 0},
                {"cuMemFreeHost", (void **)&a->free_host, 0, 0},
                {"cuMemCreate", (void **)&a->create, 0, 0},
                {"cuMemRelease", (void **)&a->release, 0, 0},
                {"cuMemMap", (void **)&a->map, 0, 0},
                {"cuMemUnmap", (void **)&a->unmap, 0, 0}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        CUresult rc = want[i].v1 ? gp1(want[i].name, want[i].dst, v, want[i].flags)
                                 : gp(want[i].name, want[i].dst, v, want[i].flags, &st);
        if (rc != MT_CUDA_SUCCESS || !*want[i].dst) {
            fprintf(stderr, "cuda_prog: cuGetProcAddress(%s) failed: %d\n", want[i].name, rc);
            return -1;
        }
    }
    /* the pre-3.2 ABI: not wrapped, never booked */
    CUresult (*old)(unsigned int *, unsigned int) = NULL;
    unsigned int d32;
    CHECK(gp("cuMemAlloc", (void **)&old, 3000, 0, &st), MT_CUDA_SUCCESS);
    if (!old) return -1;
    CHECK(old(&d32, 4096), MT_CUDA_SUCCESS);
    return 0;
}
#endif

/* Timeline points fall between the phases: 30 ms is longer than the interval (10 ms by
 * default). */
static void pause_ms(void)
{
    struct timespec ts = {0, 30000000};
    nanosleep(&ts, NULL);
}

static __attribute__((noinline)) CUdeviceptr alloc_weights(const struct api *a)
{
    CUdeviceptr d = 0;
    CHECK(a->alloc(&d, 1048576), MT_CUDA_SUCCESS);
    return d;
}

int main(void)
{
    struct api a;
    if (get_api(&a) != 0) return 2;
    CUstream s = NULL;
    CUmemoryPool pool = (CUmemoryPool)(uintptr_t)0x1; /* the fake takes any pool */

    /* device: 1 MiB + a pitched 1000 x 10 (pitch 1024) as weights */
    mt_memcat_set(MT_MEM_WEIGHTS);
    CUdeviceptr w = alloc_weights(&a), pitched = 0;
    size_t pitch = 0;
    CHECK(a.pitch(&pitched, &pitch, 1000, 10, 4), MT_CUDA_SUCCESS);
    pause_ms();

    /* three async blocks of 64 KiB, two freed (one per stream variant), one from a pool */
    mt_memcat_set(MT_MEM_ACTIVATIONS);
    CUdeviceptr b1 = 0, b2 = 0, b3 = 0, p = 0;
    CHECK(a.async_ptsz(&b1, 65536, s), MT_CUDA_SUCCESS);
    CHECK(a.async(&b2, 65536, s), MT_CUDA_SUCCESS);
    CHECK(a.async(&b3, 65536, s), MT_CUDA_SUCCESS);
    CHECK(a.free_async_ptsz(b1, s), MT_CUDA_SUCCESS);
    CHECK(a.free_async(b2, s), MT_CUDA_SUCCESS);
    CHECK(a.pool(&p, 32768, pool, s), MT_CUDA_SUCCESS);
    pause_ms();

    /* the 7th allocation call fails (FAKE_CUDA_FAIL_AT=7); a free of an unknown address */
    mt_memcat_set(MT_MEM_WORKSPACE);
    CUdeviceptr none = 0;
    CHECK(a.alloc(&none, 4096), MT_CUDA_ERROR_OUT_OF_MEMORY);
    CHECK(a.free((CUdeviceptr)0xdead0000), MT_CUDA_ERROR_INVALID_VALUE);

    /* managed and pinned memory as data */
    mt_memcat_set(MT_MEM_DATA);
    CUdeviceptr m = 0;
    void *h1 = NULL, *h2 = NULL;
    CHECK(a.managed(&m, 8192, 1), MT_CUDA_SUCCESS);
    CHECK(a.host_alloc(&h1, 16384, 0), MT_CUDA_SUCCESS);
    CHECK(a.alloc_host(&h2, 4096), MT_CUDA_SUCCESS);
    CHECK(a.free_host(h2), MT_CUDA_SUCCESS);
    pause_ms();

    /* VMM: two 2 MiB handles mapped side by side; the first released while mapped (its
     * memory stays until unmapped), one unmap of both, then the second released */
    mt_memcat_set(MT_MEM_KV_CACHE);
    CUmemGenericAllocationHandle v1 = 0, v2 = 0;
    const CUdeviceptr va = 0x10000000;
    CHECK(a.create(&v1, 2097152, NULL, 0), MT_CUDA_SUCCESS);
    CHECK(a.create(&v2, 2097152, NULL, 0), MT_CUDA_SUCCESS);
    CHECK(a.map(va, 2097152, 0, v1, 0), MT_CUDA_SUCCESS);
    CHECK(a.map(va + 2097152, 2097152, 0, v2, 0), MT_CUDA_SUCCESS);
    CHECK(a.release(v1), MT_CUDA_SUCCESS);
    pause_ms();
    CHECK(a.unmap(va, 4194304), MT_CUDA_SUCCESS);
    CHECK(a.release(v2), MT_CUDA_SUCCESS);
    CHECK(a.release(0x999), MT_CUDA_ERROR_INVALID_VALUE); /* refused: counted, not booked */
    CHECK(a.unmap(0x20000000, 4096), MT_CUDA_SUCCESS);    /* nothing mapped there */
    pause_ms();

    mt_memcat_set(MT_MEM_OTHER);
    CHECK(a.free(w), MT_CUDA_SUCCESS);
    CHECK(a.free(m), MT_CUDA_SUCCESS);
    /* left live: the pitched block, b3, the pool block, h1 */
    return failures ? 1 : 0;
}
