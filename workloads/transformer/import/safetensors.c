/* safetensors.c — safetensors reader (validating, mapped) and writer (see safetensors.h). */
#include "safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define MAX_HEADER ((uint64_t)100 << 20) /* the format's own limit: 100 MB of JSON */

static const struct {
    const char *name;
    enum mt_dtype dt;
} st_types[] = {{"F32", MT_DT_F32}, {"F16", MT_DT_F16}, {"BF16", MT_DT_BF16}};

struct range {
    size_t b, e;
    const char *name;
};

static int cmp_range(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    return x->b < y->b ? -1 : x->b > y->b ? 1 : x->e < y->e ? -1 : x->e > y->e;
}

static int json_size(json_t *v, size_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (size_t)json_integer_value(v);
    return 0;
}

/* Parses one tensor entry of the header. */
static int parse_entry(const char *path, const char *name, json_t *v, size_t data_len,
                       struct mt_src_tensor *t, char *err, size_t errlen)
{
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *offs = json_object_get(v, "data_offsets");
    if (!json_is_object(v) || !json_is_string(dt) || !json_is_array(shape) ||
        !json_is_array(offs) || json_array_size(offs) != 2)
        return mt_tf_fail(err, errlen,
                          "%s: tensor '%s' lacks dtype, shape or data_offsets [begin, end]",
                          path, name);
    const char *dts = json_string_value(dt);
    size_t k = 0;
    while (k < sizeof st_types / sizeof st_types[0] && strcmp(dts, st_types[k].name))
        k++;
    if (k == sizeof st_types / sizeof st_types[0])
        return mt_tf_fail(err, errlen,
                          "%s: tensor '%s' has dtype %s; supported: F32, F16, BF16", path, name,
                          dts);
    memset(t, 0, sizeof *t);
    t->dtype = st_types[k].dt;
    t->ndim = json_array_size(shape);
    if (t->ndim > MT_SRC_MAXDIM)
        return mt_tf_fail(err, errlen, "%s: tensor '%s' has %zu dimensions (at most %d)", path,
                          name, t->ndim, MT_SRC_MAXDIM);
    t->n = 1;
    for (size_t i = 0; i < t->ndim; i++) {
        if (json_size(json_array_get(shape, i), &t->dims[i]))
            return mt_tf_fail(err, errlen, "%s: tensor '%s': shape is not non-negative integers",
                              path, name);
        if (t->dims[i] && t->n > SIZE_MAX / 8 / t->dims[i])
            return mt_tf_fail(err, errlen, "%s: tensor '%s': shape too large", path, name);
        t->n *= t->dims[i];
    }
    size_t b, e;
    if (json_size(json_array_get(offs, 0), &b) || json_size(json_array_get(offs, 1), &e) || e < b)
        return mt_tf_fail(err, errlen, "%s: tensor '%s': data_offsets are not [begin, end]",
                          path, name);
    if (e > data_len)
        return mt_tf_fail(err, errlen,
                          "%s: tensor '%s': data_offsets [%zu, %zu) run past the end of the "
                          "data (%zu bytes; truncated file?)",
                          path, name, b, e, data_len);
    t->nbytes = mt_dtype_bytes(t->dtype, t->n);
    if (e - b != t->nbytes)
        return mt_tf_fail(err, errlen,
                          "%s: tensor '%s': data_offsets span %zu bytes, %s x %zu elements "
                          "is %zu",
                          path, name, e - b, dts, t->n, t->nbytes);
    return 0;
}

int mt_st_read(struct mt_src *src, const char *path, char *err, size_t errlen)
{
    const unsigned char *base;
    size_t len;
    if (mt_src_map_file(src, path, &base, &len, err, errlen)) return -1;
    if (len < 8)
        return mt_tf_fail(err, errlen,
                          "%s: %zu bytes, too short for the 8-byte header length "
                          "(not a safetensors file, or truncated)",
                          path, len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | base[i];
    if (hl > len - 8)
        return mt_tf_fail(err, errlen,
                          "%s: header length %llu runs past the end of the file (%zu bytes)",
                          path, (unsigned long long)hl, len);
    if (hl > MAX_HEADER)
        return mt_tf_fail(err, errlen, "%s: header length %llu above the format's 100 MB", path,
                          (unsigned long long)hl);
    json_error_t je;
    json_t *h = json_loadb((const char *)base + 8, (size_t)hl, JSON_REJECT_DUPLICATES, &je);
    if (!h) return mt_tf_fail(err, errlen, "%s: header is not JSON: %s", path, je.text);
    int rc = 0;
    const char *name;
    json_t *v;
    size_t data_len = len - 8 - (size_t)hl, nr = 0;
    struct range *r = NULL;
    if (!json_is_object(h)) {
        rc = mt_tf_fail(err, errlen, "%s: header is not a JSON object", path);
        goto out;
    }
    r = malloc((json_object_size(h) + 1) * sizeof *r);
    if (!r) {
        rc = mt_tf_fail(err, errlen, "%s: out of memory", path);
        goto out;
    }
    json_object_foreach(h, name, v)
    {
        if (!strcmp(name, "__metadata__")) continue;
        struct mt_src_tensor t;
        if ((rc = parse_entry(path, name, v, data_len, &t, err, errlen))) goto out;
        size_t b = (size_t)json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 0));
        t.name = (char *)name;
        t.data = base + 8 + hl + b;
        t.file = src->maps[src->n_maps - 1].path;
        if ((rc = mt_src_add(src, &t, err, errlen))) goto out;
        r[nr++] = (struct range){b, b + t.nbytes, src->t[src->n - 1].name};
    }
    qsort(r, nr, sizeof *r, cmp_range);
    size_t at = 0;
    for (size_t i = 0; i < nr; i++) {
        if (r[i].b < at) {
            rc = mt_tf_fail(err, errlen, "%s: tensors '%s' and '%s' overlap (bytes [%zu, %zu))",
                            path, r[i - 1].name, r[i].name, r[i].b, at);
            goto out;
        }
        if (r[i].b > at) {
            rc = mt_tf_fail(err, errlen, "%s: %zu unindexed bytes before tensor '%s' (a hole)",
                            path, r[i].b - at, r[i].name);
            goto out;
        }
        at = r[i].e;
    }
    if (at != data_len)
        rc = mt_tf_fail(err, errlen, "%s: %zu bytes after the last tensor (the buffer holds %zu)",
                        path, data_len - at, data_len);
