/* ckernels.cu — the reference transformer's kernels on an NVIDIA GPU (see ckernels.h).
 * One thread block per row for the row-wise kernels (norms, attention rows,
 * cross-entropy), grid-stride loops for the element-wise ones; parameter gradients and
 * column sums reduce a chunk of rows per thread and add it with one atomic. The scalar
 * references these are tested against are kernels.h's mt_k_<op>_ref, through the CPU
 * engine (tests/transformer/test_cuda.c). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cdev.cuh"
#include "cflash.h"
#include "ckernels.h"

namespace {

constexpr int kThreads = 256;
constexpr float kGeluScale = 0.7978845608028654f; /* sqrt(2 / pi) */

unsigned blocks_for(size_t n, int threads = kThreads)
{
    size_t b = (n + (size_t)threads - 1) / (size_t)threads;
    return (unsigned)(b < 65535u * 16u ? (b ? b : 1) : 65535u * 16u);
}

template <typename T> __device__ T warp_sum(T v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum (max = 0) or maximum (max = 1) over the block; every thread gets the result. */
template <typename T> __device__ T block_reduce(T v, int max)
{
    __shared__ T sh[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = max ? (T)warp_max((float)v) : warp_sum(v);
    __syncthreads(); /* sh may still be read by an earlier call */
    if (lane == 0) sh[w] = v;
    __syncthreads();
    if (w == 0) {
        T x = lane < nw ? sh[lane] : (max ? (T)-INFINITY : (T)0);
        x = max ? (T)warp_max((float)x) : warp_sum(x);
        if (lane == 0) sh[0] = x;
    }
    __syncthreads();
    return sh[0];
}

/* ------------------------------------------------------------------ norms */

/* LayerNorm (rms = 0) or RMSNorm (rms = 1, b unused) of one row per block. */
__global__ void norm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w,
                         const float *b, int C, int rms)
{
    const float *x = inp + (size_t)blockIdx.x * C;
    float s = 0.0f;
    if (!rms) {
        for (int c = threadIdx.x; c < C; c += blockDim.x)
            s += x[c];
        s = block_reduce(s, 0) / (float)C;
    }
    float v = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        v += (x[c] - s) * (x[c] - s);
    float r = 1.0f / sqrtf(block_reduce(v, 0) / (float)C + 1e-5f);
    float *o = out + (size_t)blockIdx.x * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        o[c] = (x[c] - s) * r * w[c] + (b ? b[c] : 0.0f);
    if (threadIdx.x == 0) {
        if (mean) mean[blockIdx.x] = s;
        if (rstd) rstd[blockIdx.x] = r;
    }
}

/* dinp += of one row per block (mean NULL: RMSNorm). */
__global__ void norm_bwd_inp(float *dinp, const float *dout, const float *inp, const float *w,
                             const float *mean, const float *rstd, int C)
{
    size_t row = blockIdx.x;
    const float *d = dout + row * C, *x = inp + row * C;
    float m = mean ? mean[row] : 0.0f, r = rstd[row], dm = 0.0f, dnm = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float dn = w[c] * d[c];
        dm += dn;
        dnm += dn * (x[c] - m) * r;
    }
    dm = mean ? block_reduce(dm, 0) / (float)C : 0.0f;
    dnm = block_reduce(dnm, 0) / (float)C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float norm = (x[c] - m) * r;
        dinp[row * C + c] += (w[c] * d[c] - dm - norm * dnm) * r;
    }
}

constexpr int kRowChunk = 64;

/* dw[c] += sum_rows dout * norm, db[c] += sum_rows dout (db NULL: RMSNorm) over a chunk of
 * rows per thread. */
__global__ void norm_bwd_params(float *dw, float *db, const float *dout, const float *inp,
                                const float *mean, const float *rstd, size_t N, int C)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    size_t r0 = (size_t)blockIdx.y * kRowChunk, r1 = r0 + kRowChunk < N ? r0 + kRowChunk : N;
    float aw = 0.0f, ab = 0.0f;
    for (size_t r = r0; r < r1; r++) {
        float d = dout[r * C + c];
        aw += d * (inp[r * C + c] - (mean ? mean[r] : 0.0f)) * rstd[r];
        ab += d;
    }
    atomicAdd(dw + c, aw);
    if (db) atomicAdd(db + c, ab);
}

__global__ void colsum(float *dst, const float *src, size_t N, int OC)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= OC) return;
    size_t r0 = (size_t)blockIdx.y * kRowChunk, r1 = r0 + kRowChunk < N ? r0 + kRowChunk : N;
    float a = 0.0f;
    for (size_t r = r0; r < r1; r++)
        a += src[r * OC + c];
    atomicAdd(dst + c, a);
}

dim3 chunk_grid(size_t N, size_t C)
{
    return dim3((unsigned)((C + kThreads - 1) / kThreads),
                (unsigned)((N + kRowChunk - 1) / kRowChunk));
}

/* ------------------------------------------------------------------ RoPE */

__global__ void rope(float *qkv, size_t B, size_t T, size_t pos0, size_t ld, size_t heads,
                     size_t hs, double theta, double sign)
{
    size_t half = hs / 2, n = B * T * heads * half;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n;
         e += (size_t)gridDim.x * blockDim.x) {
        size_t i = e % half, h = e / half % heads, bt = e / half / heads;
        double a = (double)(pos0 + bt % T) * pow(theta, -2.0 * (double)i / (double)hs);
        float c = (float)cos(a), s = (float)(sign * sin(a));
        float *x = qkv + bt * ld + h * hs;
        float x0 = x[i], x1 = x[i + half];
        x[i] = x0 * c - x1 * s;
        x[i + half] = x0 * s + x1 * c;
    }
}

