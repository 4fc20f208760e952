/* wlcommon.c — plugins' door to the reference model (see wlcommon.h). */
#define _GNU_SOURCE /* dladdr: where libmemtrade-cuda.so lies */
#include "wlcommon.h"

#include "hash.h"
#include "kernels.h"
#include "loop.h"
#include "modelfile.h"
#include "modeltok.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ERRLEN 512

double mt_wl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t mt_wl_slab_total(const struct mt_gpt *m)
{
    size_t b = 0;
    for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++)
        b += m->slab_bytes[cat];
    return b;
}

size_t mt_wl_batch_bytes(size_t B, size_t T)
{
    return 2 * B * T * sizeof(int);
}

int *mt_wl_batch_alloc(struct mt_ctx *ctx, size_t n)
{
    int prev = mt_mem_category(ctx, MT_MEM_DATA);
    int *p = malloc(mt_wl_batch_bytes(n, 1));
    mt_mem_category(ctx, prev);
    return p;
}

void mt_wl_metrics(struct mt_ctx *ctx, const char *why, const struct mt_wl_metric *group, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (why)
            mt_metric_na(ctx, group[i].name, group[i].unit, why);
        else
            mt_metric(ctx, group[i].name, group[i].value, group[i].unit);
}

void mt_wl_threads(struct mt_ctx *ctx)
{
    int n = ctx->ops->threads ? ctx->ops->threads(ctx) : 0;
    if (n > 0) omp_set_num_threads(n);
}

/* The preset of parameter `param` with the block options of MT_WL_PARAMS_ARCH applied
 * when `arch`; err gets the reason of a failure. Reads parameters only (an estimate's ctx
 * allows that). */
static int model_config(struct mt_ctx *ctx, const char *param, int arch, struct mt_gpt_config *cfg,
                        char *err, size_t errlen)
{
    const char *name = mt_param_str(ctx, param);
    if (!name) return snprintf(err, errlen, "parameter '%s' missing", param), -1;
    int file = mt_model_is_path(name);
    struct stat sb;
    if (file ? mt_model_peek(name, cfg, NULL, err, errlen)
             : mt_gpt_config_parse(cfg, name, err, errlen)) {
        size_t n = strlen(err);
        if (!file && stat(name, &sb) == 0 && n + 1 < errlen) /* a file named like a preset */
            snprintf(err + n, errlen - n, "; for the model file '%s' write ./%s", name, name);
        return -1;
    }
    if (!arch) return 0;
    size_t kv = mt_gpt_kv_heads(cfg);
    const char *attention = mt_param_str(ctx, "attention");
    char num[2][32];
    snprintf(num[0], sizeof num[0], "%lld", (long long)mt_param_int(ctx, "n_kv_head"));
    snprintf(num[1], sizeof num[1], "%lld", (long long)mt_param_int(ctx, "window"));
    /* 0 keeps the model's own value: a preset or spec with grouped-query attention
     * (llama-tiny KV2, llama-1b KV4, "...,KV=8") keeps it unless the parameter says more */
    if ((attention && mt_gpt_config_set(cfg, "attention", attention, err, errlen)) ||
        (strcmp(num[0], "0") && mt_gpt_config_set(cfg, "n_kv_head", num[0], err, errlen)) ||
        (strcmp(num[1], "0") && mt_gpt_config_set(cfg, "window", num[1], err, errlen)))
        return -1;
    if (cfg->n_kv_head == cfg->n_head) cfg->n_kv_head = 0; /* one spelling, as the parser's */
    if (file && !mt_param_int(ctx, "n_kv_head")) cfg->n_kv_head = kv == cfg->n_head ? 0 : kv;
    if (file && mt_gpt_kv_heads(cfg) != kv)
        return snprintf(err, errlen,
                        "model %s has %zu key/value heads; its weights fix them "
                        "(n_kv_head %zu refused)",
                        name, kv, mt_gpt_kv_heads(cfg)),
               -1;
    /* a tokenizer other than bytes gives a preset its vocab (an imported model's vocab is
     * its own: Hugging Face configs often pad it; mt_wl_corpus refuses one too small) */
    const char *tok = mt_param_str(ctx, "tokenizer");
    if (!file && tok && tok[0] && strcmp(tok, "bytes") && strcmp(tok, "auto")) {
        struct mt_tokenizer *t = NULL;
        if (mt_tok_load(&t, tok, err, errlen)) return -1;
        snprintf(num[0], sizeof num[0], "%zu", mt_tok_vocab(t));
        mt_tok_free(t);
        if (mt_gpt_config_set(cfg, "vocab", num[0], err, errlen)) return -1;
    }
    return mt_gpt_config_check(cfg, err, errlen);
}

