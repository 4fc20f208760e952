/* test_hf_fixture.c — memtrade's import against Hugging Face transformers' own logits.
 *
 * What it is for: tests/fixtures/hf (make_fixture.py, run with torch 2.11, transformers
 * 5.17, tokenizers 0.23 on the GPU machine's CPU): tiny random GPT-2 and Llama (GQA;
 * fp32, bf16, six shards, RoPE theta 500000 under transformers 5's rope_parameters)
 * folders as save_pretrained wrote them, with the token ids and logits transformers
 * computed for six texts. Each folder is loaded, run on each text's ids (from
 * expected.json: the tokenizer is not under test here), and its logits must be within
 * 1e-4 of transformers' relative to the text's largest logit at every position (the bf16
 * folder too, and its weights = llama-tiny's rounded to bf16); the same model exported
 * to GGUF and to a Hugging Face folder by memtrade and loaded back must give bit-identical
 * logits. The folder's tokenizer (mt_model_tokenizer: its tokenizer.json) goes into the
 * GGUF file as tokenizer.ggml.* and into memtrade's folder as its own tokenizer.json
 * (mt_model_export_tok) and comes back from both with the same identity and
 * transformers' ids for every text.
 * What it is not for: the tokenizers' own rules (test_tokenizer.c).
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modelfile.h"
#include "modeltok.h"
#include "tf_test.h"

#ifndef FIXTURE_DIR
#error FIXTURE_DIR must name tests/fixtures/hf
#endif

static char err[1024];

static float *read_f32(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    CHECK(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f) / 4;
    fseek(f, 0, SEEK_SET);
    float *b = malloc(*n * 4);
    CHECK(fread(b, 4, *n, f) == *n);
    fclose(f);
    return b;
}

/* Runs m on ids; returns a malloc'ed copy of its T x V logits. */
static float *logits_of(struct mt_gpt *m, const int *ids, size_t T)
{
    CHECK_OK(mt_gpt_forward(m, ids, NULL, 1, T, NULL, err, sizeof err), err);
    float *l = malloc(T * m->cfg.vocab * sizeof *l);
    memcpy(l, m->act[MT_A_LOGITS], T * m->cfg.vocab * sizeof *l);
    return l;
}

