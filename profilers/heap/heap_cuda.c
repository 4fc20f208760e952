/* heap_cuda.c — the CUDA driver's memory calls, interposed: direct calls, dlsym and
 * cuGetProcAddress.
 *
 * What it is for: wrappers of cuMemAlloc_v2, cuMemAllocPitch_v2, cuMemAllocAsync(_ptsz),
 * cuMemAllocFromPoolAsync(_ptsz), cuMemAllocManaged, cuMemFree_v2, cuMemFreeAsync(_ptsz),
 * cuMemCreate/cuMemRelease/cuMemMap/cuMemUnmap, cuMemHostAlloc, cuMemAllocHost_v2 and
 * cuMemFreeHost that call the driver and book what it answered (heap_device.h), with the
 * caller's stack and category. A program linked to libcuda reaches them by symbol
 * interposition; the CUDA runtime does not: it dlopens libcuda.so.1, takes
 * cuGetProcAddress(_v2) with dlsym and every entry point through it. So dlsym and
 * cuGetProcAddress (v1: CUDA 11.3+, _v2: 12.0+) are interposed too, and hand back these
 * wrappers for the memory calls, remembering the driver's pointer each wrapper then calls.
 * Everything is recorded only with MEMTRADE_HEAP_DEVICE=1; without it the wrappers only
 * forward. What it is not for: counting (heap_device.c) or the report (heap_output.c).
 *
 * dlsym keeps its caller: glibc resolves RTLD_NEXT (and RTLD_DEFAULT's scope) from the
 * return address, so the exported dlsym is a stub that asks route() where to go and jumps
 * there with the caller's return address in place.
 */
#define _GNU_SOURCE
#include "heap_internal.h"

#include "cuda_abi.h"
#include "heap_device.h"
#include "heap_output.h"
#include "heap_stacks.h"
#include "heap_tracker.h"

#include <dlfcn.h>
#include <string.h>

#define G mt_heap_g.cuda

/* ---- slots: one per wrapper ---------------------------------------------------------- */

enum slot {
    S_ALLOC,
    S_PITCH,
    S_ASYNC,
    S_ASYNC_PTSZ,
    S_POOL,
    S_POOL_PTSZ,
    S_MANAGED,
    S_FREE,
    S_FREE_ASYNC,
    S_FREE_ASYNC_PTSZ,
    S_HOST_ALLOC,
    S_ALLOC_HOST,
    S_FREE_HOST,
    S_CREATE,
    S_RELEASE,
    S_MAP,
    S_UNMAP,
    S_GETPROC,
    S_GETPROC_V2,
    S_COUNT
};
_Static_assert((int)S_COUNT <= (int)MT_CUDA_SLOTS, "slots");

/* The wrappers, defined below. */
#define W(name) MT_EXPORT CUresult name
W(cuMemAlloc_v2)(CUdeviceptr *, size_t);
W(cuMemAllocPitch_v2)(CUdeviceptr *, size_t *, size_t, size_t, unsigned int);
W(cuMemAllocAsync)(CUdeviceptr *, size_t, CUstream);
W(cuMemAllocAsync_ptsz)(CUdeviceptr *, size_t, CUstream);
W(cuMemAllocFromPoolAsync)(CUdeviceptr *, size_t, CUmemoryPool, CUstream);
W(cuMemAllocFromPoolAsync_ptsz)(CUdeviceptr *, size_t, CUmemoryPool, CUstream);
W(cuMemAllocManaged)(CUdeviceptr *, size_t, unsigned int);
W(cuMemFree_v2)(CUdeviceptr);
W(cuMemFreeAsync)(CUdeviceptr, CUstream);
W(cuMemFreeAsync_ptsz)(CUdeviceptr, CUstream);
W(cuMemHostAlloc)(void **, size_t, unsigned int);
W(cuMemAllocHost_v2)(void **, size_t);
W(cuMemFreeHost)(void *);
W(cuMemCreate)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *,
               unsigned long long);
