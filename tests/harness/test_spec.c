/* tests/harness/test_spec.c — byte sizes, edit distance, value lists and ranges, the
 * sweep parser's errors (file:line), grid order, shards and parameter resolution. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins.h"
#include "sweepspec.h"
#include "util.h"

#include "check.h"

#include <unistd.h>

static char corpus_path[64];

static void test_bytes(void)
{
    uint64_t b;
    CHECK(mt_util_parse_bytes("256M", &b) == 0 && b == 256ULL << 20);
    CHECK(mt_util_parse_bytes("1.5GiB", &b) == 0 && b == 3ULL << 29);
    CHECK(mt_util_parse_bytes("4k", &b) == 0 && b == 4096);
    CHECK(mt_util_parse_bytes("100", &b) == 0 && b == 100);
    CHECK(mt_util_parse_bytes("2 TB", &b) == 0 && b == 2ULL << 40);
    CHECK(mt_util_parse_bytes("12Q", &b) == -1);
    CHECK(mt_util_parse_bytes("-1", &b) == -1);
    CHECK(mt_util_parse_bytes("", &b) == -1);
    CHECK(mt_util_parse_bytes("99999999999T", &b) == -1);
    double s;
    CHECK(mt_util_parse_seconds("1.5m", &s) == 0 && s == 90);
    CHECK(mt_util_parse_seconds("2", &s) == 0 && s == 2);
    CHECK(mt_util_parse_seconds("2x", &s) == -1);
}

static void test_distance(void)
{
    CHECK(mt_util_edit_distance("steps", "steps") == 0);
    CHECK(mt_util_edit_distance("stpes", "steps") == 1); /* adjacent swap */
    CHECK(mt_util_edit_distance("batch", "bach") == 1);
    CHECK(mt_util_edit_distance("", "abc") == 3);
    const char *names[] = {"model", "steps", "batch", "lr", "seed"};
    CHECK(strcmp(mt_util_nearest("stpes", names, 5), "steps") == 0);
    CHECK(strcmp(mt_util_nearest("modle", names, 5), "model") == 0);
    CHECK(mt_util_nearest("quantization", names, 5) == NULL);
}

static int items_are(const char *text, const char *want)
{
    char **v;
    size_t n;
    char err[256], got[1024] = "";
    if (mt_spec_expand_values(text, &v, &n, err, sizeof err) != 0) {
        fprintf(stderr, "  '%s' -> error %s\n", text, err);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        strcat(got, i ? " " : "");
        strcat(got, v[i]);
        free(v[i]);
    }
    free(v);
    if (strcmp(got, want) != 0) fprintf(stderr, "  '%s' -> '%s', want '%s'\n", text, got, want);
    return strcmp(got, want) == 0;
}

static int items_fail(const char *text, const char *needle)
{
    char **v;
    size_t n;
    char err[256];
    if (mt_spec_expand_values(text, &v, &n, err, sizeof err) == 0) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return 0;
    }
    if (!strstr(err, needle)) fprintf(stderr, "  '%s' -> '%s', want '%s'\n", text, err, needle);
    return strstr(err, needle) != NULL;
}

