/* ckpt.c — checkpoint writer and validating reader (format in ckpt.h). */
#include "ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* Configuration words of each version: 1 (before the attention options), 2 (before the
 * Llama-family options) and this one. */
enum { CFG_V1 = 5, CFG_V2 = 8, CFG_N = 15 };

struct header {
    char magic[8];
    uint32_t version, reserved;
    uint64_t cfg[CFG_N];
    uint64_t n_tensors, train_step, checksum;
};

static void cfg_to_u64(const struct mt_gpt_config *c, uint64_t out[CFG_N])
{
    out[0] = c->vocab, out[1] = c->seq_len, out[2] = c->n_layer, out[3] = c->n_head;
    out[4] = c->n_embd, out[5] = c->attention, out[6] = c->n_kv_head, out[7] = c->window;
    out[8] = c->norm, out[9] = c->pos, out[10] = c->rope_theta, out[11] = c->mlp;
    out[12] = c->ffn, out[13] = c->no_bias, out[14] = c->untied;
}

/* Whether configuration c has tensor p (absent tensors are not written). */
static int has_tensor(const struct mt_gpt_config *c, int p)
{
    return mt_gpt_param_elems(c, (enum mt_gpt_param)p) != 0;
}

static uint64_t count_tensors(const struct mt_gpt_config *c)
{
    uint64_t n = 0;
    for (int p = 0; p < MT_P_COUNT; p++)
        n += (uint64_t)has_tensor(c, p);
    return n;
}

/* A writer that hashes what it writes. */
struct wr {
    FILE *f;
    uint64_t h;
    int bad;
};

static void put(struct wr *w, const void *p, size_t n)
{
    w->h = mt_fnv64(w->h, p, n);
    if (fwrite(p, 1, n, w->f) != n) w->bad = 1;
}

int mt_ckpt_save(const struct mt_gpt *m, const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    for (int p = 0; p < MT_P_COUNT; p++)
        if (!m->param[p] && has_tensor(&m->cfg, p))
            return mt_tf_fail(err, errlen,
                              "checkpoint %s: tensor %s was dropped (packed or pruned "
                              "model); only a full fp32 model can be saved",
                              path, mt_gpt_param_name((enum mt_gpt_param)p));
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return mt_tf_fail(err, errlen, "checkpoint %s: %s", tmp, strerror(errno));
    struct header h = {.version = MT_CKPT_VERSION,
                       .n_tensors = count_tensors(&m->cfg),
                       .train_step = m->adam_step};
    memcpy(h.magic, MT_CKPT_MAGIC, 8);
    cfg_to_u64(&m->cfg, h.cfg);
    h.checksum = mt_fnv64(MT_FNV64_INIT, &h, offsetof(struct header, checksum));
    struct wr w = {.f = f};
    put(&w, &h, sizeof h);
    for (int p = 0; p < MT_P_COUNT; p++) {
        if (!has_tensor(&m->cfg, p)) continue;
        const char *name = mt_gpt_param_name((enum mt_gpt_param)p);
        uint32_t nl = (uint32_t)strlen(name), dtype = 1, nd;
        uint64_t dims[3], nbytes = m->param_len[p] * sizeof(float);
        size_t d[3];
        nd = (uint32_t)mt_gpt_param_shape(&m->cfg, (enum mt_gpt_param)p, d);
        for (uint32_t i = 0; i < nd; i++)
            dims[i] = d[i];
        w.h = MT_FNV64_INIT;
        put(&w, &nl, 4);
        put(&w, name, nl);
        put(&w, &dtype, 4);
        put(&w, &nd, 4);
        put(&w, dims, nd * sizeof *dims);
        put(&w, &nbytes, 8);
        put(&w, m->param[p], nbytes);
        uint64_t sum = w.h;
        put(&w, &sum, 8);
    }
    int bad = w.bad || fflush(f) || fsync(fileno(f));
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return mt_tf_fail(err, errlen, "checkpoint %s: write failed: %s", path, strerror(e));
    }
    return 0;
}

/* A reader that hashes what it reads and reports truncation. */
struct rd {
    FILE *f;
    uint64_t h;
    const char *path;
    char *err;
    size_t errlen;
};

