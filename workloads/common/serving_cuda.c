/* serving_cuda.c — libmemtrade-cuda.so's half of the one serving measurement on the GPU
 * (serving.h struct mt_cuda_serve, mt_cuda_serve_open): the host model's twin (cuda/cgpt.h)
 * built for one phase at a time, batch-1 decode with a device KV cache, then the
 * evaluation protocol's forwards.
 * What it is not for: the measurement itself (timing, metrics, peaks: serving.c), or
 * training on the GPU (loop_cuda.c). Built with MT_CUDA; its exported symbol is
 * mt_cuda_serve_open. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memtrade/memcat.h>

#include "cgpt.h"
#include "qformat.h"
#include "serving.h"

#define ERRLEN 256

struct cu_serve {
    const struct mt_gpt *h; /* the host model: its fp32 weights */
    struct mt_cuda_serve_opts o;
    enum mt_cuda_precision prec;
    struct mt_cuda_gpt *d;
    struct mt_cuda_kv *kv;
    float *probs; /* host copy of one forward's probabilities (data) */
};

/* Frees the phase's device memory (the twin and its cache) and host buffers. */
static void phase_free(struct cu_serve *s)
{
    mt_cuda_kv_free(s->kv);
    mt_cuda_gpt_free(s->d);
    free(s->probs);
    s->kv = NULL;
    s->d = NULL;
    s->probs = NULL;
}

/* A twin of the host model in mode for B x T, its weights uploaded; bytes[] its device
 * bytes (slabs and extras). */
static int twin(struct cu_serve *s, enum mt_gpt_mode mode, size_t B, size_t T,
                size_t bytes[MT_MEM_CAT_COUNT], char *err, size_t errlen)
{
    phase_free(s);
    if (mt_cuda_gpt_create(&s->d, &s->h->cfg, mode, B, T, s->prec, err, errlen) ||
        mt_cuda_gpt_upload(s->d, s->h, err, errlen))
        return -1;
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        bytes[c] = s->d->m.slab_bytes[c] + s->d->extra_bytes[c];
    return 0;
}

static int decode_open(void *self, size_t n, size_t bytes[MT_MEM_CAT_COUNT], char *err,
                       size_t errlen)
{
    struct cu_serve *s = self;
    if (twin(s, MT_GPT_WEIGHTS, 1, 1, bytes, err, errlen) ||
        (s->o.qfmt && mt_cuda_gpt_quantize_linears(s->d, s->h, s->o.qfmt, 0, err, errlen)) ||
        mt_cuda_kv_create_type(&s->kv, s->d, n, s->o.kv_type, err, errlen))
        return -1;
    bytes[MT_MEM_WEIGHTS] += s->d->qbytes;
    bytes[MT_MEM_KV_CACHE] += s->kv->kv_bytes;
    bytes[MT_MEM_WORKSPACE] += s->kv->scratch_bytes;
    return 0;
}

static void decode_reset(void *self)
{
    ((struct cu_serve *)self)->kv->pos = 0;
}

static int decode_step(void *self, int token, char *err, size_t errlen)
{
    struct cu_serve *s = self;
    return mt_cuda_decode_step(s->d, s->kv, token, MT_CUDA_LOGITS_QUEUED, err, errlen);
}

static int decode_wait(void *self, char *err, size_t errlen)
{
    (void)self;
    return mt_cuda_decode_wait(err, errlen);
}

/* The evaluation's forward (struct mt_eval_engine): the twin's probabilities and losses,
 * copied to the host. */
static int eval_forward(void *self, const int *in, const int *tg, size_t b, size_t t,
                        const float **probs, const float **losses, char *err, size_t errlen)
{
    struct cu_serve *s = self;
    size_t V = s->h->cfg.vocab;
    if (mt_cuda_gpt_forward(s->d, in, tg, b, t, NULL, err, errlen) ||
        mt_cuda_copy_to_host(s->probs, s->d->m.act[MT_A_LOGITS], b * t * V * sizeof(float), err,
                             errlen))
        return -1;
    *probs = s->probs;
    *losses = s->d->losses;
    return 0;
}

/* With packed weights: every block linear of the twin holds its packed codes decoded to
 * fp32 (the LM head stays, as decoding keeps it unpacked). */
static int upload_unpacked(struct cu_serve *s, char *err, size_t errlen)
{
    size_t L = s->h->cfg.n_layer;
    for (size_t l = 0; l < L; l++)
        for (int which = 0; which < MT_LIN_COUNT; which++) {
            if (which == MT_LIN_LMHEAD) continue;
            float *w, *dw;
            size_t ind, outd;
            mt_gpt_linear_weights(s->h, l, (enum mt_linear)which, &w, NULL, &ind, &outd);
            mt_gpt_linear_weights(&s->d->m, l, (enum mt_linear)which, &dw, NULL, &ind, &outd);
            struct mt_qtensor *qt = mt_qtensor_pack(w, outd, ind, s->o.qfmt, err, errlen);
            float *tmp = qt ? malloc(outd * ind * sizeof *tmp) : NULL;
            int rc = !tmp;
            if (tmp) {
                mt_qtensor_unpack(qt, tmp);
                rc = mt_cuda_copy_to_device(dw, tmp, outd * ind * sizeof *tmp, err, errlen);
            } else if (qt) {
                snprintf(err, errlen, "out of memory");
            }
            free(tmp);
            mt_qtensor_free(qt);
            if (rc) return -1;
        }
    return 0;
}

static int eval_open(void *self, size_t bytes[MT_MEM_CAT_COUNT], struct mt_eval_engine *e,
                     char *err, size_t errlen)
{
    struct cu_serve *s = self;
    size_t B = s->o.eval_B, T = s->o.eval_T, V = s->h->cfg.vocab;
    if (twin(s, MT_GPT_INFER, B, T, bytes, err, errlen) ||
        (s->o.qfmt && upload_unpacked(s, err, errlen)))
        return -1;
    int prev = mt_memcat_set(MT_MEM_DATA);
    s->probs = malloc(B * T * V * sizeof *s->probs);
    mt_memcat_set(prev);
    if (!s->probs) return snprintf(err, errlen, "out of memory"), -1;
    *e = (struct mt_eval_engine){.self = s, .forward = eval_forward, .B = B, .T = T, .vocab = V};
    return 0;
}

static void serve_close(void *self)
{
    phase_free(self);
    free(self);
}

__attribute__((visibility("default"))) int mt_cuda_serve_open(struct mt_cuda_serve *out,
                                                              const struct mt_gpt *m,
                                                              const struct mt_cuda_serve_opts *o,
                                                              char *err, size_t errlen)
{
    enum mt_cuda_precision prec = MT_CUDA_FP32;
    char why[ERRLEN];
    if (!mt_cuda_available(why, sizeof why)) return snprintf(err, errlen, "%s", why), -1;
    if (o->precision && mt_cuda_precision_parse(o->precision, &prec, err, errlen)) return -1;
    struct cu_serve *s = calloc(1, sizeof *s);
    if (!s) return snprintf(err, errlen, "out of memory"), -1;
    s->h = m;
    s->o = *o;
    s->prec = prec;
    *out = (struct mt_cuda_serve){.self = s,
                                  .decode_open = decode_open,
                                  .decode_reset = decode_reset,
                                  .decode_step = decode_step,
                                  .decode_wait = decode_wait,
                                  .eval_open = eval_open,
                                  .close = serve_close};
    return 0;
}
