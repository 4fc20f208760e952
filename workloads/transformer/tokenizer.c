/* tokenizer.c — byte, byte-level BPE and SentencePiece BPE tokenizers (see tokenizer.h).
 * Loading from tokenizer.json is in tokenizer_json.c; this file builds and runs them. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/grow.h>

#include "tokenizer_impl.h"
#include "util.h"

/* ---- hashing ------------------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

/* vocab: string -> id, open addressing over slots holding id + 1 */
static int32_t vocab_find(const struct mt_tokenizer *t, const char *s, size_t len)
{
    size_t mask = t->vcap - 1, i = (size_t)mt_fnv64(MT_FNV64_INIT, s, len) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t v = t->vslot[i];
        if (!v) return -1;
        uint32_t id = v - 1;
        if (t->tok_len[id] == len && !memcmp(t->tok[id], s, len)) return (int32_t)id;
    }
}

static void vocab_insert(struct mt_tokenizer *t, uint32_t id)
{
    size_t mask = t->vcap - 1;
    size_t i = (size_t)mt_fnv64(MT_FNV64_INIT, t->tok[id], t->tok_len[id]) & mask;
    while (t->vslot[i])
        i = (i + 1) & mask;
    t->vslot[i] = id + 1;
}

/* merges: (left, right) -> (rank, merged id) */
static int merge_find(const struct mt_tokenizer *t, int32_t a, int32_t b, uint32_t *rank,
                      int32_t *id)
{
    if (!t->mcap) return 0;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t mask = t->mcap - 1, i = (size_t)mix64(key) & mask;
    for (;; i = (i + 1) & mask) {
        if (t->mid[i] < 0) return 0;
        if (t->mkey[i] == key) {
            *rank = t->mrank[i];
            *id = t->mid[i];
            return 1;
        }
    }
}

/* Adds a merge unless the pair already has one (the first, lowest rank, wins). */
static void merge_insert(struct mt_tokenizer *t, int32_t a, int32_t b, uint32_t rank, int32_t id)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t mask = t->mcap - 1, i = (size_t)mix64(key) & mask;
    for (; t->mid[i] >= 0; i = (i + 1) & mask)
        if (t->mkey[i] == key) return;
    t->mkey[i] = key;
    t->mrank[i] = rank;
    t->mid[i] = id;
    t->n_merges++;
}

/* ---- GPT-2's byte-to-unicode table --------------------------------------------------- */

/* The code point GPT-2 gives byte b: printable Latin-1 bytes keep theirs, the other 68
 * get 256, 257, ... in byte order. */
static uint32_t byte_to_cp(int b)
{
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return (uint32_t)b;
    uint32_t n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) n++;
    return 256 + n;
}

static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 character at s[0, n) (1-4), or 0 when it is not one (bad
 * lead, truncated, overlong, surrogate, above U+10FFFF). */
static size_t utf8_char(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    size_t k;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        k = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        k = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        k = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return k;
}

/* ---- building ----------------------------------------------------------------------- */

const char *mt_tok_pattern_for(const char *pre)
{
    if (!pre) return NULL;
    if (!strcmp(pre, "gpt2") || !strcmp(pre, "default") || !strcmp(pre, "gpt-2"))
        return MT_TOK_PATTERN_GPT2;
    if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3"))
        return MT_TOK_PATTERN_LLAMA3;
    return NULL;
}

void mt_tok_free(struct mt_tokenizer *t)
{
    if (!t) return;
    for (size_t i = 0; t->tok && i < t->V; i++)
        free(t->tok[i]);
    free(t->tok);
    free(t->tok_len);
    free(t->piece_off);
    free(t->piece_data);
    free(t->piece_len);
    free(t->is_added);
    free(t->aflags);
    for (size_t i = 0; t->npat && i < t->V; i++)
        free(t->npat[i]);
    free(t->npat);
    free(t->npat_len);
    if (t->re_word) pcre2_code_free(t->re_word);
    free(t->vslot);
    free(t->mkey);
    free(t->mrank);
    free(t->mid);
    free(t->added);
    free(t->pattern);
    if (t->re) pcre2_code_free(t->re);
    free(t);
}

/* Decoded bytes of token id (see tokenizer.h): appended to t->piece_data. */
static size_t decoded_piece(const struct mt_tokenizer *t, uint32_t id, char *out)
{
    const char *s = t->tok[id];
    size_t n = t->tok_len[id], k = 0;
    if (!s) return 0;
    if (t->is_added[id] || t->kind == MT_TOK_BYTES) {
        memcpy(out, s, n);
        return n;
    }
    if (t->kind == MT_TOK_SP_BPE) {
        unsigned b;
        char tail;
        if (n == 6 && sscanf(s, "<0x%2X%c", &b, &tail) == 2 && tail == '>' &&
            t->byte_id[b & 0xFF] == (int32_t)id) {
            out[0] = (char)b;
            return 1;
        }
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && !memcmp(s + i, MT_TOK_SPACE, 3)) {
                out[k++] = ' ';
                i += 3;
            } else {
                out[k++] = s[i++];
            }
        }
        return k;
    }
    /* byte-level: characters back to bytes; anything else kept as it is */
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t c = utf8_char((const uint8_t *)s + i, n - i, &cp);
        if (c && cp < 512 && t->cp_byte[cp] >= 0) {
            out[k++] = (char)t->cp_byte[cp];
            i += c;
        } else {
            size_t m = c ? c : 1;
            memcpy(out + k, s + i, m);
            k += m;
            i += m;
        }
    }
    return k;
}

/* Everything after the vocab is in place: lookup table, byte ids, pieces, identity. */
int mt_tok__index(struct mt_tokenizer *t, char *err, size_t errlen)
{
    t->vcap = pow2_at_least(2 * t->V + 1);
    if (!(t->vslot = calloc(t->vcap, sizeof *t->vslot)))
        return mt_tf_fail(err, errlen, "out of memory building a %zu-token vocab", t->V);
    for (size_t i = 0; i < t->V; i++) {
        if (!t->tok[i]) continue;
        int32_t j = vocab_find(t, t->tok[i], t->tok_len[i]);
        if (j >= 0)
            return mt_tf_fail(err, errlen, "tokens %d and %zu are both \"%.40s\"", (int)j, i,
                              t->tok[i]);
        vocab_insert(t, (uint32_t)i);
    }
    return 0;
}

