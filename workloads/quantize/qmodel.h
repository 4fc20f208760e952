/* qmodel.h — a reference GPT whose linear layers run on packed weights.
 *
 * What it is for: taking a loaded fp32 model (workloads/transformer), packing every
 * linear layer (q/k/v, attention projection, MLP in and out; optionally the tied token
 * embedding / LM head) into mt_qtensors, measuring each layer's quantization error,
 * freeing the fp32 linear weights (mt_gpt_drop_weights), and installing the model's linear
 * hook so mt_gpt_forward, mt_gpt_eval and mt_gpt_decode_step run on the packed kernels of
 * qkernels.h.
 * What it is not for: the harness (the plugin in quantize.c reports the numbers), or
 * training a quantized model.
 *
 * The embedding: the LM head is tied to the token embedding, so `embedding = 1` packs
 * that matrix, runs the LM head on it and serves the encoder's lookups from it through the
 * model's embedding hook (rows decoded on demand): the fp32 embedding is freed like the
 * linear weights. With `embedding = 0` the embedding and the LM head stay fp32 and the
 * head runs through the model's own GEMM.
 *
 * Thread safety: like struct mt_gpt — one thread drives a model at a time.
 */
#ifndef MT_QUANT_QMODEL_H
#define MT_QUANT_QMODEL_H

#include <stddef.h>

#include "calib.h"
#include "gpt.h"
#include "qcalib.h"
#include "qformat.h"
#include "qkernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the codes are chosen (qcalib.h): each weight rounded alone, GPTQ's error feedback
 * through the inverse Hessian, RTN weighted by the importance matrix, AWQ's or
 * SmoothQuant's per input channel scales folded into what produces the input (see
 * mt_qmodel_fold), or HQQ's calibration-free zero points.
 *
 * The fold (awq, smoothquant): the packed matrix is W diag(s) and its input must arrive
 * as x / s with no extra pass: for qkv and fc, 1 / s goes into the preceding norm's gain
 * and bias (ln_1, ln_2); for attn_proj, into qkv's V rows and V bias (the attention
 * output is a convex mix of V rows, so scaling V's channel c by 1 / s_c scales the
 * input channel c of attn_proj by 1 / s_c exactly; not with grouped-query attention,
 * where attn_proj stays RTN). fc_proj stays RTN: its input comes out of GELU / SwiGLU,
 * which no scale passes through. */
enum mt_qmethod {
    MT_QM_RTN = 0,         /* no calibration */
    MT_QM_GPTQ = 1,        /* calib gram */
    MT_QM_IMATRIX = 2,     /* calib act_sq */
    MT_QM_AWQ = 3,         /* calib act_sq and gram; folded */
    MT_QM_SMOOTHQUANT = 4, /* calib act_max; folded; int8 activations only */
    MT_QM_HQQ = 5,         /* no calibration; linear-asym only */
    MT_QM_COUNT = 6
};

/* "rtn|gptq|imatrix|awq|smoothquant|hqq" <-> enum; parse returns -1 when unknown. */
const char *mt_qmethod_name(enum mt_qmethod m);
int mt_qmethod_parse(const char *name);

struct mt_qmodel_opts {
    struct mt_qformat fmt; /* fp16/bf16 with bits 16, or a low-bit scheme */
    enum mt_qact act;      /* int8 activations need a linear scheme */
    int embedding;         /* also pack the tied embedding / LM head */
    enum mt_qimpl impl;    /* kernel for every packed GEMM; MT_QIMPL_AUTO (0) = per shape */
    /* Calibrated methods (appended; zero = RTN): the statistics of the block linears
     * (gptq: gram; imatrix: act_sq) — the LM head has none and stays RTN — GPTQ's
     * dampening (fraction of the mean Hessian diagonal added to it) and act-order. */
    enum mt_qmethod method;
    const struct mt_calib *calib;
    double damp;
    int act_order;
    double sq_alpha; /* smoothquant: the migration strength alpha (calib act_max) */
    /* Per-tensor bit widths (appended; NULL = fmt.bits everywhere): 4 x n_layer values in
     * block order (qkv, attn_proj, fc, fc_proj of block 0, then block 1, ...), each 16 or
     * a low width (mt_qmodel_layer_fmt); a 16-bit layer is packed plainly whatever the
     * method. The LM head (embedding) keeps fmt. `memtrade fit` chooses them. */
    const unsigned char *layer_bits;
    int double_quant; /* nf/log, rtn: the scales double-quantized (mt_qtensor_pack_dq); each
                       * GEMM decodes its layer's scales first (dq_scales) */
};

