/* driver.c — the driver API's memory calls on a real GPU, for the `gpu` test device.gpu.
 *
 * What it is for: a known pattern of direct driver calls (cuMemAlloc_v2, cuMemAllocAsync,
 * cuMemAllocManaged, cuMemHostAlloc, a VMM handle created, mapped, unmapped, released),
 * all live at once, then freed; it prints the figures the interposer must book
 * ("expect NAME BYTES" lines) for gpu.sh to compare with the store. Built with nvcc on the
 * GPU machine (cuda.h); never on machines without CUDA. What it is not for: the runtime
 * path (runtime.cu) or checking anything itself beyond the driver's answers.
 */
#include <cuda.h>
#include <memtrade/memcat.h>
#include <stdio.h>

#define OK(call)                                                                                   \
    do {                                                                                           \
        CUresult rc_ = (call);                                                                     \
        if (rc_ != CUDA_SUCCESS) {                                                                 \
            const char *s_ = "?";                                                                  \
            cuGetErrorString(rc_, &s_);                                                            \
            fprintf(stderr, "driver.c:%d: %s: %s\n", __LINE__, #call, s_);                         \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    OK(cuInit(0));
    OK(cuDeviceGet(&dev, 0));
    OK(cuDevicePrimaryCtxRetain(&ctx, dev));
    OK(cuCtxSetCurrent(ctx));

    const size_t w_bytes = 64u << 20, a_bytes = 16u << 20, m_bytes = 8u << 20, p_bytes = 4u << 20;
    CUdeviceptr w, a, m, va;
    void *p;
    mt_memcat_set(MT_MEM_WEIGHTS);
    OK(cuMemAlloc(&w, w_bytes));
    mt_memcat_set(MT_MEM_ACTIVATIONS);
    OK(cuMemAllocAsync(&a, a_bytes, 0));
    OK(cuStreamSynchronize(0));
    mt_memcat_set(MT_MEM_DATA);
    OK(cuMemAllocManaged(&m, m_bytes, CU_MEM_ATTACH_GLOBAL));
    OK(cuMemHostAlloc(&p, p_bytes, 0));

    mt_memcat_set(MT_MEM_KV_CACHE);
    CUmemAllocationProp prop = {0};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = (int)dev;
    size_t gran = 0;
    OK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    const size_t v_bytes = 2 * gran;
    CUmemGenericAllocationHandle h;
    OK(cuMemCreate(&h, v_bytes, &prop, 0));
    OK(cuMemAddressReserve(&va, v_bytes, 0, 0, 0));
    OK(cuMemMap(va, v_bytes, 0, h, 0));
    CUmemAccessDesc acc = {0};
    acc.location = prop.location;
    acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    OK(cuMemSetAccess(va, v_bytes, &acc, 1));
    OK(cuMemsetD8(va, 1, v_bytes));
    OK(cuCtxSynchronize());

    printf("expect peak_device_bytes %zu\n", w_bytes + a_bytes + v_bytes);
    printf("expect peak_device_mapped_bytes %zu\n", v_bytes);
    printf("expect peak_managed_bytes %zu\n", m_bytes);
    printf("expect peak_pinned_bytes %zu\n", p_bytes);
    fflush(stdout);

    OK(cuMemFreeAsync(a, 0));
    OK(cuStreamSynchronize(0));
    OK(cuMemUnmap(va, v_bytes));
    OK(cuMemRelease(h));
    OK(cuMemAddressFree(va, v_bytes));
    OK(cuMemFree(w));
    OK(cuMemFree(m));
    OK(cuMemFreeHost(p));
    OK(cuDevicePrimaryCtxRelease(dev));
    return 0;
}
