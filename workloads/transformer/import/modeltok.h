/* modeltok.h — the tokenizer a model file carries: a Hugging Face folder's
 * tokenizer.json (BOS / EOS as its tokenizer_config.json names them: mt_tok_load_folder),
 * a GGUF file's tokenizer.ggml.* metadata (read and written).
 *
 * What it is for: an imported model scores text with its own tokenizer by default
 * (workloads/common: `tokenizer=auto`), and `memtrade export --format gguf` keeps the
 * tokenizer, so export -> import gives the same ids.
 * What it is not for: tokenizing (tokenizer.h), the model's weights (modelfile.h).
 *
 * GGUF keys (tokenizer.h gives the standard ones' meaning, as llama.cpp writes them):
 * tokenizer.ggml.model, tokens, merges, scores, token_type, pre, bos_token_id,
 * eos_token_id, unknown_token_id, add_space_prefix; and what those leave to the model's
 * name, which memtrade writes and reads first when present:
 *   tokenizer.memtrade.pattern        string: the byte-level pre-tokenizer regex
 *   tokenizer.memtrade.ignore_merges  bool   (absent: llama.cpp's rule, true for pre
 *                                             llama-bpe / llama3, else false)
 *   tokenizer.memtrade.space_prefix   u32    mt_tok_arrays.space_prefix
 *   tokenizer.memtrade.byte_fallback  bool   llama (absent: true)
 *   tokenizer.memtrade.fuse_unk       bool   llama (absent: true)
 *   tokenizer.memtrade.metaspace      bool   llama: "▁" comes from a Metaspace
 *                                             pre-tokenizer, not the normalizer (absent:
 *                                             false, but for space_prefix 3); decides how
 *                                             `normalized` added tokens match (tokenizer.h)
 *   tokenizer.memtrade.added_flags    i32[n_tokens]: MT_TOK_* of the added tokens
 * Written for llama.cpp too: scores (llama: minus the rank of the merge that makes each
 * token, -1e9 for the others, so SentencePiece's highest-score-first order is the merge
 * order) and token_type (3 control for special added tokens, 4 user-defined, 2 unknown,
 * 6 byte pieces, 1 normal).
 */
#ifndef MT_IMPORT_MODELTOK_H
#define MT_IMPORT_MODELTOK_H

#include <stddef.h>

#include "gguf.h"
#include "tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Loads the tokenizer of the model file at `path` (a Hugging Face folder or a .gguf
 * file). Returns 0 with *out the tokenizer (free with mt_tok_free), 0 with *out NULL when
 * the file carries none (no tokenizer.json; no tokenizer.ggml.model), or -1 with a
 * message naming the file and what is wrong or unsupported. */
int mt_model_tokenizer(const char *path, struct mt_tokenizer **out, char *err, size_t errlen);

/* The tokenizer of an opened GGUF file's metadata: as mt_model_tokenizer. */
int mt_model_gguf_tokenizer(const struct mt_gguf *g, struct mt_tokenizer **out, char *err,
                            size_t errlen);

/* Appends t's metadata (above) to w. t must not be the byte tokenizer. The token arrays
 * are padded up to n_vocab ids (the model's: llama.cpp takes its vocab size from them)
 * with tokens "[PAD<id>]" of type 5 (unused), as llama.cpp's converter pads; the reader
 * drops such trailing tokens again. Returns 0, or -1 with a message (mt_tok_to_arrays's;
 * a token of t named like a padding token it would need). */
int mt_model_gguf_write_tokenizer(struct mt_gguf_writer *w, const struct mt_tokenizer *t,
                                  size_t n_vocab, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
