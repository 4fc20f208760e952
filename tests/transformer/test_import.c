/* test_import.c — Hugging Face and GGUF import/export of the reference model.
 *
 * What it is for: the element types convert exactly (known bit patterns, ggml's
 * quantizers on known blocks); a model exported to a Hugging Face folder or a GGUF file
 * loads back bit-exactly (f32; the GGUF q/k permutation undone) with the same logits, the
 * f32 tensors already in the model's layout mapped rather than copied; and every kind of
 * damage (unsupported architecture, epsilon, dtype, tensor type; missing, extra and
 * mis-shaped tensors; truncation, header length past the end, overlapping and
 * out-of-range offsets, trailing bytes, bad magic and version) is refused with a message
 * naming it and no model returned; a Metaspace tokenizer's behaviour kept through GGUF
 * and tokenizer.json.
 * What it is not for: the transformers reference fixture (test_hf_fixture.c).
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtype.h"
#include "gguf.h"
#include "modelfile.h"
#include "modeltok.h"
#include "names.h"
#include "safetensors.h"
#include "tf_test.h"

static char err[1024];
static char dir[256];

static void rm_rf(const char *d)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    CHECK(system(cmd) == 0);
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = tf_slurp(from, &n);
    tf_spit(to, b, n);
    free(b);
}

/* A model of spec with seeded weights (norm gains and biases randomised too). */
static struct mt_gpt *make_model(const char *spec, uint64_t seed)
{
    struct mt_gpt_config cfg;
    struct mt_gpt *m;
    CHECK_OK(mt_gpt_config_parse(&cfg, spec, err, sizeof err), err);
    CHECK_OK(mt_gpt_create(&m, &cfg, MT_GPT_INFER, 1, 16, err, sizeof err), err);
    mt_gpt_init(m, seed);
    uint64_t s = seed * 2654435761u + 1;
    for (int p = 0; p < MT_P_COUNT; p++)
        if (p != MT_P_WTE && p != MT_P_QKVW && p != MT_P_FCW && m->param[p] &&
            (p == MT_P_LN1W || p == MT_P_LN2W || p == MT_P_LNFW || p == MT_P_QKVB ||
             p == MT_P_FCB || p == MT_P_LN1B))
            for (size_t i = 0; i < m->param_len[p]; i++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                m->param[p][i] += (float)((double)(s >> 40) / (double)(1ull << 24) - 0.5) * 0.2f;
            }
    return m;
}

static void same_weights(const struct mt_gpt *a, const struct mt_gpt *b)
{
    CHECK(!memcmp(&a->cfg, &b->cfg, sizeof a->cfg));
    for (int p = 0; p < MT_P_COUNT; p++) {
        CHECK(a->param_len[p] == b->param_len[p]);
        if (a->param_len[p])
            CHECK(!memcmp(a->param[p], b->param[p], a->param_len[p] * sizeof(float)));
    }
}

/* Same logits for a fixed sequence (bit for bit). */
static void same_logits(struct mt_gpt *a, struct mt_gpt *b)
{
    int in[16];
    for (int i = 0; i < 16; i++)
        in[i] = (i * 37 + 11) % (int)a->cfg.vocab;
    CHECK_OK(mt_gpt_forward(a, in, NULL, 1, 16, NULL, err, sizeof err), err);
    CHECK_OK(mt_gpt_forward(b, in, NULL, 1, 16, NULL, err, sizeof err), err);
    CHECK(!memcmp(a->act[MT_A_LOGITS], b->act[MT_A_LOGITS], 16 * a->cfg.vocab * sizeof(float)));
}

/* ---------------------------------------------------------------- dtype */

