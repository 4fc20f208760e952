/* kvcache.c — the KV cache (see kvcache.h): sizes, the block pool and its free list,
 * packing tokens into their format, the attention driver over blocks, and the serving
 * simulation. The per-head arithmetic lives in kvkernels*.c. */
#include "kvcache.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kvkernels.h"
#include "rng.h"
#include "util.h"

#define MAX_GROUP 128
#define HEADS_PER_PASS 16 /* heads of one attend_heads call (their state: 32 KiB) */

static const char *const format_names[MT_KVC_FORMAT_COUNT] = {"fp32", "bf16", "fp16", "int8",
                                                              "int4", "int3", "int2"};

const char *mt_kvc_format_name(enum mt_kvc_format f)
{
    return (unsigned)f < MT_KVC_FORMAT_COUNT ? format_names[f] : "?";
}

int mt_kvc_format_parse(const char *name, enum mt_kvc_format *f)
{
    for (int i = 0; i < MT_KVC_FORMAT_COUNT; i++)
        if (!strcmp(name, format_names[i])) {
            *f = (enum mt_kvc_format)i;
            return 0;
        }
    return -1;
}

unsigned mt_kvc_format_bits(enum mt_kvc_format f)
{
    static const unsigned bits[MT_KVC_FORMAT_COUNT] = {32, 16, 16, 8, 4, 3, 2};
    return bits[f];
}

int mt_kvc_format_kivi(enum mt_kvc_format f)
{
    return f == MT_KVC_INT4 || f == MT_KVC_INT3 || f == MT_KVC_INT2;
}

static int quantized(enum mt_kvc_format f)
{
    return f >= MT_KVC_INT8;
}

struct mt_kvc_spec mt_kvc_spec_default(void)
{
    return (struct mt_kvc_spec){.format = MT_KVC_FP32,
                                .group = MT_KVC_DEFAULT_GROUP,
                                .residual = MT_KVC_DEFAULT_RESIDUAL,
                                .block = 0};
}

int mt_kvc_spec_check(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *s, char *err,
                      size_t errlen)
{
    size_t hs = cfg->n_embd / cfg->n_head;
    if ((unsigned)s->format >= MT_KVC_FORMAT_COUNT)
        return mt_tf_fail(err, errlen, "unknown KV-cache format %d", (int)s->format);
    if (hs > MT_KVC_MAX_HEAD_DIM)
        return mt_tf_fail(err, errlen, "head dimension %zu above %d", hs, MT_KVC_MAX_HEAD_DIM);
    if (mt_gpt_kv_dim(cfg) % hs)
        return mt_tf_fail(err, errlen, "kv width %zu is not whole heads of %zu", mt_gpt_kv_dim(cfg),
                          hs);
    if (quantized(s->format) && (!s->group || s->group > MAX_GROUP || hs % s->group))
        return mt_tf_fail(err, errlen,
                          "KV-cache group %zu must divide the head dimension %zu (at most %d)",
                          s->group, hs, MAX_GROUP);
    if (s->format == MT_KVC_INT3 && hs % 8)
        return mt_tf_fail(err, errlen,
                          "an int3 KV cache packs 8 codes in 3 bytes: head dimension %zu is not a "
                          "multiple of 8",
                          hs);
    if (s->block && mt_kvc_format_kivi(s->format) && s->block % s->group)
        return mt_tf_fail(err, errlen, "KV-cache group %zu must divide the block of %zu tokens",
                          s->group, s->block);
    return 0;
}

/* Bytes of one layer's keys (or values) of `tokens` tokens, codes and scales. */
static size_t codes_bytes(const struct mt_kvc_spec *s, size_t kvd, size_t tokens)
{
    return tokens * kvd * mt_kvc_format_bits(s->format) / 8;
}
static size_t kpar_bytes(const struct mt_kvc_spec *s, size_t kvd, size_t tokens)
{
    if (mt_kvc_format_kivi(s->format)) return tokens / s->group * 2 * kvd * 2;
    return quantized(s->format) ? tokens * 2 * (kvd / s->group) * 2 : 0;
}
static size_t vpar_bytes(const struct mt_kvc_spec *s, size_t kvd, size_t tokens)
{
    return quantized(s->format) ? tokens * 2 * (kvd / s->group) * 2 : 0;
}
static size_t page_bytes(const struct mt_kvc_spec *s, size_t kvd, size_t tokens)
{
    return 2 * codes_bytes(s, kvd, tokens) + kpar_bytes(s, kvd, tokens) +
           vpar_bytes(s, kvd, tokens);
}

void mt_kvc_sizes(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *s,
                  struct mt_kvc_sizes *out)
{
    size_t kvd = mt_gpt_kv_dim(cfg), kivi = mt_kvc_format_kivi(s->format);
    out->unit_tokens = kivi ? s->group : 1;
    out->unit_bytes = cfg->n_layer * page_bytes(s, kvd, out->unit_tokens);
    out->fixed_bytes = kivi ? cfg->n_layer * 2 * (s->residual + s->group) * kvd * sizeof(float) : 0;
}

size_t mt_kvc_stored_tokens(const struct mt_kvc_spec *s, size_t n)
{
    if (!mt_kvc_format_kivi(s->format)) return n;
    return n > s->residual ? (n - s->residual) / s->group * s->group : 0;
}

static size_t round_up(size_t n, size_t u)
{
    return (n + u - 1) / u * u;
}

