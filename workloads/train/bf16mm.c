/* bf16mm.c — bf16 GEMM through oneDNN's matmul primitive, with a primitive cache per
 * shape (see bf16mm.h). */
#include "bf16mm.h"

#include <stdio.h>
#include <stdlib.h>

#include <oneapi/dnnl/dnnl.h>

#include "half.h"

#define MAX_SHAPES 16

struct shape {
    size_t N, C, OC;
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

/* The primitive for one shape: src (N,C) bf16, weights (C,OC) bf16 read from the
 * row-major (OC,C) matrix through strides, bias (1,OC) f32, dst (N,OC) f32. */
static struct shape *shape_for(struct mt_bf16mm *c, size_t N, size_t C, size_t OC, int bias)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->s[i].N == N && c->s[i].C == C && c->s[i].OC == OC && c->s[i].bias == bias)
            return &c->s[i];
    if (c->n == MAX_SHAPES) return NULL;
    struct shape *s = &c->s[c->n];
    dnnl_dims_t sd = {(dnnl_dim_t)N, (dnnl_dim_t)C}, ss = {(dnnl_dim_t)C, 1};
    dnnl_dims_t wd = {(dnnl_dim_t)C, (dnnl_dim_t)OC}, ws = {1, (dnnl_dim_t)C};
    dnnl_dims_t bd = {1, (dnnl_dim_t)OC}, bs = {(dnnl_dim_t)OC, 1};
    dnnl_dims_t dd = {(dnnl_dim_t)N, (dnnl_dim_t)OC}, ds = {(dnnl_dim_t)OC, 1};
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_memory_desc_init_by_strides(&s->md[0], 2, sd, dnnl_bf16, ss) ||
        dnnl_memory_desc_init_by_strides(&s->md[1], 2, wd, dnnl_bf16, ws) ||
        dnnl_memory_desc_init_by_strides(&s->md[2], 2, bd, dnnl_f32, bs) ||
        dnnl_memory_desc_init_by_strides(&s->md[3], 2, dd, dnnl_f32, ds) ||
        dnnl_matmul_desc_init(&desc, &s->md[0], &s->md[1], bias ? &s->md[2] : NULL, &s->md[3]) ||
        dnnl_primitive_desc_create(&pd, &desc, NULL, c->eng, NULL))
        return NULL;
    dnnl_status_t st = dnnl_primitive_create(&s->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return NULL;
    s->N = N, s->C = C, s->OC = OC, s->bias = bias;
    c->n++;
    return s;
}

int mt_bf16mm_run(struct mt_bf16mm *c, float *out, const uint16_t *in, const uint16_t *w,
                  const float *bias, size_t N, size_t C, size_t OC, char *err, size_t errlen)
{
    struct shape *s = shape_for(c, N, C, OC, bias != NULL);
    if (!s)
        return snprintf(err, errlen, "oneDNN bf16 matmul %zux%zux%zu unavailable", N, C, OC), -1;
    void *ptrs[4] = {(void *)in, (void *)w, (void *)bias, out};
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
    return rc ? (snprintf(err, errlen, "oneDNN bf16 matmul failed"), -1) : 0;
}

void mt_bf16mm_ref(float *out, const uint16_t *in, const uint16_t *w, const float *bias, size_t N,
                   size_t C, size_t OC)
{
    for (size_t i = 0; i < N; i++)
        for (size_t o = 0; o < OC; o++) {
            float acc = bias ? bias[o] : 0.0f;
            for (size_t k = 0; k < C; k++)
                acc += mt_half_to_float(MT_PREC_BF16, in[i * C + k]) *
                       mt_half_to_float(MT_PREC_BF16, w[o * C + k]);
            out[i * OC + o] = acc;
        }
}