static void t_dtype(void)
{
    CHECK(mt_f32_to_f16(1.0f) == 0x3c00 && mt_f16_to_f32(0x3c00) == 1.0f);
    CHECK(mt_f32_to_f16(-2.0f) == 0xc000 && mt_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(mt_f32_to_f16(65520.0f) == 0x7c00);                     /* rounds to infinity */
    CHECK(mt_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00);           /* tie to even: down */
    CHECK(mt_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02);           /* tie to even: up */
    CHECK(mt_f16_to_f32(0x0001) == ldexpf(1.0f, -24));            /* smallest subnormal */
    CHECK(mt_f32_to_f16(ldexpf(1.0f, -24)) == 0x0001);
    CHECK(mt_f32_to_f16(ldexpf(3.0f, -26)) == 0x0001);            /* 0.75 ulp: rounds up */
    CHECK(mt_f32_to_bf16(1.0f) == 0x3f80 && mt_bf16_to_f32(0x4049) == 3.140625f);
    CHECK(mt_f32_to_bf16(1.00390625f) == 0x3f80);                 /* tie: to even */
    CHECK(mt_f32_to_bf16(1.01171875f) == 0x3f82);
    for (uint32_t h = 0; h < 0x7c00; h++) /* every finite half survives the round trip */
        CHECK(mt_f32_to_f16(mt_f16_to_f32((uint16_t)h)) == h);
    float x[64], y[64];
    unsigned char q[68];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i - 20) / 8.0f;
    /* Q8_0 of block 0: max |x| = 2.5 -> d = 2.5/127; x = -2.5 -> -127 */
    mt_dtype_encode(MT_DT_Q8_0, x, q, 64);
    CHECK(mt_dtype_bytes(MT_DT_Q8_0, 64) == 68 && (int8_t)q[2] == -127 && (int8_t)q[2 + 20] == 0);
    CHECK((q[0] | q[1] << 8) == mt_f32_to_f16(2.5f / 127.0f));
    mt_dtype_decode(MT_DT_Q8_0, q, y, 64);
    for (int i = 0; i < 64; i++) /* half a step of the block's scale (max |x| 2.5, 5.375) */
        CHECK(fabsf(y[i] - x[i]) <= 0.5f * (i < 32 ? 2.5f : 5.375f) / 127.0f * 1.01f);
    /* Q4_0: block 0's largest magnitude is -2.5 -> d = 2.5/8, q = x/d + 8 */
    mt_dtype_encode(MT_DT_Q4_0, x, q, 64);
    CHECK(mt_dtype_bytes(MT_DT_Q4_0, 64) == 36);
    CHECK((q[0] | q[1] << 8) == mt_f32_to_f16(0.3125f));
    /* x[0] = -2.5 -> 0; x[16] = -0.5: -0.5 / 0.3125 + 8.5 = 6.9 -> 6 */
    CHECK((q[2] & 0xf) == 0 && (q[2] >> 4) == 6);
    mt_dtype_decode(MT_DT_Q4_0, q, y, 64);
    CHECK(y[0] == -2.5f && y[20] == 0.0f);
    for (int i = 0; i < 32; i++)
        CHECK(fabsf(y[i] - x[i]) <= 0.5f * 0.3125f + 1e-6f);
}

/* ---------------------------------------------------------------- round trips */

/* Exports m (built from spec) in fp32 as fmt to path and loads it back for inference,
 * mapped where it can be (*info); checks the same weights and logits, prints what was
 * mapped and copied under `label`, and returns the loaded model (the caller frees it). */
static struct mt_gpt *f32_roundtrip(struct mt_gpt *m, const char *spec, enum mt_model_format fmt,
                                    const char *path, const char *label, struct mt_model_info *info)
{
    struct mt_gpt *b;
    CHECK_OK(mt_model_export(m, fmt, MT_DT_F32, path, err, sizeof err), err);
    CHECK_OK(mt_model_load(path, NULL, MT_GPT_INFER, 1, 16, 1, &b, info, err, sizeof err), err);
    printf("%-40s %s mapped %8zu copied %8zu bytes\n", spec, label, info->mapped_bytes,
           info->copied_bytes);
    same_weights(m, b);
    same_logits(m, b);
    return b;
}

