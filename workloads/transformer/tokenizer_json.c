/* tokenizer_json.c — a Hugging Face tokenizer.json read through jansson into a tokenizer
 * (see tokenizer.h for what is accepted), and a tokenizer written back as one (with the
 * tokenizer_config.json transformers reads beside it). Not for: encoding (tokenizer.c). */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer_impl.h"
#include "util.h"

/* What the normalizer, pre-tokenizer and decoder say, checked against what is supported. */
struct shape {
    int bytelevel;        /* a ByteLevel pre-tokenizer */
    int bl_regex;         /* ... with use_regex (GPT-2's pattern) */
    int prefix_space;     /* ... add_prefix_space */
    const char *split;    /* a Split pre-tokenizer's regex (borrowed from the JSON) */
    char *split_literal;  /* ... or its String pattern, escaped (owned) */
    int prepend, replace; /* SentencePiece normalizer pieces seen */
    int metaspace;        /* a Metaspace pre-tokenizer: 1 always, 2 first */
};

static const char *type_of(json_t *o)
{
    return json_string_value(json_object_get(o, "type"));
}

static int is_space_mark(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && !strcmp(s, MT_TOK_SPACE);
}

/* Checks one node of a tokenizer section (normalizer, pre_tokenizer, decoder) into `sh`:
 * 0 when supported, -1 with err written. */
typedef int (*node_check)(json_t *n, struct shape *sh, const char *path, char *err, size_t errlen);

/* The common head of a node_check: the type of node `n` (a `what`) into *ty; when it is
 * a Sequence, `check` on each member of its array `key`. Returns 1 when `n` was a
 * Sequence whose members all passed, 0 when it is some other type, -1 with err written
 * when it has no type, lacks the array or a member fails. */
static int sequence(json_t *n, const char *what, const char *key, node_check check,
                    struct shape *sh, const char **ty, const char *path, char *err, size_t errlen)
{
    *ty = type_of(n);
    if (!*ty) return mt_tf_fail(err, errlen, "%s: %s without a type", path, what);
    if (strcmp(*ty, "Sequence")) return 0;
    json_t *v = json_object_get(n, key), *e;
    size_t i;
    if (!json_is_array(v))
        return mt_tf_fail(err, errlen, "%s: %s Sequence without %s", path, what, key);
    json_array_foreach(v, i, e) if (check(e, sh, path, err, errlen)) return -1;
    return 1;
}

static int normalizer(json_t *n, struct shape *sh, const char *path, char *err, size_t errlen)
{
    const char *ty;
    int seq = sequence(n, "normalizer", "normalizers", normalizer, sh, &ty, path, err, errlen);
    if (seq) return seq < 0 ? -1 : 0;
    if (!strcmp(ty, "Prepend") && is_space_mark(n, "prepend")) {
        sh->prepend = 1;
        return 0;
    }
    if (!strcmp(ty, "Replace") && is_space_mark(n, "content")) {
        json_t *p = json_object_get(n, "pattern");
        const char *s = json_string_value(json_object_get(p, "String"));
        if (s && !strcmp(s, " ")) {
            sh->replace = 1;
            return 0;
        }
    }
    return mt_tf_fail(err, errlen,
                      "%s: normalizer %s is not supported (supported: none, or SentencePiece's "
                      "Prepend(\"\xe2\x96\x81\") and Replace(\" \", \"\xe2\x96\x81\"))",
                      path, ty);
}

/* A Split pattern given as a plain string, as a regex matching it literally. */
static char *quote_literal(const char *s)
{
    char *q = malloc(4 * strlen(s) + 1), *o = q;
    if (!q) return NULL;
    for (; *s; s++) {
        if (strchr("\\^$.|?*+()[]{}", *s)) *o++ = '\\';
        *o++ = *s;
    }
    *o = 0;
    return q;
}