/* Contract: the format block linear i (index 4 * block + which) is packed in: o->fmt, with
 * o->layer_bits[i] bits when given (16: bf16; a low width: o->fmt's scheme, or linear-asym
 * when o->fmt is 16-bit). Pure. */
struct mt_qformat mt_qmodel_layer_fmt(const struct mt_qmodel_opts *o, size_t i);

struct mt_qlayer {
    size_t layer; /* block index; n_layer for the LM head */
    enum mt_linear which;
    char name[32]; /* "h0.qkv", "h3.fc_proj", "lm_head" */
    struct mt_qtensor *q;
    const float *bias; /* fp32, in the model's weight slab; NULL for the head */
    size_t in_dim, out_dim;
    double mse, maxabs; /* against the fp32 weights it replaced */
};

struct mt_qmodel {
    struct mt_gpt *m; /* borrowed; its hook points at us while we live */
    struct mt_qmodel_opts opts;
    struct mt_qlayer *layers; /* 4 per block (index 4*l + which), then the head if packed */
    size_t n_layers;
    struct mt_qws *ws;
    size_t packed_bytes;   /* sum of mt_qtensor_bytes over the packed layers */
    size_t packed_params;  /* weights those layers hold */
    size_t fp32_bytes;     /* the fp32 tensors the model still stores (exact, no padding) */
    double pack_seconds;   /* wall time of fitting + packing */
    double factor_seconds; /* gptq: of it, the inverse Hessian factorizations (LAPACK) */
    double update_seconds; /* gptq: of it, the rounding with error feedback */
    char hook_err[256];    /* message of the last failed hook call */
    /* Packed GEMMs served so far, by the implementation that ran (enum mt_qimpl index;
     * AUTO resolved), and those of them where AUTO ran the scalar reference because this
     * CPU lacks the AVX-512 (VNNI for int8 activations) kernel: counted, as a silent
     * fallback would misstate every speed this model reports. */
    size_t impl_calls[4];
    size_t scalar_fallbacks;
    /* double_quant: one packed layer's scales decoded for its GEMM (workspace, the
     * most scales of a layer: dq_scales_bytes), as the kernels read fp32 scales */
    float *dq_scales;
    size_t dq_scales_bytes;
};

/* Contract: packs m's linear layers per `o`, frees the fp32 linear weights (m->params is
 * replaced by a smaller slab under MT_MEM_WEIGHTS) and installs the hook. On failure
 * returns -1 with a message and m is still fp32 with no hook (awq/smoothquant: possibly
 * with some scales folded in, the same function up to fp32 rounding). The model must not
 * be trained afterwards. Free with mt_qmodel_free (which unhooks m but cannot restore its
 * fp32 weights). */
int mt_qmodel_build(struct mt_qmodel **out, struct mt_gpt *m, const struct mt_qmodel_opts *o,
                    char *err, size_t errlen);
void mt_qmodel_free(struct mt_qmodel *qm);

/* Contract: folds per input channel scales s[in_dim] of block linear (layer, which) into
 * the fp32 model m (weights present): W's column j times s_j, and 1 / s_j into what
 * produces that input (see enum mt_qmethod): the same function, up to fp32 rounding.
 * Returns 0, or -1 with a message for fc_proj, the LM head, attn_proj under grouped-query
 * attention, or a model without its fp32 linear weights. */
int mt_qmodel_fold(struct mt_gpt *m, size_t layer, enum mt_linear which, const float *s, char *err,
                   size_t errlen);

/* Contract: model_bytes = packed_bytes + fp32_bytes (every stored weight byte). */
size_t mt_qmodel_bytes(const struct mt_qmodel *qm);
/* Contract: 8 * packed_bytes / packed_params (the packed layers only). */
double mt_qmodel_bits_per_weight(const struct mt_qmodel *qm);

#ifdef __cplusplus
}
#endif
#endif
