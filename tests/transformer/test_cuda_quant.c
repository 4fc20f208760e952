/* test_cuda_quant.c — the GPU's decode GEMVs on packed weights (cquant.h) against their
 * CPU references on the same bytes:
 *   kernels  mt_cu_qgemv on mt_qtensor_pack's block (int8 and 4-bit, asym and sym, tensor,
 *            channel and group 32/64/128, K not a multiple of 64 so padding is crossed)
 *            against mt_qgemm's scalar reference, and mt_cu_gemv_bf16 against a bf16
 *            loop; within 1e-4 of the largest output
 *   decode   a device model whose linears are packed (mt_cuda_gpt_quantize), decoding,
 *            against the CPU engine decoding with those weights dequantized; within 1e-4
 *            of the largest logit
 * Skips (exit 77) with the reason where there is no CUDA device.
 * Usage: test_transformer_cuda_quant SPEC PART... (parts: kernels decode) */
#include <cuda_runtime_api.h>
#include <math.h>

#include "cgpt.h"
#include "cquant.h"
#include "qkernels.h"
#include "rng.h"
#include "tf_test.h"

static struct mt_gpt_config cfg;
static char err[256];

static const struct mt_qformat formats[] = {
    {MT_QS_LINEAR_ASYM, 8, MT_QG_CHANNEL, 0, 0}, {MT_QS_LINEAR_SYM, 8, MT_QG_GROUP, 32, 0},
    {MT_QS_LINEAR_ASYM, 8, MT_QG_TENSOR, 0, 0},  {MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 32, 0},
    {MT_QS_LINEAR_SYM, 4, MT_QG_GROUP, 64, 0},   {MT_QS_LINEAR_ASYM, 4, MT_QG_GROUP, 128, 0},
    {MT_QS_LINEAR_SYM, 4, MT_QG_CHANNEL, 0, 0}};
enum { NF = sizeof formats / sizeof formats[0] };

/* The worst |dev - ref| over n outputs, as a share of the largest |ref|. */
static double worst_share(const float *dev, const float *ref, size_t n)
{
    double big = 1e-30, worst = 0.0;
    for (size_t i = 0; i < n; i++)
        big = fmax(big, fabs((double)ref[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)dev[i] - (double)ref[i]);
        worst = isnan(e) ? INFINITY : fmax(worst, e);
    }
    return worst / big;
}

static void *to_device(const void *h, size_t bytes)
{
    void *p = NULL;
    CHECK(cudaMalloc(&p, bytes) == cudaSuccess);
    CHECK(cudaMemcpy(p, h, bytes, cudaMemcpyHostToDevice) == cudaSuccess);
    return p;
}

static void from_device(void *h, const void *d, size_t bytes)
{
    CHECK(cudaDeviceSynchronize() == cudaSuccess && cudaGetLastError() == cudaSuccess);
    CHECK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
}

static void part_kernels(void)
{
    /* K 200: the 4-byte kernel; 256: 16-byte words; 192: rows padded past k (to 256 for
     * groups of 128), so the 16-byte kernel must not be taken: dx holds 256 nonzero
     * floats, and reading past k would add the padding codes times x[192..255] */
    const size_t N = 136, K = 256;
    float *w = malloc(N * K * sizeof *w), *x = malloc(K * sizeof *x);
    float *ref = malloc(N * sizeof *ref), *got = malloc(N * sizeof *got);
    CHECK(w && x && ref && got);
    struct mt_rng r;
    mt_rng_seed(&r, 11);
    for (size_t i = 0; i < N * K; i++)
        w[i] = (float)(0.05 * mt_rng_normal(&r));
    for (size_t i = 0; i < K; i++)
        x[i] = (float)mt_rng_normal(&r);
    float *dx = to_device(x, K * sizeof *x), *dy = to_device(ref, N * sizeof *ref);
    struct mt_qws *ws = mt_qws_create();
    static const size_t ks[] = {200, 256, 192};
    for (size_t f = 0; f < 3 * NF; f++) {
        size_t Kc = ks[f / NF];
        const struct mt_qformat *fm = &formats[f % NF];
        struct mt_qtensor *qt = mt_qtensor_pack(w, N, Kc, fm, err, sizeof err);
        CHECK_OK(qt == NULL, err);
        struct mt_cu_qmat q;
        CHECK_OK(mt_cu_qmat_upload(&q, qt, err, sizeof err), err);
        CHECK(q.bytes == mt_qtensor_bytes(qt)); /* the CPU plan's bytes, no more */
        CHECK_OK(mt_qgemm(ws, qt, x, 1, ref, MT_QACT_F32, MT_QIMPL_SCALAR, err, sizeof err), err);
        mt_cu_qgemv(dy, dx, NULL, &q);
        from_device(got, dy, N * sizeof *got);
        double s = worst_share(got, ref, N);
        printf("  %-11s %u-bit %-7s %3zu K %zu: rel diff %.3g, %zu B\n",
               mt_qscheme_name(fm->scheme), fm->bits, mt_qgran_name(fm->gran), fm->group_size, Kc,
               s, q.bytes);
        CHECK(s <= 1e-4);
        mt_cu_qmat_free(&q);
        CHECK(q.block == NULL);
        mt_qtensor_free(qt);
    }
    struct mt_qtensor *bad = mt_qtensor_pack(
        w, N, K, &(struct mt_qformat){MT_QS_NF, 4, MT_QG_GROUP, 64, 0}, err, sizeof err);
    struct mt_cu_qmat q;
    CHECK(bad && mt_cu_qmat_upload(&q, bad, err, sizeof err) == -1 && q.block == NULL);
    mt_qtensor_free(bad);
    /* bf16: K a multiple of 8 */
    const size_t K16 = 192;
    uint16_t *w16 = malloc(N * K16 * sizeof *w16);
    CHECK(w16);
    mt_q_f32_to_bf16_n(w, w16, N * K16, 1);
    for (size_t n = 0; n < N; n++) {
        double acc = 0.0;
        for (size_t k = 0; k < K16; k++)
            acc += (double)mt_q_bf16_to_f32(w16[n * K16 + k]) * x[k];
        ref[n] = (float)acc;
    }
    void *dw = to_device(w16, N * K16 * sizeof *w16);
    CHECK(mt_cu_gemv_bf16_ok(dw, dx, K16) && !mt_cu_gemv_bf16_ok(dw, dx, K16 - 4) &&
          !mt_cu_gemv_bf16_ok((char *)dw + 8, dx, K16));
    mt_cu_gemv_bf16(dy, dx, NULL, dw, N, K16);
    from_device(got, dy, N * sizeof *got);
    printf("  bf16 gemv: rel diff %.3g\n", worst_share(got, ref, N));
    CHECK(worst_share(got, ref, N) <= 1e-4);
    cudaFree(dw), cudaFree(dx), cudaFree(dy);
    mt_qws_destroy(ws);
    free(w16), free(w), free(x), free(ref), free(got);
}