/* ------------------------------------------------------------------ attention */

constexpr int kMaxHead = 128; /* head sizes up to this (cgpt.c refuses larger) */

struct geom {
    size_t ld, hs, grp;
    float scale;
};

geom geom_of(size_t C, size_t Ckv, size_t NH)
{
    struct mt_k_attn_geom g = mt_k_attn_geom(C, Ckv, NH);
    return {g.ld, g.hs, g.grp, g.scale};
}

__device__ size_t window_lo(size_t t, size_t window)
{
    return window && t >= window ? t + 1 - window : 0;
}

constexpr int kRows = 8;   /* query rows per block of attn_rows (one warp each) */
constexpr int kTile = 32;  /* keys per shared-memory tile */

/* tile[jj][c] (rows of hs + 1) = src[(j0 + jj) * ld + c] for keys up to jhi, else 0. */
__device__ void load_tile(float *tile, const float *src, size_t ld, size_t j0, size_t jhi, int hs)
{
    for (int i = threadIdx.x; i < kTile * hs; i += blockDim.x) {
        size_t j = j0 + i / hs;
        tile[(i / hs) * (hs + 1) + i % hs] = j <= jhi ? src[j * ld + i % hs] : 0.0f;
    }
}

/* The query-row side of attention, kRows rows of one (batch, head) per block (grid T / kRows,
 * NH, B; kRows warps), keys and values staged in shared memory a tile at a time:
 *   forward (Bwd = 0): scores q.k_j * scale, softmax into att (zero outside the attended
 *   positions), out = p . v;
 *   backward (Bwd = 1): s_j = dout.v_j, dpre_j = p_j (s_j - sum p s) into datt (the
 *   attended positions only), dq = scale * dpre . k into dqkv's q part.
 * Shared: rows' scores kRows x T, a tile kTile x (hs + 1), the rows' vectors kRows x hs. */
template <int Bwd, int HS>
__global__ void attn_rows(float *out, float *prow, const float *qkv, const float *dout,
                          const float *att, size_t T, size_t C, size_t Ckv, size_t NH,
                          size_t window, geom g)
{
    extern __shared__ float sm[];
    int hs = (int)g.hs, w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *sc = sm, *tile = sm + kRows * T, *qs = tile + kTile * (hs + 1);
    size_t t0 = (size_t)blockIdx.x * kRows, h = blockIdx.y, b = blockIdx.z, kh = h / g.grp;
    size_t t = t0 + w, ld = g.ld;
    const float *row0 = qkv + b * T * ld;
    for (int i = threadIdx.x; i < kRows * hs; i += blockDim.x) {
        size_t tt = t0 + i / hs;
        int c = i % hs;
        qs[i] = tt >= T ? 0.0f : Bwd ? dout[(b * T + tt) * C + h * hs + c] : row0[tt * ld + h * hs + c];
    }
    size_t jlo = window_lo(t0, window), jhi = t0 + kRows - 1 < T - 1 ? t0 + kRows - 1 : T - 1;
    size_t first = Bwd ? C + Ckv : C, second = Bwd ? C : C + Ckv; /* k or v, then the other */
    for (size_t j0 = jlo; j0 <= jhi; j0 += kTile) {
        __syncthreads();
        load_tile(tile, row0 + first + kh * hs, ld, j0, jhi, hs);
        __syncthreads();
        size_t j = j0 + lane;
        if (t < T && j <= jhi) {
            float s = 0.0f;
            for (int c = 0; c < hs; c++)
                s += qs[w * hs + c] * tile[lane * (hs + 1) + c];
            sc[w * T + j] = s;
        }
    }
    __syncthreads();
    size_t lo = t < T ? window_lo(t, window) : jhi + 1, hi = t < T ? t : 0;
    float *srow = sc + (size_t)w * T;
    if (t < T) {
        const float *arow = att + ((b * NH + h) * T + t) * T;
        float *prow_t = prow + ((b * NH + h) * T + t) * T;
        if (!Bwd) {
            float mx = -INFINITY, sum = 0.0f;
            for (size_t j = lo + lane; j <= hi; j += 32)
                mx = fmaxf(mx, srow[j] * g.scale);
            mx = warp_max(mx);
            for (size_t j = lo + lane; j <= hi; j += 32) {
                float e = expf(srow[j] * g.scale - mx);
                srow[j] = e;
                sum += e;
            }
            sum = warp_sum(sum);
            for (size_t j = lo + lane; j <= hi; j += 32)
                srow[j] /= sum;
            __syncwarp();
            for (size_t j = lane; j < T; j += 32)
                prow_t[j] = j >= lo && j <= hi ? srow[j] : 0.0f;
        } else {
            float dot = 0.0f;
            for (size_t j = lo + lane; j <= hi; j += 32)
                dot += arow[j] * srow[j];
            dot = warp_sum(dot);
            for (size_t j = lo + lane; j <= hi; j += 32) {
                float d = arow[j] * (srow[j] - dot);
                srow[j] = d;
                prow_t[j] = d;
            }
        }
    }
    for (size_t j = jlo + lane; j <= jhi; j += 32) /* outside this row's positions: 0 */
        if (j < lo || j > hi) srow[j] = 0.0f;
    float acc[HS / 32] = {0}; /* registers: HS is the head size's bucket */
    for (size_t j0 = jlo; j0 <= jhi; j0 += kTile) {
        __syncthreads();
        load_tile(tile, row0 + second + kh * hs, ld, j0, jhi, hs);
        __syncthreads();
        for (int jj = 0; jj < kTile && j0 + jj <= jhi; jj++) {
            float p = srow[j0 + jj];
#pragma unroll
            for (int k = 0; k < HS / 32; k++)
                if (k * 32 + lane < hs) acc[k] += p * tile[jj * (hs + 1) + k * 32 + lane];
        }
    }
    if (t >= T) return;
#pragma unroll
    for (int k = 0; k < HS / 32; k++) {
        int c = k * 32 + lane;
        if (c >= hs) break;
        if (Bwd)
            out[(b * T + t) * ld + h * hs + c] = acc[k] * g.scale;
        else
            out[(b * T + t) * C + h * hs + c] = acc[k];
    }
}

