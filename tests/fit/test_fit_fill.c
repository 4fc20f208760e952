/* test_fit_fill.c PLUGIN_DIR — mt_fit_fill (harness/fit.h) spends what a budget leaves
 * and never more, on tiny, from the built plugins' plans alone (no database: the runtime
 * term is 0, no run starts, nothing depends on the machine):
 * - serving (quantize, every KV format, at the model's context and a shorter one, over a
 *   ladder of budgets): the filled configuration's bytes are its plan through
 *   mt_fit_plan, within the budget; one more whole sequence is over it, and so is one
 *   more shorter sequence (decode_extra_tokens) longer than the one the fill chose
 *   (every length, brute force); every budget where one more sequence of one token
 *   costs under 5 % of it is left under 5 % unused (KIVI's int4 cache holds its fp32
 *   residual window whatever the length: not those); unused_why is given exactly when
 *   5 % or more stays unused;
 * - training (mixed_precision fp32/adamw and bf16/adafactor): within the budget, and no
 *   combination of micro-batch (1..batch: a non-divisor with accum_steps = ceil, its last
 *   micro-batch smaller), every (1..n_layer), recompute, attention kernel and optimizer
 *   offload fits with more bytes (brute force); the fill names the knobs it set; 5 % or
 *   more unused is marked coarse, "no finer step" when a larger combination exists (all
 *   over the budget), else "nothing left to spend"; and the budgets left under 5 % unused are at
 * least those the divisors alone reach, and more of them;
 * - a workload without such knobs (lora) is left as it is, and says so when unused;
 * - a configuration over the budget is left untouched (filled = 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fit.h"
#include "fit_measure.h"

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* The runtime class's thread count, as memtrade's main.c gives it (fit_measure.c reads
 * it; no runtime term is stored here, so its value changes nothing). */
int mt_cli_default_threads(void)
{
    return 1;
}

static void base(struct mt_fit_config *c, const char *workload)
{
    memset(c, 0, sizeof *c);
    snprintf(c->family, sizeof c->family, "test");
    c->workload = workload;
    mt_fit_set(c, "model", "tiny");
    mt_fit_set(c, "eval_tokens", "2048");
}

/* The plan of c (no runtime term: no database). */
static size_t bytes_of(const struct mt_fit *f, struct mt_fit_config *c)
{
    char err[1024];
    if (mt_fit_plan(f->reg, f->goal, c, NULL, 0, err, sizeof err)) {
        fprintf(stderr, "plan: %s\n", err);
        failures++;
        return (size_t)-1;
    }
    return c->plan_bytes;
}

