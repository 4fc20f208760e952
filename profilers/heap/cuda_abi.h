/* cuda_abi.h — the few CUDA driver API types and prototypes the device-memory interposer
 * and the fake driver of the tests need, declared here because no CUDA header exists on
 * the machines that build memtrade without a GPU.
 *
 * What it is for: the exact ABI of the memory calls of libcuda.so.1 (CUDA 12 and 13,
 * 64-bit): CUdeviceptr and CUmemGenericAllocationHandle are 64-bit integers, streams and
 * pools opaque pointers, CUmemAllocationProp only passed by pointer. What it is not for:
 * anything beyond the memory calls and cuGetProcAddress (include <cuda.h> for that).
 */
#ifndef MT_CUDA_ABI_H
#define MT_CUDA_ABI_H

#include <stdint.h>
#include <stddef.h>

typedef int CUresult; /* an enum in cuda.h: int-sized */
typedef unsigned long long CUdeviceptr; /* CUdeviceptr_v2 */
typedef unsigned long long CUmemGenericAllocationHandle;
typedef struct CUstream_st *CUstream;
typedef struct CUmemPoolHandle_st *CUmemoryPool;
typedef struct CUmemAllocationProp_st CUmemAllocationProp; /* only passed by pointer */
typedef uint64_t cuuint64_t;
typedef int CUdriverProcAddressQueryResult; /* an enum in cuda.h: int-sized */

enum {
    MT_CUDA_SUCCESS = 0,
    MT_CUDA_ERROR_INVALID_VALUE = 1,
    MT_CUDA_ERROR_OUT_OF_MEMORY = 2,
    MT_CUDA_ERROR_NOT_INITIALIZED = 3,
    MT_CUDA_ERROR_NOT_FOUND = 500,
};
/* cuGetProcAddress flags (CUdriverProcAddress_flags) and symbolStatus values. */
enum {
    MT_CU_GET_PROC_ADDRESS_DEFAULT = 0,
    MT_CU_GET_PROC_ADDRESS_LEGACY_STREAM = 1 << 0,
    MT_CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM = 1 << 1,
};
enum {
    MT_CU_GET_PROC_ADDRESS_SUCCESS = 0,
    MT_CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND = 1,
    MT_CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT = 2,
};

/* The signatures, as function types (the interposer and the fake both declare them). */
typedef CUresult mt_cu_alloc_fn(CUdeviceptr *dptr, size_t bytesize);
typedef CUresult mt_cu_alloc_pitch_fn(CUdeviceptr *dptr, size_t *pitch, size_t width_bytes,
                                      size_t height, unsigned int element_bytes);
typedef CUresult mt_cu_alloc_async_fn(CUdeviceptr *dptr, size_t bytesize, CUstream stream);
typedef CUresult mt_cu_alloc_pool_fn(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                     CUstream stream);
typedef CUresult mt_cu_alloc_managed_fn(CUdeviceptr *dptr, size_t bytesize, unsigned int flags);
typedef CUresult mt_cu_free_fn(CUdeviceptr dptr);
typedef CUresult mt_cu_free_async_fn(CUdeviceptr dptr, CUstream stream);
typedef CUresult mt_cu_host_alloc_fn(void **pp, size_t bytesize, unsigned int flags);
typedef CUresult mt_cu_alloc_host_fn(void **pp, size_t bytesize);
typedef CUresult mt_cu_free_host_fn(void *p);
typedef CUresult mt_cu_create_fn(CUmemGenericAllocationHandle *handle, size_t size,
                                 const CUmemAllocationProp *prop, unsigned long long flags);
typedef CUresult mt_cu_release_fn(CUmemGenericAllocationHandle handle);
typedef CUresult mt_cu_map_fn(CUdeviceptr ptr, size_t size, size_t offset,
                              CUmemGenericAllocationHandle handle, unsigned long long flags);
typedef CUresult mt_cu_unmap_fn(CUdeviceptr ptr, size_t size);
/* cuGetProcAddress (CUDA 11.3-11.8 ABI, still exported) and cuGetProcAddress_v2 (12.0+). */
typedef CUresult mt_cu_getproc_fn(const char *symbol, void **pfn, int cuda_version,
                                  cuuint64_t flags);
typedef CUresult mt_cu_getproc_v2_fn(const char *symbol, void **pfn, int cuda_version,
                                     cuuint64_t flags, CUdriverProcAddressQueryResult *status);

#endif
