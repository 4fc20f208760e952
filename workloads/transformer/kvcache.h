/* kvcache.h — the KV cache of batch-1 decoding: storage formats, a contiguous or paged
 * layout, and attention that reads the packed cache.
 *
 * What it is for: holding the keys and values of earlier positions the way a serving
 * system stores them, and attending over them without ever decoding the whole cache:
 *   - formats: fp32 (today's cache), bf16 and fp16, int8 (per token: each group of
 *     `group` channels of a token has an fp16 scale and minimum), and int4 / int3 / int2 in
 *     the KIVI style (keys quantized per channel over groups of `group` tokens, values per
 *     token over groups of `group` channels, the most recent tokens kept in fp32: after n
 *     tokens the first nq(n) = floor(max(0, n - residual) / group) * group are packed and
 *     the rest, between `residual` and residual + group - 1 of them, sit in an fp32 ring of
 *     residual + group slots). Codes are unsigned, x = scale * code + min (asymmetric),
 *     packed LSB first (3-bit codes 8 in 3 bytes: two bytes of their low bits, one of
 *     their high bits, kvkernels.h); scales and minima are fp16.
 *   - layouts: contiguous (each sequence owns one block of its maximum length, allocated
 *     up front) or paged (blocks of `block` tokens, a block table per sequence, a free
 *     list; a block holds every layer's keys and values of its tokens, as in vLLM). The
 *     arithmetic per token is the same in both, so paged equals contiguous bit for bit.
 *   - sliding windows (cfg->window = W > 0): a sequence keeps only the positions the
 *     window can still read, W rounded up to whole KIVI key groups (mt_kvc_kept_tokens):
 *     the contiguous block becomes a ring of that many positions (position t in slot
 *     t mod kept), and a paged sequence's block table a ring whose blocks go back to the
 *     free list as the window leaves them. A window-W model at context T >> W holds
 *     about W / T of the cache.
 *   - attention per (sequence, layer, query): per head, tiles of 64 to 512 positions (online
 *     softmax, as FlashAttention's decoding: no buffer of the context's length), scores
 *     of q against the packed keys and the weighted sum of the packed values; the heads
 *     run in parallel (OpenMP) once a step is large enough (MT_KVC_PAR_MIN). Each
 *     format has a scalar reference (kvkernels_ref.c) and a fast kernel: fp32 is the
 *     compiler-vectorized loop of mt_k_attention_decode (bit-identical to it), the others
 *     AVX-512 (kvkernels_avx512.c), chosen at run time; without AVX-512 they run the
 *     reference.
 * What it is not for: the rest of the decode step (decode.c runs the one block with this
 * cache in its attention hook), batched prefill, or eviction policies.
 *
 * Errors: functions that can fail return 0 or -1 with a message in err.
 * Thread safety: one cache per thread at a time; mt_kvc_attend runs its heads on the
 * calling thread's OpenMP team (the same bits whatever the thread count).
 */
#ifndef MT_TRANSFORMER_KVCACHE_H
#define MT_TRANSFORMER_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "gpt.h"

