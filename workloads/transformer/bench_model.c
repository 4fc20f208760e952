/* bench_model.c — mt-bench-model: speed of the reference transformer.
 *
 * What it is for: the numbers issue 2 asks for, on the shapes it names (small B=8 T=128,
 * GPT-2 124M with V=50257 at B=4 T=64): median ms per training step and per forward,
 * tokens/s, and model FLOP utilisation against the oneDNN sgemm peak measured in the same
 * process with the same threads. Also batch-1 KV-cache decode tokens/s.
 * What it is not for: a test (nothing here can fail on speed), or accuracy.
 *
 * With --quality PRESET it instead trains PRESET with the default recipe (issue 2) for
 * --steps steps on the default corpus (or --corpus PATH) and prints val_loss / val_bpb
 * over the whole validation split and the wall time.
 *
 * With --attention T1,T2,... it instead trains --model SPEC (default "long": L6 H8 C256,
 * batch 1) at each sequence length T with dense and with flash attention (issue 17):
 * training activation bytes and their gradients from the plan (mt_gpt_memory, equal to
 * the allocation), the bytes of attention alone (act.att over the layers + dact.att), and
 * the median ms per training step, dense and flash steps interleaved.
 *
 * Usage: mt-bench-model [--threads N] [--steps N] [--shape small|gpt2|all] [--decode N]
 *        mt-bench-model --quality small [--steps 2000] [--threads N] [--corpus PATH]
 *        mt-bench-model --attention 1024,2048,4096 [--model long] [--steps 5] [--threads N]
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

#include "bench_util.h"
#include "data.h"
#include "eval.h"
#include "gpt.h"
#include "rng.h"

/* Best GFLOP/s of square sgemms of size n (both operand layouts the model uses) over a
 * few repetitions: the "measured GEMM peak" that MFU is quoted against. */
static double sgemm_peak(size_t n)
{
    float *a = malloc(n * n * sizeof *a), *b = malloc(n * n * sizeof *b);
    float *c = malloc(n * n * sizeof *c);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0.0;
    }
    for (size_t i = 0; i < n * n; i++)
        a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 0.0;
    for (int r = 0; r < 12; r++) {
        double t0 = mt_bench_now();
        dnnl_sgemm('N', r % 2 ? 'T' : 'N', (dnnl_dim_t)n, (dnnl_dim_t)n, (dnnl_dim_t)n, 1.0f, a,
                   (dnnl_dim_t)n, b, (dnnl_dim_t)n, 0.0f, c, (dnnl_dim_t)n);
        double gf = 2.0 * (double)n * n * n / (mt_bench_now() - t0) / 1e9;
        best = gf > best ? gf : best;
    }
    free(a), free(b), free(c);
    return best;
}

