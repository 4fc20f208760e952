/* memtrade/metrics.h — the metric vocabulary: every standard metric memtrade stores, with
 * its unit, how the ranks of a multi-rank run combine into the run's value, which
 * direction is better, and what kind of figure it is.
 *
 * What it is for: one place that the harness (rank aggregation), the plots (which way is
 * better) and people (README) read, instead of rules guessed from name fragments. A
 * name may hold one '*', which matches any non-empty text (a memory category such as
 * `kv_cache`): `train_peak_*_bytes`; the first matching row counts. The last rows are the
 * catch-alls for names a plugin invents: any `*_bytes` is a memory figure taken as the
 * largest rank's, anything else is rank 0's value with no better direction.
 * What it is not for: the values themselves, or metrics private to one test plugin.
 * Header-only and dependency-free, so plugins may include it too.
 */
#ifndef MEMTRADE_METRICS_H
#define MEMTRADE_METRICS_H

#include <stddef.h>
#include <string.h>

#include "memcat.h"

/* How the run-level value (rank -1) of a multi-rank run is formed from its ranks'. */
enum mt_metric_agg {
    MT_AGG_RANK0, /* rank 0's value (accuracy is evaluated on rank 0; speeds are global) */
    MT_AGG_MAX,   /* the largest rank's: what the machine with the most must hold */
    MT_AGG_SUM,   /* the total over ranks: traffic, allocations */
    MT_AGG_MEAN   /* the mean over ranks: per-rank losses of different batches */
};

enum mt_metric_better { MT_BETTER_NONE, MT_BETTER_LOWER, MT_BETTER_HIGHER };

enum mt_metric_kind {
    MT_KIND_OTHER,           /* identity and bookkeeping (what was scored, counts) */
    MT_KIND_ACCURACY,        /* quality on held-out text */
    MT_KIND_SERVING_MEMORY,  /* bytes a deployment holds while serving */
    MT_KIND_TRAINING_MEMORY, /* bytes a training step holds, per rank */
    MT_KIND_MEMORY,          /* measured bytes of the whole run (kernel, heap profiler) */
    MT_KIND_SPEED,           /* throughput */
    MT_KIND_COST             /* time, traffic and calls spent */
};

struct mt_metric_info {
    const char *name; /* a standard name, or a pattern with one '*' */
    const char *unit;
    enum mt_metric_agg agg;
    enum mt_metric_better better;
    enum mt_metric_kind kind;
    const char *what;
};

