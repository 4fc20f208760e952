/* loop_cuda.c — libmemtrade-cuda.so: the one training loop's engine on the GPU (loop.h
 * mt_cuda_train_twin): the reference model's hooks on its device twin (cuda/cgpt.h). Built
 * with MT_CUDA; its one exported symbol is mt_cuda_train_twin. */
#include <stdio.h>

#include "cgpt.h"
#include "loop.h"

/* The engine's self: the device model, and an AdamW failure kept for the next call that
 * can report one (the loop's update hook answers only "skipped"). */
struct cu_twin {
    struct mt_cuda_gpt *d;
    int failed;
    char why[256];
};

/* Reports a kept update failure into err; 0 when there is none. */
static int cu_failed(const struct cu_twin *t, char *err, size_t errlen)
{
    if (!t->failed) return 0;
    snprintf(err, errlen, "the AdamW step on the device failed: %s", t->why);
    return -1;
}

static int cu_forward(void *self, const struct mt_loop_batch *b, double *loss, char *err,
                      size_t errlen)
{
    struct cu_twin *t = self;
    if (cu_failed(t, err, errlen)) return -1;
    float l = 0.0f;
    int rc = mt_cuda_gpt_forward(t->d, b->in, b->tg, b->rows, b->T, &l, err, errlen);
    *loss = l;
    return rc;
}

static int cu_backward(void *self, const struct mt_loop_batch *b, float scale, char *err,
                       size_t errlen)
{
    struct cu_twin *t = self;
    if (cu_failed(t, err, errlen)) return -1;
    return mt_cuda_gpt_backward(t->d, scale, b->tokens, err, errlen);
}

static void cu_zero_grad(void *self)
{
    mt_cuda_gpt_zero_grad(((struct cu_twin *)self)->d);
}

/* A device error is kept whole and reported by the next forward or backward, or by the
 * end of the loop (cu_failed); 1 (a skipped step) when a gradient was inf or NaN. */
static int cu_update(void *self, const struct mt_gpt_recipe *r, float lr, float scale)
{
    struct cu_twin *t = self;
    int rc =
        t->failed ? 0 : mt_cuda_gpt_adamw_step(t->d, r, lr, scale, NULL, t->why, sizeof t->why);
    if (rc < 0) t->failed = 1;
    return rc == 1;
}

__attribute__((visibility("default"))) int mt_cuda_train_twin(struct mt_gpt *m,
                                                              const struct mt_gpt_recipe *r,
                                                              const struct mt_cuda_twin_opts *o,
                                                              mt_loop_cuda_fn loop, void *user,
                                                              char *err, size_t errlen)
{
    enum mt_cuda_precision prec = MT_CUDA_FP32;
    struct mt_cuda_gpt *d = NULL;
    size_t rows = o && o->micro_batch ? o->micro_batch : r->batch;
    size_t every = o && o->every ? o->every : 1;
    if ((o && o->precision && mt_cuda_precision_parse(o->precision, &prec, err, errlen)) ||
        mt_cuda_gpt_create_every(&d, &m->cfg, MT_GPT_TRAIN, rows, r->seq, prec, every, err,
                                 errlen) ||
        mt_cuda_gpt_upload(d, m, err, errlen)) {
        mt_cuda_gpt_free(d);
        return -1;
    }
    struct mt_cuda_twin_info info = {.recomputed_blocks = &d->recomputed_blocks};
    for (int k = 0; k < MT_MEM_CAT_COUNT; k++) {
        info.bytes[k] = d->m.slab_bytes[k] + d->extra_bytes[k];
        info.total += info.bytes[k];
    }
    struct cu_twin t = {.d = d};
    struct mt_loop_engine e = {.self = &t,
                               .forward = cu_forward,
                               .backward = cu_backward,
                               .zero_grad = cu_zero_grad,
                               .update = cu_update};
    int rc = loop(user, &e, &info);
    if (rc == 0) rc = cu_failed(&t, err, errlen);
    if (rc == 0) rc = mt_cuda_gpt_download(d, m, err, errlen);
    mt_cuda_gpt_free(d);
    return rc;
}
