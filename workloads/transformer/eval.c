/* eval.c — validation scoring and sampling (see eval.h). */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"
#include "util.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Adds the losses and top-1 hits of one forward: rows of probabilities (V each), their
 * losses and targets. */
static void score(const float *probs, const float *losses, const int *tg, size_t rows, size_t V,
                  double *loss, size_t *hits)
{
    for (size_t i = 0; i < rows; i++) {
        const float *p = probs + i * V;
        size_t best = 0;
        for (size_t j = 1; j < V; j++)
            if (p[j] > p[best]) best = j;
        *hits += best == (size_t)tg[i];
        *loss += losses[i];
    }
}

/* The host model's forward for the evaluation (struct mt_eval_engine). */
static int gpt_forward(void *self, const int *in, const int *tg, size_t b, size_t t,
                       const float **probs, const float **losses, char *err, size_t errlen)
{
    struct mt_gpt *m = self;
    float unused;
    if (mt_gpt_forward(m, in, tg, b, t, &unused, err, errlen)) return -1;
    *probs = m->act[MT_A_LOGITS];
    *losses = m->act[MT_A_LOSSES];
    return 0;
}

int mt_gpt_eval(struct mt_gpt *m, const uint8_t *data, size_t n, size_t max_tokens,
                struct mt_eval_result *r, char *err, size_t errlen)
{
    return mt_gpt_eval_observe(m, data, n, max_tokens, NULL, NULL, r, err, errlen);
}

int mt_gpt_eval_observe(struct mt_gpt *m, const uint8_t *data, size_t n, size_t max_tokens,
                        mt_eval_observer *observe, void *user, struct mt_eval_result *r, char *err,
                        size_t errlen)
{
    struct mt_tokens s = mt_tokens_of_bytes(data, n);
    return mt_gpt_eval_tokens(m, &s, max_tokens, observe, user, r, err, errlen);
}

int mt_gpt_eval_tokens(struct mt_gpt *m, const struct mt_tokens *data, size_t max_tokens,
                       mt_eval_observer *observe, void *user, struct mt_eval_result *r, char *err,
                       size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (m->mode == MT_GPT_WEIGHTS)
        return mt_tf_fail(err, errlen, "evaluation needs a model with activations");
    struct mt_eval_engine e = {
        .self = m, .forward = gpt_forward, .B = m->B, .T = m->T, .vocab = m->cfg.vocab};
    return mt_eval_tokens_on(&e, data, max_tokens, observe, user, r, err, errlen);
}

int mt_eval_tokens_on(const struct mt_eval_engine *e, const struct mt_tokens *data,
                      size_t max_tokens, mt_eval_observer *observe, void *user,
                      struct mt_eval_result *r, char *err, size_t errlen)
{
    size_t n = data->n;
    memset(r, 0, sizeof *r);
    if (n < 2)
        return mt_tf_fail(err, errlen, "evaluation split has %zu %s; need at least 2", n,
                          data->bytes ? "bytes" : "tokens");
    if (data->ids && data->vocab > e->vocab)
        return mt_tf_fail(err, errlen,
                          "the tokenizer's vocab of %zu ids does not fit the model's %zu (give "
                          "the model vocab=%zu)",
                          data->vocab, e->vocab, data->vocab);
    double t0 = now_s();
    size_t total = n - 1, T = e->T, B = e->B;
    if (max_tokens && max_tokens < total) total = max_tokens;
    int prev = mt_memcat_set(MT_MEM_DATA);
    int *in = malloc(2 * B * T * sizeof *in);
    mt_memcat_set(prev);
    if (!in) return mt_tf_fail(err, errlen, "out of memory for evaluation batches");
    int *tg = in + B * T;
    double loss = 0.0;
    size_t hits = 0, done = 0;
    while (done < total) {
        size_t left = total - done, b = 0, t = T;
        if (left >= T) { /* as many full windows as fit in the batch */
            b = left / T < B ? left / T : B;
        } else { /* the tail: one shorter window */
            b = 1;
            t = left;
        }
        for (size_t i = 0; i < b * t; i++) {
            in[i] = mt_tokens_at(data, done + i);
            tg[i] = mt_tokens_at(data, done + i + 1);
        }
        const float *probs, *losses;
        if (e->forward(e->self, in, tg, b, t, &probs, &losses, err, errlen)) {
            free(in);
            return -1;
        }
        score(probs, losses, tg, b * t, e->vocab, &loss, &hits);
        if (observe && observe(user, probs, tg, b * t, err, errlen)) {
            free(in);
            return -1;
        }
        done += b * t;
    }
    free(in);
    r->tokens = total;
    r->bytes = mt_tokens_text_bytes(data, 1, total);
    r->loss = loss / (double)total;
    /* the ratio is exactly 1 for bytes: the numbers bytes always had, bit for bit */
    r->byte_loss = r->loss * ((double)total / (double)(r->bytes ? r->bytes : 1));
    r->bpb = r->byte_loss / log(2.0);
    r->ppl = exp(r->loss);
    r->top1 = (double)hits / (double)total;
    r->seconds = now_s() - t0;
    return 0;
}

static int pick(const float *logits, size_t V, float temperature, struct mt_rng *rng)
{
    size_t best = 0;
    for (size_t j = 1; j < V; j++)
        if (logits[j] > logits[best]) best = j;
    if (temperature <= 0.0f) return (int)best;
    double sum = 0.0;
    for (size_t j = 0; j < V; j++)
        sum += exp((double)(logits[j] - logits[best]) / temperature);
    double u = mt_rng_uniform(rng) * sum, acc = 0.0;
    for (size_t j = 0; j < V; j++) {
        acc += exp((double)(logits[j] - logits[best]) / temperature);
        if (acc > u) return (int)j;
    }
    return (int)best;
}

int mt_gpt_generate(struct mt_gpt *m, const int *prompt, size_t n_prompt, size_t n_new,
                    float temperature, uint64_t seed, int *out, size_t *n_out, char *err,
                    size_t errlen)
{
    static const int newline = '\n';
    struct mt_gpt_kv *kv = NULL;
    struct mt_rng rng;
    *n_out = 0;
    if (!n_prompt) {
        prompt = &newline;
        n_prompt = 1;
    }
    size_t cap = n_prompt + n_new < m->cfg.seq_len ? n_prompt + n_new : m->cfg.seq_len;
    if (n_prompt >= cap)
        return mt_tf_fail(err, errlen, "prompt of %zu tokens leaves no room (context %zu)",
                          n_prompt, m->cfg.seq_len);
    if (mt_gpt_kv_create(&kv, &m->cfg, cap, err, errlen)) return -1;
    mt_rng_seed(&rng, seed);
    int rc = 0;
    for (size_t i = 0; !rc && i < n_prompt; i++)
        rc = mt_gpt_decode_step(m, kv, prompt[i], err, errlen);
    while (!rc && *n_out < n_new) {
        int tok = pick(kv->logits, m->cfg.vocab, temperature, &rng);
        out[(*n_out)++] = tok;
        if (kv->pos >= kv->max_T) break;
        rc = mt_gpt_decode_step(m, kv, tok, err, errlen);
    }
    mt_gpt_kv_free(kv);
    return rc;
}

void mt_gpt_log_softmax(const float *logits, size_t V, double *lp)
{
    double mx = logits[0], z = 0.0;
    for (size_t j = 1; j < V; j++)
        mx = logits[j] > mx ? logits[j] : mx;
    for (size_t j = 0; j < V; j++)
        z += exp(logits[j] - mx);
    for (size_t j = 0; j < V; j++)
        lp[j] = logits[j] - mx - log(z);
}
