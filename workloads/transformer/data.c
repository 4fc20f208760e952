/* data.c — corpus loading and batch sampling (see data.h). */
#include "data.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <memtrade/grow.h>
#include <memtrade/memcat.h>

#include "util.h"

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Appends the file at `path` (of size st_size) to c->bytes at offset c->n. */
static int append_file(struct mt_corpus *c, const char *path, size_t size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return mt_tf_fail(err, errlen, "corpus file %s: %s", path, strerror(errno));
    size_t got = fread(c->bytes + c->n, 1, size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != size)
        return mt_tf_fail(err, errlen, "corpus file %s: read error (%zu of %zu bytes)", path, got,
                          size);
    c->n += size;
    return 0;
}

/* Lists the plain files of a folder, sorted; *names is malloc'ed (free each + array). */
static int list_dir(const char *dir, char ***names, size_t *count, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) return mt_tf_fail(err, errlen, "corpus folder %s: %s", dir, strerror(errno));
    size_t n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || ends_with(e->d_name, ".dat") || ends_with(e->d_name, ".u8"))
            continue;
        char full[4096];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        if (lstat(full, &st) || !S_ISREG(st.st_mode)) /* symlinks and folders are skipped */
            continue;
        if (mt_grow(&v, &cap, n + 1, sizeof *v, 64)) {
            rc = mt_tf_fail(err, errlen, "out of memory listing %s", dir);
            break;
        }
        if (!(v[n] = strdup(full))) {
            rc = mt_tf_fail(err, errlen, "out of memory listing %s", dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (n) qsort(v, n, sizeof *v, name_cmp);
    *names = v;
    *count = n;
    return rc;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The files of the corpus at `path` (a file, or a folder's plain files sorted by name),
 * the one definition both the loader and the fingerprint read. */
static int corpus_files(const char *path, char ***names, size_t *nfiles, char *err, size_t errlen)
{
    struct stat st;
    *names = NULL;
    *nfiles = 0;
    if (stat(path, &st)) return mt_tf_fail(err, errlen, "corpus %s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if (list_dir(path, names, nfiles, err, errlen)) {
            free_names(*names, *nfiles);
            *names = NULL;
            *nfiles = 0;
            return -1;
        }
        return 0;
    }
    if (!(*names = malloc(sizeof **names)) || !((*names)[0] = strdup(path))) {
        free(*names);
        *names = NULL;
        return mt_tf_fail(err, errlen, "out of memory");
    }
    *nfiles = 1;
    return 0;
}

int mt_corpus_fingerprint(const char *path, uint64_t *hash, size_t *bytes, size_t *files, char *err,
                          size_t errlen)
{
    if (!path || !path[0]) path = MT_CORPUS_DEFAULT_DIR;
    char **names;
    size_t nfiles;
    if (corpus_files(path, &names, &nfiles, err, errlen)) return -1;
    uint64_t h = MT_FNV64_INIT;
    size_t total = 0;
    int rc = 0;
    unsigned char buf[1 << 16];
    for (size_t i = 0; !rc && i < nfiles; i++) {
        FILE *f = fopen(names[i], "rb");
        if (!f) {
            rc = mt_tf_fail(err, errlen, "corpus file %s: %s", names[i], strerror(errno));
            break;
        }
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
            h = mt_fnv64(h, buf, got);
            total += got;
        }
        if (ferror(f))
            rc = mt_tf_fail(err, errlen, "corpus file %s: read error: %s", names[i],
                            strerror(errno));
        fclose(f);
    }
    free_names(names, nfiles);
    if (rc) return -1;
    *hash = h;
    *bytes = total;
    *files = nfiles;
    return 0;
}

int mt_corpus_load(struct mt_corpus *c, const char *path, size_t min_window, char *err,
                   size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (!path || !path[0]) path = MT_CORPUS_DEFAULT_DIR;
    snprintf(c->source, sizeof c->source, "%s", path);
    c->identity = MT_FNV64_INIT;
    char **names = NULL;
    size_t nfiles = 0;
    if (corpus_files(path, &names, &nfiles, err, errlen)) return -1;
    size_t total = 0;
    struct stat *sts = calloc(nfiles ? nfiles : 1, sizeof *sts);
    int rc = sts ? 0 : mt_tf_fail(err, errlen, "out of memory");
    for (size_t i = 0; !rc && i < nfiles; i++) {
        if (stat(names[i], &sts[i]))
            rc = mt_tf_fail(err, errlen, "corpus file %s: %s", names[i], strerror(errno));
        else
            total += (size_t)sts[i].st_size;
    }
    if (!rc) {
        int prev = mt_memcat_set(MT_MEM_DATA);
        c->bytes = malloc(total ? total : 1);
        mt_memcat_set(prev);
        if (!c->bytes) rc = mt_tf_fail(err, errlen, "out of memory for a %zu-byte corpus", total);
    }
    for (size_t i = 0; !rc && i < nfiles; i++) {
        rc = append_file(c, names[i], (size_t)sts[i].st_size, err, errlen);
    }
    if (!rc) c->identity = mt_fnv64(c->identity, c->bytes, c->n); /* = mt_corpus_fingerprint */
    free(sts);
    free_names(names, nfiles);
    c->n_files = nfiles;
    if (!rc) {
        c->n_train = c->n / 10 * 9 + (c->n % 10) * 9 / 10;
        c->n_val = c->n - c->n_train;
        c->train = c->bytes;
        c->val = c->bytes + c->n_train;
        c->train_tokens = mt_tokens_of_bytes(c->train, c->n_train);
        c->val_tokens = mt_tokens_of_bytes(c->val, c->n_val);
        snprintf(c->tokenizer, sizeof c->tokenizer, "bytes");
        if (c->n_train < min_window + 1 || c->n_val < min_window + 1)
            rc = mt_tf_fail(err, errlen,
                            "corpus %s too short: %zu bytes (train %zu, validation %zu) but "
                            "each split needs at least %zu",
                            path, c->n, c->n_train, c->n_val, min_window + 1);
    }
    if (rc) mt_corpus_free(c);
    return rc;
}

int mt_corpus_tokenize(struct mt_corpus *c, const struct mt_tokenizer *t, size_t min_window,
                       char *err, size_t errlen)
{
    if (mt_tok_kind(t) == MT_TOK_BYTES) return 0;
    int32_t *tr = NULL, *va = NULL;
    size_t ntr = 0, nva = 0, V = mt_tok_vocab(t);
    if (mt_tok_encode(t, c->train, c->n_train, &tr, &ntr, err, errlen) ||
        mt_tok_encode(t, c->val, c->n_val, &va, &nva, err, errlen)) {
        free(tr);
        return -1;
    }
    int rc = 0;
    if (ntr < min_window + 1 || nva < min_window + 1)
        rc = mt_tf_fail(err, errlen,
                        "corpus %s too short for %s: %zu tokens (train %zu, validation %zu) but "
                        "each split needs at least %zu",
                        c->source, mt_tok_kind_name(t), ntr + nva, ntr, nva, min_window + 1);
    int prev = mt_memcat_set(MT_MEM_DATA);
    int32_t *ids = rc ? NULL : malloc((ntr + nva) * sizeof *ids);
    uint32_t *pb = rc ? NULL : malloc(V * sizeof *pb);
    mt_memcat_set(prev);
    if (!rc && (!ids || !pb)) rc = mt_tf_fail(err, errlen, "out of memory for %zu token ids", ntr + nva);
    if (!rc) {
        memcpy(ids, tr, ntr * sizeof *ids);
        memcpy(ids + ntr, va, nva * sizeof *ids);
        memcpy(pb, mt_tok_piece_bytes(t), V * sizeof *pb);
        free(c->ids);
        free(c->piece_bytes);
        c->ids = ids;
        c->piece_bytes = pb;
        c->train_tokens = (struct mt_tokens){NULL, ids, ntr, pb, V};
        c->val_tokens = (struct mt_tokens){NULL, ids + ntr, nva, pb, V};
        c->tok_identity = mt_tok_identity(t);
        snprintf(c->tokenizer, sizeof c->tokenizer, "%s", mt_tok_kind_name(t));
    } else {
        free(ids);
        free(pb);
    }
    free(tr);
    free(va);
    return rc;
}

void mt_corpus_free(struct mt_corpus *c)
{
    free(c->ids);
    free(c->piece_bytes);
    free(c->bytes);
    memset(c, 0, sizeof *c);
}

void mt_batch_sample(const uint8_t *data, size_t n, size_t B, size_t T, struct mt_rng *rng,
                     int *inputs, int *targets)
{
    struct mt_tokens s = mt_tokens_of_bytes(data, n);
    mt_batch_sample_tokens(&s, B, T, rng, inputs, targets);
}

void mt_batch_sample_tokens(const struct mt_tokens *data, size_t B, size_t T, struct mt_rng *rng,
                            int *inputs, int *targets)
{
    for (size_t b = 0; b < B; b++) {
        size_t s = (size_t)mt_rng_below(rng, data->n - T);
        for (size_t t = 0; t < T; t++) {
            inputs[b * T + t] = mt_tokens_at(data, s + t);
            targets[b * T + t] = mt_tokens_at(data, s + t + 1);
        }
    }
}