static void roundtrip(const char *spec, int expect_all_mapped)
{
    char hf[300], gg[300];
    struct mt_model_info info;
    struct mt_gpt *m = make_model(spec, 7), *b;
    snprintf(hf, sizeof hf, "%s/hf", dir);
    snprintf(gg, sizeof gg, "%s/m.gguf", dir);
    rm_rf(hf);
    b = f32_roundtrip(m, spec, MT_MF_HF, hf, "hf  ", &info);
    CHECK(info.mapped_bytes == b->mapped_bytes && b->mapped[MT_P_WTE]);
    CHECK(info.mapped_bytes + info.copied_bytes == mt_gpt_num_params(&m->cfg) * sizeof(float));
    if (expect_all_mapped) CHECK(info.copied_bytes == 0 && b->slab_bytes[MT_MEM_WEIGHTS] == 0);
    mt_gpt_free(b);
    /* without mapping: everything in the slab, the same weights */
    CHECK_OK(mt_model_load(hf, NULL, MT_GPT_INFER, 1, 16, 0, &b, &info, err, sizeof err), err);
    CHECK(info.mapped_bytes == 0 && b->mapped_bytes == 0);
    same_weights(m, b);
    mt_gpt_free(b);
    /* peek: the shape only */
    struct mt_gpt_config pc;
    CHECK_OK(mt_model_peek(hf, &pc, &info, err, sizeof err), err);
    CHECK(!memcmp(&pc, &m->cfg, sizeof pc) && info.has_tokenizer == (m->cfg.vocab == 256));
    /* bf16: each weight rounded to bfloat16 */
    rm_rf(hf);
    CHECK_OK(mt_model_export(m, MT_MF_HF, MT_DT_BF16, hf, err, sizeof err), err);
    CHECK_OK(mt_model_load(hf, NULL, MT_GPT_WEIGHTS, 0, 0, 1, &b, &info, err, sizeof err), err);
    CHECK(info.mapped_bytes == 0 && info.dtype_count[MT_DT_BF16] == info.n_tensors);
    for (int p = 0; p < MT_P_COUNT; p++)
        for (size_t i = 0; i < m->param_len[p]; i++)
            CHECK(b->param[p][i] == mt_bf16_to_f32(mt_f32_to_bf16(m->param[p][i])));
    mt_gpt_free(b);
    /* GGUF f32: bit-exact through llama.cpp's q/k permutation */
    mt_gpt_free(f32_roundtrip(m, spec, MT_MF_GGUF, gg, "gguf", &info));
    /* GGUF Q8_0 and Q4_0: the matrices decode to ggml's reference quantization */
    enum mt_dtype qt[] = {MT_DT_Q8_0, MT_DT_Q4_0, MT_DT_F16};
    for (size_t k = 0; k < 3; k++) {
        CHECK_OK(mt_model_export(m, MT_MF_GGUF, qt[k], gg, err, sizeof err), err);
        CHECK_OK(mt_model_load(gg, NULL, MT_GPT_WEIGHTS, 0, 0, 1, &b, &info, err, sizeof err), err);
        CHECK(info.dtype_count[qt[k]] > 0);
        float *ref = malloc(m->param_len[MT_P_FCPROJW] * sizeof *ref);
        unsigned char *enc = malloc(mt_dtype_bytes(qt[k], m->param_len[MT_P_FCPROJW]));
        mt_dtype_encode(qt[k], m->param[MT_P_FCPROJW], enc, m->param_len[MT_P_FCPROJW]);
        mt_dtype_decode(qt[k], enc, ref, m->param_len[MT_P_FCPROJW]);
        CHECK(!memcmp(ref, b->param[MT_P_FCPROJW], m->param_len[MT_P_FCPROJW] * sizeof *ref));
        CHECK(!memcmp(m->param[MT_P_LNFW], b->param[MT_P_LNFW], m->cfg.n_embd * sizeof(float)));
        free(ref);
        free(enc);
        mt_gpt_free(b);
    }
    mt_gpt_free(m);
}

static void t_roundtrip(void)
{
    /* llama.cpp's permute: stored row 2i + j of a head holds row j * hd/2 + i */
    static const size_t want[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    for (size_t r = 0; r < 8; r++)
        CHECK(mt_names_unperm(r, 8, 2) == want[r]);
    roundtrip("tiny,vocab=300", 0);
    roundtrip("tiny,tie=off", 0);
    roundtrip("llama-tiny,n_embd=64,ffn=160", 1);
    roundtrip("llama-tiny,n_embd=64,ffn=160,tie=on,bias=on,n_kv_head=4,rope_theta=500000", 1);
    roundtrip("llama-tiny,n_embd=64,ffn=160,n_head=8,n_kv_head=1", 1);
    /* what neither format can name */
    struct mt_gpt *m = make_model("tiny,norm=rmsnorm", 1);
    CHECK(mt_model_export(m, MT_MF_HF, MT_DT_F32, dir, err, sizeof err) != 0);
    CHECK(strstr(err, "neither GPT-2") != NULL);
    mt_gpt_free(m);
    m = make_model("tiny,window=8", 1);
    CHECK(mt_model_export(m, MT_MF_GGUF, MT_DT_F32, "x.gguf", err, sizeof err) != 0);
    CHECK(strstr(err, "window") != NULL);
    mt_gpt_free(m);
    /* a mapped model in training mode is refused, a copied one trains */
    char hf[300];
    struct mt_gpt *b = NULL;
    snprintf(hf, sizeof hf, "%s/hf", dir);
    CHECK_OK(mt_model_load(hf, NULL, MT_GPT_TRAIN, 1, 8, 1, &b, NULL, err, sizeof err), err);
    CHECK(b->mapped_bytes == 0 && b->grads);
    mt_gpt_free(b);
}

/* ---------------------------------------------------------------- refusals */

static void expect_refused(const char *label, const char *path, const char *why)
{
    struct mt_gpt *m = (struct mt_gpt *)1;
    int rc = mt_model_load(path, NULL, MT_GPT_INFER, 1, 8, 1, &m, NULL, err, sizeof err);
    printf("%-28s -> %s\n", label, rc ? err : "ACCEPTED");
    CHECK(rc != 0 && m == NULL);
    CHECK(strstr(err, why) != NULL);
}

/* Rewrites the safetensors file `path` with its header passed through edit(). */
static void edit_header(const char *src, const char *dst, void (*edit)(json_t *), size_t cut,
                        size_t append)
{
    size_t n;
    unsigned char *b = tf_slurp(src, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | b[i];
    json_t *h = json_loadb((const char *)b + 8, hl, 0, NULL);
    CHECK(h);
    if (edit) edit(h);
    char *s = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t sl = strlen(s), dl = n - 8 - hl;
    FILE *f = fopen(dst, "wb");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)sl >> (8 * i));
    CHECK(fwrite(len8, 1, 8, f) == 8 && fwrite(s, 1, sl, f) == sl);
    CHECK(fwrite(b + 8 + hl, 1, dl - cut, f) == dl - cut);
    for (size_t i = 0; i < append; i++)
        fputc(0, f);
    fclose(f);
    free(s);
    json_decref(h);
    free(b);
}

