/* modelfile.c — import and export of Hugging Face folders and GGUF files (see
 * modelfile.h): which format, the GGUF metadata <-> configuration, the check of every
 * tensor before the model exists, and the copy (or not) of each one. */
#include "modelfile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "gguf.h"
#include "hfconfig.h"
#include "memtrade/memcat.h"
#include "modeltok.h"
#include "names.h"
#include "safetensors.h"
#include "util.h"

int mt_model_is_path(const char *spec)
{
    size_t n = spec ? strlen(spec) : 0;
    return n && (strchr(spec, '/') || (n > 5 && !strcmp(spec + n - 5, ".gguf")));
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int file_exists(const char *dir, const char *name)
{
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0;
}

/* ---------------------------------------------------------------- GGUF metadata */

static int gguf_size(const struct mt_gguf *g, const char *arch, const char *key, size_t def,
                     size_t *out, char *err, size_t errlen)
{
    char k[128];
    uint64_t v;
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (mt_gguf_get_u64(g, k, &v)) {
        if (!def)
            return mt_tf_fail(err, errlen, "%s: no integer '%s' in the metadata", g->path, k);
        *out = def;
        return 0;
    }
    if (!v) return mt_tf_fail(err, errlen, "%s: '%s' is 0", g->path, k);
    *out = (size_t)v;
    return 0;
}

static int gguf_eps(const struct mt_gguf *g, const char *key, char *err, size_t errlen)
{
    double e;
    if (mt_gguf_get_f64(g, key, &e)) return 0;
    if (fabs(e - 1e-5) > 1e-9)
        return mt_tf_fail(err, errlen, "%s: %s %g; memtrade's norms use 1e-5 (supported: 1e-5)",
                          g->path, key, e);
    return 0;
}

/* The configuration of a GGUF file; the vocabulary and tied head from its tensors. */
static int gguf_config(const struct mt_gguf *g, struct mt_src *src, struct mt_gpt_config *c,
                       char *arch, size_t n, char *err, size_t errlen)
{
    char k[128];
    memset(c, 0, sizeof *c);
    if (mt_gguf_get_str(g, "general.architecture", arch, n))
        return mt_tf_fail(err, errlen, "%s: no general.architecture", g->path);
    int llama = !strcmp(arch, "llama");
    if (!llama && strcmp(arch, "gpt2"))
        return mt_tf_fail(err, errlen,
                          "%s: architecture '%s' is not supported (supported: gpt2, llama)",
                          g->path, arch);
    size_t ffn = 0, kv = 0;
    if (gguf_size(g, arch, "context_length", 0, &c->seq_len, err, errlen) ||
        gguf_size(g, arch, "embedding_length", 0, &c->n_embd, err, errlen) ||
        gguf_size(g, arch, "block_count", 0, &c->n_layer, err, errlen) ||
        gguf_size(g, arch, "attention.head_count", 0, &c->n_head, err, errlen) ||
        gguf_size(g, arch, "feed_forward_length", 0, &ffn, err, errlen) ||
        gguf_size(g, arch, "attention.head_count_kv", c->n_head, &kv, err, errlen))
        return -1;
    struct mt_src_tensor *emb = mt_src_find(src, "token_embd.weight");
    if (!emb || emb->ndim != 2)
        return mt_tf_fail(err, errlen, "%s: no 2-D token_embd.weight (it gives the vocabulary)",
                          g->path);
    c->vocab = emb->dims[0];
    struct mt_src_tensor *out = mt_src_find(src, "output.weight");
    c->untied = out && !(out->dtype == emb->dtype && out->nbytes == emb->nbytes &&
                         !memcmp(out->data, emb->data, emb->nbytes));
    if (out && !c->untied) out->used = 1; /* a copy of the embedding: the head is tied */
    if (!llama) {
        snprintf(k, sizeof k, "%s.attention.layer_norm_epsilon", arch);
        if (gguf_eps(g, k, err, errlen)) return -1;
        c->ffn = ffn == 4 * c->n_embd ? 0 : ffn;
    } else {
        double theta = 10000.0;
        snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", arch);
        if (gguf_eps(g, k, err, errlen)) return -1;
        snprintf(k, sizeof k, "%s.rope.freq_base", arch);
        mt_gguf_get_f64(g, k, &theta);
        if (!(theta >= 1.0) || theta != floor(theta))
            return mt_tf_fail(err, errlen, "%s: %s %g (supported: a positive integer)", g->path,
                              k, theta);
        c->norm = MT_GPT_NORM_RMS, c->pos = MT_GPT_POS_ROPE, c->mlp = MT_GPT_MLP_SWIGLU;
        c->rope_theta = theta == 10000.0 ? 0 : (size_t)theta;
        c->n_kv_head = kv == c->n_head ? 0 : kv;
        c->no_bias = !mt_src_find(src, "blk.0.attn_q.bias");
        c->ffn = ffn;
        if (mt_gpt_ffn(&(struct mt_gpt_config){.n_embd = c->n_embd, .mlp = MT_GPT_MLP_SWIGLU}) ==
            ffn)
            c->ffn = 0;
    }
    return mt_gpt_config_check(c, err, errlen);
}

/* ---------------------------------------------------------------- reading */

/* What a file read leaves: the tensors, the configuration, and the format's facts. */
struct opened {
    struct mt_src src;
    struct mt_gguf g;
    struct mt_gpt_config cfg;
    struct mt_model_info info;
    char prefix[16]; /* GPT-2 folders: "transformer." or "" */
};

static void opened_free(struct opened *o)
{
    mt_src_free(&o->src);
    mt_gguf_free(&o->g);
}

static void count_info(struct opened *o)
{
    o->info.n_tensors = o->src.n;
    for (size_t i = 0; i < o->src.n; i++) {
        o->info.tensor_bytes += o->src.t[i].nbytes;
        o->info.dtype_count[o->src.t[i].dtype]++;
    }
}

/* Opens path; with `tensors` 0 a folder's weights are not read (peek). */
static int open_model(const char *path, int tensors, struct opened *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    if (is_dir(path)) {
        o->info.format = MT_MF_HF;
        o->info.has_tokenizer = file_exists(path, "tokenizer.json");
        if (mt_hf_config_read(path, &o->cfg, o->info.arch, sizeof o->info.arch, err, errlen))
            return -1;
        if (tensors && mt_st_read_folder(&o->src, path, err, errlen)) return -1;
        if (o->cfg.norm == MT_GPT_NORM_LAYER && tensors && !mt_src_find(&o->src, "transformer.wte.weight") &&
            mt_src_find(&o->src, "wte.weight"))
            o->prefix[0] = '\0'; /* saved from GPT2Model: no "transformer." */
        else if (o->cfg.norm == MT_GPT_NORM_LAYER)
            snprintf(o->prefix, sizeof o->prefix, "transformer.");
        count_info(o);
        return 0;
    }
    size_t n = strlen(path);
    if (n < 5 || strcmp(path + n - 5, ".gguf")) {
        struct stat sb;
        if (stat(path, &sb))
            return mt_tf_fail(err, errlen, "model %s: %s", path, strerror(errno));
        return mt_tf_fail(err, errlen,
                          "model %s: neither a folder (Hugging Face: config.json + "
                          "*.safetensors) nor a .gguf file",
                          path);
    }
    o->info.format = MT_MF_GGUF;
    if (mt_gguf_read(&o->src, &o->g, path, err, errlen)) return -1;
    o->info.has_tokenizer = mt_gguf_find(&o->g, "tokenizer.ggml.model") != NULL;
    if (gguf_config(&o->g, &o->src, &o->cfg, o->info.arch, sizeof o->info.arch, err, errlen))
        return -1;
    count_info(o);
    return 0;
}

int mt_model_peek(const char *path, struct mt_gpt_config *cfg, struct mt_model_info *info,
                  char *err, size_t errlen)
{
    struct opened o;
    int rc = open_model(path, 0, &o, err, errlen);
    if (!rc) {
        *cfg = o.cfg;
        if (info) *info = o.info;
    }
    opened_free(&o);
    return rc;
}

/* Which stored tensors are never weights: GPT-2's causal-mask buffers and Llama's cached
 * rotary frequencies, written by some versions of transformers. */
static int ignorable(const char *name)
{
    size_t n = strlen(name);
    static const char *const ends[] = {".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq"};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        size_t k = strlen(ends[i]);
        if (n >= k && !strcmp(name + n - k, ends[i])) return 1;
    }
    return 0;
}