static void one(const char *name)
{
    char dir[512], p[600], tmp[300];
    snprintf(dir, sizeof dir, "%s/%s", FIXTURE_DIR, name);
    snprintf(p, sizeof p, "%s/expected.json", dir);
    json_t *ex = json_load_file(p, 0, NULL), *texts = json_object_get(ex, "texts");
    CHECK(ex && json_array_size(texts) > 0);
    snprintf(p, sizeof p, "%s/logits.f32", dir);
    size_t nref;
    float *ref = read_f32(p, &nref);
    size_t maxT = 0;
    for (size_t i = 0; i < json_array_size(texts); i++) {
        size_t T = json_array_size(json_object_get(json_array_get(texts, i), "ids"));
        maxT = T > maxT ? T : maxT;
    }
    struct mt_gpt *m, *g, *h;
    struct mt_model_info info;
    CHECK_OK(mt_model_load(dir, NULL, MT_GPT_INFER, 1, maxT, 1, &m, &info, err, sizeof err), err);
    /* memtrade's own files of the same model: GGUF (f32) and a Hugging Face folder */
    snprintf(tmp, sizeof tmp, "/tmp/mt_hf_fixture_%ld_%s", (long)getpid(), name);
    snprintf(p, sizeof p, "%s.gguf", tmp);
    struct mt_tokenizer *tok, *tg, *th;
    CHECK_OK(mt_model_tokenizer(dir, &tok, err, sizeof err), err);
    CHECK(tok != NULL);
    CHECK_OK(mt_model_export_tok(m, tok, MT_MF_GGUF, MT_DT_F32, p, err, sizeof err), err);
    CHECK_OK(mt_model_load(p, NULL, MT_GPT_INFER, 1, maxT, 1, &g, NULL, err, sizeof err), err);
    CHECK_OK(mt_model_tokenizer(p, &tg, err, sizeof err), err);
    CHECK_OK(mt_model_export_tok(m, tok, MT_MF_HF, MT_DT_F32, tmp, err, sizeof err), err);
    CHECK_OK(mt_model_load(tmp, NULL, MT_GPT_INFER, 1, maxT, 1, &h, NULL, err, sizeof err), err);
    CHECK_OK(mt_model_tokenizer(tmp, &th, err, sizeof err), err); /* its tokenizer.json */
    for (int way = 1; way < 3; way++) {
        struct mt_tokenizer *b = way == 1 ? tg : th;
        CHECK(b != NULL && mt_tok_identity(b) == mt_tok_identity(tok));
        CHECK(mt_tok_bos(b) == mt_tok_bos(tok) && mt_tok_eos(b) == mt_tok_eos(tok));
    }
    for (size_t i = 0; i < json_array_size(texts); i++) { /* transformers' ids, three ways */
        json_t *e = json_array_get(texts, i), *ids = json_object_get(e, "ids");
        const char *text = json_string_value(json_object_get(e, "text"));
        for (int way = 0; way < 3; way++) {
            int32_t *got;
            size_t k;
            CHECK_OK(mt_tok_encode(way == 0   ? tok
                                   : way == 1 ? tg
                                              : th,
                                   (const uint8_t *)text, strlen(text), &got, &k, err, sizeof err),
                     err);
            CHECK(k == json_array_size(ids));
            for (size_t t = 0; t < k; t++)
                CHECK(got[t] == json_integer_value(json_array_get(ids, t)));
            free(got);
        }
    }
    printf("%-16s tokenizer (%s, %zu ids) through GGUF and memtrade's tokenizer.json: same "
           "identity, transformers' ids\n",
           name, mt_tok_kind_name(tg), mt_tok_vocab(tg));
    mt_tok_free(tg);
    mt_tok_free(th);
    mt_tok_free(tok);
    snprintf(p, sizeof p, "rm -rf '%s'", tmp);
    CHECK(system(p) == 0);
    snprintf(p, sizeof p, "%s.gguf", tmp);
    CHECK_OK(mt_model_export(m, MT_MF_GGUF, MT_DT_F32, p, err, sizeof err), err);
    CHECK_OK(mt_model_tokenizer(p, &tg, err, sizeof err), err);
    CHECK(tg == NULL); /* exported without it: no tokenizer.ggml.* for a vocab beyond bytes */
    unlink(p);
    CHECK_OK(mt_model_export(m, MT_MF_HF, MT_DT_F32, tmp, err, sizeof err), err);
    CHECK_OK(mt_model_tokenizer(tmp, &th, err, sizeof err), err);
    CHECK(th == NULL); /* nor tokenizer.json */
    snprintf(p, sizeof p, "rm -rf '%s'", tmp);
    CHECK(system(p) == 0);
    double worst = 0.0;
    for (size_t i = 0; i < json_array_size(texts); i++) {
        json_t *e = json_array_get(texts, i), *ids = json_object_get(e, "ids");
        size_t T = json_array_size(ids), V = m->cfg.vocab;
        size_t off = (size_t)json_integer_value(json_object_get(e, "offset")) / 4;
        json_t *shape = json_object_get(e, "shape");
        CHECK(json_integer_value(json_array_get(shape, 0)) == (json_int_t)T);
        CHECK(json_integer_value(json_array_get(shape, 1)) == (json_int_t)V);
        CHECK(off + T * V <= nref);
        int *in = malloc(T * sizeof *in);
        for (size_t t = 0; t < T; t++)
            in[t] = (int)json_integer_value(json_array_get(ids, t));
        float *a = logits_of(m, in, T), *b = logits_of(g, in, T), *c = logits_of(h, in, T);
        /* every position of every model, llama-tiny-bf16's too: its reference comes from
         * a float32 reload of the bf16 folder (make_fixture.py), the weights memtrade
         * reads with RoPE's frequencies in float32 */
        double md = 0.0, mx = 0.0;
        for (size_t k = 0; k < T * V; k++) {
            md = fmax(md, fabs((double)a[k] - ref[off + k]));
            mx = fmax(mx, fabs((double)ref[off + k]));
        }
        printf("%-16s text %zu: %3zu ids, max |diff| %.2e, max |logit| %.3f, relative %.2e\n",
               name, i, T, md, mx, md / mx);
        CHECK(md <= 1e-4 * mx);
        CHECK(!memcmp(a, b, T * V * sizeof *a)); /* through GGUF: bit for bit */
        CHECK(!memcmp(a, c, T * V * sizeof *a)); /* through memtrade's own folder */
        worst = fmax(worst, md / mx);
        free(a), free(b), free(c), free(in);
    }
    if (!strcmp(name, "llama-tiny-bf16")) { /* the same weights as llama-tiny, rounded */
        struct mt_gpt *f;
        snprintf(p, sizeof p, "%s/llama-tiny", FIXTURE_DIR);
        CHECK_OK(mt_model_load(p, NULL, MT_GPT_WEIGHTS, 0, 0, 1, &f, NULL, err, sizeof err), err);
        for (int q = 0; q < MT_P_COUNT; q++)
            for (size_t k = 0; k < f->param_len[q]; k++)
                CHECK(m->param[q][k] == mt_bf16_to_f32(mt_f32_to_bf16(f->param[q][k])));
        mt_gpt_free(f);
    }
    printf("%-16s %s, %zu tensors (%zu BF16), mapped %zu copied %zu bytes; worst %.2e\n", name,
           info.arch, info.n_tensors, info.dtype_count[MT_DT_BF16], info.mapped_bytes,
           info.copied_bytes, worst);
    mt_gpt_free(m);
    mt_gpt_free(g);
    mt_gpt_free(h);
    free(ref);
    json_decref(ex);
}

static void t_gpt2(void) { one("gpt2-tiny"); }
static void t_llama(void) { one("llama-tiny"); }
static void t_llama_bf16(void) { one("llama-tiny-bf16"); }
static void t_llama3(void) { one("llama3-tiny"); }

int main(int argc, char **argv)
{
    static const struct tf_part parts[] = {{"gpt2-tiny", t_gpt2},
                                           {"llama-tiny", t_llama},
                                           {"llama-tiny-bf16", t_llama_bf16},
                                           {"llama3-tiny", t_llama3}};
    return tf_run_parts(parts, sizeof parts / sizeof parts[0], argc, argv);
}