constexpr int kKeyTile = 32;    /* keys per block of attn_bwd_kv */
constexpr int kKvThreads = 256;

/* Backward, per tile of kKeyTile key/value positions (grid T / kKeyTile, NKV, B): dk, dv =
 * over the query heads of the group and the rows that attended to them. Each query row's
 * datt and att entries of the tile, its q and its dout are staged in shared memory (one
 * coalesced read each); every thread accumulates its (key, channel) pairs. */
template <int HS>
__global__ void attn_bwd_kv(float *dqkv, const float *datt, const float *dout, const float *qkv,
                            const float *att, size_t T, size_t C, size_t Ckv, size_t NH,
                            size_t window, geom g)
{
    __shared__ float sd[kKeyTile], sa[kKeyTile], sq[kMaxHead], so[kMaxHead];
    size_t j0 = (size_t)blockIdx.x * kKeyTile, kh = blockIdx.y, b = blockIdx.z;
    constexpr int per = kKeyTile * HS / kKvThreads; /* registers: HS is the head size's bucket */
    int hs = (int)g.hs;
    size_t jl = j0 + kKeyTile - 1 < T - 1 ? j0 + kKeyTile - 1 : T - 1;
    size_t hi = window && jl + window - 1 < T - 1 ? jl + window - 1 : T - 1;
    float dk[per] = {0}, dv[per] = {0};
    for (size_t h = kh * g.grp; h < (kh + 1) * g.grp; h++)
        for (size_t t = j0; t <= hi; t++) {
            if (threadIdx.x < kKeyTile) {
                size_t j = j0 + threadIdx.x, at = ((b * NH + h) * T + t) * T + j;
                int ok = j <= t && j < T && (!window || t - j < window);
                sd[threadIdx.x] = ok ? datt[at] : 0.0f;
                sa[threadIdx.x] = ok ? att[at] : 0.0f;
            }
            if ((int)threadIdx.x < hs) {
                sq[threadIdx.x] = qkv[(b * T + t) * g.ld + h * hs + threadIdx.x];
                so[threadIdx.x] = dout[(b * T + t) * C + h * hs + threadIdx.x];
            }
            __syncthreads();
#pragma unroll
            for (int k = 0; k < per; k++) {
                int idx = (int)threadIdx.x + k * kKvThreads, jj = idx / hs, c = idx % hs;
                if (jj < kKeyTile) {
                    dk[k] += sd[jj] * sq[c];
                    dv[k] += sa[jj] * so[c];
                }
            }
            __syncthreads();
        }
    for (int k = 0; k < per; k++) {
        int idx = (int)threadIdx.x + k * kKvThreads, jj = idx / hs, c = idx % hs;
        if (jj >= kKeyTile || j0 + jj >= T) continue;
        float *r = dqkv + (b * T + j0 + jj) * g.ld + C + kh * hs + c;
        r[0] = dk[k] * g.scale;
        r[Ckv] = dv[k];
    }
}

#define GRID_STRIDE(i, n)                                                                         \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)gridDim.x * blockDim.x)

constexpr int kDecodeThreads = 256;

/* The KV cache's element types (enum mt_cu_kv_type): stored rounded to nearest even, read
 * widened to fp32. */