static void test_values(void)
{
    CHECK(items_are("1..4", "1 2 3 4"));
    CHECK(items_are("1..16:x2", "1 2 4 8 16"));
    CHECK(items_are("1..20:x3", "1 3 9"));
    CHECK(items_are("0..0.9:0.1", "0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9"));
    CHECK(items_are("10..30:10, 64", "10 20 30 64"));
    CHECK(items_are(" tiny , small ", "tiny small"));
    CHECK(items_are("\"a,b\", c", "a,b c"));
    /* Whitespace around quoted items is dropped, inside quotes it is kept. */
    CHECK(items_are("\"2:4\", \"1:4\" ", "2:4 1:4"));
    CHECK(items_are("\" pad \" ,x", " pad  x"));
    CHECK(items_are("1e-3, 3e-3", "1e-3 3e-3"));
    CHECK(items_fail("4..1", "empty range"));
    CHECK(items_fail("1..4:0", "step must be > 0"));
    CHECK(items_fail("1..4:x1", "factor"));
    CHECK(items_fail("a..b", "bad range"));
    CHECK(items_fail("1,,2", "empty item"));
    CHECK(items_fail("\"open", "unterminated"));
    CHECK(items_fail("1..1000000", "more than"));
    /* The limit is inclusive: exactly 100000 items pass, one more does not. */
    {
        char **v;
        size_t n = 0;
        char err[256];
        CHECK(mt_spec_expand_values("1..100000", &v, &n, err, sizeof err) == 0 && n == 100000);
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
    }
    CHECK(items_fail("0..100000", "more than 100000 items"));
    /* Three dots is a typo, not the empty range 10 .. .20. */
    CHECK(items_fail("10...20", "exactly two dots"));
    CHECK(items_fail("1..5..9", "exactly two dots"));
}

static int parse_fails(const char *text, const char *want)
{
    struct mt_spec s;
    char err[512];
    if (mt_spec_parse_text("x.ini", text, &s, err, sizeof err) == 0) {
        mt_spec_free(&s);
        fprintf(stderr, "  parsed, want '%s'\n", want);
        return 0;
    }
    if (!strstr(err, want)) fprintf(stderr, "  got '%s', want '%s'\n", err, want);
    return strstr(err, want) != NULL;
}

static void test_parse_errors(void)
{
    CHECK(parse_fails("[sweep]\nname = a\n[baseline\n", "x.ini:3: malformed section"));
    CHECK(parse_fails("# c\n\nsteps = 1\n", "x.ini:3: 'steps' outside any section"));
    CHECK(parse_fails("[sweep]\nrepeat = 2\n",
                      "x.ini:2: unknown key 'repeat' in [sweep]; did you mean 'repeats'?"));
    CHECK(parse_fails("[a]\nx = 1\nx = 2\n", "x.ini:3: key 'x' given twice"));
    CHECK(parse_fails("[a]\nx 1\n", "x.ini:2: expected 'key = value'"));
    CHECK(parse_fails("[a]\nx =\n", "x.ini:2: key 'x' has no value"));
    CHECK(parse_fails("[a]\n[a]\n", "x.ini:2: section [a] appears twice"));
    CHECK(parse_fails("[A b]\n", "x.ini:1: bad section name"));
    CHECK(parse_fails("[sweep]\nmem_limit = lots\n", "x.ini:2: mem_limit must be a byte size"));
    CHECK(parse_fails("[a]\nsteps = 5..1\n", "x.ini:2: empty range"));
    /* A byte order mark: skipped at the start of the file, named anywhere else. */
    struct mt_spec s;
    char err[512];
    CHECK(mt_spec_parse_text("x.ini", "\xEF\xBB\xBF[a]\nsteps = 1\n", &s, err, sizeof err) == 0);
    if (s.nsections == 1) CHECK(strcmp(s.sections[0].workload, "a") == 0);
    mt_spec_free(&s);
    CHECK(parse_fails("[a]\nsteps = \xEF\xBB\xBF"
                      "1\n",
                      "x.ini:2: a UTF-8 byte order mark"));
    /* A folder is not a sweep file ("read error" said nothing). */
    CHECK(mt_spec_parse("/tmp", &s, err, sizeof err) == -1);
    CHECK(strstr(err, "/tmp: is a directory") != NULL);
}

