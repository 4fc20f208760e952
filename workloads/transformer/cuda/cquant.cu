/* cquant.cu — the decode GEMV kernels of cquant.h: one warp per output row reads its row
 * of packed codes (16-byte words where the row's shape allows, else 4-byte words) or bf16
 * weights (16-byte words) once, decodes them in
 * registers, reduces with shuffles and finishes the row in an epilogue: the bias, and the
 * block's GELU or residual add when the caller fuses them (one launch per linear). Upload and
 * free of packed tensors live in cgpt.c (category tagging is C). Scalar references: mt_qgemm with
 * MT_QIMPL_SCALAR (workloads/quantize) and the test's bf16 loop
 * (tests/transformer/test_cuda_quant.c).
 */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "cdev.cuh"
#include "cquant.h"

enum {
    WARPS = 8, /* rows in flight per block at most (256 threads) */
    LOADS = 4  /* 16-byte loads a lane issues before it uses the first */
};

/* y[row] from the row's sum acc: + bias, GELU, residual add, as e says (cquant.h). */
static __device__ __forceinline__ void epilogue(float *y, unsigned row, float acc, mt_cu_epi e)
{
    float v = e.bias ? acc + e.bias[row] : acc;
    if (e.gelu) v = mt_cu_gelu(v);
    y[row] = e.res ? e.res[row] + v : v;
}

static __device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

/* Columns j..j+3 of x, zero past k (padding codes meet zero activations, as on the CPU).
 * x is global or shared memory (the fused norm's copy): generic loads. */
static __device__ __forceinline__ void x4(const float *x, unsigned j, unsigned k, float v[4])
{
    for (int t = 0; t < 4; t++)
        v[t] = j + t < k ? x[j + t] : 0.0f;
}

enum { NORM_SMEM = 48 * 1024 }; /* the fused norm's row in shared memory: k floats */

/* The fused norm (e.norm_w set): x's k columns copied into shared xs by the whole block
 * (coalesced, LOADS loads in flight per thread), the statistics from that copy (the same
 * order and bits as from x: cdev.cuh), then normalized in place (every thread calls this,
 * before any returns); returns xs, or x unchanged. */
static __device__ __forceinline__ const float *norm_in(float *xs, const float *x, unsigned k,
                                                       const mt_cu_epi &e)
{
    if (!e.norm_w) return x;
    for (unsigned c0 = threadIdx.x; c0 < k; c0 += LOADS * blockDim.x) {
        float v[LOADS];
#pragma unroll
        for (int u = 0; u < LOADS; u++) {
            unsigned c = c0 + u * blockDim.x;
            v[u] = c < k ? x[c] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < LOADS; u++)
            if (c0 + u * blockDim.x < k) xs[c0 + u * blockDim.x] = v[u];
    }
    __syncthreads();
    float s, r;
    mt_cu_norm_stats(xs, (int)k, e.rms, &s, &r);
    __syncthreads(); /* every warp has its statistics before xs is overwritten */
#pragma unroll 4
    for (unsigned c = threadIdx.x; c < k; c += blockDim.x)
        xs[c] =
            mt_cu_norm_at(xs[c], s, r, __ldg(e.norm_w + c), e.norm_b ? __ldg(e.norm_b + c) : 0.0f);
    __syncthreads();
    return xs;
}

/* The contribution of 4 codes at columns j.. (one quantization unit u of the row). */
static __device__ __forceinline__ float part(unsigned c0, unsigned c1, unsigned c2, unsigned c3,
                                             const float *x, unsigned j, unsigned k,
                                             const float *sc, const float *of, unsigned unit)
{
    if (j >= k) return 0.0f;
    float v[4];
    x4(x, j, k, v);
    float dot = (float)c0 * v[0] + (float)c1 * v[1] + (float)c2 * v[2] + (float)c3 * v[3];
    unsigned u = j / unit;
    return __ldg(sc + u) * dot + __ldg(of + u) * (v[0] + v[1] + v[2] + v[3]);
}

