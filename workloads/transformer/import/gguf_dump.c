/* gguf_dump.c — mt-gguf-dump: prints what memtrade's GGUF reader sees in a file, one
 * canonical line per metadata entry and per tensor, so that an independent reader
 * (scripts/gguf_npm_dump.mjs, Hugging Face's @huggingface/gguf) can be compared with it
 * by diff (scripts/check_gguf_npm.sh).
 *   meta KEY TYPE VALUE      integers in decimal, floats as their bit pattern in hex,
 *                            strings as the hex of their bytes, arrays as
 *                            array<TYPE>[N] and the elements comma-separated
 *   tensor NAME NE0,NE1,.. GGML_TYPE OFFSET   (ne innermost first, as stored)
 *   data_offset N
 * `mt-gguf-dump --logits MODEL OUT.f32 ID...` writes the model's logits (fp32, T x V) for
 * those token ids, for comparison with another implementation's on the same file;
 * `mt-gguf-dump --tokenize MODEL TEXT` prints the ids of TEXT by the file's own tokenizer
 * (modeltok.h), space-separated on one line.
 * `mt-gguf-dump --make DIR` writes the sample files the check reads: seeded random
 * GPT-2 and Llama (grouped-query) models in every type the writer has, and a file with
 * one metadata entry of every value type.
 * Not for: users (memtrade describe MODEL is theirs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "modelfile.h"
#include "modeltok.h"

static uint64_t rd(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

static size_t scalar_size(uint32_t t)
{
    static const unsigned char sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < 13 ? sz[t] : 0;
}

/* Prints one value of type t at p; returns the bytes it took. */
static size_t print_value(uint32_t t, const unsigned char *p)
{
    if (t == MT_GGUF_STRING) {
        size_t n = (size_t)rd(p, 8);
        for (size_t i = 0; i < n; i++)
            printf("%02x", p[8 + i]);
        return 8 + n;
    }
    size_t n = scalar_size(t);
    uint64_t v = rd(p, n);
    if (t == MT_GGUF_F32 || t == MT_GGUF_F64)
        printf("%0*llx", (int)(2 * n), (unsigned long long)v);
    else if (t == MT_GGUF_I8 || t == MT_GGUF_I16 || t == MT_GGUF_I32 || t == MT_GGUF_I64)
        printf("%lld", n == 8 ? (long long)v : (long long)(v ^ (1ull << (8 * n - 1))) - (1ll << (8 * n - 1)));
    else
        printf("%llu", (unsigned long long)v);
    return n;
}