static void serving(struct mt_fit *f)
{
    static const char *const kv[] = {"fp32", "bf16", "int8", "int4"};
    static const char *const ctx[] = {"0", "24"};
    static const size_t ctx_n[] = {64, 24}; /* tiny's context, and 24 */
    char err[1024], b[32];
    size_t with_extra = 0, cases = 0, under = 0, small_steps = 0;
    f->goal = MT_PLAN_SERVING;
    for (size_t k = 0; k < 4; k++)
        for (size_t x = 0; x < 2; x++)
            for (size_t budget = 300000; budget <= 1200000; budget += 37000) {
                struct mt_fit_config c;
                base(&c, "quantize");
                mt_fit_set(&c, "bits", "4");
                mt_fit_set(&c, "kv_cache", kv[k]);
                mt_fit_set(&c, "decode_tokens", ctx[x]);
                c.bytes = bytes_of(f, &c);
                f->budget = budget;
                if (c.bytes > budget) continue;
                cases++;
                if (mt_fit_fill(f, &c, err, sizeof err)) {
                    CHECK(0, "fill: %s", err);
                    continue;
                }
                const char *ns = mt_fit_get(&c, "decode_sequences"),
                           *ev = mt_fit_get(&c, "decode_extra_tokens");
                size_t n = ns ? (size_t)strtoull(ns, NULL, 10) : 0,
                       e = ev ? (size_t)strtoull(ev, NULL, 10) : 0;
                CHECK(c.filled && n >= 1, "kv %s budget %zu: not filled", kv[k], budget);
                CHECK(e < ctx_n[x], "kv %s budget %zu: extra %zu of context %zu", kv[k], budget, e,
                      ctx_n[x]);
                struct mt_fit_config t = c;
                size_t got = bytes_of(f, &t);
                CHECK(got == c.bytes && got <= budget,
                      "kv %s budget %zu: filled bytes %zu, plan %zu", kv[k], budget, c.bytes, got);
                /* one more whole sequence (instead of the extra one) is over the budget */
                snprintf(b, sizeof b, "%zu", n + 1);
                mt_fit_set(&t, "decode_sequences", b);
                mt_fit_set(&t, "decode_extra_tokens", "0");
                size_t more = bytes_of(f, &t);
                CHECK(more > budget, "kv %s budget %zu: %zu sequences fit, fill chose %zu", kv[k],
                      budget, n + 1, n);
                /* and no longer extra one fits (brute force) */
                for (size_t m = e + 1; m < ctx_n[x]; m++) {
                    t = c;
                    snprintf(b, sizeof b, "%zu", m);
                    mt_fit_set(&t, "decode_extra_tokens", b);
                    size_t v = bytes_of(f, &t);
                    CHECK(v > budget,
                          "kv %s budget %zu: extra %zu fits (%zu bytes), fill chose %zu", kv[k],
                          budget, m, v, e);
                }
                /* the smallest step left: one more sequence of one token */
                t = c;
                mt_fit_set(&t, "decode_extra_tokens", "0");
                size_t step1 = 0 - bytes_of(f, &t);
                mt_fit_set(&t, "decode_extra_tokens", "1");
                step1 += bytes_of(f, &t);
                with_extra += e > 0;
                under += c.unused * 20 < budget;
                small_steps += step1 * 20 < budget;
                CHECK(c.unused == budget - got, "kv %s budget %zu: unused %zu", kv[k], budget,
                      c.unused);
                CHECK(c.unused * 20 < budget || (e == 0 && step1 * 20 >= budget),
                      "kv %s budget %zu: %zu unused with an extra sequence of %zu, one of one "
                      "token %zu bytes",
                      kv[k], budget, c.unused, e, step1);
                CHECK((c.unused * 20 >= budget) == (c.unused_why[0] != 0),
                      "kv %s budget %zu: unused %zu, why '%s'", kv[k], budget, c.unused,
                      c.unused_why);
            }
    CHECK(cases > 40 && under >= small_steps && small_steps > 100 && with_extra > 100,
          "serving: %zu cases, %zu under 5 %% unused, %zu with a one-token step under 5 %%, %zu "
          "with an extra sequence",
          cases, under, small_steps, with_extra);
    printf("serving: %zu budgets filled, %zu under 5 %% unused (%zu where one more sequence of "
           "one token costs under 5 %%: all), %zu with one more shorter sequence\n",
           cases, under, small_steps, with_extra);
}

