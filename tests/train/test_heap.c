/* test_heap.c — what the heap profiler measures per category equals what the training
 * engine says it allocated, and (pooled) what the plan computes from the configuration.
 *
 * What it is for: for a few engine configurations (fp32/bf16, checkpointing, pool and
 * malloc, the optimizers adamw8/adafactor, the optimizer offloaded to a file, selective
 * recompute), run two training steps in a child under LD_PRELOAD=libmt_heap.so, read the
 * report (profilers/heap/heapreport.h) and compare the peak of every training category
 * (weights, gradients, optimizer, activations, act_grads, workspace) with the engine's
 * own accounting printed by the child, and with mt_tmodel_plan for the pool. Not run
 * under AddressSanitizer (it replaces malloc; the interposer cannot run under it).
 * What it is not for: the profiler's own correctness (tests/heap).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gpt.h"
#include "heapreport.h"
#include "tmodel.h"
#include "tf_test.h"

static char err[512];

enum { T_SEQ = 32, B = 4 };

/* argv: precision, every, pool|malloc, the optimizer (adamw|adamw8|adafactor, "+offload"
 * and/or "+selective" appended), the scratch folder (the offload file's). */
static struct mt_tmodel_opts parse_opts(char **argv, struct mt_gpt_config *cfg)
{
    CHECK_OK(mt_gpt_config_parse(cfg, "tiny,n_layer=4", err, sizeof err), err);
    struct mt_tmodel_opts o = {.micro_batch = B, .seq = T_SEQ, .master_weights = 1};
    CHECK(mt_prec_parse(argv[0], &o.prec) == 0);
    o.every = (size_t)atoi(argv[1]);
    o.pool = !strcmp(argv[2], "pool");
    char kind[32];
    snprintf(kind, sizeof kind, "%s", argv[3]);
    o.offload = strstr(kind, "+offload") != NULL;
    o.selective = strstr(kind, "+selective") != NULL;
    kind[strcspn(kind, "+")] = '\0';
    CHECK(mt_optim_parse(kind, &o.optimizer) == 0);
    o.scratch_dir = argv[4];
    return o;
}

/* The child: two steps, then the engine's own peaks on stdout ("cat peak"). */
static int child(char **argv)
{
    struct mt_gpt_config cfg;
    struct mt_tmodel_opts o = parse_opts(argv, &cfg);
    struct mt_tmodel *t = NULL;
    CHECK_OK(mt_tmodel_create(&t, &cfg, &o, 1, err, sizeof err), err);
    struct mt_gpt_recipe r = mt_gpt_recipe_default(2);
    int in[B * T_SEQ], tg[B * T_SEQ];
    for (size_t i = 0; i < B * T_SEQ; i++)
        in[i] = (int)(i * 7 % 256), tg[i] = (int)(i * 13 % 256);
    for (int s = 0; s < 2; s++) {
        float loss;
        CHECK_OK(mt_tmodel_forward_backward(t, in, tg, B, 1.0f, 0, &loss, err, sizeof err), err);
        mt_tmodel_adamw(t, &r, 1e-3f, 1.0f);
    }
    const struct mt_tmodel_stats *st = mt_tmodel_stats(t);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        printf("%s %zu\n", mt_mem_cat_names[c], st->peak[c]);
    mt_tmodel_free(t);
    return 0;
}

struct peaks {
    long long v[MT_MEM_CAT_COUNT];
};

static int on_category(const struct mt_heapreport_category *c, void *user)
{
    struct peaks *p = user;
    for (int k = 0; k < MT_MEM_CAT_COUNT; k++)
        if (!strcmp(c->name, mt_mem_cat_names[k])) p->v[k] = c->peak;
    return 0;
}