W(cuMemRelease)(CUmemGenericAllocationHandle);
W(cuMemMap)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long);
W(cuMemUnmap)(CUdeviceptr, size_t);
W(cuGetProcAddress)(const char *, void **, int, cuuint64_t);
W(cuGetProcAddress_v2)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);
#undef W

/* name: the exported symbol; base: the name cuGetProcAddress is asked for, with the CUDA
 * version (1000 * major + 10 * minor) from which `base` means this ABI; ptsz: the
 * per-thread default stream variant of the slot before it. */
static const struct slot_info {
    const char *name, *base;
    int since, ptsz;
    void *wrapper;
} slots[S_COUNT] = {
    [S_ALLOC] = {"cuMemAlloc_v2", "cuMemAlloc", 3020, 0, (void *)cuMemAlloc_v2},
    [S_PITCH] = {"cuMemAllocPitch_v2", "cuMemAllocPitch", 3020, 0, (void *)cuMemAllocPitch_v2},
    [S_ASYNC] = {"cuMemAllocAsync", "cuMemAllocAsync", 11020, 0, (void *)cuMemAllocAsync},
    [S_ASYNC_PTSZ] = {"cuMemAllocAsync_ptsz", "cuMemAllocAsync", 11020, 1,
                      (void *)cuMemAllocAsync_ptsz},
    [S_POOL] = {"cuMemAllocFromPoolAsync", "cuMemAllocFromPoolAsync", 11020, 0,
                (void *)cuMemAllocFromPoolAsync},
    [S_POOL_PTSZ] = {"cuMemAllocFromPoolAsync_ptsz", "cuMemAllocFromPoolAsync", 11020, 1,
                     (void *)cuMemAllocFromPoolAsync_ptsz},
    [S_MANAGED] = {"cuMemAllocManaged", "cuMemAllocManaged", 6000, 0, (void *)cuMemAllocManaged},
    [S_FREE] = {"cuMemFree_v2", "cuMemFree", 3020, 0, (void *)cuMemFree_v2},
    [S_FREE_ASYNC] = {"cuMemFreeAsync", "cuMemFreeAsync", 11020, 0, (void *)cuMemFreeAsync},
    [S_FREE_ASYNC_PTSZ] = {"cuMemFreeAsync_ptsz", "cuMemFreeAsync", 11020, 1,
                           (void *)cuMemFreeAsync_ptsz},
    [S_HOST_ALLOC] = {"cuMemHostAlloc", "cuMemHostAlloc", 2020, 0, (void *)cuMemHostAlloc},
    [S_ALLOC_HOST] = {"cuMemAllocHost_v2", "cuMemAllocHost", 3020, 0, (void *)cuMemAllocHost_v2},
    [S_FREE_HOST] = {"cuMemFreeHost", "cuMemFreeHost", 2000, 0, (void *)cuMemFreeHost},
    [S_CREATE] = {"cuMemCreate", "cuMemCreate", 10020, 0, (void *)cuMemCreate},
    [S_RELEASE] = {"cuMemRelease", "cuMemRelease", 10020, 0, (void *)cuMemRelease},
    [S_MAP] = {"cuMemMap", "cuMemMap", 10020, 0, (void *)cuMemMap},
    [S_UNMAP] = {"cuMemUnmap", "cuMemUnmap", 10020, 0, (void *)cuMemUnmap},
    [S_GETPROC] = {"cuGetProcAddress", "cuGetProcAddress", 11030, 0, (void *)cuGetProcAddress},
    [S_GETPROC_V2] = {"cuGetProcAddress_v2", "cuGetProcAddress", 12000, 0,
                      (void *)cuGetProcAddress_v2},
};

static int slot_by_name(const char *name)
{
    if (!name || name[0] != 'c' || name[1] != 'u') return -1;
    for (int i = 0; i < S_COUNT; i++)
        if (!strcmp(name, slots[i].name)) return i;
    return -1;
}

