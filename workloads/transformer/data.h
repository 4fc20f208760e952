/* data.h — the text corpus as bytes: loading, the train/validation split, batches.
 *
 * What it is for: any text file (or a folder of them) read as raw bytes (token id = byte
 * value), split 90 % train / 10 % validation, and seeded random batches of windows.
 * The default corpus is Debian's fortunes: the plain files of /usr/share/games/fortunes
 * sorted by name, without the .dat indexes, the .u8 variants and symlinks.
 * What it is not for: tokenization beyond bytes, or evaluation (eval.h).
 */
#ifndef MT_TRANSFORMER_DATA_H
#define MT_TRANSFORMER_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MT_CORPUS_DEFAULT_DIR "/usr/share/games/fortunes"

struct mt_corpus {
    uint8_t *bytes;             /* the whole text (allocated under MT_MEM_DATA) */
    size_t n;                   /* its length */
    const uint8_t *train, *val; /* views into bytes: first 90 %, last 10 % */
    size_t n_train, n_val;
    size_t n_files;    /* files concatenated (1 for a plain file) */
    uint64_t identity; /* FNV-1a 64 of the bytes (mt_corpus_fingerprint): a cache key */
    char source[512];  /* the path it came from */
};

/* Loads `path` (a file, or a folder read as described above; NULL or "" = the default
 * folder) into *c. Both splits must hold at least min_window + 1 bytes so a window of
 * min_window tokens with its targets fits. Returns 0, or -1 with a message naming the
 * path for a missing, unreadable, empty or too-short corpus; *c is then empty. Free with
 * mt_corpus_free. */
int mt_corpus_load(struct mt_corpus *c, const char *path, size_t min_window, char *err,
                   size_t errlen);
void mt_corpus_free(struct mt_corpus *c);

/* Contract: the identity of the corpus at `path` as mt_corpus_load reads it (same files,
 * same order; NULL or "" = the default folder) without holding it in memory: FNV-1a 64 of
 * the concatenated bytes (equal to the loaded corpus's `identity`), its size and file
 * count. Used by the harness to make the corpus part of a run's configuration. Returns 0,
 * or -1 with a message naming the path (missing, unreadable). Thread-safe. */
int mt_corpus_fingerprint(const char *path, uint64_t *hash, size_t *bytes, size_t *files, char *err,
                          size_t errlen);

/* Fills inputs/targets (B x T each) with B windows at uniform random offsets of
 * data[0, n) (n >= T + 1): inputs = data[s, s+T), targets = data[s+1, s+T+1). */
void mt_batch_sample(const uint8_t *data, size_t n, size_t B, size_t T, struct mt_rng *rng,
                     int *inputs, int *targets);

#ifdef __cplusplus
}
#endif
#endif
