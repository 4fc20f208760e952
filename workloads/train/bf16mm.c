/* bf16mm.c — bf16 GEMMs through oneDNN's matmul primitive, with a primitive cache per
 * shape (see bf16mm.h). Transposes are strides on plain memory descriptors; accumulation
 * is a sum post-op (dst = product + dst, in fp32). */
#include "bf16mm.h"

#include <stdio.h>
#include <stdlib.h>

#include <memtrade/memcat.h>
#include <oneapi/dnnl/dnnl.h>

#include "half.h"

/* An engine uses 5 linear shapes forward and 10 backward per micro-batch size. */
#define MAX_SHAPES 64

struct shape {
    struct mt_bf16mm_shape key;
    int bias;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t md[4]; /* src, weights, bias, dst */
};

struct mt_bf16mm {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    struct shape s[MAX_SHAPES];
    size_t n;
};

int mt_bf16mm_native(void)
{
    return dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx512_core_bf16;
}

int mt_bf16mm_create(struct mt_bf16mm **out, char *err, size_t errlen)
{
    struct mt_bf16mm *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c) return snprintf(err, errlen, "out of memory for the bf16 GEMM cache"), -1;
    if (dnnl_engine_create(&c->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->stream, c->eng, dnnl_stream_default_flags) != dnnl_success) {
        mt_bf16mm_free(c);
        return snprintf(err, errlen, "oneDNN CPU engine or stream creation failed"), -1;
    }
    *out = c;
    return 0;
}

void mt_bf16mm_free(struct mt_bf16mm *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++)
        dnnl_primitive_destroy(c->s[i].prim);
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->eng) dnnl_engine_destroy(c->eng);
    free(c);
}

static int same(const struct mt_bf16mm_shape *a, const struct mt_bf16mm_shape *b)
{
    return a->M == b->M && a->N == b->N && a->K == b->K && a->ta == b->ta && a->tb == b->tb &&
           a->accumulate == b->accumulate;
}

/* The attributes of a product: a sum post-op when it accumulates. */
static int make_attr(dnnl_primitive_attr_t *attr, int accumulate)
{
    *attr = NULL;
    if (!accumulate) return 0;
    dnnl_post_ops_t po = NULL;
    int bad = dnnl_primitive_attr_create(attr) != dnnl_success ||
              dnnl_post_ops_create(&po) != dnnl_success ||
              dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success ||
              dnnl_primitive_attr_set_post_ops(*attr, po) != dnnl_success;
    if (po) dnnl_post_ops_destroy(po);
    return bad ? -1 : 0;
}

/* The primitive for one shape: src op(a) (M,K) bf16, weights op(b) (K,N) bf16, both read
 * through strides, bias (1,N) f32, dst (M,N) f32. NULL when oneDNN refuses it or the
 * cache is full. */
