/* gpt.h — the reference GPT-2 style transformer: configuration, memory, training,
 * inference and batch-1 decoding.
 *
 * What it is for: one small, exact, fast model that every memtrade workload runs on.
 * Learned token and position embeddings, pre-LayerNorm blocks (causal multi-head
 * attention, 4x GELU MLP), final LayerNorm, LM head tied to the token embedding.
 * Memory is laid out the llm.c way: one slab per category (weights, gradients, AdamW
 * state, activations, activation gradients, workspace) carved into named tensors;
 * mt_gpt_memory() computes every slab's bytes without allocating and the allocator uses
 * the same layout code, so they match exactly. Each slab is allocated under its memory
 * category (memcat.h) and every tensor in it is reported by a stable name.
 * What it is not for: data loading (data.h), evaluation and sampling (eval.h),
 * checkpoints (ckpt.h), the layer math itself (kernels.h), or anything of the harness.
 *
 * Seams for the optimization workloads:
 * - struct mt_gpt_linear_hook: run every linear layer (q/k/v, attention projection, MLP
 *   in and out, LM head) through caller code (packed/sparse matmuls, calibration).
 * - mt_gpt_zero_grad / mt_gpt_backward(loss_scale, norm_tokens) accumulate into the
 *   gradients, so gradient accumulation is a loop of forward+backward before one step.
 * - Inference state (no gradients or optimizer, one layer of activations reused) and a
 *   KV-cache decode step for batch-1 serving.
 *
 * Thread safety: a struct mt_gpt is used by one thread at a time; the kernels inside
 * use OpenMP with the caller's thread count. For a fixed seed and thread count every
 * result is bit-identical from run to run.
 */
#ifndef MT_TRANSFORMER_GPT_H
#define MT_TRANSFORMER_GPT_H

#include <stddef.h>
#include <stdint.h>

#include <memtrade/memcat.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- configuration */

/* How the block computes attention (the `attention` option). Dense keeps the softmax
 * probabilities (B, NH, T, T) for backward; flash is tiled attention with an online
 * softmax that keeps only the output and the per-row log-sum-exp (B, NH, T) and
 * recomputes the scores tile by tile in backward (FlashAttention-2). */
enum mt_gpt_attention { MT_GPT_ATTN_DENSE = 0, MT_GPT_ATTN_FLASH = 1 };

/* The normalization (`norm`): LayerNorm (mean, variance, gain and bias) or RMSNorm (root
 * mean square and gain only: the bias tensors ln1_b, ln2_b, lnf_b do not exist). */
enum mt_gpt_norm { MT_GPT_NORM_LAYER = 0, MT_GPT_NORM_RMS = 1 };
/* Positions (`pos`): a learned table wpe added to the token embedding, or rotary
 * embeddings of q and k in every block (no wpe; kernels.h mt_k_rope_fwd). */
enum mt_gpt_pos { MT_GPT_POS_LEARNED = 0, MT_GPT_POS_ROPE = 1 };
/* The MLP (`mlp`): fc (F) -> GELU -> fcproj, or SwiGLU: fc holds the gate and up
 * projections concatenated (2F rows: gate first), silu(gate) * up -> fcproj. */
enum mt_gpt_mlp { MT_GPT_MLP_GELU = 0, MT_GPT_MLP_SWIGLU = 1 };

/* All fields are size_t, so two configurations compare with memcmp (no padding). The
 * fields after n_embd are options of the one block; their zero values are the original
 * model (GPT-2). */
struct mt_gpt_config {
    size_t vocab;     /* V: vocabulary size (256 = bytes) */
    size_t seq_len;   /* maximum T (rows of the position embedding) */
    size_t n_layer;   /* L */
    size_t n_head;    /* NH; must divide n_embd */
    size_t n_embd;    /* C */
    size_t attention; /* enum mt_gpt_attention */
    size_t n_kv_head; /* key/value heads (grouped-query attention); 0 = n_head; divides n_head */
    size_t window;    /* sliding window: position t attends to (t - window, t]; 0 = all of [0, t] */
    size_t norm;      /* enum mt_gpt_norm */
    size_t pos;       /* enum mt_gpt_pos */
    size_t rope_theta; /* RoPE base theta; 0 = 10000 */
    size_t mlp;        /* enum mt_gpt_mlp */
    size_t ffn;        /* MLP hidden width F; 0 = the default (mt_gpt_ffn) */
    size_t no_bias;    /* 1: the four block linears have no biases (`bias=off`) */
    size_t untied;     /* 1: a separate LM head lm_head (V, C) (`tie=off`) */
};