out:
    free(r);
    json_decref(h);
    return rc;
}

/* Whether a shard name from an index stays inside the folder. */
static int plain_name(const char *s)
{
    return s[0] && s[0] != '/' && !strstr(s, "..");
}

int mt_st_read_folder(struct mt_src *src, const char *dir, char *err, size_t errlen)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (stat(path, &sb)) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (stat(path, &sb))
            return mt_tf_fail(err, errlen,
                              "%s: no model.safetensors or model.safetensors.index.json "
                              "(other weight files, *.bin or *.pt, are not read)",
                              dir);
        return mt_st_read(src, path, err, errlen);
    }
    json_error_t je;
    json_t *ix = json_load_file(path, JSON_REJECT_DUPLICATES, &je), *wm;
    if (!ix) return mt_tf_fail(err, errlen, "%s: not JSON: %s (line %d)", path, je.text, je.line);
    wm = json_object_get(ix, "weight_map");
    int rc = 0;
    const char *name;
    json_t *v;
    if (!json_is_object(wm)) {
        rc = mt_tf_fail(err, errlen, "%s: no weight_map object", path);
        goto out;
    }
    /* each shard once, in the order the map first names it */
    json_object_foreach(wm, name, v)
    {
        if (!json_is_string(v) || !plain_name(json_string_value(v))) {
            rc = mt_tf_fail(err, errlen, "%s: tensor '%s' maps to a bad file name", path, name);
            goto out;
        }
        char shard[4096];
        snprintf(shard, sizeof shard, "%s/%s", dir, json_string_value(v));
        int seen = 0;
        for (size_t i = 0; i < src->n_maps && !seen; i++)
            seen = !strcmp(src->maps[i].path, shard);
        if (!seen && (rc = mt_st_read(src, shard, err, errlen))) goto out;
    }
    for (size_t i = 0; i < src->n; i++) {
        json_t *f = json_object_get(wm, src->t[i].name);
        const char *base = strrchr(src->t[i].file, '/');
        base = base ? base + 1 : src->t[i].file;
        if (!f || strcmp(json_string_value(f), base)) {
            rc = mt_tf_fail(err, errlen, "%s: tensor '%s' is in %s, the weight_map says %s", path,
                            src->t[i].name, base, f ? json_string_value(f) : "nothing");
            goto out;
        }
    }
    if (json_object_size(wm) != src->n)
        rc = mt_tf_fail(err, errlen, "%s: weight_map names %zu tensors, the shards hold %zu", path,
                        json_object_size(wm), src->n);
out:
    json_decref(ix);
    return rc;
}

int mt_st_write(const char *path, const struct mt_out_list *l, char *err, size_t errlen)
{
    json_t *h = json_object();
    size_t off = 0;
    int rc = 0;
    char *hs = NULL, tmp[4096];
    unsigned char *buf = NULL;
    FILE *f = NULL;
    if (!h) return mt_tf_fail(err, errlen, "out of memory");
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    for (size_t i = 0; i < l->n; i++) {
        const struct mt_out_tensor *t = &l->t[i];
        if (t->dtype != MT_DT_F32 && t->dtype != MT_DT_F16 && t->dtype != MT_DT_BF16) {
            rc = mt_tf_fail(err, errlen, "%s: safetensors holds F32, F16 or BF16, not %s", path,
                            mt_dtype_name(t->dtype));
            goto out;
        }
        json_t *shape = json_array();
        for (size_t d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)t->dims[d]));
        size_t nb = mt_dtype_bytes(t->dtype, mt_out_elems(t));
        json_object_set_new(h, t->name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", mt_dtype_name(t->dtype),
                                      "shape", shape, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + nb)));
        off += nb;
    }
    hs = json_dumps(h, JSON_COMPACT);
    if (!hs) {
        rc = mt_tf_fail(err, errlen, "out of memory");
        goto out;
    }
    size_t hl = strlen(hs), pad = (64 - (8 + hl) % 64) % 64;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "wb");
    if (!f) {
        rc = mt_tf_fail(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)(hl + pad) >> (8 * i));
    int bad = fwrite(len8, 1, 8, f) != 8 || fwrite(hs, 1, hl, f) != hl;
    for (size_t i = 0; i < pad; i++)
        bad |= fputc(' ', f) == EOF;
    size_t cap = 0;
    for (size_t i = 0; i < l->n && !bad; i++)
        bad |= mt_out_fwrite(f, &l->t[i], &buf, &cap) == (size_t)-1;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    f = NULL;
    if (bad || rename(tmp, path)) {
        unlink(tmp);
        rc = mt_tf_fail(err, errlen, "%s: write failed: %s", path, strerror(errno));
    }
out:
    free(buf);
    free(hs);
    json_decref(h);
    return rc;
}