/* Packed positions a sequence must keep under a sliding window of cfg->window positions
 * (0 = no window): the window's oldest position may sit in a group of unit tokens whose
 * first is unit - 1 positions earlier, so window + unit - 1 rounded up to the unit. */
static size_t window_keep(const struct mt_gpt_config *cfg, size_t unit)
{
    return cfg->window ? round_up(cfg->window + unit - 1, unit) : 0;
}

size_t mt_kvc_kept_tokens(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *s,
                          size_t max_T)
{
    size_t unit = mt_kvc_format_kivi(s->format) ? s->group : 1;
    size_t all = round_up(max_T, unit), keep = window_keep(cfg, unit);
    return keep && keep < all ? keep : all;
}

size_t mt_kvc_contiguous_bytes(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *s,
                               size_t max_T)
{
    struct mt_kvc_sizes z;
    mt_kvc_sizes(cfg, s, &z);
    return z.fixed_bytes + mt_kvc_kept_tokens(cfg, s, max_T) / z.unit_tokens * z.unit_bytes;
}

size_t mt_kvc_paged_block(const struct mt_kvc_spec *s)
{
    return s->block ? s->block : s->group > 32 ? s->group : 32;
}

size_t mt_kvc_block_bytes(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *s)
{
    return cfg->n_layer * page_bytes(s, mt_gpt_kv_dim(cfg), s->block);
}

/* The pool's geometry for (max_T, n_seq, n_blocks): tokens per block, table entries,
 * blocks in the pool, bytes of one layer of one block. The one layout of mt_kvc_create and
 * mt_kvc_bytes. */
static void pool_layout(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *spec,
                        const struct mt_kvc_sizes *sz, size_t max_T, size_t n_seq, size_t n_blocks,
                        size_t *bs, size_t *blocks_max, size_t *n_pool, size_t *page)
{
    /* contiguous: one block of the positions kept (a ring under a window); paged: a ring
     * of block-table entries, enough for the window's blocks plus the one it enters */
    size_t kept = mt_kvc_kept_tokens(cfg, spec, max_T);
    *bs = spec->block ? spec->block : kept;
    *blocks_max = (max_T + *bs - 1) / *bs;
    if (spec->block && kept < round_up(max_T, sz->unit_tokens) &&
        (kept + *bs - 1) / *bs + 1 < *blocks_max)
        *blocks_max = (kept + *bs - 1) / *bs + 1;
    if (!spec->block) *blocks_max = 1;
    *n_pool = spec->block ? (n_blocks ? n_blocks : n_seq * *blocks_max) : n_seq;
    *page = page_bytes(spec, mt_gpt_kv_dim(cfg), *bs);
}

size_t mt_kvc_bytes(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *spec, size_t max_T,
                    size_t n_seq, size_t n_blocks)
{
    struct mt_kvc_sizes sz;
    size_t bs, blocks_max, n_pool, page;
    mt_kvc_sizes(cfg, spec, &sz);
    pool_layout(cfg, spec, &sz, max_T, n_seq, n_blocks, &bs, &blocks_max, &n_pool, &page);
    return n_pool * cfg->n_layer * page + n_seq * sz.fixed_bytes;
}

size_t mt_kvc_table_bytes(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *spec,
                          size_t max_T, size_t n_seq, size_t n_blocks)
{
    struct mt_kvc_sizes sz;
    size_t bs, blocks_max, n_pool, page;
    mt_kvc_sizes(cfg, spec, &sz);
    pool_layout(cfg, spec, &sz, max_T, n_seq, n_blocks, &bs, &blocks_max, &n_pool, &page);
    return n_seq * blocks_max * sizeof(uint32_t) +
           3 * n_seq * sizeof(size_t) + /* len, held, first */
           n_pool * sizeof(uint32_t);
}

void mt_kvc_free(struct mt_kvc *c)
{
    if (!c) return;
    free(c->pool);
    free(c->ring);
    free(c->table);
    free(c->len);
    free(c->held);
    free(c->first);
    free(c->free_ids);
    free(c);
}

/* Positions per tile of the attention: as many as keep one layer's tile of keys and values
 * (codes and scales) within MT_KVC_TILE_BYTES, from 64 up to MT_KVC_MAX_TILE, a multiple
 * of the group for the quantized formats. A tile costs every head one call of each kernel
 * and one online-softmax step, whose fixed part (the query's and the state's setup, the
 * reductions, the maximum) costs at a head dimension of 32 about what 64 positions'
 * arithmetic does: tiles of 512 instead of 64 (fp32) or 128 (quantized) made the `long`
 * model's attention at context 4096 20-25 % faster (bench_kvcache.sh, cpu_ms). The byte
 * bound keeps the tile in L2 while the heads (and the query heads of a GQA group) take it
 * in turn: a 4-bit `long` tile of 512 positions is 160 KiB. */
static size_t tile_of(const struct mt_kvc_spec *s, size_t kvd)
{
    size_t unit = mt_kvc_format_kivi(s->format) ? s->group : 1;
    size_t per = page_bytes(s, kvd, unit) / unit, t = MT_KVC_TILE_BYTES / (per ? per : 1);
    t = t < 64 ? 64 : t > MT_KVC_MAX_TILE ? MT_KVC_MAX_TILE : t;
    if (quantized(s->format)) t = t < s->group ? s->group : t / s->group * s->group;
    return t;
}