__device__ __forceinline__ float kv_load(float x) { return x; }
__device__ __forceinline__ float kv_load(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float kv_load(__half x) { return __half2float(x); }
template <typename E> __device__ __forceinline__ E kv_store(float x);
template <> __device__ __forceinline__ float kv_store<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 kv_store<__nv_bfloat16>(float x)
{
    return __float2bfloat16_rn(x);
}
template <> __device__ __forceinline__ __half kv_store<__half>(float x) { return __float2half_rn(x); }

/* q . k over hs columns, added in column order (the bits of one load per column): the key
 * read as 16-byte words, kKeyLoads of them in flight, where its row is aligned to them. */
constexpr int kKeyLoads = 8;
template <typename E> __device__ __forceinline__ float key_dot(const float *qs, const E *k, int hs)
{
    constexpr int per = 16 / sizeof(E);
    float s = 0.0f;
    if (hs % per != 0 || (uintptr_t)k % 16 != 0) {
        for (int c = 0; c < hs; c++)
            s += qs[c] * kv_load(k[c]);
        return s;
    }
    for (int c0 = 0; c0 < hs; c0 += kKeyLoads * per) {
        uint4 w[kKeyLoads];
#pragma unroll
        for (int u = 0; u < kKeyLoads; u++)
            if (c0 + u * per < hs) w[u] = *(const uint4 *)(k + c0 + u * per);
#pragma unroll
        for (int u = 0; u < kKeyLoads; u++) {
            if (c0 + u * per >= hs) break;
            const E *e = (const E *)&w[u];
#pragma unroll
            for (int t = 0; t < per; t++)
                s += qs[c0 + u * per + t] * kv_load(e[t]);
        }
    }
    return s;
}

/* grid NH: one query against the cache, up to position tp[1], the step's key and value
 * appended first: the first query head of each key/value head stores them at tp[1]
 * (rounded to E), and every head reads them from shared memory, widened from E as the
 * cache would give them (no block reads what another writes in the same launch). One
 * thread per key for the scores (sc: shared, the attended positions), then threads over
 * (channel, key group) for the weighted sum of values, reduced across the groups in shared
 * memory. */
template <typename E>
__global__ void attn_decode(float *out, const float *qkv, E *K, E *V, const int *tp,
                            size_t window, size_t C, size_t Ckv, geom g)
{
    extern __shared__ float sc[];
    __shared__ float qs[kMaxHead], kn[kMaxHead], vn[kMaxHead], red[kDecodeThreads];
    size_t h = blockIdx.x, kh = h / g.grp, pos = (size_t)tp[1], lo = window_lo(pos, window);
    int hs = (int)g.hs, tid = threadIdx.x;
    for (int c = tid; c < hs; c += blockDim.x) {
        size_t at = kh * hs + c;
        E ke = kv_store<E>(qkv[C + at]), ve = kv_store<E>(qkv[C + Ckv + at]);
        qs[c] = qkv[h * hs + c];
        kn[c] = kv_load(ke);
        vn[c] = kv_load(ve);
        if (h % g.grp == 0) K[pos * Ckv + at] = ke, V[pos * Ckv + at] = ve;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (size_t j = lo + tid; j <= pos; j += blockDim.x) {
        const E *k = K + j * Ckv + kh * hs;
        float s = 0.0f;
        if (j == pos)
            for (int c = 0; c < hs; c++)
                s += qs[c] * kn[c];
        else
            s = key_dot(qs, k, hs);
        s *= g.scale;
        sc[j - lo] = s;
        mx = fmaxf(mx, s);
    }
    mx = block_reduce(mx, 1);
    float sum = 0.0f;
    for (size_t j = lo + tid; j <= pos; j += blockDim.x) {
        float e = expf(sc[j - lo] - mx);
        sc[j - lo] = e;
        sum += e;
    }
    sum = block_reduce(sum, 0); /* its barrier also publishes sc */
    int groups = (int)blockDim.x / hs, grp = tid / hs, c = tid % hs;
    float acc = 0.0f;
    if (grp < groups) {
        const E *v = V + kh * hs + c;
        size_t j = lo + grp;
#pragma unroll 8
        for (; j < pos; j += groups)
            acc += sc[j - lo] * kv_load(v[j * Ckv]);
        if (j == pos) acc += sc[j - lo] * vn[c]; /* the step's value, last of its group */
    }
    red[tid] = acc;
    __syncthreads();
    if (tid < hs) {
        float a = 0.0f;
        for (int r = 0; r < groups; r++)
            a += red[r * hs + tid];
        out[h * hs + tid] = a / sum;
    }
}

__global__ void decode_set(int *tp, int token, int pos)
{
    tp[0] = token, tp[1] = pos;
}

/* One block: the first index of the largest logit (strided scan, then pairs reduced with
 * the lower index winning ties), the next token and position into tp, the token into
 * tokens[pos]. */
constexpr int kArgmaxThreads = 1024, kArgmaxLoads = 8;
__global__ void decode_argmax(int *tp, int *tokens, const float *logits, size_t V)
{
    __shared__ float sv[kArgmaxThreads / 32];
    __shared__ unsigned si[kArgmaxThreads / 32];
    float bv = -INFINITY;
    unsigned bi = 0xffffffffu;
    for (size_t i0 = threadIdx.x; i0 < V; i0 += kArgmaxLoads * blockDim.x) {
        float v[kArgmaxLoads]; /* loaded before the first is compared: kArgmaxLoads in flight */
#pragma unroll
        for (int u = 0; u < kArgmaxLoads; u++) {
            size_t i = i0 + (size_t)u * blockDim.x;
            v[u] = i < V ? logits[i] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < kArgmaxLoads; u++) {
            size_t i = i0 + (size_t)u * blockDim.x;
            if (i < V && (v[u] > bv || bi == 0xffffffffu)) bv = v[u], bi = (unsigned)i;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float v = __shfl_xor_sync(0xffffffffu, bv, o);
        unsigned i = __shfl_xor_sync(0xffffffffu, bi, o);
        if (v > bv || (v == bv && i < bi)) bv = v, bi = i;
    }
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) sv[w] = bv, si[w] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int r = 1; r < (int)(blockDim.x >> 5); r++)
            if (sv[r] > bv || (sv[r] == bv && si[r] < bi)) bv = sv[r], bi = si[r];
        int pos = tp[1];
        tokens[pos] = (int)bi;
        tp[0] = (int)bi, tp[1] = pos + 1;
    }
}

__global__ void decode_embed(float *x, const float *wte, const float *wpe, const int *tp, size_t C)
{
    size_t tok = (size_t)tp[0], pos = (size_t)tp[1];
    GRID_STRIDE(c, C) x[c] = wte[tok * C + c] + (wpe ? wpe[pos * C + c] : 0.0f);
}