static void training(struct mt_fit *f)
{
    static const char *const every[] = {"1", "2"};
    static const char *const off[] = {"none", "optimizer"};
    static const char *const rc[] = {"none", "selective"};
    static const char *const att[] = {"dense", "flash"};
    static const char *const cls[][2] = {{"fp32", "adamw"}, {"bf16", "adafactor"}};
    char err[1024];
    size_t cases = 0, under = 0, under_divisors = 0;
    f->goal = MT_PLAN_TRAINING;
    for (size_t k = 0; k < 2; k++)
        for (size_t budget = 2000000; budget <= 17000000; budget += 500000) {
            struct mt_fit_config c;
            base(&c, "mixed_precision");
            mt_fit_set(&c, "precision", cls[k][0]);
            mt_fit_set(&c, "optimizer", cls[k][1]);
            struct mt_fit_config least = c;
            mt_fit_set(&least, "micro_batch", "1");
            mt_fit_set(&least, "accum_steps", "0");
            mt_fit_set(&least, "every", "2");
            mt_fit_set(&least, "recompute", "selective");
            mt_fit_set(&least, "attention", "flash");
            f->budget = budget;
            size_t lo = bytes_of(f, &least);
            if (lo > budget) continue;
            least.bytes = lo;
            cases++;
            if (mt_fit_fill(f, &least, err, sizeof err)) {
                CHECK(0, "fill: %s", err);
                continue;
            }
            struct mt_fit_config t = least;
            size_t got = bytes_of(f, &t), best = 0, best_divisor = 0, largest = 0;
            CHECK(least.filled && got == least.bytes && got <= budget,
                  "%s budget %zu: filled %zu, plan %zu", cls[k][0], budget, least.bytes, got);
            CHECK(strstr(least.fill, "micro_batch=") != NULL, "fill '%s'", least.fill);
            for (size_t a = 1; a <= 16; a++) /* tiny's batch: 16 */
                for (size_t e = 0; e < 2; e++)
                    for (size_t r = 0; r < 2; r++)
                        for (size_t z = 0; z < 2; z++)
                            for (size_t o = 0; o < 2; o++) {
                                struct mt_fit_config u = c;
                                char m[8], acc[8];
                                snprintf(m, sizeof m, "%zu", a);
                                snprintf(acc, sizeof acc, "%zu", 16 % a ? (16 + a - 1) / a : 0);
                                mt_fit_set(&u, "micro_batch", m);
                                mt_fit_set(&u, "accum_steps", acc);
                                mt_fit_set(&u, "every", every[e]);
                                mt_fit_set(&u, "recompute", rc[r]);
                                mt_fit_set(&u, "attention", att[z]);
                                mt_fit_set(&u, "offload", off[o]);
                                size_t v = bytes_of(f, &u);
                                if (v > largest) largest = v;
                                if (v <= budget && v > best) best = v;
                                if (v <= budget && v > best_divisor && 16 % a == 0 && o == 0)
                                    best_divisor = v;
                            }
            CHECK(best == got, "%s budget %zu: filled %zu, the most that fits %zu", cls[k][0],
                  budget, got, best);
            CHECK((least.unused * 20 >= budget) == (least.unused_why[0] != 0), "why '%s'",
                  least.unused_why);
            CHECK(least.unused_coarse == (least.unused * 20 >= budget) &&
                      (!least.unused_coarse ||
                       !strncmp(
                           least.unused_why,
                           largest > budget ? "no finer step: " : "nothing left to spend: ", 15)),
                  "%s budget %zu: coarse %d, unused %zu, largest %zu, why '%s'", cls[k][0], budget,
                  least.unused_coarse, least.unused, largest, least.unused_why);
            under += (budget - got) * 20 < budget;
            under_divisors += (budget - best_divisor) * 20 < budget;
            CHECK(best >= best_divisor, "%s budget %zu: %zu < divisors' %zu", cls[k][0], budget,
                  best, best_divisor);
        }
    CHECK(cases > 20, "training: %zu cases", cases);
    CHECK(under > under_divisors, "under 5 %% unused: %zu budgets, %zu with divisors alone", under,
          under_divisors);
    printf("training: %zu budgets filled, %zu under 5 %% unused (%zu with micro-batches that "
           "divide the batch and no offload)\n",
           cases, under, under_divisors);
}

static void others(struct mt_fit *f)
{
    char err[1024];
    struct mt_fit_config c;
    f->goal = MT_PLAN_TRAINING;
    base(&c, "lora");
    mt_fit_set(&c, "base", "nf4");
    c.bytes = bytes_of(f, &c);
    f->budget = 4 * c.bytes;
    struct mt_fit_config t = c;
    CHECK(mt_fit_fill(f, &t, err, sizeof err) == 0 && t.filled && t.bytes == c.bytes &&
              t.unused == f->budget - c.bytes &&
              strstr(t.unused_why, "lora has no knob fit searches"),
          "lora: filled %d bytes %zu unused %zu why '%s'", t.filled, t.bytes, t.unused,
          t.unused_why);
    f->budget = c.bytes - 1; /* over the budget: untouched */
    t = c;
    CHECK(mt_fit_fill(f, &t, err, sizeof err) == 0 && !t.filled && t.bytes == c.bytes,
          "over the budget: filled %d", t.filled);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_fit_fill PLUGIN_DIR\n");
        return 2;
    }
    struct mt_registry reg = {0};
    const char *dirs[] = {argv[1]};
    if (mt_plugins_scan(&reg, dirs, 1, NULL, NULL) || !mt_plugins_find(&reg, "quantize") ||
        !mt_plugins_find(&reg, "mixed_precision") || !mt_plugins_find(&reg, "lora")) {
        fprintf(stderr, "no quantize, mixed_precision or lora plugin in %s\n", argv[1]);
        return 1;
    }
    struct mt_fit_runner runner = {
        .exe = "/nonexistent", .db = "/nonexistent/fit.db", .out = "/nonexistent"};
    struct mt_fit f = {.reg = &reg,
                       .model = "tiny",
                       .eval_tokens = 2048,
                       .metric = 1,
                       .runner = &runner,
                       .ranks = 1};
    serving(&f);
    training(&f);
    others(&f);
    CHECK(runner.started == 0, "%zu runs started", runner.started);
    mt_plugins_free(&reg);
    if (failures) fprintf(stderr, "%d failures\n", failures);
    return failures ? 1 : 0;
}
