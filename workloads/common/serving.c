/* serving.c — the one serving measurement (see serving.h): evaluation protocol, KV-cache
 * decode, and the accounted peaks of the two phases. */
#include "serving.h"

#include "wlcommon.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <memtrade/memcat.h>

#define ERRLEN 512
#define BASE_MAGIC "MTBASE1" /* 8 bytes with its NUL */

/* Ascending doubles, for qsort (decode rates, per-position KL). */
static int cmp_rate(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The evaluation protocol with an observer of every scored position (may be NULL). */
static int report_eval(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_eval_engine *e,
                       const struct mt_corpus *c, size_t max_tokens, mt_eval_observer *observe,
                       void *user, struct mt_eval_result *res)
{
    char err[ERRLEN];
    struct mt_eval_result r;
    mt_wl_threads(ctx);
    mt_region_begin(ctx, "eval");
    int rc =
        e ? mt_eval_tokens_on(e, &c->val_tokens, max_tokens, observe, user, &r, err, sizeof err)
          : mt_gpt_eval_tokens(m, &c->val_tokens, max_tokens, observe, user, &r, err, sizeof err);
    mt_region_end(ctx, "eval");
    if (rc) return mt_error(ctx, "evaluation failed: %s", err);
    /* per byte of text whatever the tokenizer (for bytes: r.loss and r.ppl, bit for bit) */
    mt_metric(ctx, "val_loss", r.byte_loss, "nats/byte");
    mt_metric(ctx, "val_bpb", r.bpb, "bits/byte");
    mt_metric(ctx, "val_ppl", exp(r.byte_loss), "ratio");
    mt_metric(ctx, "val_top1", r.top1, "ratio");
    mt_metric(ctx, "eval_tokens_per_s", (double)r.tokens / r.seconds, "tokens/s");
    /* what was scored: the first eval_bytes bytes of the validation split (offset 0) of
     * the run's corpus; accuracy is comparable only between equal ones */
    mt_metric(ctx, "eval_bytes", (double)r.bytes, "bytes");
    if (c->ids)
        mt_log(ctx, MT_LOG_INFO,
               "eval over %zu tokens (%s) = %zu bytes: %.4f nats/token (perplexity %.3f), "
               "val_bpb %.4f top1 %.3f (%.2f s)",
               r.tokens, c->tokenizer, r.bytes, r.loss, r.ppl, r.bpb, r.top1, r.seconds);
    else
        mt_log(ctx, MT_LOG_INFO,
               "eval over %zu bytes: val_loss %.4f val_bpb %.4f top1 %.3f "
               "(%.2f s)",
               r.tokens, r.loss, r.bpb, r.top1, r.seconds);
    if (res) *res = r;
    return 0;
}

int mt_wl_report_eval(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                      size_t max_tokens, struct mt_eval_result *res)
{
    return report_eval(ctx, m, NULL, c, max_tokens, NULL, NULL, res);
}

/* ---------------------------------------------------------------- KL against a base */

struct base_header {
    char magic[8];
    uint64_t positions, vocab;
    double ppl;
};

struct base_file {
    FILE *f;
    size_t vocab;
    double nll;  /* the summed -log p(target) of the model scored (the base's when writing) */
    float *rows; /* reading: one batch of base rows (data) */
    size_t cap;
    struct mt_wl_kl kl;
};

static int base_write(void *user, const float *probs, const int *targets, size_t rows, char *err,
                      size_t errlen)
{
    struct base_file *b = user;
    for (size_t i = 0; i < rows; i++)
        b->nll -= log((double)probs[i * b->vocab + (size_t)targets[i]]);
    if (fwrite(probs, sizeof *probs * b->vocab, rows, b->f) != rows) {
        snprintf(err, errlen, "writing the base distributions failed");
        return -1;
    }
    return 0;
}

/* Opens path and checks its header against what the evaluation will score; NULL when
 * it is missing or another's. */
static FILE *base_open(const char *path, size_t positions, size_t vocab, struct base_header *h)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fread(h, sizeof *h, 1, f) != 1 || memcmp(h->magic, BASE_MAGIC, 8) ||
        h->positions != positions || h->vocab != vocab || fseek(f, 0, SEEK_END) ||
        (size_t)ftell(f) != sizeof *h + positions * vocab * sizeof(float) ||
        fseek(f, (long)sizeof *h, SEEK_SET)) {
        fclose(f);
        return NULL;
    }
    return f;
}

