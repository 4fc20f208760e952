/* modeltok.c — a model file's own tokenizer: tokenizer.json, or GGUF's tokenizer.ggml.*
 * metadata through mt_tok_from_arrays, and that metadata written back (see modeltok.h). */
#include "modeltok.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

/* The n_want elements of a numeric array `key` of element type `type` (4 bytes each),
 * or NULL: absent (*bad 0) or of another type or length (*bad 1). */
static const unsigned char *array4(const struct mt_gguf *g, const char *key, enum mt_gguf_type type,
                                   size_t n_want, int *bad)
{
    const struct mt_gguf_kv *e = mt_gguf_find(g, key);
    *bad = 0;
    if (!e) return NULL;
    if (e->type != MT_GGUF_ARRAY || e->arr_type != type || e->arr_n != n_want) {
        *bad = 1;
        return NULL;
    }
    return e->val;
}

/* A bool (or integer) key: 1 / 0, or `def` when absent. */
static int flag(const struct mt_gguf *g, const char *key, int def)
{
    uint64_t v;
    return mt_gguf_get_u64(g, key, &v) ? def : v != 0;
}

static int32_t id_of(const struct mt_gguf *g, const char *key)
{
    uint64_t v;
    return mt_gguf_get_u64(g, key, &v) || v > INT32_MAX ? -1 : (int32_t)v;
}

/* "[PAD<id>]", llama.cpp's name of a padding token (convert_hf_to_gguf.py), into buf. */
static const char *pad_name(char buf[32], size_t id)
{
    snprintf(buf, 32, "[PAD%zu]", id);
    return buf;
}

