/* hfconfig.h — a Hugging Face config.json as the reference model's configuration, and
 * back.
 *
 * What it is for: GPT2LMHeadModel (model_type gpt2) and LlamaForCausalLM (model_type
 * llama) configurations: sizes, grouped-query heads, rope_theta, the tied head, biases.
 * What the model cannot reproduce is refused, naming the field, the value found and what
 * is supported: another architecture, an activation other than GELU (tanh) / SiLU, a
 * norm epsilon other than 1e-5 (the kernels' own), rope_scaling, a head_dim other than
 * hidden_size / heads, attention and MLP biases that differ.
 * What it is not for: the tokenizer files, the weights.
 */
#ifndef MT_IMPORT_HFCONFIG_H
#define MT_IMPORT_HFCONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "gpt.h"

/* Reads DIR/config.json into *cfg; arch (capacity n) gets the architecture name. Returns 0
 * or -1 with a message. */
int mt_hf_config_read(const char *dir, struct mt_gpt_config *cfg, char *arch, size_t n, char *err,
                      size_t errlen);

/* Writes DIR/config.json for cfg (family 0 GPT-2, 1 Llama), torch_dtype named by
 * `torch_dtype` ("float32", "float16", "bfloat16"), bos_token_id / eos_token_id the
 * tokenizer's ids (-1: none, written as null). Returns 0 or -1. */
int mt_hf_config_write(const char *dir, const struct mt_gpt_config *cfg, int llama,
                       const char *torch_dtype, int32_t bos, int32_t eos, char *err,
                       size_t errlen);

#endif
