/* test_drop.c — a model that serves some weights in another form (transformer.drop).
 *
 * mt_gpt_drop_weights + the embedding and linear hooks are how quantized and pruned
 * variants free the fp32 tensors they replace. Checked here on `tiny` (V=256, C=64):
 *   - dropping wte, with an embedding hook and an LM-head linear hook that read a private
 *     copy of it, gives bit-identical logits and loss in the batched forward and in every
 *     KV-cache decode step;
 *   - the weight slab shrinks by exactly the dropped tensor's bytes (rounded to the slab's
 *     64-byte alignment) and mt_gpt_weight_bytes by exactly V*C*4;
 *   - without a hook the forward and the decoder refuse ("dropped"), a checkpoint of the
 *     model is refused naming the tensor, a training model cannot drop, and a failing
 *     hook fails the forward with a message;
 *   - mt_k_add_positions equals its scalar reference.
 */
#include <math.h>
#include <string.h>

#include "ckpt.h"
#include "gpt.h"
#include "kernels.h"
#include "rng.h"
#include "tf_test.h"

struct copy {
    const float *wte;
    size_t C, V;
    int fail;
};

static int embed_rows(void *user, const int *tokens, size_t n, float *out)
{
    const struct copy *c = user;
    if (c->fail) return -1;
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * c->C, c->wte + (size_t)tokens[i] * c->C, c->C * sizeof *out);
    return 0;
}

static int head(void *user, size_t layer, enum mt_linear which, const float *in, float *out,
                size_t rows)
{
    struct mt_gpt *m = user;
    const struct copy *c = m->embed_hook.user;
    if (which != MT_LIN_LMHEAD) return mt_gpt_linear_default(m, layer, which, in, out, rows);
    mt_k_matmul_fwd(out, in, c->wte, NULL, rows, c->C, c->V);
    return 0;
}

static void forward_logits(struct mt_gpt *m, const int *in, const int *tg, size_t B, size_t T,
                           float *logits, float *loss, size_t V)
{
    char err[256];
    CHECK_OK(mt_gpt_forward(m, in, tg, B, T, loss, err, sizeof err), err);
    memcpy(logits, m->act[MT_A_LOGITS], B * T * V * sizeof *logits);
}

static void decode_logits(struct mt_gpt *m, const int *in, size_t T, float *out, size_t V)
{
    char err[256];
    struct mt_gpt_kv *kv = NULL;
    CHECK_OK(mt_gpt_kv_create(&kv, &m->cfg, T, err, sizeof err), err);
    for (size_t t = 0; t < T; t++) {
        CHECK_OK(mt_gpt_decode_step(m, kv, in[t], err, sizeof err), err);
        memcpy(out + t * V, kv->logits, V * sizeof *out);
    }
    mt_gpt_kv_free(kv);
}