/* A workload table for expansion and resolution. */
static const struct mt_param_spec params[] = {
    {"model", MT_PARAM_CHOICE, "tiny", 0, 0, "tiny|small|base", "size"},
    {"steps", MT_PARAM_INT, "10", 1, 1000, NULL, "steps"},
    {"lr", MT_PARAM_FLOAT, "0.001", 1e-6, 1, NULL, "learning rate"},
    {"fast", MT_PARAM_BOOL, "off", 0, 0, NULL, "flag"},
    {"seed", MT_PARAM_INT, "3", 0, 1e9, NULL, "seed"},
    {"note", MT_PARAM_STRING, "", 0, 0, NULL, "free text"},
};
static int run(struct mt_ctx *c)
{
    (void)c;
    return 0;
}
/* The check() hook of ABI 1.1: a constraint between two parameters. */
static int check(struct mt_ctx *c)
{
    if (mt_param_bool(c, "fast") && mt_param_int(c, "steps") > 100)
        return mt_error(c, "fast runs take at most 100 steps, not %lld",
                        (long long)mt_param_int(c, "steps"));
    return 0;
}
static struct mt_plugin plugin = {.path = "test.so",
                                  .desc = {.abi_major = 1,
                                           .struct_size = sizeof(struct mt_workload),
                                           .name = "baseline",
                                           .summary = "s",
                                           .params = params,
                                           .n_params = 6,
                                           .run = run,
                                           .check = check}};

static void test_resolve(void)
{
    struct mt_params p;
    char err[512];
    const char *k1[] = {"stpes"}, *v1[] = {"5"};
    CHECK(mt_params_resolve(&plugin.desc, k1, v1, 1, &p, err, sizeof err) == -1);
    CHECK(strcmp(err, "unknown parameter 'stpes' for workload 'baseline'; did you mean 'steps'?") ==
          0);
    const char *k2[] = {"steps"}, *v2[] = {"0"};
    CHECK(mt_params_resolve(&plugin.desc, k2, v2, 1, &p, err, sizeof err) == -1);
    CHECK(strstr(err, "parameter 'steps' of workload 'baseline': 0 is out of range [1, 1000]") !=
          NULL);
    const char *k3[] = {"model"}, *v3[] = {"huge"};
    CHECK(mt_params_resolve(&plugin.desc, k3, v3, 1, &p, err, sizeof err) == -1);
    CHECK(strstr(err, "'huge' is not one of tiny|small|base") != NULL);
    const char *k4[] = {"steps"}, *v4[] = {"12abc"};
    CHECK(mt_params_resolve(&plugin.desc, k4, v4, 1, &p, err, sizeof err) == -1);
    CHECK(strstr(err, "'12abc' is not an integer") != NULL);
    const char *k5[] = {"lr", "fast", "steps"}, *v5[] = {"1e-2", "yes", "+7"};
    CHECK(mt_params_resolve(&plugin.desc, k5, v5, 3, &p, err, sizeof err) == 0);
    CHECK(strcmp(p.value[0], "tiny") == 0);
    CHECK(strcmp(p.value[1], "7") == 0);
    CHECK(strcmp(p.value[2], "0.01") == 0);
    CHECK(strcmp(p.value[3], "true") == 0);
    mt_params_free(&p);
    /* `-p steps=1 -p steps=2`: refused, not the last one silently. */
    const char *k6[] = {"steps", "steps"}, *v6[] = {"1", "2"};
    CHECK(mt_params_resolve(&plugin.desc, k6, v6, 2, &p, err, sizeof err) == -1);
    CHECK(strstr(err, "parameter 'steps' of workload 'baseline' given twice ('1', then '2')") !=
          NULL);
    /* Long strings are kept whole (they were cut at 4095 bytes), too long ones refused. */
    size_t big = 10000;
    char *longv = malloc(MT_PARAMS_VALUE_MAX + 2);
    memset(longv, 'x', big);
    longv[big] = '\0';
    const char *k7[] = {"note"}, *v7[] = {longv};
    CHECK(mt_params_resolve(&plugin.desc, k7, v7, 1, &p, err, sizeof err) == 0);
    if (p.value) CHECK(strlen(p.value[5]) == big);
    mt_params_free(&p);
    memset(longv, 'x', MT_PARAMS_VALUE_MAX + 1);
    longv[MT_PARAMS_VALUE_MAX + 1] = '\0';
    CHECK(mt_params_resolve(&plugin.desc, k7, v7, 1, &p, err, sizeof err) == -1);
    CHECK(strstr(err, "longer than the limit") != NULL);
    free(longv);
}

