/* cflash.cu — flash attention on an NVIDIA GPU (see cflash.h).
 * Layout of a thread block: 64 rows (queries, or keys in dk/dv) of 4 consecutive threads
 * each; thread g of a row holds channels 16 i + 4 g + e (e < 4) of the row's vectors in
 * registers, so the 4 threads read one 64-byte stretch of a shared tile row with float4
 * loads (the other rows of the warp read the same stretch: a broadcast) and a dot
 * product ends with two shuffles. Head sizes are padded with zeros to 16, 32, 64 or 128
 * (the kernels' template parameter). The reference is kernels_ref.c's
 * mt_k_flash_attention_*_ref through the CPU engine (tests/transformer/test_cuda.c). */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>

#include "cflash.h"

namespace
{

constexpr int kRows = 64;                /* rows of a block */
constexpr int kLanes = 4;                /* threads of a row */
constexpr int kThreads = kRows * kLanes; /* 256 */
constexpr int kTile = 32;                /* rows of the shared tiles */

struct geom {
    size_t T, C, Ckv, NH, hs, ld, grp, window;
    float scale;
};

geom geom_of(size_t T, size_t C, size_t Ckv, size_t NH, size_t window)
{
    geom g;
    g.T = T, g.C = C, g.Ckv = Ckv, g.NH = NH, g.hs = C / NH, g.ld = C + 2 * Ckv;
    g.grp = NH / (Ckv / g.hs), g.window = window;
    g.scale = 1.0f / sqrtf((float)g.hs);
    return g;
}

__device__ __forceinline__ size_t wstart(size_t t, size_t window)
{
    return window && t >= window ? t + 1 - window : 0;
}

template <bool BF> __device__ __forceinline__ float rd(float x)
{
    return BF ? __bfloat162float(__float2bfloat16_rn(x)) : x;
}

/* Sum over the 4 threads of a row. */
__device__ __forceinline__ float row_sum(float x)
{
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    x += __shfl_xor_sync(0xffffffffu, x, 2);
    return x;
}

/* f(register index, channel) over this thread's channels of a row (HSP padded). */
template <int HSP, typename F> __device__ __forceinline__ void each_channel(int g, F f)
{
#pragma unroll
    for (int i = 0; i < HSP / 16; i++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            f(4 * i + e, (size_t)(16 * i + 4 * g + e));
}

/* A row's channels (this thread's share) from global memory, zero past hs or !ok. */
template <int HSP, bool BF>
__device__ __forceinline__ void load_row(float *r, const float *src, size_t hs, bool ok, int g)
{
    each_channel<HSP>(g, [&](int i, size_t c) { r[i] = ok && c < hs ? rd<BF>(src[c]) : 0.0f; });
}

/* dst[c] = r * mul over this thread's channels below hs. */
template <int HSP>
__device__ __forceinline__ void store_row(float *dst, const float *r, float mul, size_t hs, int g)
{
    each_channel<HSP>(g, [&](int i, size_t c) {
        if (c < hs) dst[c] = r[i] * mul;
    });
}

/* This thread's share of the dot product of r with shared row sh. */
template <int HSP> __device__ __forceinline__ float dot_part(const float *r, const float *sh, int g)
{
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < HSP / 16; i++) {
        float4 k = *reinterpret_cast<const float4 *>(sh + 16 * i + 4 * g);
        s += r[4 * i] * k.x + r[4 * i + 1] * k.y + r[4 * i + 2] * k.z + r[4 * i + 3] * k.w;
    }
    return s;
}

/* r += a * shared row sh (this thread's channels). */
template <int HSP> __device__ __forceinline__ void axpy(float *r, float a, const float *sh, int g)
{
#pragma unroll
    for (int i = 0; i < HSP / 16; i++) {
        float4 k = *reinterpret_cast<const float4 *>(sh + 16 * i + 4 * g);
        r[4 * i] += a * k.x, r[4 * i + 1] += a * k.y;
        r[4 * i + 2] += a * k.z, r[4 * i + 3] += a * k.w;
    }
}

/* kTile rows of hs channels (row stride ld) into sh (kTile x HSP), zero past n rows or hs. */
template <int HSP, bool BF>
__device__ __forceinline__ void load_tile(float *sh, const float *src, size_t ld, size_t n,
                                          size_t hs)
{
    for (int i = threadIdx.x; i < kTile * HSP; i += kThreads) {
        size_t r = i / HSP, c = i % HSP;
        sh[i] = r < n && c < hs ? rd<BF>(src[r * ld + c]) : 0.0f;
    }
}

/* The key/value tile of key/value head kh from key k0 (rows of the sequence at base)
 * into Ks and Vs, between barriers. */
template <int HSP, bool BF>
__device__ __forceinline__ void kv_tile(float *Ks, float *Vs, const float *base, size_t k0,
                                        size_t kh, const geom &G)
{
    size_t n = G.T - k0 < (size_t)kTile ? G.T - k0 : (size_t)kTile;
    const float *k = base + k0 * G.ld + G.C + kh * G.hs;
    __syncthreads();
    load_tile<HSP, BF>(Ks, k, G.ld, n, G.hs);
    load_tile<HSP, BF>(Vs, k + G.Ckv, G.ld, n, G.hs);
    __syncthreads();
}

/* A query-tile thread's place (flash_fwd, flash_dq): its part g of the row, head h, batch b,
 * the tile's first row q0, its row t (valid: t < T), key/value head kh, batch b's rows. */
struct qrow {
    int g;
    size_t h, b, q0, t, kh;
    bool valid;
    const float *base;
};
static __device__ __forceinline__ qrow qrow_of(const float *qkv, const geom &G)
{
    qrow r;
    r.g = threadIdx.x & 3;
    r.h = blockIdx.y, r.b = blockIdx.z, r.q0 = (size_t)blockIdx.x * kRows;
    r.t = r.q0 + (threadIdx.x >> 2), r.kh = r.h / G.grp;
    r.valid = r.t < G.T;
    r.base = qkv + r.b * G.T * G.ld;
    return r;
}

/* Forward: block (query tile, head, batch). */
template <int HSP, bool BF>
__global__ void __launch_bounds__(kThreads)
    flash_fwd(float *out, float *lse, const float *qkv, const geom G)
{
    __shared__ __align__(16) float Ks[kTile * HSP], Vs[kTile * HSP];
    const auto [g, h, b, q0, t, kh, valid, base] = qrow_of(qkv, G);
    const size_t T = G.T, hs = G.hs;
    float q[HSP / 4], o[HSP / 4], s[kTile];
    load_row<HSP, BF>(q, base + t * G.ld + h * hs, hs, valid, g);
#pragma unroll
    for (int i = 0; i < HSP / 4; i++)
        o[i] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    const size_t lo = valid ? wstart(t, G.window) : 0;
    const size_t last = (q0 + kRows < T ? q0 + kRows : T) - 1;
    for (size_t k0 = wstart(q0, G.window); k0 <= last; k0 += kTile) {
        kv_tile<HSP, BF>(Ks, Vs, base, k0, kh, G);
        float mt = -INFINITY;
#pragma unroll
        for (int j = 0; j < kTile; j++) {
            float x = row_sum(dot_part<HSP>(q, Ks + j * HSP, g)) * G.scale;
            size_t kj = k0 + j;
            s[j] = valid && kj <= t && kj >= lo ? x : -INFINITY;
            mt = fmaxf(mt, s[j]);
        }
        if (mt == -INFINITY) continue; /* no key of this tile is attended by this row */
        float mn = fmaxf(m, mt), alpha = expf(m - mn), ps = 0.0f;
#pragma unroll
        for (int j = 0; j < kTile; j++) {
            s[j] = s[j] == -INFINITY ? 0.0f : expf(s[j] - mn);
            ps += s[j];
        }
        l = l * alpha + ps;
        m = mn;
#pragma unroll
        for (int i = 0; i < HSP / 4; i++)
            o[i] *= alpha;
#pragma unroll
        for (int j = 0; j < kTile; j++)
            if (s[j] != 0.0f) axpy<HSP>(o, rd<BF>(s[j]), Vs + j * HSP, g);
    }
    if (!valid) return;
    store_row<HSP>(out + (b * T + t) * G.C + h * hs, o, 1.0f / l, hs, g);
    if (!g) lse[(b * G.NH + h) * T + t] = m + logf(l);
}

/* Backward, dq: block (query tile, head, batch); q's part of dqkv. */
template <int HSP, bool BF>
__global__ void __launch_bounds__(kThreads)
    flash_dq(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
             const geom G)
{
    __shared__ __align__(16) float Ks[kTile * HSP], Vs[kTile * HSP];
    const auto [g, h, b, q0, t, kh, valid, base] = qrow_of(qkv, G);
    const size_t T = G.T, hs = G.hs;
    float q[HSP / 4], d[HSP / 4], dq[HSP / 4];
    load_row<HSP, false>(d, dout + (b * T + t) * G.C + h * hs, hs, valid, g);
    load_row<HSP, false>(dq, out + (b * T + t) * G.C + h * hs, hs, valid, g);
    float D = 0.0f;
#pragma unroll
    for (int i = 0; i < HSP / 4; i++) {
        D += d[i] * dq[i];
        d[i] = rd<BF>(d[i]);
        dq[i] = 0.0f;
    }
    D = row_sum(D);
    load_row<HSP, BF>(q, base + t * G.ld + h * hs, hs, valid, g);
    const float L = valid ? lse[(b * G.NH + h) * T + t] : 0.0f;
    const size_t lo = valid ? wstart(t, G.window) : 0;
    const size_t last = (q0 + kRows < T ? q0 + kRows : T) - 1;
    for (size_t k0 = wstart(q0, G.window); k0 <= last; k0 += kTile) {
        kv_tile<HSP, BF>(Ks, Vs, base, k0, kh, G);
#pragma unroll 4
        for (int j = 0; j < kTile; j++) {
            float x = row_sum(dot_part<HSP>(q, Ks + j * HSP, g));
            float dp = row_sum(dot_part<HSP>(d, Vs + j * HSP, g));
            size_t kj = k0 + j;
            if (!(valid && kj <= t && kj >= lo)) continue;
            float p = expf(x * G.scale - L);
            axpy<HSP>(dq, rd<BF>(p * (dp - D)), Ks + j * HSP, g);
        }
    }
    if (valid) store_row<HSP>(dqkv + (b * T + t) * G.ld + h * hs, dq, G.scale, hs, g);
}

/* Backward, dk and dv: block (key tile, key/value head, batch), over the group's query
 * heads in order; k's and v's parts of dqkv. */
template <int HSP, bool BF>
__global__ void __launch_bounds__(kThreads)
    flash_dkv(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
              const geom G)
{
    __shared__ __align__(16) float Qs[kTile * HSP], Ds_[kTile * HSP];
    __shared__ float Ls[kTile], Dd[kTile];
    const int g = threadIdx.x & 3;
    const size_t kh = blockIdx.y, b = blockIdx.z, k0 = (size_t)blockIdx.x * kRows;
    const size_t j = k0 + (threadIdx.x >> 2), T = G.T, hs = G.hs;
    const bool valid = j < T;
    const float *base = qkv + b * T * G.ld;
    float k[HSP / 4], v[HSP / 4], dk[HSP / 4], dv[HSP / 4];
    load_row<HSP, BF>(k, base + j * G.ld + G.C + kh * hs, hs, valid, g);
    load_row<HSP, BF>(v, base + j * G.ld + G.C + G.Ckv + kh * hs, hs, valid, g);
#pragma unroll
    for (int i = 0; i < HSP / 4; i++)
        dk[i] = dv[i] = 0.0f;
    const size_t klast = (k0 + kRows < T ? k0 + kRows : T) - 1;
    const size_t ihi = G.window && klast + G.window - 1 < T - 1 ? klast + G.window - 1 : T - 1;
    for (size_t r = 0; r < G.grp; r++) {
        const size_t h = kh * G.grp + r;
        for (size_t i0 = k0; i0 <= ihi; i0 += kTile) {
            size_t n = T - i0 < (size_t)kTile ? T - i0 : (size_t)kTile;
            __syncthreads();
            load_tile<HSP, BF>(Qs, base + i0 * G.ld + h * hs, G.ld, n, hs);
            load_tile<HSP, BF>(Ds_, dout + (b * T + i0) * G.C + h * hs, G.C, n, hs);
            { /* D = rowsum(dout * out) of the tile's rows: 8 threads a row */
                size_t row = threadIdx.x >> 3, lane = threadIdx.x & 7, qi = i0 + row;
                float D = 0.0f;
                if (row < n) {
                    const float *dd = dout + (b * T + qi) * G.C + h * hs;
                    const float *oo = out + (b * T + qi) * G.C + h * hs;
                    for (size_t c = lane; c < hs; c += 8)
                        D += dd[c] * oo[c];
                }
                D += __shfl_xor_sync(0xffffffffu, D, 1);
                D += __shfl_xor_sync(0xffffffffu, D, 2);
                D += __shfl_xor_sync(0xffffffffu, D, 4);
                if (!lane) {
                    Dd[row] = D;
                    Ls[row] = row < n ? lse[(b * G.NH + h) * T + qi] : 0.0f;
                }
            }
            __syncthreads();
#pragma unroll 4
            for (int i = 0; i < kTile; i++) {
                float x = row_sum(dot_part<HSP>(k, Qs + i * HSP, g));
                float dp = row_sum(dot_part<HSP>(v, Ds_ + i * HSP, g));
                size_t qi = i0 + i;
                if (!(valid && qi < T && qi >= j && wstart(qi, G.window) <= j)) continue;
                float p = expf(x * G.scale - Ls[i]);
                axpy<HSP>(dv, rd<BF>(p), Ds_ + i * HSP, g);
                axpy<HSP>(dk, rd<BF>(p * (dp - Dd[i])), Qs + i * HSP, g);
            }
        }
    }
    if (!valid) return;
    store_row<HSP>(dqkv + (b * T + j) * G.ld + G.C + kh * hs, dk, G.scale, hs, g);
    store_row<HSP>(dqkv + (b * T + j) * G.ld + G.C + G.Ckv + kh * hs, dv, 1.0f, hs, g);
}

int padded(size_t hs)
{
    return hs <= 16 ? 16 : hs <= 32 ? 32 : hs <= 64 ? 64 : 128;
}

dim3 grid_of(size_t T, size_t heads, size_t B)
{
    return dim3((unsigned)((T + kRows - 1) / kRows), (unsigned)heads, (unsigned)B);
}

template <bool BF>
void fwd(float *out, float *lse, const float *qkv, size_t B, size_t T, size_t C, size_t Ckv,
         size_t NH, size_t window)
{
    geom G = geom_of(T, C, Ckv, NH, window);
    if (G.hs > MT_CU_FLASH_MAX_HS) return; /* the header's precondition */
    dim3 grid = grid_of(T, NH, B);
    switch (padded(G.hs)) {
    case 16:
        flash_fwd<16, BF><<<grid, kThreads>>>(out, lse, qkv, G);
        break;
    case 32:
        flash_fwd<32, BF><<<grid, kThreads>>>(out, lse, qkv, G);
        break;
    case 64:
        flash_fwd<64, BF><<<grid, kThreads>>>(out, lse, qkv, G);
        break;
    default:
        flash_fwd<128, BF><<<grid, kThreads>>>(out, lse, qkv, G);
        break;
    }
}

template <int HSP, bool BF>
void bwd_hs(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
            size_t B, const geom &G)
{
    flash_dq<HSP, BF><<<grid_of(G.T, G.NH, B), kThreads>>>(dqkv, dout, qkv, out, lse, G);
    flash_dkv<HSP, BF><<<grid_of(G.T, G.Ckv / G.hs, B), kThreads>>>(dqkv, dout, qkv, out, lse, G);
}

template <bool BF>
void bwd(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
         size_t B, size_t T, size_t C, size_t Ckv, size_t NH, size_t window)
{
    geom G = geom_of(T, C, Ckv, NH, window);
    if (G.hs > MT_CU_FLASH_MAX_HS) return; /* the header's precondition */
    switch (padded(G.hs)) {
    case 16:
        bwd_hs<16, BF>(dqkv, dout, qkv, out, lse, B, G);
        break;
    case 32:
        bwd_hs<32, BF>(dqkv, dout, qkv, out, lse, B, G);
        break;
    case 64:
        bwd_hs<64, BF>(dqkv, dout, qkv, out, lse, B, G);
        break;
    default:
        bwd_hs<128, BF>(dqkv, dout, qkv, out, lse, B, G);
        break;
    }
}

} // namespace

void mt_cu_flash_fwd(float *out, float *lse, const float *qkv, size_t B, size_t T, size_t C,
                     size_t Ckv, size_t NH, size_t window)
{
    fwd<false>(out, lse, qkv, B, T, C, Ckv, NH, window);
}

void mt_cu_flash_fwd_bf16(float *out, float *lse, const float *qkv, size_t B, size_t T, size_t C,
                          size_t Ckv, size_t NH, size_t window)
{
    fwd<true>(out, lse, qkv, B, T, C, Ckv, NH, window);
}

void mt_cu_flash_bwd(float *dqkv, const float *dout, const float *qkv, const float *out,
                     const float *lse, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                     size_t window)
{
    bwd<false>(dqkv, dout, qkv, out, lse, B, T, C, Ckv, NH, window);
}

void mt_cu_flash_bwd_bf16(float *dqkv, const float *dout, const float *qkv, const float *out,
                          const float *lse, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                          size_t window)
{
    bwd<true>(dqkv, dout, qkv, out, lse, B, T, C, Ckv, NH, window);
}