/* Softmax of the scores' rows in place (one warp per row of T; row i is query position
 * i % T, attending [window_lo, t]; zero elsewhere), also as bf16 into p16 unless NULL. */
__global__ void softmax_rows(float *att, __nv_bfloat16 *p16, size_t rows, size_t T, size_t window)
{
    size_t i = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (i >= rows) return;
    size_t t = i % T, lo = window_lo(t, window);
    float *r = att + i * T;
    float mx = -INFINITY, sum = 0.0f;
    for (size_t j = lo + lane; j <= t; j += 32)
        mx = fmaxf(mx, r[j]);
    mx = warp_max(mx);
    for (size_t j = lo + lane; j <= t; j += 32)
        sum += expf(r[j] - mx);
    float inv = 1.0f / warp_sum(sum);
    for (size_t j = lane; j < T; j += 32) {
        float p = j >= lo && j <= t ? expf(r[j] - mx) * inv : 0.0f;
        r[j] = p;
        if (p16) p16[i * T + j] = __float2bfloat16_rn(p);
    }
}

/* dS = P (dP - sum_j P dP) per row (one warp per row): in place over dP, or as bf16 into
 * ds16 with P's bf16 copy into p16 when ds16 is not NULL. */
__global__ void softmax_rows_bwd(float *datt, __nv_bfloat16 *ds16, __nv_bfloat16 *p16,
                                 const float *att, size_t rows, size_t T)
{
    size_t i = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (i >= rows) return;
    const float *p = att + i * T;
    float *dp = datt + i * T, dot = 0.0f;
    for (size_t j = lane; j < T; j += 32)
        dot += p[j] * dp[j];
    dot = warp_sum(dot);
    for (size_t j = lane; j < T; j += 32) {
        float ds = p[j] * (dp[j] - dot);
        if (ds16) {
            ds16[i * T + j] = __float2bfloat16_rn(ds);
            p16[i * T + j] = __float2bfloat16_rn(p[j]);
        } else {
            dp[j] = ds;
        }
    }
}

/* ------------------------------------------------------------------ element-wise */

__global__ void residual(float *out, const float *a, const float *b, size_t n)
{
    GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

__global__ void gelu_fwd(float *out, const float *inp, size_t n)
{
    GRID_STRIDE(i, n)
    {
        out[i] = mt_cu_gelu(inp[i]);
    }
}

__global__ void gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n)
{
    GRID_STRIDE(i, n)
    {
        float x = inp[i], th = tanhf(kGeluScale * (x + 0.044715f * x * x * x));
        float gd = 0.5f * (1.0f + th) +
                   0.5f * x * (1.0f - th * th) * kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = gd * dout[i];
    }
}

__global__ void swiglu_fwd(float *out, const float *inp, size_t N, size_t F)
{
    GRID_STRIDE(e, N * F)
    {
        size_t i = e / F, j = e % F;
        float g = inp[i * 2 * F + j], u = inp[i * 2 * F + F + j];
        out[e] = g / (1.0f + expf(-g)) * u;
    }
}

__global__ void swiglu_bwd(float *dinp, const float *inp, const float *dout, size_t N, size_t F)
{
    GRID_STRIDE(e, N * F)
    {
        size_t i = e / F, j = e % F;
        float g = inp[i * 2 * F + j], u = inp[i * 2 * F + F + j], d = dout[e];
        float sig = 1.0f / (1.0f + expf(-g));
        dinp[i * 2 * F + j] = d * u * sig * (1.0f + g * (1.0f - sig));
        dinp[i * 2 * F + F + j] = d * g * sig;
    }
}

__global__ void encoder_fwd(float *out, const int *inp, const float *wte, const float *wpe,
                            size_t T, size_t C, size_t n)
{
    GRID_STRIDE(e, n)
    {
        size_t bt = e / C, c = e % C;
        out[e] = wte[(size_t)inp[bt] * C + c] + (wpe ? wpe[bt % T * C + c] : 0.0f);
    }
}

__global__ void encoder_bwd(float *dwte, float *dwpe, const float *dout, const int *inp, size_t T,
                            size_t C, size_t n)
{
    GRID_STRIDE(e, n)
    {
        size_t bt = e / C, c = e % C;
        atomicAdd(dwte + (size_t)inp[bt] * C + c, dout[e]);
        if (dwpe) atomicAdd(dwpe + bt % T * C + c, dout[e]);
    }
}

__global__ void bias_add(float *out, const float *bias, size_t OC, size_t n)
{
    GRID_STRIDE(e, n) out[e] += bias[e % OC];
}

__device__ float load(const float *p) { return *p; }
__device__ float load(const __nv_bfloat16 *p) { return __bfloat162float(*p); }

/* grid N: softmax of one row of logits (row stride ld) into probs (row stride V), its
 * loss (targets NULL: the logits themselves are copied, no softmax). */
template <typename In>
__global__ void xent_fwd(float *probs, const In *logits, size_t ld, float *losses,
                         const int *targets, size_t V)
{
    const In *l = logits + (size_t)blockIdx.x * ld;
    float *o = probs + (size_t)blockIdx.x * V;
    if (!targets) {
        for (size_t j = threadIdx.x; j < V; j += blockDim.x)
            o[j] = load(l + j);
        return;
    }
    float mx = -INFINITY;
    for (size_t j = threadIdx.x; j < V; j += blockDim.x)
        mx = fmaxf(mx, load(l + j));
    mx = block_reduce(mx, 1);
    float s = 0.0f;
    for (size_t j = threadIdx.x; j < V; j += blockDim.x) {
        float e = expf(load(l + j) - mx);
        o[j] = e;
        s += e;
    }
    s = block_reduce(s, 0);
    for (size_t j = threadIdx.x; j < V; j += blockDim.x)
        o[j] /= s;
    __syncthreads();
    if (threadIdx.x == 0) {
        int t = targets[blockIdx.x];
        losses[blockIdx.x] = t < 0 ? 0.0f : -logf(o[t]);
    }
}