static int pretok(json_t *p, struct shape *sh, const char *path, char *err, size_t errlen)
{
    const char *ty;
    int seq = sequence(p, "pre_tokenizer", "pretokenizers", pretok, sh, &ty, path, err, errlen);
    if (seq) return seq < 0 ? -1 : 0;
    if (!strcmp(ty, "ByteLevel")) {
        json_t *r = json_object_get(p, "use_regex");
        sh->bytelevel = 1;
        sh->bl_regex = !r || json_is_true(r); /* tokenizers' default is true */
        sh->prefix_space = json_is_true(json_object_get(p, "add_prefix_space"));
        return 0;
    }
    if (!strcmp(ty, "Split")) {
        json_t *pat = json_object_get(p, "pattern");
        const char *beh = json_string_value(json_object_get(p, "behavior"));
        const char *re = json_string_value(json_object_get(pat, "Regex"));
        const char *lit = json_string_value(json_object_get(pat, "String"));
        if (sh->split || sh->split_literal)
            return mt_tf_fail(err, errlen, "%s: more than one Split pre-tokenizer (supported: one)",
                              path);
        if (!beh || strcmp(beh, "Isolated") || json_is_true(json_object_get(p, "invert")))
            return mt_tf_fail(err, errlen,
                              "%s: Split behavior %s%s is not supported (supported: Isolated, "
                              "not inverted)",
                              path, beh ? beh : "(none)",
                              json_is_true(json_object_get(p, "invert")) ? " inverted" : "");
        if (re) {
            sh->split = re;
        } else if (lit) {
            if (!(sh->split_literal = quote_literal(lit)))
                return mt_tf_fail(err, errlen, "out of memory");
        } else {
            return mt_tf_fail(err, errlen, "%s: Split pre-tokenizer without a pattern", path);
        }
        return 0;
    }
    if (!strcmp(ty, "Metaspace") && is_space_mark(p, "replacement") &&
        !json_is_true(json_object_get(p, "split"))) {
        const char *scheme = json_string_value(json_object_get(p, "prepend_scheme"));
        json_t *add = json_object_get(p, "add_prefix_space"); /* older files */
        if (scheme && !strcmp(scheme, "first"))
            sh->metaspace = 2;
        else if ((scheme && !strcmp(scheme, "always")) || (!scheme && (!add || json_is_true(add))))
            sh->metaspace = 1;
        else
            sh->metaspace = 3; /* never */
        return 0;
    }
    return mt_tf_fail(err, errlen,
                      "%s: pre_tokenizer %s%s is not supported (supported: none, ByteLevel, "
                      "Split (Isolated), a Sequence of Split and ByteLevel, Metaspace without "
                      "split)",
                      path, ty, !strcmp(ty, "Metaspace") ? " with split" : "");
}

/* A node_check; decoders change nothing in `sh`. */
static int decoder(json_t *d, struct shape *sh, const char *path, char *err, size_t errlen)
{
    const char *ty;
    int seq = sequence(d, "decoder", "decoders", decoder, sh, &ty, path, err, errlen);
    if (seq) return seq < 0 ? -1 : 0;
    static const char *const ok[] = {"ByteLevel",    "Metaspace", "Replace",
                                     "ByteFallback", "Fuse",      "Strip"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (!strcmp(ty, ok[i])) return 0;
    return mt_tf_fail(err, errlen,
                      "%s: decoder %s is not supported (supported: ByteLevel, Metaspace, or a "
                      "Sequence of Replace, ByteFallback, Fuse, Strip)",
                      path, ty);
}

/* merges: "a b" strings or [a, b] pairs, into left[] / right[] (borrowed or owned in
 * `owned`). */
static int read_merges(json_t *m, const char ***left, const char ***right, char ***owned, size_t *n,
                       const char *path, char *err, size_t errlen)
{
    size_t k = json_array_size(m), i;
    json_t *e;
    *n = k;
    *left = calloc(k ? k : 1, sizeof **left);
    *right = calloc(k ? k : 1, sizeof **right);
    *owned = calloc(k ? k : 1, sizeof **owned);
    if (!*left || !*right || !*owned) return mt_tf_fail(err, errlen, "out of memory");
    json_array_foreach(m, i, e)
    {
        if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
            json_is_string(json_array_get(e, 1))) {
            (*left)[i] = json_string_value(json_array_get(e, 0));
            (*right)[i] = json_string_value(json_array_get(e, 1));
            continue;
        }
        const char *s = json_string_value(e), *sp = s ? strchr(s, ' ') : NULL;
        if (!sp || sp == s || !sp[1] || strchr(sp + 1, ' '))
            return mt_tf_fail(err, errlen,
                              "%s: model.merges[%zu] is neither \"left right\" nor [left, right]",
                              path, i);
        if (!((*owned)[i] = strdup(s))) return mt_tf_fail(err, errlen, "out of memory");
        (*owned)[i][sp - s] = 0;
        (*left)[i] = (*owned)[i];
        (*right)[i] = (*owned)[i] + (sp - s) + 1;
    }
    return 0;
}

