/* train.c — data parallel, ZeRO-1/2, tensor parallel and pipeline parallel training over
 * model shards (see train.h): the engine of the one training loop (loop.h) for a rank.
 * The strategies differ in the shard each rank holds, which rows of the batch it sees,
 * how gradients are combined and which slice of the flat parameter vector its optimizer
 * updates; the steps, the batch stream and the schedule are the loop's. */
#include "train.h"
#include "doptim.h"
#include "zplan.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/grow.h>

#include "half.h"
#include "kernels.h"
#include "loop.h"
#include "shard.h"
#include "wlplan.h"

enum { TAG_ACT = 11, TAG_GRAD = 12, TAG_WTE = 13 };

/* A run of the local flat vector with one weight-decay rule and one norm owner. */
struct seg {
    size_t lo, hi;
    int decays, owner;
};

struct segs {
    struct seg *v;
    size_t n, cap;
    int oom;
};

static void seg_visit(void *user, enum mt_gpt_param p, size_t goff, size_t loff, size_t n,
                      int owner)
{
    (void)goff;
    struct segs *s = user;
    int dec = mt_gpt_param_decays(p);
    struct seg *last = s->n ? &s->v[s->n - 1] : NULL;
    if (last && last->hi == loff && last->decays == dec && last->owner == owner) {
        last->hi += n;
        return;
    }
    if (mt_grow(&s->v, &s->cap, s->n + 1, sizeof *s->v, 64)) {
        s->oom = 1;
        return;
    }
    s->v[s->n++] = (struct seg){loff, loff + n, dec, owner};
}

/* The bytes of every slab a rank books beside its shard (shard.c sizes that), in the
 * category each is booked under: the one sizing that run_setup allocates and
 * mt_dist_plan_rank / mt_dist_optim_plan predict. 0 = not held. */
struct slabs {
    size_t lo, hi;         /* flat range this rank's optimizer updates */
    size_t m, v;           /* adamw: each moment (optimizer) */
    size_t ostate, colacc; /* adamw8 / adafactor: state (optimizer), column sums (workspace) */
    size_t gbuf;           /* bf16 adamw8 / adafactor: one piece's decoded gradients
                            * (workspace) */
    size_t master;         /* bf16: fp32 master weights of [lo, hi) (optimizer) */
    size_t gshard;         /* fp32 ZeRO-2, 3: reduced gradients of [lo, hi) (gradients) */
    size_t gshard_bf;      /* bf16 ZeRO-2, 3: their bf16 slice (gradients) */
    size_t gwin_bf;        /* bf16 ZeRO-2, 3: the range being reduce-scattered (workspace) */
    size_t gbf;            /* bf16 DP, ZeRO-1: the bf16 gradients (gradients) */
    size_t wshard;         /* fp32 ZeRO-3: the weights of [lo, hi) (weights) */
    size_t wshard_bf;      /* bf16 ZeRO-3: the same in bf16 (weights) */
    size_t gstage_len;     /* bf16 ZeRO-3: elements of the gather stage (largest range) */
    size_t init_flat;      /* bf16 but ZeRO-3: the init vector (workspace; freed before the
                            * training loop, so in no training peak) */
    size_t batch;          /* the global batch, inputs and targets (data) */
    size_t wte_recv;       /* PP ends: the peer's tied-embedding gradient (workspace) */
};

/* Everything one rank holds while training. */
struct run {
    struct slabs z; /* the bytes of the slabs below */
    const struct mt_dist_job *job;
    struct mt_dist *d;
    struct mt_shard_spec spec;
    struct mt_shard *sh;
    struct segs segs;
    size_t lo, hi;                  /* flat range this rank's optimizer updates */
    float *m, *v;                   /* AdamW moments for [lo, hi) */
    struct mt_dopt dopt;            /* adamw8 / adafactor: the pieces of [lo, hi) */
    unsigned char *ostate;          /* adamw8 / adafactor: their state (optimizer) */
    float *colacc;                  /* adafactor: column sums (workspace) */
    float *gbuf;                    /* bf16 adamw8 / adafactor: a piece's gradients (workspace) */
    float *gshard;                  /* ZeRO-2, 3: reduced gradients of [lo, hi) */
    float *wshard;                  /* ZeRO-3: the fp32 weights of [lo, hi) (weights) */
    int *gcounts, *gdispls;         /* ZeRO-3: one range's all-gather split */
    int *pcounts, *pdispls;         /* ZeRO-3 prefetch: the split of the gather in flight */
    MPI_Request preq;               /* ZeRO-3 prefetch: the gather in flight */
    uint16_t *wshard_bf;            /* bf16 ZeRO-3: the bf16 weights of [lo, hi) (weights) */
    uint16_t *gstage;               /* bf16 ZeRO-3: one range gathered in bf16 (workspace) */
    size_t gstage_len;              /* its elements: the largest range gathered */
    float *pend_dst;                /* bf16 ZeRO-3 prefetch: where the gather in flight is */
    size_t pend_n;                  /*   decoded to, and its elements */
    double gathered;                /* ZeRO-3: all-gather bytes sent (ring model) */
    float *master;                  /* bf16: fp32 master weights of [lo, hi) (optimizer) */
    uint16_t *gbf;                  /* bf16 DP, ZeRO-1: the gradients (n), reduced in place */
    uint16_t *gshard_bf, *gwin_bf;  /* bf16 ZeRO-2: reduced slice; the range being sent */
    int *counts, *displs, *rcounts; /* ZeRO: the flat split over ranks */
    int *batch;                     /* global inputs then targets, B*T each */
    MPI_Request *reqs;              /* DP overlap: one per bucket in flight */
    size_t nreq, pend_lo, pend_hi, bucket_floats;
    MPI_Request *fwd_req, dres_req; /* PP: activation sends per slot, last gradient send */
    float *logits;                  /* NULL, or where step 0's logits go (mt_dist_result) */
    float *wte_recv;                /* PP: the other end's tied-embedding gradient */
    uint64_t adam_step;
};