static int dump(const char *path)
{
    char err[1024];
    struct mt_src src = {0};
    struct mt_gguf g;
    if (mt_gguf_read(&src, &g, path, err, sizeof err)) {
        fprintf(stderr, "mt-gguf-dump: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < g.n_kv; i++) {
        const struct mt_gguf_kv *e = &g.kv[i];
        printf("meta %s %s ", e->key, mt_gguf_type_name(e->type));
        if (e->type == MT_GGUF_ARRAY) {
            printf("array<%s>[%llu] ", mt_gguf_type_name(e->arr_type), (unsigned long long)e->arr_n);
            const unsigned char *p = e->val;
            for (uint64_t k = 0; k < e->arr_n; k++) {
                if (k) putchar(',');
                p += print_value(e->arr_type, p);
            }
        } else {
            print_value(e->type, e->val);
        }
        putchar('\n');
    }
    static const uint32_t ggml[] = {0, 1, 30, 8, 2}; /* F32 F16 BF16 Q8_0 Q4_0 */
    const unsigned char *data = (const unsigned char *)src.maps[0].base + g.data_off;
    for (size_t i = 0; i < src.n; i++) {
        const struct mt_src_tensor *t = &src.t[i];
        printf("tensor %s ", t->name);
        for (size_t d = t->ndim; d-- > 0;)
            printf("%zu%s", t->dims[d], d ? "," : "");
        printf(" %u %zu\n", ggml[t->dtype], (size_t)(t->data - data));
    }
    printf("data_offset %zu\n", g.data_off);
    mt_gguf_free(&g);
    mt_src_free(&src);
    return 0;
}

static int make(const char *dir)
{
    static const char *const specs[][2] = {
        {"gpt2", "tiny,vocab=256"},
        {"llama", "llama-tiny,n_embd=64,ffn=160"},
        {"llama-mqa", "llama-tiny,n_embd=64,ffn=160,n_head=8,n_kv_head=1,tie=on"}};
    static const char *const types[] = {"f32", "f16", "bf16", "q8_0", "q4_0"};
    char err[1024], path[4096];
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        struct mt_gpt_config cfg;
        struct mt_gpt *m;
        if (mt_gpt_config_parse(&cfg, specs[s][1], err, sizeof err) ||
            mt_gpt_create(&m, &cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err)) {
            fprintf(stderr, "mt-gguf-dump: %s\n", err);
            return 1;
        }
        mt_gpt_init(m, 1337 + s);
        for (int t = 0; t < MT_DT_COUNT; t++) {
            snprintf(path, sizeof path, "%s/%s-%s.gguf", dir, specs[s][0], types[t]);
            if (mt_model_export(m, MT_MF_GGUF, (enum mt_dtype)t, path, err, sizeof err)) {
                fprintf(stderr, "mt-gguf-dump: %s\n", err);
                mt_gpt_free(m);
                return 1;
            }
        }
        mt_gpt_free(m);
    }
    struct mt_gguf_writer w = {0};
    struct mt_out_list l = {0};
    float v[32] = {1.5f, -2.0f};
    size_t dims[1] = {32};
    const char *strs[] = {"a", "", "ünïcode ✓"};
    int32_t ints[] = {-1, 7};
    float fl[] = {0.25f, -1e-3f};
    mt_gguf_w_scalar(&w, "t.u8", MT_GGUF_U8, 200);
    mt_gguf_w_scalar(&w, "t.i8", MT_GGUF_I8, (uint8_t)-5);
    mt_gguf_w_scalar(&w, "t.u16", MT_GGUF_U16, 60000);
    mt_gguf_w_scalar(&w, "t.i16", MT_GGUF_I16, (uint16_t)-1234);
    mt_gguf_w_u32(&w, "t.u32", 4000000000u);
    mt_gguf_w_scalar(&w, "t.i32", MT_GGUF_I32, (uint32_t)-7);
    mt_gguf_w_f32(&w, "t.f32", 0.1f);
    mt_gguf_w_scalar(&w, "t.bool", MT_GGUF_BOOL, 1);
    mt_gguf_w_str(&w, "t.str", "héllo");
    mt_gguf_w_strs(&w, "t.strs", strs, 3);
    mt_gguf_w_i32s(&w, "t.i32s", ints, 2);
    mt_gguf_w_f32s(&w, "t.f32s", fl, 2);
    mt_gguf_w_scalar(&w, "t.u64", MT_GGUF_U64, 1ull << 40);
    mt_gguf_w_scalar(&w, "t.i64", MT_GGUF_I64, (uint64_t)-42);
    mt_gguf_w_scalar(&w, "t.f64", MT_GGUF_F64, 0x400921fb54442d18ull);
    mt_gguf_w_u32(&w, "general.alignment", 64);
    int rc = mt_out_add(&l, "v", MT_DT_F32, 1, dims, v, NULL);
    snprintf(path, sizeof path, "%s/types.gguf", dir);
    rc = rc || mt_gguf_write(path, &w, &l, 64, err, sizeof err);
    mt_gguf_w_free(&w);
    mt_out_free(&l);
    if (rc) fprintf(stderr, "mt-gguf-dump: %s\n", err);
    return rc != 0;
}

/* memtrade's ids of text with the model file's own tokenizer (modeltok.h), on one line. */
static int tokenize(const char *model, const char *text)
{
    char err[1024];
    struct mt_tokenizer *t;
    int32_t *ids = NULL;
    size_t n = 0;
    if (mt_model_tokenizer(model, &t, err, sizeof err) ||
        (!t && snprintf(err, sizeof err, "%s carries no tokenizer", model) > 0) ||
        mt_tok_encode(t, (const uint8_t *)text, strlen(text), &ids, &n, err, sizeof err)) {
        fprintf(stderr, "mt-gguf-dump: %s\n", err);
        mt_tok_free(t);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? " " : "", (int)ids[i]);
    printf("\n");
    free(ids);
    mt_tok_free(t);
    return 0;
}

static int logits(const char *model, const char *out, int n, char **ids)
{
    char err[1024];
    struct mt_gpt *m;
    int in[4096];
    if (n < 1 || n > 4096) return fprintf(stderr, "mt-gguf-dump: 1..4096 ids\n"), 2;
    for (int i = 0; i < n; i++)
        in[i] = atoi(ids[i]);
    if (mt_model_load(model, NULL, MT_GPT_INFER, 1, (size_t)n, 1, &m, NULL, err, sizeof err) ||
        mt_gpt_forward(m, in, NULL, 1, (size_t)n, NULL, err, sizeof err)) {
        fprintf(stderr, "mt-gguf-dump: %s\n", err);
        return 1;
    }
    FILE *f = fopen(out, "wb");
    size_t k = (size_t)n * m->cfg.vocab;
    int rc = !f || fwrite(m->act[MT_A_LOGITS], sizeof(float), k, f) != k;
    if (f) rc |= fclose(f) != 0;
    mt_gpt_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "--logits")) return logits(argv[2], argv[3], argc - 4, argv + 4);
    if (argc == 3 && !strcmp(argv[1], "--make")) return make(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "--tokenize")) return tokenize(argv[2], argv[3]);
    if (argc != 2) {
        fprintf(stderr, "usage: mt-gguf-dump FILE.gguf | --make DIR | --logits MODEL OUT ID... | "
                        "--tokenize MODEL TEXT\n");
        return 2;
    }
    return dump(argv[1]);
}