/* Fills *cfg with a preset: "tiny" (L2 H2 C64 T64), "small" (L4 H4 C128 T128), "medium"
 * (L6 H8 C256 T256), "long" (medium's width at T4096: L6 H8 C256), "gpt2" (L12 H12 C768
 * T1024; vocab stays 256 unless set): dense GPT-2 blocks, n_kv_head = n_head, no window.
 * Llama-family: "llama-tiny" (L2 H4 KV2 C128 T128, F 512, V 256) and "llama-1b" (the
 * TinyLlama-1.1B shape: L22 H32 KV4 C2048 F5632 T2048, V 32000): RMSNorm, RoPE theta
 * 10000, SwiGLU, no biases, untied head. Returns 0, or -1 with a message for an unknown
 * name. */
int mt_gpt_config_preset(struct mt_gpt_config *cfg, const char *name, char *err, size_t errlen);

/* Overrides one field by name: "vocab", "seq_len" (alias "T"), "n_layer" ("L"),
 * "n_head" ("H"), "n_embd" ("C") from a positive decimal string; "n_kv_head" ("KV"),
 * "window" ("W"), "ffn" ("F") and "rope_theta" (0 allowed: the default) from a decimal
 * string; "attention" from dense|flash, "norm" layernorm|rmsnorm, "pos" learned|rope,
 * "mlp" gelu|swiglu, "bias" on|off, "tie" on|off. Returns 0, or -1 with a message for an unknown
 * key or a bad value. Does not check the combination: call mt_gpt_config_check when done. */
int mt_gpt_config_set(struct mt_gpt_config *cfg, const char *key, const char *value, char *err,
                      size_t errlen);

/* Parses "preset[,key=value...]", e.g. "small,n_layer=2,vocab=50257" or
 * "small,attention=flash,n_kv_head=2,window=64"; n_kv_head = n_head is stored as 0 (one
 * configuration, one spelling). */
int mt_gpt_config_parse(struct mt_gpt_config *cfg, const char *spec, char *err, size_t errlen);

/* Checks that the configuration is buildable (positive fields, NH divides C, n_kv_head
 * divides NH, a known attention kind, sizes whose byte counts fit in size_t). Returns 0
 * or -1 with a message. */
int mt_gpt_config_check(const struct mt_gpt_config *cfg, char *err, size_t errlen);

/* MLP hidden width F: cfg->ffn, else 4C for GELU and for SwiGLU the Llama convention
 * 2/3 * 4C rounded up to a multiple of 256. */
size_t mt_gpt_ffn(const struct mt_gpt_config *cfg);

/* RoPE base of a configuration: rope_theta, or 10000 when it is 0. */
double mt_gpt_rope_theta(const struct mt_gpt_config *cfg);

/* Key/value heads of a configuration: n_kv_head, or n_head when it is 0. */
size_t mt_gpt_kv_heads(const struct mt_gpt_config *cfg);

/* Width of each of k and v (and of a KV-cache row of one layer): n_kv_head * (n_embd /
 * n_head); n_embd without grouped-query attention. */
size_t mt_gpt_kv_dim(const struct mt_gpt_config *cfg);

/* Writes a short text of the block options that differ from the original model, e.g.
 * ",attention=flash,n_kv_head=2,window=64" or ",norm=rmsnorm,pos=rope,mlp=swiglu,
 * bias=off,tie=off" (only the options set, in a fixed order; "" for the original model), as they
 * are written in a model spec; for names of cached models and logs. */
void mt_gpt_config_options(const struct mt_gpt_config *cfg, char *out, size_t n);

/* Number of parameters of a configuration. */
size_t mt_gpt_num_params(const struct mt_gpt_config *cfg);

/* ---------------------------------------------------------------- named tensors */

