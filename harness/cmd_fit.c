/* cmd_fit.c — `memtrade fit --budget SIZE --for serving|training MODEL`: the most accurate
 * configuration of MODEL within SIZE bytes (fit.h), with its predicted peak and accuracy,
 * the best of each family, the largest context / concurrency / batch that fits, and with
 * --verify the choice run and measured against its prediction.
 * Not for: the search itself (fit.c) or measuring (fit_measure.c). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fit.h"
#include "fit_measure.h"
#include "format.h"
#include "gpt.h"
#include "util.h"

static const char help[] =
    "usage: memtrade fit --budget SIZE --for serving|training|finetune MODEL [--context N]\n"
    "                    [--metric kld|val_bpb] [--verify] [--json] [--no-measure]\n"
    "                    [--ranks N] [--eval-tokens N] [--steps N] [--db FILE] [--out DIR]\n\n"
    "The most accurate configuration of MODEL (a preset, a spec such as small,L=2, or a\n"
    "model path, as `memtrade plan` takes) whose predicted peak stays within SIZE bytes:\n"
    "serving (infer_peak_bytes: weights fp32, quantized uniformly, or with per-tensor bit\n"
    "widths chosen by a knapsack over measured per-layer sensitivity; KV-cache format;\n"
    "context) or training (train_peak_bytes: precision, optimizer, micro-batch,\n"
    "checkpointing, selective recompute, attention kernel; with --ranks the multi-rank\n"
    "workloads that have a plan, such as ZeRO stages) or fine-tuning the trained model\n"
    "(finetune: LoRA and QLoRA adapters, rank and targets). Bytes come from the workloads'\n"
    "plans plus the runtime term earlier runs measured; accuracy from runs in the database,\n"
    "or from short runs fit starts (each said: 'db run N' or 'measured run N'). The most\n"
    "accurate configuration is then filled: what the budget leaves goes to concurrent\n"
    "sequences and one more shorter one (serving) or a larger micro-batch and less\n"
    "recompute (training, the batch kept; then a larger batch, measured, when no worse\n"
    "within 0.1 %%),\n"
    "and the bytes still unused are printed with the reason when 5 %% or more.\n\n"
    "  --budget SIZE      bytes (512K, 4M, 1.5GiB); with --ranks, per rank\n"
    "  --for GOAL         serving, training, or finetune (LoRA/QLoRA on the trained model)\n"
    "  --ranks N          training: also the multi-rank workloads at N ranks (default 1)\n"
    "  --context N        serving: decode context (default the model's); training: seq\n"
    "  --metric M         kld (kl_mean against the fp32 model; serving default) or val_bpb\n"
    "  --verify           run the choice (heap profiler sampled) and compare\n"
    "  --json             one JSON object on stdout\n"
    "  --no-measure       use the database only; fail when a run is missing\n"
    "  --eval-tokens N    validation bytes each run scores (default 16384)\n"
    "  --steps N          training steps of each training run (default the workload's;\n"
    "                     finetune: the adapters' finetune_steps)\n"
    "  --db FILE, --out DIR, --plugin PATH.so   as for `memtrade run`\n";

/* MODEL: a path, or a preset with options; an unknown preset exits 2 with the nearest. */
static int check_model(const char *model)
{
    struct stat sb;
    if (strchr(model, '/') || stat(model, &sb) == 0) return 0;
    char name[128], err[512];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(model, ","), model);
    struct mt_gpt_config cfg;
    if (mt_gpt_config_preset(&cfg, name, err, sizeof err) == 0) return 0;
    /* the model library's message lists its presets in parentheses, '|'-separated */
    const char *names[32];
    size_t n = 0;
    char list[256] = "";
    const char *lp = strrchr(err, '(');
    if (lp) snprintf(list, sizeof list, "%.*s", (int)strcspn(lp + 1, ")"), lp + 1);
    for (char *t = strtok(list, "|"); t && n < 32; t = strtok(NULL, "|"))
        names[n++] = t;
    const char *near = mt_util_nearest(name, names, n);
    char all[512];
    fprintf(stderr,
            "memtrade fit: unknown model '%s'%s%s%s; presets: %s (or a spec, or a model path)\n",
            name, near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "",
            mt_util_names_nearest_first(name, names, n, all, sizeof all));
    return -1;
}