/* The shard rank `rank` of `n` holds for this job. */
static struct mt_shard_spec spec_for(const struct mt_dist_job *job, int n, int rank)
{
    struct mt_shard_spec s = mt_shard_spec_whole(&job->cfg, job->recipe.batch, job->recipe.seq);
    switch (job->strategy) {
    case MT_DIST_DP:
        s.B /= (size_t)n;
        break;
    case MT_DIST_ZERO:
        s.B /= (size_t)n;
        s.grad_window = job->zero_stage >= 2;
        s.gathered_weights = job->zero_stage == 3;
        s.prefetch = job->zero_stage == 3 && job->zero_prefetch;
        break;
    case MT_DIST_TP:
        s.tp = (size_t)n;
        s.tp_rank = (size_t)rank;
        break;
    case MT_DIST_PP: {
        size_t L = job->cfg.n_layer, base = L / (size_t)n, extra = L % (size_t)n;
        size_t r = (size_t)rank, M = job->micro_batches;
        s.l0 = r * base + (r < extra ? r : extra);
        s.l1 = s.l0 + base + (r < extra);
        s.embed = rank == 0;
        s.head = rank == n - 1;
        s.B /= M;
        s.slots = job->one_f_one_b ? ((size_t)(n - rank) < M ? (size_t)(n - rank) : M) : M;
        break;
    }
    }
    if (job->bf16) { /* fp32 gradients only for the layer in backward, bf16 at rest */
        s.grad_window = 1;
        s.bf16_weights = !s.gathered_weights; /* ZeRO-3: the bf16 slice is the run's */
    }
    return s;
}

/* The job's errors for n ranks. data = 0 (the plan) leaves out those about its training
 * split (the plan has none) and MPI's int element counts: the plan also says what the
 * same layout would hold for shapes beyond them (ZeRO's Fig. 1, 7.5B parameters), which
 * the run refuses. */
static int check_job(const struct mt_dist_job *job, int n, int data, char *err, size_t errlen)
{
    size_t B = job->recipe.batch, N = (size_t)n;
    const char *why = NULL;
    if (!B || !job->recipe.steps || !job->recipe.seq || job->recipe.seq > job->cfg.seq_len)
        why = "batch, steps and seq must be positive and seq <= the model's seq_len";
    else if (data && job->data.n < job->recipe.seq + 1)
        why = "the training split is shorter than one window";
    else if ((job->strategy == MT_DIST_DP || job->strategy == MT_DIST_ZERO) && B % N)
        why = "the ranks must divide the batch";
    else if (job->strategy == MT_DIST_ZERO && (job->zero_stage < 1 || job->zero_stage > 3))
        why = "ZeRO stage must be 1, 2 or 3";
    else if (job->bf16 && job->strategy != MT_DIST_DP && job->strategy != MT_DIST_ZERO)
        why = "precision=bf16 is implemented for data_parallel and zero only";
    else if (job->strategy == MT_DIST_TP && job->cfg.n_head % N)
        why = "the ranks must divide the number of heads";
    else if (job->strategy == MT_DIST_TP && mt_gpt_kv_heads(&job->cfg) % N)
        why = "the ranks must divide the number of key/value heads (n_kv_head)";
    else if (job->strategy == MT_DIST_PP && N > job->cfg.n_layer)
        why = "pipeline stages (ranks) cannot outnumber the layers";
    else if (job->strategy == MT_DIST_PP && (!job->micro_batches || B % job->micro_batches))
        why = "micro_batches must divide the batch";
    else if (data && job->data.vocab > job->cfg.vocab)
        why = "the corpus's token ids need a vocab as large as the tokenizer's";
    else if (data && (mt_gpt_num_params(&job->cfg) > INT_MAX ||
                      B * job->recipe.seq * job->cfg.vocab > INT_MAX))
        why = "the model or batch is too large for MPI's int element counts";
    if (why)
        snprintf(err, errlen, "%s (batch %zu, ranks %d, heads %zu, layers %zu, micro-batches %zu)",
                 why, B, n, job->cfg.n_head, job->cfg.n_layer, job->micro_batches);
    return why ? -1 : 0;
}

static void run_free(struct run *r)
{
    struct mt_dist *d = r->d;
    const struct slabs *z = &r->z;
    mt_dist_free(d, MT_MEM_OPTIMIZER, r->m, z->m);
    mt_dist_free(d, MT_MEM_OPTIMIZER, r->v, z->v);
    mt_dist_free(d, MT_MEM_OPTIMIZER, r->ostate, z->ostate);
    mt_dist_free(d, MT_MEM_WORKSPACE, r->colacc, z->colacc);
    mt_dist_free(d, MT_MEM_WORKSPACE, r->gbuf, z->gbuf);
    mt_dopt_free(&r->dopt);
    mt_dist_free(d, MT_MEM_GRADIENTS, r->gshard, z->gshard);
    mt_dist_free(d, MT_MEM_WEIGHTS, r->wshard, z->wshard);
    mt_dist_free(d, MT_MEM_OPTIMIZER, r->master, z->master);
    mt_dist_free(d, MT_MEM_GRADIENTS, r->gbf, z->gbf);
    mt_dist_free(d, MT_MEM_GRADIENTS, r->gshard_bf, z->gshard_bf);
    mt_dist_free(d, MT_MEM_WORKSPACE, r->gwin_bf, z->gwin_bf);
    mt_dist_free(d, MT_MEM_WEIGHTS, r->wshard_bf, z->wshard_bf);
    mt_dist_free(d, MT_MEM_WORKSPACE, r->gstage, z->gstage_len * sizeof(uint16_t));
    mt_shard_free(r->sh, d); /* after the slabs sized by the shard */
    mt_dist_free(d, MT_MEM_DATA, r->batch, z->batch);
    mt_dist_free(d, MT_MEM_WORKSPACE, r->wte_recv, z->wte_recv);
    free(r->segs.v);
    free(r->counts);
    free(r->displs);
    free(r->rcounts);
    free(r->gcounts);
    free(r->gdispls);
    free(r->pcounts);
    free(r->pdispls);
    free(r->reqs);
    free(r->fwd_req);
}

/* The owners' pieces of flat range [lo, hi): counts[k] floats from rank k (its slice's
 * intersection with the range), at displs[k] from lo (NULL: not wanted). */
static void range_split(const struct run *r, size_t lo, size_t hi, int *counts, int *displs)
{
    for (int k = 0; k < r->d->nranks; k++) {
        size_t a = (size_t)r->displs[k], b = a + (size_t)r->counts[k];
        size_t x = a > lo ? a : lo, y = b < hi ? b : hi;
        counts[k] = y > x ? (int)(y - x) : 0;
        if (displs) displs[k] = y > x ? (int)(x - lo) : 0;
    }
}

/* ZeRO-3: the split of flat range [lo, hi) over its owners into counts/displs, and this
 * rank's piece copied into dst (fp32) or, in bf16, into the gather stage (the in-place
 * all-gather's own contribution). */