/* Checks every piece against the file: present, the right shape. */
static int check_pieces(struct opened *o, const char *path, struct mt_piece *pc, size_t np,
                        struct mt_src_tensor **srcs, char *err, size_t errlen)
{
    char a[64], b[64];
    for (size_t k = 0; k < np; k++) {
        struct mt_piece *q = &pc[k];
        size_t want[2], nd = q->vector ? 1 : 2;
        want[0] = q->xf == MT_XF_T ? q->cols : q->rows;
        want[1] = q->xf == MT_XF_T ? q->rows : q->cols;
        struct mt_src_tensor *t = mt_src_find(&o->src, q->name);
        if (!t)
            return mt_tf_fail(err, errlen, "model %s: missing tensor '%s' (expected shape %s)",
                              path, q->name, mt_src_shape_text(want, nd, a, sizeof a));
        if (t->ndim != nd || t->dims[0] != want[0] || (nd == 2 && t->dims[1] != want[1]))
            return mt_tf_fail(err, errlen,
                              "model %s: tensor '%s' has shape %s, the configuration (%s) "
                              "needs %s",
                              path, q->name, mt_src_shape_text(t->dims, t->ndim, a, sizeof a),
                              o->info.arch, mt_src_shape_text(want, nd, b, sizeof b));
        t->used = 1;
        srcs[k] = t;
    }
    /* a tied head stored anyway must be the embedding */
    const char *head = o->info.format == MT_MF_GGUF ? "output.weight" : "lm_head.weight";
    struct mt_src_tensor *h = mt_src_find(&o->src, head);
    if (h && !o->cfg.untied && !h->used) {
        struct mt_src_tensor *e = srcs[0]; /* the first piece is the token embedding */
        if (h->dtype != e->dtype || h->nbytes != e->nbytes || memcmp(h->data, e->data, e->nbytes))
            return mt_tf_fail(err, errlen,
                              "model %s: the configuration ties the LM head to the embedding, "
                              "but '%s' differs from it",
                              path, head);
        h->used = 1;
    }
    for (size_t i = 0; i < o->src.n; i++)
        if (!o->src.t[i].used && !ignorable(o->src.t[i].name))
            return mt_tf_fail(err, errlen,
                              "model %s: unexpected tensor '%s' %s (not part of a %s with "
                              "n_layer=%zu%s)",
                              path, o->src.t[i].name,
                              mt_src_shape_text(o->src.t[i].dims, o->src.t[i].ndim, a, sizeof a),
                              o->info.arch, o->cfg.n_layer,
                              o->cfg.untied ? "" : " and a tied head");
    return 0;
}