static int is_wrapper(const void *p)
{
    for (int i = 0; i < S_COUNT; i++)
        if (slots[i].wrapper == p) return 1;
    return 0;
}

/* The slot of what the driver answered for cuGetProcAddress(base, version, flags), or -1
 * (not a memory call, or an older ABI we do not wrap). */
static int slot_for_proc(const char *base, int version, cuuint64_t flags, void *real)
{
    int plain = -1;
    for (int i = 0; i < S_COUNT && plain < 0; i++)
        if (!slots[i].ptsz && !strcmp(base, slots[i].base) && version >= slots[i].since &&
            (i != S_GETPROC || version < slots[S_GETPROC_V2].since))
            plain = i;
    if (plain < 0) return slot_by_name(base); /* a full name, e.g. "cuMemAlloc_v2" */
    int ptsz = plain + 1 < S_COUNT && slots[plain + 1].ptsz ? plain + 1 : -1;
    if (ptsz < 0) return plain;
    if (atomic_load(&G.real[plain]) == real) return plain;
    if (atomic_load(&G.real[ptsz]) == real) return ptsz;
    int want = (flags & MT_CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) ? ptsz : plain;
    return atomic_load(&G.real[want]) ? (want == plain ? ptsz : plain) : want;
}

/* What to hand out for the driver's `real` entry point of slot s: the wrapper, which will
 * call `real`; or `real` itself when it is ours already or the slot holds another driver's
 * function (a second libcuda: counted, not followed). */
static void *hand_out(int s, void *real)
{
    if (!real || s < 0 || is_wrapper(real)) return real;
    void *expect = NULL;
    if (atomic_compare_exchange_strong(&G.real[s], &expect, real) || expect == real)
        return slots[s].wrapper;
    atomic_fetch_add(&G.unwrapped, 1);
    return real;
}

/* ---- dlsym --------------------------------------------------------------------------- */

typedef void *dlsym_fn(void *, const char *);

static dlsym_fn *real_dlsym(void)
{
    dlsym_fn *f = atomic_load(&G.real_dlsym);
    if (f) return f;
    /* glibc 2.34+ (x86-64, aarch64), then older x86-64 and aarch64 glibc */
    static const char *const versions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17"};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0] && !f; i++)
        f = (dlsym_fn *)dlvsym(RTLD_NEXT, "dlsym", versions[i]);
    atomic_store(&G.real_dlsym, f);
    return f;
}

/* dlsym of a driver memory call (device recording on): the driver's symbol, wrapped. The
 * caller is this library here, which changes nothing for libcuda's symbols. */
static void *dlsym_cu(void *handle, const char *name)
{
    return hand_out(slot_by_name(name), real_dlsym()(handle, name));
}

static void *dlsym_missing(void *handle, const char *name)
{
    (void)handle, (void)name;
    return NULL;
}

/* Where the exported dlsym jumps, with its arguments and return address untouched. */
MT_HIDDEN void *mt_heap_dlsym_route(void *handle, const char *name);
void *mt_heap_dlsym_route(void *handle, const char *name)
{
    (void)handle;
    if (!mt_heap_tls.in_init) mt_heap_ensure_init();
    dlsym_fn *real = real_dlsym();
    if (mt_heap_g.cfg.device && slot_by_name(name) >= 0 && real) return (void *)dlsym_cu;
    return real ? (void *)real : (void *)dlsym_missing;
}

