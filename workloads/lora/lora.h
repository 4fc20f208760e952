/* lora.h — low-rank adapters (LoRA) on the reference GPT's block linears, and QLoRA's
 * NF4-packed frozen base.
 *
 * What it is for: fine-tuning a trained model with its weights frozen. Each targeted
 * linear (q/k/v, attention projection, MLP in, MLP out) of every block gets adapters
 * A (rank x in, random init) and B (out x rank, zero init), and computes
 *   y = W x + b + (alpha / rank) B A x.
 * The model runs in MT_GPT_FROZEN mode (activations and activation gradients, no weight
 * gradients or optimizer state: those slabs do not exist); the adapters, their gradients
 * and their AdamW moments are this module's own allocations (categories weights,
 * gradients, optimizer). The forward adds the adapter term in the model's linear hook; the
 * backward hook computes din through the frozen W (fp32, or the NF4 rows decoded a tile of
 * MT_LORA_TILE rows at a time: never the whole matrix) plus the adapter path, and
 * accumulates dA and dB. mt_lora_engine is the one training loop's engine (loop.h) for it.
 * With `nf4` the base's block linears are packed by the quantize workload's qmodel (NF4
 * levels, one scale per group; `nf4_dq`: the scales double-quantized as QLoRA does, 8-bit
 * codes in blocks of 256 with an fp32 absmax each and the tensor's mean, qformat.h) and
 * the forward runs through its packed kernels (with nf4_dq each GEMM first decodes its
 * layer's scales into a workspace buffer of the largest layer's scales).
 * Merge and unmerge fold (alpha / rank) B A into W and back (fp32 base only).
 * What it is not for: the LM head / embedding (frozen, never adapted), or the harness
 * (lora_plugin.c reports).
 *
 * Thread safety: like struct mt_gpt — one thread drives a model and its adapters.
 */
#ifndef MT_LORA_H
#define MT_LORA_H

#include <stddef.h>
#include <stdint.h>

#include <memtrade/memcat.h>

#include "gpt.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MT_LORA_TILE 64 /* rows of an NF4 weight decoded at a time in backward */

struct mt_lora_opts {
    size_t rank;      /* r >= 1; at most min(in, out) of every targeted matrix */
    float alpha;      /* the adapter term is scaled by alpha / rank */
    unsigned targets; /* bit (1u << MT_LIN_x) per adapted linear (QKV .. FCPROJ) */
    int nf4;          /* QLoRA: the frozen base's block linears packed NF4 */
    size_t nf4_group; /* columns per NF4 scale (32, 64, 128) */
    int nf4_dq;       /* nf4: double-quantized scales (QLoRA) */
    uint64_t seed;    /* A's initialization */
    size_t max_rows;  /* most rows a linear sees (training B*T, evaluation B*T) */
};

/* Parses a comma-separated list of qkv, proj, fc, fcproj (or "all") into a target mask.
 * Returns 0, or -1 with a message naming the bad item and the valid ones. */
int mt_lora_targets_parse(const char *list, unsigned *mask, char *err, size_t errlen);

/* The exact bytes of a LoRA fine-tuning run, per memory category (index enum mt_mem_cat)
 * and by part. */
struct mt_lora_plan {
    size_t bytes[MT_MEM_CAT_COUNT];
    size_t base_weights;    /* the frozen base as stored: fp32 slab, or slim slab + NF4 */
    size_t nf4_bytes;       /* of it, the packed linears (0 without nf4) */
    size_t adapter_weights; /* A and B of every target, fp32 */
    size_t adapter_grads;   /* the same again */
    size_t adapter_opt;     /* AdamW m and v: twice that */
    size_t activations;     /* the frozen model's activations and activation gradients */
    size_t workspace;       /* the model's workspace, the adapters' scratch, the NF4 tile,
                             * nf4_dq: one layer's decoded scales */
    size_t data;            /* the batch in flight (inputs and targets) */
    size_t trainable;       /* adapter parameters */
};