static void page_offsets(struct mt_kvc *c);

int mt_kvc_create(struct mt_kvc **out, const struct mt_gpt_config *cfg,
                  const struct mt_kvc_spec *spec, size_t max_T, size_t n_seq, size_t n_blocks,
                  char *err, size_t errlen)
{
    *out = NULL;
    if (mt_kvc_spec_check(cfg, spec, err, errlen)) return -1;
    if (!max_T || !n_seq) return mt_tf_fail(err, errlen, "empty KV cache");
    struct mt_kvc *c = calloc(1, sizeof *c);
    if (!c) return mt_tf_fail(err, errlen, "out of memory for the KV cache");
    c->cfg = *cfg;
    c->spec = *spec;
    mt_kvc_sizes(cfg, spec, &c->sz);
    c->kvd = mt_gpt_kv_dim(cfg);
    c->hs = cfg->n_embd / cfg->n_head;
    c->max_T = max_T;
    c->n_seq = n_seq;
    pool_layout(cfg, spec, &c->sz, max_T, n_seq, n_blocks, &c->bs, &c->blocks_max, &c->n_blocks,
                &c->page_bytes);
    c->tile = tile_of(spec, c->kvd);
    page_offsets(c);
    c->block_bytes = cfg->n_layer * c->page_bytes;
    c->ring_tokens = mt_kvc_format_kivi(spec->format) ? spec->residual + spec->group : 0;
    size_t ring_bytes = n_seq * c->sz.fixed_bytes;
    c->bytes = c->n_blocks * c->block_bytes + ring_bytes;
    c->table_bytes = mt_kvc_table_bytes(cfg, spec, max_T, n_seq, n_blocks);
    int prev = mt_memcat_set(MT_MEM_KV_CACHE);
    c->pool = calloc(1, c->n_blocks * c->block_bytes);
    c->ring = ring_bytes ? calloc(1, ring_bytes) : NULL;
    mt_memcat_set(MT_MEM_WORKSPACE);
    c->table = calloc(n_seq * c->blocks_max, sizeof *c->table);
    c->len = calloc(n_seq, sizeof *c->len);
    c->held = calloc(n_seq, sizeof *c->held);
    c->first = calloc(n_seq, sizeof *c->first);
    c->free_ids = calloc(c->n_blocks, sizeof *c->free_ids);
    mt_memcat_set(prev);
    if (!c->pool || (ring_bytes && !c->ring) || !c->table || !c->len || !c->held || !c->first ||
        !c->free_ids) {
        mt_kvc_free(c);
        return mt_tf_fail(err, errlen, "out of memory for the KV cache (%zu bytes)",
                          n_blocks * c->block_bytes + ring_bytes);
    }
    mt_memcat_report(c->pool, c->n_blocks * c->block_bytes, MT_MEM_KV_CACHE, "kv.cache");
    if (c->ring) mt_memcat_report(c->ring, ring_bytes, MT_MEM_KV_CACHE, "kv.ring");
    if (spec->block) { /* the free list, lowest id on top */
        for (size_t b = 0; b < c->n_blocks; b++)
            c->free_ids[b] = (uint32_t)(c->n_blocks - 1 - b);
        c->n_free = c->n_blocks;
    } else { /* a contiguous sequence owns its block for life */
        for (size_t s = 0; s < n_seq; s++) {
            c->table[s * c->blocks_max] = (uint32_t)s;
            c->held[s] = 1;
        }
    }
    *out = c;
    return 0;
}

/* The first position attention at length n reads (the window's start, rounded down to
 * the unit of a KIVI key group), and so the first logical block a sequence needs. */
static size_t first_pos(const struct mt_kvc *c, size_t n)
{
    size_t lo = c->cfg.window && n > c->cfg.window ? n - c->cfg.window : 0;
    return lo / c->sz.unit_tokens * c->sz.unit_tokens;
}

/* Logical blocks [*first, *hi) sequence length n needs (a paged cache). */
static void span(const struct mt_kvc *c, size_t n, size_t *first, size_t *hi)
{
    *hi = (mt_kvc_stored_tokens(&c->spec, n) + c->bs - 1) / c->bs;
    *first = first_pos(c, n) / c->bs;
    if (*first > *hi) *first = *hi;
}

/* The physical block of logical block b of sequence seq. */
static uint32_t block_of(const struct mt_kvc *c, size_t seq, size_t b)
{
    return c->table[seq * c->blocks_max + b % c->blocks_max];
}

int mt_kvc_reserve(struct mt_kvc *c, size_t seq, size_t n)
{
    if (c->spec.block) {
        size_t first, hi, *h = &c->held[seq], *f = &c->first[seq];
        uint32_t *tab = c->table + seq * c->blocks_max;
        span(c, n, &first, &hi);
        /* blocks that left the window go back to the free list */
        for (; *f < first && *h; (*f)++, (*h)--)
            c->free_ids[c->n_free++] = tab[*f % c->blocks_max];
        if (!*h) *f = first;
        if (hi - *f > *h + c->n_free) return -1;
        for (; *h < hi - *f; (*h)++)
            tab[(*f + *h) % c->blocks_max] = c->free_ids[--c->n_free];
    }
    c->len[seq] = n;
    return 0;
}