/* Whether the pieces of parameter p (pc[k0..k1)) are F32, untransformed, aligned and
 * back to back in the file, in the model's order: then the model can point into it. */
static float *zero_copy(struct mt_piece *pc, struct mt_src_tensor **s, size_t k0, size_t k1,
                        size_t elems)
{
    size_t bytes = 0;
    for (size_t k = k0; k < k1; k++) {
        if (s[k]->dtype != MT_DT_F32 || pc[k].xf != MT_XF_COPY) return NULL;
        if (k > k0 && s[k]->data != s[k - 1]->data + s[k - 1]->nbytes) return NULL;
        bytes += s[k]->nbytes;
    }
    if (bytes != elems * sizeof(float) || (uintptr_t)s[k0]->data % sizeof(float)) return NULL;
    return (float *)(uintptr_t)s[k0]->data;
}

/* Decodes one piece into the model's tensor. tmp: scratch of at least the piece's floats
 * when a transform is needed. */
static void fill_piece(struct mt_gpt *m, const struct mt_piece *q, const struct mt_src_tensor *t,
                       float *tmp)
{
    float *dst = m->param[q->p] + q->layer * mt_names_layer_elems(&m->cfg, q->p) + q->row0 * q->cols;
    size_t n = q->rows * q->cols;
    if (q->xf == MT_XF_COPY) {
        mt_dtype_decode(t->dtype, t->data, dst, n);
        return;
    }
    mt_dtype_decode(t->dtype, t->data, tmp, n);
    if (q->xf == MT_XF_T) { /* stored (cols, rows) */
        for (size_t r = 0; r < q->rows; r++)
            for (size_t c = 0; c < q->cols; c++)
                dst[r * q->cols + c] = tmp[c * q->rows + r];
        return;
    }
    for (size_t r = 0; r < q->rows; r++) /* MT_XF_UNPERM */
        memcpy(dst + mt_names_unperm(r, q->rows, q->heads) * q->cols, tmp + r * q->cols,
               q->cols * sizeof(float));
}