#if defined(__x86_64__)
__asm__(".text\n"
        ".globl dlsym\n"
        ".type dlsym, @function\n"
        "dlsym:\n"
#ifdef __CET__
        "  endbr64\n"
#endif
        "  push %rdi\n"
        "  push %rsi\n"
        "  sub $8, %rsp\n"
        "  call mt_heap_dlsym_route\n"
        "  add $8, %rsp\n"
        "  pop %rsi\n"
        "  pop %rdi\n"
        "  jmp *%rax\n"
        ".size dlsym, .-dlsym\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl dlsym\n"
        ".type dlsym, %function\n"
        "dlsym:\n"
        "  stp x29, x30, [sp, -32]!\n"
        "  mov x29, sp\n"
        "  stp x0, x1, [sp, 16]\n"
        "  bl mt_heap_dlsym_route\n"
        "  mov x16, x0\n"
        "  ldp x0, x1, [sp, 16]\n"
        "  ldp x29, x30, [sp], 32\n"
        "  br x16\n"
        ".size dlsym, .-dlsym\n");
#else
#error "heap_cuda.c: the dlsym stub exists for x86-64 and aarch64 only"
#endif

/* ---- recording ----------------------------------------------------------------------- */

/* The driver's function of slot s (found with RTLD_NEXT the first time a program linked to
 * libcuda calls the wrapper), or NULL. */
static void *real_of(int s)
{
    void *f = atomic_load(&G.real[s]);
    if (MT_LIKELY(f != NULL)) return f;
    dlsym_fn *d = real_dlsym();
    f = d ? d(RTLD_NEXT, slots[s].name) : NULL;
    if (!f || is_wrapper(f)) return NULL;
    void *expect = NULL;
    atomic_compare_exchange_strong(&G.real[s], &expect, f);
    return atomic_load(&G.real[s]);
}

static int recording(void)
{
    return mt_heap_g.cfg.device && mt_heap_should_record();
}

/* After the driver answered an allocation of `kind`: books n bytes at key (an address, or
 * a VMM handle) with the stack above anchor, or counts the refusal. */
static __attribute__((noinline)) void booked(CUresult rc, int kind, uint64_t key, uint64_t n,
                                             uintptr_t anchor)
{
    if (!recording()) return;
    if (rc != MT_CUDA_SUCCESS) {
        if (mt_heap_lock_tracking()) {
            mt_heap_dev_failed(kind);
            mt_heap_unlock();
        }
        return;
    }
    int old = mt_heap_guard(1);
    struct mt_heap_stack st;
    mt_heap_stack_capture(&st, 1, anchor);
    if (mt_heap_lock_tracking()) {
        mt_heap_dev_alloc(kind, key, n, mt_heap_tls.cat, st.frames, st.depth, st.hash);
        mt_heap_unlock();
    }
    mt_heap_guard(old);
    mt_heap_point_if_due();
}

/* A free of address p by a call that frees `kind` (device also frees managed blocks):
 * takes its record out before the driver runs (the address may be handed out again at
 * once), and after it answered uncounts it, or puts it back if the driver refused. */
struct pending {
    int have, on;
    struct mt_heap_dev_rec r;
};

static struct pending free_begin(uint64_t p, int kind)
{
    struct pending f = {.on = recording()};
    if (!f.on || !p || !mt_heap_lock_tracking()) return f;
    f.have = mt_heap_dev_take(p, &f.r);
    if (!f.have) mt_heap_dev_unknown_free(kind);
    mt_heap_unlock();
    return f;
}

static CUresult free_end(const struct pending *f, CUresult rc, int kind)
{
    if (!f->on || !mt_heap_lock_tracking()) return rc;
    if (rc != MT_CUDA_SUCCESS) mt_heap_dev_failed(f->have ? f->r.kind : kind);
    if (f->have && rc == MT_CUDA_SUCCESS) mt_heap_dev_release(&f->r);
    if (f->have && rc != MT_CUDA_SUCCESS) mt_heap_dev_restore(&f->r);
    mt_heap_unlock();
    mt_heap_point_if_due();
    return rc;
}

#define ANCHOR ((uintptr_t)__builtin_frame_address(0))
/* The driver's function of slot s as `real` (or the error a missing driver gives), and a
 * timeline point when one is due, taken before the call changes anything. */