int mt_wl_base_probs(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                     const struct mt_gpt_recipe *recipe, uint64_t seed, struct mt_wl_base *b)
{
    char err[ERRLEN], tmp[4200], key[4000];
    mt_wl_cache_path(ctx, &m->cfg, recipe, seed, c, key, sizeof key);
    size_t max_tokens = (size_t)mt_param_int(ctx, "eval_tokens");
    memset(b, 0, sizeof *b);
    size_t n_val = c->val_tokens.n;
    b->positions = max_tokens && max_tokens < n_val - 1 ? max_tokens : n_val - 1;
    b->vocab = m->cfg.vocab;
    snprintf(b->path, sizeof b->path, "%s.eval%zu-T%zu.probs", key, b->positions, m->T);
    struct base_header h;
    FILE *f = base_open(b->path, b->positions, b->vocab, &h);
    if (f) {
        fclose(f);
        b->ppl = h.ppl;
        mt_log(ctx, MT_LOG_INFO, "base distributions from %s", b->path);
    } else {
        /* one temporary file per process: runs of a sweep started in the same second
         * write their own and each renames it over the same (identical) result */
        snprintf(tmp, sizeof tmp, "%s.tmp%ld", b->path, (long)getpid());
        struct base_file bf = {fopen(tmp, "wb"), b->vocab, 0.0, NULL, 0, {0}};
        if (!bf.f) return mt_error(ctx, "base distributions: cannot create %s", tmp);
        memset(&h, 0, sizeof h);
        memcpy(h.magic, BASE_MAGIC, 8);
        h.positions = b->positions;
        h.vocab = b->vocab;
        struct mt_eval_result r;
        mt_wl_threads(ctx);
        mt_region_begin(ctx, "base_eval");
        int rc = fwrite(&h, sizeof h, 1, bf.f) == 1 ? 0 : -1;
        if (rc == 0)
            rc = mt_gpt_eval_tokens(m, &c->val_tokens, max_tokens, base_write, &bf, &r, err,
                                    sizeof err);
        else
            snprintf(err, sizeof err, "writing the header failed");
        h.ppl = exp(bf.nll / (double)b->positions);
        if (rc == 0 && (fseek(bf.f, 0, SEEK_SET) || fwrite(&h, sizeof h, 1, bf.f) != 1))
            rc = -1, snprintf(err, sizeof err, "rewriting the header failed");
        mt_region_end(ctx, "base_eval");
        if (fclose(bf.f) && rc == 0) rc = -1, snprintf(err, sizeof err, "close failed");
        if (rc == 0 && rename(tmp, b->path)) rc = -1, snprintf(err, sizeof err, "rename failed");
        if (rc) {
            remove(tmp);
            return mt_error(ctx, "base distributions (%s): %s", b->path, err);
        }
        b->ppl = h.ppl;
        mt_log(ctx, MT_LOG_INFO, "base distributions written to %s (base val_ppl %.4f)", b->path,
               b->ppl);
    }
    mt_metric(ctx, "base_probs_bytes", (double)(sizeof h + b->positions * b->vocab * sizeof(float)),
              "bytes");
    return 0;
}

/* The capacity of the per-position KL array grown from `cap` to hold `need` positions. */
static size_t kl_capacity(size_t cap, size_t need)
{
    cap = cap ? 2 * cap : 1024;
    while (cap < need)
        cap *= 2;
    return cap;
}

size_t mt_wl_kl_bytes(size_t positions, size_t rows, size_t V)
{
    size_t r = rows < positions ? rows : positions;
    return kl_capacity(0, positions) * sizeof(double) + r * V * sizeof(float);
}

