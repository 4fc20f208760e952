/* test_distill_plugin.c — the `distill` plugin run through the fake ctx of
 * tests/support.
 *
 * What it is for: with a 20-step `tiny` teacher and a narrower student (C=32):
 *   scratch  alpha = 0 reaches exactly (==) the validation loss of the baseline recipe
 *            trained from scratch on the student's shape (wlcommon's train-or-load);
 *   teacher  alpha = 0.5, T = 2: the teacher's inference slabs are reported by category
 *            and included in train_peak_bytes (larger than the control's by exactly
 *            their sum), the student's model_bytes is its weight slab, the loss series
 *            and train_tokens_per_s are there.
 *   cache    the same with teacher_cache = on: fp32 logits give bit-identical training
 *            (train_loss and the student's val_loss ==), bf16 within 0.5 %; the file
 *            holds exactly 20 batches of 8 x T x V logits (4 or 2 bytes each); no teacher
 *            category is reported for training and train_peak_bytes is the control's
 *            plus exactly the logits buffer (8 x T x V fp32, plus the bf16 staging).
 * What it is not for: whether distillation beats the control (that is a sweep result).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "plugin_check.h"
#include "wlcommon.h"

static double control_peak, teacher_val, teacher_train;

static const char *common[] = {"model=tiny",       "steps=20",        "batch=8",
                               "eval_tokens=4096", "decode_tokens=0", "student_channels=32"};

static void test_scratch(void)
{
    const char *ov[8];
    memcpy(ov, common, sizeof(common));
    ov[6] = "alpha=0";
    struct fake_ctx f;
    if (plugin_run(&f, ov, 7)) return;
    double distilled = plugin_need(&f, "val_loss", "nats/byte");
    control_peak = plugin_need(&f, "train_peak_bytes", "bytes");
    /* the scratch run: the baseline recipe on the student's configuration */
    struct mt_gpt_config cfg;
    struct mt_gpt_recipe r;
    struct mt_corpus c;
    struct mt_gpt *m;
    uint64_t seed;
    char err[256];
    CHECK(mt_wl_model_config(&f.base, NULL, &cfg) == 0 &&
              mt_wl_recipe(&f.base, &cfg, &r, &seed) == 0,
          "recipe");
    cfg.n_embd = 32;
    CHECK(mt_wl_corpus(&f.base, 1, r.seq, &c) == 0, "corpus");
    CHECK(mt_wl_train_or_load(&f.base, &cfg, &r, seed, &c, MT_GPT_INFER, 8, r.seq, &m, NULL) == 0,
          "scratch: %s", f.error);
    struct mt_eval_result res;
    CHECK(mt_gpt_eval(m, c.val, c.n_val, 4096, &res, err, sizeof(err)) == 0, "%s", err);
    printf("alpha=0 val_loss %.17g, scratch %.17g\n", distilled, res.loss);
    CHECK(distilled == res.loss, "alpha = 0 is not the scratch run: %.17g vs %.17g", distilled,
          res.loss);
    mt_gpt_free(m);
    mt_corpus_free(&c);
}

static void test_teacher(void)
{
    const char *ov[9];
    memcpy(ov, common, sizeof(common));
    ov[6] = "alpha=0.5";
    ov[7] = "temperature=2";
    struct fake_ctx f;
    if (plugin_run(&f, ov, 8)) return;
    double tw = plugin_need(&f, "teacher_weights_bytes", "bytes");
    double ta = plugin_need(&f, "teacher_activations_bytes", "bytes");
    double tws = plugin_need(&f, "teacher_workspace_bytes", "bytes");
    double peak = plugin_need(&f, "train_peak_bytes", "bytes");
    if (control_peak > 0)
        CHECK(peak == control_peak + tw + ta + tws, "train_peak_bytes %g != %g + teacher", peak,
              control_peak);
    double model = plugin_need(&f, "model_bytes", "bytes");
    CHECK(model < tw, "student %g not smaller than teacher %g", model, tw);
    plugin_need(&f, "train_tokens_per_s", "tokens/s");
    plugin_need(&f, "infer_peak_bytes", "bytes");
    teacher_val = plugin_need(&f, "val_loss", "nats/byte");
    teacher_train = plugin_need(&f, "train_loss", "nats/byte");
    CHECK(f.n_samples >= 3 * 20, "loss, ce and kl series: %zu samples", f.n_samples);
}