int mt_model_gguf_tokenizer(const struct mt_gguf *g, struct mt_tokenizer **out, char *err,
                            size_t errlen)
{
    char model[32], pre[64], *pattern = NULL;
    char **tokens = NULL, **merges = NULL;
    size_t n = 0, nm = 0;
    float *scores = NULL;
    int32_t *type = NULL;
    uint8_t *flags = NULL;
    int rc = -1, bad[3];
    *out = NULL;
    if (!mt_gguf_find(g, "tokenizer.ggml.model")) return 0;
    if (mt_gguf_get_str(g, "tokenizer.ggml.model", model, sizeof model))
        return mt_tf_fail(err, errlen, "%s: tokenizer.ggml.model is not a string", g->path);
    if (mt_gguf_get_strs(g, "tokenizer.ggml.tokens", &tokens, &n))
        return mt_tf_fail(err, errlen, "%s: tokenizer.ggml.model %s without a string array "
                          "tokenizer.ggml.tokens", g->path, model);
    if (mt_gguf_find(g, "tokenizer.ggml.merges") &&
        mt_gguf_get_strs(g, "tokenizer.ggml.merges", &merges, &nm)) {
        mt_tf_fail(err, errlen, "%s: tokenizer.ggml.merges is not a string array", g->path);
        goto out;
    }
    const unsigned char *sc = array4(g, "tokenizer.ggml.scores", MT_GGUF_F32, n, &bad[0]);
    const unsigned char *ty = array4(g, "tokenizer.ggml.token_type", MT_GGUF_I32, n, &bad[1]);
    const unsigned char *fl = array4(g, "tokenizer.memtrade.added_flags", MT_GGUF_I32, n, &bad[2]);
    if (bad[0] || bad[1] || bad[2]) {
        mt_tf_fail(err, errlen, "%s: %s is not an array of %zu %s (one per token)", g->path,
                   bad[0] ? "tokenizer.ggml.scores" : bad[1] ? "tokenizer.ggml.token_type"
                                                           : "tokenizer.memtrade.added_flags",
                   n, bad[0] ? "f32" : "i32");
        goto out;
    }
    if ((sc && !(scores = malloc(n * sizeof *scores))) || (ty && !(type = malloc(n * sizeof *type))) ||
        (fl && !(flags = malloc(n)))) {
        mt_tf_fail(err, errlen, "out of memory");
        goto out;
    }
    if (sc) memcpy(scores, sc, n * sizeof *scores);
    if (ty) memcpy(type, ty, n * sizeof *type);
    for (size_t i = 0; fl && i < n; i++) {
        int32_t f;
        memcpy(&f, fl + 4 * i, 4);
        flags[i] = (uint8_t)f;
    }
    /* padding up to the model's vocab (llama.cpp's, memtrade's export): no tokens */
    size_t used = n;
    for (char name[32]; ty && used > 0 && type[used - 1] == 5 &&
                        !strcmp(tokens[used - 1], pad_name(name, used - 1));)
        used--;
    int have_pre = !mt_gguf_get_str(g, "tokenizer.ggml.pre", pre, sizeof pre);
    struct mt_tok_arrays a = {.model = model,
                              .tokens = (const char *const *)tokens,
                              .n_tokens = used,
                              .merges = (const char *const *)merges,
                              .n_merges = nm,
                              .scores = scores,
                              .token_type = type,
                              .bos_id = id_of(g, "tokenizer.ggml.bos_token_id"),
                              .eos_id = id_of(g, "tokenizer.ggml.eos_token_id"),
                              .unk_id = id_of(g, "tokenizer.ggml.unknown_token_id"),
                              .added_flags = flags};
    const struct mt_gguf_kv *pk = mt_gguf_find(g, "tokenizer.memtrade.pattern");
    if (pk) {
        uint64_t len = 0;
        if (pk->type == MT_GGUF_STRING) memcpy(&len, pk->val, 8); /* checked by the reader */
        if (pk->type != MT_GGUF_STRING || !(pattern = malloc((size_t)len + 1)) ||
            mt_gguf_get_str(g, "tokenizer.memtrade.pattern", pattern, (size_t)len + 1)) {
            mt_tf_fail(err, errlen, "%s: tokenizer.memtrade.pattern is not a string", g->path);
            goto out;
        }
        a.pattern = pattern;
    } else if (!strcmp(model, "gpt2") && have_pre) {
        if (!(a.pattern = mt_tok_pattern_for(pre))) {
            mt_tf_fail(err, errlen,
                       "%s: tokenizer.ggml.pre '%s' is not known here (supported: gpt2, "
                       "default, gpt-2, llama-bpe, llama3, llama-v3)",
                       g->path, pre);
            goto out;
        }
    }
    /* llama.cpp ignores merges for Llama-3's pre-tokenizer, as its tokenizer.json says */
    a.ignore_merges = flag(g, "tokenizer.memtrade.ignore_merges",
                           have_pre && a.pattern == mt_tok_pattern_for("llama-bpe"));
    uint64_t sp;
    if (!mt_gguf_get_u64(g, "tokenizer.memtrade.space_prefix", &sp))
        a.space_prefix = sp > 3 ? -1 : (int)sp;
    else if (mt_gguf_find(g, "tokenizer.ggml.add_space_prefix"))
        a.space_prefix = flag(g, "tokenizer.ggml.add_space_prefix", 0) ? 2 : 1;
    a.no_byte_fallback = !flag(g, "tokenizer.memtrade.byte_fallback", 1);
    a.no_fuse_unk = !flag(g, "tokenizer.memtrade.fuse_unk", 1);
    a.metaspace = flag(g, "tokenizer.memtrade.metaspace", 0);
    if (mt_tok_from_arrays(out, &a, err, errlen)) {
        char *msg = strdup(err);
        if (msg) snprintf(err, errlen, "%s: tokenizer.ggml.*: %s", g->path, msg);
        free(msg);
        goto out;
    }
    rc = 0;
out:
    mt_gguf_free_strs(tokens, n);
    mt_gguf_free_strs(merges, nm);
    free(scores);
    free(type);
    free(flags);
    free(pattern);
    return rc;
}

int mt_model_tokenizer(const char *path, struct mt_tokenizer **out, char *err, size_t errlen)
{
    struct stat sb;
    *out = NULL;
    if (stat(path, &sb)) return mt_tf_fail(err, errlen, "model %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        char p[4200];
        snprintf(p, sizeof p, "%s/tokenizer.json", path);
        return stat(p, &sb) ? 0 : mt_tok_load_folder(out, path, err, errlen);
    }
    struct mt_src src = {0};
    struct mt_gguf g = {0};
    int rc = mt_gguf_read(&src, &g, path, err, errlen);
    if (!rc) rc = mt_model_gguf_tokenizer(&g, out, err, errlen);
    mt_src_free(&src);
    mt_gguf_free(&g);
    return rc;
}

