/* ckpt.h — versioned, checksummed binary checkpoints of the reference GPT's weights.
 *
 * What it is for: saving a trained model and loading it back bit-exactly, refusing any
 * file that is not exactly what was written. Layout (little-endian):
 *   header  "MTGPTCKP" | u32 version | u32 0 | u64 vocab, seq_len, n_layer, n_head,
 *           n_embd, attention, n_kv_head, window, norm, pos, rope_theta, mlp, ffn,
 *           no_bias, untied | u64 n_tensors | u64 train_step | u64 FNV-1a-64 of the
 *           header bytes
 *           (versions 1 and 2, still read: version 1 without attention .. untied, version
 *           2 without norm .. untied; the missing fields load as the original model's 0)
 *   then one record per tensor the configuration has, in enum mt_gpt_param order (absent
 *   tensors, mt_gpt_param_shape 0 dims, have no record):
 *   tensor  u32 name_len | name | u32 dtype (1 = f32) | u32 ndim | u64 dims[ndim] |
 *           u64 nbytes | data | u64 FNV-1a-64 of the record bytes before it
 *   then end of file (trailing bytes are an error).
 * What it is not for: optimizer state or training resumption, or quantized formats
 * (plugins store those their own way).
 */
#ifndef MT_TRANSFORMER_CKPT_H
#define MT_TRANSFORMER_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "gpt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MT_CKPT_MAGIC "MTGPTCKP"
#define MT_CKPT_VERSION 3u

/* Writes the model's weights (any mode; refused if mt_gpt_drop_weights dropped a tensor) to
 * `path` atomically: a temporary file in the
 * same folder, fsync, rename. Returns 0, or -1 with a message; on failure `path` is
 * untouched and the temporary file removed. */
int mt_ckpt_save(const struct mt_gpt *m, const char *path, char *err, size_t errlen);

/* Reads only the header: the configuration and training step. Returns 0 or -1. */
int mt_ckpt_peek(const char *path, struct mt_gpt_config *cfg, uint64_t *train_step, char *err,
                 size_t errlen);

/* Loads a checkpoint into a fresh model of `mode` for (B, T) (see mt_gpt_create). When
 * `expect` is non-NULL the file's configuration must equal it. Every byte is validated
 * (magic, version, header and per-tensor checksums, names, dtypes, shapes, sizes, no
 * truncation, no trailing bytes); on any failure nothing is returned (*out = NULL) and
 * the message says what is wrong. *train_step may be NULL. */
int mt_ckpt_load(const char *path, const struct mt_gpt_config *expect, enum mt_gpt_mode mode,
                 size_t B, size_t T, struct mt_gpt **out, uint64_t *train_step, char *err,
                 size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