/* The vocabulary, most specific rows first; mt_metric_lookup returns the first match. */
static const struct mt_metric_info mt_metric_table[] = {
    /* accuracy: scored once, on rank 0, on the first eval_bytes of the validation split */
    {"val_loss", "nats/byte", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_ACCURACY,
     "cross-entropy on held-out text"},
    {"val_bpb", "bits/byte", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_ACCURACY,
     "val_loss in bits per byte"},
    {"val_ppl", "ratio", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_ACCURACY, "perplexity per byte"},
    {"val_top1", "ratio", MT_AGG_RANK0, MT_BETTER_HIGHER, MT_KIND_ACCURACY,
     "fraction of next bytes predicted first"},
    {"eval_bytes", "bytes", MT_AGG_RANK0, MT_BETTER_NONE, MT_KIND_OTHER,
     "validation bytes scored (accuracy compares only between equal ones)"},
    /* against the base (unmodified fp32) model, same positions (serving.h) */
    {"kl_mean", "nats", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_ACCURACY,
     "mean KL(base || model) of next-token distributions"},
    {"kl_median", "nats", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_ACCURACY,
     "median KL(base || model) over positions"},
    {"kl_p99", "nats", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_ACCURACY,
     "99th percentile of KL(base || model) over positions"},
    {"kl_max", "nats", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_ACCURACY,
     "largest KL(base || model) of one position"},
    {"kl_top1_agree", "ratio", MT_AGG_RANK0, MT_BETTER_HIGHER, MT_KIND_ACCURACY,
     "share of positions whose top-1 token is the base model's"},
    {"delta_ppl", "ratio", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_ACCURACY,
     "val_ppl minus the base model's on the same positions"},
    {"base_probs_bytes", "bytes", MT_AGG_RANK0, MT_BETTER_NONE, MT_KIND_OTHER,
     "file of the base model's distributions (disk, not memory)"},
    {"train_loss", "nats/byte", MT_AGG_MEAN, MT_BETTER_LOWER, MT_KIND_ACCURACY,
     "mean training loss of the last steps"},
    /* serving memory: the accounted peak of the one serving measurement's deployment */
    {"infer_peak_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_SERVING_MEMORY,
     "accounted serving peak, what a deployment holds: weights as stored, KV cache at "
     "decode_context for each of decode_sequences sequences (default 1), their decode "
     "scratch and the kernels' workspace"},
    {"infer_peak_*_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_SERVING_MEMORY,
     "infer_peak_bytes of one memory category"},
    {"model_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_SERVING_MEMORY,
     "weights as stored"},
    {"kv_cache_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_SERVING_MEMORY,
     "KV cache at decode_context, summed over decode_sequences"},
    /* the KV cache (workload kv_cache): its format's bytes, layouts and accuracy */
    {"kv_bytes_per_token", "bytes/token", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_SERVING_MEMORY,
     "KV-cache bytes per position, every layer, keys and values, scales included"},
    {"kv_fixed_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_SERVING_MEMORY,
     "KV-cache bytes a sequence holds whatever its length (KIVI's fp32 residual)"},
    {"kv_waste_contiguous_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_SERVING_MEMORY,
     "allocated minus used, a contiguous cache at the model's context holding decode_context"},
    {"kv_waste_paged_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_SERVING_MEMORY,
     "allocated minus used, a paged cache holding decode_context"},
    {"kv_max_context", "tokens", MT_AGG_RANK0, MT_BETTER_HIGHER, MT_KIND_SERVING_MEMORY,
     "largest context whose KV cache fits the budget (paged; unavailable under a sliding "
     "window whose full window fits: every context does)"},
    {"kv_max_sequences", "count", MT_AGG_RANK0, MT_BETTER_HIGHER, MT_KIND_SERVING_MEMORY,
     "most sequences of the given context whose KV caches fit the budget (paged; a "
     "sliding window's sequence holds its window's blocks only)"},
    {"kv_val_loss", "nats/byte", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_ACCURACY,
     "loss decoding validation windows of decode_context through the KV cache"},
    {"kv_val_loss_fp32", "nats/byte", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_ACCURACY,
     "the same windows through an fp32 cache"},
    {"kv_kl", "nats", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_ACCURACY,
     "mean KL divergence of next-token distributions, fp32 cache to this cache"},
    {"kv_eval_bytes", "bytes", MT_AGG_RANK0, MT_BETTER_NONE, MT_KIND_OTHER,
     "validation bytes decoded for kv_val_loss and kv_kl"},
    {"kv_sim_waste_paged", "ratio", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_SERVING_MEMORY,
     "serving simulation: (held - used) / held of the paged cache over the steps"},
    {"kv_sim_waste_contiguous", "ratio", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_SERVING_MEMORY,
     "serving simulation: the same for contiguous caches at maximum length"},
    {"kv_sim_concurrency_gain", "ratio", MT_AGG_RANK0, MT_BETTER_HIGHER, MT_KIND_SERVING_MEMORY,
     "serving simulation: mean running sequences, paged over contiguous"},
    {"kv_sim_preemptions", "count", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_OTHER,
     "serving simulation: paged sequences evicted and recomputed"},
    {"bits_per_weight", "bits", MT_AGG_RANK0, MT_BETTER_LOWER, MT_KIND_SERVING_MEMORY,
     "stored bits per weight, scales and codebooks included"},
    {"decode_context", "tokens", MT_AGG_RANK0, MT_BETTER_NONE, MT_KIND_OTHER,
     "declared serving context (KV-cache positions)"},
    {"decode_sequences", "count", MT_AGG_RANK0, MT_BETTER_NONE, MT_KIND_OTHER,
     "concurrent sequences served, each with its own KV cache at decode_context"},
    /* the evaluation phase of a serving run: not what a deployment holds */
    {"eval_peak_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "accounted peak while scoring the validation text: the model's slabs for its batch of "
     "windows, the stored weights, kernel scratch, the batch's tokens"},
    {"eval_peak_*_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "eval_peak_bytes of one memory category"},
    /* training memory: what a training step holds at its peak, per rank */
    {"train_peak_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_TRAINING_MEMORY,
     "accounted training peak per rank: weights, gradients, optimizer state, activations "
     "and their gradients, workspace, the batch in flight"},
    {"train_peak_rss_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "the kernel's resident high-water mark when training ended"},
    {"train_peak_*_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_TRAINING_MEMORY,
     "train_peak_bytes of one memory category"},
    {"offload_file_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "offload=optimizer: the optimizer state's file in the run's scratch folder (RAM: "
     "train_peak_optimizer_bytes)"},
    {"offload_io_s", "s", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_COST,
     "offload=optimizer: seconds the I/O thread spent in pread/pwrite"},
    {"offload_wait_s", "s", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_COST,
     "offload=optimizer: seconds the update waited for I/O (what overlap did not hide)"},
    /* the three witnesses of a phase (train, infer, eval; issue 21): the plan's prediction
     * (the plugin's plan() hook, ABI 1.4, computed by the harness before the run), the
     * heap profiler's measured peak of the phase's region (region counter
     * heap_peak_bytes) and the kernel's RSS (peak_rss_bytes); the difference between
     * the measured heap peak and the plan, both over every category, is stored */
    {"plan_train_peak_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "predicted peak of the training phase per rank (memtrade plan), category by category"},
    {"plan_infer_peak_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "predicted peak of the serving deployment (memtrade plan), category by category"},
    {"plan_eval_peak_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "predicted peak of the evaluation (memtrade plan), category by category"},
    {"plan_teacher_cache_peak_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "distill teacher_cache=on: predicted peak of the teacher's pre-pass (memtrade plan)"},
    {"plan_train_peak_*_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "plan_train_peak_bytes of one memory category"},
    {"plan_teacher_cache_peak_*_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "plan_teacher_cache_peak_bytes of one memory category"},
    {"plan_prune_peak_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "prune: predicted peak of the pruning step (memtrade plan): both copies and the "
     "calibration batches"},
    {"plan_prune_peak_*_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "plan_prune_peak_bytes of one memory category"},
    {"plan_infer_peak_*_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "plan_infer_peak_bytes of one memory category"},
    {"plan_eval_peak_*_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "plan_eval_peak_bytes of one memory category"},
    {"*_rss_peak_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "<phase>_rss_peak_bytes: the kernel's resident high-water mark (VmHWM) during one "
     "top-level region, reset at its start (/proc/self/clear_refs); unavailable, with the "
     "kernel's reason, where the reset is refused"},
    {"*_unaccounted_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_OTHER,
     "<phase>_unaccounted_bytes: the heap profiler's peak of the phase's region minus the "
     "plan's total for the phase (what the plan does not name: library workspace, "
     "allocator slack; negative when the run held less than planned)"},
    {"*_runtime_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "<phase>_runtime_bytes: the runtime terms of the run's build, machine and class for the "
     "phase (library workspace, untagged allocations: heap beyond any plan, measured once by "
     "a probe run); unavailable, with the reason, when its class was not probed"},
    {"*_residual_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_OTHER,
     "<phase>_residual_bytes: <phase>_unaccounted_bytes minus <phase>_runtime_bytes (what "
     "neither the plan nor the runtime terms name); flagged beyond 5 % of the phase's heap "
     "peak and 4 MiB"},
    /* measured memory of the whole run */
    {"peak_rss_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "resident high-water mark (kernel)"},
    {"peak_heap_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "live heap high-water mark (heap profiler)"},
    {"peak_device_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "device memory high-water mark: what the CUDA driver handed out (cuMemAlloc*, async "
     "and pool allocations, cuMemCreate handles; profile --device)"},
    {"peak_device_mapped_bytes", "bytes", MT_AGG_MAX, MT_BETTER_NONE, MT_KIND_MEMORY,
     "high-water mark of VMM ranges mapped with cuMemMap (address space, not more memory)"},
    {"peak_pinned_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "pinned host memory high-water mark (cuMemHostAlloc, cuMemAllocHost)"},
    {"peak_managed_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "managed (unified) memory high-water mark (cuMemAllocManaged)"},
    {"peak_device_*_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "peak_device_bytes of one memory category"},
    {"nvml_peak_device_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "NVML's used device memory of the program's processes, high-water mark of 10 ms "
     "samples: adds the CUDA context and what allocators keep in reserve"},
    {"device_failed_calls", "count", MT_AGG_SUM, MT_BETTER_NONE, MT_KIND_OTHER,
     "CUDA driver memory calls that returned an error (not booked)"},
    {"device_unknown_frees", "count", MT_AGG_SUM, MT_BETTER_NONE, MT_KIND_OTHER,
     "device frees of an address or handle never booked"},
    {"peak_*_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "peak_heap_bytes of one memory category"},
    {"leaked_bytes", "bytes", MT_AGG_SUM, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "bytes never freed (heap profiler)"},
    {"heap_allocs", "count", MT_AGG_SUM, MT_BETTER_LOWER, MT_KIND_COST,
     "allocations (heap profiler)"},
    /* speed */
    {"train_tokens", "count", MT_AGG_RANK0, MT_BETTER_NONE, MT_KIND_OTHER,
     "the training budget: steps x batch x sequence length (the reference's, for a model "
     "loaded from the cache); runs are compared only at equal budgets"},
    {"train_tokens_per_s", "tokens/s", MT_AGG_RANK0, MT_BETTER_HIGHER, MT_KIND_SPEED,
     "training throughput (all ranks together)"},
    {"eval_tokens_per_s", "tokens/s", MT_AGG_RANK0, MT_BETTER_HIGHER, MT_KIND_SPEED,
     "evaluation throughput"},
    {"decode_tokens_per_s", "tokens/s", MT_AGG_RANK0, MT_BETTER_HIGHER, MT_KIND_SPEED,
     "batch-1 decode, median of timed passes after a warm-up"},
    /* cost of spreading over ranks */
    {"comm_bytes_sent", "bytes", MT_AGG_SUM, MT_BETTER_LOWER, MT_KIND_COST,
     "bytes sent by the ranks' collectives and messages"},
    {"comm_bytes_recv", "bytes", MT_AGG_SUM, MT_BETTER_LOWER, MT_KIND_COST,
     "bytes received by the ranks"},
    {"comm_calls", "count", MT_AGG_SUM, MT_BETTER_LOWER, MT_KIND_COST, "communication calls"},
    {"comm_s", "s", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_COST,
     "time in communication (the slowest rank)"},
    {"compute_s", "s", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_COST,
     "time computing (the slowest rank)"},
    /* implementations that ran (fallbacks are counted, never silent) */
    {"*_fallbacks", "count", MT_AGG_SUM, MT_BETTER_LOWER, MT_KIND_COST,
     "calls that fell back to a slower implementation"},
    {"reference_s", "s", MT_AGG_RANK0, MT_BETTER_NONE, MT_KIND_OTHER,
     "time preparing the reference model (loading it, or training it when not cached), "
     "left out of the run's wall_s"},
    {"n_params", "count", MT_AGG_RANK0, MT_BETTER_NONE, MT_KIND_OTHER, "parameters"},
    {"*_per_s", NULL, MT_AGG_RANK0, MT_BETTER_HIGHER, MT_KIND_SPEED,
     "a throughput of the plugin's own"},
    /* catch-alls for names a plugin invents */
    {"*_bytes", "bytes", MT_AGG_MAX, MT_BETTER_LOWER, MT_KIND_MEMORY,
     "a memory figure of the plugin's own"},
    {"*", NULL, MT_AGG_RANK0, MT_BETTER_NONE, MT_KIND_OTHER, "a figure of the plugin's own"},
};

/* 1 when `name` matches `pattern`: equal, or equal around its one '*', which stands for
 * one or more characters (rows are ordered so that the first match is the right one). */
static inline int mt_metric_match(const char *pattern, const char *name)
{
    const char *star = strchr(pattern, '*');
    if (!star) return strcmp(pattern, name) == 0;
    size_t pre = (size_t)(star - pattern), post = strlen(star + 1), n = strlen(name);
    return n > pre + post && strncmp(pattern, name, pre) == 0 &&
           strcmp(name + n - post, star + 1) == 0;
}

/* The vocabulary's row for `name` (never NULL: the catch-all answers last). Pure. */
static inline const struct mt_metric_info *mt_metric_lookup(const char *name)
{
    size_t n = sizeof mt_metric_table / sizeof mt_metric_table[0];
    for (size_t i = 0; i + 1 < n; i++)
        if (mt_metric_match(mt_metric_table[i].name, name)) return &mt_metric_table[i];
    return &mt_metric_table[n - 1];
}

/* Names that carry a memory category. A plugin reports `train_peak_weights_bytes` and the
 * heap profiler `heap.live.kv_cache`; the store keeps the base name and the category
 * apart (columns `name`/`series`/`counter` and `category`), so readers never cut names.
 * The '*' is one of memcat.h's category names; anything else ('peak_rss_bytes',
 * 'peak_heap_bytes') is a name of its own. Forms are tried in order. */
struct mt_metric_category_form {
    const char *pattern; /* one '*' where the category stands */
    const char *base;    /* the name stored beside the category */
};

static const struct mt_metric_category_form mt_metric_category_forms[] = {
    {"plan_train_peak_*_bytes", "plan_train_peak_bytes"}, /* metric: predicted (plan) */
    {"plan_infer_peak_*_bytes", "plan_infer_peak_bytes"},
    {"plan_eval_peak_*_bytes", "plan_eval_peak_bytes"},
    {"plan_teacher_cache_peak_*_bytes", "plan_teacher_cache_peak_bytes"},
    {"plan_prune_peak_*_bytes", "plan_prune_peak_bytes"},
    {"infer_peak_*_bytes", "infer_peak_bytes"}, /* metric: accounted serving peak */
    {"eval_peak_*_bytes", "eval_peak_bytes"},   /* metric: accounted evaluation peak */
    {"train_peak_*_bytes", "train_peak_bytes"}, /* metric: accounted training peak */
    {"peak_device_*_bytes", "peak_device_bytes"}, /* metric: measured device peak */
    {"peak_*_bytes", "peak_heap_bytes"},          /* metric: measured heap peak */
    {"heap_peak_bytes.*", "heap_peak_bytes"},   /* region counter: measured phase peak */
    {"heap.live.*", "heap.live"},               /* sample series: live heap timeline */
};

/* Contract: when `name` is a category form whose '*' is a memcat.h category, returns the
 * base name and sets *category to the category's name (both static strings); otherwise
 * returns NULL and leaves *category alone. Pure. */
static inline const char *mt_metric_split(const char *name, const char **category)
{
    size_t n = strlen(name);
    for (size_t f = 0; f < sizeof mt_metric_category_forms / sizeof mt_metric_category_forms[0];
         f++) {
        const char *pattern = mt_metric_category_forms[f].pattern;
        const char *star = strchr(pattern, '*');
        size_t pre = (size_t)(star - pattern), post = strlen(star + 1);
        if (n <= pre + post || strncmp(name, pattern, pre) != 0 ||
            strcmp(name + n - post, star + 1) != 0)
            continue;
        for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
            if (strlen(mt_mem_cat_names[c]) == n - pre - post &&
                strncmp(name + pre, mt_mem_cat_names[c], n - pre - post) == 0) {
                *category = mt_mem_cat_names[c];
                return mt_metric_category_forms[f].base;
            }
    }
    return NULL;
}

#endif