int mt_wl_model_config(struct mt_ctx *ctx, const char *param, struct mt_gpt_config *cfg)
{
    char err[ERRLEN];
    if (model_config(ctx, param ? param : "model", !param || !strcmp(param, "model"), cfg, err,
                     sizeof err))
        return mt_error(ctx, "%s", err);
    return 0;
}

int mt_wl_recipe(struct mt_ctx *ctx, const struct mt_gpt_config *cfg, struct mt_gpt_recipe *r,
                 uint64_t *seed)
{
    int64_t steps = mt_param_int(ctx, "steps"), batch = mt_param_int(ctx, "batch");
    double lr = mt_param_float(ctx, "lr");
    if (steps <= 0 || batch <= 0 || !(lr > 0.0))
        return mt_error(ctx, "recipe parameters out of range: steps %lld batch %lld lr %g",
                        (long long)steps, (long long)batch, lr);
    *r = mt_gpt_recipe_default((size_t)steps);
    r->batch = (size_t)batch;
    r->lr = (float)lr;
    r->seq = cfg->seq_len < r->seq ? cfg->seq_len : r->seq;
    int64_t seq = mt_param_int(ctx, "seq");
    if (seq < 0 || (size_t)seq > cfg->seq_len)
        return mt_error(ctx, "seq %lld outside [0, %zu] (the model's context)", (long long)seq,
                        cfg->seq_len);
    if (seq > 0) r->seq = (size_t)seq;
    *seed = (uint64_t)mt_param_int(ctx, "seed");
    /* the budget a result is compared at (results/: runs of other budgets never share a
     * panel); for a post-training workload, its reference's */
    if (mt_model_is_path(mt_param_str(ctx, "model")))
        mt_metric_na(ctx, "train_tokens", "count",
                     "weights imported from a model file: its training budget is not known");
    else
        mt_metric(ctx, "train_tokens", (double)r->steps * (double)r->batch * (double)r->seq,
                  "count");
    return 0;
}

/* The run's tokenizer (see mt_wl_corpus) into *t (NULL: bytes) and where it came from
 * into `what`. Returns 0, or -1 with the message in err. */
static int run_tokenizer(struct mt_ctx *ctx, struct mt_tokenizer **t, char *what, size_t wlen,
                         char *err, size_t errlen)
{
    const char *spec = mt_param_str(ctx, "tokenizer"), *model = mt_param_str(ctx, "model");
    *t = NULL;
    if (!spec || !spec[0] || !strcmp(spec, "auto")) {
        if (!model || !mt_model_is_path(model)) return 0;
        snprintf(what, wlen, "%s (the model's own)", model);
        return mt_model_tokenizer(model, t, err, errlen);
    }
    if (!strcmp(spec, "bytes")) return 0;
    snprintf(what, wlen, "%s", spec);
    return mt_tok_load(t, spec, err, errlen);
}

int mt_wl_setup_model(struct mt_ctx *ctx, struct mt_wl_setup *s)
{
    memset(&s->corpus, 0, sizeof s->corpus);
    return mt_wl_model_config(ctx, NULL, &s->cfg) || mt_wl_recipe(ctx, &s->cfg, &s->r, &s->seed)
               ? -1
               : 0;
}

int mt_wl_setup(struct mt_ctx *ctx, struct mt_wl_setup *s)
{
    return mt_wl_setup_model(ctx, s) ? -1 : mt_wl_corpus(ctx, 1, s->r.seq, &s->corpus);
}