int mt_model_gguf_write_tokenizer(struct mt_gguf_writer *w, const struct mt_tokenizer *t,
                                  size_t n_vocab, char *err, size_t errlen)
{
    struct mt_tok_arrays a;
    if (mt_tok_to_arrays(t, &a, err, errlen)) return -1;
    size_t n = n_vocab > a.n_tokens ? n_vocab : a.n_tokens;
    int32_t *flags = malloc(n * sizeof *flags), *type = malloc(n * sizeof *type);
    float *scores = malloc(n * sizeof *scores);
    const char **tokens = calloc(n, sizeof *tokens);
    char(*pads)[32] = malloc((n - a.n_tokens + 1) * sizeof *pads);
    if (!flags || !scores || !type || !tokens || !pads) {
        free(flags), free(scores), free(type), free(tokens), free(pads);
        mt_tok_arrays_free(&a);
        return mt_tf_fail(err, errlen, "out of memory");
    }
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        int pad = i >= a.n_tokens; /* 5: unused, as llama.cpp pads a vocab */
        flags[i] = pad ? 0 : a.added_flags[i];
        type[i] = pad ? 5 : a.token_type[i];
        tokens[i] = pad ? pad_name(pads[i - a.n_tokens], i) : a.tokens[i];
        any |= flags[i] != 0;
        scores[i] = -1e9f;
        if (pad && mt_tok_id(t, tokens[i]) >= 0) {
            free(flags), free(scores), free(type), free(tokens), free(pads);
            mt_tok_arrays_free(&a);
            return mt_tf_fail(err, errlen,
                              "the tokenizer's vocab holds \"%s\", the name of a "
                              "padding token up to the model's %zu ids",
                              pad_name((char[32]){0}, i), n_vocab);
        }
    }
    for (size_t r = a.n_merges; r-- > 0;) { /* the earliest merge of each token wins */
        const char *m = a.merges[r], *sp = strchr(m, ' ');
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s%s", (int)(sp - m), m, sp + 1);
        int32_t id = mt_tok_id(t, buf);
        if (id >= 0) scores[id] = -(float)r;
    }
    int llama = !strcmp(a.model, "llama");
    mt_gguf_w_str(w, "tokenizer.ggml.model", a.model);
    if (!llama) {
        const char *pre = a.pattern && !strcmp(a.pattern, MT_TOK_PATTERN_LLAMA3) ? "llama-bpe"
                          : a.pattern && !strcmp(a.pattern, MT_TOK_PATTERN_GPT2) ? "gpt-2"
                                                                                  : "default";
        mt_gguf_w_str(w, "tokenizer.ggml.pre", pre);
        mt_gguf_w_str(w, "tokenizer.memtrade.pattern", a.pattern);
    }
    mt_gguf_w_strs(w, "tokenizer.ggml.tokens", tokens, n);
    mt_gguf_w_i32s(w, "tokenizer.ggml.token_type", type, n);
    mt_gguf_w_strs(w, "tokenizer.ggml.merges", a.merges, a.n_merges);
    if (llama) mt_gguf_w_f32s(w, "tokenizer.ggml.scores", scores, n);
    if (a.bos_id >= 0) mt_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)a.bos_id);
    if (a.eos_id >= 0) mt_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)a.eos_id);
    if (a.unk_id >= 0) mt_gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)a.unk_id);
    mt_gguf_w_scalar(w, "tokenizer.ggml.add_space_prefix", MT_GGUF_BOOL, a.space_prefix >= 2);
    mt_gguf_w_scalar(w, "tokenizer.memtrade.ignore_merges", MT_GGUF_BOOL, (uint64_t)a.ignore_merges);
    mt_gguf_w_u32(w, "tokenizer.memtrade.space_prefix", (uint32_t)a.space_prefix);
    if (llama) {
        mt_gguf_w_scalar(w, "tokenizer.memtrade.byte_fallback", MT_GGUF_BOOL, !a.no_byte_fallback);
        mt_gguf_w_scalar(w, "tokenizer.memtrade.fuse_unk", MT_GGUF_BOOL, !a.no_fuse_unk);
        /* only when it differs from the default: files without it read as before */
        if (a.metaspace && a.space_prefix != 3)
            mt_gguf_w_scalar(w, "tokenizer.memtrade.metaspace", MT_GGUF_BOOL, 1);
    }
    if (any) mt_gguf_w_i32s(w, "tokenizer.memtrade.added_flags", flags, n);
    free(flags), free(scores), free(type), free(tokens), free(pads);
    mt_tok_arrays_free(&a);
    return w->oom ? mt_tf_fail(err, errlen, "out of memory writing the tokenizer metadata") : 0;
}
