/* cgpt.h — the reference model on an NVIDIA GPU (`device=cuda`): the same slabs, the one
 * block (block.h) with the device's kernels, cuBLAS for the matrix products.
 *
 * What it is for: forward (training or evaluation, with the losses), backward, AdamW and
 * batch-1 KV-cache decoding of a struct mt_gpt whose slabs live in device memory. The
 * slabs are cudaMalloc'ed one per memory category, exactly mt_gpt_memory's bytes, carved
 * by mt_gpt_carve (the CPU model's layout), each allocated under its category so the
 * device interposer (profilers/heap) attributes it; the extras of a precision (bf16: a
 * 16-bit mirror of the weights, the LM head's padded bf16 copy and the GEMM operands'
 * staging) and cuBLAS's workspace are allocated beside them, sized by
 * mt_cuda_gpt_extra_bytes. Dense attention runs as cuBLAS strided-batched products
 * (scores, weighted sums and their gradients, per sequence) around softmax kernels, the
 * block's attention hooks (attention_rows: the kernel table's row kernels instead);
 * flash attention (attention=flash) runs cflash.h's kernels (fp32, or bf16 operands in a
 * bf16 model) and keeps only the log-sum-exp rows: no (T,T) tensor and no bf16
 * attention staging on the device (mt_cuda_stage_out_bytes).
 * Checkpointing (mt_cuda_gpt_create_every, tmodel.h's `every`): the residual stream
 * (block outputs) is kept for every block, the other block activations only in
 * ceil(L/every) slots, one per group of `every` blocks counted from the top; the group's
 * top block keeps its activations, the others are recomputed from their stored input in
 * the backward, into their group's slot (every = L: one slot, every block but the top
 * one recomputed; every = 1: the plain layout, nothing recomputed).
 * What it is not for: the CPU engine (gpt.h), data, the harness. 16-bit activation
 * storage and selective recomputation are not on the device yet; quantized weights
 * serve decoding only
 * (mt_cuda_gpt_quantize).
 * The plan (mt_cuda_gpt_plan, the precision names and the layout helpers) is cplan.c,
 * pure, in the transformer library: it is there on machines without CUDA.
 * Precisions: fp32 (cuBLAS SGEMM, fp32 arithmetic), tf32 (SGEMM on TF32 tensor cores),
 * bf16 (GEMM operands rounded to bf16, fp32 accumulation and fp32 everything else: the
 * autocast recipe; the LM head's logits are bf16, in rows padded to a multiple of 8 for
 * cuBLAS's fast kernels, widened by the softmax). Every other kernel runs in fp32.
 * Thread safety: one thread per model; everything runs on the calling thread's default
 * stream (per-thread default stream, CUDA_API_PER_THREAD_DEFAULT_STREAM) and each call
 * returns after the device finished (errors are reported by the call that saw them).
 */
#ifndef MT_TRANSFORMER_CUDA_CGPT_H
#define MT_TRANSFORMER_CUDA_CGPT_H

#include <stddef.h>
#include <stdint.h>

#include "gpt.h"

