/* golden_dist.c — golden figures of the distributed engine (ctest golden.dist_*), under
 *   mpirun -np 2 golden_dist DATA_DIR PLUGIN.so CORPUS CASE [--tolerance] [key=value...]
 *
 * What it is for: what golden.c pins for one process, for the four distributed
 * strategies: the plugin run through the fake ctx (the global loss of each of 20 steps,
 * val_loss on 8192 validation bytes, and every rank's bytes per category and bytes on the
 * wire, keyed rank<r>.*), then the engine itself (mt_dist_train) for the final weights
 * assembled on rank 0 and their logits of the fixed batch. Every rank's figures are sent
 * to rank 0, which compares them with DATA_DIR/CASE.txt (or rewrites it under
 * MT_GOLDEN_UPDATE=1) and alone decides the exit status.
 * What it is not for: checking the strategies against each other (tests/distributed).
 */
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "golden.h"
#include "gpt.h"
#include "train.h"

#define SEED 1337
#define STEPS 20
#define FIXED_B 4

/* The job the plugin builds from its parameters at our overrides (plugin.c read_job). */
static int engine_figures(struct golden *g, const char *plugin, const char *corpus_path, int argc,
                          char **argv, int rank)
{
    struct mt_dist_job job = {0};
    struct mt_corpus c;
    struct mt_dist d;
    char err[512];
    if (mt_gpt_config_preset(&job.cfg, "tiny", err, sizeof err)) return -1;
    job.recipe = mt_gpt_recipe_default(STEPS);
    job.recipe.seq = job.cfg.seq_len < 128 ? job.cfg.seq_len : 128;
    job.seed = SEED;
    job.crash_rank = -1;
    job.micro_batches = 4;
    job.zero_stage = 1;
    if (strstr(plugin, "data_parallel")) job.strategy = MT_DIST_DP;
    if (strstr(plugin, "zero")) job.strategy = MT_DIST_ZERO;
    if (strstr(plugin, "tensor_parallel")) job.strategy = MT_DIST_TP;
    if (strstr(plugin, "pipeline_parallel")) job.strategy = MT_DIST_PP;
    for (int i = 0; i < argc; i++) {
        job.bf16 |= !strcmp(argv[i], "precision=bf16");
        job.one_f_one_b |= !strcmp(argv[i], "schedule=1f1b");
        if (!strcmp(argv[i], "stage=2")) job.zero_stage = 2;
    }
    if (mt_corpus_load(&c, corpus_path, job.recipe.seq, err, sizeof err)) {
        fprintf(stderr, "golden: %s\n", err);
        return -1;
    }
    job.data = c.train_tokens;
    struct mt_dist_result res = {0};
    size_t psi = mt_gpt_num_params(&job.cfg);
    res.params = rank == 0 ? calloc(psi, sizeof *res.params) : NULL;
    int rc = mt_dist_open(&d, NULL, err, sizeof err);
    if (rc == 0) rc = mt_dist_train(&d, &job, &res, err, sizeof err);
    if (rc) fprintf(stderr, "golden: rank %d: engine: %s\n", rank, err);
    mt_dist_close(&d);
    if (rc == 0 && rank == 0) {
        struct mt_gpt *m = NULL;
        size_t T = job.recipe.seq;
        int in[FIXED_B * 64], tg[FIXED_B * 64];
        float loss = 0.0f;
        for (size_t i = 0; i < FIXED_B * T; i++)
            in[i] = c.val[i], tg[i] = c.val[i + 1];
        golden_floats(g, "engine.params", res.params, psi);
        rc = mt_gpt_create(&m, &job.cfg, MT_GPT_INFER, FIXED_B, T, err, sizeof err);
        if (rc == 0) {
            memcpy(m->params, res.params, psi * sizeof *res.params);
            rc = mt_gpt_forward(m, in, tg, FIXED_B, T, &loss, err, sizeof err) ||
                 mt_gpt_forward(m, in, NULL, FIXED_B, T, NULL, err, sizeof err);
        }
        if (rc)
            fprintf(stderr, "golden: fixed batch: %s\n", err);
        else {
            golden_float(g, loss, "engine.trained_logits.loss");
            golden_floats(g, "engine.trained_logits", m->act[MT_A_LOGITS], FIXED_B * T * 256);
        }
        mt_gpt_free(m);
    }
    free(res.params);
    mt_corpus_free(&c);
    return rc ? -1 : 0;
}

/* Rank r > 0 sends its figures to rank 0, which appends them. */
static void gather(struct golden *g, int rank, int nranks)
{
    if (rank != 0) {
        unsigned long long n = g->n;
        MPI_Send(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, 1, MPI_COMM_WORLD);
        MPI_Send(g->figs, (int)(n * sizeof *g->figs), MPI_BYTE, 0, 2, MPI_COMM_WORLD);
        return;
    }
    for (int r = 1; r < nranks; r++) {
        unsigned long long n = 0;
        MPI_Recv(&n, 1, MPI_UNSIGNED_LONG_LONG, r, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        struct golden_fig *f = malloc(n * sizeof *f + 1);
        if (!f) {
            g->oom = 1;
            MPI_Recv(NULL, 0, MPI_BYTE, r, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            continue;
        }
        MPI_Recv(f, (int)(n * sizeof *f), MPI_BYTE, r, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        for (size_t i = 0; i < n; i++) {
            if (f[i].kind == GOLDEN_EXACT) golden_exact(g, f[i].u, "%s", f[i].key);
            if (f[i].kind == GOLDEN_FLOAT) golden_float(g, f[i].d, "%s", f[i].key);
            if (f[i].kind == GOLDEN_BITS) golden_bits(g, f[i].u, "%s", f[i].key);
        }
        free(f);
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: golden_dist DATA_DIR PLUGIN.so CORPUS CASE [--tolerance] "
                        "[key=value...]\n");
        return 2;
    }
    const char *dir = argv[1], *so = argv[2], *corpus = argv[3], *name = argv[4];
    int tolerance = argc > 5 && !strcmp(argv[5], "--tolerance");
    int first_ov = 5 + tolerance;
    int provided = 0, rank = 0, nranks = 1;
    /* initialised here, so the plugin's mt_dist_close leaves MPI up for the gather */
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    omp_set_num_threads(1);
    char corpus_ov[4200], tmp[4096], prefix[32];
    const char *ov[32];
    size_t n = 0;
    snprintf(corpus_ov, sizeof corpus_ov, "corpus=%s", corpus);
    ov[n++] = "model=tiny";
    ov[n++] = "steps=20";
    ov[n++] = "seed=1337";
    ov[n++] = "eval_tokens=8192";
    ov[n++] = corpus_ov;
    for (int i = first_ov; i < argc && n < 32; i++)
        ov[n++] = argv[i];
    snprintf(prefix, sizeof prefix, "rank%d", rank);
    struct golden g = {0};
    int rc = golden_tmpdir(tmp, sizeof tmp);
    if (rc == 0) {
        rc = golden_run_plugin(&g, prefix, so, ov, n, 1, rank, nranks, tmp);
        golden_rmdir(tmp);
    }
    if (rc == 0) rc = engine_figures(&g, so, corpus, argc - first_ov, argv + first_ov, rank);
    int any = 0;
    MPI_Allreduce(&rc, &any, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (any) {
        fprintf(stderr, "golden: rank %d: case %s could not run\n", rank, name);
        MPI_Finalize();
        return 1;
    }
    gather(&g, rank, nranks);
    int status = 0;
    if (rank == 0)
        status = golden_finish(&g, dir, name, tolerance);
    else
        free(g.figs);
    MPI_Finalize();
    return status;
}