/* grid N: d16 (bf16, row stride ld) = (probs - onehot(target)) * dloss, zero for ignored
 * rows and in the padding columns V..ld. */
__global__ void xent_bwd16(__nv_bfloat16 *d16, size_t ld, const float *probs, const int *targets,
                           float dloss, size_t V)
{
    int t = targets[blockIdx.x];
    const float *p = probs + (size_t)blockIdx.x * V;
    __nv_bfloat16 *o = d16 + (size_t)blockIdx.x * ld;
    for (size_t j = threadIdx.x; j < ld; j += blockDim.x) {
        float g = t < 0 || j >= V ? 0.0f : (p[j] - ((size_t)t == j ? 1.0f : 0.0f)) * dloss;
        o[j] = __float2bfloat16_rn(g);
    }
}

__global__ void xent_bwd(float *probs, const int *targets, float dloss, size_t V, size_t n)
{
    GRID_STRIDE(e, n)
    {
        int t = targets[e / V];
        probs[e] = t < 0 ? 0.0f : (probs[e] - ((size_t)t == e % V ? 1.0f : 0.0f)) * dloss;
    }
}

__global__ void adamw(float *p, float *g, float *m, float *v, size_t n, mt_adamw_args a, float c1,
                      float c2)
{
    GRID_STRIDE(i, n)
    {
        float gi = g[i] * a.grad_scale;
        m[i] = a.beta1 * m[i] + (1.0f - a.beta1) * gi;
        v[i] = a.beta2 * v[i] + (1.0f - a.beta2) * gi * gi;
        float mh = m[i] / c1, vh = v[i] / c2;
        p[i] -= a.lr * (mh / (sqrtf(vh) + a.eps) + a.weight_decay * p[i]);
        if (a.zero_grad) g[i] = 0.0f;
    }
}

__global__ void sumsq(double *acc, const float *x, size_t n)
{
    double s = 0.0;
    GRID_STRIDE(i, n) s += (double)x[i] * x[i];
    s = block_reduce(s, 0);
    if (threadIdx.x == 0) atomicAdd(acc, s);
}

__global__ void to_bf16(__nv_bfloat16 *out, const float *in, size_t n)
{
    GRID_STRIDE(i, n) out[i] = __float2bfloat16_rn(in[i]);
}

int row_threads(size_t C)
{
    return C >= 1024 ? 1024 : C >= 512 ? 512 : C >= 256 ? 256 : 128;
}

/* Decoding's norm of N rows, one block each (the decode table): statistics by every warp
 * on its own (cdev.cuh), which the GEMVs' fused prologue computes bit for bit. */
__global__ void norm_rows(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int C, int rms)
{
    const float *x = inp + (size_t)blockIdx.x * C;
    float s, r;
    mt_cu_norm_stats(x, C, rms, &s, &r);
    float *o = out + (size_t)blockIdx.x * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        o[c] = mt_cu_norm_at(x[c], s, r, w[c], b ? b[c] : 0.0f);
    if (threadIdx.x == 0) {
        if (mean) mean[blockIdx.x] = s;
        if (rstd) rstd[blockIdx.x] = r;
    }
}

void k_layernorm_rows(float *out, float *mean, float *rstd, const float *inp, const float *w,
                      const float *b, size_t N, size_t C)
{
    norm_rows<<<(unsigned)N, kThreads>>>(out, mean, rstd, inp, w, b, (int)C, 0);
}

void k_rmsnorm_rows(float *out, float *rstd, const float *inp, const float *w, size_t N, size_t C)
{
    norm_rows<<<(unsigned)N, kThreads>>>(out, nullptr, rstd, inp, w, nullptr, (int)C, 1);
}

/* ------------------------------------------------------------------ block table */

void k_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w,
                     const float *b, size_t N, size_t C)
{
    norm_fwd<<<(unsigned)N, row_threads(C)>>>(out, mean, rstd, inp, w, b, (int)C, 0);
}

void k_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, size_t N, size_t C)
{
    norm_fwd<<<(unsigned)N, row_threads(C)>>>(out, nullptr, rstd, inp, w, nullptr, (int)C, 1);
}

void k_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                     const float *w, const float *mean, const float *rstd, size_t N, size_t C)
{
    norm_bwd_inp<<<(unsigned)N, row_threads(C)>>>(dinp, dout, inp, w, mean, rstd, (int)C);
    if (dw) norm_bwd_params<<<chunk_grid(N, C), kThreads>>>(dw, db, dout, inp, mean, rstd, N, (int)C);
}

void k_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                   const float *rstd, size_t N, size_t C)
{
    norm_bwd_inp<<<(unsigned)N, row_threads(C)>>>(dinp, dout, inp, w, nullptr, rstd, (int)C);
    if (dw)
        norm_bwd_params<<<chunk_grid(N, C), kThreads>>>(dw, nullptr, dout, inp, nullptr, rstd, N,
                                                        (int)C);
}