static void zero3_own(struct run *r, size_t lo, size_t hi, float *dst, int *counts, int *displs)
{
    range_split(r, lo, hi, counts, displs);
    int me = r->d->rank;
    size_t at = (size_t)displs[me], src = lo + at - r->lo, n = (size_t)counts[me];
    if (n && r->wshard_bf)
        memcpy(r->gstage + at, r->wshard_bf + src, n * sizeof(uint16_t));
    else if (n)
        memcpy(dst + at, r->wshard + src, n * sizeof(float));
}

/* ZeRO-3 (the shard's load callback): the weights of flat range [lo, hi) gathered from
 * their owners into dst (bf16: gathered into the stage, 2 bytes an element, then
 * decoded into dst). */
static void zero3_load(void *user, size_t lo, size_t hi, float *dst)
{
    struct run *r = user;
    double before = r->d->bytes_sent;
    zero3_own(r, lo, hi, dst, r->gcounts, r->gdispls);
    if (r->wshard_bf) {
        mt_dist_allgather_u16(r->d, r->gstage, r->gcounts, r->gdispls);
        mt_half_unpack(MT_PREC_BF16, dst, r->gstage, hi - lo);
    } else {
        mt_dist_allgather(r->d, dst, r->gcounts, r->gdispls);
    }
    r->gathered += r->d->bytes_sent - before;
}

/* ZeRO-3 prefetch (load_start / load_finish): the same gather, non-blocking (bf16: the
 * decode waits for the finish). */
static void zero3_start(void *user, size_t lo, size_t hi, float *dst)
{
    struct run *r = user;
    double before = r->d->bytes_sent;
    zero3_own(r, lo, hi, dst, r->pcounts, r->pdispls);
    if (r->wshard_bf)
        mt_dist_iallgather_u16(r->d, r->gstage, r->pcounts, r->pdispls, &r->preq);
    else
        mt_dist_iallgather(r->d, dst, r->pcounts, r->pdispls, &r->preq);
    r->pend_dst = dst;
    r->pend_n = hi - lo;
    r->gathered += r->d->bytes_sent - before;
}

static void zero3_finish(void *user)
{
    struct run *r = user;
    mt_dist_wait(r->d, &r->preq);
    if (r->wshard_bf) mt_half_unpack(MT_PREC_BF16, r->pend_dst, r->gstage, r->pend_n);
}

/* This rank's flat range [*lo, *hi): the whole vector, or (ZeRO) its slice of the split
 * over the ranks (balanced, or on 8-bit blocks / Adafactor units) written to counts and
 * displs (nranks ints each). Returns 0 or -1 with a message. */
static int rank_range(const struct mt_dist_job *job, const struct mt_shard_spec *spec, int nranks,
                      int rank, size_t *counts, size_t *displs, size_t *lo, size_t *hi, char *err,
                      size_t errlen)
{
    *lo = 0;
    *hi = mt_shard_num_params(spec);
    if (job->strategy != MT_DIST_ZERO) return 0;
    if (mt_dopt_split(spec, job->optimizer, nranks, counts, displs, err, errlen)) return -1;
    *lo = displs[rank];
    *hi = *lo + counts[rank];
    return 0;
}

/* The slabs (struct slabs) of a rank of `nranks` holding spec, updating [lo, hi) with the
 * optimizer layout o (adamw8 / adafactor; ignored for adamw). Pure. */
static void slabs_for(const struct mt_dist_job *job, int nranks, const struct mt_shard_spec *spec,
                      size_t lo, size_t hi, const struct mt_dopt *o, struct slabs *z)
{
    struct mt_shard_sizes sz;
    mt_shard_sizes(spec, &sz);
    size_t span = hi - lo, n = sz.n;
    int zero = job->strategy == MT_DIST_ZERO, zero3 = zero && job->zero_stage == 3;
    memset(z, 0, sizeof *z);
    z->lo = lo;
    z->hi = hi;
    if (job->optimizer == MT_OPTIM_ADAMW) {
        z->m = z->v = span * sizeof(float);
    } else {
        z->ostate = o->state_bytes;
        z->colacc = o->scratch_bytes;
        z->gbuf = job->bf16 ? o->max_piece * sizeof(float) : 0;
    }
    if (job->bf16) { /* fp32 master of [lo, hi), bf16 weights and gradients */
        z->init_flat = zero3 ? 0 : n * sizeof(float);
        z->master = span * sizeof(float);
        if (zero && job->zero_stage >= 2) {
            z->gshard_bf = span * sizeof(uint16_t);
            z->gwin_bf = sz.grads_len * sizeof(uint16_t);
        } else {
            z->gbf = n * sizeof(uint16_t);
        }
    } else if (zero && job->zero_stage >= 2) {
        z->gshard = span * sizeof(float);
    }
    if (zero3 && job->bf16) { /* the slice in bf16; a range gathered in bf16 */
        size_t g = sz.layer_len > sz.layer_off ? sz.layer_len : sz.layer_off;
        z->gstage_len = n - sz.head_off > g ? n - sz.head_off : g;
        z->wshard_bf = span * sizeof(uint16_t);
    } else if (zero3) { /* only the owned slice of the weights; layers are gathered when used */
        z->wshard = span * sizeof(float);
    }
    z->batch = 2 * job->recipe.batch * job->recipe.seq * sizeof(int);
    if (job->strategy == MT_DIST_PP && nranks > 1 && (spec->embed || spec->head))
        z->wte_recv = job->cfg.vocab * job->cfg.n_embd * sizeof(float);
}

/* Adds the slabs z holds through the training loop to b[] per category (not init_flat). */
static void slabs_bytes(const struct slabs *z, size_t b[MT_MEM_CAT_COUNT])
{
    b[MT_MEM_OPTIMIZER] += z->m + z->v + z->ostate + z->master;
    b[MT_MEM_GRADIENTS] += z->gshard + z->gshard_bf + z->gbf;
    b[MT_MEM_WEIGHTS] += z->wshard + z->wshard_bf;
    b[MT_MEM_WORKSPACE] +=
        z->colacc + z->gbuf + z->gwin_bf + z->gstage_len * sizeof(uint16_t) + z->wte_recv;
    b[MT_MEM_DATA] += z->batch;
}