/* The two passes' first-byte tables, the normalized tokens' patterns and the word test of
 * single_word tokens. A normalized token's pattern is its content through the
 * normalizer: SentencePiece's Prepend("▁") (when it prepends) and Replace(" ", "▁"). */
static int added_patterns(struct mt_tokenizer *t, char *err, size_t errlen)
{
    int single = 0;
    for (size_t i = 0; i < t->n_added; i++) {
        int32_t id = t->added[i];
        single |= (t->aflags[id] & MT_TOK_SINGLE_WORD) != 0;
        if (!(t->aflags[id] & MT_TOK_NORMALIZED)) {
            t->first_byte[0][(uint8_t)t->tok[id][0]] = 1;
            continue;
        }
        if (!t->npat && (!(t->npat = calloc(t->V, sizeof *t->npat)) ||
                         !(t->npat_len = calloc(t->V, sizeof *t->npat_len))))
            return mt_tf_fail(err, errlen, "out of memory");
        const char *c = t->tok[id];
        size_t n = t->tok_len[id], k = 0;
        int sp = t->kind == MT_TOK_SP_BPE && t->sp_norm;
        if (!(t->npat[id] = malloc(3 * n + 4))) return mt_tf_fail(err, errlen, "out of memory");
        if (sp && t->sp_prepend) memcpy(t->npat[id], MT_TOK_SPACE, 3), k = 3;
        for (size_t j = 0; j < n; j++) {
            if (sp && c[j] == ' ')
                memcpy(t->npat[id] + k, MT_TOK_SPACE, 3), k += 3;
            else
                t->npat[id][k++] = c[j];
        }
        t->npat[id][k] = 0;
        t->npat_len[id] = (uint32_t)k;
        t->first_byte[1][(uint8_t)t->npat[id][0]] = 1;
        t->n_norm++;
    }
    if (single) {
        int code;
        PCRE2_SIZE off;
        t->re_word = pcre2_compile((PCRE2_SPTR) "^\\w", PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
        if (!t->re_word) return mt_tf_fail(err, errlen, "out of memory compiling \\w");
    }
    return 0;
}

static int finish(struct mt_tokenizer *t, char *err, size_t errlen)
{
    if (!t->vslot && mt_tok__index(t, err, errlen)) return -1;
    t->piece_off = malloc((t->V + 1) * sizeof *t->piece_off);
    t->piece_len = calloc(t->V ? t->V : 1, sizeof *t->piece_len);
    size_t total = 0;
    for (size_t i = 0; i < t->V; i++)
        total += t->tok_len[i];
    t->piece_data = malloc(total + 1);
    if (!t->piece_off || !t->piece_len || !t->piece_data)
        return mt_tf_fail(err, errlen, "out of memory building a %zu-token vocab", t->V);
    for (int i = 0; i < 512; i++)
        t->cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t n;
        if (t->kind == MT_TOK_BYTE_BPE) {
            uint32_t cp = byte_to_cp(b);
            t->cp_byte[cp] = (int16_t)b;
            t->byte_cp[b] = cp;
            n = utf8_put(cp, s);
        } else {
            n = (size_t)snprintf(s, sizeof s, "<0x%02X>", b);
        }
        t->byte_id[b] = t->kind == MT_TOK_BYTES ? b : vocab_find(t, s, n);
    }
    total = 0;
    for (size_t i = 0; i < t->V; i++) {
        t->piece_off[i] = total;
        t->piece_len[i] = (uint32_t)decoded_piece(t, (uint32_t)i, t->piece_data + total);
        total += t->piece_len[i];
    }
    t->piece_off[t->V] = total;
    if (added_patterns(t, err, errlen)) return -1;
    uint64_t h = mt_fnv64(MT_FNV64_INIT, "mt_tok 1", 8);
    uint64_t head[] = {t->kind,          t->V,
                       t->byte_fallback, t->fuse_unk,
                       t->ignore_merges, t->add_prefix_space,
                       t->sp_prepend,    (uint64_t)(int64_t)t->unk};
    h = mt_fnv64(h, head, sizeof head);
    for (size_t i = 0; i < t->V; i++) {
        uint32_t len = t->tok[i] ? t->tok_len[i] : UINT32_MAX;
        h = mt_fnv64(h, &len, sizeof len);
        if (t->tok[i]) h = mt_fnv64(h, t->tok[i], t->tok_len[i]);
        h = mt_fnv64(h, &t->is_added[i], 1);
    }
    for (size_t i = 0; i < t->mcap; i++) /* the table's layout is a function of its contents */
        if (t->mid[i] >= 0) {
            uint64_t e[] = {t->mkey[i], t->mrank[i], (uint64_t)t->mid[i]};
            h = mt_fnv64(h, e, sizeof e);
        }
    if (t->pattern) h = mt_fnv64(h, t->pattern, strlen(t->pattern));
    /* added tokens' matching options, only when some token has one (earlier keys kept) */
    uint8_t any = 0, match = MT_TOK_LSTRIP | MT_TOK_RSTRIP | MT_TOK_NORMALIZED | MT_TOK_SINGLE_WORD;
    for (size_t i = 0; i < t->n_added; i++)
        any |= t->aflags[t->added[i]] & match;
    if (any) {
        h = mt_fnv64(h, "added flags", 11);
        for (size_t i = 0; i < t->n_added; i++) {
            uint8_t f = t->aflags[t->added[i]] & match;
            h = mt_fnv64(h, &f, 1);
        }
        h = mt_fnv64(h, &t->sp_norm, sizeof t->sp_norm);
    }
    t->identity = h;
    return 0;
}

static struct mt_tokenizer *alloc_tok(size_t V, char *err, size_t errlen)
{
    struct mt_tokenizer *t = calloc(1, sizeof *t);
    if (t) {
        t->V = V;
        t->tok = calloc(V ? V : 1, sizeof *t->tok);
        t->tok_len = calloc(V ? V : 1, sizeof *t->tok_len);
        t->is_added = calloc(V ? V : 1, 1);
        t->aflags = calloc(V ? V : 1, 1);
        t->unk = t->bos = t->eos = -1;
    }
    if (!t || !t->tok || !t->tok_len || !t->is_added || !t->aflags) {
        mt_tok_free(t);
        mt_tf_fail(err, errlen, "out of memory for a %zu-token vocab", V);
        return NULL;
    }
    return t;
}