static int get(struct rd *r, void *p, size_t n, const char *what)
{
    if (fread(p, 1, n, r->f) != n)
        return mt_tf_fail(r->err, r->errlen, "checkpoint %s: truncated while reading %s", r->path,
                          what);
    r->h = mt_fnv64(r->h, p, n);
    return 0;
}

/* Reads and checks the header; a version-1 or -2 header is converted (the options it
 * lacks load as 0: the original model's). */
static int read_header(struct rd *r, struct header *h)
{
    size_t pre = offsetof(struct header, cfg), nw;
    unsigned char buf[sizeof *h];
    memset(h, 0, sizeof *h);
    if (get(r, h, pre, "the header")) return -1;
    if (memcmp(h->magic, MT_CKPT_MAGIC, 8))
        return mt_tf_fail(r->err, r->errlen,
                          "checkpoint %s: bad magic (not a memtrade GPT "
                          "checkpoint)",
                          r->path);
    if (h->version == 1 || h->version == 2 || h->version == MT_CKPT_VERSION)
        nw = h->version == 1 ? CFG_V1 : h->version == 2 ? CFG_V2 : CFG_N;
    else
        return mt_tf_fail(r->err, r->errlen,
                          "checkpoint %s: version %u, this build reads 1, 2 and %u", r->path,
                          h->version, MT_CKPT_VERSION);
    /* the cfg words, n_tensors, train_step and the checksum, hashed with the prefix */
    memcpy(buf, h, pre);
    if (get(r, buf + pre, (nw + 3) * sizeof(uint64_t), "the header")) return -1;
    uint64_t tail[3];
    memcpy(h->cfg, buf + pre, nw * sizeof(uint64_t));
    memcpy(tail, buf + pre + nw * sizeof(uint64_t), sizeof tail);
    h->n_tensors = tail[0], h->train_step = tail[1], h->checksum = tail[2];
    if (mt_fnv64(MT_FNV64_INIT, buf, pre + (nw + 2) * sizeof(uint64_t)) != h->checksum)
        return mt_tf_fail(r->err, r->errlen, "checkpoint %s: header checksum mismatch", r->path);
    return 0;
}

static void cfg_from_u64(struct mt_gpt_config *c, const uint64_t in[CFG_N])
{
    c->vocab = in[0], c->seq_len = in[1], c->n_layer = in[2], c->n_head = in[3];
    c->n_embd = in[4], c->attention = in[5], c->n_kv_head = in[6], c->window = in[7];
    c->norm = in[8], c->pos = in[9], c->rope_theta = in[10], c->mlp = in[11];
    c->ffn = in[12], c->no_bias = in[13], c->untied = in[14];
}

int mt_ckpt_peek(const char *path, struct mt_gpt_config *cfg, uint64_t *train_step, char *err,
                 size_t errlen)
{
    struct header h;
    struct rd r = {
        .f = fopen(path, "rb"), .h = MT_FNV64_INIT, .path = path, .err = err, .errlen = errlen};
    if (!r.f) return mt_tf_fail(err, errlen, "checkpoint %s: %s", path, strerror(errno));
    int rc = read_header(&r, &h);
    fclose(r.f);
    if (rc) return -1;
    cfg_from_u64(cfg, h.cfg);
    if (train_step) *train_step = h.train_step;
    return mt_gpt_config_check(cfg, err, errlen);
}

