/* util.h — error formatting shared by the transformer library's own files (not for
 * plugins). Includes hash.h, the one public helper.
 */
#ifndef MT_TRANSFORMER_UTIL_H
#define MT_TRANSFORMER_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

/* Formats a message into err (when err != NULL and errlen > 0) and returns -1. */
__attribute__((format(printf, 3, 4))) int mt_tf_fail(char *err, size_t errlen, const char *fmt,
                                                     ...);

#endif
