/* test_distill_plugin.c — the `distill` plugin run through the fake ctx of
 * tests/transformer.
 *
 * What it is for: with a 20-step `tiny` teacher and a narrower student (C=32):
 *   scratch  alpha = 0 reaches exactly (==) the validation loss of the baseline recipe
 *            trained from scratch on the student's shape (wlcommon's train-or-load);
 *   teacher  alpha = 0.5, T = 2: the teacher's inference slabs are reported by category
 *            and included in train_peak_bytes (larger than the control's by exactly
 *            their sum), the student's model_bytes is its weight slab, the loss series
 *            and train_tokens_per_s are there.
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

static double control_peak;

static const char *common[] = {"model=tiny",       "steps=20",        "batch=8",
                               "eval_tokens=4096", "decode_tokens=0", "student_channels=32"};

static void test_scratch(void)
{
    const char *ov[8];
    memcpy(ov, common, sizeof(common));
    ov[6] = "alpha=0";
    struct fake_ctx f;
    if (plugin_run(&f, ov, 7)) {
        failures++;
        return;
    }
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
    if (plugin_run(&f, ov, 8)) {
        failures++;
        return;
    }
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
    plugin_need(&f, "val_loss", "nats/byte");
    CHECK(f.n_samples >= 3 * 20, "loss, ce and kl series: %zu samples", f.n_samples);
}

int main(int argc, char **argv)
{
    if (plugin_load(DISTILL_SO, "distill")) return 1;
    snprintf(plugin_cache_dir, sizeof(plugin_cache_dir), "%s", argc > 1 ? argv[1] : "/tmp");
    mkdir(plugin_cache_dir, 0700);
    static const struct mt_test tests[] = {{"scratch", test_scratch}, {"teacher", test_teacher}};
    return mt_test_run(tests, sizeof(tests) / sizeof(tests[0]), NULL);
}