/* One cached run with teacher_cache_dtype = dtype; checks what the file comment says. */
static void cached_run(const char *dtype, size_t elem)
{
    char dt[64];
    snprintf(dt, sizeof(dt), "teacher_cache_dtype=%s", dtype);
    const char *ov[10];
    memcpy(ov, common, sizeof(common));
    ov[6] = "alpha=0.5";
    ov[7] = "temperature=2";
    ov[8] = "teacher_cache=on";
    ov[9] = dt;
    struct fake_ctx f;
    if (plugin_run(&f, ov, 10)) return;
    struct mt_gpt_config cfg;
    struct mt_gpt_recipe r;
    uint64_t seed;
    CHECK(mt_wl_model_config(&f.base, NULL, &cfg) == 0 &&
              mt_wl_recipe(&f.base, &cfg, &r, &seed) == 0,
          "recipe");
    double n = 8.0 * (double)r.seq * (double)cfg.vocab; /* logits of one batch */
    double file = plugin_need(&f, "teacher_cache_bytes", "bytes");
    CHECK(file == 20 * n * (double)elem, "%s: cache file %g bytes, expected %g", dtype, file,
          20 * n * (double)elem);
    const struct fake_metric *tw = fake_ctx_metric(&f, "teacher_weights_bytes");
    CHECK(tw && tw->na, "%s: the teacher's weights reported during training", dtype);
    CHECK(!fake_ctx_metric(&f, "teacher_activations_bytes") &&
              !fake_ctx_metric(&f, "teacher_workspace_bytes"),
          "%s: teacher activations reported during training", dtype);
    double buf = n * 4.0 + (elem == 2 ? n * 2.0 : 0.0);
    double peak = plugin_need(&f, "train_peak_bytes", "bytes");
    CHECK(peak == control_peak + buf, "%s: train_peak_bytes %g != control %g + buffer %g", dtype,
          peak, control_peak, buf);
    plugin_need(&f, "cache_peak_bytes", "bytes");
    double val = plugin_need(&f, "val_loss", "nats/byte");
    double tl = plugin_need(&f, "train_loss", "nats/byte");
    printf("teacher_cache %s: val_loss %.17g (no cache %.17g), train_loss %.17g (%.17g), "
           "file %g bytes, train_peak_bytes %g\n",
           dtype, val, teacher_val, tl, teacher_train, file, peak);
    if (elem == 4)
        CHECK(val == teacher_val && tl == teacher_train,
              "fp32 cache changed training: val %.17g vs %.17g, train %.17g vs %.17g", val,
              teacher_val, tl, teacher_train);
    else
        CHECK(fabs(val - teacher_val) <= 5e-3 * teacher_val, "bf16 cache: val %g vs %g", val,
              teacher_val);
}

static void test_cache(void)
{
    cached_run("fp32", 4);
    cached_run("bf16", 2);
}

int main(int argc, char **argv)
{
    if (plugin_load(DISTILL_SO, "distill")) return 1;
    snprintf(plugin_cache_dir, sizeof(plugin_cache_dir), "%s", argc > 1 ? argv[1] : "/tmp");
    mkdir(plugin_cache_dir, 0700);
    snprintf(plugin_scratch_dir, sizeof(plugin_scratch_dir), "%.200s/scratch", plugin_cache_dir);
    mkdir(plugin_scratch_dir, 0700);
    static const struct mt_test tests[] = {{"scratch", test_scratch},
                                           {"teacher", test_teacher},
                                           {"cache", test_cache}};
    return mt_test_run(tests, sizeof(tests) / sizeof(tests[0]), NULL);
}
