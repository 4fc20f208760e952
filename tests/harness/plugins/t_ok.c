/* tests/harness/plugins/t_ok.c — a test workload with known results: reports exact
 * metrics, a sample series, a log line, nested regions and progress, optionally sleeping
 * (for kill/resume tests). Not for: anything outside tests. */
#include <time.h>

#include "../test_plugin.h"

static const struct mt_param_spec params[] = {
    {"steps", MT_PARAM_INT, "3", 1, 1000, NULL, "steps to report"},
    {"sleep_ms", MT_PARAM_INT, "0", 0, 60000, NULL, "sleep per step, milliseconds"},
    {"lr", MT_PARAM_FLOAT, "0.001", 1e-6, 1, NULL, "a float parameter"},
    {"dtype", MT_PARAM_CHOICE, "fp32", 0, 0, "fp32|bf16|int8", "a choice parameter"},
    {"note", MT_PARAM_STRING, "hello", 0, 0, NULL, "a string parameter"},
    {"flag", MT_PARAM_BOOL, "off", 0, 0, NULL, "a boolean parameter"},
    {"seed", MT_PARAM_INT, "7", 0, 1e9, NULL, "run seed"},
};

static size_t estimate(struct mt_ctx *ctx)
{
    return (size_t)mt_param_int(ctx, "steps") * 1024 * 1024;
}

static int run(struct mt_ctx *ctx)
{
    int64_t steps = mt_param_int(ctx, "steps");
    int64_t sleep_ms = mt_param_int(ctx, "sleep_ms");
    mt_region_begin(ctx, "train");
    for (int64_t i = 0; i < steps; i++) {
        mt_region_begin(ctx, "step");
        struct timespec ts = {sleep_ms / 1000, (long)(sleep_ms % 1000) * 1000000L};
        if (sleep_ms) nanosleep(&ts, NULL);
        mt_sample(ctx, "train_loss", (double)i, 10.0 - (double)i);
        mt_progress(ctx, (double)(i + 1), (double)steps);
        mt_region_end(ctx, "step");
    }
    mt_region_end(ctx, "train");
    mt_log(ctx, MT_LOG_INFO, "done with %lld steps\ttab\nnewline", (long long)steps);
    mt_metric(ctx, "val_bpb", 1.5 + 0.25 * (double)steps, "bits/byte");
    mt_metric(ctx, "model_bytes", 4096.0 * (double)steps, "bytes");
    mt_metric(ctx, "lr_seen", mt_param_float(ctx, "lr"), "1");
    mt_metric(ctx, "seed_seen", (double)ctx->ops->seed(ctx), "1");
    mt_metric(ctx, "flag_seen", mt_param_bool(ctx, "flag"), "1");
    mt_metric(ctx, "threads_seen", ctx->ops->threads(ctx), "count");
    mt_metric(ctx, "rng_first", (double)(mt_rng_u64(ctx) >> 11), "1"); /* exact in a double */
    mt_metric_na(ctx, "decode_tokens_per_s", "tokens/s", "this workload does not decode");
    return 0;
}

MT_TEST_PLUGIN(.name = "t_ok", .summary = "test: succeeds with known metrics", .params = params,
               .n_params = sizeof params / sizeof params[0], .mem_estimate = estimate);
