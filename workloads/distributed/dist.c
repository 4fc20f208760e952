/* dist.c — MPI calls with time and byte accounting, and the memory ledger (see dist.h). */
#include "dist.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "wlcommon.h"

#define ALIGN ((size_t)64)

/* Opens the time of one MPI call: the "comm" region and the clock. */
static double comm_begin(struct mt_dist *d)
{
    if (d->ctx) mt_region_begin(d->ctx, "comm");
    return mt_wl_now();
}

static void comm_end(struct mt_dist *d, double t0, double sent, double recv)
{
    d->comm_s += mt_wl_now() - t0;
    d->bytes_sent += sent;
    d->bytes_recv += recv;
    d->calls++;
    if (d->ctx) mt_region_end(d->ctx, "comm");
}

/* Ring-algorithm bytes per rank for a collective over `bytes` with `factor` passes. */
static double ring_bytes(const struct mt_dist *d, size_t bytes, double factor)
{
    return d->nranks > 1 ? factor * (double)(d->nranks - 1) / d->nranks * (double)bytes : 0.0;
}

/* The MPI_Op of the bf16 collectives: inout[i] = bf16(float(in[i]) + float(inout[i])),
 * round to nearest even, through half.h's array converters (AVX512-BF16 where the CPU has
 * it; those treat fp32 denormal sums as zero, see half.h) in chunks on the stack.
 * Commutative: a + b == b + a in fp32. */
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)type;
    enum { CHUNK = 512 };
    float a[CHUNK], b[CHUNK];
    const uint16_t *x = in;
    uint16_t *y = inout;
    for (size_t off = 0, n = (size_t)*len; off < n; off += CHUNK) {
        size_t k = n - off < CHUNK ? n - off : CHUNK;
        mt_half_unpack(MT_PREC_BF16, a, x + off, k);
        mt_half_unpack(MT_PREC_BF16, b, y + off, k);
        for (size_t i = 0; i < k; i++)
            a[i] += b[i];
        mt_half_pack(MT_PREC_BF16, y + off, a, k);
    }
}

int mt_dist_open(struct mt_dist *d, struct mt_ctx *ctx, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->bf16_sum = MPI_OP_NULL;
    d->ctx = ctx;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        /* Open MPI's components (mca_*.so) resolve libmpi's symbols globally; a plugin
         * dlopened RTLD_LOCAL hides them, so promote the already loaded library. */
        const char *libs[] = {"libmpi.so.40", "libmpi.so"};
        for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++)
            if (dlopen(libs[i], RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) break;
        int provided = 0;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            snprintf(err, errlen, "MPI_Init_thread failed");
            return -1;
        }
        d->initialised_mpi = 1;
    }
    d->comm = MPI_COMM_WORLD;
    MPI_Op_create(bf16_sum, 1, &d->bf16_sum);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->nranks);
    return 0;
}

void mt_dist_close(struct mt_dist *d)
{
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin && d->bf16_sum != MPI_OP_NULL) MPI_Op_free(&d->bf16_sum);
    if (d->initialised_mpi) {
        if (!fin) MPI_Finalize();
        d->initialised_mpi = 0;
    }
}

int mt_dist_any(struct mt_dist *d, int failed)
{
    int in = failed != 0, out = 0;
    MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, d->comm);
    return out;
}

void mt_dist_reset_comm(struct mt_dist *d)
{
    d->comm_s = 0.0;
    d->bytes_sent = d->bytes_recv = 0.0;
    d->calls = 0;
}

static void allreduce_op(struct mt_dist *d, float *buf, size_t n, MPI_Op op)
{
    if (d->nranks == 1 || n == 0) return;
    double t0 = comm_begin(d), b = ring_bytes(d, n * sizeof *buf, 2.0);
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, op, d->comm);
    comm_end(d, t0, b, b);
}

void mt_dist_allreduce(struct mt_dist *d, float *buf, size_t n)
{
    allreduce_op(d, buf, n, MPI_SUM);
}

void mt_dist_allreduce_max(struct mt_dist *d, float *buf, size_t n)
{
    allreduce_op(d, buf, n, MPI_MAX);
}