void mt_kvc_release(struct mt_kvc *c, size_t seq)
{
    if (c->spec.block)
        for (; c->held[seq]; c->held[seq]--)
            c->free_ids[c->n_free++] =
                c->table[seq * c->blocks_max + (c->first[seq] + c->held[seq] - 1) % c->blocks_max];
    c->len[seq] = 0;
    c->first[seq] = 0;
}

size_t mt_kvc_paged_seq_bytes(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *s,
                              size_t n)
{
    struct mt_kvc_sizes z;
    mt_kvc_sizes(cfg, s, &z);
    size_t bs = mt_kvc_paged_block(s), hi = (mt_kvc_stored_tokens(s, n) + bs - 1) / bs;
    size_t lo = cfg->window && n > cfg->window ? n - cfg->window : 0, first;
    first = lo / z.unit_tokens * z.unit_tokens / bs;
    struct mt_kvc_spec p = *s;
    p.block = bs;
    return z.fixed_bytes + (hi > first ? hi - first : 0) * mt_kvc_block_bytes(cfg, &p);
}

void mt_kvc_usage(const struct mt_kvc *c, size_t seq, double *used, size_t *held)
{
    size_t stored = mt_kvc_stored_tokens(&c->spec, c->len[seq]), lo = first_pos(c, c->len[seq]);
    stored -= lo < stored ? lo : stored;
    *used = (double)stored * c->sz.unit_bytes / c->sz.unit_tokens + c->sz.fixed_bytes;
    *held = c->held[seq] * c->block_bytes + c->sz.fixed_bytes;
}

/* ------------------------------------------------------------------ the layout */

/* A layer's page of block b: key codes, key scales (planar: scales then minima), value
 * codes, value scales. */
struct page {
    uint8_t *kc, *vc;
    uint16_t *ks, *km, *vs, *vm;
};

static struct page page_of(const struct mt_kvc *c, uint32_t block, size_t layer)
{
    struct page p;
    p.kc = c->pool + block * c->block_bytes + layer * c->page_bytes;
    p.ks = (uint16_t *)(void *)(p.kc + c->off[0]);
    p.km = (uint16_t *)(void *)(p.kc + c->off[1]);
    p.vc = p.kc + c->off[2];
    p.vs = (uint16_t *)(void *)(p.kc + c->off[3]);
    p.vm = (uint16_t *)(void *)(p.kc + c->off[4]);
    return p;
}

/* The offsets of page_of, once per cache (the attention asks for a page per tile, head
 * and keys or values: divisions there cost as much as a short run of a kernel). */
static void page_offsets(struct mt_kvc *c)
{
    const struct mt_kvc_spec *s = &c->spec;
    size_t kvd = c->kvd, cb = codes_bytes(s, kvd, c->bs), kp = kpar_bytes(s, kvd, c->bs);
    c->off[0] = cb, c->off[1] = cb + kp / 2, c->off[2] = cb + kp, c->off[3] = 2 * cb + kp;
    c->off[4] = 2 * cb + kp + vpar_bytes(s, kvd, c->bs) / 2;
}

/* Ring slot `slot` of layer `layer`, keys (which 0) or values (1), of sequence seq. */
static float *ring_row(const struct mt_kvc *c, size_t seq, size_t layer, int which, size_t slot)
{
    return c->ring +
           (((seq * c->cfg.n_layer + layer) * 2 + (size_t)which) * c->ring_tokens + slot) * c->kvd;
}

/* Quantizes n values x[j * xs] to `bits`-bit codes (asymmetric, fp16 scale and minimum):
 * code j goes to element i0 + j * is of rows (row stride rs bytes) ... written through
 * set(). */
