/* tensors.h — the tensors of a model file as read (a table of names, types, shapes and
 * bytes inside read-mapped files) and as written (a list of fp32 tensors to encode).
 *
 * What it is for: the common ground of the safetensors and GGUF readers and writers and
 * of the name mapping (modelfile.c): a reader fills a struct mt_src, the mapping looks
 * tensors up by name and marks them used, so that a file with a tensor nobody asked for
 * is refused.
 * What it is not for: parsing any format (safetensors.c, gguf.c).
 *
 * Files are mapped whole, private and writable (copy on write: a tensor the model points
 * into may be modified in memory, never on disk). Shapes are row-major, the outermost
 * dimension first (PyTorch's order; GGUF's ne[] reversed).
 */
#ifndef MT_IMPORT_TENSORS_H
#define MT_IMPORT_TENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MT_SRC_MAXDIM 4

struct mt_src_tensor {
    char *name;
    enum mt_dtype dtype;
    size_t ndim, dims[MT_SRC_MAXDIM];
    size_t n;                  /* elements */
    const unsigned char *data; /* inside a mapping */
    size_t nbytes;
    const char *file; /* the mapping's path (for messages) */
    int used;         /* set by the name mapping */
};

struct mt_src_map {
    void *base;
    size_t len;
    char *path;
};

struct mt_src {
    struct mt_src_tensor *t;
    size_t n, cap;
    struct mt_src_map *maps;
    size_t n_maps;
};

/* Maps `path` whole (private, copy on write) and records the mapping in src (freed by
 * mt_src_free). Returns 0 and *base, *len (an empty file is refused), or -1 with a
 * message naming the file. */
int mt_src_map_file(struct mt_src *src, const char *path, const unsigned char **base, size_t *len,
                    char *err, size_t errlen);

/* Appends a tensor (name copied). A name already present is refused. Returns 0 or -1. */
int mt_src_add(struct mt_src *src, const struct mt_src_tensor *t, char *err, size_t errlen);

/* The tensor named `name`, or NULL. */
struct mt_src_tensor *mt_src_find(struct mt_src *src, const char *name);

/* Frees the table and unmaps every file. Safe on a zeroed struct. */
void mt_src_free(struct mt_src *src);

/* Formats a shape as "(a, b, c)" into buf. */
const char *mt_src_shape_text(const size_t *dims, size_t ndim, char *buf, size_t n);

/* One tensor to write: fp32 values (row-major, dims outermost first) stored as `dtype`. */
struct mt_out_tensor {
    char name[96];
    enum mt_dtype dtype;
    size_t ndim, dims[MT_SRC_MAXDIM];
    const float *data; /* owned by the caller (or by `owned`) */
    float *owned;      /* a buffer to free with the list, or NULL */
};

struct mt_out_list {
    struct mt_out_tensor *t;
    size_t n, cap;
};

/* Appends a tensor; takes `owned` (freed with the list even on failure). Returns 0 or -1
 * (out of memory). */
int mt_out_add(struct mt_out_list *l, const char *name, enum mt_dtype dtype, size_t ndim,
               const size_t *dims, const float *data, float *owned);
size_t mt_out_elems(const struct mt_out_tensor *t);
/* Writes tensor t's bytes, encoded as its dtype, to f (*buf: a grow-only scratch the
 * caller frees). Returns the bytes written, or (size_t)-1 on a write error or when out of
 * memory. */
size_t mt_out_fwrite(FILE *f, const struct mt_out_tensor *t, unsigned char **buf, size_t *cap);
void mt_out_free(struct mt_out_list *l);

#ifdef __cplusplus
}
#endif
#endif