/* BITS 8: byte b of a row is column b. BITS 4: in a block of 64 codes (32 bytes), byte i
 * holds column i (low nibble) and i + 32 (high nibble). */
template <int BITS>
__global__ void qgemv_kernel(float *y, const float *x, mt_cu_epi e, const uint8_t *codes,
                             const float *scale, const float *offset, unsigned n, unsigned k,
                             unsigned row_bytes, unsigned unit, unsigned stride)
{
    extern __shared__ __align__(16) float xs[];
    x = norm_in(xs, x, k, e);
    unsigned row = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x & 31;
    if (row >= n) return;
    const uint32_t *r = (const uint32_t *)(codes + (size_t)row * row_bytes);
    const float *sc = scale + (size_t)row * stride, *of = offset + (size_t)row * stride;
    float acc = 0.0f;
    for (unsigned w = lane; w < row_bytes / 4; w += 32) {
        uint32_t q = __ldg(r + w);
        unsigned b = w * 4;
        if (BITS == 8) {
            acc += part(q & 255u, q >> 8 & 255u, q >> 16 & 255u, q >> 24, x, b, k, sc, of, unit);
        } else {
            unsigned j = b / 32 * 64 + b % 32;
            acc += part(q & 15u, q >> 8 & 15u, q >> 16 & 15u, q >> 24 & 15u, x, j, k, sc, of, unit);
            acc += part(q >> 4 & 15u, q >> 12 & 15u, q >> 20 & 15u, q >> 28, x, j + 32, k, sc, of,
                        unit);
        }
    }
    acc = warp_sum(acc);
    if (lane == 0) epilogue(y, row, acc, e);
}

/* q[u] = r[w0 + 32 u] for the words below nw: the LOADS loads a lane has in flight. */
static __device__ __forceinline__ void load_words(uint4 q[LOADS], const uint4 *r, unsigned w0,
                                                  unsigned nw)
{
#pragma unroll
    for (int u = 0; u < LOADS; u++)
        if (w0 + 32 * u < nw) q[u] = __ldg(r + w0 + 32 * u);
}

/* Sum of c_t * x_t and of x_t over 16 columns: codes t = 0..15 are nibble (BITS 4: low 0 or
 * high 1) or byte t of the 16-byte word q, x16 the columns' activations. */
template <int BITS>
static __device__ __forceinline__ void dot16(const uint4 &q, int high, const float *x16, float *dot,
                                             float *sx)
{
    const uint32_t wd[4] = {q.x, q.y, q.z, q.w};
    float d = 0.0f, s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float4 v = ((const float4 *)x16)[i];
        uint32_t c = BITS == 8 ? wd[i] : (high ? wd[i] >> 4 : wd[i]);
        unsigned m = BITS == 8 ? 255u : 15u;
        d += (float)(c & m) * v.x + (float)(c >> 8 & m) * v.y + (float)(c >> 16 & m) * v.z +
             (float)(c >> 24 & m) * v.w;
        s += v.x + v.y + v.z + v.w;
    }
    *dot = d;
    *sx = s;
}

/* The same product reading 16 bytes of codes per lane and step (16 int8 or 32 int4 codes)
 * and the activations as float4: for rows of whole 16-byte words whose codes are all real
 * columns (row_bytes * 8 / bits == k: no padding columns, which would read x past k) and
 * units of 16 columns or more (mt_cu_qgemv checks). Each warp takes rows blockIdx.x * warps
 * + warp, then a grid's worth further on (the fused norm once per block); a lane issues
 * LOADS words of its row before it uses the first, and adds them in the order of one word
 * at a time (lane l: words l, l + 32, ...), so the bits do not depend on LOADS or the grid. */