#ifdef __cplusplus
extern "C" {
#endif

enum mt_kvc_format {
    MT_KVC_FP32,
    MT_KVC_BF16,
    MT_KVC_FP16,
    MT_KVC_INT8, /* per token */
    MT_KVC_INT4, /* KIVI: keys per channel, values per token, fp32 residual */
    MT_KVC_INT3, /* KIVI, 8 codes in 3 bytes (kvkernels.h) */
    MT_KVC_INT2, /* KIVI */
    MT_KVC_FORMAT_COUNT
};
/* The names, in enum order, as a parameter's choices. */
#define MT_KVC_FORMAT_CHOICES "fp32|bf16|fp16|int8|int4|int3|int2"
#define MT_KVC_DEFAULT_GROUP 32
#define MT_KVC_DEFAULT_RESIDUAL 32
#define MT_KVC_MAX_HEAD_DIM 256
/* Most positions of one attention tile (kvcache.c's tile_of: from 64, or one quantization
 * group, up to this many, while a layer's tile of keys and values takes at most
 * MT_KVC_TILE_BYTES). */
#define MT_KVC_MAX_TILE 512
#define MT_KVC_TILE_BYTES ((size_t)512 << 10)
/* Heads attend in parallel (OpenMP) from this many multiply-adds per layer on: the
 * window's positions x n_head x head dimension. */
#define MT_KVC_PAR_MIN ((size_t)1 << 16)

/* Stable name ("fp32", ...) of a format; and its parse (0, or -1 for an unknown name). */
const char *mt_kvc_format_name(enum mt_kvc_format f);
int mt_kvc_format_parse(const char *name, enum mt_kvc_format *f);
/* Bits per stored element: 32, 16, 16, 8, 4, 3, 2. */
unsigned mt_kvc_format_bits(enum mt_kvc_format f);
/* 1 for the KIVI formats (int4, int3, int2). */
int mt_kvc_format_kivi(enum mt_kvc_format f);

struct mt_kvc_spec {
    enum mt_kvc_format format;
    size_t group;    /* quantization group (see above); ignored by fp32/bf16/fp16 */
    size_t residual; /* KIVI: recent tokens kept in fp32 (at least) */
    size_t block;    /* tokens per block of a paged cache; 0 = contiguous */
};

/* fp32, contiguous, group MT_KVC_DEFAULT_GROUP, residual MT_KVC_DEFAULT_RESIDUAL: today's
 * cache. */
struct mt_kvc_spec mt_kvc_spec_default(void);

/* Checks a spec against a configuration: the quantized formats need group to divide the
 * head dimension (n_embd / n_head, at most MT_KVC_MAX_HEAD_DIM); int3 a head dimension
 * of whole bytes of codes (a multiple of 8); a paged KIVI cache needs group to divide
 * block. Returns 0 or -1 with a message. */
int mt_kvc_spec_check(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *s, char *err,
                      size_t errlen);

/* Exact sizes of a format for a configuration (kv width mt_gpt_kv_dim), in bytes:
 * unit_tokens is the tokens that share their key scales (group for KIVI, else 1) and
 * unit_bytes what unit_tokens tokens occupy in every layer, keys and values with their
 * scales, so a token costs unit_bytes / unit_tokens; fixed_bytes is what a sequence holds
 * whatever its length (KIVI's fp32 ring, else 0). */
struct mt_kvc_sizes {
    size_t unit_tokens, unit_bytes, fixed_bytes;
};
void mt_kvc_sizes(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *s,
                  struct mt_kvc_sizes *out);
/* Tokens stored in packed form after n tokens: nq(n) for KIVI, else n. */
size_t mt_kvc_stored_tokens(const struct mt_kvc_spec *s, size_t n);
/* Packed positions a sequence of up to max_T positions keeps: max_T rounded up to
 * unit_tokens or, under a sliding window of W = cfg->window positions that is shorter,
 * W + unit_tokens - 1 rounded up to unit_tokens (W itself for the non-KIVI formats). */
size_t mt_kvc_kept_tokens(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *s,
                          size_t max_T);
/* Bytes a contiguous cache of max_T positions allocates: fixed_bytes + the kept positions
 * (mt_kvc_kept_tokens) times the bytes per token. For fp32 without a window this is
 * L * 2 * max_T * kv_dim * 4, today's cache. */
size_t mt_kvc_contiguous_bytes(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *s,
                               size_t max_T);
/* Bytes of one block of a paged cache (block tokens of every layer). */
size_t mt_kvc_block_bytes(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *s);

/* Bytes of keys and values (pool and KIVI ring: struct mt_kvc's `bytes`) that
 * mt_kvc_create(cfg, spec, max_T, n_seq, n_blocks) allocates, without allocating: what
 * `memtrade plan` counts. Call with a spec mt_kvc_spec_check accepts. */
size_t mt_kvc_bytes(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *spec, size_t max_T,
                    size_t n_seq, size_t n_blocks);

/* Bytes of the bookkeeping mt_kvc_create allocates under MT_MEM_WORKSPACE (block tables,
 * lengths, the free list): struct mt_kvc's `table_bytes`. */
size_t mt_kvc_table_bytes(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *spec,
                          size_t max_T, size_t n_seq, size_t n_blocks);

/* The block of a paged cache for spec: spec->block, or when 0 the larger of 32 and the
 * group (a multiple of the group, as KIVI needs). */
size_t mt_kvc_paged_block(const struct mt_kvc_spec *s);

/* Bytes a sequence of n tokens holds in a paged cache of spec (blocks of
 * mt_kvc_paged_block(spec)): its fixed bytes and the blocks of its stored tokens, only
 * those a sliding window of cfg->window still reads. */
size_t mt_kvc_paged_seq_bytes(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *s,
                              size_t n);

/* Which kernels attend: the fastest this CPU has, or the scalar reference. */
enum mt_kvc_impl { MT_KVC_IMPL_AUTO = 0, MT_KVC_IMPL_SCALAR = 1 };

/* A cache of n_seq sequences of up to max_T positions each. Contiguous: n_seq blocks of
 * the kept positions (mt_kvc_kept_tokens). Paged: a pool of n_blocks blocks (0: enough
 * for every sequence at max_T, or at its window), handed out as sequences grow and
 * returned as a window leaves them. Keys and values are allocated under
 * MT_MEM_KV_CACHE and reported as "kv.cache" (and "kv.ring" for KIVI's fp32 ring). */
struct mt_kvc {
    struct mt_gpt_config cfg;
    struct mt_kvc_spec spec;
    struct mt_kvc_sizes sz;
    size_t kvd, hs, max_T, n_seq;
    size_t bs;          /* tokens per block (max_T rounded up to the unit when contiguous) */
    size_t blocks_max;  /* entries of a block table: logical block b at entry b % blocks_max */
    size_t n_blocks;    /* blocks in the pool */
    size_t block_bytes; /* bytes of one block (every layer) */
    size_t page_bytes;  /* bytes of one layer of one block */
    size_t ring_tokens; /* KIVI ring slots per layer (residual + group), else 0 */
    size_t tile;        /* positions per attention tile */
    size_t off[5];      /* bytes into a page of key scales, minima, value codes, scales, minima */
    uint8_t *pool;      /* n_blocks * block_bytes */
    float *ring;        /* (n_seq, L, 2, ring_tokens, kvd) */
    uint32_t *table;    /* (n_seq, blocks_max) block ids */
    size_t *len;        /* tokens reserved per sequence */
    size_t *held;       /* blocks held per sequence */
    size_t *first;      /* paged: the first logical block each sequence holds */
    uint32_t *free_ids; /* free list (a stack) */
    size_t n_free;
    size_t bytes;       /* pool + ring */
    size_t table_bytes; /* the block tables, lengths and free list (workspace) */
    enum mt_kvc_impl impl;
};

/* Creates a cache (see struct mt_kvc). Returns 0 and *out (free with mt_kvc_free), or -1
 * with a message (bad spec, out of memory); nothing is left allocated on failure. */
int mt_kvc_create(struct mt_kvc **out, const struct mt_gpt_config *cfg,
                  const struct mt_kvc_spec *spec, size_t max_T, size_t n_seq, size_t n_blocks,
                  char *err, size_t errlen);
void mt_kvc_free(struct mt_kvc *c);

/* Makes room for n tokens of sequence seq (n <= max_T, never fewer than it holds): a
 * paged cache returns the blocks a sliding window has left to the free list and takes
 * the blocks it lacks from it. Returns 0, or -1 when the pool has too few free blocks
 * (nothing taken then). */
int mt_kvc_reserve(struct mt_kvc *c, size_t seq, size_t n);
/* Forgets sequence seq and returns its blocks to the free list. */
void mt_kvc_release(struct mt_kvc *c, size_t seq);
/* Bytes the tokens of sequence seq use (stored tokens times the bytes per token, plus
 * the fixed bytes) and the bytes it holds (its blocks, plus the fixed bytes): the waste
 * is held - used. */
void mt_kvc_usage(const struct mt_kvc *c, size_t seq, double *used, size_t *held);

/* Stores the key and value (kv_dim floats each) of position pos (the sequence's newest,
 * pos < reserved length) of layer `layer`; KIVI packs a group that leaves the ring. */
void mt_kvc_append(struct mt_kvc *c, size_t seq, size_t layer, size_t pos, const float *k,
                   const float *v);
/* Attention of query q (n_embd floats, n_head heads) over positions lo..n-1 (lo < n: a
 * sliding window starts at lo, 0 without one; a cache made for a window reads no
 * position before n - window) of layer `layer` of sequence seq: out (n_embd) =. Query
 * head h reads key/value head h / (n_head / kv heads) (grouped-query attention). */
void mt_kvc_attend(const struct mt_kvc *c, size_t seq, size_t layer, size_t lo, size_t n,
                   const float *q, float *out);

/* A seeded serving simulation (see mt_kvc_simulate). */
struct mt_kvc_sim {
    size_t requests;               /* N requests, all queued at step 0 */
    size_t prompt_min, prompt_max; /* prompt length ~ uniform[min, max] */
    size_t output_min, output_max; /* output length ~ uniform[min, max] */
    uint64_t seed;
    size_t budget_bytes; /* the KV memory both layouts get */
};
struct mt_kvc_sim_result {
    size_t steps;        /* decode steps until every request finished */
    double mean_running; /* sequences decoded per step, averaged over steps */
    size_t max_running;  /* most sequences at once */
    double waste_ratio;  /* (held - used) / held over the steps, byte-weighted */
    size_t preemptions;  /* paged: sequences evicted for lack of blocks and requeued */
};
/* Serves `requests` with one token per running sequence per step (the prompt's tokens
 * are reserved at admission, as a prefill), first-come first-served, under
 * budget_bytes of KV memory: the contiguous layout gives every sequence max_T positions
 * at admission (max_T = prompt_max + output_max); the paged one admits while a free block
 * remains beyond what the running sequences need for their next token and preempts the
 * newest sequence (requeued, recomputed from scratch) when one cannot grow. Both run the
 * real allocator of struct mt_kvc (no attention math: it does not change memory).
 * Returns 0 and *contig and *paged, or -1 with a message (a request larger than the
 * budget, bad spec). */
int mt_kvc_simulate(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *spec,
                    const struct mt_kvc_sim *sim, struct mt_kvc_sim_result *contig,
                    struct mt_kvc_sim_result *paged, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