/* RoPE forward (Sign 1) or backward (Sign -1): kernels.h mt_k_rope_fwd / _bwd. */
template <int Sign>
void k_rope(float *qkv, size_t B, size_t T, size_t pos0, size_t Ca, size_t Ckv, size_t hs,
            double theta)
{
    size_t heads = (Ca + Ckv) / hs;
    rope<<<blocks_for(B * T * heads * (hs / 2)), kThreads>>>(qkv, B, T, pos0, Ca + 2 * Ckv, heads,
                                                             hs, theta, (double)Sign);
}

/* attn_rows<Bwd, HS> over every query row; its shared memory can pass the 48 KiB default. */
template <int Bwd, int HS>
void rows_launch_hs(float *out, float *prow, const float *qkv, const float *dout, const float *att,
                    size_t B, size_t T, size_t C, size_t Ckv, size_t NH, size_t window)
{
    geom g = geom_of(C, Ckv, NH);
    size_t smem = (kRows * T + kTile * (g.hs + 1) + kRows * g.hs) * sizeof(float);
    if (smem > 48 * 1024)
        cudaFuncSetAttribute(attn_rows<Bwd, HS>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (int)smem);
    attn_rows<Bwd, HS><<<dim3((unsigned)((T + kRows - 1) / kRows), (unsigned)NH, (unsigned)B),
                         kRows * 32, smem>>>(out, prow, qkv, dout, att, T, C, Ckv, NH, window, g);
}

/* The head size's bucket (32, 64, 128): the per-thread accumulators stay in registers. */
template <int Bwd>
void rows_launch(float *out, float *prow, const float *qkv, const float *dout, const float *att,
                 size_t B, size_t T, size_t C, size_t Ckv, size_t NH, size_t window)
{
    size_t hs = C / NH;
    if (hs <= 32)
        rows_launch_hs<Bwd, 32>(out, prow, qkv, dout, att, B, T, C, Ckv, NH, window);
    else if (hs <= 64)
        rows_launch_hs<Bwd, 64>(out, prow, qkv, dout, att, B, T, C, Ckv, NH, window);
    else
        rows_launch_hs<Bwd, 128>(out, prow, qkv, dout, att, B, T, C, Ckv, NH, window);
}

void k_attention_fwd(float *out, float *att, const float *qkv, size_t B, size_t T, size_t C,
                     size_t Ckv, size_t NH, size_t window)
{
    rows_launch<0>(out, att, qkv, nullptr, att, B, T, C, Ckv, NH, window);
}

void k_attention_bwd(float *dqkv, float *datt, const float *dout, const float *qkv,
                     const float *att, size_t B, size_t T, size_t C, size_t Ckv, size_t NH,
                     size_t window)
{
    geom g = geom_of(C, Ckv, NH);
    rows_launch<1>(dqkv, datt, qkv, dout, att, B, T, C, Ckv, NH, window);
    dim3 grid((unsigned)((T + kKeyTile - 1) / kKeyTile), (unsigned)(Ckv / g.hs), (unsigned)B);
    if (g.hs <= 32)
        attn_bwd_kv<32><<<grid, kKvThreads>>>(dqkv, datt, dout, qkv, att, T, C, Ckv, NH, window, g);
    else if (g.hs <= 64)
        attn_bwd_kv<64><<<grid, kKvThreads>>>(dqkv, datt, dout, qkv, att, T, C, Ckv, NH, window, g);
    else
        attn_bwd_kv<128><<<grid, kKvThreads>>>(dqkv, datt, dout, qkv, att, T, C, Ckv, NH, window, g);
}

void k_residual_fwd(float *out, const float *a, const float *b, size_t n)
{
    residual<<<blocks_for(n), kThreads>>>(out, a, b, n);
}

void k_gelu_fwd(float *out, const float *inp, size_t n)
{
    gelu_fwd<<<blocks_for(n), kThreads>>>(out, inp, n);
}

void k_gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n)
{
    gelu_bwd<<<blocks_for(n), kThreads>>>(dinp, inp, dout, n);
}

void k_swiglu_fwd(float *out, const float *inp, size_t N, size_t F)
{
    swiglu_fwd<<<blocks_for(N * F), kThreads>>>(out, inp, N, F);
}

void k_swiglu_bwd(float *dinp, const float *inp, const float *dout, size_t N, size_t F)
{
    swiglu_bwd<<<blocks_for(N * F), kThreads>>>(dinp, inp, dout, N, F);
}

} /* namespace */

template <typename E>
static void attention_decode(float *out, const float *qkv, void *K, void *V, const int *tokpos,
                             size_t window, size_t max_T, size_t C, size_t Ckv, size_t NH)
{
    size_t smem = max_T * sizeof(float);
    if (smem > 48 * 1024)
        cudaFuncSetAttribute(attn_decode<E>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (int)smem);
    attn_decode<E><<<(unsigned)NH, kDecodeThreads, smem>>>(
        out, qkv, static_cast<E *>(K), static_cast<E *>(V), tokpos, window, C, Ckv,
        geom_of(C, Ckv, NH));
}

