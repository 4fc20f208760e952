/* hash.h — FNV-1a 64-bit, the checksum of checkpoints and the model cache key.
 *
 * What it is for: cheap, stable, dependency-free hashing of bytes (the same value on
 * every machine of the same endianness). What it is not for: cryptography.
 */
#ifndef MT_TRANSFORMER_HASH_H
#define MT_TRANSFORMER_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MT_FNV64_INIT 0xcbf29ce484222325ull
/* FNV-1a 64 of n bytes, continuing from h (start with MT_FNV64_INIT). Pure function. */
uint64_t mt_fnv64(uint64_t h, const void *data, size_t n);

#endif