/* An added_tokens entry's flags; a missing "normalized" is tokenizers' default for the
 * kind (AddedToken::from: normalized = !special). */
static uint8_t added_flags(json_t *e)
{
    int special = json_is_true(json_object_get(e, "special"));
    json_t *norm = json_object_get(e, "normalized");
    return (uint8_t)((json_is_true(json_object_get(e, "lstrip")) ? MT_TOK_LSTRIP : 0) |
                     (json_is_true(json_object_get(e, "rstrip")) ? MT_TOK_RSTRIP : 0) |
                     ((norm ? json_is_true(norm) : !special) ? MT_TOK_NORMALIZED : 0) |
                     (json_is_true(json_object_get(e, "single_word")) ? MT_TOK_SINGLE_WORD : 0) |
                     (special ? MT_TOK_SPECIAL : 0));
}

/* Everything after the JSON is parsed; root stays owned by the caller. */
static int build(struct mt_tokenizer **out, json_t *root, const char *path, char *err,
                 size_t errlen)
{
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    json_t *added = json_object_get(root, "added_tokens");
    const char *mty = type_of(model);
    if (!json_is_object(model))
        return mt_tf_fail(err, errlen, "%s: no \"model\" object: not a tokenizer.json", path);
    if (!mty || strcmp(mty, "BPE"))
        return mt_tf_fail(err, errlen,
                          "%s: tokenizer model %s is not supported (supported: BPE: byte-level "
                          "as GPT-2 / Llama-3, SentencePiece-style with byte fallback as "
                          "Llama-2)",
                          path, mty ? mty : "(no type)");
    if (!json_is_object(vocab) || (merges && !json_is_array(merges)) ||
        (added && !json_is_array(added)))
        return mt_tf_fail(err, errlen,
                          "%s: model.vocab must be an object, model.merges and added_tokens "
                          "arrays",
                          path);
    const char *cont = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    const char *eow = json_string_value(json_object_get(model, "end_of_word_suffix"));
    json_t *dropout = json_object_get(model, "dropout");
    if ((cont && cont[0]) || (eow && eow[0]) || (dropout && !json_is_null(dropout)))
        return mt_tf_fail(err, errlen,
                          "%s: BPE with %s is not supported (supported: no subword prefix, no "
                          "end-of-word suffix, no dropout)",
                          path,
                          cont && cont[0] ? "continuing_subword_prefix"
                          : eow && eow[0] ? "end_of_word_suffix"
                                          : "dropout");
    struct shape sh = {0};
    json_t *norm = json_object_get(root, "normalizer");
    json_t *pre = json_object_get(root, "pre_tokenizer");
    json_t *dec = json_object_get(root, "decoder");
    int rc = 0;
    if (norm && !json_is_null(norm)) rc = normalizer(norm, &sh, path, err, errlen);
    if (!rc && pre && !json_is_null(pre)) rc = pretok(pre, &sh, path, err, errlen);
    if (!rc && dec && !json_is_null(dec)) rc = decoder(dec, &sh, path, err, errlen);
    if (rc) {
        free(sh.split_literal);
        return -1;
    }
    enum mt_tok_kind kind;
    int sp = sh.prepend || sh.replace || sh.metaspace;
    const char *pattern = sh.split ? sh.split : sh.split_literal;
    if (sh.bytelevel && !sp && !(pattern && sh.bl_regex)) {
        kind = MT_TOK_BYTE_BPE;
        if (!pattern && sh.bl_regex) pattern = MT_TOK_PATTERN_GPT2; /* else: no cut at all */
    } else if (sp && !sh.bytelevel && !pattern && (sh.metaspace || sh.replace)) {
        kind = MT_TOK_SP_BPE;
    } else {
        free(sh.split_literal);
        return mt_tf_fail(err, errlen,
                          "%s: this combination is not supported: normalizer %s, pre_tokenizer "
                          "%s%s (supported: a ByteLevel pre-tokenizer, optionally after one "
                          "Split, as GPT-2 / Llama-3; or SentencePiece's Prepend + Replace "
                          "normalizer or Metaspace pre-tokenizer with no other pre-tokenizer, "
                          "as Llama-2)",
                          path, norm && !json_is_null(norm) ? type_of(norm) : "none",
                          pre && !json_is_null(pre) ? type_of(pre) : "none",
                          sh.bytelevel && pattern && sh.bl_regex
                              ? " (a Split before a ByteLevel that also splits)"
                              : "");
    }
    /* ids: the vocab's and the added tokens' */
    size_t V = 0;
    const char *key;
    json_t *val, *e;
    size_t i;
    json_object_foreach(vocab, key, val)
    {
        json_int_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0 || id >= (1 << 24)) {
            free(sh.split_literal);
            return mt_tf_fail(err, errlen, "%s: model.vocab[\"%.40s\"] is not an id in [0, 2^24)",
                              path, key);
        }
        if ((size_t)id + 1 > V) V = (size_t)id + 1;
    }
    json_array_foreach(added, i, e)
    {
        json_t *idv = json_object_get(e, "id");
        json_int_t id = json_integer_value(idv);
        if (!json_is_integer(idv) || id < 0 || id >= (1 << 24) ||
            !json_is_string(json_object_get(e, "content"))) {
            free(sh.split_literal);
            return mt_tf_fail(err, errlen,
                              "%s: added_tokens[%zu] needs an id in [0, 2^24) and a content", path,
                              i);
        }
        if ((size_t)id + 1 > V) V = (size_t)id + 1;
    }
    if (!V) {
        free(sh.split_literal);
        return mt_tf_fail(err, errlen, "%s: the vocab is empty", path);
    }
    struct mt_tokenizer *t = mt_tok__new(kind, V, err, errlen);
    if (!t) {
        free(sh.split_literal);
        return -1;
    }
    json_object_foreach(vocab, key, val)
    {
        if (rc) break;
        rc = mt_tok__set(t, (size_t)json_integer_value(val), key, strlen(key), 0, err, errlen);
    }
    json_array_foreach(added, i, e)
    {
        if (rc) break;
        const char *c = json_string_value(json_object_get(e, "content"));
        size_t id = (size_t)json_integer_value(json_object_get(e, "id"));
        rc = mt_tok__set(t, id, c, strlen(c), 1, err, errlen);
        if (!rc) t->aflags[id] = added_flags(e);
    }
    if (!rc) rc = mt_tok__index(t, err, errlen);
    const char **left = NULL, **right = NULL;
    char **owned = NULL;
    size_t nm = 0;
    if (!rc && merges) rc = read_merges(merges, &left, &right, &owned, &nm, path, err, errlen);
    if (!rc) rc = mt_tok__merges(t, left, right, nm, err, errlen);
    for (size_t k = 0; owned && k < nm; k++)
        free(owned[k]);
    free(owned);
    free(left);
    free(right);
    if (!rc && pattern) rc = mt_tok__compile(t, pattern, err, errlen);
    free(sh.split_literal);
    if (!rc) {
        const char *unk = json_string_value(json_object_get(model, "unk_token"));
        t->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
        t->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
        t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
        t->add_prefix_space = sh.prefix_space;
        t->sp_prepend = sh.metaspace ? (sh.metaspace == 3 ? 0 : sh.metaspace) : sh.prepend;
        t->sp_norm = kind == MT_TOK_SP_BPE && !sh.metaspace;
        t->unk = unk ? mt_tok__find(t, unk, strlen(unk)) : -1;
        if (unk && t->unk < 0)
            rc = mt_tf_fail(err, errlen, "%s: unk_token \"%s\" is not in the vocab", path, unk);
    }
    if (!rc) rc = mt_tok__finish(t, err, errlen);
    if (!rc) {
        /* BOS / EOS by the names these families give them */
        static const char *const bos[] = {"<s>", "<|begin_of_text|>", "<|endoftext|>"};
        static const char *const eos[] = {"</s>", "<|end_of_text|>", "<|endoftext|>"};
        for (size_t k = 0; k < 3; k++) {
            int32_t b = mt_tok__find(t, bos[k], strlen(bos[k]));
            int32_t s = mt_tok__find(t, eos[k], strlen(eos[k]));
            if (t->bos < 0 && b >= 0 && t->is_added[b]) t->bos = b;
            if (t->eos < 0 && s >= 0 && t->is_added[s]) t->eos = s;
        }
    }
    if (rc) {
        mt_tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int mt_tok_load_json(struct mt_tokenizer **out, const char *path, char *err, size_t errlen)
{
    json_error_t je;
    *out = NULL;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return mt_tf_fail(err, errlen, "%s: not a readable JSON file: %s (line %d, column %d)",
                          path, je.text, je.line, je.column);
    int rc =
        json_is_object(root)
            ? build(out, root, path, err, errlen)
            : mt_tf_fail(err, errlen, "%s: not a tokenizer.json (the top is not an object)", path);
    json_decref(root);
    if (rc && err && errlen && strncmp(err, path, strlen(path))) { /* name the file */
        char *msg = strdup(err);
        if (msg) snprintf(err, errlen, "%s: %s", path, msg);
        free(msg);
    }
    return rc;
}

/* BOS / EOS named by DIR/tokenizer_config.json's bos_token / eos_token (a string or an
 * object with a content), when the file is there: 0, or -1 with a message (not JSON, a
 * token the vocab lacks). */
static int config_specials(struct mt_tokenizer *t, const char *dir, char *err, size_t errlen)
{
    char path[4096];
    struct stat st;
    json_error_t je;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (stat(path, &st)) return 0;
    json_t *c = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je); /* model_max_length 1e30 */
    if (!json_is_object(c)) {
        json_decref(c);
        return mt_tf_fail(err, errlen, "%s: not a JSON object (line %d: %s)", path, je.line,
                          je.text);
    }
    static const char *const key[] = {"bos_token", "eos_token"};
    int rc = 0;
    for (int k = 0; !rc && k < 2; k++) {
        json_t *v = json_object_get(c, key[k]);
        const char *s = json_string_value(json_is_object(v) ? json_object_get(v, "content") : v);
        if (!s) continue; /* absent or null: the names tokenizer.json's loader knows */
        int32_t id = mt_tok__find(t, s, strlen(s));
        if (id < 0)
            rc = mt_tf_fail(err, errlen, "%s: %s \"%.40s\" is not in tokenizer.json's vocab", path,
                            key[k], s);
        else if (k == 0)
            t->bos = id;
        else
            t->eos = id;
    }
    json_decref(c);
    return rc;
}