enum mt_gpt_param {
    MT_P_WTE,      /* (V, C) token embedding, also the LM head unless untied */
    MT_P_WPE,      /* (T, C) position embedding (absent with RoPE) */
    MT_P_LN1W,     /* (L, C) */
    MT_P_LN1B,     /* (L, C) */
    MT_P_QKVW,     /* (L, C + 2 KV, C), KV = mt_gpt_kv_dim (q rows, then k, then v) */
    MT_P_QKVB,     /* (L, C + 2 KV) */
    MT_P_ATTPROJW, /* (L, C, C) */
    MT_P_ATTPROJB, /* (L, C) */
    MT_P_LN2W,     /* (L, C) */
    MT_P_LN2B,     /* (L, C) */
    MT_P_FCW,      /* (L, FO, C), FO = F (GELU) or 2F (SwiGLU: gate rows, then up rows) */
    MT_P_FCB,      /* (L, FO) */
    MT_P_FCPROJW,  /* (L, C, F) */
    MT_P_FCPROJB,  /* (L, C) */
    MT_P_LNFW,     /* (C) */
    MT_P_LNFB,     /* (C) */
    MT_P_LMHEAD,   /* (V, C) untied LM head (absent when tied) */
    MT_P_COUNT
};

/* Stable name of a parameter tensor ("wte", "qkv_w", ...). */
const char *mt_gpt_param_name(enum mt_gpt_param p);
/* Shape of a parameter tensor: fills dims (up to 3) and returns the number of dims; 0 for
 * a tensor the configuration does not have (biases with bias=off or RMSNorm, wpe with
 * RoPE, lm_head when tied; those are absent everywhere: no bytes, NULL pointers, not in
 * checkpoints). */
size_t mt_gpt_param_shape(const struct mt_gpt_config *cfg, enum mt_gpt_param p, size_t dims[3]);
/* Floats of parameter tensor p (0 when absent). */
size_t mt_gpt_param_elems(const struct mt_gpt_config *cfg, enum mt_gpt_param p);
/* The weight of the LM head: MT_P_LMHEAD when untied, else MT_P_WTE. */
enum mt_gpt_param mt_gpt_head_param(const struct mt_gpt_config *cfg);
/* 1 for the 2-D weight matrices that get weight decay (embeddings and linear weights). */
int mt_gpt_param_decays(enum mt_gpt_param p);

enum mt_gpt_act {
    MT_A_ENCODED,   /* (B, T, C) */
    MT_A_LN1,       /* (Lk, B, T, C) */
    MT_A_LN1_MEAN,  /* (Lk, B, T); empty with RMSNorm (as are the other _MEAN) */
    MT_A_LN1_RSTD,  /* (Lk, B, T) */
    MT_A_QKV,       /* (Lk, B, T, C + 2 KV) */
    MT_A_ATTY,      /* (Lk, B, T, C) */
    MT_A_ATT,       /* dense: (Lk, B, NH, T, T) softmax probabilities; flash: (Lk, B, NH, T)
                     * the log-sum-exp of each row of scaled scores */
    MT_A_RESIDUAL2, /* (Lk, B, T, C) */
    MT_A_LN2,       /* (Lk, B, T, C) */
    MT_A_LN2_MEAN,  /* (Lk, B, T) */
    MT_A_LN2_RSTD,  /* (Lk, B, T) */
    MT_A_FCH,       /* (Lk, B, T, FO) fc output (SwiGLU: gate and up, FO = 2F) */
    MT_A_FCH_GELU,  /* (Lk, B, T, F) GELU or SwiGLU output */
    MT_A_RESIDUAL3, /* (Lk, B, T, C) */
    MT_A_PROJ,      /* (B, T, C) output of the attention/MLP projection, one layer */
    MT_A_LNF,       /* (B, T, C) */
    MT_A_LNF_MEAN,  /* (B, T) */
    MT_A_LNF_RSTD,  /* (B, T) */
    MT_A_LOGITS,    /* (B, T, V) logits, then probabilities, then their gradient */
    MT_A_LOSSES,    /* (B, T) */
    MT_A_COUNT
};
/* Lk = L when training (every layer kept for backward), 1 for inference (one slot reused
 * by every layer). Checkpointing (recomputation) is the training engine's
 * (workloads/train/tmodel.h); the block itself is block.h's. */

enum mt_gpt_dact {
    MT_D_RESIDUAL, /* (B, T, C) gradient of the residual stream, walks down the layers */
    MT_D_LN,       /* (B, T, C) gradient of a LayerNorm output */
    MT_D_ATTY,     /* (B, T, C) */
    MT_D_QKV,      /* (B, T, C + 2 KV) */
    MT_D_ATT,      /* dense: (B, NH, T, T); flash: empty (the tiles live on the stack) */
    MT_D_FCH,      /* GELU: (B, T, F), also the gradient of the GELU output; SwiGLU:
                    * (B, T, 2F) the fc output's gradient, then (B, T, F) the SwiGLU
                    * output's */
    MT_D_COUNT
};