static void set_offsets(json_t *h, const char *name, json_int_t b, json_int_t e)
{
    json_t *t = json_object_get(h, name);
    CHECK(t);
    json_object_set_new(t, "data_offsets", json_pack("[I,I]", b, e));
}

static json_int_t off_of(json_t *h, const char *name, int i)
{
    return json_integer_value(json_array_get(json_object_get(json_object_get(h, name), "data_offsets"), (size_t)i));
}

static void ed_dtype(json_t *h)
{
    json_object_set_new(json_object_get(h, "model.norm.weight"), "dtype", json_string("I64"));
}
static void ed_rename(json_t *h)
{
    json_t *t = json_incref(json_object_get(h, "model.norm.weight"));
    json_object_del(h, "model.norm.weight");
    json_object_set_new(h, "model.final_norm.weight", t);
}
static void ed_shape(json_t *h) /* (V, C) -> (C, V): the same bytes, the wrong shape */
{
    json_t *s = json_object_get(json_object_get(h, "model.embed_tokens.weight"), "shape");
    json_t *a = json_incref(json_array_get(s, 0));
    json_array_remove(s, 0);
    json_array_append_new(s, a);
}
static void ed_overlap(json_t *h)
{
    json_int_t b = off_of(h, "model.norm.weight", 0), e = off_of(h, "model.norm.weight", 1);
    set_offsets(h, "lm_head.weight", off_of(h, "lm_head.weight", 0) - 4,
                off_of(h, "lm_head.weight", 1) - 4);
    (void)b, (void)e;
}
static void ed_range(json_t *h)
{
    json_int_t b = off_of(h, "lm_head.weight", 0), e = off_of(h, "lm_head.weight", 1);
    set_offsets(h, "lm_head.weight", b + 1000000, e + 1000000);
}

static void edit_config(const char *hf, const char *key, json_t *val)
{
    char p[400];
    snprintf(p, sizeof p, "%s/config.json", hf);
    json_t *j = json_load_file(p, 0, NULL);
    CHECK(j);
    json_object_set_new(j, key, val);
    CHECK(json_dump_file(j, p, JSON_INDENT(1)) == 0);
    json_decref(j);
}

/* Offset of the u32 type of tensor `name`'s info in a GGUF buffer. */
static size_t gguf_info_type_at(const unsigned char *b, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 8; i + nl + 4 < n; i++)
        if (!memcmp(b + i, name, nl) && b[i - 8] == nl && !b[i - 7]) {
            uint32_t nd = b[i + nl];
            return i + nl + 4 + 8 * nd;
        }
    CHECK(0);
    return 0;
}

