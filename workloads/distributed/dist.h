/* dist.h — the MPI side of the distributed workloads: a communicator with accounting,
 * and a per-rank memory ledger.
 *
 * What it is for: every byte the distributed workloads move and every slab they allocate
 * goes through here, so each rank can report `comm_bytes_sent`, `comm_bytes_recv`,
 * `comm_s` (wall time inside MPI calls, also as the region "comm") and the live/peak
 * bytes per memory category of its own allocations.
 * What it is not for: the model math (shard.h) or the training strategies (train.h).
 *
 * Byte counts. Point-to-point calls count exactly what is sent and received. For
 * collectives the bytes an MPI library really moves depend on the algorithm it picks at
 * run time, which Open MPI does not expose cheaply; we count what the bandwidth-optimal
 * ring algorithm moves per rank for a payload of S bytes over N ranks:
 * allreduce 2 (N-1)/N S each way, reduce-scatter and allgather (N-1)/N S each way
 * (S = the full vector), gather/gatherv at the root only what it receives.
 *
 * Errors: MPI calls use the communicator's default handler, MPI_ERRORS_ARE_FATAL: a
 * failed call (or a dead peer) aborts the whole job instead of hanging it.
 * Thread safety: one struct mt_dist per rank, used from the thread that runs the
 * workload (MPI is initialised with MPI_THREAD_FUNNELED).
 */
#ifndef MT_DIST_H
#define MT_DIST_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include <memtrade/workload.h>

struct mt_dist {
    struct mt_ctx *ctx; /* harness context; NULL in tests (no regions then) */
    MPI_Comm comm;      /* the job's ranks */
    int rank, nranks;
    int initialised_mpi; /* this module called MPI_Init, so it finalises */
    MPI_Op bf16_sum;     /* the bf16 collectives' sum (see below) */
    /* communication, counted since mt_dist_reset_comm */
    double comm_s;
    double bytes_sent, bytes_recv;
    uint64_t calls;
    /* the ledger: bytes this rank allocated through mt_dist_alloc, live and peak */
    size_t live[MT_MEM_CAT_COUNT], peak[MT_MEM_CAT_COUNT];
    size_t live_total, peak_total;
};

/* Initialises MPI when nobody has (making libmpi's symbols global first, since the
 * harness dlopens plugins RTLD_LOCAL and Open MPI's components need them), then fills
 * *d for MPI_COMM_WORLD. Returns 0, or -1 with a message. */
int mt_dist_open(struct mt_dist *d, struct mt_ctx *ctx, char *err, size_t errlen);

/* Finalises MPI if mt_dist_open initialised it. Collective: a rank that fails alone must
 * not get here while others wait for it in a collective (use mt_dist_any to agree on
 * failures first). */
void mt_dist_close(struct mt_dist *d);

/* Agrees on failure: returns 1 on every rank if `failed` is non-zero on any rank. */
int mt_dist_any(struct mt_dist *d, int failed);

/* Zeroes the communication counters (not the ledger). */
void mt_dist_reset_comm(struct mt_dist *d);

/* ---------------------------------------------------------------- collectives (float) */

/* buf[n] = sum over ranks of buf[n], on every rank. */
void mt_dist_allreduce(struct mt_dist *d, float *buf, size_t n);
/* buf[n] = max over ranks of buf[n], on every rank (counted as the sum's traffic). */
void mt_dist_allreduce_max(struct mt_dist *d, float *buf, size_t n);
/* Non-blocking version; complete with mt_dist_wait. */
void mt_dist_iallreduce(struct mt_dist *d, float *buf, size_t n, MPI_Request *req);
void mt_dist_wait(struct mt_dist *d, MPI_Request *req);
/* Drives the progress of n requests without waiting (MPI_Testall; once all are complete
 * they become MPI_REQUEST_NULL, which mt_dist_wait accepts). */
