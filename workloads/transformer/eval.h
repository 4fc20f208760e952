/* eval.h — held-out evaluation and text generation for the reference GPT.
 *
 * What it is for: the accuracy numbers every workload reports (val_loss in nats per
 * token, val_bpb, val_ppl, val_top1) over non-overlapping windows of a split of bytes or
 * of token ids (data.h's struct mt_tokens, from any tokenizer), and
 * greedy / temperature sampling from a prompt through the KV-cache decoder so a person
 * can read what the model writes.
 * What it is not for: reporting to the harness (workloads/common does that).
 */
#ifndef MT_TRANSFORMER_EVAL_H
#define MT_TRANSFORMER_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "gpt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bits per byte = total nats / (ln 2 x bytes of the text scored), the bytes being those
 * the scored target tokens decode to (struct mt_tokens' piece_bytes): comparable across
 * tokenizers. For bytes (1 byte a token) it is loss / ln 2 exactly as it always was. */
struct mt_eval_result {
    double loss;      /* mean cross-entropy, nats per token (per byte for the byte tokenizer) */
    double byte_loss; /* nats per byte of text: loss x tokens / bytes (= loss for bytes) */
    double bpb;       /* bits per byte: byte_loss / ln 2 */
    double ppl;       /* exp(loss): perplexity per token */
    double top1;      /* fraction of targets that are the argmax prediction */
    size_t tokens;    /* targets scored */
    size_t bytes;     /* bytes of text those targets decode to (= tokens for bytes) */
    double seconds;   /* wall time of the evaluation */
};

/* Scores every byte of data[1, n) from its prefix, in non-overlapping windows of m->T
 * targets, m->B windows per forward, the last window shorter if needed; max_tokens > 0
 * limits it to the first max_tokens targets. The model must have activations (INFER or
 * TRAIN mode); its hook is used. Returns 0, or -1 with a message (n < 2, forward error). */
int mt_gpt_eval(struct mt_gpt *m, const uint8_t *data, size_t n, size_t max_tokens,
                struct mt_eval_result *r, char *err, size_t errlen);

/* Called by mt_gpt_eval_observe after every forward with the next-token probabilities of
 * its `rows` scored positions (rows x vocab, in text order) and their targets. Return
 * non-zero (with a message in err) to stop the evaluation with an error. */
typedef int mt_eval_observer(void *user, const float *probs, const int *targets, size_t rows,
                             char *err, size_t errlen);

/* Contract: mt_gpt_eval, with `observe` (may be NULL) shown every scored position's
 * distribution: the same windows, the same numbers in *r. What compares a model with
 * another on the evaluation text (KL divergence against a base model) reads it here. */
int mt_gpt_eval_observe(struct mt_gpt *m, const uint8_t *data, size_t n, size_t max_tokens,
                        mt_eval_observer *observe, void *user, struct mt_eval_result *r, char *err,
                        size_t errlen);

/* Contract: the one evaluation protocol over any token ids (mt_gpt_eval_observe is it on
 * a byte view, bit for bit): scores every token of data[1, n) from its prefix as above;
 * bits per byte as defined at struct mt_eval_result. Refuses (-1 with a message) ids the
 * model's vocab does not hold (data->vocab > the model's vocab). */
int mt_gpt_eval_tokens(struct mt_gpt *m, const struct mt_tokens *data, size_t max_tokens,
                       mt_eval_observer *observe, void *user, struct mt_eval_result *r, char *err,
                       size_t errlen);

/* The evaluation protocol's forward on any engine (the host model, its GPU twin): scores
 * b windows of t tokens (in, tg: b x t ids, row-major), pointing *probs at their
 * next-token probabilities (b*t x vocab) and *losses at their -log p(target) (b*t), both
 * valid until the next call. Returns 0, or -1 with a message. */
typedef int mt_eval_forward(void *self, const int *in, const int *tg, size_t b, size_t t,
                            const float **probs, const float **losses, char *err, size_t errlen);
struct mt_eval_engine {
    void *self;
    mt_eval_forward *forward;
    size_t B, T, vocab; /* windows per forward, their length, the vocabulary */
};

/* Contract: the one evaluation protocol (mt_gpt_eval_tokens is this on the host model,
 * bit for bit) on engine e: the same windows, batches, scores and observer calls. */
int mt_eval_tokens_on(const struct mt_eval_engine *e, const struct mt_tokens *data,
                      size_t max_tokens, mt_eval_observer *observe, void *user,
                      struct mt_eval_result *r, char *err, size_t errlen);

/* Generates up to n_new tokens after `prompt` (n_prompt token ids; an empty prompt starts
 * from token '\n') with a fresh KV cache of min(seq_len, n_prompt + n_new) positions.
 * temperature <= 0 is greedy (argmax); otherwise tokens are sampled from
 * softmax(logits / temperature) with a mt_rng seeded by `seed`. Writes the new tokens to
 * out (capacity n_new) and their count to *n_out (fewer than n_new when the cache is
 * full). Returns 0 or -1 with a message. */
int mt_gpt_generate(struct mt_gpt *m, const int *prompt, size_t n_prompt, size_t n_new,
                    float temperature, uint64_t seed, int *out, size_t *n_out, char *err,
                    size_t errlen);

/* lp[j] = log softmax(logits)[j] for j < V, in double (KL divergences between nearly
 * equal distributions need it). */
void mt_gpt_log_softmax(const float *logits, size_t V, double *lp);

#ifdef __cplusplus
}
#endif
#endif
