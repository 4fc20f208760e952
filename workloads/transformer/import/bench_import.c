/* bench_import.c — mt-bench-import: what loading a model file costs, and how fast a
 * 1B-class Llama shape evaluates (scripts/bench_import.sh drives it).
 *   write SPEC DIR      random weights of SPEC (seed 1) as DIR/model.mtckpt (memtrade's
 *                       checkpoint: the baseline), DIR/hf-f32, DIR/hf-bf16 (Hugging Face),
 *                       DIR/f32.gguf, DIR/q8_0.gguf
 *   load PATH MAP       one load into a weights-only model (MAP 1: f32 tensors in the
 *                       model's layout mapped, 0: everything copied): prints seconds,
 *                       the seconds of then reading every weight once (a mapped tensor's
 *                       pages are read from the file, or the page cache, then),
 *                       bytes mapped and copied, RSS after the load and after reading
 *                       every weight once, and the process's peak RSS (VmHWM)
 *   eval SPEC TOKENS T  a random-weight SPEC model (batch 1, windows of T) scores TOKENS
 *                       random bytes with the evaluation protocol (mt_gpt_eval) after a
 *                       one-window warm-up: tokens/s
 * Not for: tests (nothing here fails on speed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ckpt.h"
#include "eval.h"
#include "modelfile.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A /proc/self/status field in bytes (kB there). */
static size_t status_bytes(const char *field)
{
    char line[256];
    size_t kb = 0, n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n)) sscanf(line + n + 1, "%zu", &kb);
    if (f) fclose(f);
    return kb * 1024;
}

static int fail(const char *err)
{
    fprintf(stderr, "mt-bench-import: %s\n", err);
    return 1;
}

static int cmd_write(const char *spec, const char *dir)
{
    char err[1024], p[4096];
    struct mt_gpt_config cfg;
    struct mt_gpt *m;
    if (mt_gpt_config_parse(&cfg, spec, err, sizeof err) ||
        mt_gpt_create(&m, &cfg, MT_GPT_WEIGHTS, 0, 0, err, sizeof err))
        return fail(err);
    mt_gpt_init(m, 1);
    mkdir(dir, 0755);
    static const struct {
        const char *name;
        enum mt_model_format fmt;
        enum mt_dtype dt;
    } outs[] = {{"hf-f32", MT_MF_HF, MT_DT_F32},
                {"hf-bf16", MT_MF_HF, MT_DT_BF16},
                {"f32.gguf", MT_MF_GGUF, MT_DT_F32},
                {"q8_0.gguf", MT_MF_GGUF, MT_DT_Q8_0}};
    snprintf(p, sizeof p, "%s/model.mtckpt", dir);
    double t = now();
    if (mt_ckpt_save(m, p, err, sizeof err)) return fail(err);
    printf("write %-10s %.2f s\n", "model.mtckpt", now() - t);
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, outs[i].name);
        t = now();
        if (mt_model_export(m, outs[i].fmt, outs[i].dt, p, err, sizeof err)) return fail(err);
        printf("write %-10s %.2f s\n", outs[i].name, now() - t);
    }
    mt_gpt_free(m);
    return 0;
}

static int cmd_load(const char *path, int map)
{
    char err[1024];
    struct mt_gpt *m;
    struct mt_model_info info = {0};
    size_t n = strlen(path);
    double t = now();
    int rc = n > 7 && !strcmp(path + n - 7, ".mtckpt")
                 ? mt_ckpt_load(path, NULL, MT_GPT_WEIGHTS, 0, 0, &m, NULL, err, sizeof err)
                 : mt_model_load(path, NULL, MT_GPT_WEIGHTS, 0, 0, map, &m, &info, err, sizeof err);
    double s = now() - t;
    if (rc) return fail(err);
    size_t rss_load = status_bytes("VmRSS:");
    double sum = 0.0; /* read every weight once: mapped pages become resident */
    t = now();
    for (int p = 0; p < MT_P_COUNT; p++)
        for (size_t i = 0; i < m->param_len[p]; i++)
            sum += m->param[p][i];
    double rs = now() - t;
    printf("load %s map=%d seconds %.3f read %.3f weights %zu mapped %zu copied %zu slab %zu "
           "rss_after_load %zu rss_after_read %zu peak_rss %zu (sum %.3g)\n",
           path, map, s, rs, mt_gpt_weight_bytes(m), m->mapped_bytes,
           n > 7 && !strcmp(path + n - 7, ".mtckpt") ? mt_gpt_weight_bytes(m) : info.copied_bytes,
           m->slab_bytes[MT_MEM_WEIGHTS], rss_load, status_bytes("VmRSS:"),
           status_bytes("VmHWM:"), sum);
    mt_gpt_free(m);
    return 0;
}

static int cmd_eval(const char *spec, size_t tokens, size_t T)
{
    char err[1024];
    struct mt_gpt_config cfg;
    struct mt_gpt *m;
    struct mt_eval_result r;
    if (mt_gpt_config_parse(&cfg, spec, err, sizeof err) ||
        mt_gpt_create(&m, &cfg, MT_GPT_INFER, 1, T, err, sizeof err))
        return fail(err);
    mt_gpt_init(m, 1);
    uint8_t *data = malloc(tokens + T + 1);
    for (size_t i = 0; i < tokens + T + 1; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 24);
    if (mt_gpt_eval(m, data, T + 1, 0, &r, err, sizeof err)) return fail(err); /* warm-up */
    double t = now();
    if (mt_gpt_eval(m, data, tokens + 1, 0, &r, err, sizeof err)) return fail(err);
    double s = now() - t;
    printf("eval %s params %zu tokens %zu T %zu seconds %.2f tokens_per_s %.2f\n", spec,
           m->n_params, r.tokens, T, s, (double)r.tokens / s);
    free(data);
    mt_gpt_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "write")) return cmd_write(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "load")) return cmd_load(argv[2], atoi(argv[3]));
    if (argc == 5 && !strcmp(argv[1], "eval"))
        return cmd_eval(argv[2], (size_t)atol(argv[3]), (size_t)atol(argv[4]));
    fprintf(stderr, "usage: mt-bench-import write SPEC DIR | load PATH MAP | eval SPEC TOKENS T\n");
    return 2;
}