int mt_tok_bytes(struct mt_tokenizer **out, char *err, size_t errlen)
{
    struct mt_tokenizer *t = alloc_tok(256, err, errlen);
    *out = NULL;
    if (!t) return -1;
    t->kind = MT_TOK_BYTES;
    for (size_t i = 0; i < 256; i++) {
        if (!(t->tok[i] = malloc(2))) {
            mt_tok_free(t);
            return mt_tf_fail(err, errlen, "out of memory");
        }
        t->tok[i][0] = (char)i;
        t->tok[i][1] = 0;
        t->tok_len[i] = 1;
    }
    if (finish(t, err, errlen)) {
        mt_tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

struct mt_tokenizer *mt_tok__new(enum mt_tok_kind kind, size_t V, char *err, size_t errlen)
{
    struct mt_tokenizer *t = alloc_tok(V, err, errlen);
    if (t) t->kind = kind;
    return t;
}

int mt_tok__set(struct mt_tokenizer *t, size_t id, const char *s, size_t len, int added, char *err,
                size_t errlen)
{
    if (id >= t->V) return mt_tf_fail(err, errlen, "token id %zu outside [0, %zu)", id, t->V);
    if (t->tok[id]) {
        if (t->tok_len[id] == len && !memcmp(t->tok[id], s, len)) {
            t->is_added[id] |= (uint8_t)added;
            return 0;
        }
        return mt_tf_fail(err, errlen, "token id %zu is both \"%.40s\" and \"%.40s\"", id,
                          t->tok[id], s);
    }
    if (!len) return mt_tf_fail(err, errlen, "token id %zu is an empty string", id);
    if (!(t->tok[id] = malloc(len + 1))) return mt_tf_fail(err, errlen, "out of memory");
    memcpy(t->tok[id], s, len);
    t->tok[id][len] = 0;
    t->tok_len[id] = (uint32_t)len;
    t->is_added[id] |= (uint8_t)added;
    return 0;
}

int mt_tok__merges(struct mt_tokenizer *t, const char *const *left, const char *const *right,
                   size_t n, char *err, size_t errlen)
{
    if (!n) return 0;
    t->mcap = pow2_at_least(2 * n + 1);
    t->mkey = malloc(t->mcap * sizeof *t->mkey);
    t->mrank = malloc(t->mcap * sizeof *t->mrank);
    t->mid = malloc(t->mcap * sizeof *t->mid);
    if (!t->mkey || !t->mrank || !t->mid) return mt_tf_fail(err, errlen, "out of memory");
    memset(t->mid, 0xFF, t->mcap * sizeof *t->mid);
    char *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t r = 0; r < n && !rc; r++) {
        size_t la = strlen(left[r]), lb = strlen(right[r]);
        int32_t a = vocab_find(t, left[r], la), b = vocab_find(t, right[r], lb);
        if (a < 0 || b < 0) {
            rc = mt_tf_fail(err, errlen, "merge %zu \"%s %s\": \"%s\" is not in the vocab", r,
                            left[r], right[r], a < 0 ? left[r] : right[r]);
            break;
        }
        if (la + lb > cap) {
            cap = 2 * (la + lb);
            char *nb = realloc(buf, cap);
            if (!nb) {
                rc = mt_tf_fail(err, errlen, "out of memory");
                break;
            }
            buf = nb;
        }
        memcpy(buf, left[r], la);
        memcpy(buf + la, right[r], lb);
        int32_t m = vocab_find(t, buf, la + lb);
        if (m < 0)
            rc = mt_tf_fail(err, errlen, "merge %zu \"%s %s\": \"%s%s\" is not in the vocab", r,
                            left[r], right[r], left[r], right[r]);
        else
            merge_insert(t, a, b, (uint32_t)r, m);
    }
    free(buf);
    return rc;
}

struct score_key {
    float s;
    uint32_t id;
};

static int score_cmp(const void *pa, const void *pb)
{
    const struct score_key *a = pa, *b = pb;
    if (a->s != b->s) return a->s > b->s ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* For SentencePiece models given scores and no merges: every split of every token into
 * two tokens is a merge, ranked by the merged token's score (higher first, then id). */
static int merges_from_scores(struct mt_tokenizer *t, const float *scores, char *err,
                              size_t errlen)
{
    size_t n = 0, pairs = 0;
    struct score_key *keys = malloc((t->V ? t->V : 1) * sizeof *keys);
    if (!keys) return mt_tf_fail(err, errlen, "out of memory");
    for (size_t i = 0; i < t->V; i++)
        if (t->tok[i] && !t->is_added[i]) {
            keys[n++] = (struct score_key){scores[i], (uint32_t)i};
            pairs += t->tok_len[i] - 1; /* the cuts of the token into two */
        }
    qsort(keys, n, sizeof *keys, score_cmp); /* score descending, then id ascending */
    t->mcap = pow2_at_least(2 * pairs + 1);
    t->mkey = malloc(t->mcap * sizeof *t->mkey);
    t->mrank = malloc(t->mcap * sizeof *t->mrank);
    t->mid = malloc(t->mcap * sizeof *t->mid);
    if (!t->mkey || !t->mrank || !t->mid) {
        free(keys);
        return mt_tf_fail(err, errlen, "out of memory");
    }
    memset(t->mid, 0xFF, t->mcap * sizeof *t->mid);
    uint32_t rank = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t id = keys[k].id;
        const char *s = t->tok[id];
        for (size_t cut = 1; cut < t->tok_len[id]; cut++) {
            int32_t a = vocab_find(t, s, cut), b = vocab_find(t, s + cut, t->tok_len[id] - cut);
            if (a >= 0 && b >= 0 && !t->is_added[a] && !t->is_added[b])
                merge_insert(t, a, b, rank++, (int32_t)id);
        }
    }
    free(keys);
    return 0;
}

int mt_tok__compile(struct mt_tokenizer *t, const char *pattern, char *err, size_t errlen)
{
    if (!(t->pattern = strdup(pattern))) return mt_tf_fail(err, errlen, "out of memory");
    int code;
    PCRE2_SIZE off;
    t->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code,
                          &off, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return mt_tf_fail(err, errlen, "pre-tokenizer regex \"%s\" at offset %zu: %s", pattern,
                          (size_t)off, (const char *)msg);
    }
    t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

int mt_tok__finish(struct mt_tokenizer *t, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->V; i++)
        if (t->is_added[i]) t->n_added++;
    if (t->n_added && !(t->added = malloc(t->n_added * sizeof *t->added)))
        return mt_tf_fail(err, errlen, "out of memory");
    t->n_added = 0;
    for (size_t i = 0; i < t->V; i++)
        if (t->is_added[i]) t->added[t->n_added++] = (int32_t)i;
    return finish(t, err, errlen);
}