int mt_wl_corpus(struct mt_ctx *ctx, int has_corpus_param, size_t T, struct mt_corpus *c)
{
    char err[ERRLEN];
    const char *path = has_corpus_param ? mt_param_str(ctx, "corpus") : NULL;
    if ((!path || !path[0]) && ctx->ops->corpus) path = ctx->ops->corpus(ctx);
    int prev = mt_mem_category(ctx, MT_MEM_DATA);
    int rc = mt_corpus_load(c, path, T, err, sizeof err);
    mt_mem_category(ctx, prev);
    if (rc) return mt_error(ctx, "%s", err);
    mt_log(ctx, MT_LOG_INFO, "corpus %s: %zu files, %zu bytes (train %zu, validation %zu)",
           c->source, c->n_files, c->n, c->n_train, c->n_val);
    struct mt_tokenizer *t = NULL;
    struct mt_gpt_config cfg;
    char spec[4200] = "";
    if (run_tokenizer(ctx, &t, spec, sizeof spec, err, sizeof err)) {
        mt_corpus_free(c);
        return mt_error(ctx, "%s", err);
    }
    if (!t || mt_tok_is_bytes(t)) { /* the corpus as bytes: the ids they always were */
        if (t) mt_log(ctx, MT_LOG_INFO, "tokenizer %s: byte-level, the byte ids", spec);
        mt_tok_free(t);
        return 0;
    }
    if (mt_wl_model_config(ctx, NULL, &cfg) == 0 && mt_tok_vocab(t) > cfg.vocab) {
        rc = mt_error(ctx,
                      "tokenizer %s has %zu ids but the model's vocab is %zu: give the model "
                      "vocab=%zu (e.g. -p model=%s,vocab=%zu)",
                      spec, mt_tok_vocab(t), cfg.vocab, mt_tok_vocab(t), mt_param_str(ctx, "model"),
                      mt_tok_vocab(t));
    } else {
        double t0 = mt_wl_now();
        prev = mt_mem_category(ctx, MT_MEM_DATA);
        rc = mt_corpus_tokenize(c, t, T, err, sizeof err);
        mt_mem_category(ctx, prev);
        if (rc)
            rc = mt_error(ctx, "%s", err);
        else
            mt_log(ctx, MT_LOG_INFO,
                   "tokenizer %s (%s, vocab %zu): train %zu tokens, validation %zu tokens "
                   "(%.2f bytes/token) in %.2f s",
                   spec, mt_tok_kind_name(t), mt_tok_vocab(t), c->train_tokens.n, c->val_tokens.n,
                   (double)c->n_val / (double)c->val_tokens.n, mt_wl_now() - t0);
    }
    mt_tok_free(t);
    if (rc) mt_corpus_free(c);
    return rc;
}

void mt_wl_cache_path(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                      const struct mt_gpt_recipe *r, uint64_t seed, const struct mt_corpus *c,
                      char *path, size_t n)
{
    /* Every input that changes the trained weights goes into the key, field by field
     * (no struct padding is hashed). */
    uint64_t h = MT_FNV64_INIT;
    uint64_t ints[] = {MT_WL_CACHE_VERSION,
                       cfg->vocab,
                       cfg->seq_len,
                       cfg->n_layer,
                       cfg->n_head,
                       cfg->n_embd,
                       r->warmup,
                       r->steps,
                       r->batch,
                       r->seq,
                       seed,
                       c->identity,
                       c->n};
    float floats[] = {r->lr,  r->min_lr_frac,  r->beta1,    r->beta2,
                      r->eps, r->weight_decay, r->grad_clip};
    h = mt_fnv64(h, ints, sizeof ints);
    h = mt_fnv64(h, floats, sizeof floats);
    /* the block options (attention kind, key/value heads, window), only when set: the
     * original model keeps the key it always had */
    if (cfg->attention || cfg->n_kv_head || cfg->window) {
        uint64_t opts[] = {cfg->attention, mt_gpt_kv_heads(cfg), cfg->window};
        h = mt_fnv64(h, opts, sizeof opts);
    }
    /* the Llama-family options, likewise only when set (models of earlier keys unchanged) */
    if (cfg->norm || cfg->pos || cfg->rope_theta || cfg->mlp || cfg->ffn || cfg->no_bias ||
        cfg->untied) {
        uint64_t opts[] = {cfg->norm,       cfg->pos,     cfg->rope_theta, cfg->mlp,
                           mt_gpt_ffn(cfg), cfg->no_bias, cfg->untied};
        h = mt_fnv64(h, opts, sizeof opts);
    }
    /* the tokenizer, only when not bytes (models of earlier keys unchanged) */
    if (c->tok_identity) h = mt_fnv64(h, &c->tok_identity, sizeof c->tok_identity);
    /* an imported model: its files (path, size, modification time) are its identity */
    const char *spec = mt_param_str(ctx, "model");
    if (spec && mt_model_is_path(spec)) {
        static const char *const parts[] = {"", "/config.json", "/model.safetensors",
                                            "/model.safetensors.index.json"};
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
            char p[4200];
            struct stat sb;
            snprintf(p, sizeof p, "%s%s", spec, parts[i]);
            uint64_t id[3] = {0};
            if (stat(p, &sb) == 0)
                id[0] = (uint64_t)sb.st_size, id[1] = (uint64_t)sb.st_mtim.tv_sec,
                id[2] = (uint64_t)sb.st_mtim.tv_nsec;
            h = mt_fnv64(h, p, strlen(p));
            h = mt_fnv64(h, id, sizeof id);
        }
    }
    const char *dir = ctx->ops->cache_dir ? ctx->ops->cache_dir(ctx) : NULL;
    snprintf(path, n, "%s/%sgpt-L%zu-H%zu-C%zu-V%zu-T%zu-s%zu-%016llx.mtckpt",
             dir && dir[0] ? dir : ".", spec && mt_model_is_path(spec) ? "import-" : "",
             cfg->n_layer, cfg->n_head, cfg->n_embd, cfg->vocab, cfg->seq_len, r->steps,
             (unsigned long long)h);
}