static void run_case(const char *self, const char *lib, const char *dir, char **args)
{
    char report[1024], out[1024];
    snprintf(report, sizeof report, "%s/heap-%s-%s-%s-%s.txt", dir, args[0], args[1], args[2],
             args[3]);
    snprintf(out, sizeof out, "%s/engine-%s-%s-%s-%s.txt", dir, args[0], args[1], args[2],
             args[3]);
    fflush(stdout); /* the child must not inherit buffered output */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(out, "w", stdout);
        if (!f) _exit(3);
        setenv("LD_PRELOAD", lib, 1);
        setenv("MEMTRADE_HEAP_OUT", report, 1);
        setenv("MEMTRADE_HEAP_MODE", "full", 1);
        char *argv[] = {(char *)self, "child", args[0], args[1], args[2], args[3], (char *)dir,
                        NULL};
        execv(self, argv);
        _exit(4);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);

    struct peaks measured;
    memset(&measured, -1, sizeof measured);
    struct mt_heapreport_cb cb = {.category = on_category};
    CHECK_OK(mt_heapreport_read(report, &cb, &measured, err, sizeof err), err);
    size_t engine[MT_MEM_CAT_COUNT] = {0};
    FILE *f = fopen(out, "r");
    CHECK(f);
    char name[64];
    size_t v;
    while (fscanf(f, "%63s %zu", name, &v) == 2)
        for (int k = 0; k < MT_MEM_CAT_COUNT; k++)
            if (!strcmp(name, mt_mem_cat_names[k])) engine[k] = v;
    fclose(f);
    struct mt_gpt_config cfg;
    char *pargs[] = {args[0], args[1], args[2], args[3], (char *)dir};
    struct mt_tmodel_opts o = parse_opts(pargs, &cfg);
    struct mt_tmodel_plan plan;
    CHECK_OK(mt_tmodel_plan(&cfg, &o, &plan, err, sizeof err), err);
    static const int cats[] = {MT_MEM_WEIGHTS,     MT_MEM_GRADIENTS, MT_MEM_OPTIMIZER,
                               MT_MEM_ACTIVATIONS, MT_MEM_ACT_GRADS, MT_MEM_WORKSPACE};
    printf("%s every=%s %s %s:", args[0], args[1], args[2], args[3]);
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++) {
        int c = cats[i];
        printf(" %s %lld", mt_mem_cat_names[c], measured.v[c]);
        /* The workspace category also holds what oneDNN allocates for itself inside a
         * GEMM (the model tags those buffers as workspace, and the engine cannot know
         * their size): there the profiler must see at least the engine's own buffers.
         * Every other category belongs to the engine alone and must match exactly. */
        int exact = c != MT_MEM_WORKSPACE;
        int ok = exact ? measured.v[c] == (long long)engine[c] : measured.v[c] >= (long long)engine[c];
        if (!ok)
            fprintf(stderr, "\n%s: profiler %lld, engine %zu\n", mt_mem_cat_names[c], measured.v[c],
                    engine[c]);
        CHECK(ok);
        if (o.pool || (c != MT_MEM_ACTIVATIONS && c != MT_MEM_ACT_GRADS))
            CHECK(engine[c] == plan.bytes[c]);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc == 7 && !strcmp(argv[1], "child")) return child(argv + 2);
    if (argc != 3) {
        fprintf(stderr, "usage: %s LIBMT_HEAP.so SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    char *cases[][4] = {{"fp32", "1", "pool", "adamw"},
                        {"fp32", "2", "pool", "adamw"},
                        {"bf16", "4", "pool", "adamw"},
                        {"fp16", "1", "malloc", "adamw"},
                        {"fp32", "2", "malloc", "adamw"},
                        {"fp32", "1", "pool", "adamw8"},
                        {"bf16", "2", "pool", "adafactor"},
                        {"fp32", "1", "pool", "adamw8+offload"},
                        {"bf16", "1", "pool", "adafactor+offload"},
                        {"fp32", "1", "pool", "adamw+selective"},
                        {"bf16", "2", "malloc", "adamw+selective"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case("/proc/self/exe", argv[1], argv[2], cases[i]);
    printf("ok\n");
    return 0;
}
