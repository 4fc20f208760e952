/* data.h — the text corpus as bytes: loading, the train/validation split, batches.
 *
 * What it is for: any text file (or a folder of them) read as raw bytes (token id = byte
 * value), split 90 % train / 10 % validation, and seeded random batches of windows; with
 * a tokenizer (tokenizer.h), each split's text encoded to token ids, so the batches and
 * the evaluation (eval.h) run on ids wider than a byte.
 * The default corpus is Debian's fortunes: the plain files of /usr/share/games/fortunes
 * sorted by name, without the .dat indexes, the .u8 variants and symlinks.
 * What it is not for: tokenizing (tokenizer.h), or evaluation (eval.h).
 */
#ifndef MT_TRANSFORMER_DATA_H
#define MT_TRANSFORMER_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"
#include "tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MT_CORPUS_DEFAULT_DIR "/usr/share/games/fortunes"

/* A sequence of token ids: the bytes of a text (the byte tokenizer: id = byte) or 32-bit
 * ids, with the bytes of text each id stands for (the denominator of bits per byte). */
struct mt_tokens {
    const uint8_t *bytes;         /* the ids as bytes, or NULL */
    const int32_t *ids;           /* the ids, when bytes is NULL */
    size_t n;                     /* tokens */
    const uint32_t *piece_bytes;  /* bytes of text per id (vocab entries); NULL: 1 each */
    size_t vocab;                 /* ids are in [0, vocab) (256 for bytes) */
};

/* The view of n bytes as byte-tokenizer ids. Pure. */
static inline struct mt_tokens mt_tokens_of_bytes(const uint8_t *p, size_t n)
{
    struct mt_tokens s = {p, NULL, n, NULL, 256};
    return s;
}

/* The id at position i < s->n. */
static inline int mt_tokens_at(const struct mt_tokens *s, size_t i)
{
    return s->bytes ? s->bytes[i] : s->ids[i];
}

/* Bytes of text of the ids at [from, from + n). */
static inline size_t mt_tokens_text_bytes(const struct mt_tokens *s, size_t from, size_t n)
{
    if (!s->piece_bytes) return n;
    size_t b = 0;
    for (size_t i = from; i < from + n; i++)
        b += s->piece_bytes[mt_tokens_at(s, (size_t)i)];
    return b;
}

struct mt_corpus {
    uint8_t *bytes;             /* the whole text (allocated under MT_MEM_DATA) */
    size_t n;                   /* its length */
    const uint8_t *train, *val; /* views into bytes: first 90 %, last 10 % */
    size_t n_train, n_val;
    size_t n_files;    /* files concatenated (1 for a plain file) */
    uint64_t identity; /* FNV-1a 64 of the bytes (mt_corpus_fingerprint): a cache key */
    char source[512];  /* the path it came from */
    /* The splits as token ids: views of train / val for the byte tokenizer, or the ids of
     * each split's text encoded on its own (mt_corpus_tokenize). */
    struct mt_tokens train_tokens, val_tokens;
    int32_t *ids;           /* the ids of both splits (MT_MEM_DATA), NULL for bytes */
    uint32_t *piece_bytes;  /* a copy of the tokenizer's, NULL for bytes */
    uint64_t tok_identity;  /* mt_tok_identity, 0 for bytes */
    char tokenizer[64];     /* mt_tok_kind_name ("bytes" until tokenized) */
};

/* Loads `path` (a file, or a folder read as described above; NULL or "" = the default
 * folder) into *c. Both splits must hold at least min_window + 1 bytes so a window of
 * min_window tokens with its targets fits. Returns 0, or -1 with a message naming the
 * path for a missing, unreadable, empty or too-short corpus; *c is then empty. Free with
 * mt_corpus_free. */
int mt_corpus_load(struct mt_corpus *c, const char *path, size_t min_window, char *err,
                   size_t errlen);
void mt_corpus_free(struct mt_corpus *c);

/* Contract: encodes c's train and validation text, each on its own, with t (the byte
 * tokenizer leaves c as it is: views of the bytes, bit-identical batches and scores),
 * into c->train_tokens / val_tokens; the ids are allocated under MT_MEM_DATA and the
 * tokenizer's piece lengths copied, so t may be freed after. Both splits must hold at
 * least min_window + 1 tokens. Returns 0, or -1 with a message (too few tokens, out of
 * memory, the tokenizer's error); c keeps its bytes either way. */
int mt_corpus_tokenize(struct mt_corpus *c, const struct mt_tokenizer *t, size_t min_window,
                       char *err, size_t errlen);

/* Contract: the identity of the corpus at `path` as mt_corpus_load reads it (same files,
 * same order; NULL or "" = the default folder) without holding it in memory: FNV-1a 64 of
 * the concatenated bytes (equal to the loaded corpus's `identity`), its size and file
 * count. Used by the harness to make the corpus part of a run's configuration. Returns 0,
 * or -1 with a message naming the path (missing, unreadable). Thread-safe. */
int mt_corpus_fingerprint(const char *path, uint64_t *hash, size_t *bytes, size_t *files, char *err,
                          size_t errlen);

/* Fills inputs/targets (B x T each) with B windows at uniform random offsets of
 * data[0, n) (n >= T + 1): inputs = data[s, s+T), targets = data[s+1, s+T+1). */
void mt_batch_sample(const uint8_t *data, size_t n, size_t B, size_t T, struct mt_rng *rng,
                     int *inputs, int *targets);

/* mt_batch_sample over token ids: the same offsets from the same generator, so for a byte
 * view it is mt_batch_sample bit for bit (data->n >= T + 1). */
void mt_batch_sample_tokens(const struct mt_tokens *data, size_t B, size_t T, struct mt_rng *rng,
                            int *inputs, int *targets);

#ifdef __cplusplus
}
#endif
#endif