static int bench_shape(const char *label, const char *spec, size_t B, size_t T, size_t steps,
                       size_t decode, double peak)
{
    char err[512];
    struct mt_gpt_config cfg;
    struct mt_gpt *m = NULL;
    if (mt_gpt_config_parse(&cfg, spec, err, sizeof err) ||
        mt_gpt_create(&m, &cfg, MT_GPT_TRAIN, B, T, err, sizeof err)) {
        fprintf(stderr, "mt-bench-model: %s: %s\n", label, err);
        return -1;
    }
    mt_gpt_init(m, 1337);
    printf("%-6s memory (MiB): weights %.1f, gradients %.1f, optimizer %.1f, activations %.1f, "
           "act_grads %.1f, workspace %.3f; weights+grads+optimizer = %.4f x 16 B/param\n",
           label, m->slab_bytes[MT_MEM_WEIGHTS] / 1048576.0,
           m->slab_bytes[MT_MEM_GRADIENTS] / 1048576.0, m->slab_bytes[MT_MEM_OPTIMIZER] / 1048576.0,
           m->slab_bytes[MT_MEM_ACTIVATIONS] / 1048576.0,
           m->slab_bytes[MT_MEM_ACT_GRADS] / 1048576.0, m->slab_bytes[MT_MEM_WORKSPACE] / 1048576.0,
           (double)(m->slab_bytes[MT_MEM_WEIGHTS] + m->slab_bytes[MT_MEM_GRADIENTS] +
                    m->slab_bytes[MT_MEM_OPTIMIZER]) /
               (16.0 * (double)m->n_params));
    struct mt_rng rng;
    mt_rng_seed(&rng, 42);
    int *in = malloc(2 * B * T * sizeof *in), *tg = in + B * T;
    for (size_t i = 0; i < 2 * B * T; i++)
        in[i] = (int)mt_rng_below(&rng, 256);
    struct mt_gpt_recipe r = mt_gpt_recipe_default(1000);
    r.batch = B, r.seq = T;
    double *ts = malloc(4 * steps * sizeof *ts), *tf = ts + steps, *tb = tf + steps,
           *to = tb + steps;
    float loss = 0.0f;
    for (size_t s = 0; s < steps + 2; s++) { /* two warm-up steps; the parts of mt_gpt_train_step */
        double t0 = mt_bench_now();
        if (mt_gpt_forward(m, in, tg, B, T, &loss, err, sizeof err)) {
            fprintf(stderr, "mt-bench-model: %s\n", err);
            return -1;
        }
        double t1 = mt_bench_now();
        mt_gpt_zero_grad(m);
        if (mt_gpt_backward(m, 1.0f, 0, err, sizeof err)) {
            fprintf(stderr, "mt-bench-model: %s\n", err);
            return -1;
        }
        double t2 = mt_bench_now();
        mt_gpt_adamw_step(m, &r, mt_gpt_lr_at(&r, s), 1.0f);
        double t3 = mt_bench_now();
        if (s >= 2) ts[s - 2] = t3 - t0, tb[s - 2] = t2 - t1, to[s - 2] = t3 - t2;
    }
    double bwd_s = mt_bench_median(tb, steps), opt_s = mt_bench_median(to, steps);
    for (size_t s = 0; s < steps; s++) {
        double t0 = mt_bench_now();
        mt_gpt_forward(m, in, tg, B, T, &loss, err, sizeof err);
        tf[s] = mt_bench_now() - t0;
    }
    printf("%-6s parts (medians): backward %.2f ms, clip + AdamW %.2f ms\n", label, bwd_s * 1e3,
           opt_s * 1e3);
    double step_s = mt_bench_median(ts, steps), fwd_s = mt_bench_median(tf, steps);
    size_t L = cfg.n_layer, C = cfg.n_embd;
    double nmat = (double)L * 12.0 * C * C + (double)cfg.vocab * C;
    double flops = (6.0 * nmat + 6.0 * (double)L * T * C) * (double)(B * T);
    double gfs = flops / step_s / 1e9;
    printf("%-6s B=%zu T=%zu params=%zu threads=%d: step %.2f ms (median of %zu), forward "
           "%.2f ms, %.0f tokens/s, %.1f GFLOP/s, MFU %.1f%% of measured sgemm peak\n",
           label, B, T, m->n_params, omp_get_max_threads(), step_s * 1e3, steps, fwd_s * 1e3,
           (double)(B * T) / step_s, gfs, 100.0 * gfs / peak);
    if (decode) {
        struct mt_gpt_kv *kv = NULL;
        size_t n = decode < cfg.seq_len ? decode : cfg.seq_len;
        if (mt_gpt_kv_create(&kv, &cfg, n, err, sizeof err) == 0) {
            double t0 = mt_bench_now();
            for (size_t i = 0; i < n; i++)
                mt_gpt_decode_step(m, kv, in[i % (B * T)], err, sizeof err);
            printf("%-6s decode batch 1: %.1f tokens/s over %zu positions\n", label,
                   (double)n / (mt_bench_now() - t0), n);
            mt_gpt_kv_free(kv);
        }
    }
    free(ts), free(in);
    mt_gpt_free(m);
    return 0;
}