#ifdef __cplusplus
extern "C" {
#endif

enum mt_cuda_precision { MT_CUDA_FP32 = 0, MT_CUDA_TF32 = 1, MT_CUDA_BF16 = 2 };

/* Parses "fp32", "tf32" or "bf16". Returns 0, or -1 with a message. */
int mt_cuda_precision_parse(const char *s, enum mt_cuda_precision *out, char *err, size_t errlen);
const char *mt_cuda_precision_name(enum mt_cuda_precision p);

/* 1 when a CUDA device can be used; else 0 and the reason in why (no device, no driver). */
int mt_cuda_available(char *why, size_t n);

#define MT_CUDA_BLAS_WORKSPACE ((size_t)32 << 20) /* what NVIDIA advises for Hopper */

/* Device bytes beside the plan's slabs, per category: the bf16 weight mirror (weights),
 * the bf16 operand staging and cuBLAS's workspace (workspace). Pure. */
void mt_cuda_gpt_extra_bytes(const struct mt_gpt_config *cfg, size_t B, size_t T,
                             enum mt_cuda_precision prec, size_t bytes[MT_MEM_CAT_COUNT]);

/* The whole device plan of a model keeping activations every `every` blocks (1: all;
 * above 1 only for MT_GPT_TRAIN): per category the slab (mt_gpt_memory's, the
 * activations laid out by mt_cuda_gpt_carve_acts when every > 1) plus the extras, which
 * is what the device interposer measures per category. Returns the total, or 0 with a
 * message (bad configuration, shape or every). Pure. */
size_t mt_cuda_gpt_plan(const struct mt_gpt_config *cfg, enum mt_gpt_mode mode, size_t B, size_t T,
                        enum mt_cuda_precision prec, size_t every, size_t bytes[MT_MEM_CAT_COUNT],
                        char *err, size_t errlen);
/* Block-activation slots of a training model keeping `every` (ceil(L / every)). */
size_t mt_cuda_gpt_act_slots(const struct mt_gpt_config *cfg, size_t every);
/* The activation slab of a training model keeping `every`: its bytes, and (base not
 * NULL) ptrs[MT_A_COUNT] carved from base like mt_gpt_carve (64-byte aligned tensors). */
size_t mt_cuda_gpt_carve_acts(const struct mt_gpt_config *cfg, size_t B, size_t T, size_t every,
                              void *base, void **ptrs);
/* Layout helpers of cgpt.c (pure): the widest linear input and output, the bf16 logits'
 * row stride (V rounded up to 8), the bf16 GEMM output staging, the padded bf16 head. */
void mt_cuda_linear_widths(const struct mt_gpt_config *cfg, size_t *in, size_t *out);
size_t mt_cuda_vocab_ld(size_t V);
size_t mt_cuda_stage_out_bytes(const struct mt_gpt_config *cfg, size_t B, size_t T, size_t out);
size_t mt_cuda_head16_bytes(const struct mt_gpt_config *cfg);

/* The device model. m is a struct mt_gpt whose tensor pointers (params, param[], grads,
 * grad[], act[], dact[], opt_m, opt_v, inputs, targets) are device pointers: never hand
 * it to gpt.h's functions that read tensors (mt_gpt_linear_weights and
 * mt_gpt_linear_grads only compute addresses and may be used). */
struct mt_cu_qmat;
struct mt_cuda_gpt {
    struct mt_gpt m;
    enum mt_cuda_precision prec;
    size_t extra_bytes[MT_MEM_CAT_COUNT]; /* allocated beside the slabs */
    void *slab[MT_MEM_CAT_COUNT];         /* the plan's slabs (device) */
    void *wbf16;                          /* bf16 mirror of the weight slab (bf16) */
    void *head16;               /* bf16 LM head weight, rows padded to 8 with zeros (bf16) */
    void *stage_in, *stage_out; /* bf16 GEMM operands (bf16) */
    void *blas_work;            /* cuBLAS workspace */
    double *acc;                /* device scalar for reductions */
    float *losses;              /* host copy of the last losses (B*T) */
    void *blas;                 /* cublasHandle_t */
    int mirror_stale;           /* bf16 mirror older than the weights */
    struct mt_cu_qmat *qw;      /* packed linear weights ((L+1) x MT_LIN_COUNT,
                                   cquant.h) or NULL: mt_cuda_gpt_quantize */
    size_t qbytes;              /* their bytes (mt_qtensor_bytes, summed) */
    size_t every;               /* checkpoint interval (1: every block's activations kept) */
    size_t recomputed_blocks;   /* blocks recomputed in backward so far */
    int decode_unfuse;          /* MT_BLOCK_FUSE_* (block.h) that decoding does not fold into
                                   its GEMVs (0, the default: all; tests and benchmarks) */
    int attention_rows;         /* 1: dense attention through the kernel table's row kernels
                                   (ckernels.cu attn_rows); 0 (default): cuBLAS batched products
                                   around a softmax kernel, in the model's precision */
};

/* Creates a device model of cfg in mode (MT_GPT_INFER or MT_GPT_TRAIN; MT_GPT_WEIGHTS: the
 * weights and the extras only, for batch-1 decoding with a KV cache) for batch B and
 * sequence T, weights zero. Returns 0 and *out (free with mt_cuda_gpt_free), or -1 with a
 * message (no device, bad configuration, out of device memory); nothing
 * stays allocated on failure. */
int mt_cuda_gpt_create(struct mt_cuda_gpt **out, const struct mt_gpt_config *cfg,
                       enum mt_gpt_mode mode, size_t B, size_t T, enum mt_cuda_precision prec,
                       char *err, size_t errlen);
/* The same for a training model keeping block activations every `every` blocks
 * (1..n_layer; the head of the file): slabs of mt_cuda_gpt_plan. */
int mt_cuda_gpt_create_every(struct mt_cuda_gpt **out, const struct mt_gpt_config *cfg,
                             enum mt_gpt_mode mode, size_t B, size_t T, enum mt_cuda_precision prec,
                             size_t every, char *err, size_t errlen);
void mt_cuda_gpt_free(struct mt_cuda_gpt *d);

/* Copies the weights (and, when both train, the optimizer state and step) of host model h
 * (same configuration, no dropped tensors) to the device, or back. Returns 0 or -1. */
int mt_cuda_gpt_upload(struct mt_cuda_gpt *d, const struct mt_gpt *h, char *err, size_t errlen);
int mt_cuda_gpt_download(const struct mt_cuda_gpt *d, struct mt_gpt *h, char *err, size_t errlen);
/* Copies bytes from device pointer src to host dst. Returns 0 or -1 with a message. */
int mt_cuda_copy_to_host(void *dst, const void *src, size_t bytes, char *err, size_t errlen);
/* Copies bytes from host src to device pointer dst. Returns 0 or -1 with a message. */
int mt_cuda_copy_to_device(void *dst, const void *src, size_t bytes, char *err, size_t errlen);

/* mt_gpt_forward on the device: inputs and targets (host arrays, B x T; targets may be
 * NULL) as there; *mean_loss as there. Probabilities (with targets) or logits stay in
 * m.act[MT_A_LOGITS]. */
int mt_cuda_gpt_forward(struct mt_cuda_gpt *d, const int *inputs, const int *targets, size_t B,
                        size_t T, float *mean_loss, char *err, size_t errlen);
/* mt_gpt_zero_grad, mt_gpt_backward, mt_gpt_adamw_step (which returns the gradient norm)
 * and mt_gpt_train_step on the device, same contracts; mt_cuda_gpt_adamw_step returns 1
 * (nothing updated, gradients zeroed, *norm the non-finite norm) when a gradient is inf
 * or NaN (a loss-scale overflow). */
void mt_cuda_gpt_zero_grad(struct mt_cuda_gpt *d);
int mt_cuda_gpt_backward(struct mt_cuda_gpt *d, float loss_scale, size_t norm_tokens, char *err,
                         size_t errlen);
int mt_cuda_gpt_adamw_step(struct mt_cuda_gpt *d, const struct mt_gpt_recipe *r, float lr,
                           float grad_div, float *norm, char *err, size_t errlen);
int mt_cuda_gpt_train_step(struct mt_cuda_gpt *d, const struct mt_gpt_recipe *r, size_t step,
                           const int *inputs, const int *targets, float *loss, float *gnorm,
                           char *err, size_t errlen);

/* Weight-only quantization for decoding: packs every linear weight of host model h (the
 * LM head included; same configuration as d) in format f with workloads/quantize's
 * mt_qtensor_pack and uploads the packed bytes as they are (cquant.h). From then on every
 * one-row linear (KV-cache decode) reads the packed weights; batched products keep the
 * fp32/bf16 weights. f NULL (h, err ignored) drops them. Linear schemes, 8 or 4 bits.
 * Returns 0, or -1 with a message; on failure no packed weights stay. */
struct mt_qformat;
int mt_cuda_gpt_quantize(struct mt_cuda_gpt *d, const struct mt_gpt *h, const struct mt_qformat *f,
                         char *err, size_t errlen);
/* The same with the LM head packed only when head is 1 (0: it stays fp32/bf16, as the
 * quantize workload's embedding=off keeps it on the CPU). */
int mt_cuda_gpt_quantize_linears(struct mt_cuda_gpt *d, const struct mt_gpt *h,
                                 const struct mt_qformat *f, int head, char *err, size_t errlen);

/* Batch-1 decoding with a device KV cache (keys and values of every layer for max_T
 * positions, contiguous: a sliding window attends to its last positions of it). The
 * step's kernels read the token and its position from the device (tokpos, set by a
 * kernel queued before the step), so that one step is captured once as a CUDA graph and
 * replayed for every token (graphs = 1, the default where the model has no RoPE, whose
 * rotation takes the position from the host): one launch per token instead of one per
 * kernel. The graph is captured again when the packed weights change
 * (mt_cuda_gpt_quantize). Where the weights are read by GEMVs (bf16 or packed), the
 * norms run in the GEMVs' prologues (the final one in the LM head's), the residual adds
 * and GELU in their epilogues and the key/value append in the attention kernel: per
 * layer 4 GEMVs and 1 attention kernel instead of 11 kernels, the bits of the unfused
 * kernels (decode_unfuse). */
struct mt_cuda_kv {
    size_t max_T, pos;
    void *k, *v;    /* device (L, max_T, kv_dim) elements of type each: MT_MEM_KV_CACHE */
    int type;       /* enum mt_cu_kv_type (ckernels.h): fp32, bf16, fp16 */
    float *scratch; /* device, decode.c's layout and {token, pos}: MT_MEM_WORKSPACE */
    float *logits;  /* host (V): the last step's logits */
    float *dlogits; /* device, inside scratch */
    int *tokpos;    /* device, inside scratch: the step's token and position */
    int *tokens;    /* device, inside scratch (max_T): greedy decoding's tokens by position */
    size_t kv_bytes, scratch_bytes;
    int graphs;           /* 1: capture and replay the step (set to 0 for launches) */
    void *graph;          /* cudaGraphExec_t of the step, or NULL */
    const void *graph_qw; /* the packed weights it was captured with */
    int graph_unfuse;     /* the decode_unfuse it was captured with */
};
int mt_cuda_kv_create(struct mt_cuda_kv **out, const struct mt_cuda_gpt *d, size_t max_T, char *err,
                      size_t errlen);
/* The same with elements of type (enum mt_cu_kv_type: 0 fp32, 1 bf16, 2 fp16). */
int mt_cuda_kv_create_type(struct mt_cuda_kv **out, const struct mt_cuda_gpt *d, size_t max_T,
                           int type, char *err, size_t errlen);
/* The device bytes of such a cache (keys and values: MT_MEM_KV_CACHE) and of its decode
 * scratch (MT_MEM_WORKSPACE), as mt_cuda_kv_create_type allocates them. Pure (cplan.c). */
void mt_cuda_kv_plan(const struct mt_gpt_config *cfg, size_t max_T, int type, size_t *kv_bytes,
                     size_t *scratch_bytes);
void mt_cuda_kv_free(struct mt_cuda_kv *kv);
/* What mt_cuda_decode_step does with the step's logits: leave them on the device and wait
 * for it (DEVICE), copy them to kv->logits on the host (HOST), or only queue the step
 * (QUEUED: nothing waits; the logits are on the device once mt_cuda_decode_wait or
 * another waiting call returns, which reports the device's errors). */
enum { MT_CUDA_LOGITS_DEVICE = 0, MT_CUDA_LOGITS_HOST = 1, MT_CUDA_LOGITS_QUEUED = 2 };
/* mt_gpt_decode_step on the device: the step of token at position kv->pos, its logits
 * handled as `logits` says (above). Returns 0 (kv->pos advanced), or -1 with a message
 * (cache full, token outside the vocabulary, a device error). */
int mt_cuda_decode_step(struct mt_cuda_gpt *d, struct mt_cuda_kv *kv, int token, int logits,
                        char *err, size_t errlen);
/* Waits for the queued decode steps. Returns 0, or -1 with the device's error. */
int mt_cuda_decode_wait(char *err, size_t errlen);
/* Greedy decoding on the device: n steps from token at kv->pos, each next token the first
 * index of the largest logit, chosen by a kernel after the step (no host round trip per
 * token: one wait at the end). out[i] (host, n ints) = the token chosen after step i;
 * the last step's logits stay in kv->dlogits. Returns 0 (kv->pos advanced by n), or -1
 * with a message (fewer than n positions left, bad token, device error). */
int mt_cuda_decode_greedy(struct mt_cuda_gpt *d, struct mt_cuda_kv *kv, int token, size_t n,
                          int *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