/* The one loop on engine e over the baseline's batch stream; peak: the accounted bytes of
 * the engine's state (train_peak_bytes without the batch). */
static int run_loop(struct mt_ctx *ctx, const struct mt_loop_engine *e,
                    const struct mt_gpt_recipe *r, uint64_t seed, const struct mt_corpus *c,
                    size_t peak, struct mt_wl_train_stats *st)
{
    char err[ERRLEN];
    struct mt_loop_result res;
    struct mt_loop_opts o = {
        .recipe = r, .batch_seed = mt_loop_batch_seed(seed), .series = "train_loss"};
    if (mt_loop_run_tokens(ctx, &o, e, NULL, &c->train_tokens, &res, err, sizeof err))
        return mt_error(ctx, "training failed: %s", err);
    if (st) {
        st->steps = res.steps;
        st->seconds = res.seconds;
        st->tokens_per_s = (double)(r->steps * r->batch * r->seq) / st->seconds;
        st->final_loss = (float)res.final_loss;
        st->peak_bytes = peak + mt_wl_batch_bytes(r->batch, r->seq);
    }
    return 0;
}

int mt_wl_train_loop(struct mt_ctx *ctx, struct mt_gpt *m, const struct mt_gpt_recipe *r,
                     uint64_t seed, const struct mt_corpus *c, struct mt_wl_train_stats *st)
{
    struct mt_loop_engine e;
    mt_wl_threads(ctx);
    mt_loop_gpt_engine(&e, m);
    return run_loop(ctx, &e, r, seed, c, mt_wl_slab_total(m), st);
}

void mt_wl_device_params(struct mt_ctx *ctx, struct mt_wl_device *d)
{
    d->device = mt_param_str(ctx, "device");
    d->precision = mt_param_str(ctx, "device_precision");
}

static int on_gpu(const struct mt_wl_device *dev)
{
    return dev && dev->device && strcmp(dev->device, "cpu") != 0;
}

struct gpu_loop {
    struct mt_ctx *ctx;
    const struct mt_gpt_recipe *r;
    uint64_t seed;
    const struct mt_corpus *c;
    struct mt_wl_train_stats *st;
    int failed; /* the loop failed and said why */
};

static int gpu_loop(void *user, const struct mt_loop_engine *e,
                    const struct mt_cuda_twin_info *info)
{
    struct gpu_loop *g = user;
    mt_log(g->ctx, MT_LOG_INFO,
           "training on the GPU: %zu device bytes (the plan's slabs and "
           "the extras)",
           info->total);
    g->failed = run_loop(g->ctx, e, g->r, g->seed, g->c, info->total, g->st) != 0;
    return g->failed ? -1 : 0;
}

