/* tokenizer_impl.h — the tokenizer's inside, shared by tokenizer.c (building, encoding,
 * decoding) and tokenizer_json.c (reading tokenizer.json). Not a public header. */
#ifndef MT_TRANSFORMER_TOKENIZER_IMPL_H
#define MT_TRANSFORMER_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

#define MT_TOK_SPACE "\xe2\x96\x81" /* U+2581 "▁", SentencePiece's space */

struct mt_tokenizer {
    enum mt_tok_kind kind;
    size_t V;
    char **tok;        /* V token strings as stored in the vocab (NULL: no token) */
    uint32_t *tok_len; /* their lengths */
    uint8_t *is_added; /* 1: an added / special token (matched before the pre-tokenizer) */
    int32_t *added;    /* the added ids */
    size_t n_added;
    uint8_t *aflags;   /* V: MT_TOK_LSTRIP ... flags of the added tokens */
    /* added tokens matched in the raw text ([0]) and, MT_TOK_NORMALIZED ones, in the
     * normalized text ([1]), as their normalized content npat[id] (SentencePiece's
     * normalizer applied; else the content itself) */
    uint8_t first_byte[2][256]; /* 1: some added token of that pass starts with this byte */
    size_t n_norm;              /* MT_TOK_NORMALIZED added tokens */
    char **npat;                /* V (NULL without any): their patterns */
    uint32_t *npat_len;
    int sp_norm;    /* SP: "▁" comes from the normalizer (Prepend/Replace), not Metaspace */
    void *re_word;  /* pcre2_code of ^\w (single_word tokens' word test), or NULL */
    /* decoded bytes of each id: piece_data[piece_off[i], + piece_len[i]) */
    char *piece_data;
    size_t *piece_off;
    uint32_t *piece_len;
    /* vocab lookup: open addressing, slot = id + 1, 0 = empty */
    uint32_t *vslot;
    size_t vcap;
    /* merges: key (left << 32 | right) -> rank, merged id (mid < 0: empty slot) */
    uint64_t *mkey;
    uint32_t *mrank;
    int32_t *mid;
    size_t mcap, n_merges;
    int32_t byte_id[256];  /* byte-level: the id of byte b's character; SP: of <0xNN> */
    uint32_t byte_cp[256]; /* byte-level: GPT-2's code point of byte b */
    int16_t cp_byte[512];  /* byte-level: the byte of a code point (-1: none) */
    int32_t unk, bos, eos;
    int byte_fallback, fuse_unk, ignore_merges, add_prefix_space;
    int sp_prepend; /* SP: 0 no "▁" prepended, 1 before every part, 2 before the first */
    char *pattern;  /* byte-level: the pre-tokenizer regex */
    void *re;       /* its pcre2_code */
    int jit;        /* 1 when PCRE2's JIT compiled it */
    uint64_t identity;
};

/* Steps of building, for the loaders: new (V ids, all empty), set each token, resolve the
 * merges (needs mt_tok__index first), compile the regex (byte-level), finish. Each
 * returns 0 or -1 with a message; on error the caller frees with mt_tok_free. */
struct mt_tokenizer *mt_tok__new(enum mt_tok_kind kind, size_t V, char *err, size_t errlen);
int mt_tok__set(struct mt_tokenizer *t, size_t id, const char *s, size_t len, int added, char *err,
                size_t errlen);
int mt_tok__index(struct mt_tokenizer *t, char *err, size_t errlen);
int mt_tok__merges(struct mt_tokenizer *t, const char *const *left, const char *const *right,
                   size_t n, char *err, size_t errlen);
int mt_tok__compile(struct mt_tokenizer *t, const char *pattern, char *err, size_t errlen);
int mt_tok__finish(struct mt_tokenizer *t, char *err, size_t errlen);
int32_t mt_tok__find(const struct mt_tokenizer *t, const char *s, size_t len);
/* The merge table's slots in rank order (malloc'ed, *n of them: free() it), or NULL when
 * out of memory. */
size_t *mt_tok__ranked(const struct mt_tokenizer *t, size_t *n);
/* The byte tokenizer's ids as byte-level BPE: 256 tokens, token b = GPT-2's character of
 * byte b, no merges, GPT-2's regex (mt_tok_is_bytes holds). NULL with a message. */
struct mt_tokenizer *mt_tok__bytes_bpe(char *err, size_t errlen);

#endif
