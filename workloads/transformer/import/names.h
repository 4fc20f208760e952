/* names.h — where each of the reference model's tensors lives in a Hugging Face or GGUF
 * file: one "piece" per stored tensor (its name, the rows of the model tensor it fills,
 * and the transform between the two layouts).
 *
 * What it is for: one table that both the loader and the exporter read, so that import
 * and export cannot disagree on a name, a row offset or a transpose.
 * What it is not for: reading or writing bytes (modelfile.c).
 */
#ifndef MT_IMPORT_NAMES_H
#define MT_IMPORT_NAMES_H

#include <stddef.h>

#include "gpt.h"
#include "modelfile.h"

enum mt_xform {
    MT_XF_COPY,   /* stored (rows, cols) as the model holds it */
    MT_XF_T,      /* stored transposed, (cols, rows): GPT-2's Conv1D */
    MT_XF_UNPERM, /* stored with each head's rows permuted by llama.cpp's convert script */
};

struct mt_piece {
    enum mt_gpt_param p;
    size_t layer;      /* layer of a per-layer tensor (0 otherwise) */
    size_t row0, rows; /* rows of the model tensor's (per-layer) matrix this piece fills */
    size_t cols;       /* columns of that matrix (1 for vectors) */
    int vector;        /* stored as a 1-D tensor */
    enum mt_xform xf;
    size_t heads; /* MT_XF_UNPERM: heads in the piece */
    char name[128];
};

/* The family a configuration belongs to: 0 GPT-2, 1 Llama; -1 with a message for a
 * combination neither format can name. */
int mt_names_family(const struct mt_gpt_config *cfg, char *err, size_t errlen);

/* Fills *out (malloc'ed, *n pieces) for cfg stored in format fmt, in the order a writer
 * puts them (tensor by tensor in enum order, layer by layer, rows ascending): the order
 * in which the model's tensors are contiguous. `hf_prefix` is the GPT-2 folder's prefix
 * ("transformer." or ""). The untied head is listed only when cfg->untied. Returns 0, or
 * -1 with a message. */
int mt_names_pieces(const struct mt_gpt_config *cfg, enum mt_model_format fmt,
                    const char *hf_prefix, struct mt_piece **out, size_t *n, char *err,
                    size_t errlen);

/* Elements of one layer of parameter p (the whole tensor for p without layers). */
size_t mt_names_layer_elems(const struct mt_gpt_config *cfg, enum mt_gpt_param p);

/* Row r (0..rows) of a head-permuted piece maps to row mt_names_unperm(r, rows, heads) of
 * the model's (Hugging Face) layout: within each head of hd rows, stored row 2i + j holds
 * model row j * hd/2 + i. */
size_t mt_names_unperm(size_t r, size_t rows, size_t heads);

#endif