void *mt_wl_cuda_symbol(struct mt_ctx *ctx, const char *device, const char *name)
{
    char path[PATH_MAX];
    Dl_info info;
    if (!dladdr((void *)mt_wl_cuda_symbol, &info) || !info.dli_fname) {
        mt_error(ctx, "device=cuda: cannot locate this plugin");
        return NULL;
    }
    const char *slash = strrchr(info.dli_fname, '/');
    int dir = slash ? (int)(slash - info.dli_fname) : 1;
    snprintf(path, sizeof path, "%.*s/../libmemtrade-cuda.so", dir, slash ? info.dli_fname : ".");
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* never closed: CUDA stays loaded */
    void *sym = lib ? dlsym(lib, name) : NULL;
    if (!sym)
        mt_error(ctx,
                 "device=%s: no CUDA backend in this build (%s; configure where the CUDA "
                 "toolkit is: MT_CUDA)",
                 device, dlerror());
    return sym;
}

mt_cuda_train_twin_fn mt_wl_cuda_twin(struct mt_ctx *ctx, const char *device)
{
    return (mt_cuda_train_twin_fn)mt_wl_cuda_symbol(ctx, device, "mt_cuda_train_twin");
}

/* mt_wl_train_loop on the GPU twin of m (same initial weights), whose trained weights then
 * replace m's (loop.h mt_cuda_train_twin, from libmemtrade-cuda.so beside the plugin
 * folder). train_peak_bytes: the device's slabs and extras. */
static int train_loop_gpu(struct mt_ctx *ctx, const struct mt_wl_device *dev, struct mt_gpt *m,
                          const struct mt_gpt_recipe *r, uint64_t seed, const struct mt_corpus *c,
                          struct mt_wl_train_stats *st)
{
    char err[ERRLEN];
    mt_cuda_train_twin_fn twin = mt_wl_cuda_twin(ctx, dev->device);
    if (!twin) return -1;
    mt_wl_threads(ctx);
    struct gpu_loop g = {.ctx = ctx, .r = r, .seed = seed, .c = c, .st = st};
    struct mt_cuda_twin_opts o = {.precision = dev->precision};
    if (twin(m, r, &o, gpu_loop, &g, err, sizeof err) == 0) return 0;
    return g.failed ? -1 : mt_error(ctx, "device=cuda: %s", err);
}

/* mt_wl_train_or_load's import of the weights of model file `spec`; c: the corpus the run
 * scores (its tokenizer must be the model's when the vocab is not bytes). */
static int import_model(struct mt_ctx *ctx, const char *spec, const struct mt_gpt_config *cfg,
                        const struct mt_corpus *c, enum mt_gpt_mode mode, size_t B, size_t T,
                        struct mt_gpt **out, struct mt_wl_train_stats *st)
{
    char err[ERRLEN];
    struct mt_model_info info;
    const char *tok = mt_param_str(ctx, "tokenizer");
    if (cfg->vocab != 256 && (!c || !c->tok_identity))
        return mt_error(ctx,
                        "model %s has a vocabulary of %zu tokens: scoring the corpus with it "
                        "needs its tokenizer, and %s; give one with -p tokenizer=FILE (a "
                        "tokenizer.json or a folder holding one); bytes fit vocab 256 only",
                        spec, cfg->vocab,
                        tok && !strcmp(tok, "bytes")
                            ? "-p tokenizer=bytes forced bytes"
                            : "the file carries none (no tokenizer.json in a folder, no "
                              "tokenizer.ggml.* in a GGUF file)");
    double t0 = mt_wl_now();
    mt_region_begin(ctx, "import");
    int rc = mt_model_load(spec, cfg, mode, B, T, 1, out, &info, err, sizeof err);
    mt_region_end(ctx, "import");
    if (rc) return mt_error(ctx, "%s", err);
    st->imported = 1;
    mt_metric(ctx, "import_seconds", mt_wl_now() - t0, "s");
    mt_metric(ctx, "import_mapped_bytes", (double)info.mapped_bytes, "bytes");
    mt_metric(ctx, "import_copied_bytes", (double)info.copied_bytes, "bytes");
    mt_log(ctx, MT_LOG_INFO,
           "imported %s (%s, %zu tensors): %zu weight bytes mapped from the file, %zu copied", spec,
           info.arch, info.n_tensors, info.mapped_bytes, info.copied_bytes);
    return 0;
}

