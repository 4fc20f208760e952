// runtime.cu — the CUDA runtime's allocations on a real GPU, for the `gpu` test device.gpu.
//
// What it is for: cudaMalloc, cudaMallocAsync, cudaMallocManaged and cudaMallocHost through
// libcudart (static, nvcc's default), which reaches the driver through dlopen and
// cuGetProcAddress only: the interposer must still book them. Prints "atleast NAME BYTES"
// lines (the runtime may allocate for itself too) for gpu.sh. What it is not for: exact
// totals (driver.c has those).
#include <cstdio>
#include <cuda_runtime.h>
#include <memtrade/memcat.h>

#define OK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            std::fprintf(stderr, "runtime.cu:%d: %s: %s\n", __LINE__, #call, cudaGetErrorString(e_)); \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main()
{
    const size_t w = 32u << 20, a = 8u << 20, m = 4u << 20, h = 2u << 20;
    void *pw, *pa, *pm, *ph;
    mt_memcat_set(MT_MEM_WEIGHTS);
    OK(cudaMalloc(&pw, w));
    mt_memcat_set(MT_MEM_ACTIVATIONS);
    OK(cudaMallocAsync(&pa, a, 0));
    OK(cudaStreamSynchronize(0));
    mt_memcat_set(MT_MEM_DATA);
    OK(cudaMallocManaged(&pm, m));
    OK(cudaMallocHost(&ph, h));
    std::printf("atleast peak_device_bytes %zu\n", w + a);
    std::printf("atleast peak_managed_bytes %zu\n", m);
    std::printf("atleast peak_pinned_bytes %zu\n", h);
    std::fflush(stdout);
    OK(cudaFreeAsync(pa, 0));
    OK(cudaStreamSynchronize(0));
    OK(cudaFree(pw));
    OK(cudaFree(pm));
    OK(cudaFreeHost(ph));
    return 0;
}