void mt_dist_iallreduce(struct mt_dist *d, float *buf, size_t n, MPI_Request *req)
{
    *req = MPI_REQUEST_NULL;
    if (d->nranks == 1 || n == 0) return;
    double t0 = comm_begin(d), b = ring_bytes(d, n * sizeof *buf, 2.0);
    MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, d->comm, req);
    comm_end(d, t0, b, b);
}

void mt_dist_wait(struct mt_dist *d, MPI_Request *req)
{
    if (*req == MPI_REQUEST_NULL) return;
    double t0 = comm_begin(d);
    MPI_Wait(req, MPI_STATUS_IGNORE);
    comm_end(d, t0, 0.0, 0.0);
}

void mt_dist_test(struct mt_dist *d, MPI_Request *reqs, size_t n)
{
    if (!n) return;
    int done = 0;
    double t0 = comm_begin(d);
    MPI_Testall((int)n, reqs, &done, MPI_STATUSES_IGNORE);
    comm_end(d, t0, 0.0, 0.0);
}

double mt_dist_sum(struct mt_dist *d, double v)
{
    double out = v;
    if (d->nranks > 1) MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, d->comm);
    return out;
}

static size_t counts_total(const struct mt_dist *d, const int *counts)
{
    size_t total = 0;
    for (int r = 0; r < d->nranks; r++)
        total += (size_t)counts[r];
    return total;
}

/* Reduce-scatter of elements of `type` (`size` bytes each) with `op`; send == recv is
 * the in-place form. */
static void reduce_scatter(struct mt_dist *d, const void *send, void *recv, const int *counts,
                           MPI_Datatype type, size_t size, MPI_Op op)
{
    size_t total = counts_total(d, counts);
    if (d->nranks == 1) {
        memmove(recv, send, total * size);
        return;
    }
    double t0 = comm_begin(d), b = ring_bytes(d, total * size, 1.0);
    MPI_Reduce_scatter(send == recv ? MPI_IN_PLACE : send, recv, counts, type, op, d->comm);
    comm_end(d, t0, b, b);
}

void mt_dist_reduce_scatter(struct mt_dist *d, const float *send, float *recv, const int *counts)
{
    reduce_scatter(d, send, recv, counts, MPI_FLOAT, sizeof *send, MPI_SUM);
}

/* In-place all-gather of elements of `type` (`size` bytes each). */
static void allgather(struct mt_dist *d, void *buf, const int *counts, const int *displs,
                      MPI_Datatype type, size_t size)
{
    if (d->nranks == 1) return;
    double t0 = comm_begin(d), b = ring_bytes(d, counts_total(d, counts) * size, 1.0);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, type, d->comm);
    comm_end(d, t0, b, b);
}

void mt_dist_allgather(struct mt_dist *d, float *buf, const int *counts, const int *displs)
{
    allgather(d, buf, counts, displs, MPI_FLOAT, sizeof *buf);
}

/* Its non-blocking form (bytes counted when it starts). */
static void iallgather(struct mt_dist *d, void *buf, const int *counts, const int *displs,
                       MPI_Datatype type, size_t size, MPI_Request *req)
{
    *req = MPI_REQUEST_NULL;
    if (d->nranks == 1) return;
    double t0 = comm_begin(d), b = ring_bytes(d, counts_total(d, counts) * size, 1.0);
    MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, type, d->comm, req);
    comm_end(d, t0, b, b);
}

void mt_dist_iallgather(struct mt_dist *d, float *buf, const int *counts, const int *displs,
                        MPI_Request *req)
{
    iallgather(d, buf, counts, displs, MPI_FLOAT, sizeof *buf, req);
}

void mt_dist_allreduce_bf16(struct mt_dist *d, uint16_t *buf, size_t n)
{
    if (d->nranks == 1 || n == 0) return;
    double t0 = comm_begin(d), b = ring_bytes(d, n * sizeof *buf, 2.0);
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_UINT16_T, d->bf16_sum, d->comm);
    comm_end(d, t0, b, b);
}

void mt_dist_iallreduce_bf16(struct mt_dist *d, uint16_t *buf, size_t n, MPI_Request *req)
{
    *req = MPI_REQUEST_NULL;
    if (d->nranks == 1 || n == 0) return;
    double t0 = comm_begin(d), b = ring_bytes(d, n * sizeof *buf, 2.0);
    MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_UINT16_T, d->bf16_sum, d->comm, req);
    comm_end(d, t0, b, b);
}

