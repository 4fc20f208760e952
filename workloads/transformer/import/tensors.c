/* tensors.c — the tensor table of read-mapped model files and the list of tensors to
 * write (see tensors.h). */
#include "tensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memtrade/grow.h>

#include "util.h"

int mt_src_map_file(struct mt_src *src, const char *path, const unsigned char **base, size_t *len,
                    char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mt_tf_fail(err, errlen, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        close(fd);
        return mt_tf_fail(err, errlen, "%s: not a regular non-empty file", path);
    }
    struct mt_src_map *nm = realloc(src->maps, (src->n_maps + 1) * sizeof *nm);
    if (!nm) {
        close(fd);
        return mt_tf_fail(err, errlen, "%s: out of memory", path);
    }
    src->maps = nm;
    size_t n = (size_t)st.st_size;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return mt_tf_fail(err, errlen, "%s: mmap: %s", path, strerror(e));
    char *copy = strdup(path);
    if (!copy) {
        munmap(p, n);
        return mt_tf_fail(err, errlen, "%s: out of memory", path);
    }
    src->maps[src->n_maps++] = (struct mt_src_map){.base = p, .len = n, .path = copy};
    *base = p;
    *len = n;
    return 0;
}

int mt_src_add(struct mt_src *src, const struct mt_src_tensor *t, char *err, size_t errlen)
{
    if (mt_src_find(src, t->name))
        return mt_tf_fail(err, errlen, "%s: tensor '%s' appears twice", t->file, t->name);
    if (mt_grow(&src->t, &src->cap, src->n + 1, sizeof *src->t, 64))
        return mt_tf_fail(err, errlen, "out of memory for the tensor table");
    struct mt_src_tensor *d = &src->t[src->n];
    *d = *t;
    d->name = strdup(t->name);
    if (!d->name) return mt_tf_fail(err, errlen, "out of memory for the tensor table");
    src->n++;
    return 0;
}

struct mt_src_tensor *mt_src_find(struct mt_src *src, const char *name)
{
    for (size_t i = 0; i < src->n; i++)
        if (!strcmp(src->t[i].name, name)) return &src->t[i];
    return NULL;
}

void mt_src_free(struct mt_src *src)
{
    for (size_t i = 0; i < src->n; i++)
        free(src->t[i].name);
    for (size_t i = 0; i < src->n_maps; i++) {
        munmap(src->maps[i].base, src->maps[i].len);
        free(src->maps[i].path);
    }
    free(src->t);
    free(src->maps);
    memset(src, 0, sizeof *src);
}

const char *mt_src_shape_text(const size_t *dims, size_t ndim, char *buf, size_t n)
{
    size_t o = (size_t)snprintf(buf, n, "(");
    for (size_t i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%zu", i ? ", " : "", dims[i]);
    if (o < n) snprintf(buf + o, n - o, ")");
    return buf;
}

int mt_out_add(struct mt_out_list *l, const char *name, enum mt_dtype dtype, size_t ndim,
               const size_t *dims, const float *data, float *owned)
{
    if (mt_grow(&l->t, &l->cap, l->n + 1, sizeof *l->t, 64)) {
        free(owned);
        return -1;
    }
    struct mt_out_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype;
    t->ndim = ndim;
    for (size_t i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
    t->data = data;
    t->owned = owned;
    return 0;
}

size_t mt_out_elems(const struct mt_out_tensor *t)
{
    size_t n = 1;
    for (size_t i = 0; i < t->ndim; i++)
        n *= t->dims[i];
    return n;
}

size_t mt_out_fwrite(FILE *f, const struct mt_out_tensor *t, unsigned char **buf, size_t *cap)
{
    size_t n = mt_out_elems(t), nb = mt_dtype_bytes(t->dtype, n);
    if (t->dtype == MT_DT_F32) return fwrite(t->data, 1, nb, f) == nb ? nb : (size_t)-1;
    if (nb > *cap) {
        unsigned char *b = realloc(*buf, nb);
        if (!b) return (size_t)-1;
        *buf = b, *cap = nb;
    }
    mt_dtype_encode(t->dtype, t->data, *buf, n);
    return fwrite(*buf, 1, nb, f) == nb ? nb : (size_t)-1;
}

void mt_out_free(struct mt_out_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->t[i].owned);
    free(l->t);
    memset(l, 0, sizeof *l);
}