/* Reads and checks tensor p into dst. */
static int read_tensor(struct rd *r, const struct mt_gpt *m, int p, float *dst)
{
    const char *want = mt_gpt_param_name((enum mt_gpt_param)p);
    char name[64];
    uint32_t nl, dtype, nd;
    uint64_t dims[3], nbytes, sum;
    size_t wd[3], wnd = mt_gpt_param_shape(&m->cfg, (enum mt_gpt_param)p, wd);
    r->h = MT_FNV64_INIT;
    if (get(r, &nl, 4, want)) return -1;
    if (nl != strlen(want))
        return mt_tf_fail(r->err, r->errlen,
                          "checkpoint %s: tensor %d name length %u, "
                          "expected '%s'",
                          r->path, p, nl, want);
    if (get(r, name, nl, want)) return -1;
    if (memcmp(name, want, nl))
        return mt_tf_fail(r->err, r->errlen,
                          "checkpoint %s: tensor %d is '%.*s', expected "
                          "'%s'",
                          r->path, p, (int)nl, name, want);
    if (get(r, &dtype, 4, want) || get(r, &nd, 4, want)) return -1;
    if (dtype != 1)
        return mt_tf_fail(r->err, r->errlen,
                          "checkpoint %s: tensor %s has dtype %u, "
                          "expected 1 (f32)",
                          r->path, want, dtype);
    if (nd != wnd)
        return mt_tf_fail(r->err, r->errlen,
                          "checkpoint %s: tensor %s has %u dims, expected "
                          "%zu",
                          r->path, want, nd, wnd);
    if (get(r, dims, nd * sizeof *dims, want) || get(r, &nbytes, 8, want)) return -1;
    for (uint32_t i = 0; i < nd; i++)
        if (dims[i] != wd[i])
            return mt_tf_fail(r->err, r->errlen,
                              "checkpoint %s: tensor %s dim %u is %llu, "
                              "expected %zu",
                              r->path, want, i, (unsigned long long)dims[i], wd[i]);
    if (nbytes != m->param_len[p] * sizeof(float))
        return mt_tf_fail(r->err, r->errlen,
                          "checkpoint %s: tensor %s holds %llu bytes, "
                          "expected %zu",
                          r->path, want, (unsigned long long)nbytes,
                          m->param_len[p] * sizeof(float));
    if (get(r, dst, nbytes, want)) return -1;
    uint64_t expect = r->h;
    if (get(r, &sum, 8, want)) return -1;
    if (sum != expect)
        return mt_tf_fail(r->err, r->errlen,
                          "checkpoint %s: tensor %s checksum mismatch "
                          "(corrupted data)",
                          r->path, want);
    return 0;
}

int mt_ckpt_load(const char *path, const struct mt_gpt_config *expect, enum mt_gpt_mode mode,
                 size_t B, size_t T, struct mt_gpt **out, uint64_t *train_step, char *err,
                 size_t errlen)
{
    struct header h;
    struct mt_gpt_config cfg;
    struct mt_gpt *m = NULL;
    *out = NULL;
    struct rd r = {
        .f = fopen(path, "rb"), .h = MT_FNV64_INIT, .path = path, .err = err, .errlen = errlen};
    if (!r.f) return mt_tf_fail(err, errlen, "checkpoint %s: %s", path, strerror(errno));
    int rc = read_header(&r, &h);
    if (!rc) {
        char fopt[192], eopt[192];
        cfg_from_u64(&cfg, h.cfg);
        mt_gpt_config_options(&cfg, fopt, sizeof fopt);
        if (expect) mt_gpt_config_options(expect, eopt, sizeof eopt);
        if (expect && memcmp(expect, &cfg, sizeof cfg))
            rc = mt_tf_fail(err, errlen,
                            "checkpoint %s: config mismatch: file has V%zu T%zu "
                            "L%zu H%zu C%zu%s, expected V%zu T%zu L%zu H%zu C%zu%s",
                            path, cfg.vocab, cfg.seq_len, cfg.n_layer, cfg.n_head, cfg.n_embd, fopt,
                            expect->vocab, expect->seq_len, expect->n_layer, expect->n_head,
                            expect->n_embd, eopt);
        else if (mt_gpt_config_check(&cfg, err, errlen))
            rc = -1;
        else if (h.n_tensors != count_tensors(&cfg))
            rc = mt_tf_fail(err, errlen, "checkpoint %s: %llu tensors, expected %llu", path,
                            (unsigned long long)h.n_tensors,
                            (unsigned long long)count_tensors(&cfg));
    }
    if (!rc) rc = mt_gpt_create(&m, &cfg, mode, B, T, err, errlen);
    for (int p = 0; !rc && p < MT_P_COUNT; p++)
        if (has_tensor(&cfg, p)) rc = read_tensor(&r, m, p, m->param[p]);
    if (!rc && fgetc(r.f) != EOF)
        rc = mt_tf_fail(err, errlen, "checkpoint %s: trailing bytes after the last tensor", path);
    fclose(r.f);
    if (rc) {
        mt_gpt_free(m);
        return -1;
    }
    if (train_step) *train_step = h.train_step;
    *out = m;
    return 0;
}