/* Allocates a rank's state; returns 0 or -1 with a message (this rank only). */
static int run_setup(struct run *r, char *err, size_t errlen)
{
    const struct mt_dist_job *job = r->job;
    struct mt_dist *d = r->d;
    size_t N = (size_t)d->nranks;
    r->spec = spec_for(job, d->nranks, d->rank);
    if (mt_shard_create(&r->sh, &r->spec, d, job->strategy == MT_DIST_TP ? d : NULL, err, errlen))
        return -1;
    size_t n = r->sh->n;
    int zero3 = job->strategy == MT_DIST_ZERO && job->zero_stage == 3;
    if (!job->bf16 && !zero3) mt_shard_init(r->sh, job->seed);
    mt_shard_map(&r->spec, seg_visit, &r->segs);
    r->counts = calloc(N, sizeof *r->counts);
    r->displs = calloc(N, sizeof *r->displs);
    r->rcounts = calloc(N, sizeof *r->rcounts);
    r->gcounts = calloc(N, sizeof *r->gcounts);
    r->gdispls = calloc(N, sizeof *r->gdispls);
    r->pcounts = calloc(N, sizeof *r->pcounts);
    r->pdispls = calloc(N, sizeof *r->pdispls);
    r->preq = MPI_REQUEST_NULL;
    r->reqs = calloc(job->cfg.n_layer + 2, sizeof *r->reqs);
    r->fwd_req = calloc(r->spec.slots, sizeof *r->fwd_req);
    if (r->segs.oom || !r->counts || !r->displs || !r->rcounts || !r->gcounts || !r->gdispls ||
        !r->pcounts || !r->pdispls || !r->reqs || !r->fwd_req) {
        snprintf(err, errlen, "out of memory for the run tables");
        return -1;
    }
    for (size_t i = 0; i < r->spec.slots; i++)
        r->fwd_req[i] = MPI_REQUEST_NULL;
    r->dres_req = MPI_REQUEST_NULL;
    size_t *counts = calloc(N, sizeof *counts), *displs = calloc(N, sizeof *displs);
    int rc = !counts || !displs ? -1
                                : rank_range(job, &r->spec, d->nranks, d->rank, counts, displs,
                                             &r->lo, &r->hi, err, errlen);
    for (size_t k = 0; rc == 0 && k < N; k++) { /* check_job: they fit MPI's ints */
        r->counts[k] = (int)counts[k];
        r->displs[k] = (int)displs[k];
    }
    if (!counts || !displs) snprintf(err, errlen, "out of memory for the split");
    free(counts);
    free(displs);
    if (rc) return -1;
    if (job->optimizer != MT_OPTIM_ADAMW &&
        mt_dopt_layout(&r->dopt, &r->spec, job->optimizer, r->lo, r->hi, err, errlen))
        return -1;
    struct slabs *z = &r->z;
    slabs_for(job, d->nranks, &r->spec, r->lo, r->hi, &r->dopt, z);
    size_t span = r->hi - r->lo;
    r->m = mt_dist_alloc(d, MT_MEM_OPTIMIZER, z->m, "adam_m");
    r->v = mt_dist_alloc(d, MT_MEM_OPTIMIZER, z->v, "adam_v");
    r->ostate =
        mt_dist_alloc(d, MT_MEM_OPTIMIZER, z->ostate,
                      job->optimizer == MT_OPTIM_ADAMW8 ? "adamw8_state" : "adafactor_state");
    r->colacc = mt_dist_alloc(d, MT_MEM_WORKSPACE, z->colacc, "adafactor_colsum");
    r->gbuf = mt_dist_alloc(d, MT_MEM_WORKSPACE, z->gbuf, "optim_grad_bf16_decoded");
    float *flat = mt_dist_alloc(d, MT_MEM_WORKSPACE, z->init_flat, "init_flat");
    r->master = mt_dist_alloc(d, MT_MEM_OPTIMIZER, z->master, "master_weights");
    r->gshard_bf = mt_dist_alloc(d, MT_MEM_GRADIENTS, z->gshard_bf, "grad_shard_bf16");
    r->gwin_bf = mt_dist_alloc(d, MT_MEM_WORKSPACE, z->gwin_bf, "grad_window_bf16");
    r->gbf = mt_dist_alloc(d, MT_MEM_GRADIENTS, z->gbf, "grads_bf16");
    r->gshard = mt_dist_alloc(d, MT_MEM_GRADIENTS, z->gshard, "grad_shard");
    r->wshard_bf = mt_dist_alloc(d, MT_MEM_WEIGHTS, z->wshard_bf, "weight_shard_bf16");
    r->gstage_len = z->gstage_len;
    r->gstage =
        mt_dist_alloc(d, MT_MEM_WORKSPACE, z->gstage_len * sizeof(uint16_t), "gather_stage_bf16");
    r->wshard = mt_dist_alloc(d, MT_MEM_WEIGHTS, z->wshard, "weight_shard");
    r->batch = mt_dist_alloc(d, MT_MEM_DATA, z->batch, "batch");
    r->wte_recv = mt_dist_alloc(d, MT_MEM_WORKSPACE, z->wte_recv, "wte_grad_peer");
    int fail = (z->m && !r->m) || (z->v && !r->v) || (z->ostate && !r->ostate) ||
               (z->colacc && !r->colacc) || (z->gbuf && !r->gbuf) || (z->init_flat && !flat) ||
               (z->master && !r->master) || (z->gshard_bf && !r->gshard_bf) ||
               (z->gwin_bf && !r->gwin_bf) || (z->gbf && !r->gbf) || (z->gshard && !r->gshard) ||
               (z->wshard_bf && !r->wshard_bf) || (z->gstage_len && !r->gstage) ||
               (z->wshard && !r->wshard) || !r->batch || (z->wte_recv && !r->wte_recv);
    if (!fail && job->bf16 && zero3) { /* never the whole vector: the slice's master, its bf16 */
        mt_shard_init_range(&r->spec, r->master, r->lo, r->hi, job->seed);
        mt_half_pack(MT_PREC_BF16, r->wshard_bf, r->master, span);
    } else if (!fail && job->bf16) {
        mt_shard_init_flat(&r->spec, flat, job->seed);
        memcpy(r->master, flat + r->lo, span * sizeof(float));
        mt_half_pack(MT_PREC_BF16, r->sh->wbf, flat, n);
    } else if (!fail && zero3) {
        mt_shard_init_range(&r->spec, r->wshard, r->lo, r->hi, job->seed);
    }
    mt_dist_free(d, MT_MEM_WORKSPACE, flat, z->init_flat);
    if (zero3) {
        r->sh->load = zero3_load;
        r->sh->load_start = zero3_start;
        r->sh->load_finish = zero3_finish;
        r->sh->load_user = r;
    }
    r->bucket_floats = (size_t)(job->bucket_mb * 1048576.0 / sizeof(float));
    if (fail) {
        snprintf(err, errlen, "out of memory for the optimizer state or batch");
        return -1;
    }
    return 0;
}