static void test_expand(void)
{
    struct mt_registry reg = {&plugin, 1};
    struct mt_spec s;
    char err[512];
    const char *text = "[sweep]\nrepeats = 2\nseed = 11\n"
                       "[baseline]\nmodel = tiny, small\nsteps = 1..3\n"
                       "[baseline.fast]\nfast = on\nseed = 5\ntimeout = 3\n";
    CHECK(mt_spec_parse_text("g.ini", text, &s, err, sizeof err) == 0);
    struct mt_plan *plans;
    size_t n;
    CHECK(mt_spec_expand(&s, &reg, 2, 1 << 30, &plans, &n, err, sizeof err) == 0);
    CHECK(n == 2 * 3 * 2 + 2);
    if (n == 14) {
        /* first key slowest, repeats adjacent */
        /* The corpus ($MEMTRADE_CORPUS, set in main) is part of the key: FNV-1a 64 of
         * its bytes and its size. */
        CHECK(strcmp(plans[0].config_key,
                     "baseline?corpus.bytes=24&corpus.hash=d8c268d68ce70af3&fast=false&lr=0.001&"
                     "model=tiny&note=&seed=11&steps=1") == 0);
        CHECK(strcmp(plans[0].corpus_name, corpus_path) == 0);
        CHECK(plans[0].repeat == 0 && plans[1].repeat == 1);
        CHECK(strcmp(plans[0].config_key, plans[1].config_key) == 0);
        CHECK(strstr(plans[2].config_key, "model=tiny") && strstr(plans[2].config_key, "steps=2"));
        CHECK(strstr(plans[6].config_key, "model=small") && strstr(plans[6].config_key, "steps=1"));
        CHECK(plans[0].seed == 11 && plans[12].seed == 5);
        CHECK(plans[12].timeout_s == 3 && plans[0].timeout_s == 0);
        CHECK(strcmp(plans[12].label, "fast") == 0 && plans[0].label == NULL);
        CHECK(plans[13].grid_index == 13);
        CHECK(plans[0].threads == 2);
    }
    for (size_t i = 0; i < n; i++)
        mt_plan_free(&plans[i]);
    free(plans);
    mt_spec_free(&s);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"[sweep]\nname = x\n", "e.ini:1: empty grid: no workload section"},
        {"[sweep]\n\n[baselin]\n", "e.ini:3: unknown workload 'baselin'; did you mean 'baseline'?"},
        {"[baseline]\nstpes = 3\n",
         "e.ini:2: unknown parameter 'stpes' for workload 'baseline'; did you mean 'steps'?"},
        {"[baseline]\nsteps = 1, 5000\n",
         "e.ini:2: parameter 'steps' of workload 'baseline': 5000 is out of range"},
        {"[baseline]\nmodel = tiny\nlr = fast\n",
         "e.ini:3: parameter 'lr' of workload 'baseline': 'fast' is not a number"},
        {"[baseline]\ntimeout = 1, 2\n", "e.ini:2: 'timeout' takes one value"},
        /* One configuration twice: in one list, spelled two ways, or in two sections. */
        {"[baseline]\nsteps = 20, 20\n", "e.ini:2: 'steps' lists the value 20 twice"},
        {"[baseline]\nsteps = 1..3, 2\n", "e.ini:2: 'steps' lists the value 2 twice"},
        {"[baseline]\nlr = 0.1, 1e-1\n", "e.ini:2: 'lr' lists the value 0.1 twice"},
        {"[baseline]\nsteps = 20\n[baseline.b]\nsteps = 20\n",
         "e.ini:3: [baseline.b] repeats a configuration of [baseline] (line 1)"},
        {"[baseline]\nsteps = 20, 30\n\n[baseline.b]\nmodel = tiny\nsteps = 30\n",
         "e.ini:4: [baseline.b] repeats a configuration of [baseline] (line 1)"},
        /* The plugin's check() refuses before anything runs, with the section's line. */
        {"[sweep]\n[baseline]\nfast = on\nsteps = 50, 200\n",
         "e.ini:2: [baseline]: workload 'baseline': fast runs take at most 100 steps, not 200"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(mt_spec_parse_text("e.ini", bad[i].text, &s, err, sizeof err) == 0);
        int rc = mt_spec_expand(&s, &reg, 1, 1, &plans, &n, err, sizeof err);
        CHECK(rc == -1);
        if (rc == -1 && strncmp(err, bad[i].want, strlen(bad[i].want)) != 0) {
            fprintf(stderr, "  got '%s'\n  want '%s'\n", err, bad[i].want);
            failures++;
        }
        mt_spec_free(&s);
    }
}

