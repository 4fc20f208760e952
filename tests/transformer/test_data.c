/* test_data.c — corpus loading, the split, evaluation and sampling.
 *
 * What it is for: the default fortunes corpus is the sorted plain files (no .dat, no
 * .u8, no symlinks) split 90/10; missing, empty and too-short corpora are refused with a
 * message; evaluation of a model with zero weights (uniform predictions) gives exactly
 * ln 256 nats = 8 bits per byte over every target, including a short tail window and a
 * prefix; greedy generation is deterministic and seeded sampling repeats with its seed.
 * What it is not for: training quality (that is a benchmark, not a test).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data.h"
#include "eval.h"
#include "tf_test.h"

static char err[512];

static size_t count_plain(const char *dir, size_t *bytes)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    *bytes = 0;
    while (d && (e = readdir(d))) {
        char p[4096];
        struct stat st;
        size_t k = strlen(e->d_name);
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || (k > 4 && !strcmp(e->d_name + k - 4, ".dat")) ||
            (k > 3 && !strcmp(e->d_name + k - 3, ".u8")) || lstat(p, &st) || !S_ISREG(st.st_mode))
            continue;
        n++;
        *bytes += (size_t)st.st_size;
    }
    if (d) closedir(d);
    return n;
}

int main(void)
{
    struct mt_corpus c;
    size_t bytes, files = count_plain(MT_CORPUS_DEFAULT_DIR, &bytes);
    CHECK(files > 0); /* the fortunes package is a build dependency */
    CHECK_OK(mt_corpus_load(&c, NULL, 128, err, sizeof err), err);
    printf("default corpus: %zu files, %zu bytes (train %zu, val %zu)\n", c.n_files, c.n, c.n_train,
           c.n_val);
    CHECK(c.n_files == files && c.n == bytes);
    CHECK(c.n_train + c.n_val == c.n && c.n_train == c.n - c.n_val);
    CHECK(c.n_val >= c.n / 10 && c.n_val <= c.n / 10 + 1);
    uint64_t id = c.identity;
    mt_corpus_free(&c);
    CHECK_OK(mt_corpus_load(&c, NULL, 128, err, sizeof err), err);
    CHECK(c.identity == id);
    mt_corpus_free(&c);

    CHECK(mt_corpus_load(&c, "/nonexistent/corpus.txt", 8, err, sizeof err) != 0);
    printf("missing: %s\n", err);
    CHECK(strstr(err, "/nonexistent/corpus.txt") != NULL);
    char dir[256], file[300];
    snprintf(dir, sizeof dir, "/tmp/mt_test_data_%ld", (long)getpid());
    CHECK(mkdir(dir, 0700) == 0);
    CHECK(mt_corpus_load(&c, dir, 8, err, sizeof err) != 0); /* empty folder */
    printf("empty folder: %s\n", err);
    snprintf(file, sizeof file, "%s/short.txt", dir);
    FILE *f = fopen(file, "w");
    fputs("0123456789abcdefghij", f);
    fclose(f);
    CHECK(mt_corpus_load(&c, file, 8, err, sizeof err) != 0);
    printf("too short: %s\n", err);
    CHECK(strstr(err, "too short") != NULL);
    CHECK_OK(mt_corpus_load(&c, file, 1, err, sizeof err), err); /* 18 + 2 bytes is enough */
    CHECK(c.n == 20 && c.n_train == 18 && c.n_val == 2 && c.val[0] == 'i');
    mt_corpus_free(&c);
    unlink(file);
    rmdir(dir);

    /* Evaluation: zero weights predict uniformly, so every byte costs ln 256. */
    struct mt_gpt_config cfg;
    struct mt_gpt *m = NULL;
    CHECK_OK(mt_gpt_config_preset(&cfg, "tiny", err, sizeof err), err);
    CHECK_OK(mt_gpt_create(&m, &cfg, MT_GPT_INFER, 2, 16, err, sizeof err), err);
    uint8_t data[100];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 37);
    struct mt_eval_result r;
    CHECK_OK(mt_gpt_eval(m, data, sizeof data, 0, &r, err, sizeof err), err);
    printf("uniform eval: loss %.6f bpb %.6f ppl %.3f top1 %.3f over %zu tokens\n", r.loss, r.bpb,
           r.ppl, r.top1, r.tokens);
    CHECK(r.tokens == 99 && fabs(r.bpb - 8.0) < 1e-5 && fabs(r.ppl - 256.0) < 1e-2);
    CHECK_OK(mt_gpt_eval(m, data, sizeof data, 40, &r, err, sizeof err), err);
    CHECK(r.tokens == 40);
    CHECK(mt_gpt_eval(m, data, 1, 0, &r, err, sizeof err) != 0);

    /* Generation from a trained-looking (random) model. */
    mt_gpt_init(m, 9);
    int prompt[3] = {'T', 'h', 'e'}, o1[20], o2[20], o3[20];
    size_t n1, n2, n3;
    CHECK_OK(mt_gpt_generate(m, prompt, 3, 20, 0.0f, 1, o1, &n1, err, sizeof err), err);
    CHECK_OK(mt_gpt_generate(m, prompt, 3, 20, 0.0f, 2, o2, &n2, err, sizeof err), err);
    CHECK(n1 == 20 && n2 == 20 && memcmp(o1, o2, sizeof o1) == 0);
    CHECK_OK(mt_gpt_generate(m, prompt, 3, 20, 1.0f, 7, o1, &n1, err, sizeof err), err);
    CHECK_OK(mt_gpt_generate(m, prompt, 3, 20, 1.0f, 7, o2, &n2, err, sizeof err), err);
    CHECK_OK(mt_gpt_generate(m, prompt, 3, 20, 1.0f, 8, o3, &n3, err, sizeof err), err);
    CHECK(memcmp(o1, o2, sizeof o1) == 0 && memcmp(o1, o3, sizeof o1) != 0);
    int *o4 = malloc(200 * sizeof *o4); /* the 64-position context holds 3 + 61 + 1 picks */
    CHECK_OK(mt_gpt_generate(m, prompt, 3, 200, 1.0f, 7, o4, &n3, err, sizeof err), err);
    CHECK(n3 == 62);
    free(o4);
    mt_gpt_free(m);
    printf("ok\n");
    return 0;
}