int mt_tok_from_arrays(struct mt_tokenizer **out, const struct mt_tok_arrays *a, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (!a->model)
        return mt_tf_fail(err, errlen, "tokenizer model not given (supported: gpt2, llama, bytes)");
    if (!strcmp(a->model, "bytes")) return mt_tok_bytes(out, err, errlen);
    enum mt_tok_kind kind;
    if (!strcmp(a->model, "gpt2"))
        kind = MT_TOK_BYTE_BPE;
    else if (!strcmp(a->model, "llama"))
        kind = MT_TOK_SP_BPE;
    else
        return mt_tf_fail(err, errlen,
                          "tokenizer model \"%s\" is not supported (supported: gpt2 = byte-level "
                          "BPE, llama = SentencePiece BPE, bytes)",
                          a->model);
    if (!a->n_tokens || !a->tokens) return mt_tf_fail(err, errlen, "tokenizer has no tokens");
    struct mt_tokenizer *t = mt_tok__new(kind, a->n_tokens, err, errlen);
    if (!t) return -1;
    int rc = 0;
    for (size_t i = 0; !rc && i < a->n_tokens; i++) {
        int added = a->token_type && (a->token_type[i] == 3 || a->token_type[i] == 4);
        if (a->added_flags && a->added_flags[i]) added = 1;
        if (!a->tokens[i])
            rc = mt_tf_fail(err, errlen, "token %zu is missing", i);
        else
            rc = mt_tok__set(t, i, a->tokens[i], strlen(a->tokens[i]), added, err, errlen);
        if (added)
            t->aflags[i] = a->added_flags ? a->added_flags[i]
                           : a->token_type[i] == 3 ? MT_TOK_SPECIAL : 0;
    }
    if (!rc && (a->space_prefix < 0 || a->space_prefix > 3 ||
                (kind == MT_TOK_BYTE_BPE && a->space_prefix == 3)))
        rc = mt_tf_fail(err, errlen, "space_prefix %d (supported: 0-2, 3 for llama only)",
                        a->space_prefix);
    if (!rc) {
        rc = mt_tok__index(t, err, errlen); /* merges are resolved through it */
    }
    char **l = NULL;
    if (!rc && a->n_merges) {
        l = calloc(2 * a->n_merges, sizeof *l);
        if (!l) rc = mt_tf_fail(err, errlen, "out of memory");
        for (size_t r = 0; !rc && r < a->n_merges; r++) {
            const char *m = a->merges[r], *sp = m ? strchr(m, ' ') : NULL;
            if (!sp || strchr(sp + 1, ' ') || sp == m || !sp[1]) {
                rc = mt_tf_fail(err, errlen, "merge %zu \"%s\" is not \"left right\"", r,
                                m ? m : "(null)");
                break;
            }
            l[r] = strndup(m, (size_t)(sp - m));
            l[a->n_merges + r] = strdup(sp + 1);
            if (!l[r] || !l[a->n_merges + r]) rc = mt_tf_fail(err, errlen, "out of memory");
        }
        if (!rc)
            rc = mt_tok__merges(t, (const char *const *)l, (const char *const *)l + a->n_merges,
                                a->n_merges, err, errlen);
        for (size_t r = 0; l && r < 2 * a->n_merges; r++)
            free(l[r]);
        free(l);
    } else if (!rc && kind == MT_TOK_SP_BPE && a->scores) {
        rc = merges_from_scores(t, a->scores, err, errlen);
    }
    if (!rc && kind == MT_TOK_BYTE_BPE) {
        const char *p = a->pattern ? a->pattern : MT_TOK_PATTERN_GPT2;
        rc = mt_tok__compile(t, p, err, errlen);
    }
    if (!rc && kind == MT_TOK_SP_BPE) {
        static const int prepend[] = {1, 0, 1, 2}; /* by space_prefix */
        t->byte_fallback = !a->no_byte_fallback;
        t->fuse_unk = !a->no_fuse_unk;
        t->sp_prepend = prepend[a->space_prefix];
        /* "first" exists as Metaspace's scheme only */
        t->sp_norm = a->space_prefix != 3 && !a->metaspace;
    }
    t->ignore_merges = a->ignore_merges != 0;
    t->add_prefix_space = kind == MT_TOK_BYTE_BPE && a->space_prefix == 2;
    for (size_t i = 0; !rc && i < 3; i++) {
        int32_t id = i == 0 ? a->bos_id : i == 1 ? a->eos_id : a->unk_id;
        if (id >= (int32_t)t->V)
            rc = mt_tf_fail(err, errlen, "%s id %d outside the vocab [0, %zu)",
                            i == 0   ? "bos"
                            : i == 1 ? "eos"
                                     : "unknown",
                            (int)id, t->V);
    }
    if (!rc) {
        t->bos = a->bos_id;
        t->eos = a->eos_id;
        t->unk = a->unk_id;
        rc = mt_tok__finish(t, err, errlen);
        if (!rc && t->unk < 0 && kind == MT_TOK_SP_BPE) t->unk = vocab_find(t, "<unk>", 5);
    }
    if (rc) {
        mt_tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

struct rank_pair {
    uint32_t rank;
    size_t slot;
};

static int rank_cmp(const void *x, const void *y)
{
    const struct rank_pair *a = x, *b = y;
    return a->rank < b->rank ? -1 : a->rank > b->rank;
}

struct mt_tokenizer *mt_tok__bytes_bpe(char *err, size_t errlen)
{
    struct mt_tokenizer *t = mt_tok__new(MT_TOK_BYTE_BPE, 256, err, errlen);
    int rc = t ? 0 : -1;
    for (int b = 0; !rc && b < 256; b++) {
        char s[8];
        rc = mt_tok__set(t, (size_t)b, s, utf8_put(byte_to_cp(b), s), 0, err, errlen);
    }
    if (!rc) rc = mt_tok__compile(t, MT_TOK_PATTERN_GPT2, err, errlen);
    if (!rc) rc = mt_tok__finish(t, err, errlen);
    if (rc) {
        mt_tok_free(t);
        return NULL;
    }
    return t;
}

size_t *mt_tok__ranked(const struct mt_tokenizer *t, size_t *n)
{
    struct rank_pair *rp = malloc((t->n_merges ? t->n_merges : 1) * sizeof *rp);
    size_t *slot = malloc((t->n_merges ? t->n_merges : 1) * sizeof *slot);
    *n = 0;
    if (!rp || !slot) {
        free(rp);
        free(slot);
        return NULL;
    }
    for (size_t i = 0; i < t->mcap; i++)
        if (t->mid[i] >= 0) rp[(*n)++] = (struct rank_pair){t->mrank[i], i};
    qsort(rp, *n, sizeof *rp, rank_cmp);
    for (size_t r = 0; r < *n; r++)
        slot[r] = rp[r].slot;
    free(rp);
    return slot;
}

void mt_tok_arrays_free(struct mt_tok_arrays *a)
{
    for (size_t r = 0; a->merges && r < a->n_merges; r++)
        free((char *)(uintptr_t)a->merges[r]);
    free((void *)(uintptr_t)a->merges);
    free((void *)(uintptr_t)a->tokens);
    free((void *)(uintptr_t)a->token_type);
    free((void *)(uintptr_t)a->added_flags);
    memset(a, 0, sizeof *a);
}

int mt_tok_to_arrays(const struct mt_tokenizer *t, struct mt_tok_arrays *a, char *err,
                     size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (t->kind == MT_TOK_BYTES)
        return mt_tf_fail(err, errlen, "the byte tokenizer has no vocabulary arrays");
    const char **tok = malloc(t->V * sizeof *tok);
    int32_t *type = malloc(t->V * sizeof *type);
    uint8_t *flags = malloc(t->V);
    size_t n = 0, *rp = mt_tok__ranked(t, &n);
    char **m = calloc(t->n_merges ? t->n_merges : 1, sizeof *m);
    a->tokens = tok, a->token_type = type, a->added_flags = flags;
    a->merges = (const char *const *)m;
    if (!tok || !type || !flags || !rp || !m) {
        free(rp);
        mt_tok_arrays_free(a);
        return mt_tf_fail(err, errlen, "out of memory");
    }
    int rc = 0;
    if (t->kind == MT_TOK_BYTE_BPE && !t->pattern)
        rc = mt_tf_fail(err, errlen, "a byte-level BPE without a pre-tokenizer regex: GGUF "
                                     "names none (supported: a regex, e.g. GPT-2's)");
    for (size_t i = 0; !rc && i < t->V; i++) {
        if (!t->tok[i]) {
            rc = mt_tf_fail(err, errlen, "token id %zu has no string (GGUF needs one per id)", i);
            break;
        }
        tok[i] = t->tok[i];
        flags[i] = t->is_added[i] ? t->aflags[i] : 0;
        /* llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte */
        type[i] = t->is_added[i]                    ? (t->aflags[i] & MT_TOK_SPECIAL ? 3 : 4)
                  : (int32_t)i == t->unk             ? 2
                  : t->kind == MT_TOK_SP_BPE && t->tok_len[i] == 6 && !strncmp(t->tok[i], "<0x", 3)
                      ? 6
                      : 1;
    }
    for (size_t r = 0; !rc && r < n; r++) {
        uint32_t l = (uint32_t)(t->mkey[rp[r]] >> 32), q = (uint32_t)t->mkey[rp[r]];
        if (memchr(t->tok[l], ' ', t->tok_len[l]) || memchr(t->tok[q], ' ', t->tok_len[q])) {
            rc = mt_tf_fail(err, errlen,
                            "merge \"%.40s\" + \"%.40s\" holds a space: GGUF's \"left right\" "
                            "merges cannot say it",
                            t->tok[l], t->tok[q]);
            break;
        }
        if (!(m[r] = malloc(t->tok_len[l] + t->tok_len[q] + 2))) {
            rc = mt_tf_fail(err, errlen, "out of memory");
            break;
        }
        sprintf(m[r], "%s %s", t->tok[l], t->tok[q]);
        a->n_merges = r + 1;
    }
    free(rp);
    if (rc) {
        mt_tok_arrays_free(a);
        return -1;
    }
    a->model = t->kind == MT_TOK_BYTE_BPE ? "gpt2" : "llama";
    a->n_tokens = t->V;
    a->pattern = t->pattern;
    a->bos_id = t->bos, a->eos_id = t->eos, a->unk_id = t->unk;
    a->ignore_merges = t->ignore_merges;
    if (t->kind == MT_TOK_SP_BPE) {
        a->space_prefix = t->sp_prepend == 0 ? 1 : t->sp_prepend == 2 ? 3 : 2;
        a->no_byte_fallback = !t->byte_fallback;
        a->no_fuse_unk = !t->fuse_unk;
        a->metaspace = !t->sp_norm;
    } else {
        a->space_prefix = t->add_prefix_space ? 2 : 1;
    }
    return 0;
}

/* ---- accessors ---------------------------------------------------------------------- */

enum mt_tok_kind mt_tok_kind(const struct mt_tokenizer *t)
{
    return t->kind;
}

int mt_tok_is_bytes(const struct mt_tokenizer *t)
{
    if (t->kind == MT_TOK_BYTES) return 1;
    if (t->kind != MT_TOK_BYTE_BPE || t->V != 256 || t->n_merges || t->n_added) return 0;
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] != b) return 0;
    return 1;
}