enum mt_gpt_work {
    MT_W_INPUTS,  /* (B, T) int32 token ids of the last forward */
    MT_W_TARGETS, /* (B, T) int32 */
    MT_W_COUNT
};

/* ---------------------------------------------------------------- memory */

/* What a model holds: weights only, weights + inference activations for (B, T), the
 * full training state for (B, T), or frozen-weight training for (B, T): every layer's
 * activations and the activation gradients, but no gradients or optimizer state for the
 * weights (a backward that computes activation gradients only, for fine-tuning whose
 * trainable parameters live outside the model, behind the linear hooks: LoRA). */
enum mt_gpt_mode { MT_GPT_WEIGHTS = 0, MT_GPT_INFER = 1, MT_GPT_TRAIN = 2, MT_GPT_FROZEN = 3 };

/* Floats of one instance (one layer slot, one segment) of activation `a`, and of
 * activation gradient `d`, for batch B and sequence T. Pure; for engines that lay out
 * these tensors themselves (workloads/train). */
size_t mt_gpt_act_elems(const struct mt_gpt_config *cfg, size_t B, size_t T, enum mt_gpt_act a);
size_t mt_gpt_dact_elems(const struct mt_gpt_config *cfg, size_t B, size_t T, enum mt_gpt_dact d);

/* Computes the bytes of every memory category (index enum mt_mem_cat) a model of this
 * configuration needs in `mode` for batch B and sequence T, without allocating. The slabs
 * mt_gpt_create allocates have exactly these sizes (mt_gpt_slab_bytes). Returns the
 * total, or 0 with a message when the configuration or the shape is invalid. */
size_t mt_gpt_memory(const struct mt_gpt_config *cfg, size_t B, size_t T, enum mt_gpt_mode mode,
                     size_t bytes[MT_MEM_CAT_COUNT], char *err, size_t errlen);

/* Where each tensor of memory category cat (enum mt_mem_cat) lies in a slab at base of
 * that category's mt_gpt_memory bytes, for a model of cfg in mode for (B, T): the layout
 * mt_gpt_create uses, for an engine that allocates its slabs elsewhere (device memory:
 * base is never dereferenced). ptrs[i] = base + offset of tensor i, NULL for an empty
 * (absent) one: enum mt_gpt_param entries for weights and gradients, enum mt_gpt_act for
 * activations, enum mt_gpt_dact for activation gradients, m then v for the optimizer,
 * enum mt_gpt_work for the workspace. Returns the number of entries written (0: the mode
 * has no such slab). The configuration must have passed mt_gpt_config_check. */
size_t mt_gpt_carve(const struct mt_gpt_config *cfg, size_t B, size_t T, enum mt_gpt_mode mode,
                    int cat, void *base, void **ptrs);

/* ---------------------------------------------------------------- the model */

/* Linear layers the hook can take over. */
enum mt_linear {
    MT_LIN_QKV,
    MT_LIN_ATTPROJ,
    MT_LIN_FC,
    MT_LIN_FCPROJ,
    MT_LIN_LMHEAD,
    MT_LIN_COUNT
};

/* Runs out[rows, out_dim] = in[rows, in_dim] @ W^T + b for layer `layer` (0..L-1; L for
 * the LM head, which has no bias). Return 0 on success, non-zero to abort the forward
 * (the forward then fails with "linear hook failed"). Called from the thread that runs the
 * forward; it may use OpenMP itself. mt_gpt_linear_default() is the built-in one, so a
 * hook that only observes (calibration) can call it. */
struct mt_gpt_linear_hook {
    int (*matmul)(void *user, size_t layer, enum mt_linear which, const float *in, float *out,
                  size_t rows);
    void *user;
};

/* Optional backward of the linear layers (mixed precision, masked fine-tuning): computes
 * din[rows, in_dim] = dout @ W (overwritten) and adds dout^T in and the column sums of
 * dout to the weight and bias gradients (mt_gpt_linear_grads). Return non-zero to fail
 * the backward. A separate struct so struct mt_gpt_linear_hook keeps its two fields. */
struct mt_gpt_linear_bwd_hook {
    int (*matmul_bwd)(void *user, size_t layer, enum mt_linear which, const float *dout,
                      const float *in, float *din, size_t rows);
    void *user;
};