/* Returns the whole pages of a tensor's bytes to the kernel (a private, clean file
 * mapping: read again from the file if ever touched), so that loading by conversion holds
 * the model plus one tensor's pages, not the model plus the whole file. */
static void drop_pages(const struct mt_src_tensor *t)
{
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), b = (uintptr_t)t->data, e = b + t->nbytes;
    b = (b + pg - 1) / pg * pg;
    e = e / pg * pg;
    if (e > b) madvise((void *)b, e - b, MADV_DONTNEED);
}

static void release_opened(void *user)
{
    struct opened *o = user;
    opened_free(o);
    free(o);
}

int mt_model_load(const char *path, const struct mt_gpt_config *expect, enum mt_gpt_mode mode,
                  size_t B, size_t T, int map, struct mt_gpt **out, struct mt_model_info *info,
                  char *err, size_t errlen)
{
    struct opened *o = calloc(1, sizeof *o);
    struct mt_piece *pc = NULL;
    struct mt_src_tensor **srcs = NULL;
    float *ext[MT_P_COUNT] = {0}, *tmp = NULL;
    size_t np = 0, tmp_n = 0;
    int rc = -1, any = 0;
    *out = NULL;
    if (!o) return mt_tf_fail(err, errlen, "out of memory");
    if (open_model(path, 1, o, err, errlen) ||
        mt_names_pieces(&o->cfg, o->info.format, o->prefix, &pc, &np, err, errlen))
        goto out;
    if (expect) { /* the options no weight depends on may differ */
        struct mt_gpt_config a = o->cfg, b = *expect;
        a.attention = b.attention = 0;
        a.window = b.window = 0;
        if (memcmp(&a, &b, sizeof a)) {
            char fa[256], fb[256];
            mt_gpt_config_options(&o->cfg, fa, sizeof fa);
            mt_gpt_config_options(expect, fb, sizeof fb);
            mt_tf_fail(err, errlen,
                       "model %s holds L%zu H%zu KV%zu C%zu V%zu T%zu%s, not the L%zu H%zu KV%zu "
                       "C%zu V%zu T%zu%s asked for",
                       path, o->cfg.n_layer, o->cfg.n_head, mt_gpt_kv_heads(&o->cfg),
                       o->cfg.n_embd, o->cfg.vocab, o->cfg.seq_len, fa, expect->n_layer,
                       expect->n_head, mt_gpt_kv_heads(expect), expect->n_embd, expect->vocab,
                       expect->seq_len, fb);
            goto out;
        }
        o->cfg = *expect;
    }
    if (!(srcs = calloc(np ? np : 1, sizeof *srcs))) {
        mt_tf_fail(err, errlen, "out of memory");
        goto out;
    }
    if (check_pieces(o, path, pc, np, srcs, err, errlen)) goto out;
    for (size_t k0 = 0, k1; k0 < np; k0 = k1) {
        for (k1 = k0; k1 < np && pc[k1].p == pc[k0].p; k1++)
            ;
        if (map && mode != MT_GPT_TRAIN)
            ext[pc[k0].p] = zero_copy(pc, srcs, k0, k1, mt_gpt_param_elems(&o->cfg, pc[k0].p));
        any |= ext[pc[k0].p] != NULL;
    }
    for (size_t k = 0; k < np; k++)
        if (pc[k].xf != MT_XF_COPY && pc[k].rows * pc[k].cols > tmp_n) tmp_n = pc[k].rows * pc[k].cols;
    if (mt_gpt_create_mapped(out, &o->cfg, mode, B, T, ext, any ? release_opened : NULL,
                             any ? o : NULL, err, errlen))
        goto out;
    struct opened *keep = any ? o : NULL; /* the model owns it now */
    if (tmp_n) {
        int prev = mt_memcat_set(MT_MEM_WORKSPACE);
        tmp = malloc(tmp_n * sizeof *tmp);
        mt_memcat_set(prev);
        if (!tmp) {
            mt_gpt_free(*out);
            *out = NULL;
            if (keep) o = NULL; /* freed with the model */
            mt_tf_fail(err, errlen, "out of memory for a %zu-float conversion buffer", tmp_n);
            goto out;
        }
    }
    o->info.mapped_bytes = (*out)->mapped_bytes;
    for (size_t k = 0; k < np; k++) {
        if ((*out)->mapped[pc[k].p]) continue;
        fill_piece(*out, &pc[k], srcs[k], tmp);
        o->info.copied_bytes += pc[k].rows * pc[k].cols * sizeof(float);
        drop_pages(srcs[k]); /* converted: its file pages need not stay resident */
    }
    if (info) *info = o->info;
    if (keep) o = NULL;
    rc = 0;
out:
    free(tmp);
    free(srcs);
    free(pc);
    if (o) release_opened(o);
    return rc;
}