/* The slabs of rank `rank` for job, as run_setup sizes them, with its shard's spec. */
static int plan_slabs(const struct mt_dist_job *job, int nranks, int rank,
                      struct mt_shard_spec *spec, struct slabs *z, char *err, size_t errlen)
{
    if (check_job(job, nranks, 0, err, errlen)) return -1;
    *spec = spec_for(job, nranks, rank);
    if (mt_shard_check(spec, 1, err, errlen)) return -1;
    size_t N = (size_t)nranks, lo, hi;
    size_t *counts = calloc(N, sizeof *counts), *displs = calloc(N, sizeof *displs);
    if (!counts || !displs) {
        free(counts);
        free(displs);
        snprintf(err, errlen, "out of memory for the split");
        return -1;
    }
    int rc = rank_range(job, spec, nranks, rank, counts, displs, &lo, &hi, err, errlen);
    free(counts);
    free(displs);
    if (rc) return -1;
    struct mt_dopt o = {0};
    if (job->optimizer != MT_OPTIM_ADAMW &&
        mt_dopt_plan(&o, spec, job->optimizer, lo, hi, err, errlen))
        return -1;
    slabs_for(job, nranks, spec, lo, hi, &o, z);
    mt_dopt_free(&o);
    return 0;
}

int mt_dist_optim_plan(const struct mt_dist_job *job, int nranks, int rank,
                       struct mt_dist_optim_plan *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    struct mt_shard_spec spec;
    struct slabs z;
    if (plan_slabs(job, nranks, rank, &spec, &z, err, errlen)) return -1;
    p->lo = z.lo;
    p->hi = z.hi;
    p->state_bytes = z.m + z.v + z.ostate + z.master;
    p->scratch_bytes = z.colacc;
    return 0;
}

int mt_dist_plan_rank(const struct mt_dist_job *job, int nranks, int rank,
                      size_t bytes[MT_MEM_CAT_COUNT], char *err, size_t errlen)
{
    struct mt_shard_spec spec;
    struct slabs z;
    if (plan_slabs(job, nranks, rank, &spec, &z, err, errlen)) return -1;
    mt_shard_bytes(&spec, bytes);
    slabs_bytes(&z, bytes);
    return 0;
}

/* ---------------------------------------------------------------- gradient hand-off */

/* Starts the pending bucket's all-reduce. Open MPI has no progress thread here, so the
 * buckets already in flight only advance while we are inside MPI: test them too. */
static void start_bucket(struct run *r)
{
    if (r->pend_hi > r->pend_lo && r->gbf)
        mt_dist_iallreduce_bf16(r->d, r->gbf + r->pend_lo, r->pend_hi - r->pend_lo,
                                &r->reqs[r->nreq++]);
    else if (r->pend_hi > r->pend_lo)
        mt_dist_iallreduce(r->d, r->sh->grads + r->pend_lo, r->pend_hi - r->pend_lo,
                           &r->reqs[r->nreq++]);
    r->pend_lo = r->pend_hi = 0;
    mt_dist_test(r->d, r->reqs, r->nreq);
}

/* DP overlap: ranges arrive contiguous and descending; grow the pending bucket down and
 * start its all-reduce once it holds bucket_floats (or at the last range). */
static void dp_ready(void *user, size_t lo, size_t hi, float *g)
{
    (void)g;
    struct run *r = user;
    if (r->pend_hi == r->pend_lo) r->pend_hi = hi;
    r->pend_lo = lo;
    if (r->pend_hi - r->pend_lo >= r->bucket_floats || lo == 0) start_bucket(r);
}

/* bf16: the finished range's fp32 gradients (the window) go to bf16 storage, rounded to
 * nearest even; with overlap their bucket's all-reduce may start. */
static void bf16_ready(void *user, size_t lo, size_t hi, float *g)
{
    struct run *r = user;
    mt_half_pack(MT_PREC_BF16, r->gbf + lo, g, hi - lo);
    if (r->job->overlap) dp_ready(user, lo, hi, g);
}

/* ZeRO-2, 3: reduce-scatter the finished range straight into the owners' gradient shards. */
static void zero2_ready(void *user, size_t lo, size_t hi, float *g)
{
    struct run *r = user;
    struct mt_dist *d = r->d;
    range_split(r, lo, hi, r->rcounts, NULL);
    size_t off = lo > r->lo ? lo - r->lo : 0;
    off = off < r->hi - r->lo ? off : 0;
    if (r->gwin_bf) { /* bf16: round the range, then move 2 bytes per element */
        mt_half_pack(MT_PREC_BF16, r->gwin_bf, g, hi - lo);
        mt_dist_reduce_scatter_bf16(d, r->gwin_bf, r->gshard_bf + off, r->rcounts);
    } else {
        mt_dist_reduce_scatter(d, g, r->gshard + off, r->rcounts);
    }
}

/* What backward hands each finished gradient range to (NULL: nothing until the end). */
static mt_shard_ready_fn ready_for(const struct mt_dist_job *job)
{
    if (job->strategy == MT_DIST_ZERO && job->zero_stage >= 2) return zero2_ready;
    if (job->bf16) return bf16_ready;
    return job->strategy == MT_DIST_DP && job->overlap ? dp_ready : NULL;
}

static void dp_reduce(struct run *r)
{
    float *g = r->sh->grads;
    size_t n = r->sh->n;
    if (r->job->overlap) {
        for (size_t i = 0; i < r->nreq; i++)
            mt_dist_wait(r->d, &r->reqs[i]);
        r->nreq = 0;
        return;
    }
    size_t chunk = r->bucket_floats ? r->bucket_floats : n;
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = off + chunk < n ? chunk : n - off;
        if (r->gbf)
            mt_dist_allreduce_bf16(r->d, r->gbf + off, len);
        else
            mt_dist_allreduce(r->d, g + off, len);
    }
}

/* ---------------------------------------------------------------- pipeline schedule */