/* Optional token-embedding lookup, for a model whose embedding is stored in another form
 * (quantized): writes out[i*C .. i*C+C) = row tokens[i] of the token embedding for i < n;
 * the model adds the position embedding. Return non-zero to fail the forward. While it is
 * set, forward, eval and decode never read param[MT_P_WTE] for the lookup, so a model whose
 * LM head also runs through the linear hook can drop that tensor (mt_gpt_drop_weights). */
struct mt_gpt_embed_hook {
    int (*rows)(void *user, const int *tokens, size_t n, float *out);
    void *user;
};

struct mt_gpt {
    struct mt_gpt_config cfg;
    enum mt_gpt_mode mode;
    size_t B, T;      /* activation shape (0 in MT_GPT_WEIGHTS mode) */
    size_t act_slots; /* layer slots of the per-layer activations (Lk) */
    size_t n_params;
    size_t slab_bytes[MT_MEM_CAT_COUNT]; /* what was allocated, per category */

    float *params;                /* slab: MT_MEM_WEIGHTS */
    float *param[MT_P_COUNT];     /* carved tensors */
    size_t param_len[MT_P_COUNT]; /* floats per tensor */
    float *grads;                 /* slab: MT_MEM_GRADIENTS, same layout (TRAIN) */
    float *grad[MT_P_COUNT];
    float *opt; /* slab: MT_MEM_OPTIMIZER, m then v (TRAIN) */
    float *opt_m, *opt_v;
    float *acts; /* slab: MT_MEM_ACTIVATIONS */
    float *act[MT_A_COUNT];
    float *dacts; /* slab: MT_MEM_ACT_GRADS (TRAIN) */
    float *dact[MT_D_COUNT];
    void *work;            /* slab: MT_MEM_WORKSPACE */
    int *inputs, *targets; /* carved from work */

    size_t fwd_B, fwd_T;                    /* shape of the last forward */
    float last_loss;                        /* mean loss of the last forward with targets, or -1 */
    uint64_t adam_step;                     /* optimizer steps taken */
    int grads_zero;                         /* gradients known to be all zero (zero_grad is free) */
    struct mt_gpt_linear_hook hook;         /* forward linears (NULL matmul = default) */
    struct mt_gpt_linear_bwd_hook bwd_hook; /* backward linears (NULL = default) */
    struct mt_gpt_embed_hook embed_hook;    /* token-embedding lookup (NULL = read wte) */

    /* Tensors that live outside the weight slab (mt_gpt_create_mapped: a file mapped
     * into memory, zero copy): mapped[p] = 1 for those, their bytes, and what frees them. */
    unsigned char mapped[MT_P_COUNT];
    size_t mapped_bytes;
    void (*mapped_release)(void *user);
    void *mapped_user;
};

/* Creates a model with zeroed weights and the state of `mode` for batch B, sequence T
 * (T <= cfg->seq_len; B and T ignored for MT_GPT_WEIGHTS). Each slab is allocated under
 * its category with mt_memcat_set and its tensors reported with mt_memcat_report.
 * Returns 0 and *out (free with mt_gpt_free), or -1 with a message (bad configuration,
 * out of memory); nothing is left allocated on failure. */
int mt_gpt_create(struct mt_gpt **out, const struct mt_gpt_config *cfg, enum mt_gpt_mode mode,
                  size_t B, size_t T, char *err, size_t errlen);

/* mt_gpt_create, except that the weight tensors p with ext[p] != NULL are not allocated:
 * param[p] = ext[p] (param_len[p] floats, memory the model does not own: a read-mapped
 * model file whose tensor bytes already have the model's layout), mapped[p] = 1, and
 * mapped_bytes counts them; the weight slab holds the other tensors only. ext may be NULL
 * (= mt_gpt_create). On success the model owns `release`: mt_gpt_free calls
 * release(user) once, after freeing its slabs (NULL release: nothing to call). On failure
 * nothing is taken (the caller still owns its mapping). Refused for MT_GPT_TRAIN (the
 * optimizer addresses the weights by their slab offset). A mapped tensor may be written
 * (a copy-on-write mapping keeps the file unchanged); mt_gpt_drop_weights keeps the
 * mapped tensors it does not drop where they are. */