static void t_refuse(void)
{
    char hf[300], bad[300], st[400], bst[400], gg[300], bgg[300];
    struct mt_gpt *m = make_model("llama-tiny,n_embd=64,ffn=160", 3);
    snprintf(hf, sizeof hf, "%s/hf", dir);
    snprintf(bad, sizeof bad, "%s/bad", dir);
    snprintf(st, sizeof st, "%s/model.safetensors", hf);
    snprintf(bst, sizeof bst, "%s/model.safetensors", bad);
    rm_rf(hf);
    CHECK_OK(mt_model_export(m, MT_MF_HF, MT_DT_F32, hf, err, sizeof err), err);
    char cfg_from[400], cfg_to[400];
    snprintf(cfg_from, sizeof cfg_from, "%s/config.json", hf);
    snprintf(cfg_to, sizeof cfg_to, "%s/config.json", bad);
#define FRESH()                                                                                    \
    do {                                                                                           \
        rm_rf(bad);                                                                                \
        CHECK(mkdir(bad, 0755) == 0);                                                              \
        copy_file(cfg_from, cfg_to);                                                               \
    } while (0)
    FRESH();
    /* each damage of the safetensors file: a header edit, bytes cut or appended */
    static const struct {
        void (*edit)(json_t *);
        size_t cut, append;
        const char *label, *want;
    } damage[] = {{ed_dtype, 0, 0, "dtype I64", "dtype I64; supported: F32, F16, BF16"},
                  {ed_rename, 0, 0, "missing tensor", "missing tensor 'model.norm.weight'"},
                  {ed_shape, 0, 0, "mis-shaped tensor", "has shape (64, 256)"},
                  {ed_overlap, 0, 0, "overlapping offsets", "overlap"},
                  {ed_range, 0, 0, "offsets out of range", "run past the end of the data"},
                  {NULL, 100, 0, "truncated file", "run past the end of the data"},
                  {NULL, 0, 4, "trailing bytes", "4 bytes after the last tensor"}};
    for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++) {
        edit_header(st, bst, damage[i].edit, damage[i].cut, damage[i].append);
        expect_refused(damage[i].label, bad, damage[i].want);
    }
    {
        size_t n;
        unsigned char *b = tf_slurp(st, &n);
        uint64_t hl = n - 7;
        for (int i = 0; i < 8; i++)
            b[i] = (unsigned char)(hl >> (8 * i));
        tf_spit(bst, b, n);
        expect_refused("header length past end", bad, "runs past the end of the file");
        tf_spit(bst, b, 5);
        expect_refused("5-byte file", bad, "too short");
        free(b);
    }
    /* extra tensors: the same file under a configuration of one layer fewer */
    copy_file(st, bst);
    edit_config(bad, "num_hidden_layers", json_integer(1));
    expect_refused("extra tensor", bad, "unexpected tensor 'model.layers.1.");
    FRESH();
    copy_file(st, bst);
    edit_config(bad, "architectures", json_pack("[s]", "MistralForCausalLM"));
    expect_refused("architecture", bad, "'MistralForCausalLM' is not supported (supported: GPT2LMHeadModel, LlamaForCausalLM)");
    FRESH();
    copy_file(st, bst);
    edit_config(bad, "rms_norm_eps", json_real(1e-6));
    expect_refused("rms_norm_eps", bad, "rms_norm_eps 1e-06");
    FRESH();
    copy_file(st, bst);
    edit_config(bad, "rope_parameters", json_pack("{s:s,s:f}", "rope_type", "llama3", "rope_theta", 5e5));
    expect_refused("rope_parameters llama3", bad, "rope_type 'llama3' is not supported (supported: default)");
    FRESH();
    copy_file(st, bst);
    edit_config(bad, "tie_word_embeddings", json_true());
    expect_refused("tied but different head", bad, "differs from it");
    rm_rf(bad);
    expect_refused("no such folder", bad, "No such file");
    expect_refused("not a model", "/etc/hostname", "neither a folder");

    /* GGUF damage */
    snprintf(gg, sizeof gg, "%s/m.gguf", dir);
    snprintf(bgg, sizeof bgg, "%s/bad.gguf", dir);
    CHECK_OK(mt_model_export(m, MT_MF_GGUF, MT_DT_F32, gg, err, sizeof err), err);
    size_t n;
    unsigned char *b = tf_slurp(gg, &n), *c = malloc(n);
    memcpy(c, b, n);
    c[0] = 'X';
    tf_spit(bgg, c, n);
    expect_refused("gguf magic", bgg, "not a GGUF file");
    memcpy(c, b, n);
    c[4] = 2;
    tf_spit(bgg, c, n);
    expect_refused("gguf version 2", bgg, "GGUF version 2; this build reads version 3");
    tf_spit(bgg, b, n - 64);
    expect_refused("gguf truncated data", bgg, "runs past the end of the file");
    tf_spit(bgg, b, 2000);
    expect_refused("gguf truncated header", bgg, "truncated");
    memcpy(c, b, n);
    size_t at = gguf_info_type_at(c, n, "blk.0.ffn_up.weight");
    c[at] = 12; /* Q4_K */
    tf_spit(bgg, c, n);
    expect_refused("gguf type Q4_K", bgg, "type Q4_K (12); supported: F32, F16, BF16, Q8_0, Q4_0");
    memcpy(c, b, n);
    c[at + 4] += 4; /* the offset, off the alignment */
    tf_spit(bgg, c, n);
    expect_refused("gguf misaligned offset", bgg, "not a multiple of the alignment 32");
    memcpy(c, b, n);
    memset(c + at + 4, 0, 8); /* the same offset as token_embd */
    tf_spit(bgg, c, n);
    expect_refused("gguf overlapping tensors", bgg, "overlap");
    memcpy(c, b, n);
    c[16] = 0xff, c[17] = 0xff, c[18] = 0xff; /* metadata count */
    tf_spit(bgg, c, n);
    expect_refused("gguf huge metadata count", bgg, "corrupt counts");
    free(b);
    free(c);
    unlink(bgg);
    unlink(gg);
    mt_gpt_free(m);
}