static void test_shard(void)
{
    size_t i, n;
    CHECK(mt_spec_parse_shard("2/3", &i, &n) == 0 && i == 2 && n == 3);
    CHECK(mt_spec_parse_shard("0/3", &i, &n) == -1);
    CHECK(mt_spec_parse_shard("4/3", &i, &n) == -1);
    CHECK(mt_spec_parse_shard("1", &i, &n) == -1);
}

/* The corpus is part of a run's identity: another text, another config key; a missing
 * one named by the user is refused before anything runs. */
static void test_corpus(void)
{
    struct mt_registry reg = {&plugin, 1};
    struct mt_spec s;
    struct mt_plan *plans;
    size_t n;
    char err[512], other[128], key1[512] = "";
    snprintf(other, sizeof other, "%s.other", corpus_path);
    FILE *f = fopen(other, "w");
    CHECK(f != NULL);
    if (f) fputs("another corpus of the same length!\n", f), fclose(f);
    const char *text = "[baseline]\nsteps = 1\n";
    CHECK(mt_spec_parse_text("c.ini", text, &s, err, sizeof err) == 0);
    CHECK(mt_spec_expand(&s, &reg, 1, 1, &plans, &n, err, sizeof err) == 0 && n == 1);
    if (n == 1) snprintf(key1, sizeof key1, "%s", plans[0].config_key), mt_plan_free(&plans[0]);
    free(plans);
    setenv("MEMTRADE_CORPUS", other, 1);
    CHECK(mt_spec_expand(&s, &reg, 1, 1, &plans, &n, err, sizeof err) == 0 && n == 1);
    if (n == 1) {
        CHECK(strcmp(plans[0].config_key, key1) != 0);
        CHECK(strstr(plans[0].config_key, "corpus.bytes=35&") != NULL);
        mt_plan_free(&plans[0]);
    }
    free(plans);
    setenv("MEMTRADE_CORPUS", "/nonexistent/corpus.txt", 1);
    CHECK(mt_spec_expand(&s, &reg, 1, 1, &plans, &n, err, sizeof err) == -1);
    CHECK(strstr(err, "MEMTRADE_CORPUS: corpus /nonexistent/corpus.txt: No such file") != NULL);
    setenv("MEMTRADE_CORPUS", corpus_path, 1);
    mt_spec_free(&s);
    remove(other);
}

int main(void)
{
    /* A corpus of known bytes, so the config key is exact. */
    snprintf(corpus_path, sizeof corpus_path, "/tmp/mt_test_spec_corpus.%ld", (long)getpid());
    FILE *f = fopen(corpus_path, "w");
    if (!f) return 1;
    fputs("the corpus of test_spec\n", f);
    fclose(f);
    setenv("MEMTRADE_CORPUS", corpus_path, 1);
    test_corpus();
    test_bytes();
    test_distance();
    test_values();
    test_parse_errors();
    test_resolve();
    test_expand();
    test_shard();
    remove(corpus_path);
    return mt_check_status(failures);
}