void mt_dist_test(struct mt_dist *d, MPI_Request *reqs, size_t n);
/* Sum of a double over ranks. Not counted as traffic (a scalar for reporting). */
double mt_dist_sum(struct mt_dist *d, double v);
/* Reduce-scatter of a vector of sum(counts) floats: rank r receives the sum of the
 * slice [displ(r), displ(r) + counts[r]) into recv (counts[r] floats; counts may be 0).
 * send == recv is the in-place form: the input is the whole of recv. */
void mt_dist_reduce_scatter(struct mt_dist *d, const float *send, float *recv, const int *counts);
/* In-place all-gather: rank r's slice [displs[r], +counts[r]) of buf goes everywhere. */
void mt_dist_allgather(struct mt_dist *d, float *buf, const int *counts, const int *displs);
/* Non-blocking version (MPI_Iallgatherv; bytes counted when it starts); buf, counts and
 * displs must stay untouched until mt_dist_wait(req). */
void mt_dist_iallgather(struct mt_dist *d, float *buf, const int *counts, const int *displs,
                        MPI_Request *req);
/* Gathers n floats of every rank into recv on `root` (counts/displs used at the root). */
void mt_dist_gatherv(struct mt_dist *d, const float *send, int n, float *recv, const int *counts,
                     const int *displs, int root);

/* ---------------------------------------------------------------- collectives (bf16)
 * MPI has no bf16 type: the elements travel as MPI_UINT16_T (2 bytes each, half the bytes
 * of the float versions, counted as such) and a user MPI_Op adds two bf16 values in fp32
 * and rounds the sum back to bf16 (nearest even, half.h). Every partial sum of the
 * reduction is rounded: over 2 ranks the result is bf16(a + b) on both ranks; over more
 * the rounding happens once per hop of the algorithm Open MPI picks. */

/* buf[n] = bf16 sum over ranks of buf[n], on every rank; non-blocking version below. */
void mt_dist_allreduce_bf16(struct mt_dist *d, uint16_t *buf, size_t n);
void mt_dist_iallreduce_bf16(struct mt_dist *d, uint16_t *buf, size_t n, MPI_Request *req);
/* Reduce-scatter of sum(counts) bf16 values, as mt_dist_reduce_scatter (send == recv:
 * in place, rank r's summed slice lands at recv[0 .. counts[r])). */
void mt_dist_reduce_scatter_bf16(struct mt_dist *d, const uint16_t *send, uint16_t *recv,
                                 const int *counts);
/* In-place all-gather of 16-bit elements (as mt_dist_allgather). */
void mt_dist_allgather_u16(struct mt_dist *d, uint16_t *buf, const int *counts, const int *displs);
/* Its non-blocking form (as mt_dist_iallgather). */
void mt_dist_iallgather_u16(struct mt_dist *d, uint16_t *buf, const int *counts, const int *displs,
                            MPI_Request *req);

/* ---------------------------------------------------------------- point to point */

void mt_dist_send(struct mt_dist *d, const float *buf, size_t n, int peer, int tag);
void mt_dist_recv(struct mt_dist *d, float *buf, size_t n, int peer, int tag);
/* Non-blocking send; buf must stay untouched until mt_dist_wait(req). */
void mt_dist_isend(struct mt_dist *d, const float *buf, size_t n, int peer, int tag,
                   MPI_Request *req);
/* Exchanges n floats with `peer` (same call on both sides): sends `out`, receives `in`. */
void mt_dist_sendrecv(struct mt_dist *d, const float *out, float *in, size_t n, int peer, int tag);

/* ---------------------------------------------------------------- the ledger */

/* Allocates `bytes` (64-byte aligned, zeroed) under memory category `cat` (the heap
 * profiler sees it tagged), names it for the profiler and adds it to the ledger. Returns
 * NULL when out of memory. bytes == 0 returns NULL without failing: check the size. */
void *mt_dist_alloc(struct mt_dist *d, int cat, size_t bytes, const char *name);
/* Frees what mt_dist_alloc returned and takes it out of the ledger. NULL is a no-op. */
void mt_dist_free(struct mt_dist *d, int cat, void *p, size_t bytes);
/* Restarts the peaks at the current live bytes (e.g. when training starts). */
void mt_dist_reset_peaks(struct mt_dist *d);

#endif
