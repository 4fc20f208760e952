/* tokenizer.h — text bytes to token ids and back: the byte tokenizer, byte-level BPE
 * (GPT-2, Llama-3) and SentencePiece-style BPE with byte fallback (Llama-2, TinyLlama).
 *
 * What it is for: one interface over the three tokenizers a model of the GPT-2 or Llama
 * families uses, so the corpus, training batches and the evaluation protocol (data.h,
 * eval.h) work on token ids of any model and bits per byte is comparable across them.
 * What it is not for: training tokenizers, Unigram / WordPiece / WordLevel models,
 * normalizers other than SentencePiece's (no NFC/NFKC, no lowercasing).
 *
 * The three kinds:
 *  - MT_TOK_BYTES: token id = byte value, vocab 256 (the reference model's own).
 *  - MT_TOK_BYTE_BPE: the text is cut by the pre-tokenizer regex (run by PCRE2 with
 *    PCRE2_UTF | PCRE2_UCP: GPT-2's pattern by default, or a `Split` pattern such as
 *    Llama-3's), each piece's bytes are mapped to characters by GPT-2's byte-to-unicode
 *    table and merged by BPE rank. Decoding maps the characters back to bytes.
 *  - MT_TOK_SP_BPE: no pre-tokenizer; the text becomes "▁" + text with every " " replaced
 *    by "▁" (normalizer Prepend + Replace, or pre-tokenizer Metaspace without split), is
 *    cut into UTF-8 characters, a character missing from the vocab becomes its <0xNN>
 *    byte pieces (byte fallback; <unk> when those are missing too), and pieces are merged
 *    by rank. Decoding: "▁" -> " ", <0xNN> -> the byte, one leading space stripped.
 * BPE merges as Hugging Face `tokenizers` does them: repeatedly the pair of lowest merge
 * rank, leftmost first among equal ranks (ignore_merges: a whole piece found in the vocab
 * is taken as one token). Added / special tokens are cut out of the text first and never
 * merged, as tokenizers' AddedVocabulary does (added_vocabulary.rs, find_matches and
 * extract_and_normalize): leftmost-longest matches, first those not `normalized` in the
 * raw text, then, in each part between them after the normalizer, the `normalized` ones
 * as their normalized content; a `single_word` match touching a word character (\w) on
 * either side is skipped; `lstrip` / `rstrip` take the whitespace (Unicode White_Space)
 * before / after the match into it (lstrip never past the previous match). The
 * normalizer applies to each part between non-normalized tokens. One departure: after an
 * rstrip match the search resumes past the whitespace it took (tokenizers resumes at the
 * token's end and could match an added token that starts with whitespace inside it).
 * Bytes that are not valid UTF-8 are pieces of their own (byte-level BPE)
 * or byte-fallback pieces (SentencePiece); the text never has to be valid UTF-8.
 * Encoding adds no BOS: prepend mt_tok_bos() where a model expects it.
 *
 * Decoding is bytes exact: decode(encode(x)) == x for every x (with the vocab holding all
 * 256 byte characters, or byte pieces, as trained tokenizers do), special tokens written
 * as their content. mt_tok_piece_bytes gives the bytes of text each id decodes to: the
 * denominator of bits per byte (eval.h).
 *
 * In-memory contract (what a GGUF reader calls, mt_tok_from_arrays): a GGUF file's
 * metadata maps one to one onto struct mt_tok_arrays:
 *   tokenizer.ggml.model       -> model: "gpt2" (byte-level BPE) or "llama"
 *                                 (SentencePiece BPE); "bytes" for the byte tokenizer
 *   tokenizer.ggml.tokens      -> tokens[n_tokens] (id = index; UTF-8 strings as stored:
 *                                 byte-level characters for gpt2, "▁" and <0xNN> for llama)
 *   tokenizer.ggml.merges      -> merges[n_merges], "left right" in rank order (may be
 *                                 absent for llama: then scores give the merges, below)
 *   tokenizer.ggml.scores      -> scores[n_tokens] or NULL; for llama without merges, a
 *                                 pair (a, b) merges when a+b is a token, the higher the
 *                                 score of a+b the earlier (ties: lower id first)
 *   tokenizer.ggml.token_type  -> token_type[n_tokens] or NULL: 1 normal, 2 unknown,
 *                                 3 control, 4 user-defined, 5 unused, 6 byte; control
 *                                 and user-defined tokens are matched as added tokens
 *   tokenizer.ggml.pre         -> pattern: mt_tok_pattern_for(pre) gives the regex of a
 *                                 known name ("gpt2", "default", "llama-bpe", "llama3");
 *                                 NULL = GPT-2's; ignored for llama
 *   tokenizer.ggml.bos_token_id / eos_token_id / unknown_token_id -> bos_id / eos_id /
 *                                 unk_id (-1 when absent; llama's unk defaults to the
 *                                 token "<unk>" when present)
 *   tokenizer.ggml.add_space_prefix -> space_prefix (false: 1, true: 2)
 * What GGUF's standard keys leave to the model's name, memtrade writes as
 * tokenizer.memtrade.* (import/modeltok.h) and the arrays carry: added_flags,
 * ignore_merges, space_prefix, no_byte_fallback, no_fuse_unk, metaspace (0 = the
 * default).
 * The arrays are copied; the caller keeps ownership of its own.
 *
 * Loading from a Hugging Face tokenizer.json (mt_tok_load_json) accepts: model BPE
 * (vocab, merges as "a b" strings or [a, b] pairs, byte_fallback, unk_token, fuse_unk,
 * ignore_merges); normalizer null or Sequence/one of Prepend("▁") and Replace(" ", "▁");
 * pre_tokenizer null, ByteLevel, Metaspace (split false), Split (Isolated, regex) and a
 * Sequence of a Split and ByteLevel(use_regex false); decoder ByteLevel, Metaspace or a
 * Sequence of Replace, ByteFallback, Fuse, Strip; added_tokens. Anything else is refused
 * naming what was found and what is supported; so is a malformed file (bad JSON, a merge
 * of unknown tokens, duplicate or out-of-range ids).
 *
 * How a workload picks one: mt_tok_load(spec) with spec "" or "bytes" (the byte
 * tokenizer), a tokenizer.json file, or a Hugging Face model folder holding one
 * (mt_tok_load_folder); the workloads' `tokenizer=` parameter goes through it, and its
 * default, `auto`, takes an imported model's own (import/modeltok.h: a folder's
 * tokenizer.json, a GGUF file's metadata through mt_tok_from_arrays).
 *
 * Thread safety: a built tokenizer is read-only; encode and decode may run on many
 * threads at once.
 */