/* ---------------------------------------------------------------- sharded folders */

/* Splits HF folder `from`'s model.safetensors into two shards in `to` with an index whose
 * weight_map says where each tensor is; `lie` moves one entry to the wrong shard. */
static void shard(const char *from, const char *to, int lie)
{
    char p[400];
    struct mt_src src = {0};
    struct mt_out_list l[2] = {{0}, {0}};
    snprintf(p, sizeof p, "%s/model.safetensors", from);
    CHECK_OK(mt_st_read(&src, p, err, sizeof err), err);
    json_t *wm = json_object();
    for (size_t i = 0; i < src.n; i++) {
        int k = i >= src.n / 2;
        CHECK(mt_out_add(&l[k], src.t[i].name, src.t[i].dtype, src.t[i].ndim, src.t[i].dims,
                         (const float *)(const void *)src.t[i].data, NULL) == 0);
        json_object_set_new(wm, src.t[i].name,
                            json_string(k ^ (lie && i == 0) ? "model-00002-of-00002.safetensors"
                                                            : "model-00001-of-00002.safetensors"));
    }
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/model-0000%d-of-00002.safetensors", to, k + 1);
        CHECK_OK(mt_st_write(p, &l[k], err, sizeof err), err);
        mt_out_free(&l[k]);
    }
    json_t *ix = json_pack("{s:{s:i},s:o}", "metadata", "total_size", 0, "weight_map", wm);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", to);
    CHECK(json_dump_file(ix, p, 0) == 0);
    json_decref(ix);
    char a[400], b[400];
    snprintf(a, sizeof a, "%s/config.json", from);
    snprintf(b, sizeof b, "%s/config.json", to);
    copy_file(a, b);
    mt_src_free(&src);
}

static void t_sharded(void)
{
    char hf[300], sh[300];
    struct mt_model_info info;
    struct mt_gpt *m = make_model("llama-tiny,n_embd=64,ffn=160", 5), *b;
    snprintf(hf, sizeof hf, "%s/hf", dir);
    snprintf(sh, sizeof sh, "%s/sharded", dir);
    rm_rf(hf);
    rm_rf(sh);
    CHECK(mkdir(sh, 0755) == 0);
    CHECK_OK(mt_model_export(m, MT_MF_HF, MT_DT_F32, hf, err, sizeof err), err);
    shard(hf, sh, 0);
    CHECK_OK(mt_model_load(sh, NULL, MT_GPT_INFER, 1, 16, 1, &b, &info, err, sizeof err), err);
    printf("sharded: %zu tensors, mapped %zu copied %zu bytes\n", info.n_tensors,
           info.mapped_bytes, info.copied_bytes);
    same_weights(m, b);
    same_logits(m, b);
    mt_gpt_free(b);
    rm_rf(sh);
    CHECK(mkdir(sh, 0755) == 0);
    shard(hf, sh, 1);
    expect_refused("shard the map lies about", sh, "the weight_map says");
    rm_rf(sh);
    mt_gpt_free(m);
}

/* ---------------------------------------------------------------- GGUF metadata */