int mt_wl_kl_add(struct mt_wl_kl *k, const float *base, const float *q, size_t rows, size_t V)
{
    if (k->n + rows > k->cap) {
        size_t cap = kl_capacity(k->cap, k->n + rows);
        int prev = mt_memcat_set(MT_MEM_DATA);
        double *kl = realloc(k->kl, cap * sizeof *kl);
        mt_memcat_set(prev);
        if (!kl) return -1;
        k->kl = kl;
        k->cap = cap;
    }
    for (size_t i = 0; i < rows; i++) {
        const float *p = base + i * V, *r = q + i * V;
        double kl = 0.0;
        size_t bp = 0, bq = 0;
        for (size_t j = 0; j < V; j++) {
            /* p log(p / q) - p + q: the same sum for two distributions, but every term is
             * >= 0 and second order in q - p, so fp32 rounding of the probabilities (their
             * sums are 1 only to ~1e-7) does not swamp a small divergence */
            if (p[j] > 0.0f)
                kl +=
                    (double)p[j] * log((double)p[j] / (double)fmaxf(r[j], FLT_MIN)) - (double)p[j];
            kl += (double)r[j];
            bp = p[j] > p[bp] ? j : bp;
            bq = r[j] > r[bq] ? j : bq;
        }
        k->kl[k->n++] = kl;
        k->agree += bp == bq;
    }
    return 0;
}

void mt_wl_kl_summary(const struct mt_wl_kl *k, struct mt_wl_kl_stats *s)
{
    memset(s, 0, sizeof *s);
    if (!k->n) return;
    double *v = malloc(k->n * sizeof *v);
    for (size_t i = 0; i < k->n; i++) {
        s->mean += k->kl[i] / (double)k->n;
        s->max = i == 0 || k->kl[i] > s->max ? k->kl[i] : s->max;
    }
    if (v) {
        memcpy(v, k->kl, k->n * sizeof *v);
        qsort(v, k->n, sizeof *v, cmp_rate);
        s->median = k->n % 2 ? v[k->n / 2] : 0.5 * (v[k->n / 2 - 1] + v[k->n / 2]);
        size_t rank = (size_t)ceil(0.99 * (double)k->n);
        s->p99 = v[rank ? rank - 1 : 0];
    } else {
        s->median = s->p99 = NAN; /* reported as not measured below */
    }
    free(v);
    s->top1_agree = (double)k->agree / (double)k->n;
}

void mt_wl_kl_free(struct mt_wl_kl *k)
{
    free(k->kl);
    memset(k, 0, sizeof *k);
}

static int base_compare(void *user, const float *probs, const int *targets, size_t rows, char *err,
                        size_t errlen)
{
    struct base_file *b = user;
    for (size_t i = 0; i < rows; i++) /* scored as the base's file was (base_write) */
        b->nll -= log((double)probs[i * b->vocab + (size_t)targets[i]]);
    if (rows * b->vocab > b->cap) {
        free(b->rows);
        int prev = mt_memcat_set(MT_MEM_DATA);
        b->rows = malloc(rows * b->vocab * sizeof *b->rows);
        mt_memcat_set(prev);
        b->cap = b->rows ? rows * b->vocab : 0;
    }
    if (!b->rows || fread(b->rows, sizeof *b->rows * b->vocab, rows, b->f) != rows ||
        mt_wl_kl_add(&b->kl, b->rows, probs, rows, b->vocab)) {
        snprintf(err, errlen, "comparing with the base distributions: short read or no memory");
        return -1;
    }
    return 0;
}

/* The evaluation of the serving measurement, with the KL metrics when a base is given;
 * *extra_data gets the bytes the comparison held (its row buffer and per-position KL). */
