/* cdev.cuh — device functions that more than one .cu file of the CUDA backend computes and
 * that must give the same bits everywhere: the GELU of ckernels.cu's kernel and of the
 * decode GEMVs' fused epilogue (cquant.cu), and decoding's norm (ckernels.cu's decode
 * table and the GEMVs' fused prologue).
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

/* Sum over the warp, every lane getting it (butterfly shuffles: a fixed order). */
static __device__ __forceinline__ float mt_cu_warp_allsum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Decoding's norm statistics of row x (C floats): mean (0 with rms) and 1 / sqrt(variance
 * + 1e-5), computed by each calling warp on its own in one fixed order (lane l takes
 * columns l, l + 32, ...), so every warp of any kernel and block size gets the same bits. */
static __device__ __forceinline__ void mt_cu_norm_stats(const float *x, int C, int rms, float *mean,
                                                        float *rstd)
{
    int lane = (int)(threadIdx.x & 31);
    float s = 0.0f, v = 0.0f;
    if (!rms) {
        for (int c = lane; c < C; c += 32)
            s += x[c];
        s = mt_cu_warp_allsum(s) / (float)C;
    }
    for (int c = lane; c < C; c += 32)
        v += (x[c] - s) * (x[c] - s);
    *mean = s;
    *rstd = 1.0f / sqrtf(mt_cu_warp_allsum(v) / (float)C + 1e-5f);
}

/* Column c of the normalized row: (x - mean) rstd w + b (b 0 without a bias). */
static __device__ __forceinline__ float mt_cu_norm_at(float x, float mean, float rstd, float w,
                                                      float b)
{
    return (x - mean) * rstd * w + b;
}

#endif