static void t_gguf_meta(void)
{
    char p[300];
    struct mt_gguf_writer w = {0};
    struct mt_out_list l = {0};
    float data[64];
    size_t dims[2] = {2, 32};
    for (int i = 0; i < 64; i++)
        data[i] = (float)i;
    snprintf(p, sizeof p, "%s/meta.gguf", dir);
    double pi = 3.141592653589793;
    uint64_t pib;
    memcpy(&pib, &pi, 8);
    mt_gguf_w_scalar(&w, "u8", MT_GGUF_U8, 200);
    mt_gguf_w_scalar(&w, "i8", MT_GGUF_I8, (uint8_t)-5);
    mt_gguf_w_scalar(&w, "u16", MT_GGUF_U16, 60000);
    mt_gguf_w_scalar(&w, "i16", MT_GGUF_I16, 1234);
    mt_gguf_w_u32(&w, "u32", 4000000000u);
    mt_gguf_w_scalar(&w, "i32", MT_GGUF_I32, (uint32_t)-7);
    mt_gguf_w_f32(&w, "f32", 0.5f);
    mt_gguf_w_scalar(&w, "bool", MT_GGUF_BOOL, 1);
    mt_gguf_w_str(&w, "str", "héllo");
    const char *strs[] = {"a", "", "ccc"};
    mt_gguf_w_strs(&w, "strs", strs, 3);
    int32_t ints[] = {-1, 2};
    mt_gguf_w_i32s(&w, "ints", ints, 2);
    mt_gguf_w_scalar(&w, "u64", MT_GGUF_U64, 1ull << 40);
    mt_gguf_w_scalar(&w, "i64", MT_GGUF_I64, 42);
    mt_gguf_w_scalar(&w, "f64", MT_GGUF_F64, pib);
    mt_gguf_w_u32(&w, "general.alignment", 64);
    CHECK(mt_out_add(&l, "t", MT_DT_Q8_0, 2, dims, data, NULL) == 0);
    CHECK_OK(mt_gguf_write(p, &w, &l, 64, err, sizeof err), err);
    mt_gguf_w_free(&w);
    mt_out_free(&l);
    struct mt_src src = {0};
    struct mt_gguf g;
    CHECK_OK(mt_gguf_read(&src, &g, p, err, sizeof err), err);
    uint64_t u;
    double d;
    char s[32];
    CHECK(g.n_kv == 15 && g.alignment == 64 && g.data_off % 64 == 0);
    CHECK(!mt_gguf_get_u64(&g, "u8", &u) && u == 200);
    CHECK(mt_gguf_get_u64(&g, "i8", &u) == -1); /* negative */
    CHECK(!mt_gguf_get_u64(&g, "u16", &u) && u == 60000);
    CHECK(!mt_gguf_get_u64(&g, "i16", &u) && u == 1234);
    CHECK(!mt_gguf_get_u64(&g, "u32", &u) && u == 4000000000u);
    CHECK(!mt_gguf_get_f64(&g, "f32", &d) && d == 0.5);
    CHECK(!mt_gguf_get_u64(&g, "bool", &u) && u == 1);
    CHECK(!mt_gguf_get_str(&g, "str", s, sizeof s) && !strcmp(s, "héllo"));
    CHECK(!mt_gguf_get_u64(&g, "u64", &u) && u == 1ull << 40);
    CHECK(!mt_gguf_get_u64(&g, "i64", &u) && u == 42);
    CHECK(!mt_gguf_get_f64(&g, "f64", &d) && d == pi);
    CHECK(mt_gguf_find(&g, "ints")->arr_n == 2 && mt_gguf_find(&g, "ints")->arr_type == MT_GGUF_I32);
    char **sv;
    size_t ns;
    CHECK(!mt_gguf_get_strs(&g, "strs", &sv, &ns) && ns == 3 && !strcmp(sv[2], "ccc") && !sv[1][0]);
    mt_gguf_free_strs(sv, ns);
    CHECK(src.n == 1 && src.t[0].dtype == MT_DT_Q8_0 && src.t[0].dims[0] == 2 &&
          src.t[0].dims[1] == 32 && (size_t)(src.t[0].data - (unsigned char *)src.maps[0].base) == g.data_off);
    float back[64];
    mt_dtype_decode(MT_DT_Q8_0, src.t[0].data, back, 64);
    CHECK(fabsf(back[63] - 63.0f) < 0.05f && back[0] == 0.0f && fabsf(back[40] - 40.0f) < 0.25f);
    mt_gguf_free(&g);
    mt_src_free(&src);
    unlink(p);
}

/* ---------------------------------------------------------------- tokenizers */

/* A SentencePiece BPE whose "▁" comes from a Metaspace pre-tokenizer, with a `normalized`
 * added token: through GGUF (tokenizer.memtrade.metaspace) and through memtrade's own
 * tokenizer.json it comes back with the same identity and ids. GGUF's standard keys alone
 * cannot say Metaspace: without memtrade's key the arrays read back normalizer-based,
 * matching "foo" as "▁foo", other ids. */