/* Fills *p for configuration cfg, options o, training batch B x T. The packed kernels'
 * grow-only scratch (nf4) is not in it: it is measured (mt_qws_bytes). Returns 0, or -1
 * with a message (bad configuration, rank larger than a targeted matrix allows). */
int mt_lora_plan(const struct mt_gpt_config *cfg, const struct mt_lora_opts *o, size_t B, size_t T,
                 struct mt_lora_plan *p, char *err, size_t errlen);

struct mt_qmodel;
struct mt_lora {
    struct mt_gpt *m; /* borrowed; its hooks point at us while we live */
    struct mt_lora_opts o;
    float scale;           /* alpha / rank */
    size_t n_params;       /* adapter parameters */
    size_t *off;           /* per (layer, linear) 4*l + which: offset of A (B follows), or
                            * SIZE_MAX when not targeted */
    float *params, *grads; /* n_params floats each */
    float *opt;            /* 2 n_params: AdamW m then v */
    float *u, *du;         /* max_rows x rank scratch each (one allocation at u) */
    float *tile;           /* nf4: MT_LORA_TILE x 4C decoded weight rows */
    struct mt_qmodel *qm;  /* the NF4 base, or NULL */
    struct mt_gpt_linear_hook base_hook; /* the forward under ours (the packed one) */
    int merged;
    uint64_t step; /* AdamW steps taken */
    char err[256]; /* the last hook failure */
};

/* Attaches adapters to m (MT_GPT_FROZEN or MT_GPT_INFER, fp32 weights present): with
 * o->nf4, first packs m's block linears NF4 (mt_qmodel_build: their fp32 weights are freed).
 * Allocates the adapters (A normal(0, 1/sqrt(in)) from o->seed, B zero), their gradients,
 * AdamW state and scratch, each under its category and reported by name, and installs
 * m's forward and backward linear hooks. Returns 0 and *out, or -1 with a message and m
 * unchanged (when packing succeeded but a later step failed, m stays packed). */
int mt_lora_attach(struct mt_lora **out, struct mt_gpt *m, const struct mt_lora_opts *o, char *err,
                   size_t errlen);

/* Unhooks m (fp32: back to its own linears; nf4: the packed base is freed too, m keeps no
 * block linear weights) and frees everything; NULL is a no-op. */
void mt_lora_free(struct mt_lora *lr);

/* Bytes the adapters' allocations hold, per category (added into bytes[]), the NF4
 * packed linears included: with the model's slabs and the batch, a run's allocation. */
void mt_lora_bytes(const struct mt_lora *lr, size_t bytes[MT_MEM_CAT_COUNT]);

/* merge = 1: W += (alpha / rank) B A for every target, and the forward stops adding the
 * adapter term; merge = 0: W -= the same and it adds it again. Refused (-1 with a message)
 * for an NF4 base and for merging twice / unmerging an unmerged model. */
int mt_lora_merge(struct mt_lora *lr, int merge, char *err, size_t errlen);

/* Scalar reference of one adapted linear in double: out[rows, dout] = in W^T + b +
 * scale (in A^T) B^T; b may be NULL. For tests. */
void mt_lora_linear_ref(float *out, const float *in, const float *w, const float *b, const float *a,
                        const float *bm, float scale, size_t rows, size_t din, size_t dout,
                        size_t rank);

/* A and B of (layer, which), or NULL when not targeted; *din, *dout its shape. */
float *mt_lora_adapter(const struct mt_lora *lr, size_t layer, enum mt_linear which, float **bm,
                       size_t *din, size_t *dout);

/* The one training loop's engine (loop.h) for lr: forward and backward of the frozen
 * model (the hooks do the adapters), zero_grad and AdamW on the adapters only (the
 * recipe's clipping on their global norm, its weight decay on A and B; returns 1 and
 * zeroes the gradients when they are not finite). e keeps the pointer. */
void mt_lora_engine(struct mt_loop_engine *e, struct mt_lora *lr);

#ifdef __cplusplus
}
#endif
#endif
