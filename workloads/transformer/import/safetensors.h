/* safetensors.h — reader and writer of Hugging Face safetensors files, single and sharded.
 *
 * What it is for: the weights of a Hugging Face model folder. A file is an 8-byte
 * little-endian header length N, N bytes of JSON ({name: {dtype, shape, data_offsets}},
 * optional "__metadata__"), then the data buffer; every tensor's [begin, end) is relative
 * to the buffer's start. The reader maps the file (tensors.h) and validates every byte
 * range before anything is used: the header length within the file, a JSON object, a
 * supported dtype (F32, F16, BF16), end - begin = elements x size, every range inside the
 * buffer, no two ranges overlapping, no hole and no trailing bytes (the format's own
 * rules); a file that breaks one is refused with what was found.
 * What it is not for: mapping names onto the model (modelfile.c) or config.json (hf.c).
 */
#ifndef MT_IMPORT_SAFETENSORS_H
#define MT_IMPORT_SAFETENSORS_H

#include <stddef.h>

#include "tensors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads one .safetensors file into src (its tensors appended, the file mapped). Returns
 * 0, or -1 with a message naming the file and the problem (src may then hold part of the
 * file: free it). */
int mt_st_read(struct mt_src *src, const char *path, char *err, size_t errlen);

/* Reads the weights of a Hugging Face folder: with model.safetensors.index.json, every
 * shard its weight_map names (each tensor must be in the shard the map says, and every
 * mapped name present); else model.safetensors. Returns 0 or -1 with a message. */
int mt_st_read_folder(struct mt_src *src, const char *dir, char *err, size_t errlen);

/* Writes the tensors of l, in order, to `path` (atomically: a temporary file, then
 * rename), the header padded with spaces so that the data starts 64-byte aligned.
 * Only F32, F16 and BF16. Returns 0 or -1 with a message. */
int mt_st_write(const char *path, const struct mt_out_list *l, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