#ifndef MT_TRANSFORMER_TOKENIZER_H
#define MT_TRANSFORMER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mt_tok_kind {
    MT_TOK_BYTES = 0, /* id = byte */
    MT_TOK_BYTE_BPE,  /* GPT-2 / Llama-3 byte-level BPE */
    MT_TOK_SP_BPE,    /* Llama-2 SentencePiece-style BPE with byte fallback */
};

struct mt_tokenizer;

/* Flags of an added token: tokenizer.json's added_tokens fields (see above). */
#define MT_TOK_LSTRIP 1u      /* takes the whitespace before it */
#define MT_TOK_RSTRIP 2u      /* takes the whitespace after it */
#define MT_TOK_NORMALIZED 4u  /* matched in the normalized text as its normalized content */
#define MT_TOK_SINGLE_WORD 8u /* matched only where no word character touches it */
#define MT_TOK_SPECIAL 16u    /* special (control): no effect on the ids */

/* GPT-2's pre-tokenizer regex (tokenizers' ByteLevel with use_regex) and Llama-3's. */
#define MT_TOK_PATTERN_GPT2                                                                        \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define MT_TOK_PATTERN_LLAMA3                                                                      \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "                     \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* The regex of a GGUF tokenizer.ggml.pre name ("gpt2", "default", "llama-bpe",
 * "llama3"), or NULL for a name not known here. Pure function. */