static int eval_against_base(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_eval_engine *e,
                             const struct mt_corpus *c, const struct mt_wl_base *base,
                             size_t *extra_data)
{
    size_t max_tokens = (size_t)mt_param_int(ctx, "eval_tokens");
    *extra_data = 0;
    if (!base) return report_eval(ctx, m, e, c, max_tokens, NULL, NULL, NULL);
    struct base_header h;
    struct base_file bf = {
        base_open(base->path, base->positions, base->vocab, &h), base->vocab, 0.0, NULL, 0, {0}};
    if (!bf.f || base->vocab != (e ? e->vocab : m->cfg.vocab))
        return mt_error(ctx, "base distributions %s missing or not this evaluation's", base->path);
    struct mt_eval_result r;
    int rc = report_eval(ctx, m, e, c, max_tokens, base_compare, &bf, &r);
    fclose(bf.f);
    if (rc == 0 && bf.kl.n != base->positions)
        rc = mt_error(ctx, "KL over %zu positions, the base holds %zu", bf.kl.n, base->positions);
    if (rc == 0) {
        struct mt_wl_kl_stats s;
        mt_wl_kl_summary(&bf.kl, &s);
        mt_metric(ctx, "kl_mean", s.mean, "nats");
        mt_metric(ctx, "kl_max", s.max, "nats");
        if (isnan(s.median)) {
            mt_metric_na(ctx, "kl_median", "nats", "out of memory sorting the positions");
            mt_metric_na(ctx, "kl_p99", "nats", "out of memory sorting the positions");
        } else {
            mt_metric(ctx, "kl_median", s.median, "nats");
            mt_metric(ctx, "kl_p99", s.p99, "nats");
        }
        mt_metric(ctx, "kl_top1_agree", s.top1_agree, "ratio");
        /* the served model's perplexity over the same positions, computed as the base's
         * (from the fp32 probabilities): exactly 0 for the base itself */
        double dppl = exp(bf.nll / (double)bf.kl.n) - base->ppl;
        mt_metric(ctx, "delta_ppl", dppl, "ratio");
        mt_log(ctx, MT_LOG_INFO,
               "against the base: KL mean %.5f median %.5f p99 %.5f max %.4f nats, top-1 agree "
               "%.4f, delta ppl %+.4f",
               s.mean, s.median, s.p99, s.max, s.top1_agree, dppl);
        *extra_data = bf.cap * sizeof *bf.rows + bf.kl.cap * sizeof *bf.kl.kl;
    }
    free(bf.rows);
    mt_wl_kl_free(&bf.kl);
    return rc;
}

int mt_wl_log_sample(struct mt_ctx *ctx, struct mt_gpt *m, const char *prompt, size_t n,
                     float temperature, uint64_t seed)
{
    char err[ERRLEN];
    size_t np = strlen(prompt), got = 0;
    int *toks = malloc((np + n + 1) * sizeof *toks);
    char *text = malloc(4 * (np + n) + 1);
    if (!toks || !text) {
        free(toks), free(text);
        return mt_error(ctx, "out of memory for sampling");
    }
    for (size_t i = 0; i < np; i++)
        toks[i] = (unsigned char)prompt[i];
    int rc = mt_gpt_generate(m, toks, np, n, temperature, seed, toks + np, &got, err, sizeof err);
    if (rc == 0) {
        size_t k = 0;
        for (size_t i = 0; i < np + got; i++) { /* keep the log line readable */
            int b = toks[i];
            if (b == '\n')
                k += (size_t)sprintf(text + k, "\\n");
            else if (b >= 32 && b < 127 && b != '\\')
                text[k++] = (char)b;
            else
                k += (size_t)sprintf(text + k, "\\x%02x", b & 0xff);
        }
        text[k] = 0;
        mt_log(ctx, MT_LOG_INFO, "sample (temperature %.2f): %s", (double)temperature, text);
    }
    free(toks), free(text);
    return rc ? mt_error(ctx, "sampling failed: %s", err) : 0;
}

/* The one serving measurement's timing: passes after the warm-up, at least MIN_PASSES
 * and until MIN_SECONDS have been timed, at most MAX_PASSES. */
#define DECODE_MIN_PASSES 3
#define DECODE_MAX_PASSES 64
#define DECODE_MIN_SECONDS 0.2