static void t_tok(void)
{
    static const char js[] =
        "{\"added_tokens\": [{\"id\": 6, \"content\": \"foo\", \"normalized\": true, "
        "\"special\": false}], \"normalizer\": null, \"pre_tokenizer\": {\"type\": "
        "\"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": \"always\", \"split\": "
        "false}, \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, "
        "\"byte_fallback\": false, \"merges\": [[\"f\", \"o\"]], \"vocab\": {\"<unk>\": 0, "
        "\"\\u2581\": 1, \"a\": 2, \"b\": 3, \"f\": 4, \"o\": 5, \"fo\": 7}}}";
    static const int32_t want[] = {1, 2, 1, 6, 1, 3}, normalizer[] = {1, 2, 6, 1, 3};
    static const char text[] = "a foo b";
    char p[300], hf[300];
    snprintf(p, sizeof p, "%s/ms.json", dir);
    FILE *f = fopen(p, "w");
    CHECK(f && fputs(js, f) >= 0 && fclose(f) == 0);
    struct mt_tokenizer *t, *b;
    CHECK_OK(mt_tok_load(&t, p, err, sizeof err), err);
    { /* BOS / EOS of names tokenizer.json alone does not give: tokenizer_config.json's */
        struct mt_tok_arrays a;
        struct mt_tokenizer *named;
        CHECK_OK(mt_tok_to_arrays(t, &a, err, sizeof err), err);
        a.bos_id = 6, a.eos_id = 7;
        CHECK_OK(mt_tok_from_arrays(&named, &a, err, sizeof err), err);
        mt_tok_arrays_free(&a);
        mt_tok_free(t);
        t = named;
    }
    struct mt_gpt *m = make_model("llama-tiny,n_embd=64,ffn=160", 3);
    snprintf(p, sizeof p, "%s/ms.gguf", dir);
    snprintf(hf, sizeof hf, "%s/ms-hf", dir);
    CHECK_OK(mt_model_export_tok(m, t, MT_MF_GGUF, MT_DT_F32, p, err, sizeof err), err);
    CHECK_OK(mt_model_export_tok(m, t, MT_MF_HF, MT_DT_F32, hf, err, sizeof err), err);
    for (int way = 0; way < 3; way++) {
        int32_t *ids;
        size_t n;
        if (way < 2) {
            CHECK_OK(mt_model_tokenizer(way ? hf : p, &b, err, sizeof err), err);
        } else { /* GGUF's standard keys only */
            struct mt_tok_arrays a;
            CHECK_OK(mt_tok_to_arrays(t, &a, err, sizeof err), err);
            CHECK(a.metaspace == 1);
            a.metaspace = 0;
            CHECK_OK(mt_tok_from_arrays(&b, &a, err, sizeof err), err);
            mt_tok_arrays_free(&a);
        }
        CHECK(b && (mt_tok_identity(b) == mt_tok_identity(t)) == (way < 2));
        CHECK(mt_tok_bos(b) == 6 && mt_tok_eos(b) == 7);
        CHECK_OK(mt_tok_encode(b, (const uint8_t *)text, strlen(text), &ids, &n, err, sizeof err),
                 err);
        const int32_t *w = way < 2 ? want : normalizer;
        CHECK(n == (way < 2 ? 6u : 5u) && !memcmp(ids, w, n * sizeof *ids));
        printf("Metaspace with normalized \"foo\" %s: \"%s\" -> %zu ids\n",
               way == 0   ? "through GGUF"
               : way == 1 ? "through tokenizer.json"
                          : "without the key",
               text, n);
        free(ids);
        mt_tok_free(b);
    }
    struct mt_src src = {0};
    struct mt_gguf g;
    uint64_t v;
    CHECK_OK(mt_gguf_read(&src, &g, p, err, sizeof err), err);
    CHECK(!mt_gguf_get_u64(&g, "tokenizer.memtrade.metaspace", &v) && v == 1);
    /* padded to the model's vocab with "[PAD<id>]" (llama.cpp sizes its vocab by them) */
    char **tokens;
    size_t nt;
    CHECK(!mt_gguf_get_strs(&g, "tokenizer.ggml.tokens", &tokens, &nt) && nt == m->cfg.vocab);
    CHECK(nt > 9 && !strcmp(tokens[8], "[PAD8]") && !strcmp(tokens[nt - 1], "[PAD255]"));
    mt_gguf_free_strs(tokens, nt);
    mt_gguf_free(&g);
    mt_src_free(&src);
    unlink(p);
    rm_rf(hf);
    mt_tok_free(t);
    mt_gpt_free(m);
}

int main(int argc, char **argv)
{
    snprintf(dir, sizeof dir, "/tmp/mt_test_import_%ld", (long)getpid());
    rm_rf(dir);
    CHECK(mkdir(dir, 0755) == 0);
    static const struct tf_part parts[] = {{"dtype", t_dtype},         {"roundtrip", t_roundtrip},
                                           {"refuse", t_refuse},       {"sharded", t_sharded},
                                           {"gguf_meta", t_gguf_meta}, {"tok", t_tok}};
    int rc = tf_run_parts(parts, sizeof parts / sizeof parts[0], argc, argv);
    rm_rf(dir);
    return rc;
}