template <int BITS>
__global__ void qgemv16_kernel(float *y, const float *x, mt_cu_epi e, const uint8_t *codes,
                               const float *scale, const float *offset, unsigned n,
                               unsigned row_bytes, unsigned unit, unsigned stride)
{
    extern __shared__ __align__(16) float xs[];
    x = norm_in(xs, x, row_bytes * 8 / BITS, e); /* no padding columns: k codes a row */
    unsigned warps = blockDim.x / 32, lane = threadIdx.x & 31, nw = row_bytes / 16;
    for (unsigned row = blockIdx.x * warps + threadIdx.x / 32; row < n; row += gridDim.x * warps) {
        const uint4 *r = (const uint4 *)(codes + (size_t)row * row_bytes);
        const float *sc = scale + (size_t)row * stride, *of = offset + (size_t)row * stride;
        float acc = 0.0f, dot, sx;
        for (unsigned w0 = lane; w0 < nw; w0 += 32 * LOADS) {
            uint4 q[LOADS];
            load_words(q, r, w0, nw);
#pragma unroll
            for (int u = 0; u < LOADS; u++) {
                unsigned b = (w0 + 32 * u) * 16;
                if (w0 + 32 * u >= nw) break;
                if (BITS == 8) {
                    dot16<8>(q[u], 0, x + b, &dot, &sx);
                    acc += __ldg(sc + b / unit) * dot + __ldg(of + b / unit) * sx;
                } else { /* bytes b.. of a 32-byte block: columns j.. (low), j + 32.. (high) */
                    unsigned j = b / 32 * 64 + b % 32;
                    dot16<4>(q[u], 0, x + j, &dot, &sx);
                    acc += __ldg(sc + j / unit) * dot + __ldg(of + j / unit) * sx;
                    dot16<4>(q[u], 1, x + j + 32, &dot, &sx);
                    acc += __ldg(sc + (j + 32) / unit) * dot + __ldg(of + (j + 32) / unit) * sx;
                }
            }
        }
        acc = warp_sum(acc);
        if (lane == 0) epilogue(y, row, acc, e);
    }
}

/* The 16-byte kernels' launch for n rows: 8 warps a block, fewer where that leaves less than
 * two blocks per multiprocessor (the 768-row products of GPT-2 small: 2 warps, 384 blocks),
 * and no more blocks than fill half of every multiprocessor's threads (the rows loop over
 * the grid: GPT-2's LM head takes 528 blocks of 8 warps, not 6283). */
static void wide_launch(size_t n, unsigned *grid, unsigned *threads)
{
    int dev = 0, sms = 132;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || sms < 1)
        sms = 132;
    size_t warps = WARPS;
    while (warps > 1 && (n + warps - 1) / warps < 2 * (size_t)sms)
        warps /= 2;
    size_t blocks = (n + warps - 1) / warps, per_sm = 1024 / (warps * 32);
    size_t cap = (size_t)sms * (per_sm < 32 ? per_sm : 32);
    *grid = (unsigned)(blocks < cap ? blocks : cap);
    *threads = (unsigned)(warps * 32);
}

extern "C" void mt_cu_qgemv(float *y, const float *x, const float *bias, const struct mt_cu_qmat *q)
{
    mt_cu_epi e = {bias, NULL, 0, NULL, NULL, 0};
    mt_cu_qgemv_epi(y, x, &e, q);
}