int main(void)
{
    char err[256];
    struct mt_gpt_config cfg;
    CHECK_OK(mt_gpt_config_parse(&cfg, "tiny", err, sizeof err), err);
    const size_t B = 2, T = 16, C = cfg.n_embd, V = cfg.vocab;

    { /* the position kernel */
        float *x1 = malloc(B * T * C * sizeof *x1), *x2 = malloc(B * T * C * sizeof *x2);
        float *wpe = malloc(T * C * sizeof *wpe);
        for (size_t i = 0; i < B * T * C; i++)
            x1[i] = x2[i] = (float)((i * 37) % 101) * 0.01f - 0.5f;
        for (size_t i = 0; i < T * C; i++)
            wpe[i] = (float)((i * 13) % 29) * 0.03f;
        mt_k_add_positions(x1, wpe, B, T, C);
        mt_k_add_positions_ref(x2, wpe, B, T, C);
        CHECK(memcmp(x1, x2, B * T * C * sizeof *x1) == 0);
        free(x1), free(x2), free(wpe);
    }

    struct mt_gpt *m = NULL, *tm = NULL;
    CHECK_OK(mt_gpt_create(&m, &cfg, MT_GPT_INFER, B, T, err, sizeof err), err);
    mt_gpt_init(m, 7);
    int in[2 * 16], tg[2 * 16];
    struct mt_rng rng;
    mt_rng_seed(&rng, 3);
    for (size_t i = 0; i < B * T; i++) {
        in[i] = (int)mt_rng_below(&rng, (uint32_t)V);
        tg[i] = (int)mt_rng_below(&rng, (uint32_t)V);
    }
    float *ref = malloc(B * T * V * sizeof *ref), *got = malloc(B * T * V * sizeof *got);
    float *dref = malloc(T * V * sizeof *dref), *dgot = malloc(T * V * sizeof *dgot);
    float loss_ref, loss;
    forward_logits(m, in, tg, B, T, ref, &loss_ref, V);
    decode_logits(m, in, T, dref, V);

    float *wte = malloc(V * C * sizeof *wte);
    memcpy(wte, m->param[MT_P_WTE], V * C * sizeof *wte);
    struct copy cp = {.wte = wte, .C = C, .V = V};
    size_t slab_before = m->slab_bytes[MT_MEM_WEIGHTS], bytes_before = mt_gpt_weight_bytes(m);
    unsigned char drop[MT_P_COUNT] = {0};
    drop[MT_P_WTE] = 1;
    CHECK_OK(mt_gpt_drop_weights(m, drop, err, sizeof err), err);
    CHECK(m->param[MT_P_WTE] == NULL && m->param_len[MT_P_WTE] == 0);
    CHECK(slab_before - m->slab_bytes[MT_MEM_WEIGHTS] == (V * C * sizeof(float) + 63) / 64 * 64);
    CHECK(bytes_before - mt_gpt_weight_bytes(m) == V * C * sizeof(float));
    printf("drop: weight slab %zu -> %zu bytes\n", slab_before, m->slab_bytes[MT_MEM_WEIGHTS]);

    /* no hook: refused, with the reason */
    CHECK(mt_gpt_forward(m, in, tg, B, T, &loss, err, sizeof err) != 0);
    CHECK(strstr(err, "dropped") != NULL);
    struct mt_gpt_kv *kv = NULL;
    CHECK_OK(mt_gpt_kv_create(&kv, &cfg, T, err, sizeof err), err);
    CHECK(mt_gpt_decode_step(m, kv, in[0], err, sizeof err) != 0);
    CHECK(strstr(err, "dropped") != NULL);
    mt_gpt_kv_free(kv);
    CHECK(mt_ckpt_save(m, "/nonexistent-dir/never-written.ckpt", err, sizeof err) != 0);
    CHECK(strstr(err, "wte") != NULL);

    /* with the hooks: the same numbers, bit for bit */
    m->embed_hook = (struct mt_gpt_embed_hook){.rows = embed_rows, .user = &cp};
    m->hook = (struct mt_gpt_linear_hook){.matmul = head, .user = m};
    forward_logits(m, in, tg, B, T, got, &loss, V);
    CHECK(loss == loss_ref);
    CHECK(memcmp(got, ref, B * T * V * sizeof *got) == 0);
    decode_logits(m, in, T, dgot, V);
    CHECK(memcmp(dgot, dref, T * V * sizeof *dgot) == 0);
    cp.fail = 1;
    CHECK(mt_gpt_forward(m, in, tg, B, T, &loss, err, sizeof err) != 0);
    CHECK(strstr(err, "embedding hook failed") != NULL);

    /* a training model keeps its weights */
    CHECK_OK(mt_gpt_create(&tm, &cfg, MT_GPT_TRAIN, B, T, err, sizeof err), err);
    CHECK(mt_gpt_drop_weights(tm, drop, err, sizeof err) != 0);
    CHECK(tm->param[MT_P_WTE] != NULL);
    printf("drop: forward, decode bit-identical through the hooks; refusals ok\n");
    mt_gpt_free(tm);
    mt_gpt_free(m);
    free(ref), free(got), free(dref), free(dgot), free(wte);
    return 0;
}