size_t mt_wl_decode_context(const struct mt_gpt_config *cfg, size_t declared)
{
    return declared == 0 || declared > cfg->seq_len ? cfg->seq_len : declared;
}

struct mt_kvc_spec mt_wl_kv_spec(struct mt_ctx *ctx)
{
    struct mt_kvc_spec s = mt_kvc_spec_default();
    const char *format = mt_param_str(ctx, "kv_cache"); /* a checked choice */
    if (!format) return s; /* a caller without the parameters: the fp32 cache */
    mt_kvc_format_parse(format, &s.format);
    s.group = (size_t)mt_param_int(ctx, "kv_group");
    s.residual = (size_t)mt_param_int(ctx, "kv_residual");
    s.block = (size_t)mt_param_int(ctx, "kv_block");
    return s;
}

size_t mt_wl_decode_sequences(struct mt_ctx *ctx)
{
    if (!mt_param_str(ctx, "kv_cache")) return 1; /* a caller without the cache parameters */
    int64_t s = mt_param_int(ctx, "decode_sequences");
    return s > 0 ? (size_t)s : 1;
}

size_t mt_wl_decode_extra(struct mt_ctx *ctx, size_t n)
{
    if (!mt_param_str(ctx, "kv_cache")) return 0; /* a caller without the cache parameters */
    int64_t e = mt_param_int(ctx, "decode_extra_tokens");
    if (e < 0 || (size_t)e > n) {
        mt_error(ctx,
                 "decode_extra_tokens %lld is over the serving context %zu (its sequence "
                 "is one more beside decode_sequences, at most as long as theirs)",
                 (long long)e, n);
        return (size_t)-1;
    }
    return (size_t)e;
}

/* What the timed decode passes step: the host model's caches (one per sequence) or the
 * device twin's. */
struct decoder {
    struct mt_gpt *m;
    struct mt_gpt_kv **kv;
    const struct mt_cuda_serve *dev;
};

static void decoder_reset(const struct decoder *d, size_t ns)
{
    if (d->dev) d->dev->decode_reset(d->dev->self);
    for (size_t s = 0; !d->dev && s < ns; s++)
        mt_gpt_kv_reset(d->kv[s]);
}

static int decoder_step(const struct decoder *d, size_t s, int token, char *err, size_t errlen)
{
    return d->dev ? d->dev->decode_step(d->dev->self, token, err, errlen)
                  : mt_gpt_decode_step(d->m, d->kv[s], token, err, errlen);
}

/* The timed passes of the one decode measurement over n validation tokens x ns sequences,
 * the last one (index ns - 1) over its first `last` tokens only (region "decode"), then its
 * metrics (decode_sequences: the sequences at n); kv_bytes: the caches' bytes. */
static int decode_passes(struct mt_ctx *ctx, const struct decoder *d, const struct mt_corpus *c,
                         size_t n, size_t ns, size_t last, size_t kv_bytes)
{
    char err[ERRLEN];
    double rate[DECODE_MAX_PASSES], timed = 0.0;
    size_t passes = 0;
    int rc = 0;
    mt_region_begin(ctx, "decode");
    /* pass -1 warms caches, oneDNN's primitive cache and the thread pool; not timed */
    for (int pass = -1; !rc && pass < DECODE_MAX_PASSES; pass++) {
        if (pass >= DECODE_MIN_PASSES && timed >= DECODE_MIN_SECONDS) break;
        decoder_reset(d, ns);
        double t0 = mt_wl_now();
        for (size_t t = 0; t < n && !rc; t++) /* the validation text, teacher-forced */
            for (size_t s = 0; s < ns && !rc; s++)
                if (s + 1 < ns || t < last)
                    rc = decoder_step(d, s, mt_tokens_at(&c->val_tokens, t), err, sizeof err);
        if (!rc && d->dev) rc = d->dev->decode_wait(d->dev->self, err, sizeof err); /* once */
        double dt = mt_wl_now() - t0;
        if (pass >= 0 && !rc) {
            rate[passes++] = (double)(n * (ns - 1) + last) / dt;
            timed += dt;
        }
    }
    mt_region_end(ctx, "decode");
    if (rc) return mt_error(ctx, "decoding failed: %s", err);
    qsort(rate, passes, sizeof rate[0], cmp_rate);
    double median = passes % 2 ? rate[passes / 2] : 0.5 * (rate[passes / 2 - 1] + rate[passes / 2]);
    mt_metric(ctx, "decode_tokens_per_s", median, "tokens/s");
    mt_metric(ctx, "decode_context", (double)n, "tokens");
    mt_metric(ctx, "decode_sequences", (double)mt_wl_decode_sequences(ctx), "count");
    mt_metric(ctx, "kv_cache_bytes", (double)kv_bytes, "bytes");
    mt_log(ctx, MT_LOG_INFO,
           "decode%s: %zu positions x %zu sequences (the last over %zu), median of %zu passes "
           "%.0f tokens/s",
           d->dev ? " on the GPU" : "", n, ns, last, passes, median);
    return 0;
}