int mt_tok_load_folder(struct mt_tokenizer **out, const char *dir, char *err, size_t errlen)
{
    char path[4096];
    struct stat st;
    *out = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (stat(path, &st))
        return mt_tf_fail(err, errlen,
                          "model folder %s has no tokenizer.json (%s); supported: Hugging Face "
                          "tokenizer.json of a BPE tokenizer",
                          dir, strerror(errno));
    if (mt_tok_load_json(out, path, err, errlen)) return -1;
    if (config_specials(*out, dir, err, errlen)) {
        mt_tok_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int mt_tok_load(struct mt_tokenizer **out, const char *spec, char *err, size_t errlen)
{
    struct stat st;
    *out = NULL;
    if (!spec || !spec[0] || !strcmp(spec, "bytes")) return mt_tok_bytes(out, err, errlen);
    if (stat(spec, &st))
        return mt_tf_fail(err, errlen,
                          "tokenizer %s: %s (give \"bytes\", a tokenizer.json or a model folder "
                          "holding one)",
                          spec, strerror(errno));
    return S_ISDIR(st.st_mode) ? mt_tok_load_folder(out, spec, err, errlen)
                               : mt_tok_load_json(out, spec, err, errlen);
}

/* ---- writing ------------------------------------------------------------------------ */

static json_t *space_replace(const char *from, const char *to)
{
    return json_pack("{s:s,s:{s:s},s:s}", "type", "Replace", "pattern", "String", from, "content",
                     to);
}

static json_t *bytelevel(int prefix_space, int regex)
{
    return json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", prefix_space,
                     "trim_offsets", 1, "use_regex", regex);
}

/* normalizer, pre_tokenizer and decoder of t (see mt_tok_save_json) into root. */
static void save_pipeline(const struct mt_tokenizer *t, json_t *root)
{
    json_t *norm = json_null(), *pre = json_null(), *dec;
    if (t->kind == MT_TOK_SP_BPE) {
        static const char *const scheme[] = {"never", "always", "first"};
        if (t->sp_norm) {
            json_t *seq = json_array();
            if (t->sp_prepend)
                json_array_append_new(
                    seq, json_pack("{s:s,s:s}", "type", "Prepend", "prepend", MT_TOK_SPACE));
            json_array_append_new(seq, space_replace(" ", MT_TOK_SPACE));
            norm = json_pack("{s:s,s:o}", "type", "Sequence", "normalizers", seq);
        } else {
            pre = json_pack("{s:s,s:s,s:s,s:b}", "type", "Metaspace", "replacement", MT_TOK_SPACE,
                            "prepend_scheme", scheme[t->sp_prepend], "split", 0);
        }
        if (!t->sp_norm) {
            dec = json_pack("{s:s,s:s,s:s,s:b}", "type", "Metaspace", "replacement", MT_TOK_SPACE,
                            "prepend_scheme", scheme[t->sp_prepend], "split", 0);
        } else {
            json_t *seq = json_pack("[o,{s:s},{s:s}]", space_replace(MT_TOK_SPACE, " "), "type",
                                    "ByteFallback", "type", "Fuse");
            if (t->sp_prepend)
                json_array_append_new(seq, json_pack("{s:s,s:s,s:i,s:i}", "type", "Strip",
                                                     "content", " ", "start", 1, "stop", 0));
            dec = json_pack("{s:s,s:o}", "type", "Sequence", "decoders", seq);
        }
    } else if (t->pattern && !strcmp(t->pattern, MT_TOK_PATTERN_GPT2)) {
        pre = bytelevel(t->add_prefix_space, 1);
        dec = bytelevel(1, 1);
    } else {
        pre = bytelevel(t->add_prefix_space, 0);
        if (t->pattern)
            pre = json_pack("{s:s,s:[{s:s,s:{s:s},s:s,s:b},o]}", "type", "Sequence",
                            "pretokenizers", "type", "Split", "pattern", "Regex", t->pattern,
                            "behavior", "Isolated", "invert", 0, pre);
        dec = bytelevel(1, 1);
    }
    json_object_set_new(root, "normalizer", norm);
    json_object_set_new(root, "pre_tokenizer", pre);
    json_object_set_new(root, "post_processor", json_null());
    json_object_set_new(root, "decoder", dec);
}

/* t's tokenizer.json as a JSON tree, or NULL (out of memory, an id without a token). */
static json_t *save_tree(const struct mt_tokenizer *t, char *err, size_t errlen)
{
    json_t *root = json_pack("{s:s,s:n,s:n}", "version", "1.0", "truncation", "padding");
    json_t *added = json_array(), *vocab = json_object(), *merges = json_array();
    size_t n = 0, *ranked = mt_tok__ranked(t, &n), missing = SIZE_MAX;
    int ok = root && added && vocab && merges && ranked;
    for (size_t i = 0; ok && i < t->V; i++) {
        if (!t->tok[i]) {
            missing = i;
            ok = 0;
            break;
        }
        ok = !json_object_set_new(vocab, t->tok[i], json_integer((json_int_t)i));
        if (ok && t->is_added[i]) {
            uint8_t f = t->aflags[i];
            ok = !json_array_append_new(
                added, json_pack("{s:I,s:s,s:b,s:b,s:b,s:b,s:b}", "id", (json_int_t)i, "content",
                                 t->tok[i], "single_word", (f & MT_TOK_SINGLE_WORD) != 0, "lstrip",
                                 (f & MT_TOK_LSTRIP) != 0, "rstrip", (f & MT_TOK_RSTRIP) != 0,
                                 "normalized", (f & MT_TOK_NORMALIZED) != 0, "special",
                                 (f & MT_TOK_SPECIAL) != 0));
        }
    }
    for (size_t r = 0; ok && r < n; r++) {
        uint64_t k = t->mkey[ranked[r]];
        ok = !json_array_append_new(
            merges, json_pack("[s,s]", t->tok[(uint32_t)(k >> 32)], t->tok[(uint32_t)k]));
    }
    free(ranked);
    if (ok) {
        json_object_set_new(root, "added_tokens", added);
        save_pipeline(t, root);
        json_t *unk = t->unk >= 0 ? json_string(t->tok[t->unk]) : json_null();
        json_t *model =
            json_pack("{s:s,s:n,s:o,s:n,s:n,s:b,s:b,s:b,s:o,s:o}", "type", "BPE", "dropout",
                      "unk_token", unk, "continuing_subword_prefix", "end_of_word_suffix",
                      "fuse_unk", t->fuse_unk, "byte_fallback", t->byte_fallback, "ignore_merges",
                      t->ignore_merges, "vocab", vocab, "merges", merges);
        if (model && !json_object_set_new(root, "model", model)) return root;
        vocab = merges = NULL; /* json_pack took them, even on failure */
    } else {
        json_decref(added);
    }
    if (missing != SIZE_MAX)
        mt_tf_fail(err, errlen, "token id %zu has no string (tokenizer.json needs one per id)",
                   missing);
    else
        mt_tf_fail(err, errlen, "out of memory writing tokenizer.json");
    json_decref(vocab);
    json_decref(merges);
    json_decref(root);
    return NULL;
}

int mt_tok_save_json(const struct mt_tokenizer *t, const char *path, char *err, size_t errlen)
{
    struct mt_tokenizer *b = NULL;
    if (t->kind == MT_TOK_BYTES && !(t = b = mt_tok__bytes_bpe(err, errlen))) return -1;
    json_t *root = save_tree(t, err, errlen);
    mt_tok_free(b);
    if (!root) return -1;
    int rc = json_dump_file(root, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return rc ? mt_tf_fail(err, errlen, "%s: cannot write: %s", path, strerror(errno)) : 0;
}

int mt_tok_save_folder(const struct mt_tokenizer *t, const char *dir, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (mt_tok_save_json(t, path, err, errlen)) return -1;
    if (t->kind == MT_TOK_BYTES) t = NULL; /* no special tokens */
    json_t *c = json_pack("{s:s}", "tokenizer_class", "PreTrainedTokenizerFast");
    static const char *const key[] = {"bos_token", "eos_token", "unk_token"};
    int32_t id[] = {t ? t->bos : -1, t ? t->eos : -1, t ? t->unk : -1};
    for (int k = 0; c && t && k < 3; k++)
        if (id[k] >= 0 && t->tok[id[k]]) json_object_set_new(c, key[k], json_string(t->tok[id[k]]));
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    int rc = c ? json_dump_file(c, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : -1;
    json_decref(c);
    return rc ? mt_tf_fail(err, errlen, "%s: cannot write: %s", path, strerror(errno)) : 0;
}
