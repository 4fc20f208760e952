/* tests/harness/test_metrics.c — the metric vocabulary (memtrade/metrics.h) answers each
 * standard name with its own row, per-category names with their pattern's, and names a
 * plugin invents with the catch-alls; every row has a unit but the last. mt_metric_split
 * finds the memory category of the five category forms, and only of memcat.h names. */
#include <memtrade/metrics.h>
#include <stdio.h>

#include "check.h"

static void row(const char *name, const char *want_row, enum mt_metric_agg agg,
                enum mt_metric_better better, enum mt_metric_kind kind)
{
    const struct mt_metric_info *m = mt_metric_lookup(name);
    CHECK(strcmp(m->name, want_row) == 0 && m->agg == agg && m->better == better &&
          m->kind == kind);
    if (strcmp(m->name, want_row) != 0)
        fprintf(stderr, "%s -> row %s, want %s\n", name, m->name, want_row);
}

/* split(name) must give base[category], or name itself when want_base is NULL. */
static void split(const char *name, const char *want_base, const char *want_cat)
{
    const char *cat = "(unset)", *base = mt_metric_split(name, &cat);
    int ok = want_base ? base && !strcmp(base, want_base) && !strcmp(cat, want_cat)
                       : !base && !strcmp(cat, "(unset)");
    CHECK(ok);
    if (!ok) fprintf(stderr, "split %s -> %s[%s]\n", name, base ? base : "NULL", cat);
}

int main(void)
{
    split("infer_peak_kv_cache_bytes", "infer_peak_bytes", "kv_cache");
    split("train_peak_act_grads_bytes", "train_peak_bytes", "act_grads");
    split("eval_peak_activations_bytes", "eval_peak_bytes", "activations");
    split("peak_weights_bytes", "peak_heap_bytes", "weights");
    split("heap_peak_bytes.other", "heap_peak_bytes", "other");
    split("heap.live.data", "heap.live", "data");
    split("peak_heap_bytes", NULL, NULL);      /* 'heap' is no category */
    split("train_peak_rss_bytes", NULL, NULL); /* nor is 'rss' */
    split("peak_rss_bytes", NULL, NULL);
    split("heap.live.nocat", NULL, NULL);
    split("heap.live", NULL, NULL);
    split("infer_peak_bytes", NULL, NULL);
    split("xpeak_weights_bytes", NULL, NULL);
    row("val_bpb", "val_bpb", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_ACCURACY);
    row("val_top1", "val_top1", MT_AGG_RANK0, MT_BETTER_HIGHER, MT_KIND_ACCURACY);
    row("train_loss", "train_loss", MT_AGG_MEAN, MT_BETTER_LOWER, MT_KIND_ACCURACY);
    row("infer_peak_kv_cache_bytes", "infer_peak_*_bytes", MT_AGG_MAX, MT_BETTER_LOWER,
        MT_KIND_SERVING_MEMORY);
    /* the evaluation phase's peak is not serving memory: no panel puts it on that axis */
    row("eval_peak_activations_bytes", "eval_peak_*_bytes", MT_AGG_MAX, MT_BETTER_LOWER,
        MT_KIND_MEMORY);
    row("train_peak_rss_bytes", "train_peak_rss_bytes", MT_AGG_MAX, MT_BETTER_LOWER,
        MT_KIND_MEMORY);
    row("train_peak_act_grads_bytes", "train_peak_*_bytes", MT_AGG_MAX, MT_BETTER_LOWER,
        MT_KIND_TRAINING_MEMORY);
    row("peak_heap_bytes", "peak_heap_bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY);
    row("peak_weights_bytes", "peak_*_bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY);
    row("comm_bytes_sent", "comm_bytes_sent", MT_AGG_SUM, MT_BETTER_LOWER, MT_KIND_COST);
    row("decode_tokens_per_s", "decode_tokens_per_s", MT_AGG_RANK0, MT_BETTER_HIGHER,
        MT_KIND_SPEED);
    row("qgemm_scalar_fallbacks", "*_fallbacks", MT_AGG_SUM, MT_BETTER_LOWER, MT_KIND_COST);
    row("finetune_tokens_per_s", "*_per_s", MT_AGG_RANK0, MT_BETTER_HIGHER, MT_KIND_SPEED);
    row("teacher_weights_bytes", "*_bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY);
    row("skeleton_mean", "*", MT_AGG_RANK0, MT_BETTER_NONE, MT_KIND_OTHER);
    row("_bytes", "*", MT_AGG_RANK0, MT_BETTER_NONE, MT_KIND_OTHER); /* '*' is never empty */
    size_t n = sizeof mt_metric_table / sizeof mt_metric_table[0];
    for (size_t i = 0; i + 1 < n; i++)
        CHECK(mt_metric_table[i].what &&
              (mt_metric_table[i].unit || mt_metric_table[i].name[0] == '*'));
    return mt_check_status(failures);
}