void mt_dist_reduce_scatter_bf16(struct mt_dist *d, const uint16_t *send, uint16_t *recv,
                                 const int *counts)
{
    reduce_scatter(d, send, recv, counts, MPI_UINT16_T, sizeof *send, d->bf16_sum);
}

void mt_dist_allgather_u16(struct mt_dist *d, uint16_t *buf, const int *counts, const int *displs)
{
    allgather(d, buf, counts, displs, MPI_UINT16_T, sizeof *buf);
}

void mt_dist_iallgather_u16(struct mt_dist *d, uint16_t *buf, const int *counts, const int *displs,
                            MPI_Request *req)
{
    iallgather(d, buf, counts, displs, MPI_UINT16_T, sizeof *buf, req);
}

void mt_dist_gatherv(struct mt_dist *d, const float *send, int n, float *recv, const int *counts,
                     const int *displs, int root)
{
    double t0 = comm_begin(d), in = 0.0;
    if (d->rank == root)
        for (int r = 0; r < d->nranks; r++)
            in += r == root ? 0.0 : (double)counts[r] * sizeof(float);
    MPI_Gatherv(send, n, MPI_FLOAT, recv, counts, displs, MPI_FLOAT, root, d->comm);
    comm_end(d, t0, d->rank == root ? 0.0 : (double)n * sizeof(float), in);
}

void mt_dist_send(struct mt_dist *d, const float *buf, size_t n, int peer, int tag)
{
    double t0 = comm_begin(d);
    MPI_Send(buf, (int)n, MPI_FLOAT, peer, tag, d->comm);
    comm_end(d, t0, (double)n * sizeof *buf, 0.0);
}

void mt_dist_isend(struct mt_dist *d, const float *buf, size_t n, int peer, int tag,
                   MPI_Request *req)
{
    double t0 = comm_begin(d);
    MPI_Isend(buf, (int)n, MPI_FLOAT, peer, tag, d->comm, req);
    comm_end(d, t0, (double)n * sizeof *buf, 0.0);
}

void mt_dist_recv(struct mt_dist *d, float *buf, size_t n, int peer, int tag)
{
    double t0 = comm_begin(d);
    MPI_Recv(buf, (int)n, MPI_FLOAT, peer, tag, d->comm, MPI_STATUS_IGNORE);
    comm_end(d, t0, 0.0, (double)n * sizeof *buf);
}

void mt_dist_sendrecv(struct mt_dist *d, const float *out, float *in, size_t n, int peer, int tag)
{
    double t0 = comm_begin(d), b = (double)n * sizeof *out;
    MPI_Sendrecv(out, (int)n, MPI_FLOAT, peer, tag, in, (int)n, MPI_FLOAT, peer, tag, d->comm,
                 MPI_STATUS_IGNORE);
    comm_end(d, t0, b, b);
}

void *mt_dist_alloc(struct mt_dist *d, int cat, size_t bytes, const char *name)
{
    if (!bytes) return NULL;
    /* exactly `bytes` (posix_memalign takes any size), so the heap profiler's figure is the
       ledger's and the plan's: aligned_alloc's rounding up to ALIGN showed as 32 bytes of
       adamw8 state beyond the plan */
    int prev = mt_memcat_set(cat);
    void *p = NULL;
    int bad = posix_memalign(&p, ALIGN, bytes);
    mt_memcat_set(prev);
    if (bad) return NULL;
    memset(p, 0, bytes);
    if (name) mt_memcat_report(p, bytes, cat, name);
    d->live[cat] += bytes;
    d->live_total += bytes;
    if (d->live[cat] > d->peak[cat]) d->peak[cat] = d->live[cat];
    if (d->live_total > d->peak_total) d->peak_total = d->live_total;
    return p;
}

void mt_dist_free(struct mt_dist *d, int cat, void *p, size_t bytes)
{
    if (!p) return;
    free(p);
    d->live[cat] -= bytes;
    d->live_total -= bytes;
}

void mt_dist_reset_peaks(struct mt_dist *d)
{
    memcpy(d->peak, d->live, sizeof d->peak);
    d->peak_total = d->live_total;
}