const char *mt_tok_pattern_for(const char *pre);

/* A tokenizer as a GGUF file's metadata gives it (see the contract above). */
struct mt_tok_arrays {
    const char *model;         /* "gpt2", "llama" or "bytes" */
    const char *const *tokens; /* n_tokens strings, NUL-terminated UTF-8 */
    size_t n_tokens;
    const char *const *merges; /* n_merges "left right", rank order; may be NULL */
    size_t n_merges;
    const float *scores;            /* n_tokens or NULL */
    const int32_t *token_type;      /* n_tokens or NULL */
    const char *pattern;            /* pre-tokenizer regex (gpt2), NULL = GPT-2's */
    int32_t bos_id, eos_id, unk_id; /* -1 = none */
    /* appended: 0 / NULL = the model's default */
    const uint8_t *added_flags; /* n_tokens or NULL: MT_TOK_* of each added token (NULL:
                                   control tokens special, none normalized or stripped) */
    int ignore_merges;          /* 1: a piece found whole in the vocab is one token */
    int space_prefix;           /* 0 the model's (llama: "▁" before each part between added
                                   tokens; gpt2: none), 1 none, 2 before each part, 3 before
                                   the first part only (llama) */
    int no_byte_fallback, no_fuse_unk; /* llama: 1 turns byte fallback / fusing <unk> off */
    int metaspace; /* llama: 1 when "▁" comes from a Metaspace pre-tokenizer, not the
                      normalizer: `normalized` added tokens are then matched as their own
                      content, spaces and all (space_prefix 3 implies it) */
};

/* Builds the byte tokenizer. Returns 0, or -1 with a message (out of memory). */
int mt_tok_bytes(struct mt_tokenizer **out, char *err, size_t errlen);

/* Builds a tokenizer from in-memory arrays (the GGUF contract above). Returns 0, or -1
 * with a message naming the problem (unknown model, duplicate token, merge of unknown
 * tokens, bad regex, id out of range); *out is then NULL. */
int mt_tok_from_arrays(struct mt_tokenizer **out, const struct mt_tok_arrays *a, char *err,
                       size_t errlen);

/* The inverse of mt_tok_from_arrays: fills *a so that mt_tok_from_arrays(a) builds a
 * tokenizer with t's ids and identity. The token strings are t's (valid while t lives);
 * the merges ("left right" in rank order), token types and flags are malloc'ed: release
 * them with mt_tok_arrays_free. Returns 0, or -1 with a message: the byte tokenizer (it
 * has no arrays), an id without a token, a merge of tokens holding a space (not
 * expressible as "left right"), out of memory. */
int mt_tok_to_arrays(const struct mt_tokenizer *t, struct mt_tok_arrays *a, char *err,
                     size_t errlen);
void mt_tok_arrays_free(struct mt_tok_arrays *a);

/* Loads a Hugging Face tokenizer.json. Returns 0, or -1 with a message naming the path and
 * what was found and what is supported; *out is then NULL. */
int mt_tok_load_json(struct mt_tokenizer **out, const char *path, char *err, size_t errlen);

/* Writes t as a Hugging Face tokenizer.json at `path` that mt_tok_load_json reads back
 * into a tokenizer of the same identity (mt_tok_identity) and that Hugging Face
 * `tokenizers` reads as the same tokenizer: model BPE (vocab in id order, the added
 * tokens included; merges as [left, right] pairs in rank order; unk_token, byte_fallback,
 * fuse_unk, ignore_merges), normalizer (SentencePiece's Prepend("▁") when it prepends and
 * Replace(" ", "▁")), pre_tokenizer (ByteLevel with GPT-2's regex, or Split(regex,
 * Isolated) then ByteLevel without one; Metaspace with its prepend_scheme), the matching
 * decoder, added_tokens with their flags, no post-processor (no BOS added, as
 * mt_tok_encode). BOS / EOS ids are not stored (tokenizer.json has no field for them:
 * mt_tok_save_folder's tokenizer_config.json names them). The byte tokenizer is written
 * as byte-level BPE of 256 tokens without merges, token b = GPT-2's character of byte b
 * (mt_tok_is_bytes holds for what comes back). Returns 0, or -1 with a message. */