/* Dense against flash attention: plan bytes and interleaved step times at each T. */
static int attention(const char *spec, const char *Ts, size_t steps)
{
    char err[512], list[256];
    snprintf(list, sizeof list, "%s", Ts);
    printf("%-6s %-7s %14s %14s %14s %10s %12s\n", "T", "attn", "activations_B", "act_grads_B",
           "attention_B", "step_ms", "first_loss");
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        struct mt_gpt_config cfg[2];
        struct mt_gpt *m[2] = {NULL, NULL};
        size_t T = (size_t)atol(tok), bytes[2][MT_MEM_CAT_COUNT], att[2];
        double *ms = malloc(2 * steps * sizeof *ms);
        int *in = malloc(2 * T * sizeof *in), *tg = in + T, rc = 0;
        float loss[2] = {0, 0};
        struct mt_gpt_recipe r = mt_gpt_recipe_default(steps + 1);
        r.batch = 1, r.seq = T;
        for (size_t i = 0; i < 2 * T; i++)
            in[i] = (int)(i * 2654435761u % 256);
        for (int k = 0; k < 2 && !rc; k++) {
            rc = mt_gpt_config_parse(&cfg[k], spec, err, sizeof err);
            if (rc) break;
            cfg[k].seq_len = T > cfg[k].seq_len ? T : cfg[k].seq_len;
            cfg[k].attention = k ? MT_GPT_ATTN_FLASH : MT_GPT_ATTN_DENSE;
            rc = !mt_gpt_memory(&cfg[k], 1, T, MT_GPT_TRAIN, bytes[k], err, sizeof err) ||
                 mt_gpt_create(&m[k], &cfg[k], MT_GPT_TRAIN, 1, T, err, sizeof err);
            att[k] = (cfg[k].n_layer * mt_gpt_act_elems(&cfg[k], 1, T, MT_A_ATT) +
                      mt_gpt_dact_elems(&cfg[k], 1, T, MT_D_ATT)) *
                     sizeof(float);
            if (!rc) mt_gpt_init(m[k], 1);
        }
        /* one warm-up step each (its loss is printed), then steps interleaved */
        for (size_t s = 0; s <= steps && !rc; s++)
            for (int k = 0; k < 2 && !rc; k++) {
                double t0 = mt_bench_now();
                float l;
                rc = mt_gpt_train_step(m[k], &r, s, in, tg, &l, NULL, err, sizeof err);
                if (s)
                    ms[k * steps + s - 1] = 1e3 * (mt_bench_now() - t0);
                else
                    loss[k] = l;
            }
        for (int k = 0; k < 2 && !rc; k++) {
            printf("%-6zu %-7s %14zu %14zu %14zu %10.1f %12.7f\n", T, k ? "flash" : "dense",
                   bytes[k][MT_MEM_ACTIVATIONS], bytes[k][MT_MEM_ACT_GRADS], att[k],
                   mt_bench_median(ms + k * steps, steps), loss[k]);
        }
        if (!rc)
            printf("%-6zu ratio   %14.2f %14.2f %14.1f %10.2f  (dense / flash; %zu steps, B=1)\n",
                   T, (double)bytes[0][MT_MEM_ACTIVATIONS] / (double)bytes[1][MT_MEM_ACTIVATIONS],
                   (double)bytes[0][MT_MEM_ACT_GRADS] / (double)bytes[1][MT_MEM_ACT_GRADS],
                   (double)att[0] / (double)att[1],
                   mt_bench_median(ms, steps) / mt_bench_median(ms + steps, steps), steps);
        mt_gpt_free(m[0]);
        mt_gpt_free(m[1]);
        free(ms), free(in);
        if (rc) {
            fprintf(stderr, "mt-bench-model: T=%zu: %s\n", T, err);
            return -1;
        }
    }
    return 0;
}