/* ---------------------------------------------------------------- export */

/* GPT-2's byte-to-unicode table: the printable character standing for each byte, as
 * UTF-8 (byte-level BPE vocabularies spell tokens with these). */
static void byte_char(unsigned b, char out[4])
{
    unsigned cp = b, n = 0;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174))) {
        for (unsigned x = 0; x < b; x++)
            n += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174));
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3f)), out[2] = 0;
    }
}

/* The stored tensors of m in format fmt: pieces laid back into their stored layout. */
static int build_out(const struct mt_gpt *m, enum mt_model_format fmt, enum mt_dtype dtype,
                     struct mt_out_list *l, char *err, size_t errlen)
{
    struct mt_piece *pc;
    size_t np;
    const char *pre = "transformer.";
    if (mt_names_pieces(&m->cfg, fmt, pre, &pc, &np, err, errlen)) return -1;
    for (size_t k = 0; k < np; k++) {
        const struct mt_piece *q = &pc[k];
        const float *srcp = m->param[q->p] + q->layer * mt_names_layer_elems(&m->cfg, q->p) +
                            q->row0 * q->cols;
        size_t dims[2], nd = q->vector ? 1 : 2, n = q->rows * q->cols;
        dims[0] = q->xf == MT_XF_T ? q->cols : q->rows;
        dims[1] = q->xf == MT_XF_T ? q->rows : q->cols;
        enum mt_dtype dt = dtype;
        if (fmt == MT_MF_GGUF && (q->vector || q->cols % mt_dtype_block(dt))) dt = MT_DT_F32;
        float *buf = NULL;
        if (q->xf != MT_XF_COPY) {
            if (!(buf = malloc(n * sizeof *buf))) goto oom;
            if (q->xf == MT_XF_T)
                for (size_t r = 0; r < q->rows; r++)
                    for (size_t c = 0; c < q->cols; c++)
                        buf[c * q->rows + r] = srcp[r * q->cols + c];
            else
                for (size_t r = 0; r < q->rows; r++)
                    memcpy(buf + r * q->cols, srcp + mt_names_unperm(r, q->rows, q->heads) * q->cols,
                           q->cols * sizeof(float));
        }
        if (mt_out_add(l, q->name, dt, nd, dims, buf ? buf : srcp, buf)) goto oom;
    }
    free(pc);
    return 0;
oom:
    free(pc);
    return mt_tf_fail(err, errlen, "out of memory laying out the tensors");
}