const char *mt_tok_kind_name(const struct mt_tokenizer *t)
{
    return t->kind == MT_TOK_BYTES      ? "bytes"
           : t->kind == MT_TOK_BYTE_BPE ? "byte-level BPE"
                                        : "SentencePiece BPE";
}

size_t mt_tok_vocab(const struct mt_tokenizer *t)
{
    return t->V;
}
int32_t mt_tok_bos(const struct mt_tokenizer *t)
{
    return t->bos;
}
int32_t mt_tok_eos(const struct mt_tokenizer *t)
{
    return t->eos;
}
uint64_t mt_tok_identity(const struct mt_tokenizer *t)
{
    return t->identity;
}
const uint32_t *mt_tok_piece_bytes(const struct mt_tokenizer *t)
{
    return t->piece_len;
}

int32_t mt_tok_id(const struct mt_tokenizer *t, const char *s)
{
    return t->vslot ? vocab_find(t, s, strlen(s)) : -1;
}

int32_t mt_tok__find(const struct mt_tokenizer *t, const char *s, size_t len)
{
    return vocab_find(t, s, len);
}

/* ---- encoding ----------------------------------------------------------------------- */

struct ids {
    int32_t *v;
    size_t n, cap;
};

static int push(struct ids *o, int32_t id)
{
    if (mt_grow(&o->v, &o->cap, o->n + 1, sizeof *o->v, 1024)) return -1;
    o->v[o->n++] = id;
    return 0;
}