/* Why a configuration's runtime term is unavailable (fit probes a class on first need
 * unless --no-measure). */
#define RUNTIME_UNMEASURED                                                                         \
    "runtime terms not measured for this class: --no-measure runs no probe (memtrade plan "        \
    "WORKLOAD -p ... --measure-runtime, or memtrade plan --measure-runtime --all)"

static void print_config_json(const struct mt_fit_config *c, size_t budget)
{
    printf("{\"family\":\"%s\",\"workload\":\"%s\",\"params\":{", c->family, c->workload);
    for (size_t i = 0; i < c->n; i++) {
        printf("%s\"%s\":", i ? "," : "", c->key[i]);
        mt_format_json_string(stdout, c->val[i], strlen(c->val[i]));
    }
    printf("},\"predicted_bytes\":%zu,\"plan_bytes\":%zu,\"runtime_bytes\":", c->bytes,
           c->plan_bytes);
    if (c->runtime_known)
        printf("%lld", c->runtime);
    else
        printf("null,\"runtime_unavailable\":\"" RUNTIME_UNMEASURED "\"");
    printf(",\"bytes\":{");
    int first = 1;
    for (int k = 0; k < MT_MEM_CAT_COUNT; k++)
        if (c->cat[k]) {
            printf("%s\"%s\":%zu", first ? "" : ",", mt_mem_cat_names[k], c->cat[k]);
            first = 0;
        }
    printf("},\"predicted_accuracy\":%.9g,\"accuracy_source\":", c->acc);
    mt_format_json_string(stdout, c->acc_src, strlen(c->acc_src));
    if (c->filled) {
        printf(",\"fill\":");
        mt_format_json_string(stdout, c->fill, strlen(c->fill));
        printf(",\"unused_bytes\":%zu,\"unused_share\":%.6f,\"unused_why\":", c->unused,
               budget ? (double)c->unused / (double)budget : 0.0);
        if (c->unused_why[0])
            mt_format_json_string(stdout, c->unused_why, strlen(c->unused_why));
        else
            printf("null");
        printf(",\"unused_coarse\":%s", c->unused_coarse ? "true" : "false");
    }
    printf("}");
}

static void print_config(const char *what, const struct mt_fit_config *c, const char *metric)
{
    char b[1200], s[32];
    printf("%-10s %-14s %12s  %s %.6g  %s\n", what, c->family,
           mt_util_fmt_bytes(s, sizeof s, (double)c->bytes), metric, c->acc,
           mt_fit_brief(c, b, sizeof b));
}

struct verify {
    int done;
    struct mt_fit_measure m;
    double acc; /* measured accuracy, the KV delta of the prediction added */
    int has_acc;
};