extern "C" void mt_cu_qgemv_epi(float *y, const float *x, const struct mt_cu_epi *ep,
                                const struct mt_cu_qmat *q)
{
    mt_cu_epi e = *ep;
    size_t smem = e.norm_w ? q->k * sizeof(float) : 0;
    unsigned grid = (unsigned)((q->n + WARPS - 1) / WARPS);
    int wide = q->row_bytes % 16 == 0 && (uintptr_t)q->codes % 16 == 0 && (uintptr_t)x % 16 == 0 &&
               q->row_bytes * 8 / q->bits == q->k && q->unit_len % 16 == 0;
    unsigned wgrid, wthreads;
    wide_launch(q->n, &wgrid, &wthreads);
    if (wide && q->bits == 8)
        qgemv16_kernel<8><<<wgrid, wthreads, smem>>>(
            y, x, e, q->codes, q->scale, q->offset, (unsigned)q->n, (unsigned)q->row_bytes,
            (unsigned)q->unit_len, (unsigned)q->meta_row_stride);
    else if (wide)
        qgemv16_kernel<4><<<wgrid, wthreads, smem>>>(
            y, x, e, q->codes, q->scale, q->offset, (unsigned)q->n, (unsigned)q->row_bytes,
            (unsigned)q->unit_len, (unsigned)q->meta_row_stride);
    else if (q->bits == 8)
        qgemv_kernel<8><<<grid, WARPS * 32, smem>>>(
            y, x, e, q->codes, q->scale, q->offset, (unsigned)q->n, (unsigned)q->k,
            (unsigned)q->row_bytes, (unsigned)q->unit_len, (unsigned)q->meta_row_stride);
    else
        qgemv_kernel<4><<<grid, WARPS * 32, smem>>>(
            y, x, e, q->codes, q->scale, q->offset, (unsigned)q->n, (unsigned)q->k,
            (unsigned)q->row_bytes, (unsigned)q->unit_len, (unsigned)q->meta_row_stride);
}

/* bf16: each lane reads 16 bytes (8 weights) per step, LOADS steps before it uses the
 * first; rows and order as qgemv16_kernel's (one step at a time, lane l: l, l + 32, ...). */
__global__ void gemv_bf16_kernel(float *y, const float *x, mt_cu_epi e, const uint4 *w, unsigned n,
                                 unsigned k)
{
    extern __shared__ __align__(16) float xs[];
    x = norm_in(xs, x, k, e);
    unsigned warps = blockDim.x / 32, lane = threadIdx.x & 31, nw = k / 8;
    for (unsigned row = blockIdx.x * warps + threadIdx.x / 32; row < n; row += gridDim.x * warps) {
        const uint4 *r = w + (size_t)row * nw;
        float acc = 0.0f;
        for (unsigned i0 = lane; i0 < nw; i0 += 32 * LOADS) {
            uint4 v[LOADS];
            load_words(v, r, i0, nw);
#pragma unroll
            for (int u = 0; u < LOADS; u++) {
                unsigned i = i0 + 32 * u;
                if (i >= nw) break;
                const __nv_bfloat162 *h = (const __nv_bfloat162 *)&v[u];
                const float4 *xv = (const float4 *)(x + i * 8);
                float4 a = xv[0], b = xv[1];
                float2 f0 = __bfloat1622float2(h[0]), f1 = __bfloat1622float2(h[1]);
                float2 f2 = __bfloat1622float2(h[2]), f3 = __bfloat1622float2(h[3]);
                acc += f0.x * a.x + f0.y * a.y + f1.x * a.z + f1.y * a.w + f2.x * b.x + f2.y * b.y +
                       f3.x * b.z + f3.y * b.w;
            }
        }
        acc = warp_sum(acc);
        if (lane == 0) epilogue(y, row, acc, e);
    }
}

extern "C" int mt_cu_epi_norm_fits(size_t k)
{
    return k * sizeof(float) <= NORM_SMEM;
}

extern "C" int mt_cu_gemv_bf16_ok(const void *w, const float *x, size_t k)
{
    return (uintptr_t)w % 16 == 0 && (uintptr_t)x % 16 == 0 && k % 8 == 0;
}

extern "C" void mt_cu_gemv_bf16(float *y, const float *x, const float *bias, const void *w,
                                size_t n, size_t k)
{
    mt_cu_epi e = {bias, NULL, 0, NULL, NULL, 0};
    mt_cu_gemv_bf16_epi(y, x, &e, w, n, k);
}

extern "C" void mt_cu_gemv_bf16_epi(float *y, const float *x, const struct mt_cu_epi *e,
                                    const void *w, size_t n, size_t k)
{
    unsigned grid, threads;
    wide_launch(n, &grid, &threads);
    size_t smem = e->norm_w ? k * sizeof(float) : 0;
    gemv_bf16_kernel<<<grid, threads, smem>>>(y, x, *e, (const uint4 *)w, (unsigned)n, (unsigned)k);
}
