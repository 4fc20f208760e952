/* tmodel.c — the training engine of tmodel.h: memory plan, slabs or per-step tensors,
 * forward/backward with checkpointing and 16-bit storage, AdamW.
 *
 * What it is for: one implementation of a training step that every knob of the
 * training-memory workloads goes through. Its blocks are the one block (block.h) with
 * this engine's hooks (16-bit rounding and packing, bf16 GEMMs), so fp32 with every = 1
 * is bit-identical to mt_gpt_train_step (tests/train checks it).
 * What it is not for: data, schedules, metrics (trainloop.c).
 */
#include "tmodel.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bf16mm.h"
#include "block.h"
#include "kernels.h"

#define ALIGN ((size_t)64)

static size_t rup(size_t n)
{
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- layout */

/* How many instances of an activation kind exist: once per step, once per kept block
 * (slot), once per block (the residual stream), or none (kinds of the model's own
 * layouts this engine does not use, e.g. its segment inputs). */
enum act_scope { UNUSED, ONCE, PER_SLOT, PER_LAYER };

static enum act_scope act_scope(int a)
{
    switch (a) {
    case MT_A_ENCODED:
    case MT_A_PROJ:
    case MT_A_LNF:
    case MT_A_LNF_MEAN:
    case MT_A_LNF_RSTD:
    case MT_A_LOGITS:
    case MT_A_LOSSES:
        return ONCE;
    case MT_A_RESIDUAL3:
        return PER_LAYER;
    case MT_A_LN1:
    case MT_A_LN1_MEAN:
    case MT_A_LN1_RSTD:
    case MT_A_QKV:
    case MT_A_ATTY:
    case MT_A_ATT:
    case MT_A_RESIDUAL2:
    case MT_A_LN2:
    case MT_A_LN2_MEAN:
    case MT_A_LN2_RSTD:
    case MT_A_FCH:
    case MT_A_FCH_GELU:
        return PER_SLOT;
    default:
        return UNUSED;
    }
}

static size_t scope_inst(enum act_scope s, size_t L, size_t n_slots)
{
    return s == ONCE ? 1 : s == PER_LAYER ? L : s == PER_SLOT ? n_slots : 0;
}

/* 1 when recompute=selective drops the attention probabilities (dense attention). */
static int drops_att(const struct mt_gpt_config *cfg, const struct mt_tmodel_opts *o)
{
    return o->selective && cfg->attention != MT_GPT_ATTN_FLASH;
}

/* act_scope under the options: selective recompute keeps one fp32 buffer of the
 * probabilities for all blocks (16-bit storage: none, its work buffer serves). */
static enum act_scope scope_of(const struct mt_gpt_config *cfg, const struct mt_tmodel_opts *o,
                               int a)
{
    if (a == MT_A_ATT && drops_att(cfg, o)) return o->prec == MT_PREC_FP32 ? ONCE : UNUSED;
    return act_scope(a);
}

/* Floats of one instance of activation kind a for B x T (the model's own layout). */
static size_t act_elems(const struct mt_gpt_config *cfg, size_t B, size_t T, int a)
{
    return mt_gpt_act_elems(cfg, B, T, (enum mt_gpt_act)a);
}

/* Bytes per element of kind a: statistics, logits, the final LayerNorm output, the
 * projection scratch and flash attention's log-sum-exp rows (16-bit would shift every
 * probability its backward recomputes) stay fp32; everything else is stored in the
 * training precision. */
static size_t act_es(const struct mt_gpt_config *cfg, enum mt_prec p, int a)
{
    if (a == MT_A_ATT && cfg->attention == MT_GPT_ATTN_FLASH) return sizeof(float);
    switch (a) {
    case MT_A_LN1_MEAN:
    case MT_A_LN1_RSTD:
    case MT_A_LN2_MEAN:
    case MT_A_LN2_RSTD:
    case MT_A_LNF:
    case MT_A_LNF_MEAN:
    case MT_A_LNF_RSTD:
    case MT_A_LOGITS:
    case MT_A_LOSSES:
    case MT_A_PROJ:
        return sizeof(float);
    default:
        return p == MT_PREC_FP32 ? sizeof(float) : sizeof(uint16_t);
    }
}

static size_t dact_elems(const struct mt_gpt_config *cfg, size_t B, size_t T, int d)
{
    return mt_gpt_dact_elems(cfg, B, T, (enum mt_gpt_dact)d);
}

static int is_layer_param(int p)
{
    return p >= MT_P_LN1W && p <= MT_P_FCPROJB;
}

static size_t param_elems(const struct mt_gpt_config *cfg, int p)
{
    return mt_gpt_param_elems(cfg, (enum mt_gpt_param)p); /* 0: absent (block options) */
}

/* Float offsets of the parameter tensors in the model's slab layout (64-byte aligned
 * tensors, as gpt.c lays them out); returns the padded total. */
static size_t param_layout(const struct mt_gpt_config *cfg, size_t off[MT_P_COUNT],
                           size_t len[MT_P_COUNT])
{
    size_t n = 0;
    for (int p = 0; p < MT_P_COUNT; p++) {
        off[p] = n;
        len[p] = param_elems(cfg, p);
        n += rup(len[p] * sizeof(float)) / sizeof(float);
    }
    return n;
}

/* Floats of the fp32 staging area of 16-bit weights or gradients: the parameters
 * outside the blocks plus one block's. */
static size_t stage_elems(const struct mt_gpt_config *cfg)
{
    size_t n = 0;
    for (int p = 0; p < MT_P_COUNT; p++)
        n += param_elems(cfg, p) / (is_layer_param(p) ? cfg->n_layer : 1);
    return n;
}

static size_t n_slots_of(size_t L, size_t every)
{
    return (L + every - 1) / every;
}

/* With 16-bit storage a block is computed in fp32 buffers shared by tensors that are
 * never needed at the same time, forward or backward: LN1 / ATTY / LN2 (each is consumed
 * by a GEMM before the next is produced, and backward reads them one by one), QKV / FCH /
 * FCH_GELU (the GELU runs in place; attention is done before the MLP starts), ATT, and
 * RESIDUAL2 (alive from the attention residual to the MLP residual). Statistics get
 * their own. */
enum work_buf {
    WORK_C,
    WORK_4C,
    WORK_ATT,
    WORK_RES2,
    WORK_STAT0,
    WORK_H = WORK_STAT0 + 4,
    WORK_COUNT
};

/* (WORK_4C holds the widest of QKV and the fc output; SwiGLU's output cannot be computed in
 * place, so it has its own, WORK_H, empty for GELU.) */
static int work_buffer(const struct mt_gpt_config *cfg, int a)
{
    if (a == MT_A_FCH_GELU && cfg->mlp == MT_GPT_MLP_SWIGLU) return WORK_H;
    switch (a) {
    case MT_A_LN1:
    case MT_A_ATTY:
    case MT_A_LN2:
        return WORK_C;
    case MT_A_QKV:
    case MT_A_FCH:
    case MT_A_FCH_GELU:
        return WORK_4C;
    case MT_A_ATT:
        return WORK_ATT;
    case MT_A_RESIDUAL2:
        return WORK_RES2;
    case MT_A_LN1_MEAN:
        return WORK_STAT0;
    case MT_A_LN1_RSTD:
        return WORK_STAT0 + 1;
    case MT_A_LN2_MEAN:
        return WORK_STAT0 + 2;
    case MT_A_LN2_RSTD:
        return WORK_STAT0 + 3;
    default:
        return -1;
    }
}

static size_t work_elems(const struct mt_gpt_config *cfg, size_t B, size_t T, int k)
{
    size_t BT = B * T, C = cfg->n_embd, F = mt_gpt_ffn(cfg), Q = C + 2 * mt_gpt_kv_dim(cfg);
    size_t FO = cfg->mlp == MT_GPT_MLP_SWIGLU ? 2 * F : F, rms = cfg->norm == MT_GPT_NORM_RMS;
    return k == WORK_4C                             ? BT * (FO > Q ? FO : Q)
           : k == WORK_ATT                          ? act_elems(cfg, B, T, MT_A_ATT)
           : k == WORK_H                            ? (cfg->mlp == MT_GPT_MLP_SWIGLU ? BT * F : 0)
           : k == WORK_STAT0 || k == WORK_STAT0 + 2 ? (rms ? 0 : BT) /* the means */
           : k > WORK_STAT0                         ? BT
                                                    : BT * C;
}

static int use_bf16mm(const struct mt_tmodel_opts *o)
{
    return o->prec == MT_PREC_BF16 && !o->emulate_bf16_gemm && mt_bf16mm_native();
}

/* bf16 elements of the bf16 GEMM scratch: forward, the packed input of a linear layer (at
 * most 4C wide); backward, the packed dout of a block's linear layer (at most 4C wide),
 * or for the LM head its packed dout (V wide) followed by its packed input (C wide). */
static size_t bf16_scratch_elems(const struct mt_gpt_config *cfg, size_t B, size_t T)
{
    size_t C = cfg->n_embd, F = mt_gpt_ffn(cfg), Q = C + 2 * mt_gpt_kv_dim(cfg);
    size_t FO = cfg->mlp == MT_GPT_MLP_SWIGLU ? 2 * F : F, head = cfg->vocab + C;
    size_t wide = FO > Q ? FO : Q; /* the widest linear input or output of a block */
    return B * T * (wide > head ? wide : head);
}

/* 1 when the optimizer is optim.h's rather than the in-RAM fp32 AdamW slabs. */
static int uses_optim(const struct mt_tmodel_opts *o)
{
    return o->optimizer != MT_OPTIM_ADAMW || o->offload;
}

int mt_tmodel_plan(const struct mt_gpt_config *cfg, const struct mt_tmodel_opts *o,
                   struct mt_tmodel_plan *plan, char *err, size_t errlen)
{
    memset(plan, 0, sizeof *plan);
    if (mt_gpt_config_check(cfg, err, errlen)) return -1;
    size_t L = cfg->n_layer, B = o->micro_batch, T = o->seq;
    if (!B || B > ((size_t)1 << 20) || !T || T > cfg->seq_len)
        return fail(err, errlen, "micro-batch shape B=%zu T=%zu invalid (T must be 1..%zu)", B, T,
                    cfg->seq_len);
    if (!o->every || o->every > L)
        return fail(err, errlen, "checkpoint interval every=%zu outside 1..%zu (n_layer)", o->every,
                    L);
    if (o->prec != MT_PREC_FP32 && o->prec != MT_PREC_BF16 && o->prec != MT_PREC_FP16)
        return fail(err, errlen, "unknown precision %d", (int)o->prec);
    if ((unsigned)o->optimizer > MT_OPTIM_ADAFACTOR)
        return fail(err, errlen, "unknown optimizer %d (adamw, adamw8, adafactor)",
                    (int)o->optimizer);
    size_t off[MT_P_COUNT], len[MT_P_COUNT], nf = param_layout(cfg, off, len);
    int half = o->prec != MT_PREC_FP32;
    size_t wes = half ? sizeof(uint16_t) : sizeof(float), *b = plan->bytes;
    plan->n_slots = n_slots_of(L, o->every);
    b[MT_MEM_WEIGHTS] = nf * wes;
    b[MT_MEM_GRADIENTS] = nf * wes;
    b[MT_MEM_OPTIMIZER] = half && o->master_weights ? nf * sizeof(float) : 0;
    plan->optim_state = 2 * nf * sizeof(float);
    if (uses_optim(o)) { /* optim.h: its RAM (state or offload buffers), its scratch */
        struct mt_optim_plan op;
        mt_optim_plan(cfg, o->optimizer, o->offload, &op);
        b[MT_MEM_OPTIMIZER] += op.ram_bytes;
        b[MT_MEM_WORKSPACE] += op.scratch_bytes;
        plan->optim_state = op.state_bytes;
    } else {
        b[MT_MEM_OPTIMIZER] += plan->optim_state;
    }
    for (int a = 0; a < MT_A_COUNT; a++) {
        enum act_scope s = scope_of(cfg, o, a);
        size_t inst = scope_inst(s, L, plan->n_slots);
        b[MT_MEM_ACTIVATIONS] += rup(inst * act_elems(cfg, B, T, a) * act_es(cfg, o->prec, a));
    }
    if (half) /* the fp32 buffers a block is computed in (see work_buffer) */
        for (int k = 0; k < WORK_COUNT; k++)
            b[MT_MEM_WORKSPACE] += rup(work_elems(cfg, B, T, k) * sizeof(float));
    for (int d = 0; d < MT_D_COUNT; d++)
        b[MT_MEM_ACT_GRADS] += rup(dact_elems(cfg, B, T, d) * sizeof(float));
    b[MT_MEM_WORKSPACE] += 2 * rup(B * T * sizeof(int)); /* inputs, targets */
    if (half) /* weight and gradient staging, the fp32 residual input */
        b[MT_MEM_WORKSPACE] +=
            2 * rup(stage_elems(cfg) * sizeof(float)) + rup(B * T * cfg->n_embd * sizeof(float));
    if (use_bf16mm(o)) /* the bf16 copies of GEMM operands */
        b[MT_MEM_WORKSPACE] += rup(bf16_scratch_elems(cfg, B, T) * sizeof(uint16_t));
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        plan->total += b[c];
    return 0;
}

/* ---------------------------------------------------------------- the engine */

struct mt_tmodel {
    struct mt_gpt_config cfg;
    struct mt_tmodel_opts o;
    struct mt_tmodel_plan plan;
    size_t L, C, V, NH, T, Bm, n_slots;
    size_t off[MT_P_COUNT], len[MT_P_COUNT], n_floats;
    int half;
    float *w32, *g32, *master, *opt; /* opt: AdamW m then v */
    struct mt_optim *optim;          /* instead of opt: optim.h's */
    int failed;                      /* an optimizer step failed: fail_msg */
    double recompute_t0;             /* start of a selective recomputation */
    char fail_msg[512];
    uint16_t *wh, *gh;
    struct mt_gpt view; /* a model struct over w32/g32/opt for mt_gpt_adamw_step */
    void *ws;           /* workspace slab */
    size_t ws_bytes;    /* its bytes: the plan's workspace less optim.h's scratch */
    int *inputs, *targets;
    float *stage_w, *stage_g, *sw[MT_P_COUNT], *sg[MT_P_COUNT], *work[MT_A_COUNT], *x;
    int nonlayer_staged;
    struct mt_bf16mm *mm; /* bf16 GEMMs (NULL: fp32 GEMMs) */
    uint16_t *xh;         /* bf16 copies of GEMM operands (bf16_scratch_elems) */
    void *act_slab, *dact_slab;
    void **actp[MT_A_COUNT]; /* instance pointers of each activation kind */
    float *dact[MT_D_COUNT];
    size_t fwd_B;
    int have_fwd;
    uint64_t adam_step;
    struct mt_tmodel_stats st;
};

static const char *const act_names[MT_A_COUNT] =
    {/* NULL: not used by the engine */
     "tact.encoded",  "tact.ln1",      "tact.ln1_mean",  "tact.ln1_rstd",  "tact.qkv",
     "tact.atty",     "tact.att",      "tact.residual2", "tact.ln2",       "tact.ln2_mean",
     "tact.ln2_rstd", "tact.fch",      "tact.fch_gelu",  "tact.residual3", "tact.proj",
     "tact.lnf",      "tact.lnf_mean", "tact.lnf_rstd",  "tact.logits",    "tact.losses"};

static void count_alloc(struct mt_tmodel *t, int cat, size_t bytes);

/* Allocations go through here: tagged with their category, counted. */
static void *t_alloc(struct mt_tmodel *t, int cat, size_t bytes, int slab)
{
    int prev = mt_memcat_set(cat);
    void *p = slab ? aligned_alloc(ALIGN, rup(bytes)) : malloc(bytes);
    mt_memcat_set(prev);
    if (!p) return NULL;
    count_alloc(t, cat, slab ? rup(bytes) : bytes);
    return p;
}

/* Counts bytes allocated in category cat (by t_alloc, or by optim.h for the engine). */
static void count_alloc(struct mt_tmodel *t, int cat, size_t bytes)
{
    struct mt_tmodel_stats *s = &t->st;
    s->alloc_calls++;
    s->live[cat] += bytes;
    s->live_total += bytes;
    if (s->live[cat] > s->peak[cat]) s->peak[cat] = s->live[cat];
    if (s->live_total > s->peak_total) s->peak_total = s->live_total;
}

static void t_free(struct mt_tmodel *t, int cat, void *p, size_t bytes, int slab)
{
    if (!p) return;
    free(p);
    if (slab) bytes = rup(bytes);
    t->st.free_calls++;
    t->st.live[cat] -= bytes;
    t->st.live_total -= bytes;
}

static size_t act_inst(const struct mt_tmodel *t, int a)
{
    return scope_inst(scope_of(&t->cfg, &t->o, a), t->L, t->n_slots);
}

static size_t act_bytes(const struct mt_tmodel *t, int a)
{
    return act_elems(&t->cfg, t->Bm, t->T, a) * act_es(&t->cfg, t->o.prec, a);
}

/* Per-step tensors in malloc mode: produced -> acquire, after the last use -> release.
 * Both are no-ops in pool mode. */
static int acquire(struct mt_tmodel *t, int a, size_t i)
{
    if (t->o.pool || t->actp[a][i]) return 0;
    t->actp[a][i] = t_alloc(t, MT_MEM_ACTIVATIONS, act_bytes(t, a), 0);
    return t->actp[a][i] ? 0 : -1;
}

static void release(struct mt_tmodel *t, int a, size_t i)
{
    if (t->o.pool) return;
    t_free(t, MT_MEM_ACTIVATIONS, t->actp[a][i], act_bytes(t, a), 0);
    t->actp[a][i] = NULL;
}

static int acquire_slot(struct mt_tmodel *t, size_t s)
{
    int rc = 0;
    for (int a = 0; a < MT_A_COUNT; a++)
        if (scope_of(&t->cfg, &t->o, a) == PER_SLOT) rc |= acquire(t, a, s);
    return rc;
}

static void release_slot(struct mt_tmodel *t, size_t s)
{
    for (int a = 0; a < MT_A_COUNT; a++)
        if (scope_of(&t->cfg, &t->o, a) == PER_SLOT) release(t, a, s);
}

static int acquire_dacts(struct mt_tmodel *t)
{
    if (t->o.pool) return 0;
    int rc = 0;
    for (int d = 0; d < MT_D_COUNT; d++) { /* flash attention's is empty: none */
        size_t bytes = dact_elems(&t->cfg, t->Bm, t->T, d) * sizeof(float);
        t->dact[d] = bytes ? t_alloc(t, MT_MEM_ACT_GRADS, bytes, 0) : NULL;
        rc |= bytes && !t->dact[d];
    }
    return rc ? -1 : 0;
}

static void release_dacts(struct mt_tmodel *t)
{
    if (t->o.pool) return;
    for (int d = 0; d < MT_D_COUNT; d++) {
        t_free(t, MT_MEM_ACT_GRADS, t->dact[d], dact_elems(&t->cfg, t->Bm, t->T, d) * sizeof(float),
               0);
        t->dact[d] = NULL;
    }
}

static void release_all(struct mt_tmodel *t)
{
    for (int a = 0; a < MT_A_COUNT; a++)
        for (size_t i = 0; t->actp[a] && i < act_inst(t, a); i++)
            release(t, a, i);
    release_dacts(t);
}

void mt_tmodel_free(struct mt_tmodel *t)
{
    if (!t) return;
    const size_t *b = t->plan.bytes;
    if (!t->o.pool) release_all(t);
    t_free(t, MT_MEM_WEIGHTS, t->half ? (void *)t->wh : (void *)t->w32, b[MT_MEM_WEIGHTS], 1);
    t_free(t, MT_MEM_GRADIENTS, t->half ? (void *)t->gh : (void *)t->g32, b[MT_MEM_GRADIENTS], 1);
    t_free(t, MT_MEM_OPTIMIZER, t->opt, 2 * t->n_floats * sizeof(float), 1);
    if (t->optim) {
        struct mt_optim_plan op;
        mt_optim_plan(&t->cfg, t->o.optimizer, t->o.offload, &op);
        t->st.live[MT_MEM_OPTIMIZER] -= op.ram_bytes;
        t->st.live[MT_MEM_WORKSPACE] -= op.scratch_bytes;
        t->st.live_total -= op.ram_bytes + op.scratch_bytes;
        mt_optim_free(t->optim);
    }
    t_free(t, MT_MEM_OPTIMIZER, t->master, t->n_floats * sizeof(float), 1);
    t_free(t, MT_MEM_WORKSPACE, t->ws, t->ws_bytes, 1);
    t_free(t, MT_MEM_ACTIVATIONS, t->act_slab, b[MT_MEM_ACTIVATIONS], 1);
    t_free(t, MT_MEM_ACT_GRADS, t->dact_slab, b[MT_MEM_ACT_GRADS], 1);
    for (int a = 0; a < MT_A_COUNT; a++)
        free(t->actp[a]);
    mt_bf16mm_free(t->mm);
    free(t);
}

/* Carves the pooled activation and activation-gradient slabs (kind-major, as gpt.c). */
static int alloc_pool(struct mt_tmodel *t)
{
    const size_t *b = t->plan.bytes;
    unsigned char *base = t_alloc(t, MT_MEM_ACTIVATIONS, b[MT_MEM_ACTIVATIONS], 1);
    t->act_slab = base;
    if (!base) return -1;
    memset(base, 0, b[MT_MEM_ACTIVATIONS]);
    for (int a = 0; a < MT_A_COUNT; a++) {
        size_t n = act_inst(t, a), one = act_bytes(t, a);
        if (!n) continue;
        mt_memcat_report(base, n * one, MT_MEM_ACTIVATIONS, act_names[a]);
        for (size_t i = 0; i < n; i++)
            t->actp[a][i] = base + i * one;
        base += rup(n * one);
    }
    unsigned char *d = t_alloc(t, MT_MEM_ACT_GRADS, b[MT_MEM_ACT_GRADS], 1);
    t->dact_slab = d;
    if (!d) return -1;
    memset(d, 0, b[MT_MEM_ACT_GRADS]);
    for (int k = 0; k < MT_D_COUNT; k++) {
        t->dact[k] = (float *)(void *)d;
        d += rup(dact_elems(&t->cfg, t->Bm, t->T, k) * sizeof(float));
    }
    return 0;
}

/* Carves the workspace slab: token ids, and for 16-bit storage the staging areas, the
 * fp32 block being computed and the fp32 residual input. */
static int alloc_workspace(struct mt_tmodel *t)
{
    size_t bytes = t->ws_bytes, BT = t->Bm * t->T;
    unsigned char *p = t_alloc(t, MT_MEM_WORKSPACE, bytes, 1);
    t->ws = p;
    if (!p) return -1;
    memset(p, 0, bytes);
    mt_memcat_report(p, bytes, MT_MEM_WORKSPACE, "tmodel.workspace");
    t->inputs = (int *)(void *)p;
    p += rup(BT * sizeof(int));
    t->targets = (int *)(void *)p;
    p += rup(BT * sizeof(int));
    if (!t->half) return 0;
    size_t ns = stage_elems(&t->cfg), so = 0;
    t->stage_w = (float *)(void *)p;
    p += rup(ns * sizeof(float));
    t->stage_g = (float *)(void *)p;
    p += rup(ns * sizeof(float));
    for (int k = 0; k < MT_P_COUNT; k++) { /* the same offsets in both staging areas */
        t->sw[k] = t->stage_w + so;
        t->sg[k] = t->stage_g + so;
        so += t->len[k] / (is_layer_param(k) ? t->L : 1);
    }
    float *wb[WORK_COUNT];
    for (int k = 0; k < WORK_COUNT; k++) {
        wb[k] = (float *)(void *)p;
        p += rup(work_elems(&t->cfg, t->Bm, t->T, k) * sizeof(float));
    }
    for (int a = 0; a < MT_A_COUNT; a++)
        t->work[a] = work_buffer(&t->cfg, a) < 0 ? NULL : wb[work_buffer(&t->cfg, a)];
    t->x = (float *)(void *)p;
    p += rup(BT * t->C * sizeof(float));
    if (use_bf16mm(&t->o)) t->xh = (uint16_t *)(void *)p;
    return 0;
}

/* Points a model struct at fp32 parameters `w` (and the engine's gradients and
 * optimizer state) so the model's own init and AdamW run on the engine's memory. */
static void set_view(struct mt_tmodel *t, float *w)
{
    struct mt_gpt *v = &t->view;
    memset(v, 0, sizeof *v);
    v->cfg = t->cfg;
    v->mode = MT_GPT_TRAIN;
    v->n_params = mt_gpt_num_params(&t->cfg);
    v->params = w;
    v->grads = t->g32;
    v->opt = t->opt;
    v->opt_m = t->opt;
    v->opt_v = t->opt ? t->opt + t->n_floats : NULL;
    v->slab_bytes[MT_MEM_WEIGHTS] = t->n_floats * sizeof(float);
    v->slab_bytes[MT_MEM_GRADIENTS] = t->g32 ? t->n_floats * sizeof(float) : 0;
    v->slab_bytes[MT_MEM_OPTIMIZER] = 2 * t->n_floats * sizeof(float);
    v->grads_zero = 1;
    v->last_loss = -1.0f;
    for (int p = 0; p < MT_P_COUNT; p++) {
        v->param[p] = t->len[p] ? w + t->off[p] : NULL; /* absent tensors: NULL */
        v->grad[p] = t->g32 && t->len[p] ? t->g32 + t->off[p] : NULL;
        v->param_len[p] = t->len[p];
    }
}

int mt_tmodel_create(struct mt_tmodel **out, const struct mt_gpt_config *cfg,
                     const struct mt_tmodel_opts *o, uint64_t seed, char *err, size_t errlen)
{
    *out = NULL;
    struct mt_tmodel *t = calloc(1, sizeof *t);
    if (!t) return fail(err, errlen, "out of memory for the training engine");
    if (mt_tmodel_plan(cfg, o, &t->plan, err, errlen)) {
        free(t);
        return -1;
    }
    t->cfg = *cfg;
    t->o = *o;
    t->L = cfg->n_layer, t->C = cfg->n_embd, t->V = cfg->vocab, t->NH = cfg->n_head;
    t->T = o->seq, t->Bm = o->micro_batch, t->n_slots = t->plan.n_slots;
    t->half = o->prec != MT_PREC_FP32;
    t->n_floats = param_layout(cfg, t->off, t->len);
    const size_t *b = t->plan.bytes, nf = t->n_floats;
    struct mt_optim_plan op = {0};
    if (uses_optim(o)) mt_optim_plan(cfg, o->optimizer, o->offload, &op);
    t->ws_bytes = b[MT_MEM_WORKSPACE] - op.scratch_bytes;
    int bad = 0;
    for (int a = 0; a < MT_A_COUNT; a++) {
        t->actp[a] = calloc(act_inst(t, a) + 1, sizeof(void *));
        bad |= !t->actp[a];
    }
    if (t->half) {
        t->wh = t_alloc(t, MT_MEM_WEIGHTS, b[MT_MEM_WEIGHTS], 1);
        t->gh = t_alloc(t, MT_MEM_GRADIENTS, b[MT_MEM_GRADIENTS], 1);
        bad |= !t->wh || !t->gh;
        if (o->master_weights) {
            t->master = t_alloc(t, MT_MEM_OPTIMIZER, nf * sizeof(float), 1);
            bad |= !t->master;
        }
    } else {
        t->w32 = t_alloc(t, MT_MEM_WEIGHTS, b[MT_MEM_WEIGHTS], 1);
        t->g32 = t_alloc(t, MT_MEM_GRADIENTS, b[MT_MEM_GRADIENTS], 1);
        bad |= !t->w32 || !t->g32;
    }
    if (uses_optim(o)) {
        if (mt_optim_create(&t->optim, cfg, o->optimizer, o->offload, o->scratch_dir, err,
                            errlen)) {
            mt_tmodel_free(t);
            return -1;
        }
        count_alloc(t, MT_MEM_OPTIMIZER, op.ram_bytes);
        count_alloc(t, MT_MEM_WORKSPACE, op.scratch_bytes);
        t->st.alloc_calls += 1 + (op.scratch_bytes > 0);
    } else {
        t->opt = t_alloc(t, MT_MEM_OPTIMIZER, 2 * nf * sizeof(float), 1);
        bad |= !t->opt;
    }
    bad = bad || alloc_workspace(t) || (o->pool && alloc_pool(t));
    if (!bad && use_bf16mm(o) && mt_bf16mm_create(&t->mm, err, errlen)) {
        mt_tmodel_free(t);
        return -1;
    }
    if (bad) {
        mt_tmodel_free(t);
        return fail(err, errlen, "out of memory allocating the training state (%zu bytes)",
                    t->plan.total);
    }
    if (t->opt) memset(t->opt, 0, 2 * nf * sizeof(float));
    if (t->half) {
        memset(t->gh, 0, b[MT_MEM_GRADIENTS]);
        for (int p = 0; p < MT_P_COUNT; p++)
            mt_memcat_report(t->wh + t->off[p], t->len[p] * sizeof(uint16_t), MT_MEM_WEIGHTS,
                             mt_gpt_param_name((enum mt_gpt_param)p));
        /* The seeded init needs fp32: into the master weights, or a temporary buffer
         * (category "other", freed before training) when there are none. */
        float *w = t->master;
        if (!w) {
            int prev = mt_memcat_set(MT_MEM_OTHER);
            w = calloc(nf, sizeof(float));
            mt_memcat_set(prev);
            if (!w) {
                mt_tmodel_free(t);
                return fail(err, errlen, "out of memory initializing the weights");
            }
        }
        set_view(t, w);
        mt_gpt_init(&t->view, seed);
        mt_half_pack(o->prec, t->wh, w, nf);
        if (w != t->master) free(w);
    } else {
        memset(t->w32, 0, b[MT_MEM_WEIGHTS]);
        memset(t->g32, 0, b[MT_MEM_GRADIENTS]);
        for (int p = 0; p < MT_P_COUNT; p++)
            mt_memcat_report(t->w32 + t->off[p], t->len[p] * sizeof(float), MT_MEM_WEIGHTS,
                             mt_gpt_param_name((enum mt_gpt_param)p));
        set_view(t, t->w32);
        mt_gpt_init(&t->view, seed);
    }
    *out = t;
    return 0;
}

const struct mt_tmodel_stats *mt_tmodel_stats(const struct mt_tmodel *t)
{
    return &t->st;
}

/* ---------------------------------------------------------------- weights per block */

static size_t per_layer(const struct mt_tmodel *t, int p)
{
    return is_layer_param(p) ? t->len[p] / t->L : t->len[p];
}

/* fp32 weights (w) and gradient accumulators (g) of block l and of the parameters
 * outside the blocks; for 16-bit storage the block's weights are unpacked into the
 * staging area first. */
static void block_params(struct mt_tmodel *t, size_t l, float *w[MT_P_COUNT], float *g[MT_P_COUNT])
{
    for (int p = 0; p < MT_P_COUNT; p++) {
        size_t o = t->off[p] + (is_layer_param(p) ? l * per_layer(t, p) : 0);
        if (!t->len[p]) { /* absent (block options) */
            w[p] = g[p] = NULL;
            continue;
        }
        if (!t->half) {
            w[p] = t->w32 + o;
            g[p] = t->g32 + o;
            continue;
        }
        w[p] = t->sw[p];
        g[p] = t->sg[p];
        if (is_layer_param(p) || !t->nonlayer_staged)
            mt_half_unpack(t->o.prec, t->sw[p], t->wh + o, per_layer(t, p));
    }
    t->nonlayer_staged = t->half;
}

/* Adds the staged fp32 gradients of block l (or of the parameters outside the blocks)
 * into the 16-bit gradients and clears the stage. */
static void flush_grads(struct mt_tmodel *t, size_t l, int layer)
{
    for (int p = 0; p < MT_P_COUNT; p++) {
        if (is_layer_param(p) != layer) continue;
        size_t n = per_layer(t, p), o = t->off[p] + (layer ? l * n : 0);
        mt_half_accumulate(t->o.prec, t->gh + o, t->sg[p], n, &t->st.grad_nonzero,
                           &t->st.grad_flushed);
        memset(t->sg[p], 0, n * sizeof(float));
    }
}

/* ---------------------------------------------------------------- forward */

static int kept(const struct mt_tmodel *t, size_t l)
{
    return (t->L - 1 - l) % t->o.every == 0;
}
static size_t slot_of(const struct mt_tmodel *t, size_t l)
{
    return t->n_slots - 1 - (t->L - 1 - l) / t->o.every;
}

static void *A(const struct mt_tmodel *t, int a, size_t i)
{
    return t->actp[a][i];
}
static float *F(const struct mt_tmodel *t, int a, size_t i)
{
    return t->actp[a][i];
}

/* The fp32 buffers block l computes into: its slot (fp32) or the work block (16-bit). */
static void block_bufs(const struct mt_tmodel *t, size_t l, float *b[MT_A_COUNT])
{
    int drop = drops_att(&t->cfg, &t->o); /* one ATT instance, shared by every block */
    for (int a = 0; a < MT_A_COUNT; a++)
        b[a] = act_scope(a) != PER_SLOT ? NULL
               : t->half                ? t->work[a]
               : a == MT_A_ATT && drop  ? F(t, a, 0)
                                        : F(t, a, slot_of(t, l));
}

#define NO_SLOT ((size_t)-1)

/* A block tensor was just computed into b[a]: round it to the storage precision and, with
 * 16-bit storage, store it in slot s (NO_SLOT: not kept). With fp32 storage b[a] is the
 * slot itself. */
static void produce(struct mt_tmodel *t, float *const b[MT_A_COUNT], int a, size_t s)
{
    size_t n = act_elems(&t->cfg, t->fwd_B, t->T, a);
    if (!t->half) return;
    if (a == MT_A_ATT && drops_att(&t->cfg, &t->o)) s = NO_SLOT; /* rounded, not kept */
    if (act_es(&t->cfg, t->o.prec, a) == sizeof(float)) {
        if (s != NO_SLOT) memcpy(A(t, a, s), b[a], n * sizeof(float));
        return;
    }
    mt_half_round(t->o.prec, b[a], n);
    if (s != NO_SLOT) mt_half_pack(t->o.prec, A(t, a, s), b[a], n);
}

/* The fp32 values of block tensor a kept in slot s, for backward: the slot itself (fp32,
 * and the 16-bit engine's statistics), or unpacked into the tensor's work buffer. */
static const float *use(struct mt_tmodel *t, float *const b[MT_A_COUNT], int a, size_t s)
{
    if (a == MT_A_ATT && drops_att(&t->cfg, &t->o)) return b[a]; /* just recomputed */
    if (!t->half || act_es(&t->cfg, t->o.prec, a) == sizeof(float)) return F(t, a, s);
    mt_half_unpack(t->o.prec, b[a], A(t, a, s), act_elems(&t->cfg, t->fwd_B, t->T, a));
    return b[a];
}

/* The 16-bit weight tensor p of block l (or outside the blocks). */
static const uint16_t *wh_of(const struct mt_tmodel *t, int p, size_t l)
{
    return t->wh + t->off[p] + (is_layer_param(p) ? l * per_layer(t, p) : 0);
}

/* out[N,OC] = in[N,C] @ W^T + b for parameter tensors pw/pb (pb < 0: no bias) of block
 * l: a oneDNN bf16 GEMM on the 16-bit weights when the engine has one (in is already
 * rounded to bf16, so packing it is exact), else the fp32 kernel on w. */
static void linear(struct mt_tmodel *t, size_t l, float *out, const float *in,
                   float *const w[MT_P_COUNT], int pw, int pb, size_t N, size_t C, size_t OC)
{
    const float *bias = pb < 0 ? NULL : w[pb];
    if (t->mm) {
        char err[128];
        mt_half_pack(MT_PREC_BF16, t->xh, in, N * C);
        if (mt_bf16mm_run(t->mm, out, t->xh, wh_of(t, pw, l), bias, N, C, OC, err, sizeof err) ==
            0) {
            t->st.bf16_gemms++;
            return;
        }
        t->st.bf16_fallbacks++;
    }
    mt_k_matmul_fwd(out, in, w[pw], bias, N, C, OC);
}

/* ---------------------------------------------------------------- the block */

/* linear_bwd below, for the one block's backward hook. */
static void linear_bwd(struct mt_tmodel *t, size_t l, float *dinp, float *const w[MT_P_COUNT],
                       float *const g[MT_P_COUNT], int pw, int pb, const float *dout,
                       float *const b[MT_A_COUNT], int a, size_t s, size_t N, size_t C, size_t OC);

/* Block l of this engine for the one block (block.h): its weights and gradient stage
 * (w, g), its fp32 buffers (b) and the slot s its stored tensors go to (NO_SLOT: not
 * kept). */
struct tblock {
    struct mt_tmodel *t;
    size_t l, s;
    struct mt_block_shape shape;
    float *w[MT_P_COUNT], *g[MT_P_COUNT], *b[MT_A_COUNT];
};

static int tb_linear(void *user, enum mt_linear which, const float *in, float *out, size_t rows)
{
    struct tblock *k = user;
    size_t ind, outd;
    int pw = (int)mt_block_linear_weight(which);
    mt_block_linear_dims(&k->shape, which, &ind, &outd);
    linear(k->t, k->l, out, in, k->w, pw, pw + 1, rows, ind, outd);
    return 0;
}

static int tb_linear_bwd(void *user, enum mt_linear which, const float *dout, float *din,
                         size_t rows)
{
    struct tblock *k = user;
    size_t ind, outd;
    int pw = (int)mt_block_linear_weight(which);
    mt_block_linear_dims(&k->shape, which, &ind, &outd);
    linear_bwd(k->t, k->l, din, k->w, k->g, pw, pw + 1, dout, k->b,
               (int)mt_block_linear_input(which), k->s, rows, ind, outd);
    return 0;
}

static void tb_produced(void *user, enum mt_gpt_act a)
{
    struct tblock *k = user;
    produce(k->t, k->b, (int)a, k->s);
}

static const float *tb_use(void *user, enum mt_gpt_act a)
{
    struct tblock *k = user;
    return use(k->t, k->b, (int)a, k->s);
}

/* Selective recompute of block k's attention core: timed as recomputation. */
static void tb_recomputing(void *user, int begin)
{
    struct tblock *k = user;
    struct mt_tmodel *t = k->t;
    if (t->o.region) t->o.region(t->o.region_user, "recompute", begin);
    if (begin)
        t->recompute_t0 = now_s();
    else
        t->st.recompute_s += now_s() - t->recompute_t0;
}

/* Block l of batch B in slot s: its weights staged (16-bit storage) and its buffers. */
static struct mt_block_ops tblock_at(struct tblock *k, struct mt_tmodel *t, size_t l, size_t B,
                                     size_t s)
{
    k->t = t;
    k->l = l;
    k->s = s;
    k->shape = mt_block_shape_of(&t->cfg, B, t->T, 1);
    block_params(t, l, k->w, k->g);
    block_bufs(t, l, k->b);
    return (struct mt_block_ops){.linear = tb_linear,
                                 .linear_bwd = tb_linear_bwd,
                                 .produced = tb_produced,
                                 .use = tb_use,
                                 .user = k,
                                 .recompute_attention = drops_att(&t->cfg, &t->o),
                                 .recomputing = tb_recomputing};
}

/* Block l on input x (B x T x C, fp32); out = the block output, or NULL when recomputing
 * (the output is already stored). Every stored tensor is rounded to the storage precision
 * as it is produced, and kept in slot s unless s is NO_SLOT. */
static void block_forward(struct mt_tmodel *t, size_t l, size_t B, const float *x, float *out,
                          size_t s)
{
    struct tblock k;
    struct mt_block_ops ops = tblock_at(&k, t, l, B, s);
    mt_block_forward(&k.shape, k.w, k.b, x, F(t, MT_A_PROJ, 0), out, &ops);
    if (out) mt_half_round(t->o.prec, out, B * t->T * t->C);
}

int mt_tmodel_forward(struct mt_tmodel *t, const int *inputs, const int *targets, size_t B,
                      float *mean_loss, char *err, size_t errlen)
{
    size_t C = t->C, V = t->V, T = t->T, L = t->L, BT = B * T;
    if (!B || B > t->Bm) return fail(err, errlen, "forward batch %zu outside 1..%zu", B, t->Bm);
    if (t->failed) return fail(err, errlen, "%s", t->fail_msg);
    if (t->have_fwd) return fail(err, errlen, "forward called twice without a backward");
    for (size_t i = 0; i < BT; i++)
        if (inputs[i] < 0 || (size_t)inputs[i] >= V || targets[i] < 0 || (size_t)targets[i] >= V)
            return fail(err, errlen, "token %d / target %d at %zu outside vocab %zu", inputs[i],
                        targets[i], i, V);
    memcpy(t->inputs, inputs, BT * sizeof *inputs);
    memcpy(t->targets, targets, BT * sizeof *targets);
    t->fwd_B = B;
    if (acquire(t, MT_A_ENCODED, 0) || acquire(t, MT_A_PROJ, 0) ||
        (scope_of(&t->cfg, &t->o, MT_A_ATT) == ONCE && acquire(t, MT_A_ATT, 0)))
        goto oom;
    float *w[MT_P_COUNT], *g[MT_P_COUNT];
    block_params(t, 0, w, g);
    float *x = t->half ? t->x : F(t, MT_A_ENCODED, 0);
    mt_k_encoder_fwd(x, t->inputs, w[MT_P_WTE], w[MT_P_WPE], B, T, C);
    if (t->half) {
        mt_half_round(t->o.prec, x, BT * C);
        mt_half_pack(t->o.prec, A(t, MT_A_ENCODED, 0), x, BT * C);
    }
    for (size_t l = 0; l < L; l++) {
        size_t s = slot_of(t, l);
        if (acquire(t, MT_A_RESIDUAL3, l) || ((!t->half || kept(t, l)) && acquire_slot(t, s)))
            goto oom;
        if (t->half) {
            float *out = F(t, MT_A_PROJ, 0); /* the residual add may write over proj */
            block_forward(t, l, B, x, out, kept(t, l) ? s : NO_SLOT);
            memcpy(x, out, BT * C * sizeof *x);
            mt_half_pack(t->o.prec, A(t, MT_A_RESIDUAL3, l), x, BT * C);
        } else {
            block_forward(t, l, B, x, F(t, MT_A_RESIDUAL3, l), s);
            x = F(t, MT_A_RESIDUAL3, l);
            if (!kept(t, l)) release_slot(t, s);
        }
    }
    if (acquire(t, MT_A_LNF, 0) || acquire(t, MT_A_LNF_MEAN, 0) || acquire(t, MT_A_LNF_RSTD, 0) ||
        acquire(t, MT_A_LOGITS, 0) || acquire(t, MT_A_LOSSES, 0))
        goto oom;
    float *lnf = F(t, MT_A_LNF, 0), *logits = F(t, MT_A_LOGITS, 0);
    mt_block_norm_fwd(t->cfg.norm, lnf, F(t, MT_A_LNF_MEAN, 0), F(t, MT_A_LNF_RSTD, 0), x,
                      w[MT_P_LNFW], w[MT_P_LNFB], BT, C);
    mt_half_round(t->o.prec, lnf, BT * C);
    linear(t, 0, logits, lnf, w, (int)mt_gpt_head_param(&t->cfg), -1, BT, C, V);
    double sum = mt_k_crossentropy_fwd(logits, F(t, MT_A_LOSSES, 0), t->targets, BT, V);
    if (mean_loss) *mean_loss = (float)(sum / (double)BT);
    t->have_fwd = 1;
    return 0;
oom:
    release_all(t);
    return fail(err, errlen, "out of memory for activations");
}

/* ---------------------------------------------------------------- backward */

/* Backward of linear() for block l, whose input was activation kind a in slot s (b: the
 * block's fp32 buffers): dinp[N,C] = dout[N,OC] @ W (overwritten), g[pw] += dout^T @ in,
 * g[pb] += column sums of dout (pb < 0: no bias). With bf16 GEMMs both products are
 * oneDNN bf16 matmuls with fp32 accumulation on bf16(dout) (packed into the scratch), the
 * 16-bit weights and the stored bf16 input in place (the LM head's fp32 input holds bf16
 * values: packed exactly); a product oneDNN refuses runs as an fp32 GEMM on the fp32
 * values instead. The bias gradient is always the fp32 column sum of dout. */
static void linear_bwd(struct mt_tmodel *t, size_t l, float *dinp, float *const w[MT_P_COUNT],
                       float *const g[MT_P_COUNT], int pw, int pb, const float *dout,
                       float *const b[MT_A_COUNT], int a, size_t s, size_t N, size_t C, size_t OC)
{
    if (!t->mm) {
        mt_k_matmul_bwd(dinp, g[pw], pb < 0 ? NULL : g[pb] /* NULL: bias=off */, dout,
                        use(t, b, a, s), w[pw], N, C, OC);
        return;
    }
    char err[128];
    uint16_t *dh = t->xh, *inh = A(t, a, s);
    mt_half_pack(MT_PREC_BF16, dh, dout, N * OC);
    if (act_es(&t->cfg, t->o.prec, a) != sizeof(uint16_t)) {
        inh = dh + N * OC;
        mt_half_pack(MT_PREC_BF16, inh, F(t, a, s), N * C);
    }
    struct mt_bf16mm_shape kd = {.M = N, .N = C, .K = OC};
    struct mt_bf16mm_shape kw = {.M = OC, .N = C, .K = N, .ta = 1, .accumulate = 1};
    if (mt_bf16mm_gemm(t->mm, &kd, dinp, dh, wh_of(t, pw, l), NULL, err, sizeof err) == 0) {
        t->st.bf16_gemms++;
    } else {
        t->st.bf16_fallbacks++;
        mt_k_matmul_bwd(dinp, NULL, NULL, dout, NULL, w[pw], N, C, OC);
    }
    if (mt_bf16mm_gemm(t->mm, &kw, g[pw], dh, inh, NULL, err, sizeof err) == 0) {
        t->st.bf16_gemms++;
    } else {
        t->st.bf16_fallbacks++;
        mt_k_matmul_bwd(NULL, g[pw], NULL, dout, use(t, b, a, s), NULL, N, C, OC);
    }
    if (pb >= 0 && g[pb]) mt_k_colsum_add(g[pb], dout, N, OC, OC);
}

int mt_tmodel_backward(struct mt_tmodel *t, float loss_scale, size_t norm_tokens, char *err,
                       size_t errlen)
{
    size_t C = t->C, V = t->V, T = t->T, L = t->L, B = t->fwd_B, BT = B * T;
    if (!t->have_fwd) return fail(err, errlen, "backward needs a forward first");
    t->have_fwd = 0;
    if (acquire_dacts(t)) {
        release_all(t);
        return fail(err, errlen, "out of memory for activation gradients");
    }
    float dloss = loss_scale / (float)(norm_tokens ? norm_tokens : BT);
    float *dres = t->dact[MT_D_RESIDUAL], *dln = t->dact[MT_D_LN];
    float *w[MT_P_COUNT], *g[MT_P_COUNT];
    block_params(t, L - 1, w, g);
    float *logits = F(t, MT_A_LOGITS, 0);
    mt_k_crossentropy_bwd(logits, t->targets, dloss, BT, V);
    linear_bwd(t, 0, dln, w, g, (int)mt_gpt_head_param(&t->cfg), -1, logits, NULL, MT_A_LNF, 0, BT,
               C, V);
    memset(dres, 0, BT * C * sizeof *dres);
    const float *last = F(t, MT_A_RESIDUAL3, L - 1);
    if (t->half) {
        mt_half_unpack(t->o.prec, t->x, A(t, MT_A_RESIDUAL3, L - 1), BT * C);
        last = t->x;
    }
    mt_block_norm_bwd(t->cfg.norm, dres, g[MT_P_LNFW], g[MT_P_LNFB], dln, last, w[MT_P_LNFW],
                      F(t, MT_A_LNF_MEAN, 0), F(t, MT_A_LNF_RSTD, 0), BT, C);
    static const int tail[] = {MT_A_LOGITS, MT_A_LOSSES, MT_A_LNF, MT_A_LNF_MEAN, MT_A_LNF_RSTD};
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
        release(t, tail[i], 0);
    for (size_t l = L; l-- > 0;) {
        size_t s = slot_of(t, l);
        const float *x = l ? F(t, MT_A_RESIDUAL3, l - 1) : F(t, MT_A_ENCODED, 0);
        if (t->half) {
            mt_half_unpack(t->o.prec, t->x, l ? A(t, MT_A_RESIDUAL3, l - 1) : A(t, MT_A_ENCODED, 0),
                           BT * C);
            x = t->x;
        }
        if (!kept(t, l)) { /* recompute into the group's slot (its top block is done) */
            if (acquire_slot(t, s)) {
                release_all(t);
                return fail(err, errlen, "out of memory recomputing block %zu", l);
            }
            if (t->o.region) t->o.region(t->o.region_user, "recompute", 1);
            double t0 = now_s();
            block_forward(t, l, B, x, NULL, s);
            t->st.recompute_s += now_s() - t0;
            t->st.recomputed_blocks++;
            if (t->o.region) t->o.region(t->o.region_user, "recompute", 0);
        }
        struct tblock k;
        struct mt_block_ops ops = tblock_at(&k, t, l, B, s);
        mt_block_backward(&k.shape, k.w, k.g, k.b, x, t->dact, &ops);
        if (t->half) flush_grads(t, l, 1);
        release_slot(t, s);
        release(t, MT_A_RESIDUAL3, l);
    }
    mt_k_encoder_bwd(g[MT_P_WTE], g[MT_P_WPE], dres, t->inputs, B, T, C);
    if (t->half) flush_grads(t, 0, 0);
    release(t, MT_A_ENCODED, 0);
    release(t, MT_A_PROJ, 0);
    if (scope_of(&t->cfg, &t->o, MT_A_ATT) == ONCE) release(t, MT_A_ATT, 0);
    release_dacts(t);
    return 0;
}

int mt_tmodel_forward_backward(struct mt_tmodel *t, const int *inputs, const int *targets, size_t B,
                               float loss_scale, size_t norm_tokens, float *mean_loss, char *err,
                               size_t errlen)
{
    if (mt_tmodel_forward(t, inputs, targets, B, mean_loss, err, errlen)) return -1;
    return mt_tmodel_backward(t, loss_scale, norm_tokens, err, errlen);
}

/* ---------------------------------------------------------------- optimizer */

int mt_tmodel_grads_nonfinite(const struct mt_tmodel *t)
{
    if (t->half) return mt_half_nonfinite(t->o.prec, t->gh, t->n_floats);
    int bad = 0;
    for (size_t i = 0; i < t->n_floats; i++)
        bad |= !isfinite(t->g32[i]);
    return bad;
}

void mt_tmodel_zero_grad(struct mt_tmodel *t)
{
    if (t->half)
        memset(t->gh, 0, t->n_floats * sizeof *t->gh);
    else
        memset(t->g32, 0, t->n_floats * sizeof *t->g32);
}

/* The step through optim.h, chunk by chunk (its chunks are whole units, which fit the
 * gradient stage); norm is the engine's. An I/O error is kept for mt_tmodel_failed. */
static void optim_step(struct mt_tmodel *t, const struct mt_gpt_recipe *r, float lr, float grad_div,
                       float norm)
{
    enum mt_prec p = t->o.prec;
    char *err = t->fail_msg;
    size_t errlen = sizeof t->fail_msg;
    t->adam_step++;
    int rc = mt_optim_begin(t->optim, err, errlen);
    for (size_t c = 0; !rc && c < mt_optim_n_chunks(t->optim); c++) {
        int q;
        size_t e0, k;
        struct mt_adamw_args a;
        mt_optim_chunk(t->optim, c, &q, &e0, &k);
        mt_gpt_adamw_args(&a, r, lr, mt_gpt_param_decays((enum mt_gpt_param)q), norm, grad_div,
                          t->adam_step);
        size_t o = t->off[q] + e0;
        float *w = t->half ? (t->master ? t->master + o : t->stage_w) : t->w32 + o;
        float *g = t->half ? t->stage_g : t->g32 + o;
        if (t->half) {
            mt_half_unpack(p, g, t->gh + o, k);
            if (!t->master) mt_half_unpack(p, w, t->wh + o, k);
        }
        rc = mt_optim_update(t->optim, c, w, g, &a, err, errlen);
        if (t->half) {
            mt_half_pack(p, t->wh + o, w, k);
            memset(t->gh + o, 0, k * sizeof *t->gh);
            memset(g, 0, k * sizeof *g);
        }
    }
    if (!rc) rc = mt_optim_end(t->optim, err, errlen);
    if (rc) t->failed = 1;
    t->nonlayer_staged = 0;
    mt_optim_io_stats(t->optim, &t->st.optim_io);
}

int mt_tmodel_failed(const struct mt_tmodel *t, char *err, size_t errlen)
{
    return t->failed ? fail(err, errlen, "%s", t->fail_msg) : 0;
}

float mt_tmodel_adamw(struct mt_tmodel *t, const struct mt_gpt_recipe *r, float lr, float grad_div)
{
    if (t->optim && !t->half) {
        float norm = mt_gpt_grad_norm(&t->view) / grad_div;
        optim_step(t, r, lr, grad_div, norm);
        return norm;
    }
    if (!t->half) {
        float n = mt_gpt_adamw_step(&t->view, r, lr, grad_div);
        t->adam_step = t->view.adam_step;
        return n;
    }
    /* 16-bit gradients: unpacked chunk by chunk into the gradient stage (fixed chunks,
     * so the norm's summation order is fixed too). */
    size_t chunk = stage_elems(&t->cfg);
    enum mt_prec p = t->o.prec;
    float norm = mt_k_grad_norm(mt_half_sumsq(p, t->gh, t->n_floats, t->stage_g, chunk), grad_div);
    if (t->optim) {
        optim_step(t, r, lr, grad_div, norm);
        return norm;
    }
    t->adam_step++;
    for (int q = 0; q < MT_P_COUNT; q++) {
        struct mt_adamw_args a;
        mt_gpt_adamw_args(&a, r, lr, mt_gpt_param_decays((enum mt_gpt_param)q), norm, grad_div,
                          t->adam_step);
        for (size_t i = 0; i < t->len[q]; i += chunk) {
            size_t k = t->len[q] - i < chunk ? t->len[q] - i : chunk, o = t->off[q] + i;
            float *w = t->master ? t->master + o : t->stage_w;
            mt_half_unpack(p, t->stage_g, t->gh + o, k);
            if (!t->master) mt_half_unpack(p, w, t->wh + o, k);
            mt_k_adamw(w, t->stage_g, t->opt + o, t->opt + t->n_floats + o, k, &a);
            mt_half_pack(p, t->wh + o, w, k);
            memset(t->gh + o, 0, k * sizeof *t->gh);
        }
    }
    memset(t->stage_g, 0, chunk * sizeof *t->stage_g); /* the stage is zero between uses */
    t->nonlayer_staged = 0;
    return norm;
}

void mt_tmodel_export(const struct mt_tmodel *t, float *params)
{
    if (t->half)
        mt_half_unpack(t->o.prec, params, t->wh, t->n_floats);
    else
        memcpy(params, t->w32, t->n_floats * sizeof(float));
}

void mt_tmodel_export_grads(const struct mt_tmodel *t, float *grads)
{
    if (t->half)
        mt_half_unpack(t->o.prec, grads, t->gh, t->n_floats);
    else
        memcpy(grads, t->g32, t->n_floats * sizeof(float));
}