/* Trains `spec` with the default recipe and evaluates on the whole validation split. */
static int quality(const char *spec, size_t steps, const char *corpus_path)
{
    char err[512];
    struct mt_gpt_config cfg;
    struct mt_corpus c;
    struct mt_gpt *m = NULL, *ev = NULL;
    struct mt_gpt_recipe r = mt_gpt_recipe_default(steps);
    if (mt_gpt_config_parse(&cfg, spec, err, sizeof err) ||
        mt_corpus_load(&c, corpus_path, r.seq, err, sizeof err)) {
        fprintf(stderr, "mt-bench-model: %s\n", err);
        return -1;
    }
    r.seq = cfg.seq_len < r.seq ? cfg.seq_len : r.seq;
    if (mt_gpt_create(&m, &cfg, MT_GPT_TRAIN, r.batch, r.seq, err, sizeof err) ||
        mt_gpt_create(&ev, &cfg, MT_GPT_INFER, 8, r.seq, err, sizeof err)) {
        fprintf(stderr, "mt-bench-model: %s\n", err);
        return -1;
    }
    mt_gpt_init(m, 1337);
    struct mt_rng rng;
    mt_rng_seed(&rng, 1337 ^ 0x6261746368ull);
    int *in = malloc(2 * r.batch * r.seq * sizeof *in), *tg = in + r.batch * r.seq;
    double t0 = mt_bench_now();
    float loss = 0.0f;
    for (size_t s = 0; s < steps; s++) {
        mt_batch_sample(c.train, c.n_train, r.batch, r.seq, &rng, in, tg);
        if (mt_gpt_train_step(m, &r, s, in, tg, &loss, NULL, err, sizeof err)) {
            fprintf(stderr, "mt-bench-model: %s\n", err);
            return -1;
        }
        if (s % 250 == 0 || s + 1 == steps)
            printf("step %5zu loss %.4f (%.1f s)\n", s + 1, loss, mt_bench_now() - t0);
    }
    double train_s = mt_bench_now() - t0;
    memcpy(ev->params, m->params, m->slab_bytes[MT_MEM_WEIGHTS]);
    struct mt_eval_result e;
    if (mt_gpt_eval(ev, c.val, c.n_val, 0, &e, err, sizeof err)) {
        fprintf(stderr, "mt-bench-model: %s\n", err);
        return -1;
    }
    printf("%s: %zu steps B=%zu T=%zu in %.1f s (%.0f tokens/s); val over %zu bytes: "
           "val_loss %.4f nats/byte, val_bpb %.4f, val_ppl %.2f, val_top1 %.3f (eval %.1f s)\n",
           spec, steps, r.batch, r.seq, train_s, (double)(steps * r.batch * r.seq) / train_s,
           e.tokens, e.loss, e.bpb, e.ppl, e.top1, e.seconds);
    free(in);
    mt_gpt_free(m);
    mt_gpt_free(ev);
    mt_corpus_free(&c);
    return 0;
}

int main(int argc, char **argv)
{
    const char *quality_spec = NULL, *corpus = NULL, *att_Ts = NULL, *model = "long";
    size_t steps = 10, decode = 64;
    const char *shape = "all";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            omp_set_num_threads(atoi(argv[++i]));
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc)
            shape = argv[++i];
        else if (!strcmp(argv[i], "--decode") && i + 1 < argc)
            decode = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--quality") && i + 1 < argc)
            quality_spec = argv[++i];
        else if (!strcmp(argv[i], "--corpus") && i + 1 < argc)
            corpus = argv[++i];
        else if (!strcmp(argv[i], "--attention") && i + 1 < argc)
            att_Ts = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else {
            fprintf(stderr, "usage: mt-bench-model [--threads N] [--steps N] "
                            "[--shape small|gpt2|all] [--decode N] [--quality PRESET] "
                            "[--corpus PATH] [--attention T1,T2,... [--model SPEC]]\n");
            return 2;
        }
    }
    if (!steps) steps = 1;
    if (quality_spec) return quality(quality_spec, steps, corpus) ? 1 : 0;
    if (att_Ts) return attention(model, att_Ts, steps) ? 1 : 0;
    double peak = sgemm_peak(2048);
    const char *wait = getenv("OMP_WAIT_POLICY"), *core = getenv("OPENBLAS_CORETYPE");
    printf("oneDNN sgemm peak (2048^3, %d threads): %.1f GFLOP/s [OMP_WAIT_POLICY=%s "
           "OPENBLAS_CORETYPE=%s]\n",
           omp_get_max_threads(), peak, wait ? wait : "(unset)", core ? core : "(unset)");
    int rc = 0;
    if (!strcmp(shape, "all") || !strcmp(shape, "small"))
        rc |= bench_shape("small", "small", 8, 128, steps, decode, peak);
    if (!strcmp(shape, "all") || !strcmp(shape, "gpt2"))
        rc |= bench_shape("gpt2", "gpt2,vocab=50257", 4, 64, steps, decode, peak);
    return rc ? 1 : 0;
}