static void pp_forward(struct run *r, size_t m, double *loss_sum, float *logits, char *err,
                       size_t errlen, int *fail)
{
    struct mt_shard *sh = r->sh;
    struct mt_dist *d = r->d;
    size_t Bm = r->spec.B, T = r->spec.T, BT = Bm * T, C = r->job->cfg.n_embd;
    size_t slot = m % r->spec.slots, B = r->job->recipe.batch;
    const int *in = r->batch + m * BT, *tg = r->batch + B * T + m * BT;
    if (d->rank > 0) mt_dist_recv(d, mt_shard_input(sh, slot), BT * C, d->rank - 1, TAG_ACT);
    if (mt_shard_forward(sh, slot, in, tg, loss_sum,
                         logits ? logits + m * BT * r->job->cfg.vocab : NULL, err, errlen))
        *fail = 1;
    if (d->rank < d->nranks - 1)
        mt_dist_isend(d, mt_shard_output(sh, slot), BT * C, d->rank + 1, TAG_ACT,
                      &r->fwd_req[slot]);
}

static void pp_backward(struct run *r, size_t m, float dloss)
{
    struct mt_shard *sh = r->sh;
    struct mt_dist *d = r->d;
    size_t BT = r->spec.B * r->spec.T, C = r->job->cfg.n_embd, slot = m % r->spec.slots;
    mt_dist_wait(d, &r->dres_req); /* the gradient buffer is about to be overwritten */
    if (d->rank < d->nranks - 1) {
        mt_dist_recv(d, mt_shard_dres(sh), BT * C, d->rank + 1, TAG_GRAD);
        mt_dist_wait(d, &r->fwd_req[slot]); /* matched: the next stage already answered */
    }
    mt_shard_backward(sh, slot, dloss, NULL, NULL);
    if (d->rank > 0)
        mt_dist_isend(d, mt_shard_dres(sh), BT * C, d->rank - 1, TAG_GRAD, &r->dres_req);
}

/* GPipe: every forward, then every backward. 1F1B: stage s runs P-s-1 warm-up forwards,
 * then alternates one forward and one backward, then drains, so at most P-s micro-batches
 * are in flight (its activation slots). */
static int pp_step(struct run *r, double *loss_sum, float *logits, float dloss, char *err,
                   size_t errlen)
{
    size_t M = r->job->micro_batches, f = 0, b = 0;
    int fail = 0;
    size_t warm = r->job->one_f_one_b ? (size_t)(r->d->nranks - r->d->rank - 1) : M;
    if (warm > M) warm = M;
    while (f < warm)
        pp_forward(r, f++, loss_sum, logits, err, errlen, &fail);
    while (f < M) {
        pp_forward(r, f++, loss_sum, logits, err, errlen, &fail);
        pp_backward(r, b++, dloss);
    }
    while (b < M)
        pp_backward(r, b++, dloss);
    mt_dist_wait(r->d, &r->dres_req);
    for (size_t i = 0; i < r->spec.slots; i++)
        mt_dist_wait(r->d, &r->fwd_req[i]);
    /* the tied embedding lives on the first and the last stage: sum its two gradients */
    if (r->wte_recv) {
        size_t n = r->job->cfg.vocab * r->job->cfg.n_embd;
        int peer = r->spec.embed ? r->d->nranks - 1 : 0;
        mt_dist_sendrecv(r->d, r->sh->gwte, r->wte_recv, n, peer, TAG_WTE);
        for (size_t i = 0; i < n; i++)
            r->sh->gwte[i] += r->wte_recv[i];
    }
    return fail ? -1 : 0;
}

/* ---------------------------------------------------------------- optimizer */

enum { BF16_CHUNK = 2048 };

/* Gradients of [a, a + n) (inside this rank's range) as floats: g itself (fp32), or the
 * bf16 gradients gb decoded into buf (n <= BF16_CHUNK). */
static float *grad_run(const struct run *r, float *g, const uint16_t *gb, size_t a, size_t n,
                       float *buf)
{
    if (!gb) return g + (a - r->lo);
    mt_half_unpack(MT_PREC_BF16, buf, gb + (a - r->lo), n);
    return buf;
}

static void adamw_step(struct run *r, float *g, const uint16_t *gb, float lr, float norm);

/* Tensor parallel: the sums a split Adafactor matrix needs, over the ranks (doptim.h). */
static void tp_sumf(void *user, float *v, size_t n)
{
    mt_dist_allreduce(user, v, n);
}

static void tp_sumd(void *user, double *v)
{
    *v = mt_dist_sum(user, *v);
}

static void tp_maxf(void *user, float *v, size_t n)
{
    mt_dist_allreduce_max(user, v, n);
}

/* Global gradient norm, clipping and AdamW over this rank's range [lo, hi); g (fp32) or
 * gb (bf16, decoded in chunks; the update goes to the fp32 master weights, then rounded
 * into the bf16 weights) holds the gradients of that range. Replicated tensors count once
 * in the norm (their owner). */
static void optimizer_step(struct run *r, float *g, const uint16_t *gb, float lr)
{
    const struct mt_gpt_recipe *rc = &r->job->recipe;
    float buf[BF16_CHUNK];
    double ss = 0.0;
    for (size_t i = 0; i < r->segs.n; i++) {
        const struct seg *s = &r->segs.v[i];
        size_t a = s->lo > r->lo ? s->lo : r->lo, b = s->hi < r->hi ? s->hi : r->hi;
        if (!s->owner || a >= b) continue;
        ss += gb ? mt_half_sumsq(MT_PREC_BF16, gb + (a - r->lo), b - a, buf, BF16_CHUNK)
                 : mt_k_sumsq(g + (a - r->lo), b - a);
    }
    if (r->job->strategy != MT_DIST_DP) ss = mt_dist_sum(r->d, ss);
    float norm = mt_k_grad_norm(ss, 1.0f);
    r->adam_step++;
    if (r->job->optimizer != MT_OPTIM_ADAMW) { /* bf16: the master, a piece's grads decoded */
        float *w = gb ? r->master : r->sh->load ? r->wshard : r->sh->params + r->lo;
        struct mt_dopt_comm comm = {tp_sumf, tp_sumd, tp_maxf, r->d};
        mt_dopt_step(&r->dopt, r->ostate, r->colacc, w, gb ? NULL : g, gb, r->gbuf,
                     r->job->strategy == MT_DIST_TP ? &comm : NULL, rc, lr, norm, r->adam_step);
    } else {
        adamw_step(r, g, gb, lr, norm);
    }
    if (gb) /* the rounded weights: the whole bf16 vector's range, or ZeRO-3's bf16 slice */
        mt_half_pack(MT_PREC_BF16, r->wshard_bf ? r->wshard_bf : r->sh->wbf + r->lo, r->master,
                     r->hi - r->lo);
}

/* fp32 AdamW over this rank's range, per weight-decay segment (bf16: on the master, the
 * gradients decoded in chunks). */
