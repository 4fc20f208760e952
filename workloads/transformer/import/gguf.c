/* gguf.c — GGUF v3 reader (validating, mapped) and writer (see gguf.h). */
#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q8_0 = 8, GGML_BF16 = 30 };

const char *mt_gguf_type_name(uint32_t t)
{
    static const char *const n[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                    "bool", "string", "array", "u64", "i64", "f64"};
    return t < MT_GGUF_TYPE_COUNT ? n[t] : "unknown";
}

const char *mt_gguf_ggml_type_name(uint32_t t)
{
    static const char *const n[] = {"F32",    "F16",     "Q4_0",   "Q4_1",   "Q4_2",  "Q4_3",
                                    "Q5_0",   "Q5_1",    "Q8_0",   "Q8_1",   "Q2_K",  "Q3_K",
                                    "Q4_K",   "Q5_K",    "Q6_K",   "Q8_K",   "IQ2_XXS", "IQ2_XS",
                                    "IQ3_XXS", "IQ1_S",  "IQ4_NL", "IQ3_S",  "IQ2_S", "IQ4_XS",
                                    "I8",     "I16",     "I32",    "I64",    "F64",   "IQ1_M",
                                    "BF16"};
    return t < sizeof n / sizeof n[0] ? n[t] : "unknown";
}

static int ggml_dtype(uint32_t t, enum mt_dtype *dt)
{
    switch (t) {
    case GGML_F32: *dt = MT_DT_F32; return 0;
    case GGML_F16: *dt = MT_DT_F16; return 0;
    case GGML_BF16: *dt = MT_DT_BF16; return 0;
    case GGML_Q8_0: *dt = MT_DT_Q8_0; return 0;
    case GGML_Q4_0: *dt = MT_DT_Q4_0; return 0;
    default: return -1;
    }
}

static uint32_t dtype_ggml(enum mt_dtype dt)
{
    static const uint32_t m[] = {GGML_F32, GGML_F16, GGML_BF16, GGML_Q8_0, GGML_Q4_0};
    return m[dt];
}

/* ---------------------------------------------------------------- reading */

struct cur {
    const unsigned char *p, *end, *base;
    const char *path;
    char *err;
    size_t errlen;
};

static int need(struct cur *c, size_t n, const char *what)
{
    if ((size_t)(c->end - c->p) < n)
        return mt_tf_fail(c->err, c->errlen,
                          "%s: truncated: %s needs %zu bytes at offset %zu, the file has %zu",
                          c->path, what, n, (size_t)(c->p - c->base), (size_t)(c->end - c->base));
    return 0;
}

static uint64_t le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

static int get_u32(struct cur *c, uint32_t *v, const char *what)
{
    if (need(c, 4, what)) return -1;
    *v = (uint32_t)le(c->p, 4);
    c->p += 4;
    return 0;
}

static int get_u64(struct cur *c, uint64_t *v, const char *what)
{
    if (need(c, 8, what)) return -1;
    *v = le(c->p, 8);
    c->p += 8;
    return 0;
}

/* A string: its bytes stay in the mapping. */
static int get_str(struct cur *c, const unsigned char **s, size_t *n, const char *what)
{
    uint64_t len;
    if (get_u64(c, &len, what) || need(c, len, what)) return -1;
    *s = c->p, *n = (size_t)len;
    c->p += len;
    return 0;
}

static size_t scalar_size(uint32_t t)
{
    static const unsigned char sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < MT_GGUF_TYPE_COUNT ? sz[t] : 0;
}

/* Skips one value of type t (arrays of arrays allowed, 4 deep). */
static int skip_value(struct cur *c, uint32_t t, int depth, const char *key)
{
    if (t == MT_GGUF_STRING) {
        const unsigned char *s;
        size_t n;
        return get_str(c, &s, &n, key);
    }
    if (t == MT_GGUF_ARRAY) {
        uint32_t et;
        uint64_t n;
        if (depth > 4)
            return mt_tf_fail(c->err, c->errlen, "%s: key '%s': arrays nested too deep", c->path,
                              key);
        if (get_u32(c, &et, key) || get_u64(c, &n, key)) return -1;
        if (et >= MT_GGUF_TYPE_COUNT)
            return mt_tf_fail(c->err, c->errlen, "%s: key '%s': array of unknown type %u",
                              c->path, key, et);
        if (scalar_size(et)) {
            if (n > (uint64_t)(c->end - c->p) / scalar_size(et))
                return need(c, SIZE_MAX, key);
            c->p += n * scalar_size(et);
            return 0;
        }
        for (uint64_t i = 0; i < n; i++)
            if (skip_value(c, et, depth + 1, key)) return -1;
        return 0;
    }
    if (!scalar_size(t))
        return mt_tf_fail(c->err, c->errlen, "%s: key '%s' has unknown value type %u", c->path,
                          key, t);
    if (need(c, scalar_size(t), key)) return -1;
    c->p += scalar_size(t);
    return 0;
}