/* Scratch of one encode call: the symbols of a word and the merge queue. */
struct sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
};
struct cand {
    uint32_t rank;
    uint32_t pos;
    int32_t id; /* the merged token the pair made when queued */
};
struct work {
    struct sym *s;
    size_t n, cap;
    struct cand *q;
    size_t nq, qcap;
    char *buf; /* a normalized / mapped word */
    size_t blen, bcap;
};

/* Reallocates the array `p` of `*cap` elements of `elem` bytes to twice as many (256 at
 * first). Returns the new array and updates *cap, or NULL with `p` and *cap untouched. */
static void *grow_array(void *p, size_t *cap, size_t elem)
{
    size_t n = *cap ? 2 * *cap : 256;
    void *np = realloc(p, n * elem);
    if (np) *cap = n;
    return np;
}

static int add_sym(struct work *w, int32_t id)
{
    if (w->n == w->cap) {
        struct sym *ns = grow_array(w->s, &w->cap, sizeof *ns);
        if (!ns) return -1;
        w->s = ns;
    }
    w->s[w->n] = (struct sym){id, (int32_t)w->n - 1, -1};
    if (w->n) w->s[w->n - 1].next = (int32_t)w->n;
    w->n++;
    return 0;
}

static int cand_less(const struct cand *a, const struct cand *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static int q_push(struct work *w, struct cand c)
{
    if (w->nq == w->qcap) {
        struct cand *nq = grow_array(w->q, &w->qcap, sizeof *nq);
        if (!nq) return -1;
        w->q = nq;
    }
    size_t i = w->nq++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &w->q[p])) break;
        w->q[i] = w->q[p];
        i = p;
    }
    w->q[i] = c;
    return 0;
}

static struct cand q_pop(struct work *w)
{
    struct cand top = w->q[0], last = w->q[--w->nq];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const struct cand *best = &last;
        if (l < w->nq && cand_less(&w->q[l], best)) m = l, best = &w->q[l];
        if (l + 1 < w->nq && cand_less(&w->q[l + 1], best)) m = l + 1;
        if (m == i) break;
        w->q[i] = w->q[m];
        i = m;
    }
    if (w->nq) w->q[i] = last;
    return top;
}

static int queue_pair(const struct mt_tokenizer *t, struct work *w, int32_t pos)
{
    int32_t nx = w->s[pos].next;
    uint32_t rank;
    int32_t id;
    if (nx < 0 || !merge_find(t, w->s[pos].id, w->s[nx].id, &rank, &id)) return 0;
    return q_push(w, (struct cand){rank, (uint32_t)pos, id});
}

/* BPE over the symbols in w->s (Hugging Face's Word::merge_all), appended to o. */
static int bpe(const struct mt_tokenizer *t, struct work *w, struct ids *o)
{
    w->nq = 0;
    for (size_t i = 0; i + 1 < w->n; i++)
        if (queue_pair(t, w, (int32_t)i)) return -1;
    while (w->nq) {
        struct cand c = q_pop(w);
        struct sym *a = &w->s[c.pos];
        if (a->id < 0 || a->next < 0) continue; /* merged away, or now last */
        struct sym *b = &w->s[a->next];
        uint32_t rank;
        int32_t id;
        if (!merge_find(t, a->id, b->id, &rank, &id) || id != c.id) continue; /* stale */
        a->id = id;
        b->id = -1;
        a->next = b->next;
        if (b->next >= 0) w->s[b->next].prev = (int32_t)c.pos;
        if (a->prev >= 0 && queue_pair(t, w, a->prev)) return -1;
        if (queue_pair(t, w, (int32_t)c.pos)) return -1;
    }
    for (int32_t i = w->n ? 0 : -1; i >= 0; i = w->s[i].next)
        if (push(o, w->s[i].id)) return -1;
    return 0;
}

/* One piece of byte-level BPE: the bytes mapped to their characters, then merged. */
static int word_bytelevel(const struct mt_tokenizer *t, struct work *w, const uint8_t *p, size_t n,
                          struct ids *o)
{
    w->n = 0;
    if (t->ignore_merges) {
        w->blen = 0;
        if (w->bcap < 2 * n) {
            char *nb = realloc(w->buf, 2 * n);
            if (!nb) return -1;
            w->buf = nb;
            w->bcap = 2 * n;
        }
        for (size_t i = 0; i < n; i++)
            w->blen += utf8_put(t->byte_cp[p[i]], w->buf + w->blen);
        int32_t id = vocab_find(t, w->buf, w->blen);
        if (id >= 0) return push(o, id);
    }
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[p[i]];
        if (id < 0) id = t->unk;
        if (id < 0) continue; /* no such character and no <unk>: dropped, as tokenizers does */
        if (add_sym(w, id)) return -1;
    }
    return bpe(t, w, o);
}

static int add_unk(const struct mt_tokenizer *t, struct work *w)
{
    if (t->unk < 0) return 0;
    if (t->fuse_unk && w->n && w->s[w->n - 1].id == t->unk) return 0;
    return add_sym(w, t->unk);
}