static void adamw_step(struct run *r, float *g, const uint16_t *gb, float lr, float norm)
{
    const struct mt_gpt_recipe *rc = &r->job->recipe;
    float buf[BF16_CHUNK];
    for (size_t i = 0; i < r->segs.n; i++) {
        const struct seg *s = &r->segs.v[i];
        size_t a = s->lo > r->lo ? s->lo : r->lo, b = s->hi < r->hi ? s->hi : r->hi;
        if (a >= b) continue;
        struct mt_adamw_args args;
        mt_gpt_adamw_args(&args, rc, lr, s->decays, norm, 1.0f, r->adam_step);
        args.zero_grad = 0; /* the reduced gradients are the strategy's to clear */
        for (size_t x = a; x < b;) {
            size_t len = gb && b - x > BF16_CHUNK ? BF16_CHUNK : b - x, k = x - r->lo;
            float *p = gb ? r->master + k : r->sh->load ? r->wshard + k : r->sh->params + x;
            mt_k_adamw(p, grad_run(r, g, gb, x, len, buf), r->m + k, r->v + k, len, &args);
            x += len;
        }
    }
}

/* ---------------------------------------------------------------- the loop's hooks */

/* The engine of the one training loop (loop.h) for a rank: forward and backward of its
 * part of the global batch, the reduction across ranks, the update of its range. No loss
 * scaling (the jobs run fp32, or bf16 without it): the scale is always 1. */

static void d_zero_grad(void *self)
{
    struct run *r = self;
    mt_shard_zero_grad(r->sh);
}

/* DP, ZeRO: this rank's rows; TP: the whole batch; PP: the whole pipelined step (forwards
 * and backwards, so the engine has no backward hook). *loss: this rank's sum of token
 * losses (the reduce hook makes it the global mean). */
static int d_forward(void *self, const struct mt_loop_batch *b, double *loss, char *err,
                     size_t errlen)
{
    struct run *r = self;
    const struct mt_dist_job *job = r->job;
    float *logits = b->step == 0 ? r->logits : NULL;
    size_t rows = r->spec.B * b->T * (size_t)r->d->rank;
    int rc = 0;
    *loss = 0.0;
    if (b->step == 1 && job->crash_rank == r->d->rank) raise(SIGSEGV);
    switch (job->strategy) {
    case MT_DIST_DP:
    case MT_DIST_ZERO:
        rc = mt_shard_forward(r->sh, 0, b->in + rows, b->tg + rows, loss, NULL, err, errlen);
        break;
    case MT_DIST_TP:
        rc = mt_shard_forward(r->sh, 0, b->in, b->tg, loss, logits, err, errlen);
        break;
    case MT_DIST_PP:
        rc = pp_step(r, loss, logits, 1.0f / (float)b->tokens, err, errlen);
        break;
    }
    return rc;
}

static int d_backward(void *self, const struct mt_loop_batch *b, float scale, char *err,
                      size_t errlen)
{
    (void)err, (void)errlen;
    struct run *r = self;
    mt_shard_backward(r->sh, 0, scale / (float)b->tokens, ready_for(r->job), r);
    return 0;
}

/* Every rank agrees on failure; the global loss; the gradients summed (DP) or
 * reduce-scattered to their owners (ZeRO-1; ZeRO-2 did it during backward). */
static int d_reduce(void *self, size_t step, int failed, double *loss, char *err, size_t errlen)
{
    struct run *r = self;
    const struct mt_dist_job *job = r->job;
    struct mt_dist *d = r->d;
    if (mt_dist_any(d, failed)) {
        if (!failed) snprintf(err, errlen, "another rank failed in step %zu", step);
        return -1;
    }
    /* every rank of TP holds the whole loss; the others hold parts of it */
    *loss = (float)((job->strategy == MT_DIST_TP ? *loss : mt_dist_sum(d, *loss)) /
                    (double)(job->recipe.batch * job->recipe.seq));
    if (job->strategy == MT_DIST_DP)
        dp_reduce(r);
    else if (job->strategy == MT_DIST_ZERO && job->zero_stage == 1 && r->gbf)
        mt_dist_reduce_scatter_bf16(d, r->gbf, r->gbf, r->counts); /* slice lands at gbf[0] */
    else if (job->strategy == MT_DIST_ZERO && job->zero_stage == 1)
        mt_dist_reduce_scatter(d, r->sh->grads, r->sh->grads, r->counts); /* at grads[0] */
    return 0;
}

/* The optimizer on this rank's range, then (ZeRO) every rank's updated slice to all. */
static int d_update(void *self, const struct mt_gpt_recipe *rc, float lr, float scale)
{
    (void)rc, (void)scale;
    struct run *r = self;
    const struct mt_dist_job *job = r->job;
    float *g = job->strategy == MT_DIST_ZERO && job->zero_stage >= 2 ? r->gshard : r->sh->grads;
    optimizer_step(r, g, r->gshard_bf ? r->gshard_bf : r->gbf, lr);
    if (job->strategy == MT_DIST_ZERO && job->bf16 && job->zero_stage < 3)
        mt_dist_allgather_u16(r->d, r->sh->wbf, r->counts, r->displs);
    else if (job->strategy == MT_DIST_ZERO && job->zero_stage < 3) /* 3 gathers when used */
        mt_dist_allgather(r->d, r->sh->params, r->counts, r->displs);
    return 0;
}

/* ---------------------------------------------------------------- assembly */

struct assemble {
    const float *flat;
    float *full;
    size_t off[MT_P_COUNT]; /* where tensor p starts in the dense full vector */
};

static void assemble_run(void *user, enum mt_gpt_param p, size_t goff, size_t loff, size_t n,
                         int owner)
{
    (void)owner;
    struct assemble *a = user;
    memcpy(a->full + a->off[p] + goff, a->flat + loff, n * sizeof(float));
}