int mt_gpt_create_mapped(struct mt_gpt **out, const struct mt_gpt_config *cfg,
                         enum mt_gpt_mode mode, size_t B, size_t T, float *const ext[MT_P_COUNT],
                         void (*release)(void *user), void *user, char *err, size_t errlen);

/* Bytes the mapped tensors would take in the weight slab (its alignment padding
 * included): slab_bytes[MT_MEM_WEIGHTS] plus this is what mt_gpt_memory plans for the
 * weights of a model that maps nothing. */
size_t mt_gpt_mapped_slab_bytes(const struct mt_gpt *m);

/* Copies every weight tensor of src into dst, tensor by tensor (wherever each lives: slab
 * or mapping). Both must have the same configuration and hold the same tensors. Returns
 * 0, or -1 with a message. */
int mt_gpt_copy_weights(struct mt_gpt *dst, const struct mt_gpt *src, char *err, size_t errlen);

/* Moves a model without gradients between MT_GPT_WEIGHTS, MT_GPT_INFER and MT_GPT_FROZEN
 * (which adds the activation gradients, as mt_gpt_create would): the
 * activation and workspace slabs are freed (to MT_GPT_WEIGHTS: the model then holds its
 * weights only, as a deployment that decodes does) or allocated zeroed for (B, T) exactly
 * as mt_gpt_create would (to MT_GPT_INFER; under their categories, tensors reported), and
 * slab_bytes, mode, B and T follow, so slab_bytes equals mt_gpt_memory(cfg, B, T, mode)
 * (the weight slab aside, which this never touches: dropped tensors and hooks stay).
 * Pointers into the old activation or workspace slabs become invalid, and there is no
 * forward to run a backward on. The same mode and shape again is a no-op. Returns 0, or
 * -1 with a message: a training model or mode (gradients would be lost), a bad shape
 * (the model unchanged), or out of memory (the model then holds its weights only). */
int mt_gpt_set_mode(struct mt_gpt *m, enum mt_gpt_mode mode, size_t B, size_t T, char *err,
                    size_t errlen);

/* Frees everything a model owns; NULL is a no-op. */
void mt_gpt_free(struct mt_gpt *m);

/* Returns the memory of the weight tensors marked in drop[] (a variant now serves them in
 * another form: packed, sparse): the weight slab is rebuilt, under MT_MEM_WEIGHTS and with
 * its tensors reported, holding only the other tensors; a dropped tensor has param[p] =
 * NULL and param_len[p] = 0, and slab_bytes[MT_MEM_WEIGHTS] is updated. Only for a model
 * without gradients (not MT_GPT_TRAIN). Returns 0, or -1 with a message (training model,
 * out of memory) leaving the model unchanged. After it, anything that reads a dropped
 * tensor must go through a hook (linear, embedding), and checkpoints refuse the model. */
int mt_gpt_drop_weights(struct mt_gpt *m, const unsigned char drop[MT_P_COUNT], char *err,
                        size_t errlen);

/* Bytes of the weight slab of a model of cfg once the tensors marked in drop[] are dropped
 * (mt_gpt_drop_weights; drop NULL: none, mt_gpt_memory's weights), without allocating. */
size_t mt_gpt_weight_slab_bytes(const struct mt_gpt_config *cfg,
                                const unsigned char drop[MT_P_COUNT]);

/* Exact bytes of the weight tensors the model still holds in fp32 (without the slab's
 * alignment padding): what a deployment of the fp32 part stores. */
size_t mt_gpt_weight_bytes(const struct mt_gpt *m);

/* Seeded initialization: weights normal(0, 0.02), the two residual projections per
 * block scaled by 1/sqrt(2L), biases 0, LayerNorm gains 1. Same seed, same weights on
 * every machine. Also resets the optimizer state. */
void mt_gpt_init(struct mt_gpt *m, uint64_t seed);

/* Default linear layer (oneDNN GEMM over the model's fp32 weights). Same contract as
 * struct mt_gpt_linear_hook::matmul with user = the model. */
int mt_gpt_linear_default(void *model, size_t layer, enum mt_linear which, const float *in,
                          float *out, size_t rows);
/* Runs one linear layer of the model: through the hook when set, else the default. */
int mt_gpt_linear(struct mt_gpt *m, size_t layer, enum mt_linear which, const float *in, float *out,
                  size_t rows);
/* Backward of one linear layer: through bwd_hook when set, else the default. */
int mt_gpt_linear_bwd(struct mt_gpt *m, size_t layer, enum mt_linear which, const float *dout,
                      const float *in, float *din, size_t rows);
