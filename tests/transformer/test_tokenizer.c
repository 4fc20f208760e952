/* test_tokenizer.c — the tokenizers of tokenizer.h against independent references.
 *
 * What it is for: the hand-made fixtures of tokenizer/ (byte-level BPE with GPT-2's
 * regex, with Llama-3's Split regex, SentencePiece BPE with byte fallback; expected ids
 * from make_fixtures.py's plain-Python reference) reproduced exactly; decode(encode(x)) ==
 * x for them, for invalid UTF-8 and for the golden corpus; the in-memory (GGUF) constructor
 * equal to the JSON loader; the byte tokenizer is the identity; unsupported and corrupt
 * tokenizer.json files refused with a message naming what was found; and, given a folder
 * argument, Hugging Face's own ids (tests/fixtures/hf/<model>/expected.json); a corpus
 * tokenized split by split feeds batches and the evaluation protocol, whose bits per byte
 * of a uniform model is ln V / ln 2 x tokens / bytes, and the byte tokenizer leaves every
 * number bit-identical.
 * What it is not for: speed (mt-bench-tokenizer).
 *
 * Usage: test_tokenizer FIXTURE_DIR CORPUS [part...] | test_tokenizer hf MODEL_DIR
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "eval.h"
#include "tf_test.h"
#include "tokenizer.h"

static char err[1024];
static const char *dir, *corpus_path;

static void roundtrip(const struct mt_tokenizer *t, const uint8_t *s, size_t n)
{
    int32_t *ids;
    size_t k;
    CHECK_OK(mt_tok_encode(t, s, n, &ids, &k, err, sizeof err), err);
    size_t len = mt_tok_decode(t, ids, k, NULL, 0);
    uint8_t *out = malloc(len + 1);
    CHECK(mt_tok_decode(t, ids, k, out, len) == len);
    if (len != n || memcmp(out, s, n)) {
        printf("round trip of %zu bytes gave %zu: \"%.*s\" -> \"%.*s\"\n", n, len,
               (int)(n < 80 ? n : 80), s, (int)(len < 80 ? len : 80), out);
        exit(1);
    }
    size_t bytes = 0; /* piece lengths add up to the text, but for SP's prepended space */
    for (size_t i = 0; i < k; i++)
        bytes += mt_tok_piece_bytes(t)[ids[i]];
    CHECK(bytes >= n && bytes <= n + (mt_tok_kind(t) == MT_TOK_SP_BPE ? k : 0));
    free(out);
    free(ids);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len + 1);
    CHECK(fread(p, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* ids of text against a JSON array of ints; prints the first difference */
static void same_ids(const struct mt_tokenizer *t, const char *text, json_t *want, const char *what)
{
    int32_t *ids;
    size_t k;
    CHECK_OK(mt_tok_encode(t, (const uint8_t *)text, strlen(text), &ids, &k, err, sizeof err), err);
    size_t i = 0;
    while (i < k && i < json_array_size(want) &&
           ids[i] == json_integer_value(json_array_get(want, i)))
        i++;
    if (i != k || k != json_array_size(want)) {
        printf("%s: \"%s\": ids differ at %zu (got %zu ids, want %zu): got %d, want %lld\n", what,
               text, i, k, json_array_size(want), i < k ? ids[i] : -1,
               i < json_array_size(want) ? (long long)json_integer_value(json_array_get(want, i))
                                         : -1);
        exit(1);
    }
    free(ids);
}

static struct mt_tokenizer *load(const char *name)
{
    char path[4096];
    struct mt_tokenizer *t;
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    CHECK_OK(mt_tok_load(&t, path, err, sizeof err), err);
    return t;
}

static void test_fixtures(void)
{
    char path[4096];
    json_error_t je;
    snprintf(path, sizeof path, "%s/expected.json", dir);
    json_t *exp = json_load_file(path, 0, &je), *texts = json_object_get(exp, "texts");
    CHECK(exp != NULL);
    static const char *const names[] = {"gpt2", "llama3", "llama"};
    static const enum mt_tok_kind kinds[] = {MT_TOK_BYTE_BPE, MT_TOK_BYTE_BPE, MT_TOK_SP_BPE};
    size_t n_corpus;
    uint8_t *corpus = read_file(corpus_path, &n_corpus);
    for (size_t m = 0; m < 3; m++) {
        struct mt_tokenizer *t = load(names[m]);
        CHECK(mt_tok_kind(t) == kinds[m]);
        json_t *ids = json_object_get(json_object_get(exp, "ids"), names[m]);
        CHECK(json_array_size(ids) == json_array_size(texts));
        for (size_t i = 0; i < json_array_size(texts); i++) {
            const char *s = json_string_value(json_array_get(texts, i));
            same_ids(t, s, json_array_get(ids, i), names[m]);
            roundtrip(t, (const uint8_t *)s, strlen(s));
        }
        /* bytes that are not UTF-8, NUL, lone continuation bytes, a truncated character */
        static const uint8_t bad[] = {'a',  0xff, 'b',  0,    0x80, ' ',  0xe2, 0x96, ' ', 0xc3,
                                      0xa9, 0xf0, 0x9f, 0x98, '\n', 0xed, 0xa0, 0x80, 'z', 0xe4};
        roundtrip(t, bad, sizeof bad);
        roundtrip(t, corpus, n_corpus);
        printf("%s: %s, vocab %zu, bos %d eos %d: %zu texts reproduced\n", names[m],
               mt_tok_kind_name(t), mt_tok_vocab(t), mt_tok_bos(t), mt_tok_eos(t),
               json_array_size(texts));
        mt_tok_free(t);
    }
    free(corpus);
    json_decref(exp);
}

static void test_bytes(void)
{
    struct mt_tokenizer *t;
    CHECK_OK(mt_tok_load(&t, "bytes", err, sizeof err), err);
    CHECK(mt_tok_kind(t) == MT_TOK_BYTES && mt_tok_vocab(t) == 256);
    uint8_t all[512];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (uint8_t)(i * 7 + 3);
    int32_t *ids;
    size_t k;
    CHECK_OK(mt_tok_encode(t, all, sizeof all, &ids, &k, err, sizeof err), err);
    CHECK(k == sizeof all);
    for (size_t i = 0; i < k; i++)
        CHECK(ids[i] == all[i] && mt_tok_piece_bytes(t)[ids[i]] == 1);
    free(ids);
    roundtrip(t, all, sizeof all);
    mt_tok_free(t);
}

/* The GGUF path: the same vocab and merges as arrays build the same tokenizer. */
static void test_arrays(void)
{
    static const char *const names[] = {"gpt2", "llama3", "llama"};
    char path[4096];
    json_error_t je;
    snprintf(path, sizeof path, "%s/expected.json", dir);
    json_t *exp = json_load_file(path, 0, &je), *texts = json_object_get(exp, "texts");
    for (size_t m = 0; m < 3; m++) {
        snprintf(path, sizeof path, "%s/%s.json", dir, names[m]);
        json_t *root = json_load_file(path, 0, &je), *model = json_object_get(root, "model");
        json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
        json_t *added = json_object_get(root, "added_tokens");
        size_t V =
            json_object_size(vocab) + (m == 2 ? 0 : json_array_size(added) - (m == 1 ? 0 : 0));
        const char **tokens = calloc(V + 8, sizeof *tokens);
        int32_t *type = calloc(V + 8, sizeof *type);
        const char *key;
        json_t *val, *e;
        size_t i, n = 0;
        json_object_foreach(vocab, key, val)
        {
            size_t id = (size_t)json_integer_value(val);
            tokens[id] = key;
            type[id] = 1;
            n = id + 1 > n ? id + 1 : n;
        }
        json_array_foreach(added, i, e)
        {
            size_t id = (size_t)json_integer_value(json_object_get(e, "id"));
            tokens[id] = json_string_value(json_object_get(e, "content"));
            type[id] = 3;
            n = id + 1 > n ? id + 1 : n;
        }
        char **ms = calloc(json_array_size(merges), sizeof *ms);
        json_array_foreach(merges, i, e)
        {
            const char *a = json_is_array(e) ? json_string_value(json_array_get(e, 0)) : NULL;
            const char *b = json_is_array(e) ? json_string_value(json_array_get(e, 1)) : NULL;
            ms[i] = malloc(256);
            if (a)
                snprintf(ms[i], 256, "%s %s", a, b);
            else
                snprintf(ms[i], 256, "%s", json_string_value(e));
        }
        struct mt_tok_arrays arr = {.model = m == 2 ? "llama" : "gpt2",
                                    .tokens = tokens,
                                    .n_tokens = n,
                                    .merges = (const char *const *)ms,
                                    .n_merges = json_array_size(merges),
                                    .token_type = type,
                                    .pattern = mt_tok_pattern_for(m == 1 ? "llama-bpe" : "gpt2"),
                                    .bos_id = -1,
                                    .eos_id = -1,
                                    .unk_id = m == 2 ? 0 : -1};
        struct mt_tokenizer *t, *j = load(names[m]);
        CHECK_OK(mt_tok_from_arrays(&t, &arr, err, sizeof err), err);
        CHECK(mt_tok_identity(t) == mt_tok_identity(j));
        json_t *ids = json_object_get(json_object_get(exp, "ids"), names[m]);
        for (size_t k = 0; k < json_array_size(texts); k++)
            same_ids(t, json_string_value(json_array_get(texts, k)), json_array_get(ids, k),
                     "arrays");
        mt_tok_free(t);
        if (m == 2) { /* SentencePiece from scores alone (no merges): still round trips */
            float *scores = calloc(n, sizeof *scores);
            for (size_t k = 0; k < n; k++)
                scores[k] = -(float)k;
            arr.merges = NULL;
            arr.n_merges = 0;
            arr.scores = scores;
            CHECK_OK(mt_tok_from_arrays(&t, &arr, err, sizeof err), err);
            for (size_t k = 0; k < json_array_size(texts); k++) {
                const char *s = json_string_value(json_array_get(texts, k));
                roundtrip(t, (const uint8_t *)s, strlen(s));
            }
            int32_t *a, *b;
            size_t na, nb;
            const char *s = "the quick brown fox";
            CHECK_OK(mt_tok_encode(t, (const uint8_t *)s, strlen(s), &a, &na, err, sizeof err),
                     err);
            CHECK_OK(mt_tok_encode(j, (const uint8_t *)s, strlen(s), &b, &nb, err, sizeof err),
                     err);
            printf("llama from scores: %zu ids, from merges: %zu\n", na, nb);
            CHECK(na < strlen(s)); /* merges happened */
            free(a);
            free(b);
            free(scores);
            mt_tok_free(t);
        }
        arr.model = "unigram";
        CHECK(mt_tok_from_arrays(&t, &arr, err, sizeof err) != 0 && t == NULL);
        CHECK(strstr(err, "unigram") && strstr(err, "supported"));
        mt_tok_free(j);
        for (i = 0; i < json_array_size(merges); i++)
            free(ms[i]);
        free(ms);
        free(tokens);
        free(type);
        json_decref(root);
    }
    CHECK(mt_tok_pattern_for("qwen2") == NULL);
    json_decref(exp);
}

/* ---- added tokens' options, on constructed tokenizer.json files ----------------------
 * The expected ids follow tokenizers' AddedVocabulary (src/tokenizer/added_vocabulary.rs):
 * extract_and_normalize cuts the non-normalized tokens out of the raw text first, then
 * normalizes each remaining part and cuts the normalized tokens, whose patterns are their
 * content through the normalizer (refresh_added_tokens); find_matches takes
 * leftmost-longest matches, skips a single_word match with \w on either side
 * (ends_with_word / starts_with_word), moves an lstrip match's start to the start of the
 * whitespace before it but not before the previous match's end
 * (max(space_leftmost_at_end, start_offset)) and extends an rstrip match over the
 * whitespace after it (space_rightmost_at_start). */

/* Byte-level BPE (GPT-2's regex) without merges, so that every byte is one id whatever
 * the pre-tokenizer cuts: id = byte - 33 for '!'..'~', 94 for the space ("Ġ"); the added
 * tokens given as JSON entries from id 95. */
static struct mt_tokenizer *bytelevel_with(const char *added)
{
    char path[256], *text = malloc(16384);
    size_t k = (size_t)sprintf(text, "{\"added_tokens\": [%s], \"normalizer\": null, "
                               "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": "
                               "true}, \"model\": {\"type\": \"BPE\", \"merges\": [], "
                               "\"vocab\": {\"\\u0120\": 94",
                               added);
    for (int c = '!'; c <= '~'; c++)
        k += (size_t)sprintf(text + k, ", \"%s%c\": %d", c == '"' || c == '\\' ? "\\" : "", c,
                             c - 33);
    sprintf(text + k, "}}}");
    snprintf(path, sizeof path, "/tmp/mt_tok_added_%ld.json", (long)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    struct mt_tokenizer *t;
    CHECK_OK(mt_tok_load(&t, path, err, sizeof err), err);
    unlink(path);
    return t;
}

#define ADDED(id, content, lstrip, rstrip, norm, single)                                           \
    "{\"id\": " #id ", \"content\": \"" content "\", \"lstrip\": " lstrip ", \"rstrip\": " rstrip \
    ", \"normalized\": " norm ", \"single_word\": " single ", \"special\": false}"

/* A tokenizer.json given as text, loaded. */
static struct mt_tokenizer *from_text(const char *text)
{
    char path[256];
    struct mt_tokenizer *t;
    snprintf(path, sizeof path, "/tmp/mt_tok_text_%ld.json", (long)getpid());
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0);
    CHECK_OK(mt_tok_load(&t, path, err, sizeof err), err);
    unlink(path);
    return t;
}

/* t written by mt_tok_save_json and read back. */
static struct mt_tokenizer *through_json(const struct mt_tokenizer *t)
{
    char path[256];
    struct mt_tokenizer *b;
    snprintf(path, sizeof path, "/tmp/mt_tok_saved_%ld.json", (long)getpid());
    CHECK_OK(mt_tok_save_json(t, path, err, sizeof err), err);
    CHECK_OK(mt_tok_load_json(&b, path, err, sizeof err), err);
    unlink(path);
    return b;
}

/* ids of text must be want[0, n); and again through the GGUF arrays (mt_tok_to_arrays ->
 * mt_tok_from_arrays) and through memtrade's tokenizer.json (mt_tok_save_json ->
 * mt_tok_load_json): the same identity, the same ids. */
static void added_case(const struct mt_tokenizer *t, const char *text, const int32_t *want,
                       size_t n)
{
    int32_t *ids;
    size_t k;
    struct mt_tok_arrays a;
    struct mt_tokenizer *b, *j = through_json(t);
    CHECK_OK(mt_tok_to_arrays(t, &a, err, sizeof err), err);
    CHECK_OK(mt_tok_from_arrays(&b, &a, err, sizeof err), err);
    mt_tok_arrays_free(&a);
    CHECK(mt_tok_identity(b) == mt_tok_identity(t));
    CHECK(mt_tok_identity(j) == mt_tok_identity(t));
    static const char *const how[] = {"", " (through the GGUF arrays)",
                                      " (through tokenizer.json)"};
    for (int pass = 0; pass < 3; pass++) {
        CHECK_OK(mt_tok_encode(pass == 0   ? t
                               : pass == 1 ? b
                                           : j,
                               (const uint8_t *)text, strlen(text), &ids, &k, err, sizeof err),
                 err);
        printf("\"%s\" ->", text);
        for (size_t i = 0; i < k; i++)
            printf(" %d", ids[i]);
        printf("%s\n", how[pass]);
        CHECK(k == n && !memcmp(ids, want, n * sizeof *ids));
        free(ids);
    }
    mt_tok_free(b);
    mt_tok_free(j);
}

#define ID(c) ((c) - 33)
#define SP 94

static void test_added(void)
{
    /* lstrip "<m>" (95): the space before it is part of the token */
    struct mt_tokenizer *t = bytelevel_with(ADDED(95, "<m>", "true", "false", "false", "false"));
    added_case(t, "a <m> b", (int32_t[]){ID('a'), 95, SP, ID('b')}, 4);
    mt_tok_free(t);
    t = bytelevel_with(ADDED(95, "<m>", "false", "false", "false", "false")); /* control */
    added_case(t, "a <m> b", (int32_t[]){ID('a'), SP, 95, SP, ID('b')}, 5);
    mt_tok_free(t);
    /* rstrip "<r>" (96) takes both spaces after it; lstrip "<m>" then starts at its end */
    t = bytelevel_with(ADDED(95, "<m>", "true", "false", "false", "false")
                       "," ADDED(96, "<r>", "false", "true", "false", "false"));
    added_case(t, "a<r>  b", (int32_t[]){ID('a'), 96, ID('b')}, 3);
    added_case(t, "<r>  <m>x", (int32_t[]){96, 95, ID('x')}, 3);
    added_case(t, "x \t<m>", (int32_t[]){ID('x'), 95}, 2); /* a tab is whitespace too */
    mt_tok_free(t);
    /* single_word "ab" (95): not inside "cab", not before '_' (\w), alone at both ends */
    t = bytelevel_with(ADDED(95, "ab", "false", "false", "false", "true"));
    added_case(t, "ab cab ab_ ab",
               (int32_t[]){95, SP, ID('c'), ID('a'), ID('b'), SP, ID('a'), ID('b'), ID('_'), SP,
                           95},
               11);
    added_case(t, "ab,ab", (int32_t[]){95, ID(','), 95}, 3); /* ',' is no word character */
    mt_tok_free(t);
    /* normalized "xy" (95) is cut after the non-normalized "yz" (96), which wins at 1 */
    t = bytelevel_with(ADDED(95, "xy", "false", "false", "true", "false")
                       "," ADDED(96, "yz", "false", "false", "false", "false"));
    added_case(t, "xyz", (int32_t[]){ID('x'), 96}, 2);
    added_case(t, "xyxz", (int32_t[]){95, ID('x'), ID('z')}, 3);
    mt_tok_free(t);
    /* SentencePiece's normalizer: normalized "foo" (6) is matched as "▁foo" in "▁a▁foo▁b",
     * the non-normalized one in the raw text, each part then normalized on its own */
    static const char sp[] =
        "{\"added_tokens\": [{\"id\": 6, \"content\": \"foo\", \"lstrip\": false, \"rstrip\": "
        "false, \"normalized\": %s, \"single_word\": false, \"special\": false}], "
        "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", "
        "\"prepend\": \"\\u2581\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, "
        "\"content\": \"\\u2581\"}]}, \"pre_tokenizer\": null, \"model\": {\"type\": \"BPE\", "
        "\"unk_token\": \"<unk>\", \"fuse_unk\": true, \"byte_fallback\": false, \"merges\": [], "
        "\"vocab\": {\"<unk>\": 0, \"\\u2581\": 1, \"a\": 2, \"b\": 3, \"f\": 4, \"o\": 5}}}";
    for (int norm = 1; norm >= 0; norm--) {
        char text[2048];
        snprintf(text, sizeof text, sp, norm ? "true" : "false");
        t = from_text(text);
        if (norm)
            added_case(t, "a foo b", (int32_t[]){1, 2, 6, 1, 3}, 5);
        else
            added_case(t, "a foo b", (int32_t[]){1, 2, 1, 6, 1, 1, 3}, 7);
        mt_tok_free(t);
    }
    /* The same with a Metaspace pre-tokenizer (prepend_scheme always, as Llama-2 files of
     * tokenizers >= 0.19) instead of the normalizer: no normalizer, so normalized "foo" is
     * matched as "foo" in the raw text, and "▁" prepended to each part after, unless it
     * starts with one already (" b" -> "▁b": metaspace.rs checks starts_with, where the
     * Prepend normalizer gives "▁▁b"). GGUF's keys
     * alone would read this back normalizer-based ("▁foo", ids 1 2 6 1 3):
     * tokenizer.memtrade.metaspace (mt_tok_arrays.metaspace) keeps it. */
    static const char ms[] =
        "{\"added_tokens\": [{\"id\": 6, \"content\": \"foo\", \"lstrip\": false, \"rstrip\": "
        "false, \"normalized\": %s, \"single_word\": false, \"special\": false}], "
        "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": "
        "\"\\u2581\", \"prepend_scheme\": \"%s\", \"split\": false}, \"model\": {\"type\": "
        "\"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, \"byte_fallback\": false, "
        "\"merges\": [], \"vocab\": {\"<unk>\": 0, \"\\u2581\": 1, \"a\": 2, \"b\": 3, \"f\": 4, "
        "\"o\": 5}}}";
    static const struct {
        const char *norm, *scheme;
        int32_t want[7];
        size_t n;
    } mc[] = {{"true", "always", {1, 2, 1, 6, 1, 3}, 6},
              {"false", "always", {1, 2, 1, 6, 1, 3}, 6},
              {"true", "never", {2, 1, 6, 1, 3}, 5},
              {"true", "first", {1, 2, 1, 6, 1, 3}, 6}};
    for (size_t c = 0; c < sizeof mc / sizeof *mc; c++) {
        char text[2048];
        snprintf(text, sizeof text, ms, mc[c].norm, mc[c].scheme);
        t = from_text(text);
        printf("Metaspace %s, normalized %s:\n", mc[c].scheme, mc[c].norm);
        added_case(t, "a foo b", mc[c].want, mc[c].n);
        mt_tok_free(t);
    }
}

static void same_text(const struct mt_tokenizer *t, const struct mt_tokens *s, const uint8_t *text,
                      size_t n)
{
    size_t len = mt_tok_decode(t, s->ids, s->n, NULL, 0);
    uint8_t *out = malloc(len + 1);
    CHECK(mt_tok_decode(t, s->ids, s->n, out, len) == len && len == n && !memcmp(out, text, n));
    free(out);
}

static void test_eval(void)
{
    struct mt_corpus c, cb;
    struct mt_tokenizer *t = load("gpt2"), *bytes;
    size_t V = mt_tok_vocab(t), T = 16;
    CHECK_OK(mt_corpus_load(&c, corpus_path, T, err, sizeof err), err);
    CHECK_OK(mt_corpus_tokenize(&c, t, T, err, sizeof err), err);
    CHECK(c.ids && c.train_tokens.ids == c.ids && c.val_tokens.ids == c.ids + c.train_tokens.n);
    CHECK(c.train_tokens.vocab == V && c.tok_identity == mt_tok_identity(t));
    same_text(t, &c.train_tokens, c.train, c.n_train); /* each split encoded on its own */
    same_text(t, &c.val_tokens, c.val, c.n_val);
    printf("corpus %zu bytes: train %zu tokens, validation %zu tokens (%s)\n", c.n,
           c.train_tokens.n, c.val_tokens.n, c.tokenizer);

    /* batches: windows of ids with their next ids */
    struct mt_rng rng;
    int in[4 * 16], tg[4 * 16];
    mt_rng_seed(&rng, 5);
    mt_batch_sample_tokens(&c.train_tokens, 4, T, &rng, in, tg);
    for (size_t i = 0; i < 4 * T; i++) {
        CHECK(in[i] >= 0 && (size_t)in[i] < V && tg[i] >= 0 && (size_t)tg[i] < V);
        if (i % T + 1 < T) CHECK(tg[i] == in[i + 1]);
    }

    /* zero weights: every token costs ln V; bits per byte over the bytes the targets hold */
    struct mt_gpt_config cfg;
    struct mt_gpt *m = NULL, *small = NULL;
    struct mt_eval_result r;
    CHECK_OK(mt_gpt_config_preset(&cfg, "tiny", err, sizeof err), err);
    CHECK_OK(mt_gpt_create(&small, &cfg, MT_GPT_INFER, 2, T, err, sizeof err), err);
    CHECK(mt_gpt_eval_tokens(small, &c.val_tokens, 0, NULL, NULL, &r, err, sizeof err) != 0);
    printf("refused: %s\n", err);
    CHECK(strstr(err, "vocab") != NULL);
    cfg.vocab = V;
    CHECK_OK(mt_gpt_create(&m, &cfg, MT_GPT_INFER, 2, T, err, sizeof err), err);
    CHECK_OK(mt_gpt_eval_tokens(m, &c.val_tokens, 0, NULL, NULL, &r, err, sizeof err), err);
    size_t want = c.n_val - mt_tok_piece_bytes(t)[c.val_tokens.ids[0]];
    printf("uniform eval over %zu tokens = %zu bytes: %.6f nats/token, %.6f bits/byte\n", r.tokens,
           r.bytes, r.loss, r.bpb);
    CHECK(r.tokens == c.val_tokens.n - 1 && r.bytes == want);
    CHECK(fabs(r.loss - log((double)V)) < 1e-5);
    CHECK(fabs(r.bpb - log((double)V) / log(2.0) * (double)r.tokens / (double)r.bytes) < 1e-5);
    CHECK(fabs(r.byte_loss - r.bpb * log(2.0)) < 1e-12);
    CHECK_OK(mt_gpt_eval_tokens(m, &c.val_tokens, 37, NULL, NULL, &r, err, sizeof err), err);
    CHECK(r.tokens == 37 && r.bytes == mt_tokens_text_bytes(&c.val_tokens, 1, 37));

    /* the byte tokenizer changes nothing: same views, same numbers bit for bit */
    CHECK_OK(mt_corpus_load(&cb, corpus_path, T, err, sizeof err), err);
    CHECK_OK(mt_tok_bytes(&bytes, err, sizeof err), err);
    CHECK_OK(mt_corpus_tokenize(&cb, bytes, T, err, sizeof err), err);
    CHECK(!cb.ids && cb.val_tokens.bytes == cb.val && cb.val_tokens.n == cb.n_val);
    mt_gpt_init(small, 3);
    struct mt_eval_result a, b;
    CHECK_OK(mt_gpt_eval(small, cb.val, cb.n_val, 500, &a, err, sizeof err), err);
    CHECK_OK(mt_gpt_eval_tokens(small, &cb.val_tokens, 500, NULL, NULL, &b, err, sizeof err), err);
    a.seconds = b.seconds = 0;
    CHECK(!memcmp(&a, &b, sizeof a) && a.bytes == a.tokens && a.byte_loss == a.loss &&
          a.bpb == a.loss / log(2.0));
    int i1[64], t1[64], i2[64], t2[64];
    mt_rng_seed(&rng, 9);
    mt_batch_sample(cb.train, cb.n_train, 4, T, &rng, i1, t1);
    mt_rng_seed(&rng, 9);
    mt_batch_sample_tokens(&cb.train_tokens, 4, T, &rng, i2, t2);
    CHECK(!memcmp(i1, i2, sizeof i1) && !memcmp(t1, t2, sizeof t1));

    /* a corpus too short in tokens is refused */
    CHECK(mt_corpus_tokenize(&cb, t, cb.n_val, err, sizeof err) != 0);
    printf("refused: %s\n", err);
    CHECK(strstr(err, "too short") != NULL && !cb.ids);
    mt_gpt_free(m);
    mt_gpt_free(small);
    mt_corpus_free(&c);
    mt_corpus_free(&cb);
    mt_tok_free(bytes);
    mt_tok_free(t);
}

/* Writes `text` to a temporary file, loads it, expects a refusal mentioning each needle. */
static void refused(const char *text, const char *n1, const char *n2)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/mt_tok_%ld.json", (long)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    struct mt_tokenizer *t = (struct mt_tokenizer *)1;
    int rc = mt_tok_load(&t, path, err, sizeof err);
    unlink(path);
    printf("refused: %s\n", err);
    CHECK(rc != 0 && t == NULL);
    CHECK(strstr(err, n1) != NULL);
    CHECK(!n2 || strstr(err, n2) != NULL);
}

#define BPE_OK                                                                                     \
    "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a " \
    "b\"]}"

static void test_errors(void)
{
    struct mt_tokenizer *t;
    refused("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "Unigram", "supported: BPE");
    refused("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "WordPiece", "supported");
    refused("{\"normalizer\": {\"type\": \"NFKC\"}, \"pre_tokenizer\": {\"type\": "
            "\"ByteLevel\"}, " BPE_OK "}",
            "normalizer NFKC", "supported");
    refused("{\"pre_tokenizer\": {\"type\": \"Digits\"}, " BPE_OK "}", "pre_tokenizer Digits",
            "supported");
    refused("{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, " BPE_OK "}", "Whitespace",
            "supported");
    refused("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"decoder\": {\"type\": "
            "\"WordPiece\"}, " BPE_OK "}",
            "decoder WordPiece", "supported");
    refused("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \" \"}, "
            "\"behavior\": \"Removed\"}, " BPE_OK "}",
            "Removed", "Isolated");
    refused("{" BPE_OK "}", "combination is not supported", "ByteLevel");
    refused("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, " BPE_OK, "not a readable JSON",
            "line");
    refused("", "not a readable JSON", NULL);
    refused("[1, 2]", "not a tokenizer.json", NULL);
    refused("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}}", "no \"model\"", NULL);
    refused(
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
        "{\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}",
        "merge 0 \"a c\"", "not in the vocab");
    refused(
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
        "{\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}",
        "\"ab\" is not in the vocab", NULL);
    refused(
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
        "{\"a\": 0, \"b\": 0}, \"merges\": []}}",
        "token id 0 is both", NULL);
    refused(
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
        "{\"a\": -3}, \"merges\": []}}",
        "not an id", NULL);
    refused(
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
        "{\"a\": 0, \"a\": 1}, \"merges\": []}}",
        "duplicate", NULL);
    refused(
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
        "{\"a\": 0}, \"merges\": [\"ab\"]}}",
        "merges[0]", "left right");
    refused(
        "{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
        "\"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", "
        "\"use_regex\": false}]}, " BPE_OK "}",
        "regex", "offset");
    refused(
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
        "{\"a\": 0}, \"merges\": [], \"continuing_subword_prefix\": \"##\"}}",
        "continuing_subword_prefix", "supported");
    CHECK(mt_tok_load(&t, "/nonexistent/tok.json", err, sizeof err) != 0);
    printf("refused: %s\n", err);
    CHECK(strstr(err, "/nonexistent/tok.json") != NULL);
    CHECK(mt_tok_load_folder(&t, "/tmp", err, sizeof err) != 0);
    printf("refused: %s\n", err);
    CHECK(strstr(err, "no tokenizer.json") != NULL);
}

/* Hugging Face's ids for each text of MODEL_DIR/expected.json, and its decoded text. */
static int test_hf(const char *model_dir)
{
    char path[4096];
    json_error_t je;
    struct mt_tokenizer *t;
    CHECK_OK(mt_tok_load_folder(&t, model_dir, err, sizeof err), err);
    snprintf(path, sizeof path, "%s/expected.json", model_dir);
    json_t *exp = json_load_file(path, 0, &je), *texts = json_object_get(exp, "texts");
    CHECK(exp != NULL && json_array_size(texts) > 0);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(texts); i++) {
        json_t *e = json_array_get(texts, i);
        const char *s = json_string_value(json_object_get(e, "text"));
        const char *d = json_string_value(json_object_get(e, "decoded"));
        json_t *ids = json_object_get(e, "ids");
        same_ids(t, s, ids, model_dir);
        int32_t *v = malloc((json_array_size(ids) + 1) * sizeof *v);
        for (size_t k = 0; k < json_array_size(ids); k++)
            v[k] = (int32_t)json_integer_value(json_array_get(ids, k));
        size_t len = mt_tok_decode(t, v, json_array_size(ids), NULL, 0);
        char *out = calloc(len + 1, 1);
        mt_tok_decode(t, v, json_array_size(ids), (uint8_t *)out, len);
        if (strcmp(out, d)) {
            printf("decode of \"%s\": \"%s\", Hugging Face: \"%s\"\n", s, out, d);
            exit(1);
        }
        free(out);
        free(v);
        n += json_array_size(ids);
    }
    printf("%s: %s, vocab %zu: %zu texts, %zu ids reproduced exactly\n", model_dir,
           mt_tok_kind_name(t), mt_tok_vocab(t), json_array_size(texts), n);
    json_decref(exp);
    mt_tok_free(t);
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "hf")) return test_hf(argv[2]);
    if (argc < 3) {
        fprintf(stderr, "usage: test_tokenizer FIXTURE_DIR CORPUS [part...] | hf MODEL_DIR\n");
        return 2;
    }
    dir = argv[1];
    corpus_path = argv[2];
    static const struct tf_part parts[] = {{"fixtures", test_fixtures},
                                           {"bytes", test_bytes},
                                           {"arrays", test_arrays},
                                           {"errors", test_errors},
                                           {"added", test_added},
                                           {"eval", test_eval}};
    return tf_run_parts(parts, sizeof parts / sizeof *parts, argc - 2, argv + 2);
}