static struct shape *shape_for(struct mt_bf16mm *c, const struct mt_bf16mm_shape *k, int bias)
{
    for (size_t i = 0; i < c->n; i++)
        if (same(&c->s[i].key, k) && c->s[i].bias == bias) return &c->s[i];
    if (c->n == MAX_SHAPES) return NULL;
    struct shape *s = &c->s[c->n];
    dnnl_dim_t M = (dnnl_dim_t)k->M, N = (dnnl_dim_t)k->N, K = (dnnl_dim_t)k->K;
    dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {1, N}, dd = {M, N};
    dnnl_dims_t as = {k->ta ? 1 : K, k->ta ? M : 1}, bs = {k->tb ? 1 : N, k->tb ? K : 1};
    dnnl_dims_t cs = {N, 1}, ds = {N, 1};
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    int bad =
        dnnl_memory_desc_init_by_strides(&s->md[0], 2, ad, dnnl_bf16, as) ||
        dnnl_memory_desc_init_by_strides(&s->md[1], 2, bd, dnnl_bf16, bs) ||
        dnnl_memory_desc_init_by_strides(&s->md[2], 2, cd, dnnl_f32, cs) ||
        dnnl_memory_desc_init_by_strides(&s->md[3], 2, dd, dnnl_f32, ds) ||
        dnnl_matmul_desc_init(&desc, &s->md[0], &s->md[1], bias ? &s->md[2] : NULL, &s->md[3]) ||
        make_attr(&attr, k->accumulate) ||
        dnnl_primitive_desc_create(&pd, &desc, attr, c->eng, NULL);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (bad) return NULL;
    dnnl_status_t st = dnnl_primitive_create(&s->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return NULL;
    s->key = *k, s->bias = bias;
    c->n++;
    return s;
}

int mt_bf16mm_gemm(struct mt_bf16mm *c, const struct mt_bf16mm_shape *k, float *out,
                   const uint16_t *a, const uint16_t *b, const float *bias, char *err,
                   size_t errlen)
{
    /* oneDNN allocates its scratchpads inside creation and execution: GEMM workspace, as
     * the model's fp32 GEMMs tag them. */
    int prev = mt_memcat_set(MT_MEM_WORKSPACE);
    struct shape *s = shape_for(c, k, bias != NULL);
    if (!s) {
        mt_memcat_set(prev);
        return snprintf(err, errlen, "oneDNN bf16 matmul %zux%zux%zu (ta %d tb %d%s) unavailable",
                        k->M, k->N, k->K, k->ta, k->tb, k->accumulate ? ", sum" : ""),
               -1;
    }
    void *ptrs[4] = {(void *)a, (void *)b, (void *)bias, out};
    int args[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
    dnnl_memory_t mem[4] = {0};
    dnnl_exec_arg_t ea[4];
    int n = 0, rc = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        if (!ptrs[i]) continue;
        rc = dnnl_memory_create(&mem[i], &s->md[i], c->eng, ptrs[i]) != dnnl_success;
        ea[n].arg = args[i];
        ea[n++].memory = mem[i];
    }
    if (!rc)
        rc = dnnl_primitive_execute(s->prim, c->stream, n, ea) != dnnl_success ||
             dnnl_stream_wait(c->stream) != dnnl_success;
    for (int i = 0; i < 4; i++)
        if (mem[i]) dnnl_memory_destroy(mem[i]);
    mt_memcat_set(prev);
    return rc ? (snprintf(err, errlen, "oneDNN bf16 matmul failed"), -1) : 0;
}

void mt_bf16mm_gemm_ref(const struct mt_bf16mm_shape *k, float *out, const uint16_t *a,
                        const uint16_t *b, const float *bias)
{
    size_t M = k->M, N = k->N, K = k->K;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            float acc = bias ? bias[j] : 0.0f;
            for (size_t q = 0; q < K; q++)
                acc += mt_half_to_float(MT_PREC_BF16, a[k->ta ? q * M + i : i * K + q]) *
                       mt_half_to_float(MT_PREC_BF16, b[k->tb ? j * K + q : q * N + j]);
            out[i * N + j] = k->accumulate ? out[i * N + j] + acc : acc;
        }
}

int mt_bf16mm_run(struct mt_bf16mm *c, float *out, const uint16_t *in, const uint16_t *w,
                  const float *bias, size_t N, size_t C, size_t OC, char *err, size_t errlen)
{
    struct mt_bf16mm_shape k = {.M = N, .N = OC, .K = C, .tb = 1};
    return mt_bf16mm_gemm(c, &k, out, in, w, bias, err, errlen);
}

void mt_bf16mm_ref(float *out, const uint16_t *in, const uint16_t *w, const float *bias, size_t N,
                   size_t C, size_t OC)
{
    struct mt_bf16mm_shape k = {.M = N, .N = OC, .K = C, .tb = 1};
    mt_bf16mm_gemm_ref(&k, out, in, w, bias);
}
