/* util.h — small helpers shared by the transformer library's own files (not installed,
 * not for plugins): error formatting and the FNV-1a 64-bit hash.
 */
#ifndef MT_TRANSFORMER_UTIL_H
#define MT_TRANSFORMER_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Formats a message into err (when err != NULL and errlen > 0) and returns -1. */
__attribute__((format(printf, 3, 4))) int mt_tf_fail(char *err, size_t errlen,
                                                     const char *fmt, ...);

#define MT_FNV64_INIT 0xcbf29ce484222325ull
/* FNV-1a 64 of n bytes, continuing from h (start with MT_FNV64_INIT). */
uint64_t mt_fnv64(uint64_t h, const void *data, size_t n);

#endif