int mt_wl_train_or_load(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                        const struct mt_gpt_recipe *r, uint64_t seed, const struct mt_corpus *c,
                        enum mt_gpt_mode mode, size_t B, size_t T, struct mt_gpt **out,
                        struct mt_wl_train_stats *st)
{
    return mt_wl_train_or_load_on(ctx, NULL, cfg, r, seed, c, mode, B, T, out, st);
}

int mt_wl_train_or_load_on(struct mt_ctx *ctx, const struct mt_wl_device *dev,
                           const struct mt_gpt_config *cfg, const struct mt_gpt_recipe *r,
                           uint64_t seed, const struct mt_corpus *c, enum mt_gpt_mode mode,
                           size_t B, size_t T, struct mt_gpt **out, struct mt_wl_train_stats *st)
{
    char err[ERRLEN], path[4096];
    struct mt_wl_train_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    *out = NULL;
    mt_wl_threads(ctx);
    const char *spec = mt_param_str(ctx, "model");
    if (spec && mt_model_is_path(spec)) return import_model(ctx, spec, cfg, c, mode, B, T, out, st);
    mt_wl_cache_path(ctx, cfg, r, seed, c, path, sizeof path);
    char *ext = strstr(path, ".mtckpt");
    if (on_gpu(dev) && ext) /* the GPU's weights differ in rounding: a file of their own */
        snprintf(ext, sizeof path - (size_t)(ext - path), "-%s-%s.mtckpt", dev->device,
                 dev->precision ? dev->precision : "fp32");
    struct stat sb;
    if (stat(path, &sb) == 0) {
        /* The name says what was asked; the header says what the file holds. A copy of
         * another checkpoint under this name (or a renamed one) is refused, not used. */
        uint64_t steps_done = 0;
        if (mt_ckpt_load(path, cfg, mode, B, T, out, &steps_done, err, sizeof err) == 0) {
            if (steps_done == r->steps) {
                mt_log(ctx, MT_LOG_INFO, "loaded cached baseline %s", path);
                st->from_cache = 1;
                return 0;
            }
            mt_gpt_free(*out);
            *out = NULL;
            snprintf(err, sizeof err, "the file holds a model trained %llu steps, not %zu",
                     (unsigned long long)steps_done, r->steps);
        }
        mt_log(ctx, MT_LOG_WARN, "cached baseline %s unusable, retraining: %s", path, err);
    }
    struct mt_gpt *m = NULL;
    if (mt_gpt_create(&m, cfg, MT_GPT_TRAIN, r->batch, r->seq, err, sizeof err))
        return mt_error(ctx, "%s", err);
    mt_gpt_init(m, seed);
    mt_log(ctx, MT_LOG_INFO, "training %zu params for %zu steps (B=%zu T=%zu lr=%g)", m->n_params,
           r->steps, r->batch, r->seq, (double)r->lr);
    if (on_gpu(dev) ? train_loop_gpu(ctx, dev, m, r, seed, c, st)
                    : mt_wl_train_loop(ctx, m, r, seed, c, st)) {
        mt_gpt_free(m);
        return -1;
    }
    if (mt_ckpt_save(m, path, err, sizeof err) == 0) {
        mt_gpt_free(m); /* the training state goes before the serving state arrives */
        m = NULL;
        if (mt_ckpt_load(path, cfg, mode, B, T, out, NULL, err, sizeof err))
            return mt_error(ctx, "reloading the freshly written cache: %s", err);
        mt_log(ctx, MT_LOG_INFO, "cached baseline written to %s", path);
        return 0;
    }
    mt_log(ctx, MT_LOG_WARN, "cannot cache the baseline: %s", err);
    if (mt_gpt_create(out, cfg, mode, B, T, err, sizeof err)) {
        mt_gpt_free(m);
        return mt_error(ctx, "%s", err);
    }
    memcpy((*out)->params, m->params, m->slab_bytes[MT_MEM_WEIGHTS]);
    mt_gpt_free(m);
    return 0;
}