static const char *torch_dtype(enum mt_dtype t)
{
    return t == MT_DT_F16 ? "float16" : t == MT_DT_BF16 ? "bfloat16" : "float32";
}

/* DIR/tokenizer.json and tokenizer_config.json of tok, or of the byte tokenizer for a
 * byte vocabulary without one (mt_tok_save_folder); nothing for a larger vocabulary
 * without a tokenizer. */
static int write_hf_tokenizer(const char *dir, const struct mt_tokenizer *tok, size_t vocab,
                              char *err, size_t errlen)
{
    struct mt_tokenizer *bytes = NULL;
    if (!tok && vocab != 256) return 0;
    if (!tok && mt_tok_bytes(&bytes, err, errlen)) return -1;
    int rc = mt_tok_save_folder(tok ? tok : bytes, dir, err, errlen);
    mt_tok_free(bytes);
    if (rc) {
        char *msg = strdup(err);
        if (msg) snprintf(err, errlen, "export %s: %s", dir, msg);
        free(msg);
    }
    return rc;
}

static int gguf_metadata(struct mt_gguf_writer *w, const struct mt_gpt_config *c, int llama,
                         enum mt_dtype dtype, const struct mt_tokenizer *tok, char *err,
                         size_t errlen)
{
    const char *a = llama ? "llama" : "gpt2";
    char k[128];
    /* general.file_type: llama.cpp's LLAMA_FTYPE of the matrices */
    static const uint32_t ftype[] = {0, 1, 32, 7, 2}; /* F32 F16 BF16 Q8_0 Q4_0 */
    mt_gguf_w_str(w, "general.architecture", a);
    mt_gguf_w_str(w, "general.name", "memtrade");
    mt_gguf_w_u32(w, "general.file_type", ftype[dtype]);
    mt_gguf_w_u32(w, "general.alignment", 32);
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", a, s), k)
    mt_gguf_w_u32(w, KEY("context_length"), (uint32_t)c->seq_len);
    mt_gguf_w_u32(w, KEY("embedding_length"), (uint32_t)c->n_embd);
    mt_gguf_w_u32(w, KEY("block_count"), (uint32_t)c->n_layer);
    mt_gguf_w_u32(w, KEY("feed_forward_length"), (uint32_t)mt_gpt_ffn(c));
    mt_gguf_w_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head);
    if (llama) {
        mt_gguf_w_u32(w, KEY("attention.head_count_kv"), (uint32_t)mt_gpt_kv_heads(c));
        mt_gguf_w_f32(w, KEY("rope.freq_base"), (float)mt_gpt_rope_theta(c));
        mt_gguf_w_u32(w, KEY("rope.dimension_count"), (uint32_t)(c->n_embd / c->n_head));
        mt_gguf_w_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
        mt_gguf_w_u32(w, KEY("vocab_size"), (uint32_t)c->vocab);
    } else {
        mt_gguf_w_f32(w, KEY("attention.layer_norm_epsilon"), 1e-5f);
    }