/* Default linear backward (fp32 oneDNN GEMMs), user = the model. */
int mt_gpt_linear_bwd_default(void *model, size_t layer, enum mt_linear which, const float *dout,
                              const float *in, float *din, size_t rows);
/* Where the gradients of a linear layer's weight and bias live (NULL without gradients;
 * *db NULL for the LM head); db may be NULL. */
void mt_gpt_linear_grads(const struct mt_gpt *m, size_t layer, enum mt_linear which, float **dw,
                         float **db);
/* Where the fp32 weight (out_dim x in_dim) and bias (NULL for the LM head) of a linear
 * layer live, and its dimensions. */
void mt_gpt_linear_weights(const struct mt_gpt *m, size_t layer, enum mt_linear which, float **w,
                           float **b, size_t *in_dim, size_t *out_dim);

/* Forward pass on inputs (B, T) token ids, B <= m->B, T <= m->T. With targets (may be
 * NULL; entries < 0 are ignored) it computes the losses and *mean_loss (mean over the
 * counted targets) and leaves probabilities in act[MT_A_LOGITS]; without, logits stay
 * raw. Inputs and targets are copied, so the caller may reuse its buffers. Returns 0, or
 * -1 with a message (bad shape or token id, hook failure). */
int mt_gpt_forward(struct mt_gpt *m, const int *inputs, const int *targets, size_t B, size_t T,
                   float *mean_loss, char *err, size_t errlen);

/* Activation a of layer l in the model's slab (its layer slot: l when training, the one
 * slot of inference), the residual stream entering layer l (the embeddings or layer
 * l - 1's output), and block l's norm parameters, their gradients (NULL without) and
 * activations (MT_A_LN1 .. MT_A_FCH_GELU) as mt_block_forward takes them. Address
 * arithmetic only: they serve a model whose slabs are device memory too (cuda/cgpt.h). */
float *mt_gpt_act_at(const struct mt_gpt *m, enum mt_gpt_act a, size_t l);
const float *mt_gpt_layer_input(const struct mt_gpt *m, size_t l);
void mt_gpt_block_tensors(const struct mt_gpt *m, size_t l, float *ln[MT_P_COUNT],
                          float *dln[MT_P_COUNT], float *act[MT_A_COUNT]);

/* Sets all parameter gradients to zero (TRAIN mode). */
void mt_gpt_zero_grad(struct mt_gpt *m);

/* Backward of the last forward (which must have had targets), accumulating into the
 * gradients (MT_GPT_FROZEN: none; only the activation gradients and the linear backward
 * hook run): grads += d(loss_scale * sum(losses) / norm_tokens)/dparams. norm_tokens = 0
 * means the tokens of this forward (B*T), giving the gradient of the mean loss; gradient
 * accumulation over k micro-batches passes the effective batch's token count. The
 * probabilities of the forward are consumed. Returns 0 or -1 with a message (wrong
 * mode, no forward with targets). */
int mt_gpt_backward(struct mt_gpt *m, float loss_scale, size_t norm_tokens, char *err,
                    size_t errlen);

/* Backward for a loss the caller computes from the logits (distillation, custom
 * losses): after a forward (targets optional), the caller overwrites act[MT_A_LOGITS]
 * (fwd_B x fwd_T x V) with d(loss)/d(logits) and calls this; gradients accumulate as in
 * mt_gpt_backward. Returns 0 or -1 with a message (wrong mode, no forward). */
int mt_gpt_backward_dlogits(struct mt_gpt *m, char *err, size_t errlen);

/* Global L2 norm of the gradients (thread-count independent order). */
float mt_gpt_grad_norm(const struct mt_gpt *m);

/* Optimizer hyperparameters and the learning-rate schedule. */
struct mt_gpt_recipe {
    float lr;          /* peak learning rate */
    float min_lr_frac; /* cosine decays to lr * min_lr_frac */
    size_t warmup;     /* linear warmup steps */
    size_t steps;      /* total steps of the schedule */
    float beta1, beta2, eps, weight_decay;
    float grad_clip; /* clip the global norm to this; 0 = no clipping */
    size_t batch;    /* B */
    size_t seq;      /* T */
};
/* The issue-2 default: lr 3e-3, betas 0.9/0.95, eps 1e-8, wd 0.1, warmup 100, cosine to
 * 10 %, clip 1.0, B 16, T 128, `steps` steps (warmup shortened to steps/10 when longer). */
