/* modelfile.h — other people's model files as the reference model: import of Hugging
 * Face folders (config.json + safetensors) and GGUF v3 files of the GPT-2 and Llama
 * families, and export of memtrade's own models to both.
 *
 * What it is for: `-p model=PATH` (a folder or a .gguf file) wherever a preset is
 * accepted, `memtrade describe PATH` and `memtrade export`. The shape comes from
 * config.json (GPT2LMHeadModel, LlamaForCausalLM) or the GGUF metadata (general.architecture
 * gpt2 or llama); the weights are mapped onto the model's named tensors (gpt.h) by name:
 *   Hugging Face GPT-2   transformer.wte/wpe, h.N.ln_1/ln_2, h.N.attn.c_attn (q, k, v packed)
 *                        and c_proj, h.N.mlp.c_fc and c_proj (Conv1D: stored (in, out),
 *                        transposed on load), ln_f, lm_head (absent when tied)
 *   Hugging Face Llama   model.embed_tokens, model.layers.N.input_layernorm,
 *                        self_attn.q_proj/k_proj/v_proj (concatenated into qkv), o_proj,
 *                        post_attention_layernorm, mlp.gate_proj/up_proj (into fc),
 *                        down_proj, model.norm, lm_head
 *   GGUF (llama.cpp)     token_embd, position_embd, blk.N.attn_norm, attn_qkv or
 *                        attn_q/attn_k/attn_v, attn_output, ffn_norm, ffn_gate, ffn_up,
 *                        ffn_down, output_norm, output; Llama's attn_q and attn_k rows are
 *                        stored permuted for llama.cpp's interleaved RoPE (its convert
 *                        script's permute): un-permuted on load, permuted on export.
 * Every tensor is checked before the model is created (missing, extra, mis-shaped,
 * unsupported dtype; the file's own checks in safetensors.h and gguf.h), so a file is
 * loaded whole or not at all. F32 tensors whose bytes already have the model's layout
 * (whole tensors such as the embeddings and the LM head; for files memtrade wrote, every
 * tensor that needs no transpose) are not copied: the model points into the mapped file
 * (mt_gpt_create_mapped), so they appear in RSS as file pages and never on the heap.
 * What it is not for: tokenizers (tokenizer.h), other architectures, training state.
 */
#ifndef MT_IMPORT_MODELFILE_H
#define MT_IMPORT_MODELFILE_H

#include <stddef.h>

#include "dtype.h"
#include "gpt.h"
#include "tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

enum mt_model_format { MT_MF_HF = 0, MT_MF_GGUF = 1 };

/* What a model file holds beside its shape. */
struct mt_model_info {
    enum mt_model_format format;
    char arch[64];           /* "GPT2LMHeadModel", "LlamaForCausalLM", "gpt2", "llama" */
    size_t n_tensors;        /* tensors in the file(s) */
    size_t tensor_bytes;     /* bytes of tensor data as stored */
    size_t dtype_count[MT_DT_COUNT]; /* tensors of each type */
    size_t mapped_bytes;     /* of a load: weight bytes the model points into the file for */
    size_t copied_bytes;     /* of a load: weight bytes converted or copied into the slab */
    int has_tokenizer;       /* tokenizer.json in the folder, tokenizer.ggml.* in the GGUF */
};

/* 1 when a `model` parameter names a model file rather than a preset: it holds a '/' or
 * ends in ".gguf" (a preset name never does). Pure. */
int mt_model_is_path(const char *spec);

/* Reads the shape of the model at `path` (a Hugging Face folder or a .gguf file) into
 * *cfg (checked with mt_gpt_config_check) and what the file holds into *info (may be
 * NULL) without reading the weights. Refuses an unsupported architecture or option
 * (naming what was found and what is supported). Returns 0 or -1 with a message. */
int mt_model_peek(const char *path, struct mt_gpt_config *cfg, struct mt_model_info *info,
                  char *err, size_t errlen);

/* Loads the model at `path` into a fresh model of `mode` for (B, T) (mt_gpt_create).
 * With `expect` non-NULL the model is built with *expect, which must equal the file's
 * shape but for the options no weight depends on (attention kind, sliding window).
 * With map != 0 and mode other than MT_GPT_TRAIN, F32 tensors already in the model's
 * layout stay in the mapped file (see above); otherwise every tensor is copied into the
 * slab. F16, BF16, Q8_0 and Q4_0 tensors are decoded to fp32. On any failure nothing is
 * returned (*out = NULL) and the message names the file, the tensor and the problem.
 * info may be NULL. */
int mt_model_load(const char *path, const struct mt_gpt_config *expect, enum mt_gpt_mode mode,
                  size_t B, size_t T, int map, struct mt_gpt **out, struct mt_model_info *info,
                  char *err, size_t errlen);

/* Writes model m (full fp32 weights) as a Hugging Face folder `out` (config.json,
 * model.safetensors; tokenizer.json and tokenizer_config.json for a byte-level vocabulary
 * of 256: byte-level BPE without merges, token b = byte b) or as the GGUF
 * file `out`. The 2-D weight matrices are stored as `dtype` (F32, F16, BF16; GGUF also
 * Q8_0 and Q4_0), norms and biases as F32 in GGUF (llama.cpp's convention) and as
 * `dtype` in safetensors. GPT-2 family: LayerNorm, learned positions, GELU, biases, no
 * grouped-query attention; Llama family: RMSNorm, RoPE, SwiGLU. Other combinations and a
 * sliding window are refused (no field of either format holds them). Returns 0 or -1. */
int mt_model_export(const struct mt_gpt *m, enum mt_model_format fmt, enum mt_dtype dtype,
                    const char *out, char *err, size_t errlen);

/* mt_model_export with the model's tokenizer `tok` (NULL or the byte tokenizer: as
 * mt_model_export): GGUF gets its tokenizer.ggml.* metadata (modeltok.h), a Hugging Face
 * folder its tokenizer.json and tokenizer_config.json (mt_tok_save_folder), so that
 * mt_model_tokenizer on the result builds a tokenizer with the same identity and ids.
 * Without `tok`, a vocab of 256 gets the byte tokenizer's files, a larger one none. A
 * tokenizer with more ids than the model's vocab is refused. */
int mt_model_export_tok(const struct mt_gpt *m, const struct mt_tokenizer *tok,
                        enum mt_model_format fmt, enum mt_dtype dtype, const char *out, char *err,
                        size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
