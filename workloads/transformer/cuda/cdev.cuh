/* cdev.cuh — device functions that more than one .cu file of the CUDA backend computes and
 * that must give the same bits everywhere: the GELU of ckernels.cu's kernel and of the
 * decode GEMVs' fused epilogue (cquant.cu).
 * What it is not for: host code, or kernels (each .cu file keeps its own).
 */
#ifndef MT_TRANSFORMER_CUDA_CDEV_CUH
#define MT_TRANSFORMER_CUDA_CDEV_CUH

/* GELU, tanh form (kernels.h mt_k_gelu_fwd). */
static __device__ __forceinline__ float mt_cu_gelu(float x)
{
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

#endif