#undef KEY
    if (tok && mt_tok_kind(tok) != MT_TOK_BYTES)
        return mt_model_gguf_write_tokenizer(w, tok, c->vocab, err, errlen);
    if (c->vocab == 256) { /* the byte vocabulary, as byte-level BPE without merges */
        char chars[256][4];
        const char *names[256];
        int32_t type[256];
        for (unsigned b = 0; b < 256; b++) {
            byte_char(b, chars[b]);
            names[b] = chars[b];
            type[b] = 1;
        }
        mt_gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
        mt_gguf_w_str(w, "tokenizer.ggml.pre", "gpt-2"); /* llama.cpp's name of GPT-2's regex */
        mt_gguf_w_strs(w, "tokenizer.ggml.tokens", names, 256);
        mt_gguf_w_i32s(w, "tokenizer.ggml.token_type", type, 256);
        mt_gguf_w_strs(w, "tokenizer.ggml.merges", NULL, 0);
    }
    return 0;
}

int mt_model_export(const struct mt_gpt *m, enum mt_model_format fmt, enum mt_dtype dtype,
                    const char *out, char *err, size_t errlen)
{
    return mt_model_export_tok(m, NULL, fmt, dtype, out, err, errlen);
}

int mt_model_export_tok(const struct mt_gpt *m, const struct mt_tokenizer *tok,
                        enum mt_model_format fmt, enum mt_dtype dtype, const char *out, char *err,
                        size_t errlen)
{
    if (tok && mt_tok_vocab(tok) > m->cfg.vocab)
        return mt_tf_fail(err, errlen, "export %s: the tokenizer has %zu ids, the model's vocab "
                          "is %zu", out, mt_tok_vocab(tok), m->cfg.vocab);
    int llama = mt_names_family(&m->cfg, err, errlen);
    if (llama < 0) return -1;
    for (int p = 0; p < MT_P_COUNT; p++)
        if (!m->param[p] && mt_gpt_param_elems(&m->cfg, (enum mt_gpt_param)p))
            return mt_tf_fail(err, errlen, "export %s: tensor %s was dropped (packed or pruned "
                              "model); only a full fp32 model can be exported", out,
                              mt_gpt_param_name((enum mt_gpt_param)p));
    if (fmt == MT_MF_HF && dtype != MT_DT_F32 && dtype != MT_DT_F16 && dtype != MT_DT_BF16)
        return mt_tf_fail(err, errlen, "export %s: safetensors holds F32, F16 or BF16, not %s",
                          out, mt_dtype_name(dtype));
    struct mt_out_list l = {0};
    int rc = build_out(m, fmt, dtype, &l, err, errlen);
    if (!rc && fmt == MT_MF_HF) {
        char path[4096];
        if (mkdir(out, 0755) && errno != EEXIST)
            rc = mt_tf_fail(err, errlen, "export %s: %s", out, strerror(errno));
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        if (!rc) rc = mt_st_write(path, &l, err, errlen);
        if (!rc)
            rc = mt_hf_config_write(out, &m->cfg, llama, torch_dtype(dtype),
                                    tok ? mt_tok_bos(tok) : -1, tok ? mt_tok_eos(tok) : -1, err,
                                    errlen);
        if (!rc) rc = write_hf_tokenizer(out, tok, m->cfg.vocab, err, errlen);
    } else if (!rc) {
        struct mt_gguf_writer w = {0};
        rc = gguf_metadata(&w, &m->cfg, llama, dtype, tok, err, errlen);
        if (!rc) rc = mt_gguf_write(out, &w, &l, 32, err, errlen);
        mt_gguf_w_free(&w);
    }
    mt_out_free(&l);
    return rc;
}