struct range {
    size_t b, e;
    const char *name;
};

static int cmp_range(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    return x->b < y->b ? -1 : x->b > y->b;
}

int mt_gguf_read(struct mt_src *src, struct mt_gguf *g, const char *path, char *err,
                 size_t errlen)
{
    const unsigned char *base;
    size_t len;
    memset(g, 0, sizeof *g);
    snprintf(g->path, sizeof g->path, "%s", path);
    if (mt_src_map_file(src, path, &base, &len, err, errlen)) return -1;
    struct cur c = {base, base + len, base, path, err, errlen};
    uint32_t magic, version;
    uint64_t n_t, n_kv;
    if (need(&c, 4, "the magic")) return -1;
    if (memcmp(base, "GGUF", 4))
        return mt_tf_fail(err, errlen, "%s: not a GGUF file (magic %02x %02x %02x %02x)", path,
                          base[0], base[1], base[2], base[3]);
    if (get_u32(&c, &magic, "the magic") || get_u32(&c, &version, "the version")) return -1;
    if (version != 3)
        return mt_tf_fail(err, errlen, "%s: GGUF version %u; this build reads version 3", path,
                          version);
    if (get_u64(&c, &n_t, "the tensor count") || get_u64(&c, &n_kv, "the metadata count"))
        return -1;
    if (n_kv > len / 13 || n_t > len / 24) /* the smallest entry of each */
        return mt_tf_fail(err, errlen, "%s: %llu metadata entries and %llu tensors cannot fit "
                          "in %zu bytes (corrupt counts)", path, (unsigned long long)n_kv,
                          (unsigned long long)n_t, len);
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    if (!g->kv) return mt_tf_fail(err, errlen, "%s: out of memory", path);
    g->alignment = 32;
    for (uint64_t i = 0; i < n_kv; i++) {
        const unsigned char *k;
        size_t kn;
        uint32_t t;
        if (get_str(&c, &k, &kn, "a metadata key") || get_u32(&c, &t, "a metadata type")) return -1;
        struct mt_gguf_kv *e = &g->kv[g->n_kv];
        e->key = strndup((const char *)k, kn);
        if (!e->key) return mt_tf_fail(err, errlen, "%s: out of memory", path);
        g->n_kv++;
        if (t >= MT_GGUF_TYPE_COUNT)
            return mt_tf_fail(err, errlen, "%s: key '%s' has unknown value type %u", path, e->key,
                              t);
        e->type = (enum mt_gguf_type)t;
        if (t == MT_GGUF_ARRAY) {
            if (need(&c, 12, e->key)) return -1;
            e->arr_type = (enum mt_gguf_type)le(c.p, 4);
            e->arr_n = le(c.p + 4, 8);
            e->val = c.p + 12;
        } else {
            e->val = c.p;
        }
        if (skip_value(&c, t, 0, e->key)) return -1;
        for (size_t j = 0; j + 1 < g->n_kv; j++)
            if (!strcmp(g->kv[j].key, e->key))
                return mt_tf_fail(err, errlen, "%s: key '%s' appears twice", path, e->key);
    }
    const struct mt_gguf_kv *al = mt_gguf_find(g, "general.alignment");
    if (al) {
        uint64_t a;
        if (mt_gguf_get_u64(g, "general.alignment", &a) || !a || (a & (a - 1)) || a > 65536)
            return mt_tf_fail(err, errlen,
                              "%s: general.alignment must be a power of two up to 65536", path);
        g->alignment = (size_t)a;
    }
    struct range *r = calloc(n_t ? n_t : 1, sizeof *r);
    uint64_t *offs = calloc(n_t ? n_t : 1, sizeof *offs);
    size_t first = src->n;
    int rc = 0;
    if (!r || !offs) {
        rc = mt_tf_fail(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (uint64_t i = 0; i < n_t && !rc; i++) {
        const unsigned char *s;
        size_t sn;
        uint32_t nd, gt;
        char name[256];
        struct mt_src_tensor t = {0};
        if ((rc = get_str(&c, &s, &sn, "a tensor name"))) break;
        snprintf(name, sizeof name, "%.*s", (int)(sn < 255 ? sn : 255), (const char *)s);
        if ((rc = get_u32(&c, &nd, name))) break;
        if (nd < 1 || nd > MT_SRC_MAXDIM) {
            rc = mt_tf_fail(err, errlen, "%s: tensor '%s' has %u dimensions (1..%d)", path, name,
                            nd, MT_SRC_MAXDIM);
            break;
        }
        t.ndim = nd;
        t.n = 1;
        for (uint32_t d = 0; d < nd && !rc; d++) {
            uint64_t ne;
            if ((rc = get_u64(&c, &ne, name))) break;
            if (ne && t.n > SIZE_MAX / 8 / ne) {
                rc = mt_tf_fail(err, errlen, "%s: tensor '%s': shape too large", path, name);
                break;
            }
            t.dims[nd - 1 - d] = (size_t)ne; /* GGUF: innermost first */
            t.n *= (size_t)ne;
        }
        if (rc || (rc = get_u32(&c, &gt, name)) || (rc = get_u64(&c, &offs[i], name))) break;
        if (ggml_dtype(gt, &t.dtype)) {
            rc = mt_tf_fail(err, errlen,
                            "%s: tensor '%s' has type %s (%u); supported: F32, F16, BF16, Q8_0, "
                            "Q4_0",
                            path, name, mt_gguf_ggml_type_name(gt), gt);
            break;
        }
        if (t.dims[nd - 1] % mt_dtype_block(t.dtype)) {
            rc = mt_tf_fail(err, errlen, "%s: tensor '%s': %s rows of %zu values (blocks of %zu)",
                            path, name, mt_dtype_name(t.dtype), t.dims[nd - 1],
                            mt_dtype_block(t.dtype));
            break;
        }
        t.nbytes = mt_dtype_bytes(t.dtype, t.n);
        t.name = name;
        t.file = src->maps[src->n_maps - 1].path;
        rc = mt_src_add(src, &t, err, errlen);
    }
    if (rc) goto out;
    size_t hdr = (size_t)(c.p - base);
    g->data_off = (hdr + g->alignment - 1) / g->alignment * g->alignment;
    size_t data_len = len >= g->data_off ? len - g->data_off : 0;
    for (uint64_t i = 0; i < n_t; i++) {
        struct mt_src_tensor *t = &src->t[first + i];
        if (offs[i] % g->alignment) {
            rc = mt_tf_fail(err, errlen, "%s: tensor '%s' at data offset %llu, not a multiple of "
                            "the alignment %zu", path, t->name, (unsigned long long)offs[i],
                            g->alignment);
            goto out;
        }
        if (offs[i] > data_len || t->nbytes > data_len - offs[i]) {
            rc = mt_tf_fail(err, errlen,
                            "%s: tensor '%s' ([%llu, +%zu) of the data) runs past the end of the "
                            "file (%zu data bytes; truncated?)",
                            path, t->name, (unsigned long long)offs[i], t->nbytes, data_len);
            goto out;
        }
        t->data = base + g->data_off + offs[i];
        r[i] = (struct range){(size_t)offs[i], (size_t)offs[i] + t->nbytes, t->name};
    }
    qsort(r, n_t, sizeof *r, cmp_range);
    for (uint64_t i = 1; i < n_t; i++)
        if (r[i].b < r[i - 1].e) {
            rc = mt_tf_fail(err, errlen, "%s: tensors '%s' and '%s' overlap in the data", path,
                            r[i - 1].name, r[i].name);
            goto out;
        }
out:
    free(r);
    free(offs);
    return rc;
}

void mt_gguf_free(struct mt_gguf *g)
{
    for (size_t i = 0; i < g->n_kv; i++)
        free(g->kv[i].key);
    free(g->kv);
    g->kv = NULL;
    g->n_kv = 0;
}

const struct mt_gguf_kv *mt_gguf_find(const struct mt_gguf *g, const char *key)
{
    for (size_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

int mt_gguf_get_u64(const struct mt_gguf *g, const char *key, uint64_t *out)
{
    const struct mt_gguf_kv *e = mt_gguf_find(g, key);
    if (!e) return -1;
    switch (e->type) {
    case MT_GGUF_U8: case MT_GGUF_U16: case MT_GGUF_U32: case MT_GGUF_U64: case MT_GGUF_BOOL:
        *out = le(e->val, scalar_size(e->type));
        return 0;
    case MT_GGUF_I8: case MT_GGUF_I16: case MT_GGUF_I32: case MT_GGUF_I64: {
        size_t n = scalar_size(e->type);
        uint64_t v = le(e->val, n);
        if (v >> (8 * n - 1) & 1) return -1; /* negative */
        *out = v;
        return 0;
    }
    default:
        return -1;
    }
}

int mt_gguf_get_f64(const struct mt_gguf *g, const char *key, double *out)
{
    const struct mt_gguf_kv *e = mt_gguf_find(g, key);
    uint64_t u;
    if (!e) return -1;
    if (e->type == MT_GGUF_F32) {
        uint32_t b = (uint32_t)le(e->val, 4);
        float f;
        memcpy(&f, &b, 4);
        *out = f;
        return 0;
    }
    if (e->type == MT_GGUF_F64) {
        uint64_t b = le(e->val, 8);
        memcpy(out, &b, 8);
        return 0;
    }
    if (mt_gguf_get_u64(g, key, &u)) return -1;
    *out = (double)u;
    return 0;
}

int mt_gguf_get_str(const struct mt_gguf *g, const char *key, char *buf, size_t n)
{
    const struct mt_gguf_kv *e = mt_gguf_find(g, key);
    if (!e || e->type != MT_GGUF_STRING || !n) return -1;
    size_t len = (size_t)le(e->val, 8);
    snprintf(buf, n, "%.*s", (int)(len < n - 1 ? len : n - 1), (const char *)e->val + 8);
    return 0;
}

void mt_gguf_free_strs(char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

int mt_gguf_get_strs(const struct mt_gguf *g, const char *key, char ***out, size_t *n)
{
    const struct mt_gguf_kv *e = mt_gguf_find(g, key);
    if (!e || e->type != MT_GGUF_ARRAY || e->arr_type != MT_GGUF_STRING) return -1;
    char **s = calloc(e->arr_n ? e->arr_n : 1, sizeof *s);
    if (!s) return -1;
    const unsigned char *p = e->val; /* validated by the reader */
    for (uint64_t i = 0; i < e->arr_n; i++) {
        size_t len = (size_t)le(p, 8);
        if (!(s[i] = strndup((const char *)p + 8, len))) {
            mt_gguf_free_strs(s, i);
            return -1;
        }
        p += 8 + len;
    }
    *out = s, *n = (size_t)e->arr_n;
    return 0;
}

/* ---------------------------------------------------------------- writing */

static void put(struct mt_gguf_writer *w, const void *p, size_t n)
{
    if (w->oom) return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        unsigned char *b = realloc(w->buf, cap);
        if (!b) {
            w->oom = 1;
            return;
        }
        w->buf = b, w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_le(struct mt_gguf_writer *w, uint64_t v, size_t n)
{
    unsigned char b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, n);
}

static void put_s(struct mt_gguf_writer *w, const char *s)
{
    size_t n = strlen(s);
    put_le(w, n, 8);
    put(w, s, n);
}

static void key(struct mt_gguf_writer *w, const char *k, uint32_t type)
{
    put_s(w, k);
    put_le(w, type, 4);
    w->n_kv++;
}

void mt_gguf_w_str(struct mt_gguf_writer *w, const char *k, const char *v)
{
    key(w, k, MT_GGUF_STRING);
    put_s(w, v);
}

void mt_gguf_w_u32(struct mt_gguf_writer *w, const char *k, uint32_t v)
{
    key(w, k, MT_GGUF_U32);
    put_le(w, v, 4);
}

void mt_gguf_w_scalar(struct mt_gguf_writer *w, const char *k, enum mt_gguf_type type,
                      uint64_t bits)
{
    key(w, k, (uint32_t)type);
    put_le(w, bits, scalar_size(type));
}

void mt_gguf_w_f32(struct mt_gguf_writer *w, const char *k, float v)
{
    uint32_t b;
    memcpy(&b, &v, 4);
    key(w, k, MT_GGUF_F32);
    put_le(w, b, 4);
}

void mt_gguf_w_strs(struct mt_gguf_writer *w, const char *k, const char *const *v, size_t n)
{
    key(w, k, MT_GGUF_ARRAY);
    put_le(w, MT_GGUF_STRING, 4);
    put_le(w, n, 8);
    for (size_t i = 0; i < n; i++)
        put_s(w, v[i]);
}

void mt_gguf_w_i32s(struct mt_gguf_writer *w, const char *k, const int32_t *v, size_t n)
{
    key(w, k, MT_GGUF_ARRAY);
    put_le(w, MT_GGUF_I32, 4);
    put_le(w, n, 8);
    for (size_t i = 0; i < n; i++)
        put_le(w, (uint32_t)v[i], 4);
}

void mt_gguf_w_f32s(struct mt_gguf_writer *w, const char *k, const float *v, size_t n)
{
    key(w, k, MT_GGUF_ARRAY);
    put_le(w, MT_GGUF_F32, 4);
    put_le(w, n, 8);
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &v[i], 4);
        put_le(w, b, 4);
    }
}

void mt_gguf_w_free(struct mt_gguf_writer *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

int mt_gguf_write(const char *path, const struct mt_gguf_writer *w, const struct mt_out_list *l,
                  size_t alignment, char *err, size_t errlen)
{
    struct mt_gguf_writer h = {0};
    char tmp[4096];
    int rc = 0;
    unsigned char *buf = NULL;
    if (w->oom) return mt_tf_fail(err, errlen, "%s: out of memory for the metadata", path);
    put(&h, "GGUF", 4);
    put_le(&h, 3, 4);
    put_le(&h, l->n, 8);
    put_le(&h, w->n_kv, 8);
    put(&h, w->buf, w->len);
    size_t off = 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct mt_out_tensor *t = &l->t[i];
        size_t n = mt_out_elems(t);
        if (t->dims[t->ndim - 1] % mt_dtype_block(t->dtype)) {
            mt_gguf_w_free(&h);
            return mt_tf_fail(err, errlen, "%s: tensor '%s': rows of %zu values cannot be %s "
                              "(blocks of 32)", path, t->name, t->dims[t->ndim - 1],
                              mt_dtype_name(t->dtype));
        }
        put_s(&h, t->name);
        put_le(&h, t->ndim, 4);
        for (size_t d = t->ndim; d-- > 0;)
            put_le(&h, t->dims[d], 8);
        put_le(&h, dtype_ggml(t->dtype), 4);
        put_le(&h, off, 8);
        off += (mt_dtype_bytes(t->dtype, n) + alignment - 1) / alignment * alignment;
    }
    static const unsigned char zeros[64] = {0};
    while (h.len % alignment)
        put(&h, zeros, alignment - h.len % alignment < 64 ? alignment - h.len % alignment : 64);
    if (h.oom) {
        mt_gguf_w_free(&h);
        return mt_tf_fail(err, errlen, "%s: out of memory", path);
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        mt_gguf_w_free(&h);
        return mt_tf_fail(err, errlen, "%s: %s", tmp, strerror(errno));
    }
    int bad = fwrite(h.buf, 1, h.len, f) != h.len;
    size_t cap = 0;
    for (size_t i = 0; i < l->n && !bad; i++) {
        size_t nb = mt_out_fwrite(f, &l->t[i], &buf, &cap);
        if (nb == (size_t)-1) {
            bad = 1;
            break;
        }
        for (size_t pad = (alignment - nb % alignment) % alignment; pad; pad--)
            bad |= fputc(0, f) == EOF;
    }
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        unlink(tmp);
        rc = mt_tf_fail(err, errlen, "%s: write failed: %s", path, strerror(errno));
    }
    free(buf);
    mt_gguf_w_free(&h);
    return rc;
}
