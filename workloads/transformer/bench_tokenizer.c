/* bench_tokenizer.c — encode speed of a tokenizer on a corpus: mt-bench-tokenizer.
 *
 * Usage: mt-bench-tokenizer [--tokenizer SPEC] [--corpus PATH] [--reps N]
 * SPEC as mt_tok_load takes it ("bytes", a tokenizer.json, a model folder); the corpus as
 * mt_corpus_load reads it (default: the fortunes). Prints each repetition and the median
 * of N encodes of the whole text (tokens/s, MB/s), and checks decode(encode(x)) == x.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "data.h"
#include "tokenizer.h"

int main(int argc, char **argv)
{
    const char *spec = "bytes", *corpus = NULL;
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc)
            spec = argv[++i];
        else if (!strcmp(argv[i], "--corpus") && i + 1 < argc)
            corpus = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: mt-bench-tokenizer [--tokenizer SPEC] [--corpus PATH] [--reps N]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 100) reps = 3;
    char err[1024];
    struct mt_tokenizer *t;
    struct mt_corpus c;
    if (mt_tok_load(&t, spec, err, sizeof err) || mt_corpus_load(&c, corpus, 1, err, sizeof err)) {
        fprintf(stderr, "mt-bench-tokenizer: %s\n", err);
        return 1;
    }
    double s[100];
    size_t n_ids = 0;
    int32_t *ids = NULL;
    for (int r = 0; r < reps; r++) {
        free(ids);
        double t0 = mt_bench_now();
        if (mt_tok_encode(t, c.bytes, c.n, &ids, &n_ids, err, sizeof err)) {
            fprintf(stderr, "mt-bench-tokenizer: %s\n", err);
            return 1;
        }
        s[r] = mt_bench_now() - t0;
        printf("rep %d: %zu bytes -> %zu tokens in %.3f s\n", r, c.n, n_ids, s[r]);
    }
    size_t len = mt_tok_decode(t, ids, n_ids, NULL, 0);
    uint8_t *back = malloc(len ? len : 1);
    mt_tok_decode(t, ids, n_ids, back, len);
    int same = len == c.n && !memcmp(back, c.bytes, c.n);
    qsort(s, (size_t)reps, sizeof *s, mt_bench_cmp_double);
    double med = s[reps / 2];
    printf("tokenizer %s (%s, vocab %zu) on %s (%zu bytes): %zu tokens (%.3f bytes/token), median "
           "%.3f s = %.0f tokens/s, %.2f MB/s; round trip %s\n",
           spec, mt_tok_kind_name(t), mt_tok_vocab(t), c.source, c.n, n_ids,
           (double)c.n / (double)(n_ids ? n_ids : 1), med, (double)n_ids / med, c.n / med / 1e6,
           same ? "exact" : "DIFFERS");
    free(back);
    free(ids);
    mt_corpus_free(&c);
    mt_tok_free(t);
    return same ? 0 : 1;
}