struct mt_gpt_recipe mt_gpt_recipe_default(size_t steps);

/* Learning rate at step (0-based): linear warmup to lr over `warmup` steps, then cosine
 * down to lr * min_lr_frac at `steps`. */
float mt_gpt_lr_at(const struct mt_gpt_recipe *r, size_t step);

struct mt_adamw_args;
/* Fills *a (kernels.h) for one AdamW update of a tensor under recipe r: lr, the recipe's
 * betas and eps, its weight decay when `decays` (mt_gpt_param_decays), step (1-based),
 * and the gradient scale 1/grad_div, times grad_clip / norm when the global gradient norm
 * `norm` (already divided by grad_div) exceeds the recipe's clip. zero_grad = 1 (the
 * update consumes the gradients). Every engine's optimizer step builds its update here. */
void mt_gpt_adamw_args(struct mt_adamw_args *a, const struct mt_gpt_recipe *r, float lr, int decays,
                       float norm, float grad_div, uint64_t step);

/* One AdamW step with learning rate lr on the accumulated gradients: clips the global
 * gradient norm to r->grad_clip (after dividing by grad_div, e.g. a loss scale; 1 = none),
 * bias-corrected moments, decoupled weight decay on 2-D weights only. Consumes the
 * gradients: they are zero afterwards (fused into the update; the next zero_grad is
 * free). Returns the gradient norm before clipping (after grad_div). */
float mt_gpt_adamw_step(struct mt_gpt *m, const struct mt_gpt_recipe *r, float lr, float grad_div);

/* forward + zero_grad + backward + adamw_step at lr_at(step). Returns 0 and the loss and
 * gradient norm, or -1 with a message. */
int mt_gpt_train_step(struct mt_gpt *m, const struct mt_gpt_recipe *r, size_t step,
                      const int *inputs, const int *targets, float *loss, float *gnorm, char *err,
                      size_t errlen);

/* ---------------------------------------------------------------- decoding */

/* KV cache for batch-1 decoding of up to `max_T` positions (<= seq_len). Its keys and
 * values are allocated under MT_MEM_KV_CACHE, its per-token scratch under
 * MT_MEM_WORKSPACE. */
struct mt_kvc;
struct mt_kvc_spec;
struct mt_gpt_kv {
    size_t max_T, pos;    /* capacity and positions filled */
    struct mt_kvc *cache; /* keys and values in their format and layout (kvcache.h) */
    float *scratch;       /* x, ln, qkv, atty, proj, fch (F; SwiGLU 3F), logits (V) */
    float *logits;        /* into scratch: (V) logits of the last decoded token */
    size_t kv_bytes, scratch_bytes;
};

/* Bytes of an fp32 contiguous KV cache (a ring of window positions under a sliding
 * window shorter than max_T): into kv_bytes / scratch_bytes (either may be
 * NULL). Other formats: mt_kvc_contiguous_bytes (kvcache.h); the scratch is the same. */
void mt_gpt_kv_memory(const struct mt_gpt_config *cfg, size_t max_T, size_t *kv_bytes,
                      size_t *scratch_bytes);
int mt_gpt_kv_create(struct mt_gpt_kv **out, const struct mt_gpt_config *cfg, size_t max_T,
                     char *err, size_t errlen);
/* The same with keys and values stored as `spec` says (kvcache.h: format, layout);
 * spec NULL is the fp32 contiguous cache of mt_gpt_kv_create. kv_bytes is what the
 * cache allocated. Returns 0 or -1 with a message (bad spec, out of memory). */
int mt_gpt_kv_create_spec(struct mt_gpt_kv **out, const struct mt_gpt_config *cfg, size_t max_T,
                          const struct mt_kvc_spec *spec, char *err, size_t errlen);
void mt_gpt_kv_free(struct mt_gpt_kv *kv);
/* Forgets the cached positions (pos = 0). */
void mt_gpt_kv_reset(struct mt_gpt_kv *kv);

/* Feeds one token at position kv->pos, appends its keys/values and leaves the next-token
 * logits in kv->logits (V floats). Uses the model's linear hook. Works in any mode (the
 * model only needs weights). Returns 0, or -1 with a message (cache full, bad token,
 * hook failure). */
int mt_gpt_decode_step(struct mt_gpt *m, struct mt_gpt_kv *kv, int token, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