static void quant(const float *x, size_t n, size_t xs, unsigned bits, uint16_t *scl, uint16_t *mn,
                  uint8_t *codes, size_t rs, size_t i0, size_t is)
{
    float lo = x[0], hi = x[0];
    for (size_t j = 1; j < n; j++) {
        float v = x[j * xs];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    float qmax = (float)((1u << bits) - 1u);
    *scl = mt_kvk_f2h((hi - lo) / qmax);
    *mn = mt_kvk_f2h(lo);
    float s = mt_kvk_h2f(*scl), m = mt_kvk_h2f(*mn);
    for (size_t j = 0; j < n; j++) {
        float q = s > 0.0f ? nearbyintf((x[j * xs] - m) / s) : 0.0f;
        unsigned code = q < 0.0f ? 0u : q > qmax ? (unsigned)qmax : (unsigned)q;
        mt_kvk_put_code(codes + j * rs, i0 + j * is, bits, code);
    }
}

/* One token's row x (kvd floats) into slot `slot` of a page's keys or values in a
 * non-KIVI format (or a KIVI value, quantized per token). */
static void pack_row(const struct mt_kvc *c, const float *x, uint8_t *codes, uint16_t *scl,
                     uint16_t *mn, size_t slot)
{
    size_t kvd = c->kvd, G = c->spec.group;
    switch (c->spec.format) {
    case MT_KVC_FP32:
        memcpy(codes + slot * kvd * 4, x, kvd * 4);
        return;
    case MT_KVC_BF16:
    case MT_KVC_FP16: {
        uint16_t *r = (uint16_t *)(void *)(codes + slot * kvd * 2);
        for (size_t i = 0; i < kvd; i++)
            r[i] = c->spec.format == MT_KVC_BF16 ? mt_kvk_f2bf(x[i]) : mt_kvk_f2h(x[i]);
        return;
    }
    default: {
        unsigned bits = mt_kvc_format_bits(c->spec.format);
        uint8_t *row = codes + slot * kvd * bits / 8;
        size_t ng = kvd / G;
        for (size_t g = 0; g < ng; g++)
            quant(x + g * G, G, 1, bits, scl + slot * ng + g, mn + slot * ng + g, row, 0, g * G, 1);
    }
    }
}

void mt_kvc_append(struct mt_kvc *c, size_t seq, size_t layer, size_t pos, const float *k,
                   const float *v)
{
    if (!c->ring_tokens) {
        struct page p = page_of(c, block_of(c, seq, pos / c->bs), layer);
        pack_row(c, k, p.kc, p.ks, p.km, pos % c->bs);
        pack_row(c, v, p.vc, p.vs, p.vm, pos % c->bs);
        return;
    }
    size_t W = c->ring_tokens, G = c->spec.group, R = c->spec.residual, kvd = c->kvd;
    memcpy(ring_row(c, seq, layer, 0, pos % W), k, kvd * sizeof *k);
    memcpy(ring_row(c, seq, layer, 1, pos % W), v, kvd * sizeof *v);
    if (pos + 1 < R + G || (pos + 1 - R) % G) return;
    /* tokens [t0, t0 + G) leave the fp32 ring: keys per channel, values per token (not
     * when a window shorter than the ring has left them behind: nothing reads them) */
    size_t t0 = pos + 1 - R - G, slot = t0 % c->bs;
    if (t0 + G <= first_pos(c, pos + 1)) return;
    struct page p = page_of(c, block_of(c, seq, t0 / c->bs), layer);
    unsigned bits = mt_kvc_format_bits(c->spec.format);
    float col[MAX_GROUP];
    size_t rb = kvd * bits / 8, gi = slot / G;
    for (size_t i = 0; i < kvd; i++) {
        for (size_t j = 0; j < G; j++)
            col[j] = ring_row(c, seq, layer, 0, (t0 + j) % W)[i];
        quant(col, G, 1, bits, p.ks + gi * kvd + i, p.km + gi * kvd + i, p.kc + slot * rb, rb, i,
              0);
    }
    for (size_t j = 0; j < G; j++)
        pack_row(c, ring_row(c, seq, layer, 1, (t0 + j) % W), p.vc, p.vs, p.vm, slot + j);
}

/* ------------------------------------------------------------------ attention */

static enum mt_kvk_kind key_kind(enum mt_kvc_format f)
{
    static const enum mt_kvk_kind k[MT_KVC_FORMAT_COUNT] = {
        MT_KVK_F32, MT_KVK_BF16, MT_KVK_F16, MT_KVK_TOK8, MT_KVK_CHAN4, MT_KVK_CHAN3, MT_KVK_CHAN2};
    return k[f];
}
static enum mt_kvk_kind value_kind(enum mt_kvc_format f)
{
    static const enum mt_kvk_kind k[MT_KVC_FORMAT_COUNT] = {
        MT_KVK_F32, MT_KVK_BF16, MT_KVK_F16, MT_KVK_TOK8, MT_KVK_TOK4, MT_KVK_TOK3, MT_KVK_TOK2};
    return k[f];
}

/* Which build runs kind: 0 the reference, 1 the fp32 loops (fp32 without AVX-512), 2
 * AVX-512. */
static int pick(const struct mt_kvc *c, enum mt_kvk_kind kind)
{
    if (c->impl == MT_KVC_IMPL_SCALAR) return 0;
    int grouped = kind >= MT_KVK_TOK8;
    int chan = kind >= MT_KVK_CHAN4; /* integer dot products: AVX-512 VNNI */
    if (c->hs % 16 == 0 && (!grouped || c->spec.group % 16 == 0) &&
        (chan ? mt_kvk_avx512_vnni_ok() : mt_kvk_avx512_ok()))
        return 2;
    return kind == MT_KVK_F32 ? 1 : 0;
}

static void scores(int impl, enum mt_kvk_kind kind, float *att, const float *q,
                   const struct mt_kvk_view *w, size_t n, size_t hs, size_t G, float scale)
{
    if (impl == 1)
        mt_kvk_scores_f32(att, q, (const float *)(const void *)w->codes, w->stride / 4, n, hs,
                          scale);
    else if (impl == 2)
        mt_kvk_scores_avx512(kind, att, q, w, n, hs, G, scale);
    else
        mt_kvk_scores_ref(kind, att, q, w, n, hs, G, scale);
}

/* o: the head's accumulator sets (mt_kvk_accum_avx512), pos0 the absolute position of
 * the view's first token. */
static void accum(int impl, enum mt_kvk_kind kind, float *o, const float *att, float inv,
                  const struct mt_kvk_view *w, size_t n, size_t hs, size_t G, size_t pos0)
{
    if (impl == 1)
        mt_kvk_accum_f32(o, att, inv, (const float *)(const void *)w->codes, w->stride / 4, n, hs);
    else if (impl == 2)
        mt_kvk_accum_avx512(kind, o, att, inv, w, n, hs, G, pos0);
    else
        mt_kvk_accum_ref(kind, o, att, inv, w, n, hs, G);
}

/* The view of kv head g of block `block`'s keys (which 0) or values (1), from its token
 * `off` on (a multiple of the group for KIVI keys). */
static struct mt_kvk_view view_of(const struct mt_kvc *c, uint32_t block, size_t layer, int which,
                                  size_t g, size_t off)
{
    struct page p = page_of(c, block, layer);
    size_t kvd = c->kvd, hs = c->hs, G = c->spec.group;
    unsigned bits = mt_kvc_format_bits(c->spec.format);
    struct mt_kvk_view w = {.codes =
                                (which ? p.vc : p.kc) + g * hs * bits / 8 + off * kvd * bits / 8,
                            .stride = kvd * bits / 8};
    if (!quantized(c->spec.format)) return w;
    if (!which && mt_kvc_format_kivi(c->spec.format)) { /* per channel */
        w.par_stride = kvd;
        w.scl = p.ks + g * hs + off / G * kvd, w.mn = p.km + g * hs + off / G * kvd;
    } else {
        w.par_stride = kvd / G;
        w.scl = (which ? p.vs : p.ks) + g * hs / G + off * w.par_stride;
        w.mn = (which ? p.vm : p.km) + g * hs / G + off * w.par_stride;
    }
    return w;
}

/* Prefetches what kv heads [g0, g1] read of the packed positions [t, e) (codes, and the
 * quantized formats' scales and minima, of keys and values): one pass over the lines of the
 * tile ahead, while the heads work on the current one. The rows of consecutive tokens
 * of a block are adjacent, so a run of a block is a few contiguous ranges; the kernels
 * then prefetch nothing themselves (each head prefetching its slice of every token cost
 * eight times the instructions for the same lines). Changes no arithmetic. */
static void prefetch_tile(const struct mt_kvc *c, size_t seq, size_t layer, size_t t, size_t e,
                          size_t g0, size_t g1)
{
    size_t G = c->spec.group, hs = c->hs, bs = c->bs;
    size_t rb = hs * mt_kvc_format_bits(c->spec.format) / 8;
    while (t < e) {
        size_t b = t / bs, end = (b + 1) * bs < e ? (b + 1) * bs : e, m = end - t;
        uint32_t blk = block_of(c, seq, b);
        for (int which = 0; which < 2; which++) {
            struct mt_kvk_view a = view_of(c, blk, layer, which, g0, t % bs),
                               z = view_of(c, blk, layer, which, g1, t % bs);
            mt_kvk_prefetch(a.codes, (size_t)(z.codes - a.codes) + (m - 1) * a.stride + rb);
            if (!a.scl) continue; /* fp32 and the 16-bit formats: codes only (no group) */
            int chan = !which && mt_kvc_format_kivi(c->spec.format);
            size_t pars = chan ? (t % G + m + G - 1) / G : m, np = chan ? hs : hs / G;
            mt_kvk_prefetch(a.scl, 2 * ((size_t)(z.scl - a.scl) + (pars - 1) * a.par_stride + np));
            mt_kvk_prefetch(a.mn, 2 * ((size_t)(z.mn - a.mn) + (pars - 1) * a.par_stride + np));
        }
        t = end;
    }
}

/* Query heads [h0, h1) (q and out: n_embd floats) over positions [lo, n). Tiles of
 * c->tile positions, aligned to absolute positions, each split into runs at the ends of
 * blocks and of KIVI's fp32 ring; per tile and head the scores, the online softmax step
 * (the running maximum and sum; the output rescaled when the maximum grows) and the
 * weighted values. The heads take a tile in turn while it sits in the L1 cache. The
 * arithmetic of a head depends on the positions only, never on where the blocks lie or
 * which heads share the call: paged equals contiguous bit for bit at any thread count. */
static void attend_heads(const struct mt_kvc *c, size_t seq, size_t layer, size_t lo, size_t n,
                         const float *q, float *out, size_t h0, size_t h1)
{
    size_t hs = c->hs, G = c->spec.group, S = c->tile, bs = c->bs, W = c->ring_tokens;
    size_t rep = c->cfg.n_head / (c->kvd / hs), stored = mt_kvc_stored_tokens(&c->spec, n);
    size_t lo_al = lo / c->sz.unit_tokens * c->sz.unit_tokens;
    enum mt_kvk_kind kind[2] = {key_kind(c->spec.format), value_kind(c->spec.format)};
    int impl[2] = {pick(c, kind[0]), pick(c, kind[1])}, ir = pick(c, MT_KVK_F32);
    int ref = c->impl == MT_KVC_IMPL_SCALAR;
    float s[MT_KVC_MAX_TILE], mx[HEADS_PER_PASS], sum[HEADS_PER_PASS];
    float scale = 1.0f / sqrtf((float)hs);
    /* the weighted values of a head: its output, or the AVX-512 kernel's state (sets and
     * lanes, mt_kvk_accum_avx512) where it has one; KIVI's fp32 ring adds to its first set */
    size_t ah = impl[1] == 2 ? mt_kvk_accum_floats(kind[1], hs, G) : hs;
    int st = ah > hs;
    float state[HEADS_PER_PASS * MT_KVK_ACCUM_MAX_FLOATS(MT_KVC_MAX_HEAD_DIM)]; /* 32 KiB */
    /* rows of MT_KVK_PREFETCH_MIN_STRIDE bytes and more: the hardware leaves them to wait */
    int tile_pf =
        impl[0] != 1 && mt_kvk_prefetch_ahead(c->kvd * mt_kvc_format_bits(c->spec.format) / 8);
#define ACC_OF(h) (st ? state + ((h)-h0) * ah : out + (h)*hs)
    for (size_t h = h0; h < h1; h++) {
        memset(ACC_OF(h), 0, ah * sizeof *out);
        mx[h - h0] = -INFINITY, sum[h - h0] = 0.0f;
    }
    for (size_t t0 = lo / S * S; t0 < n; t0 += S) {
        size_t a = t0 > lo_al ? t0 : lo_al, e = t0 + S < n ? t0 + S : n;
        if (tile_pf && t0 + S < stored)
            prefetch_tile(c, seq, layer, t0 + S, t0 + 2 * S < stored ? t0 + 2 * S : stored,
                          h0 / rep, (h1 - 1) / rep);
        for (size_t h = h0; h < h1; h++) {
            const float *qh = q + h * hs;
            float *o = ACC_OF(h);
            size_t g = h / rep;
            for (int which = 0; which < 2; which++) {
                for (size_t t = a; t < e;) {
                    size_t m;
                    struct mt_kvk_view w;
                    int im = impl[which];
                    enum mt_kvk_kind k = kind[which];
                    if (t < stored) { /* packed, in its block */
                        size_t b = t / bs, end = (b + 1) * bs;
                        end = end < stored ? end : stored;
                        m = (end < e ? end : e) - t;
                        w = view_of(c, block_of(c, seq, b), layer, which, g, t % bs);
                    } else { /* KIVI's fp32 ring */
                        size_t slot = t % W;
                        m = W - slot < e - t ? W - slot : e - t;
                        w = (struct mt_kvk_view){
                            .codes = (const uint8_t *)(const void *)(ring_row(c, seq, layer, which,
                                                                              slot) +
                                                                     g * hs),
                            .stride = c->kvd * 4};
                        im = ir, k = MT_KVK_F32;
                    }
                    if (!which)
                        scores(im, k, s + (t - a), qh, &w, m, hs, G, scale);
                    else
                        accum(im, k, o, s + (t - a), 1.0f, &w, m, hs, G, t);
                    t += m;
                }
                if (which) continue;
                for (size_t t = a; t < lo; t++) /* the group's positions before the window */
                    s[t - a] = -INFINITY;
                if (ref)
                    mt_kvk_online_ref(s, e - a, &mx[h - h0], &sum[h - h0], o, hs);
                else
                    mt_kvk_online(s, e - a, &mx[h - h0], &sum[h - h0], o, ah);
            }
        }
    }
    for (size_t h = h0; h < h1; h++) {
        float inv = 1.0f / sum[h - h0];
        if (st) {
            mt_kvk_accum_finish(kind[1], out + h * hs, ACC_OF(h), inv, hs, G);
            continue;
        }
        for (size_t i = 0; i < hs; i++)
            out[h * hs + i] *= inv;
    }
#undef ACC_OF
}

void mt_kvc_attend(const struct mt_kvc *c, size_t seq, size_t layer, size_t lo, size_t n,
                   const float *q, float *out)
{
    size_t NH = c->cfg.n_head;
    /* the heads in parts, in parallel once a step has enough work to share: a part per
     * thread (at most HEADS_PER_PASS heads each) */
    int par = NH > 1 && (n - lo) * NH * c->hs >= MT_KVC_PAR_MIN;
    size_t parts = par ? (size_t)omp_get_max_threads() : 1;
    parts = parts < NH ? parts : NH;
    if (parts < (NH + HEADS_PER_PASS - 1) / HEADS_PER_PASS)
        parts = (NH + HEADS_PER_PASS - 1) / HEADS_PER_PASS;
#pragma omp parallel for schedule(static) if (par)
    for (size_t p = 0; p < parts; p++)
        attend_heads(c, seq, layer, lo, n, q, out, p * NH / parts, (p + 1) * NH / parts);
}

/* ------------------------------------------------------------------ serving simulation */

struct sim_req {
    size_t prompt, total, slot;
};

/* Blocks sequence seq lacks for n tokens (after giving back what a window left). */
static size_t blocks_short(const struct mt_kvc *c, size_t seq, size_t n)
{
    size_t first, hi, end = c->first[seq] + c->held[seq];
    span(c, n, &first, &hi);
    if (c->first[seq] > first) first = c->first[seq];
    size_t have = end > first ? end - first : 0;
    return hi - first > have ? hi - first - have : 0;
}

/* One layout's run of the simulation (see mt_kvc_simulate). */
static int simulate(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *spec,
                    const struct mt_kvc_sim *sim, const struct sim_req *req0,
                    struct mt_kvc_sim_result *res, char *err, size_t errlen)
{
    size_t N = sim->requests, max_T = sim->prompt_max + sim->output_max;
    struct mt_kvc_sizes z;
    mt_kvc_sizes(cfg, spec, &z);
    size_t slots, n_blocks = 0, ring_blocks = 0;
    if (spec->block) {
        n_blocks = sim->budget_bytes / mt_kvc_block_bytes(cfg, spec);
        ring_blocks =
            (z.fixed_bytes + mt_kvc_block_bytes(cfg, spec) - 1) / mt_kvc_block_bytes(cfg, spec);
        slots = N;
    } else {
        slots = sim->budget_bytes / mt_kvc_contiguous_bytes(cfg, spec, max_T);
        if (slots > N) slots = N;
    }
    if (!slots || (spec->block && n_blocks < ring_blocks + max_T / spec->block + 1))
        return mt_tf_fail(err, errlen, "budget of %zu bytes holds no sequence of %zu tokens",
                          sim->budget_bytes, max_T);
    struct mt_kvc *c = NULL;
    if (mt_kvc_create(&c, cfg, spec, max_T, slots, n_blocks, err, errlen)) return -1;
    struct sim_req *req = malloc(N * sizeof *req);
    size_t *queue = malloc(N * sizeof *queue), *run = malloc(N * sizeof *run);
    size_t *free_slots = malloc(slots * sizeof *free_slots);
    if (!req || !queue || !run || !free_slots) {
        free(req), free(queue), free(run), free(free_slots);
        mt_kvc_free(c);
        return mt_tf_fail(err, errlen, "out of memory for the serving simulation");
    }
    memcpy(req, req0, N * sizeof *req);
    for (size_t i = 0; i < N; i++)
        queue[i] = i;
    for (size_t s = 0; s < slots; s++)
        free_slots[s] = slots - 1 - s;
    size_t qh = 0, qn = N, nrun = 0, nfree = slots, done = 0, ring_used = 0;
    double held_sum = 0.0, used_sum = 0.0, run_sum = 0.0;
    memset(res, 0, sizeof *res);
    while (done < N) {
        /* admission, first come first served: the prompt's tokens at once */
        while (qn && nfree) {
            struct sim_req *r = &req[queue[qh]];
            size_t s = free_slots[nfree - 1];
            if (spec->block && c->n_free < ring_used + ring_blocks) break;
            if (spec->block && c->n_free - ring_used - ring_blocks < blocks_short(c, s, r->prompt))
                break;
            if (mt_kvc_reserve(c, s, r->prompt)) break;
            nfree--, ring_used += ring_blocks;
            r->slot = s;
            run[nrun++] = queue[qh];
            qh = (qh + 1) % N, qn--;
        }
        if (!nrun) break; /* nothing fits: cannot happen after the budget check */
        /* one decode step: every running sequence grows by one token */
        for (size_t i = 0; i < nrun; i++) {
            struct sim_req *r = &req[run[i]];
            size_t n = c->len[r->slot] + 1;
            while (spec->block && blocks_short(c, r->slot, n) + ring_used > c->n_free) {
                /* preempt the newest sequence: its blocks back, recomputed later */
                struct sim_req *v = &req[run[nrun - 1]];
                mt_kvc_release(c, v->slot);
                free_slots[nfree++] = v->slot, ring_used -= ring_blocks;
                qh = (qh + N - 1) % N, qn++;
                queue[qh] = run[--nrun];
                res->preemptions++;
                if (v == r) break;
            }
            if (i >= nrun) break;
            mt_kvc_reserve(c, r->slot, n);
        }
        res->steps++;
        for (size_t i = 0; i < nrun; i++) {
            double used;
            size_t held;
            mt_kvc_usage(c, req[run[i]].slot, &used, &held);
            used_sum += used, held_sum += (double)held;
        }
        run_sum += (double)nrun;
        if (nrun > res->max_running) res->max_running = nrun;
        for (size_t i = 0; i < nrun;) { /* the finished leave */
            struct sim_req *r = &req[run[i]];
            if (c->len[r->slot] < r->total) {
                i++;
                continue;
            }
            mt_kvc_release(c, r->slot);
            free_slots[nfree++] = r->slot, ring_used -= ring_blocks;
            memmove(run + i, run + i + 1, (nrun - i - 1) * sizeof *run);
            nrun--, done++;
        }
    }
    res->mean_running = res->steps ? run_sum / (double)res->steps : 0.0;
    res->waste_ratio = held_sum > 0.0 ? (held_sum - used_sum) / held_sum : 0.0;
    free(req), free(queue), free(run), free(free_slots);
    mt_kvc_free(c);
    return done == N ? 0 : mt_tf_fail(err, errlen, "serving simulation stalled");
}

int mt_kvc_simulate(const struct mt_gpt_config *cfg, const struct mt_kvc_spec *spec,
                    const struct mt_kvc_sim *sim, struct mt_kvc_sim_result *contig,
                    struct mt_kvc_sim_result *paged, char *err, size_t errlen)
{
    if (!sim->requests || !sim->prompt_min || sim->prompt_min > sim->prompt_max ||
        !sim->output_min || sim->output_min > sim->output_max)
        return mt_tf_fail(err, errlen, "serving simulation: empty or inverted length ranges");
    struct sim_req *req = malloc(sim->requests * sizeof *req);
    if (!req) return mt_tf_fail(err, errlen, "out of memory for the serving simulation");
    struct mt_rng rng;
    mt_rng_seed(&rng, sim->seed);
    for (size_t i = 0; i < sim->requests; i++) {
        req[i].prompt = sim->prompt_min + mt_rng_below(&rng, sim->prompt_max - sim->prompt_min + 1);
        req[i].total = req[i].prompt + sim->output_min +
                       mt_rng_below(&rng, sim->output_max - sim->output_min + 1);
    }
    struct mt_kvc_spec s = *spec;
    s.block = 0;
    int rc = simulate(cfg, &s, sim, req, contig, err, errlen);
    s.block = mt_kvc_paged_block(spec);
    if (!rc) rc = simulate(cfg, &s, sim, req, paged, err, errlen);
    free(req);
    return rc;
}