int mt_tok_save_json(const struct mt_tokenizer *t, const char *path, char *err, size_t errlen);

/* mt_tok_save_json as DIR/tokenizer.json and DIR/tokenizer_config.json (what
 * transformers' AutoTokenizer reads beside it: tokenizer_class PreTrainedTokenizerFast,
 * bos_token / eos_token / unk_token by content where t has them). DIR must exist. */
int mt_tok_save_folder(const struct mt_tokenizer *t, const char *dir, char *err, size_t errlen);

/* Loads DIR/tokenizer.json of a Hugging Face model folder (the entry point of model
 * import), with BOS / EOS as DIR/tokenizer_config.json names them (bos_token, eos_token)
 * when it does. Returns 0, or -1 with a message (no tokenizer.json there,
 * mt_tok_load_json's, a tokenizer_config.json that is not JSON or names a token the vocab
 * lacks). */
int mt_tok_load_folder(struct mt_tokenizer **out, const char *dir, char *err, size_t errlen);

/* The one entry point of a `tokenizer=` parameter: NULL, "" or "bytes" = the byte
 * tokenizer; a folder = mt_tok_load_folder; otherwise a tokenizer.json file. */
int mt_tok_load(struct mt_tokenizer **out, const char *spec, char *err, size_t errlen);

void mt_tok_free(struct mt_tokenizer *t);

enum mt_tok_kind mt_tok_kind(const struct mt_tokenizer *t);
/* 1 when t gives every text the byte tokenizer's ids: the byte tokenizer, or a byte-level
 * BPE of 256 tokens without merges or added tokens whose token b is byte b's character
 * (what memtrade writes for its own byte-level models). Pure. */
int mt_tok_is_bytes(const struct mt_tokenizer *t);
/* "bytes", "byte-level BPE" or "SentencePiece BPE". */
const char *mt_tok_kind_name(const struct mt_tokenizer *t);
/* Ids run over [0, vocab). */
size_t mt_tok_vocab(const struct mt_tokenizer *t);
/* BOS / EOS ids, -1 when the tokenizer has none. */
int32_t mt_tok_bos(const struct mt_tokenizer *t);
int32_t mt_tok_eos(const struct mt_tokenizer *t);
/* The id of the token whose string is `s` (as stored in the vocab), or -1. */
int32_t mt_tok_id(const struct mt_tokenizer *t, const char *s);
/* FNV-1a 64 of everything that decides the ids (kind, vocab, merges, pattern, added
 * tokens): part of a model cache key. */
uint64_t mt_tok_identity(const struct mt_tokenizer *t);
/* vocab entries: bytes of text each id decodes to (0 for an id with no token). */
const uint32_t *mt_tok_piece_bytes(const struct mt_tokenizer *t);

/* Encodes text[0, n) into *ids (malloc'ed, free() it; NULL for n == 0) and *n_ids.
 * Returns 0, or -1 with a message (out of memory, a regex match error). */
int mt_tok_encode(const struct mt_tokenizer *t, const uint8_t *text, size_t n, int32_t **ids,
                  size_t *n_ids, char *err, size_t errlen);

/* Decodes ids[0, n) into out (capacity cap; may be NULL with cap 0) and returns the length
 * of the whole decoded text (write more than cap: call again with a larger buffer), or
 * (size_t)-1 for an id outside the vocab. */
size_t mt_tok_decode(const struct mt_tokenizer *t, const int32_t *ids, size_t n, uint8_t *out,
                     size_t cap);

#ifdef __cplusplus
}
#endif
#endif