extern "C" {

const struct mt_block_kernels mt_cuda_block_kernels = {
    k_layernorm_fwd, k_layernorm_bwd, k_rmsnorm_fwd, k_rmsnorm_bwd, k_rope<1>,
    k_rope<-1>,      k_attention_fwd, k_attention_bwd, mt_cu_flash_fwd, mt_cu_flash_bwd,
    k_residual_fwd,  k_gelu_fwd,      k_gelu_bwd,      k_swiglu_fwd, k_swiglu_bwd,
};

const struct mt_block_kernels mt_cuda_decode_kernels = {
    k_layernorm_rows, k_layernorm_bwd, k_rmsnorm_rows, k_rmsnorm_bwd, k_rope<1>,
    k_rope<-1>,       k_attention_fwd, k_attention_bwd, mt_cu_flash_fwd, mt_cu_flash_bwd,
    k_residual_fwd,   k_gelu_fwd,      k_gelu_bwd,      k_swiglu_fwd, k_swiglu_bwd,
};

void mt_cu_encoder_fwd(float *out, const int *inp, const float *wte, const float *wpe, size_t B,
                       size_t T, size_t C)
{
    encoder_fwd<<<blocks_for(B * T * C), kThreads>>>(out, inp, wte, wpe, T, C, B * T * C);
}

void mt_cu_encoder_bwd(float *dwte, float *dwpe, const float *dout, const int *inp, size_t B,
                       size_t T, size_t C)
{
    encoder_bwd<<<blocks_for(B * T * C), kThreads>>>(dwte, dwpe, dout, inp, T, C, B * T * C);
}

void mt_cu_bias_add(float *out, const float *bias, size_t N, size_t OC)
{
    bias_add<<<blocks_for(N * OC), kThreads>>>(out, bias, OC, N * OC);
}

void mt_cu_colsum_add(float *dst, const float *src, size_t N, size_t OC)
{
    colsum<<<chunk_grid(N, OC), kThreads>>>(dst, src, N, (int)OC);
}

void mt_cu_crossentropy_fwd(float *logits, float *losses, const int *targets, size_t N, size_t V)
{
    xent_fwd<float><<<(unsigned)N, 1024>>>(logits, logits, V, losses, targets, V);
}

void mt_cu_crossentropy_fwd16(float *probs, const void *logits16, size_t ld, float *losses,
                              const int *targets, size_t N, size_t V)
{
    xent_fwd<__nv_bfloat16><<<(unsigned)N, 1024>>>(
        probs, static_cast<const __nv_bfloat16 *>(logits16), ld, losses, targets, V);
}

void mt_cu_crossentropy_bwd16(void *d16, size_t ld, const float *probs, const int *targets,
                              float dloss, size_t N, size_t V)
{
    xent_bwd16<<<(unsigned)N, 1024>>>(static_cast<__nv_bfloat16 *>(d16), ld, probs, targets,
                                      dloss, V);
}

void mt_cu_crossentropy_bwd(float *probs, const int *targets, float dloss, size_t N, size_t V)
{
    xent_bwd<<<blocks_for(N * V), kThreads>>>(probs, targets, dloss, V, N * V);
}

void mt_cu_adamw(float *p, float *g, float *m, float *v, size_t n, const struct mt_adamw_args *a)
{
    float c1 = 1.0f - powf(a->beta1, (float)a->step), c2 = 1.0f - powf(a->beta2, (float)a->step);
    adamw<<<blocks_for(n), kThreads>>>(p, g, m, v, n, *a, c1, c2);
}

void mt_cu_sumsq(double *acc, const float *x, size_t n)
{
    sumsq<<<blocks_for(n) < 1024 ? blocks_for(n) : 1024, kThreads>>>(acc, x, n);
}

void mt_cu_to_bf16(void *out, const float *in, size_t n)
{
    to_bf16<<<blocks_for(n), kThreads>>>(static_cast<__nv_bfloat16 *>(out), in, n);
}

void mt_cu_softmax_rows(float *att, void *p16, size_t rows, size_t T, size_t window)
{
    softmax_rows<<<(unsigned)((rows + 7) / 8), 256>>>(att, static_cast<__nv_bfloat16 *>(p16),
                                                      rows, T, window);
}

void mt_cu_softmax_rows_bwd(float *datt, void *ds16, void *p16, const float *att, size_t rows,
                            size_t T)
{
    softmax_rows_bwd<<<(unsigned)((rows + 7) / 8), 256>>>(
        datt, static_cast<__nv_bfloat16 *>(ds16), static_cast<__nv_bfloat16 *>(p16), att, rows, T);
}

void mt_cu_decode_embed(float *x, const float *wte, const float *wpe, const int *tokpos, size_t C)
{
    decode_embed<<<blocks_for(C), kThreads>>>(x, wte, wpe, tokpos, C);
}

void mt_cu_decode_set(int *tokpos, int token, int pos)
{
    decode_set<<<1, 1>>>(tokpos, token, pos);
}

void mt_cu_decode_argmax(int *tokpos, int *tokens, const float *logits, size_t V)
{
    decode_argmax<<<1, kArgmaxThreads>>>(tokpos, tokens, logits, V);
}

void mt_cu_attention_decode(float *out, const float *qkv, void *K, void *V, enum mt_cu_kv_type type,
                            const int *tokpos, size_t window, size_t max_T, size_t C, size_t Ckv,
                            size_t NH)
{
    if (type == MT_CU_KV_BF16)
        attention_decode<__nv_bfloat16>(out, qkv, K, V, tokpos, window, max_T, C, Ckv, NH);
    else if (type == MT_CU_KV_F16)
        attention_decode<__half>(out, qkv, K, V, tokpos, window, max_T, C, Ckv, NH);
    else
        attention_decode<float>(out, qkv, K, V, tokpos, window, max_T, C, Ckv, NH);
}

} /* extern "C" */