/* Refuses a decode context outside [1, min(seq_len, validation tokens)]. */
static int check_context(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                         const struct mt_corpus *c, size_t n)
{
    size_t n_val = c->val_tokens.n;
    if (n == 0 || n > cfg->seq_len || n > n_val)
        return mt_error(
            ctx, "decode context %zu outside [1, %zu] (model context %zu, %zu validation tokens)",
            n, cfg->seq_len < n_val ? cfg->seq_len : n_val, cfg->seq_len, n_val);
    return 0;
}

/* mt_wl_report_decode, and the bytes of the KV caches it held and of their scratch
 * (either pointer may be NULL), summed over the run's decode_sequences. */
static int decode(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c, size_t n,
                  size_t *kv_bytes_out, size_t *scratch_bytes_out)
{
    char err[ERRLEN];
    mt_wl_threads(ctx);
    size_t ns = mt_wl_decode_sequences(ctx);
    if (check_context(ctx, &m->cfg, c, n)) return -1;
    size_t extra = mt_wl_decode_extra(ctx, n), last = n;
    if (extra == (size_t)-1) return -1;
    if (extra) ns++, last = extra; /* one more sequence, the last, at `extra` positions */
    /* the caches tag their own allocations (kv_cache; their tables and the decode scratch
     * workspace); the small structs and the array of them stay in the caller's category */
    struct mt_kvc_spec spec = mt_wl_kv_spec(ctx);
    struct mt_gpt_kv **kv = calloc(ns, sizeof *kv);
    if (!kv) return mt_error(ctx, "out of memory for %zu sequences", ns);
    int rc = 0;
    size_t kv_bytes = 0, scratch_bytes = 0;
    for (size_t s = 0; s < ns && !rc; s++) {
        rc = mt_gpt_kv_create_spec(&kv[s], &m->cfg, s + 1 < ns ? n : last, &spec, err, sizeof err);
        if (!rc) {
            kv_bytes += kv[s]->kv_bytes;
            scratch_bytes += kv[s]->scratch_bytes + kv[s]->cache->table_bytes;
        }
    }
    struct decoder d = {.m = m, .kv = kv};
    if (rc)
        rc = mt_error(ctx, "decoding failed: %s", err);
    else
        rc = decode_passes(ctx, &d, c, n, ns, last, kv_bytes);
    if (kv_bytes_out) *kv_bytes_out = kv_bytes;
    if (scratch_bytes_out) *scratch_bytes_out = scratch_bytes;
    for (size_t s = 0; s < ns; s++)
        mt_gpt_kv_free(kv[s]);
    free(kv);
    return rc;
}

int mt_wl_report_decode(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c, size_t n)
{
    return decode(ctx, m, c, n, NULL, NULL);
}

/* Reports <prefix>_bytes (the sum) and <prefix>_<category>_bytes for every category that
 * holds bytes. */