/* One SentencePiece word (already normalized): characters, byte fallback, merges. */
static int word_sp(const struct mt_tokenizer *t, struct work *w, const uint8_t *p, size_t n,
                   struct ids *o)
{
    w->n = 0;
    if (t->ignore_merges) {
        int32_t id = vocab_find(t, (const char *)p, n);
        if (id >= 0) return push(o, id);
    }
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_char(p + i, n - i, &cp);
        int32_t id = k ? vocab_find(t, (const char *)p + i, k) : -1;
        if (!k) k = 1; /* an invalid byte: byte fallback alone */
        if (id >= 0) {
            if (add_sym(w, id)) return -1;
        } else {
            int all = t->byte_fallback;
            for (size_t j = 0; all && j < k; j++)
                all = t->byte_id[p[i + j]] >= 0;
            for (size_t j = 0; all && j < k; j++)
                if (add_sym(w, t->byte_id[p[i + j]])) return -1;
            if (!all && add_unk(t, w)) return -1;
        }
        i += k;
    }
    return bpe(t, w, o);
}

/* The regex pieces of a valid UTF-8 run (byte-level BPE); text outside every match is a
 * piece too (Split "Isolated"). */
static int run_bytelevel(const struct mt_tokenizer *t, struct work *w, pcre2_match_data *md,
                         const uint8_t *p, size_t n, struct ids *o, char *err, size_t errlen)
{
    size_t at = 0, gap = 0;
    while (at < n) {
        int rc = t->jit ? pcre2_jit_match(t->re, p, n, at, PCRE2_NO_UTF_CHECK, md, NULL)
                        : pcre2_match(t->re, p, n, at, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return mt_tf_fail(err, errlen, "pre-tokenizer regex: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e == s) { /* an empty match: step one character on */
            uint32_t cp;
            size_t k = utf8_char(p + at, n - at, &cp);
            at += k ? k : 1;
            continue;
        }
        if (s > gap && word_bytelevel(t, w, p + gap, s - gap, o)) goto oom;
        if (word_bytelevel(t, w, p + s, e - s, o)) goto oom;
        at = gap = e;
    }
    if (n > gap && word_bytelevel(t, w, p + gap, n - gap, o)) goto oom;
    return 0;
oom:
    return mt_tf_fail(err, errlen, "out of memory encoding");
}

/* Encodes one part of the text between added tokens. `first`: no added token before it. */
static int segment(const struct mt_tokenizer *t, struct work *w, pcre2_match_data *md,
                   const uint8_t *p, size_t n, int first, struct ids *o, char *err, size_t errlen)
{
    if (!n) return 0;
    if (t->kind == MT_TOK_BYTES) {
        for (size_t i = 0; i < n; i++)
            if (push(o, p[i])) return mt_tf_fail(err, errlen, "out of memory encoding");
        return 0;
    }
    if (t->kind == MT_TOK_SP_BPE) {
        size_t spaces = 0;
        for (size_t i = 0; i < n; i++)
            spaces += p[i] == ' ';
        int pre = t->sp_prepend == 1 || (t->sp_prepend == 2 && first);
        /* Metaspace (tokenizers' metaspace.rs) prepends only to a part that does not start
         * with "▁" already (a space, once replaced); the Prepend normalizer always does */
        if (!t->sp_norm && (p[0] == ' ' || (n >= 3 && !memcmp(p, MT_TOK_SPACE, 3)))) pre = 0;
        size_t need = n + 2 * spaces + (pre ? 3 : 0);
        if (w->bcap < need) {
            char *nb = realloc(w->buf, need);
            if (!nb) return mt_tf_fail(err, errlen, "out of memory encoding");
            w->buf = nb;
            w->bcap = need;
        }
        size_t k = 0;
        if (pre) memcpy(w->buf, MT_TOK_SPACE, 3), k = 3;
        for (size_t i = 0; i < n; i++) {
            if (p[i] == ' ')
                memcpy(w->buf + k, MT_TOK_SPACE, 3), k += 3;
            else
                w->buf[k++] = (char)p[i];
        }
        if (word_sp(t, w, (const uint8_t *)w->buf, k, o))
            return mt_tf_fail(err, errlen, "out of memory encoding");
        return 0;
    }
    /* byte-level BPE: valid UTF-8 runs through the regex, invalid bytes alone */
    uint8_t *tmp = NULL;
    if (t->add_prefix_space && p[0] != ' ') {
        if (!(tmp = malloc(n + 1))) return mt_tf_fail(err, errlen, "out of memory encoding");
        tmp[0] = ' ';
        memcpy(tmp + 1, p, n);
        p = tmp;
        n++;
    }
    int rc = 0;
    if (!t->re && word_bytelevel(t, w, p, n, o)) /* no pre-tokenizer regex: one word */
        rc = mt_tf_fail(err, errlen, "out of memory encoding");
    for (size_t i = 0; t->re && !rc && i < n;) {
        size_t j = i;
        uint32_t cp;
        size_t k;
        while (j < n && (k = utf8_char(p + j, n - j, &cp)))
            j += k;
        if (j > i) rc = run_bytelevel(t, w, md, p + i, j - i, o, err, errlen);
        if (!rc && j < n) {
            if (word_bytelevel(t, w, p + j, 1, o)) rc = mt_tf_fail(err, errlen, "out of memory");
            j++;
        }
        i = j;
    }
    free(tmp);
    return rc;
}

/* The longest added token of pass `norm` (0: raw text, 1: normalized) at p[0, n), or -1. */
static int32_t added_at(const struct mt_tokenizer *t, const uint8_t *p, size_t n, int norm)
{
    int32_t best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < t->n_added; i++) {
        int32_t id = t->added[i];
        if (!(t->aflags[id] & MT_TOK_NORMALIZED) != !norm) continue;
        const char *c = norm ? t->npat[id] : t->tok[id];
        size_t len = norm ? t->npat_len[id] : t->tok_len[id];
        if (len <= n && len > best_len && !memcmp(c, p, len)) best = id, best_len = len;
    }
    return best;
}

/* Length of the Unicode White_Space character at p[0, n) (Rust's char::is_whitespace,
 * tokenizers' \s), or 0. */