#define REAL(s, type)                                                                              \
    type *real = (type *)real_of(s);                                                               \
    if (!real) return MT_CUDA_ERROR_NOT_INITIALIZED;                                               \
    if (mt_heap_g.cfg.device) mt_heap_point_if_due()

/* ---- the wrappers -------------------------------------------------------------------- */

CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t n)
{
    REAL(S_ALLOC, mt_cu_alloc_fn);
    CUresult rc = real(dptr, n);
    booked(rc, MT_DEV_DEVICE, rc || !dptr ? 0 : *dptr, n, ANCHOR);
    return rc;
}

CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height,
                            unsigned int elem)
{
    REAL(S_PITCH, mt_cu_alloc_pitch_fn);
    CUresult rc = real(dptr, pitch, width, height, elem);
    int ok = rc == MT_CUDA_SUCCESS && dptr && pitch;
    booked(rc, MT_DEV_DEVICE, ok ? *dptr : 0, ok ? (uint64_t)*pitch * height : 0, ANCHOR);
    return rc;
}

#define ALLOC_ASYNC(fn, s)                                                                         \
    CUresult fn(CUdeviceptr *dptr, size_t n, CUstream stream)                                      \
    {                                                                                              \
        REAL(s, mt_cu_alloc_async_fn);                                                             \
        CUresult rc = real(dptr, n, stream);                                                       \
        booked(rc, MT_DEV_DEVICE, rc || !dptr ? 0 : *dptr, n, ANCHOR);                             \
        return rc;                                                                                 \
    }
ALLOC_ASYNC(cuMemAllocAsync, S_ASYNC)
ALLOC_ASYNC(cuMemAllocAsync_ptsz, S_ASYNC_PTSZ)

#define ALLOC_POOL(fn, s)                                                                          \
    CUresult fn(CUdeviceptr *dptr, size_t n, CUmemoryPool pool, CUstream stream)                   \
    {                                                                                              \
        REAL(s, mt_cu_alloc_pool_fn);                                                              \
        CUresult rc = real(dptr, n, pool, stream);                                                 \
        booked(rc, MT_DEV_DEVICE, rc || !dptr ? 0 : *dptr, n, ANCHOR);                             \
        return rc;                                                                                 \
    }
ALLOC_POOL(cuMemAllocFromPoolAsync, S_POOL)
ALLOC_POOL(cuMemAllocFromPoolAsync_ptsz, S_POOL_PTSZ)

CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t n, unsigned int flags)
{
    REAL(S_MANAGED, mt_cu_alloc_managed_fn);
    CUresult rc = real(dptr, n, flags);
    booked(rc, MT_DEV_MANAGED, rc || !dptr ? 0 : *dptr, n, ANCHOR);
    return rc;
}

CUresult cuMemFree_v2(CUdeviceptr p)
{
    REAL(S_FREE, mt_cu_free_fn);
    struct pending f = free_begin(p, MT_DEV_DEVICE);
    return free_end(&f, real(p), MT_DEV_DEVICE);
}

#define FREE_ASYNC(fn, s)                                                                          \
    CUresult fn(CUdeviceptr p, CUstream stream)                                                    \
    {                                                                                              \
        REAL(s, mt_cu_free_async_fn);                                                              \
        struct pending f = free_begin(p, MT_DEV_DEVICE);                                           \
        return free_end(&f, real(p, stream), MT_DEV_DEVICE);                                       \
    }
FREE_ASYNC(cuMemFreeAsync, S_FREE_ASYNC)
FREE_ASYNC(cuMemFreeAsync_ptsz, S_FREE_ASYNC_PTSZ)

CUresult cuMemHostAlloc(void **pp, size_t n, unsigned int flags)
{
    REAL(S_HOST_ALLOC, mt_cu_host_alloc_fn);
    CUresult rc = real(pp, n, flags);
    booked(rc, MT_DEV_PINNED, rc || !pp ? 0 : (uint64_t)(uintptr_t)*pp, n, ANCHOR);
    return rc;
}