int mt_cmd_fit(int argc, char **argv)
{
    enum {
        OPT_BUDGET = MT_OPT_OWN,
        OPT_FOR,
        OPT_CONTEXT,
        OPT_METRIC,
        OPT_EVAL,
        OPT_STEPS,
        OPT_RANKS
    };
    uint64_t budget = 0;
    int have_budget = 0, verify = 0, json = 0, measure = 1, c;
    int64_t iv;
    const struct mt_cli_opt own[] = {MT_CLI_ARG("budget", OPT_BUDGET),
                                     MT_CLI_ARG("for", OPT_FOR),
                                     MT_CLI_ARG("context", OPT_CONTEXT),
                                     MT_CLI_ARG("metric", OPT_METRIC),
                                     MT_CLI_FLAG("verify", &verify, 1),
                                     MT_CLI_FLAG("json", &json, 1),
                                     MT_CLI_FLAG("no-measure", &measure, 0),
                                     MT_CLI_ARG("eval-tokens", OPT_EVAL),
                                     MT_CLI_ARG("steps", OPT_STEPS),
                                     MT_CLI_ARG("ranks", OPT_RANKS),
                                     {0}};
    struct mt_fit f = {.goal = -1, .metric = -1, .eval_tokens = 16384, .ranks = 1};
    struct mt_cli_parser op = {
        .cmd = "fit", .shared = MT_CLI_DB | MT_CLI_OUT | MT_CLI_PLUGIN, .own = own, .help = help};
    while ((c = mt_cli_next_option(&op, argc, argv)) > 0) {
        switch (c) {
        case OPT_BUDGET:
            if (mt_util_parse_bytes(optarg, &budget) || budget == 0) {
                fprintf(stderr,
                        "memtrade fit: --budget takes a byte size above 0 (512K, 4M, 1.5GiB), "
                        "not '%s'\n",
                        optarg);
                return MT_EXIT_USAGE;
            }
            have_budget = 1;
            break;
        case OPT_FOR:
            if (!strcmp(optarg, "serving") || !strcmp(optarg, "training") ||
                !strcmp(optarg, "finetune")) {
                f.goal = optarg[0] == 's' ? MT_PLAN_SERVING : MT_PLAN_TRAINING;
                f.finetune = optarg[0] == 'f';
                break;
            }
            fprintf(stderr, "memtrade fit: --for takes serving, training or finetune, not '%s'\n",
                    optarg);
            return MT_EXIT_USAGE;
        case OPT_METRIC:
            if (!strcmp(optarg, "kld") || !strcmp(optarg, "val_bpb")) {
                f.metric = optarg[0] == 'k' ? 0 : 1;
                break;
            }
            fprintf(stderr, "memtrade fit: --metric takes kld or val_bpb, not '%s'\n", optarg);
            return MT_EXIT_USAGE;
        case OPT_CONTEXT:
        case OPT_EVAL:
        case OPT_STEPS:
        case OPT_RANKS:
            if (mt_util_parse_i64(optarg, &iv) || iv < (c == OPT_EVAL ? 0 : 1)) {
                fprintf(stderr, "memtrade fit: --%s takes a whole number%s, not '%s'\n",
                        c == OPT_CONTEXT ? "context"
                        : c == OPT_EVAL  ? "eval-tokens"
                        : c == OPT_RANKS ? "ranks"
                                         : "steps",
                        c == OPT_EVAL ? "" : " above 0", optarg);
                return MT_EXIT_USAGE;
            }
            *(c == OPT_CONTEXT ? &f.context
              : c == OPT_EVAL  ? &f.eval_tokens
              : c == OPT_RANKS ? &f.ranks
                               : &f.steps) = (size_t)iv;
            break;
        }
    }
    if (c < 0) return mt_cli_options_exit(c);
    struct mt_cli_common co = op.co;
    if (optind + 1 != argc || !have_budget || f.goal < 0) {
        fprintf(stderr,
                "usage: memtrade fit --budget SIZE --for serving|training|finetune MODEL "
                "(see --help)%s\n",
                optind + 1 != argc ? ": one MODEL"
                : !have_budget     ? ": --budget is required"
                                   : ": --for is required");
        return MT_EXIT_USAGE;
    }
    if (f.metric < 0) f.metric = f.goal == MT_PLAN_SERVING ? 0 : 1;
    if (f.ranks > 1 && (f.goal != MT_PLAN_TRAINING || f.finetune)) {
        fputs("memtrade fit: --ranks searches the multi-rank training workloads; it takes "
              "--for training\n",
              stderr);
        return MT_EXIT_USAGE;
    }
    if (f.metric == 0 && f.goal == MT_PLAN_TRAINING) {
        fputs("memtrade fit: --metric kld compares with the fp32 model a serving configuration "
              "starts from; training is judged on val_bpb\n",
              stderr);
        return MT_EXIT_USAGE;
    }
    f.model = argv[optind];
    f.budget = (size_t)budget;
    if (check_model(f.model)) return MT_EXIT_USAGE;
    char err[4096];
    struct mt_registry reg;
    if (mt_cli_finish_common(&co, err, sizeof err) != 0 ||
        mt_cli_load_plugins(&co, &reg, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_USAGE;
    }
    struct mt_fit_runner runner = {.exe = co.exe, .db = co.db, .out = co.out, .measure = measure};
    f.reg = &reg;
    f.runner = &runner;
    struct mt_fit_result *r = calloc(1, sizeof *r);
    struct verify v = {0};
    int code = MT_EXIT_SYSTEM;
    if (!r) goto out;
    int s = mt_fit_search(&f, r, err, sizeof err);
    if (s < 0) {
        fprintf(stderr, "memtrade fit: %s\n", err);
        code = strstr(err, "did not end ok") ? MT_EXIT_RUNS_FAILED : MT_EXIT_USAGE;
        goto out;
    }
    const char *metric = f.metric == 0 ? "kl_mean" : "val_bpb";
    const char *goal_name = f.goal == MT_PLAN_SERVING ? "serving"
                            : f.finetune              ? "finetune"
                                                      : "training";
    int k = f.metric == 0 ? MT_FM_KL : MT_FM_BPB;
    if (s == 0 && verify) {
        /* the label marks the run for the report's "what fits" page (plots/plot_fit.c) */
        char label[512];
        snprintf(label, sizeof label,
                 "fit goal=%s budget=%zu family=%s predicted_bytes=%zu runtime_bytes=%lld "
                 "metric=%s predicted_accuracy=%.9g kv_delta=%.9g",
                 goal_name, f.budget, r->best.family, r->best.bytes, r->best.runtime,
                 f.metric == 0 ? "kl_mean" : "val_bpb", r->best.acc, r->best.acc_kv);
        int rc = mt_fit_measured(&runner, &f, &r->best, "sampled", 1, label, &v.m, err, sizeof err);
        if (rc != 1) {
            fprintf(stderr, "memtrade fit: --verify: %s\n", err);
            code = MT_EXIT_RUNS_FAILED;
            goto out;
        }
        v.done = 1;
        /* the run's evaluation reads no KV cache: the format's delta (measured by its own
         * kv_cache run) is added to what it measured, as to the prediction */
        v.has_acc = v.m.has[k];
        v.acc = v.m.v[k] + r->best.acc_kv;
    }
    int peak = f.goal == MT_PLAN_SERVING ? MT_FM_INFER : MT_FM_TRAIN;
    if (json) {
        printf("{\"model\":");
        mt_format_json_string(stdout, f.model, strlen(f.model));
        printf(",\"goal\":\"%s\",\"budget\":%zu,\"metric\":\"%s\",\"considered\":%zu,"
               "\"fitting\":%zu,\"runs_started\":%zu,\"best\":",
               goal_name, f.budget, metric, r->considered, r->fitting, runner.started);
        if (r->has_best)
            print_config_json(&r->best, f.budget);
        else
            printf("null");
        printf(",\"families\":[");
        for (size_t i = 0; i < r->n_families; i++) {
            printf("%s", i ? "," : "");
            print_config_json(&r->family_best[i], f.budget);
        }
        printf(
            "],\"model_context\":%zu,\"max_context\":%zu,\"max_sequences\":%zu,\"max_batch\":%zu,"
            "\"sensitivity_runs\":%zu,\"ranks\":%zu,\"not_searched\":",
            r->model_context, r->max_context, r->max_sequences, r->max_batch, r->n_sensitivity_runs,
            f.ranks);
        if (r->not_searched[0])
            mt_format_json_string(stdout, r->not_searched, strlen(r->not_searched));
        else
            printf("null");
        if (v.done) {
            printf(",\"verify\":{\"run\":%lld,\"measured_bytes\":", (long long)v.m.run);
            if (v.m.has[peak])
                printf("%.0f", v.m.v[peak]);
            else
                printf("null");
            printf(",\"measured_accuracy\":");
            if (v.has_acc)
                printf("%.9g", v.acc);
            else
                printf("null");
            printf(",\"measured_bytes_by_category\":{");
            int first = 1;
            for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++)
                if (!isnan(v.m.peak_cat[cat])) {
                    printf("%s\"%s\":%.0f", first ? "" : ",", mt_mem_cat_names[cat],
                           v.m.peak_cat[cat]);
                    first = 0;
                }
            printf("}}");
        }
        printf("}\n");
    } else {
        char b[32], bb[1200];
        printf("memtrade fit %s for %s within %s (%zu bytes%s); accuracy %s (lower is better)\n",
               f.model,
               f.goal == MT_PLAN_SERVING ? "serving (infer_peak_bytes)"
               : f.finetune              ? "fine-tuning (train_peak_bytes of the adapters' "
                                           "training)"
                                         : "training (train_peak_bytes)",
               mt_util_fmt_bytes(b, sizeof b, (double)f.budget), f.budget,
               f.ranks > 1 ? " per rank" : "", metric);
        printf("%zu configurations planned, %zu fit; %zu runs started by fit", r->considered,
               r->fitting, runner.started);
        if (r->n_sensitivity_runs)
            printf("; per-layer sensitivity from %zu runs", r->n_sensitivity_runs);
        if (r->not_searched[0]) printf("\nnot searched at %zu ranks: %s", f.ranks, r->not_searched);
        printf("\n\n");
        if (!r->has_best) {
            printf("nothing fits within %s\n", b);
        } else {
            const struct mt_fit_config *best = &r->best;
            print_config("best", best, metric);
            if (best->runtime_known)
                printf("  predicted peak %zu bytes = plan %zu + runtime term %lld (stored for its "
                       "class, measured by a probe); %.1f %% of the budget unused\n",
                       best->bytes, best->plan_bytes, best->runtime,
                       100.0 * (double)(f.budget - best->bytes) / (double)f.budget);
            else
                printf("  predicted peak %zu bytes = plan %zu + runtime term unavailable (%s); "
                       "%.1f %% of the budget unused by the plan alone\n",
                       best->bytes, best->plan_bytes, RUNTIME_UNMEASURED,
                       100.0 * (double)(f.budget - best->bytes) / (double)f.budget);
            if (best->filled)
                printf("  filled: %s; unused %zu bytes (%.2f %%)%s%s\n",
                       best->fill[0] ? best->fill : "nothing to fill", best->unused,
                       100.0 * (double)best->unused / (double)f.budget,
                       best->unused_why[0] ? ": " : "", best->unused_why);
            printf("  by category:");
            for (int cat = 0; cat < MT_MEM_CAT_COUNT; cat++)
                if (best->cat[cat]) printf(" %s %zu", mt_mem_cat_names[cat], best->cat[cat]);
            printf("\n  accuracy from %s\n", best->acc_src);
            printf("  run it: memtrade run %s", best->workload);
            for (size_t i = 0; i < best->n; i++)
                printf(" -p %s=%s", best->key[i], best->val[i]);
            printf("\n\nbest of each family:\n");
            for (size_t i = 0; i < r->n_families; i++)
                print_config(strcmp(r->family_best[i].family, best->family) ? "runner-up"
                                                                            : "(chosen)",
                             &r->family_best[i], metric);
            if (f.goal == MT_PLAN_SERVING)
                printf("\nlargest serving context of one sequence with these knobs: %zu tokens "
                       "(decode_tokens%s); concurrent sequences at the chosen context: %zu (KV "
                       "caches %zu bytes in all, the chosen configuration)\n",
                       r->max_context,
                       r->model_context && r->max_context == r->model_context
                           ? ", the model's whole context"
                           : "",
                       r->max_sequences, best->cat[MT_MEM_KV_CACHE]);
            else
                printf("\nlargest batch with these knobs (%s): %zu sequences\n",
                       strcmp(best->workload, "mixed_precision") ? "batch" : "micro_batch = batch",
                       r->max_batch);
            if (v.done) {
                printf("\nverify: run %lld (%s)\n", (long long)v.m.run,
                       mt_fit_brief(best, bb, sizeof bb));
                if (v.m.has[peak])
                    printf("  peak      predicted %zu  measured %.0f  (%+.3f %%)  %s\n",
                           best->bytes, v.m.v[peak],
                           100.0 * (v.m.v[peak] - (double)best->bytes) / (double)best->bytes,
                           v.m.v[peak] <= (double)f.budget ? "within the budget"
                                                           : "OVER THE BUDGET");
                if (v.has_acc)
                    printf("  %-9s predicted %.6g  measured %.6g%s\n", metric, best->acc, v.acc,
                           best->acc_kv != 0.0 ? " (both with the KV format's delta from its "
                                                 "kv_cache run: the evaluation reads no cache)"
                                               : "");
            }
        }
    }
    code = !r->has_best ? MT_EXIT_RUNS_FAILED : MT_EXIT_OK;
    if (v.done && v.m.has[peak] && v.m.v[peak] > (double)f.budget) code = MT_EXIT_RUNS_FAILED;
out:
    free(r);
    mt_plugins_free(&reg);
    return code;
}