static void report_peak(struct mt_ctx *ctx, const char *prefix,
                        const size_t bytes[MT_MEM_CAT_COUNT])
{
    char name[64];
    size_t total = 0;
    for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++) {
        total += bytes[cat];
        if (!bytes[cat]) continue;
        snprintf(name, sizeof name, "%s_%s_bytes", prefix, mt_mem_cat_names[cat]);
        mt_metric(ctx, name, (double)bytes[cat], "bytes");
    }
    snprintf(name, sizeof name, "%s_bytes", prefix);
    mt_metric(ctx, name, (double)total, "bytes");
}

static size_t scratch_now(const struct mt_wl_serving *sv)
{
    return sv && sv->scratch_bytes ? sv->scratch_bytes(sv->user) : 0;
}

int mt_wl_cuda_serve_opts(struct mt_ctx *ctx, size_t eval_B, size_t eval_T,
                          struct mt_cuda_serve_opts *o)
{
    const char *dev = mt_param_str(ctx, "device");
    memset(o, 0, sizeof *o);
    if (!dev || !strcmp(dev, "cpu")) return 0;
    struct mt_kvc_spec spec = mt_wl_kv_spec(ctx);
    if (spec.format != MT_KVC_FP32 && spec.format != MT_KVC_BF16 && spec.format != MT_KVC_FP16)
        return mt_error(ctx, "device=%s keeps the KV cache in fp32, bf16 or fp16, not kv_cache=%s",
                        dev, mt_kvc_format_name(spec.format));
    if (spec.block)
        return mt_error(ctx, "device=%s keeps the KV cache contiguous: kv_block=0, not %zu", dev,
                        spec.block);
    if (mt_wl_decode_sequences(ctx) != 1)
        return mt_error(ctx, "device=%s decodes one sequence: decode_sequences=1, not %zu", dev,
                        mt_wl_decode_sequences(ctx));
    if (mt_param_int(ctx, "decode_extra_tokens"))
        return mt_error(ctx, "device=%s decodes one sequence: decode_extra_tokens=0, not %lld", dev,
                        (long long)mt_param_int(ctx, "decode_extra_tokens"));
    o->precision = mt_param_str(ctx, "device_precision");
    o->kv_type = (int)spec.format; /* fp32, bf16, fp16: the device's types in the same order */
    o->eval_B = eval_B;
    o->eval_T = eval_T;
    return 1;
}

/* The one serving measurement on the GPU twin (struct mt_wl_serving's device): the same
 * decode passes and evaluation protocol, each phase's peak its device bytes. */
static int serve_device(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                        const struct mt_wl_serving *sv)
{
    char err[ERRLEN];
    size_t n = mt_wl_decode_context(&m->cfg, (size_t)mt_param_int(ctx, "decode_tokens"));
    mt_cuda_serve_open_fn open = (mt_cuda_serve_open_fn)mt_wl_cuda_symbol(
        ctx, mt_param_str(ctx, "device"), "mt_cuda_serve_open");
    struct mt_cuda_serve s;
    struct mt_cuda_serve_opts o = *sv->device;
    o.eval_B = m->B;
    o.eval_T = m->T;
    if (!open || check_context(ctx, &m->cfg, c, n)) return -1;
    if (open(&s, m, &o, err, sizeof err)) return mt_error(ctx, "device=cuda: %s", err);
    size_t b[MT_MEM_CAT_COUNT] = {0}, kl_data = 0;
    struct decoder d = {.dev = &s};
    mt_wl_threads(ctx);
    mt_region_begin(ctx, "infer");
    int rc = s.decode_open(s.self, n, b, err, sizeof err)
                 ? mt_error(ctx, "device=cuda decoding: %s", err)
                 : decode_passes(ctx, &d, c, n, 1, n, b[MT_MEM_KV_CACHE]);
    mt_region_end(ctx, "infer");
    if (rc == 0) report_peak(ctx, "infer_peak", b);
    struct mt_eval_engine e;
    if (rc == 0 && s.eval_open(s.self, b, &e, err, sizeof err))
        rc = mt_error(ctx, "device=cuda evaluation: %s", err);
    if (rc == 0) rc = eval_against_base(ctx, m, &e, c, sv->base, &kl_data);
    if (rc == 0) report_peak(ctx, "eval_peak", b);
    s.close(s.self);
    return rc;
}