/* Replaces every linear weight of h by its packed-then-decoded value in format f. */
static void dequantize_linears(struct mt_gpt *h, const struct mt_qformat *f)
{
    for (size_t l = 0; l <= cfg.n_layer; l++)
        for (int which = 0; which < MT_LIN_COUNT; which++) {
            if ((l == cfg.n_layer) != (which == MT_LIN_LMHEAD)) continue;
            float *w;
            size_t ind, outd;
            mt_gpt_linear_weights(h, l, (enum mt_linear)which, &w, NULL, &ind, &outd);
            struct mt_qtensor *qt = mt_qtensor_pack(w, outd, ind, f, err, sizeof err);
            CHECK_OK(qt == NULL, err);
            mt_qtensor_unpack(qt, w);
            mt_qtensor_free(qt);
        }
}

static void part_decode(void)
{
    for (size_t f = 0; f < NF; f += 2) {
        struct mt_gpt *h0, *h;
        struct mt_cuda_gpt *d;
        struct mt_gpt_kv *kh;
        struct mt_cuda_kv *kd;
        CHECK_OK(mt_gpt_create(&h0, &cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err), err);
        CHECK_OK(mt_gpt_create(&h, &cfg, MT_GPT_INFER, 1, cfg.seq_len, err, sizeof err), err);
        mt_gpt_init(h0, 3);
        mt_gpt_init(h, 3);
        dequantize_linears(h, &formats[f]);
        CHECK_OK(mt_cuda_gpt_create(&d, &cfg, MT_GPT_INFER, 1, cfg.seq_len, MT_CUDA_FP32, err,
                                    sizeof err),
                 err);
        CHECK_OK(mt_cuda_gpt_upload(d, h, err, sizeof err), err);
        CHECK_OK(mt_cuda_gpt_quantize(d, h0, &formats[f], err, sizeof err), err);
        CHECK(d->qbytes > 0 && d->qbytes < h->slab_bytes[MT_MEM_WEIGHTS] / 3);
        size_t n = cfg.seq_len < 16 ? cfg.seq_len : 16, t = 0;
        double worst = 0.0;
        CHECK_OK(mt_cuda_kv_create(&kd, d, n, err, sizeof err), err);
        CHECK_OK(mt_gpt_kv_create(&kh, &cfg, n, err, sizeof err), err);
        while (t < n) { /* the same tokens through both engines */
            int tok = (int)((t++ * 53 + 2) % cfg.vocab);
            CHECK_OK(mt_cuda_decode_step(d, kd, tok, 1, err, sizeof err), err);
            CHECK_OK(mt_gpt_decode_step(h, kh, tok, err, sizeof err), err);
            worst = fmax(worst, worst_share(kd->logits, kh->logits, cfg.vocab));
        }
        printf("  decode %s %u-bit %s %zu: %zu steps, logits rel diff %.3g, %zu packed B\n",
               mt_qscheme_name(formats[f].scheme), formats[f].bits, mt_qgran_name(formats[f].gran),
               formats[f].group_size, n, worst, d->qbytes);
        CHECK(worst <= 1e-4);
        mt_cuda_kv_free(kd);
        mt_gpt_kv_free(kh);
        mt_cuda_gpt_free(d);
        mt_gpt_free(h);
        mt_gpt_free(h0);
    }
}

int main(int argc, char **argv)
{
    static const struct tf_part parts[] = {{"kernels", part_kernels}, {"decode", part_decode}};
    char why[200];
    int have = mt_cuda_available(why, sizeof why);
    if (argc >= 3 && !have) printf("skipped: %s\n", why);
    if (argc >= 3 && !have) return 77;
    if (argc < 3) fprintf(stderr, "usage: %s SPEC kernels|decode...\n", argv[0]);
    if (argc < 3) return 2;
    CHECK_OK(mt_gpt_config_parse(&cfg, argv[1], err, sizeof err), err);
    printf("%s\n", argv[1]);
    return tf_run_parts(parts, sizeof parts / sizeof parts[0], argc - 1, argv + 1);
}