int mt_wl_reference_or_load(struct mt_ctx *ctx, const struct mt_gpt_config *cfg,
                            const struct mt_gpt_recipe *r, uint64_t seed, const struct mt_corpus *c,
                            enum mt_gpt_mode mode, size_t B, size_t T, struct mt_gpt **out,
                            struct mt_wl_train_stats *st)
{
    mt_region_begin(ctx, "reference");
    int rc = mt_wl_train_or_load(ctx, cfg, r, seed, c, mode, B, T, out, st);
    mt_region_end(ctx, "reference");
    return rc;
}

void mt_wl_report_train(struct mt_ctx *ctx, const struct mt_wl_train_stats *st)
{
    static const char why_cache[] = "baseline loaded from the cache; no training in this run";
    static const char why_import[] = "weights imported from a model file; no training in this run";
    const char *why = st->imported ? why_import : why_cache;
    if (st->from_cache || st->imported) {
        mt_metric_na(ctx, "train_tokens_per_s", "tokens/s", why);
        mt_metric_na(ctx, "train_peak_bytes", "bytes", why);
        mt_metric_na(ctx, "train_loss", "nats/byte", why);
        return;
    }
    mt_metric(ctx, "train_tokens_per_s", st->tokens_per_s, "tokens/s");
    mt_metric(ctx, "train_peak_bytes", (double)st->peak_bytes, "bytes");
    mt_metric(ctx, "train_loss", st->final_loss, "nats/byte");
    mt_metric(ctx, "train_seconds", st->seconds, "s");
}

void mt_wl_report_model(struct mt_ctx *ctx, const struct mt_gpt *m)
{
    mt_metric(ctx, "model_bytes", (double)(m->slab_bytes[MT_MEM_WEIGHTS] + m->mapped_bytes),
              "bytes");
    mt_metric(ctx, "n_params", (double)m->n_params, "count");
}

size_t mt_wl_estimate_bytes(const struct mt_gpt_config *cfg, size_t B, size_t T)
{
    size_t train = mt_gpt_memory(cfg, B, T, MT_GPT_TRAIN, NULL, NULL, 0);
    size_t infer = mt_gpt_memory(cfg, B, T, MT_GPT_INFER, NULL, NULL, 0);
    return train + infer + ((size_t)64 << 20); /* corpus, code, oneDNN scratch */
}

int mt_wl_estimate_shape(struct mt_ctx *ctx, struct mt_gpt_config *cfg, size_t *T)
{
    char err[256];
    if (model_config(ctx, "model", 1, cfg, err, sizeof err)) return -1;
    int64_t seq = mt_param_int(ctx, "seq");
    if (seq < 0 || (size_t)seq > cfg->seq_len) return -1;
    *T = seq > 0 ? (size_t)seq : cfg->seq_len < 128 ? cfg->seq_len : 128;
    return 0;
}

int mt_wl_check_model(struct mt_ctx *ctx)
{
    char err[ERRLEN];
    struct mt_gpt_config cfg;
    if (model_config(ctx, "model", 1, &cfg, err, sizeof err)) return mt_error(ctx, "%s", err);
    int64_t seq = mt_param_int(ctx, "seq");
    if (seq < 0 || (size_t)seq > cfg.seq_len)
        return mt_error(ctx, "seq %lld outside [0, %zu] (the model's context)", (long long)seq,
                        cfg.seq_len);
    return 0;
}

size_t mt_wl_estimate_baseline(struct mt_ctx *ctx, size_t min_batch, struct mt_gpt_config *cfg)
{
    struct mt_gpt_config local;
    size_t T;
    if (!cfg) cfg = &local;
    if (mt_wl_estimate_shape(ctx, cfg, &T)) return 0;
    size_t B = (size_t)mt_param_int(ctx, "batch");
    return mt_wl_estimate_bytes(cfg, B > min_batch ? B : min_batch, T);
}

void mt_wl_report_kernels(struct mt_ctx *ctx)
{
    struct mt_k_matmul_counts k;
    mt_k_matmul_counts(&k);
    mt_metric(ctx, "matmul_prims", (double)k.prims, "count");
    mt_metric(ctx, "matmul_fallbacks", (double)k.fallbacks, "count");
    if (k.fallbacks)
        mt_log(ctx, MT_LOG_WARN,
               "oneDNN refused %zu of %zu matmul primitives: dnnl_sgemm ran those instead",
               k.fallbacks, k.prims + k.fallbacks);
}