int mt_wl_report_serving(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                         const struct mt_wl_serving *sv)
{
    char err[ERRLEN];
    size_t n = mt_wl_decode_context(&m->cfg, (size_t)mt_param_int(ctx, "decode_tokens"));
    size_t stored = sv ? sv->weight_bytes : 0, kv = 0, kv_scratch = 0, B = m->B, T = m->T;
    if (m->mode != MT_GPT_INFER)
        return mt_error(ctx, "the serving measurement needs an inference-mode model");
    if (sv && sv->device) return serve_device(ctx, m, c, sv);
    /* The deployment first, holding what a deployment holds: the model's evaluation
     * slabs are released while it decodes, and the plugin's grow-only scratch then holds
     * what batch-1 decoding needs, not what the evaluation batch later grows it to. */
    int rc = mt_gpt_set_mode(m, MT_GPT_WEIGHTS, 0, 0, err, sizeof err);
    if (rc) return mt_error(ctx, "releasing the evaluation slabs: %s", err);
#ifdef __GLIBC__
    malloc_trim(0); /* freed pages back to the kernel: the region's RSS is what is held */
#endif
    mt_region_begin(ctx, "infer");
    rc = decode(ctx, m, c, n, &kv, &kv_scratch);
    mt_region_end(ctx, "infer");
    size_t b[MT_MEM_CAT_COUNT] = {0};
    b[MT_MEM_WEIGHTS] = m->slab_bytes[MT_MEM_WEIGHTS] + m->mapped_bytes + stored;
    b[MT_MEM_KV_CACHE] = kv;
    b[MT_MEM_WORKSPACE] = kv_scratch + scratch_now(sv);
    if (rc == 0) report_peak(ctx, "infer_peak", b);
    /* The evaluation's slabs again, as the model had them (the same shape, zeroed). */
    if (mt_gpt_set_mode(m, MT_GPT_INFER, B, T, err, sizeof err))
        return rc ? rc : mt_error(ctx, "attaching the evaluation slabs: %s", err);
    if (rc) return rc;

    /* The evaluation: the model's slabs for its batch of windows (activations, the
     * forward's token buffers), the stored weights, the plugin's scratch at its
     * high-water mark, and mt_gpt_eval's own inputs and targets (data). */
    size_t kl_data = 0;
    if ((rc = eval_against_base(ctx, m, NULL, c, sv ? sv->base : NULL, &kl_data))) return rc;
    for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++)
        b[cat] = m->slab_bytes[cat];
    b[MT_MEM_WEIGHTS] += stored;
    b[MT_MEM_WORKSPACE] += scratch_now(sv);
    b[MT_MEM_DATA] += mt_wl_batch_bytes(m->B, m->T) + kl_data;
    report_peak(ctx, "eval_peak", b);
    return 0;
}

/* Contract in wlcommon.h. */
int mt_wl_report_reference(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                           const struct mt_gpt_recipe *r, uint64_t seed,
                           const struct mt_wl_train_stats *st)
{
    return mt_wl_report_reference_on(ctx, m, c, r, seed, st, NULL);
}

int mt_wl_report_reference_on(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_corpus *c,
                              const struct mt_gpt_recipe *r, uint64_t seed,
                              const struct mt_wl_train_stats *st,
                              const struct mt_cuda_serve_opts *dev)
{
    mt_wl_report_train(ctx, st);
    mt_wl_report_model(ctx, m);
    struct mt_wl_base base;
    struct mt_wl_serving sv = {.base = &base, .device = dev};
    int rc = mt_wl_base_probs(ctx, m, c, r, seed, &base);
    if (rc == 0) rc = mt_wl_report_serving(ctx, m, c, &sv);
    return rc;
}