CUresult cuMemAllocHost_v2(void **pp, size_t n)
{
    REAL(S_ALLOC_HOST, mt_cu_alloc_host_fn);
    CUresult rc = real(pp, n);
    booked(rc, MT_DEV_PINNED, rc || !pp ? 0 : (uint64_t)(uintptr_t)*pp, n, ANCHOR);
    return rc;
}

CUresult cuMemFreeHost(void *p)
{
    REAL(S_FREE_HOST, mt_cu_free_host_fn);
    struct pending f = free_begin((uint64_t)(uintptr_t)p, MT_DEV_PINNED);
    return free_end(&f, real(p), MT_DEV_PINNED);
}

CUresult cuMemCreate(CUmemGenericAllocationHandle *h, size_t n, const CUmemAllocationProp *prop,
                     unsigned long long flags)
{
    REAL(S_CREATE, mt_cu_create_fn);
    CUresult rc = real(h, n, prop, flags);
    booked(rc, MT_DEV_VMM, rc || !h ? 0 : *h, n, ANCHOR);
    return rc;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle h)
{
    REAL(S_RELEASE, mt_cu_release_fn);
    CUresult rc = real(h);
    if (recording() && mt_heap_lock_tracking()) {
        if (rc != MT_CUDA_SUCCESS)
            mt_heap_dev_failed(MT_DEV_VMM);
        else if (!mt_heap_dev_handle_release(h))
            mt_heap_dev_unknown_free(MT_DEV_VMM);
        mt_heap_unlock();
    }
    return rc;
}

CUresult cuMemMap(CUdeviceptr va, size_t n, size_t offset, CUmemGenericAllocationHandle h,
                  unsigned long long flags)
{
    REAL(S_MAP, mt_cu_map_fn);
    CUresult rc = real(va, n, offset, h, flags);
    if (recording() && mt_heap_lock_tracking()) {
        if (rc != MT_CUDA_SUCCESS)
            mt_heap_dev_failed(MT_DEV_VMM);
        else
            mt_heap_dev_map(va, n, h);
        mt_heap_unlock();
    }
    return rc;
}

CUresult cuMemUnmap(CUdeviceptr va, size_t n)
{
    REAL(S_UNMAP, mt_cu_unmap_fn);
    CUresult rc = real(va, n);
    if (recording() && mt_heap_lock_tracking()) {
        if (rc != MT_CUDA_SUCCESS)
            mt_heap_dev_failed(MT_DEV_VMM);
        else if (mt_heap_dev_unmap(va, n) == 0)
            mt_heap_dev_unknown_free(MT_DEV_VMM);
        mt_heap_unlock();
    }
    mt_heap_point_if_due();
    return rc;
}

/* ---- cuGetProcAddress ---------------------------------------------------------------- */

/* After the driver answered a cuGetProcAddress: its pointer, or our wrapper for it. */
static void wrap_proc(CUresult rc, const char *symbol, void **pfn, int version, cuuint64_t flags)
{
    if (rc != MT_CUDA_SUCCESS || !pfn || !*pfn || !symbol || !mt_heap_g.cfg.device) return;
    if (symbol[0] != 'c' || symbol[1] != 'u') return;
    *pfn = hand_out(slot_for_proc(symbol, version, flags, *pfn), *pfn);
}

CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags)
{
    REAL(S_GETPROC, mt_cu_getproc_fn);
    CUresult rc = real(symbol, pfn, version, flags);
    wrap_proc(rc, symbol, pfn, version, flags);
    return rc;
}

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags,
                             CUdriverProcAddressQueryResult *status)
{
    REAL(S_GETPROC_V2, mt_cu_getproc_v2_fn);
    CUresult rc = real(symbol, pfn, version, flags, status);
    wrap_proc(rc, symbol, pfn, version, flags);
    return rc;
}