/* Gathers every rank's flat vector on rank 0 and writes the dense full parameters. */
static int assemble(struct run *r, float *full, char *err, size_t errlen)
{
    struct mt_dist *d = r->d;
    const struct mt_dist_job *job = r->job;
    int N = d->nranks, whole = job->strategy == MT_DIST_DP ||
                               (job->strategy == MT_DIST_ZERO && job->zero_stage < 3);
    struct assemble a = {0};
    for (int p = 1; p < MT_P_COUNT; p++) {
        size_t dims[3], len = 1, nd = mt_gpt_param_shape(&job->cfg, p - 1, dims);
        for (size_t i = 0; i < nd; i++)
            len *= dims[i];
        a.off[p] = a.off[p - 1] + len;
    }
    if (whole) { /* rank 0 holds every parameter already (bf16: the working weights) */
        float *dec = full && r->sh->wbf ? malloc(r->sh->n * sizeof *dec) : NULL;
        if (full && r->sh->wbf && !dec) {
            snprintf(err, errlen, "out of memory decoding the bf16 weights");
            return -1;
        }
        if (dec) mt_half_unpack(MT_PREC_BF16, dec, r->sh->wbf, r->sh->n);
        if (full) {
            a.flat = dec ? dec : r->sh->params;
            a.full = full;
            mt_shard_map(&r->spec, assemble_run, &a);
        }
        free(dec);
        return 0;
    }
    int *counts = calloc((size_t)N, sizeof *counts), *displs = calloc((size_t)N, sizeof *displs);
    size_t total = 0;
    int zero3 = job->strategy == MT_DIST_ZERO; /* one flat vector, one slice per rank */
    for (int k = 0; counts && displs && zero3 && k < N; k++) {
        counts[k] = r->counts[k];
        displs[k] = r->displs[k];
        total += (size_t)counts[k];
    }
    for (int k = 0; counts && displs && !zero3 && k < N; k++) {
        struct mt_shard_spec s = spec_for(job, N, k);
        counts[k] = (int)mt_shard_num_params(&s);
        displs[k] = (int)total;
        total += (size_t)counts[k];
    }
    float *all = d->rank == 0 && counts && displs ? malloc(total * sizeof *all) : NULL;
    int fail = mt_dist_any(d, !counts || !displs || (d->rank == 0 && !all));
    if (!fail) {
        if (zero3) { /* bf16: the slice decoded first */
            size_t span = (size_t)counts[d->rank];
            float *mine = r->wshard_bf ? malloc(span * sizeof *mine + 1) : r->wshard;
            fail = mt_dist_any(d, r->wshard_bf && !mine);
            if (fail) {
                snprintf(err, errlen, "out of memory decoding the bf16 weight slice");
                free(all);
                free(counts);
                free(displs);
                return -1;
            }
            if (r->wshard_bf) mt_half_unpack(MT_PREC_BF16, mine, r->wshard_bf, span);
            mt_dist_gatherv(d, mine, counts[d->rank], all, counts, displs, 0);
            if (mine != r->wshard) free(mine);
            a.flat = all;
            a.full = full;
            if (full) mt_shard_map(&r->spec, assemble_run, &a);
        } else {
            mt_dist_gatherv(d, r->sh->params, (int)r->sh->n, all, counts, displs, 0);
        }
        for (int k = 0; full && !zero3 && k < N; k++) {
            struct mt_shard_spec s = spec_for(job, N, k);
            a.flat = all + displs[k];
            a.full = full;
            mt_shard_map(&s, assemble_run, &a);
        }
    } else {
        snprintf(err, errlen, "out of memory assembling the parameters");
    }
    free(all);
    free(counts);
    free(displs);
    return fail ? -1 : 0;
}

/* ---------------------------------------------------------------- entry */

int mt_dist_train(struct mt_dist *d, const struct mt_dist_job *job, struct mt_dist_result *res,
                  char *err, size_t errlen)
{
    if (check_job(job, d->nranks, 1, err, errlen)) return -1;
    struct run r = {.job = job, .d = d};
    int rc = run_setup(&r, err, errlen);
    if (mt_dist_any(d, rc)) {
        if (!rc) snprintf(err, errlen, "another rank failed to set up");
        run_free(&r);
        return -1;
    }
    size_t N = (size_t)d->nranks, psi = mt_gpt_num_params(&job->cfg);
    res->flat_params = r.sh->n;
    struct mt_zero_bytes zb; /* K = 12 with fp32 master weights (the paper's mixed precision) */
    int stage = job->strategy == MT_DIST_ZERO ? job->zero_stage : 0;
    mt_zero_bytes((double)psi, (double)N, stage, job->bf16, &zb);
    res->zero_pred_optimizer = zb.optimizer;
    if (job->optimizer != MT_OPTIM_ADAMW) { /* K: one process's state bytes a parameter */
        struct mt_optim_plan op;
        mt_optim_plan(&job->cfg, job->optimizer, 0, &op);
        double master = job->bf16 ? 4.0 * (double)psi : 0.0; /* bf16: + the fp32 master */
        res->zero_pred_optimizer = ((double)op.state_bytes + master) / (stage ? (double)N : 1.0);
    }
    res->zero_pred_gradients = zb.gradients;
    res->zero_pred_weights = r.sh->load ? zb.weights : 0.0;
    res->grad_window_bytes = r.spec.grad_window ? r.sh->grads_len * sizeof(float) : 0;
    res->weight_window_bytes =
        r.spec.bf16_weights || r.spec.gathered_weights ? r.sh->params_len * sizeof(float) : 0;
    struct mt_loop_engine e = {.self = &r,
                               .forward = d_forward,
                               .backward = job->strategy == MT_DIST_PP ? NULL : d_backward,
                               .zero_grad = d_zero_grad,
                               .reduce = d_reduce,
                               .update = d_update};
    struct mt_loop_opts o = {.recipe = &job->recipe,
                             .batch_seed = mt_loop_batch_seed(job->seed),
                             .batch = r.batch,
                             .series = d->rank == 0 ? "train_loss" : NULL,
                             .losses = res->losses};
    struct mt_loop_result lr;
    r.logits = res->logits;
    mt_dist_reset_comm(d);
    mt_dist_reset_peaks(d);
    rc = mt_loop_run_tokens(job->ctx, &o, &e, NULL, &job->data, &lr, err, errlen);
    res->final_loss = (float)lr.final_loss;
    res->train_s = lr.seconds;
    res->comm_s = d->comm_s;
    res->compute_s = res->train_s - d->comm_s;
    res->bytes_sent = d->bytes_sent;
    res->bytes_recv = d->bytes_recv;
    res->comm_calls = d->calls;
    res->allgather_per_step = r.sh->load ? r.gathered / (double)job->recipe.steps : 0.0;
    memcpy(res->peak, d->peak, sizeof res->peak);
    res->peak_total = d->peak_total;
    res->tokens = job->recipe.steps * job->recipe.batch * job->recipe.seq;
    if (rc == 0) /* collective for TP and PP, whoever asked for the parameters */
        rc = assemble(&r, d->rank == 0 ? res->params : NULL, err, errlen);
    run_free(&r);
    return rc;
}