static size_t space_at(const uint8_t *p, size_t n)
{
    uint32_t cp;
    size_t k = utf8_char(p, n, &cp);
    int ws = (cp >= 9 && cp <= 13) || cp == ' ' || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
             (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
             cp == 0x205F || cp == 0x3000;
    return k && ws ? k : 0;
}

/* Start of the character that ends at p[end] (end > 0). */
static size_t char_before(const uint8_t *p, size_t end)
{
    size_t s = end - 1;
    while (s > 0 && end - s < 4 && (p[s] & 0xC0) == 0x80)
        s--;
    return s;
}

/* Whether the character at p[0, n) is a word character (tokenizers' \w: PCRE2's \w with
 * Unicode properties; ASCII letters, digits and '_' directly). */
static int word_at(const struct mt_tokenizer *t, const uint8_t *p, size_t n)
{
    if (p[0] < 0x80) {
        unsigned c = p[0];
        return (c | 0x20) - 'a' < 26u || c - '0' < 10u || c == '_';
    }
    uint32_t cp;
    size_t k = utf8_char(p, n, &cp);
    pcre2_match_data *md = k ? pcre2_match_data_create(1, NULL) : NULL;
    int rc = md ? pcre2_match(t->re_word, p, k, 0, 0, md, NULL) : -1;
    if (md) pcre2_match_data_free(md);
    return rc >= 0;
}

/* What an encode call carries through the passes. */
struct enc {
    const struct mt_tokenizer *t;
    struct work *w;
    pcre2_match_data *md;
    struct ids *o;
    char *err;
    size_t errlen;
};

static int pass_part(struct enc *e, const uint8_t *p, size_t n, int norm, int first);

/* Cuts p[0, n) at the added tokens of pass `norm` as tokenizers' find_matches does (see
 * tokenizer.h) and hands each part between them to pass_part. */
static int split_added(struct enc *e, const uint8_t *p, size_t n, int norm, int first)
{
    const struct mt_tokenizer *t = e->t;
    size_t at = 0, done = 0; /* search position; end of the last match */
    while (at < n) {
        int32_t id = t->first_byte[norm][p[at]] ? added_at(t, p + at, n - at, norm) : -1;
        if (id < 0) {
            at++;
            continue;
        }
        size_t s = at, end = at + (norm ? t->npat_len[id] : t->tok_len[id]), k;
        uint8_t f = t->aflags[id];
        at = end;
        if ((f & MT_TOK_SINGLE_WORD) &&
            ((s > 0 && word_at(t, p + char_before(p, s), s - char_before(p, s))) ||
             (end < n && word_at(t, p + end, n - end))))
            continue; /* not a single word: skipped, the search goes on after it */
        if (f & MT_TOK_LSTRIP)
            while (s > done && space_at(p + char_before(p, s), s - char_before(p, s)))
                s = char_before(p, s);
        if (f & MT_TOK_RSTRIP)
            while (end < n && (k = space_at(p + end, n - end)))
                end += k;
        if (s > done && pass_part(e, p + done, s - done, norm, first && done == 0)) return -1;
        if (push(e->o, id)) return mt_tf_fail(e->err, e->errlen, "out of memory encoding");
        at = done = end;
    }
    return n > done ? pass_part(e, p + done, n - done, norm, first && done == 0) : 0;
}

/* A part between added tokens: after the raw pass, the normalized tokens' pass (when the
 * tokenizer has any) over the part normalized; then the model. */
static int pass_part(struct enc *e, const uint8_t *p, size_t n, int norm, int first)
{
    const struct mt_tokenizer *t = e->t;
    if (norm || !t->n_norm) {
        if (norm && t->kind == MT_TOK_SP_BPE && t->sp_norm) { /* normalized already */
            if (word_sp(t, e->w, p, n, e->o))
                return mt_tf_fail(e->err, e->errlen, "out of memory encoding");
            return 0;
        }
        return segment(t, e->w, e->md, p, n, first, e->o, e->err, e->errlen);
    }
    if (!(t->kind == MT_TOK_SP_BPE && t->sp_norm)) return split_added(e, p, n, 1, first);
    /* SentencePiece's normalizer: Prepend("▁") when it prepends, Replace(" ", "▁") */
    uint8_t *b = malloc(3 * n + 3);
    size_t k = 0;
    if (!b) return mt_tf_fail(e->err, e->errlen, "out of memory encoding");
    if (t->sp_prepend) memcpy(b, MT_TOK_SPACE, 3), k = 3;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ')
            memcpy(b + k, MT_TOK_SPACE, 3), k += 3;
        else
            b[k++] = p[i];
    }
    int rc = split_added(e, b, k, 1, first);
    free(b);
    return rc;
}

int mt_tok_encode(const struct mt_tokenizer *t, const uint8_t *text, size_t n, int32_t **ids,
                  size_t *n_ids, char *err, size_t errlen)
{
    struct ids o = {0};
    struct work w = {0};
    pcre2_match_data *md = NULL;
    *ids = NULL;
    *n_ids = 0;
    if (t->re && !(md = pcre2_match_data_create_from_pattern(t->re, NULL)))
        return mt_tf_fail(err, errlen, "out of memory for regex match data");
    struct enc e = {t, &w, md, &o, err, errlen};
    int rc = n ? split_added(&e, text, n, 0, 1) : 0;
    free(w.s);
    free(w.q);
    free(w.buf);
    if (md) pcre2_match_data_free(md);
    if (rc) {
        free(o.v);
        return -1;
    }
    *ids = o.v;
    *n_ids = o.n;
    return 0;
}

size_t mt_tok_decode(const struct mt_tokenizer *t, const int32_t *ids, size_t n, uint8_t *out,
                     size_t cap)
{
    size_t k = 0;
    int strip = t->kind == MT_TOK_SP_BPE && t->sp_prepend; /* the next piece's leading space */
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= t->V) return (size_t)-1;
        const char *s = t->piece_data + t->piece_off[ids[i]];
        size_t len = t->piece_len[ids[i]];
        if (strip && len) {
            if (s[0] == ' ' && !t->is_added[ids[i]]) s++, len--;
            strip = 0;
        }
        if (t->is_added[ids[i]] && t->sp_prepend == 1) strip = 1;
        if (k < cap) memcpy(out + k, s, len <= cap - k ? len : cap - k);
        k += len;
    }
    return k;
}
