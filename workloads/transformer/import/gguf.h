/* gguf.h — reader and writer of GGUF version 3 files (llama.cpp's model format).
 *
 * What it is for: a GGUF file's metadata (every value type: integers, floats, bool,
 * strings, arrays) and its tensors (F32, F16, BF16, Q8_0, Q4_0), read from a mapped
 * file with every length and offset checked against the file's size first, and written
 * back. Layout (little-endian): "GGUF" | u32 version 3 | u64 n_tensors | u64 n_kv |
 * n_kv x (string key | u32 type | value) | n_tensors x (string name | u32 n_dims |
 * u64 ne[n_dims] (innermost first) | u32 ggml type | u64 offset) | padding to
 * general.alignment (default 32) | data; a string is u64 length + bytes; every tensor's
 * offset (relative to the data) is a multiple of the alignment.
 * What it is not for: the meaning of the keys or names (modelfile.c), or llama.cpp's
 * other quantized types (refused, named).
 */
#ifndef MT_IMPORT_GGUF_H
#define MT_IMPORT_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

enum mt_gguf_type {
    MT_GGUF_U8 = 0,
    MT_GGUF_I8 = 1,
    MT_GGUF_U16 = 2,
    MT_GGUF_I16 = 3,
    MT_GGUF_U32 = 4,
    MT_GGUF_I32 = 5,
    MT_GGUF_F32 = 6,
    MT_GGUF_BOOL = 7,
    MT_GGUF_STRING = 8,
    MT_GGUF_ARRAY = 9,
    MT_GGUF_U64 = 10,
    MT_GGUF_I64 = 11,
    MT_GGUF_F64 = 12,
    MT_GGUF_TYPE_COUNT
};

/* One metadata entry; `val` points into the mapping at the value (for arrays: at the
 * first element, after the element type and count). */
struct mt_gguf_kv {
    char *key;
    enum mt_gguf_type type;
    const unsigned char *val;
    enum mt_gguf_type arr_type; /* arrays only */
    uint64_t arr_n;
};

struct mt_gguf {
    struct mt_gguf_kv *kv;
    size_t n_kv;
    size_t alignment;
    size_t data_off; /* where the data starts in the file */
    char path[4096];
};

/* Reads `path`: maps it into src (its tensors appended, shapes outermost first) and the
 * metadata into *g. Refuses, naming what was found: a bad magic, a version other than 3,
 * a truncated header, a bad value type, an alignment that is not a power of two, a tensor
 * type other than F32/F16/BF16/Q8_0/Q4_0, a tensor offset not aligned, past the end or
 * overlapping another. Returns 0, or -1 (free both src and g). */
int mt_gguf_read(struct mt_src *src, struct mt_gguf *g, const char *path, char *err,
                 size_t errlen);
void mt_gguf_free(struct mt_gguf *g);

/* The entry of `key`, or NULL. */
const struct mt_gguf_kv *mt_gguf_find(const struct mt_gguf *g, const char *key);
/* An integer-typed (or bool) value as u64 (negative values refused): 0, or -1 when absent
 * or of another type. */
int mt_gguf_get_u64(const struct mt_gguf *g, const char *key, uint64_t *out);
/* A float- or integer-typed value as double: 0, or -1. */
int mt_gguf_get_f64(const struct mt_gguf *g, const char *key, double *out);
/* A string value copied into buf (NUL-terminated, cut to n - 1): 0, or -1. */
int mt_gguf_get_str(const struct mt_gguf *g, const char *key, char *buf, size_t n);
/* An array of strings: *out (malloc'ed array of n malloc'ed NUL-terminated strings; free
 * with mt_gguf_free_strs) and *n. Returns 0, or -1 (absent, not a string array, out of
 * memory). */
int mt_gguf_get_strs(const struct mt_gguf *g, const char *key, char ***out, size_t *n);
void mt_gguf_free_strs(char **s, size_t n);

/* GGUF's name of a value type ("u32", "string", ...) and of a ggml tensor type ("Q4_K"). */
const char *mt_gguf_type_name(uint32_t t);
const char *mt_gguf_ggml_type_name(uint32_t t);

/* The metadata of a file being written: entries appended in order. */
struct mt_gguf_writer {
    unsigned char *buf;
    size_t len, cap;
    size_t n_kv;
    int oom;
};
void mt_gguf_w_str(struct mt_gguf_writer *w, const char *key, const char *v);
void mt_gguf_w_u32(struct mt_gguf_writer *w, const char *key, uint32_t v);
void mt_gguf_w_f32(struct mt_gguf_writer *w, const char *key, float v);
/* Any scalar type (not string or array): the value's low bytes, little-endian (for f32 and
 * f64 their bit patterns). */
void mt_gguf_w_scalar(struct mt_gguf_writer *w, const char *key, enum mt_gguf_type type,
                      uint64_t bits);
void mt_gguf_w_strs(struct mt_gguf_writer *w, const char *key, const char *const *v, size_t n);
void mt_gguf_w_i32s(struct mt_gguf_writer *w, const char *key, const int32_t *v, size_t n);
void mt_gguf_w_f32s(struct mt_gguf_writer *w, const char *key, const float *v, size_t n);
void mt_gguf_w_free(struct mt_gguf_writer *w);

/* Writes a GGUF v3 file: the metadata of w (which must hold general.alignment when
 * `alignment` is not 32) and the tensors of l in order (shapes outermost first; written
 * innermost first as GGUF wants), each padded to `alignment`. Atomic (temporary file,
 * rename). Returns 0 or -1 with a message. */
int mt_gguf_write(const char *path, const struct mt_gguf_writer *w, const struct mt_out_list *l,
                  size_t alignment, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
