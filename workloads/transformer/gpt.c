/* gpt.c — configuration, slab layout, forward, backward and AdamW of the reference GPT.
 *
 * What it is for: the model as llm.c lays it out (see gpt.h): the layout functions below
 * are the single source of every tensor's size, used both by mt_gpt_memory (no
 * allocation) and by mt_gpt_create (carving), so the two cannot disagree.
 * What it is not for: the layer math (kernels.c), KV-cache decoding (decode.c), data,
 * evaluation or checkpoints.
 */
#include "gpt.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "kernels.h"
#include "rng.h"
#include "util.h"

#define ALIGN ((size_t)64)

static size_t round_up(size_t n)
{
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

/* ---------------------------------------------------------------- configuration */

int mt_gpt_config_preset(struct mt_gpt_config *cfg, const char *name, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        struct mt_gpt_config cfg;
    } presets[] = {
#define GPT(V, T, L, H, C) {.vocab = V, .seq_len = T, .n_layer = L, .n_head = H, .n_embd = C}
#define LLAMA(V, T, L, H, KV, C)                                                                   \
    {                                                                                              \
        .vocab = V, .seq_len = T, .n_layer = L, .n_head = H, .n_embd = C, .n_kv_head = KV,         \
        .norm = MT_GPT_NORM_RMS, .pos = MT_GPT_POS_ROPE, .mlp = MT_GPT_MLP_SWIGLU, .no_bias = 1,   \
        .untied = 1                                                                                \
    }
        {"tiny", GPT(256, 64, 2, 2, 64)},
        {"small", GPT(256, 128, 4, 4, 128)},
        {"medium", GPT(256, 256, 6, 8, 256)},
        {"long", GPT(256, 4096, 6, 8, 256)},
        {"gpt2", GPT(256, 1024, 12, 12, 768)},
        {"llama-tiny", LLAMA(256, 128, 2, 4, 2, 128)},
        {"llama-1b", LLAMA(32000, 2048, 22, 32, 4, 2048)}, /* TinyLlama-1.1B's shape */
#undef GPT
#undef LLAMA
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (name && strcmp(name, presets[i].name) == 0) {
            *cfg = presets[i].cfg;
            return 0;
        }
    return mt_tf_fail(err, errlen,
                      "unknown model preset '%s' "
                      "(tiny|small|medium|long|gpt2|llama-tiny|llama-1b)",
                      name ? name : "(null)");
}

/* The block options with two named values: value 0 (the original model) first. */
static const struct {
    const char *key;
    size_t off;
    const char *names[2];
} kinds[] = {
    {"attention", offsetof(struct mt_gpt_config, attention), {"dense", "flash"}},
    {"norm", offsetof(struct mt_gpt_config, norm), {"layernorm", "rmsnorm"}},
    {"pos", offsetof(struct mt_gpt_config, pos), {"learned", "rope"}},
    {"mlp", offsetof(struct mt_gpt_config, mlp), {"gelu", "swiglu"}},
    {"bias", offsetof(struct mt_gpt_config, no_bias), {"on", "off"}},
    {"tie", offsetof(struct mt_gpt_config, untied), {"on", "off"}},
};

int mt_gpt_config_set(struct mt_gpt_config *cfg, const char *key, const char *value, char *err,
                      size_t errlen)
{
    static const struct {
        const char *key, *alias;
        size_t off;
        int zero_ok; /* 0 is a valid value (the option is off) */
    } fields[] = {
        {"vocab", "V", offsetof(struct mt_gpt_config, vocab), 0},
        {"seq_len", "T", offsetof(struct mt_gpt_config, seq_len), 0},
        {"n_layer", "L", offsetof(struct mt_gpt_config, n_layer), 0},
        {"n_head", "H", offsetof(struct mt_gpt_config, n_head), 0},
        {"n_embd", "C", offsetof(struct mt_gpt_config, n_embd), 0},
        {"n_kv_head", "KV", offsetof(struct mt_gpt_config, n_kv_head), 1},
        {"window", "W", offsetof(struct mt_gpt_config, window), 1},
        {"ffn", "F", offsetof(struct mt_gpt_config, ffn), 1},
        {"rope_theta", "theta", offsetof(struct mt_gpt_config, rope_theta), 1},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(key, kinds[i].key) != 0) continue;
        for (size_t v = 0; v < 2; v++)
            if (strcmp(value, kinds[i].names[v]) == 0) {
                *(size_t *)((char *)cfg + kinds[i].off) = v;
                return 0;
            }
        return mt_tf_fail(err, errlen, "model field %s: '%s' is not %s|%s", key, value,
                          kinds[i].names[0], kinds[i].names[1]);
    }
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strcmp(key, fields[i].key) != 0 && strcmp(key, fields[i].alias) != 0) continue;
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (!value[0] || *end || errno || (v == 0 && !fields[i].zero_ok) || value[0] == '-')
            return mt_tf_fail(err, errlen, "model field %s: '%s' is not a %s integer", key, value,
                              fields[i].zero_ok ? "non-negative" : "positive");
        *(size_t *)((char *)cfg + fields[i].off) = (size_t)v;
        return 0;
    }
    return mt_tf_fail(err, errlen,
                      "unknown model field '%s' "
                      "(vocab|seq_len|n_layer|n_head|n_embd|attention|n_kv_head|window|"
                      "norm|pos|rope_theta|mlp|ffn|bias|tie)",
                      key);
}

int mt_gpt_config_parse(struct mt_gpt_config *cfg, const char *spec, char *err, size_t errlen)
{
    char buf[256];
    if (strlen(spec) >= sizeof buf) return mt_tf_fail(err, errlen, "model spec too long");
    strcpy(buf, spec);
    char *save = NULL, *tok = strtok_r(buf, ",", &save);
    if (!tok || mt_gpt_config_preset(cfg, tok, err, errlen))
        return tok ? -1 : mt_tf_fail(err, errlen, "empty model spec");
    while ((tok = strtok_r(NULL, ",", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq) return mt_tf_fail(err, errlen, "model spec item '%s' is not key=value", tok);
        *eq = 0;
        if (mt_gpt_config_set(cfg, tok, eq + 1, err, errlen)) return -1;
    }
    /* one spelling of the same model */
    if (cfg->n_kv_head == cfg->n_head) cfg->n_kv_head = 0;
    if (cfg->rope_theta == 10000) cfg->rope_theta = 0;
    size_t ffn = cfg->ffn;
    cfg->ffn = 0;
    if (mt_gpt_ffn(cfg) != ffn && ffn) cfg->ffn = ffn;
    return mt_gpt_config_check(cfg, err, errlen);
}

int mt_gpt_config_check(const struct mt_gpt_config *cfg, char *err, size_t errlen)
{
    const size_t lim = (size_t)1 << 24; /* keeps every product below far from overflow */
    if (!cfg->vocab || !cfg->seq_len || !cfg->n_layer || !cfg->n_head || !cfg->n_embd)
        return mt_tf_fail(err, errlen, "model config has a zero field");
    if (cfg->vocab > lim || cfg->seq_len > 65536 || cfg->n_layer > 1024 || cfg->n_embd > 65536 ||
        cfg->n_head > cfg->n_embd)
        return mt_tf_fail(err, errlen, "model config too large");
    if (cfg->n_embd % cfg->n_head)
        return mt_tf_fail(err, errlen, "n_head %zu does not divide n_embd %zu", cfg->n_head,
                          cfg->n_embd);
    if (cfg->n_kv_head > cfg->n_head || cfg->n_head % mt_gpt_kv_heads(cfg))
        return mt_tf_fail(err, errlen, "n_kv_head %zu does not divide n_head %zu", cfg->n_kv_head,
                          cfg->n_head);
    if (cfg->attention != MT_GPT_ATTN_DENSE && cfg->attention != MT_GPT_ATTN_FLASH)
        return mt_tf_fail(err, errlen, "unknown attention kind %zu (0 dense, 1 flash)",
                          cfg->attention);
    if (cfg->vocab > (size_t)INT32_MAX)
        return mt_tf_fail(err, errlen, "vocab too large for int token ids");
    if (cfg->norm > 1 || cfg->pos > 1 || cfg->mlp > 1 || cfg->no_bias > 1 || cfg->untied > 1)
        return mt_tf_fail(err, errlen,
                          "unknown block option value (norm %zu, pos %zu, mlp %zu, no_bias "
                          "%zu, untied %zu: each 0 or 1)",
                          cfg->norm, cfg->pos, cfg->mlp, cfg->no_bias, cfg->untied);
    if (cfg->ffn > 4 * lim / 16) return mt_tf_fail(err, errlen, "ffn %zu too large", cfg->ffn);
    if (cfg->pos == MT_GPT_POS_ROPE && (cfg->n_embd / cfg->n_head) % 2)
        return mt_tf_fail(err, errlen, "RoPE needs an even head size (n_embd / n_head = %zu)",
                          cfg->n_embd / cfg->n_head);
    return 0;
}

size_t mt_gpt_ffn(const struct mt_gpt_config *cfg)
{
    if (cfg->ffn) return cfg->ffn;
    if (cfg->mlp != MT_GPT_MLP_SWIGLU) return 4 * cfg->n_embd;
    return (8 * cfg->n_embd / 3 + (8 * cfg->n_embd % 3 != 0) + 255) / 256 * 256;
}

double mt_gpt_rope_theta(const struct mt_gpt_config *cfg)
{
    return cfg->rope_theta ? (double)cfg->rope_theta : 10000.0;
}

size_t mt_gpt_kv_heads(const struct mt_gpt_config *cfg)
{
    return cfg->n_kv_head ? cfg->n_kv_head : cfg->n_head;
}

size_t mt_gpt_kv_dim(const struct mt_gpt_config *cfg)
{
    return mt_gpt_kv_heads(cfg) * (cfg->n_embd / cfg->n_head);
}

void mt_gpt_config_options(const struct mt_gpt_config *cfg, char *out, size_t n)
{
    size_t kvh = mt_gpt_kv_heads(cfg), k = 0;
    if (!n) return;
    out[0] = 0;
    if (cfg->attention == MT_GPT_ATTN_FLASH) k += (size_t)snprintf(out, n, ",attention=flash");
    if (kvh != cfg->n_head && k < n) k += (size_t)snprintf(out + k, n - k, ",n_kv_head=%zu", kvh);
    if (cfg->window && k < n) k += (size_t)snprintf(out + k, n - k, ",window=%zu", cfg->window);
    for (size_t i = 1; i < sizeof kinds / sizeof kinds[0]; i++) { /* attention is above */
        size_t v = *(const size_t *)((const char *)cfg + kinds[i].off);
        if (v == 1 && k < n)
            k += (size_t)snprintf(out + k, n - k, ",%s=%s", kinds[i].key, kinds[i].names[1]);
    }
    if (cfg->rope_theta && k < n)
        k += (size_t)snprintf(out + k, n - k, ",rope_theta=%zu", cfg->rope_theta);
    if (cfg->ffn && k < n) snprintf(out + k, n - k, ",ffn=%zu", cfg->ffn);
}

/* ---------------------------------------------------------------- layout */

static const char *const param_names[] = {
    "wte",   "wpe",  "ln1_w", "ln1_b",    "qkv_w",    "qkv_b", "attproj_w", "attproj_b", "ln2_w",
    "ln2_b", "fc_w", "fc_b",  "fcproj_w", "fcproj_b", "lnf_w", "lnf_b",     "lm_head"};
static const char *const grad_names[] = {
    "grad.wte",       "grad.wpe",       "grad.ln1_w", "grad.ln1_b", "grad.qkv_w",  "grad.qkv_b",
    "grad.attproj_w", "grad.attproj_b", "grad.ln2_w", "grad.ln2_b", "grad.fc_w",   "grad.fc_b",
    "grad.fcproj_w",  "grad.fcproj_b",  "grad.lnf_w", "grad.lnf_b", "grad.lm_head"};
static const char *const act_names[] = {
    "act.encoded",  "act.ln1",      "act.ln1_mean",  "act.ln1_rstd",  "act.qkv",
    "act.atty",     "act.att",      "act.residual2", "act.ln2",       "act.ln2_mean",
    "act.ln2_rstd", "act.fch",      "act.fch_gelu",  "act.residual3", "act.proj",
    "act.lnf",      "act.lnf_mean", "act.lnf_rstd",  "act.logits",    "act.losses"};
static const char *const dact_names[] = {"dact.residual", "dact.ln",  "dact.atty",
                                         "dact.qkv",      "dact.att", "dact.fch"};
static const char *const work_names[] = {"work.inputs", "work.targets"};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(COUNT_OF(param_names) == MT_P_COUNT, "a name per parameter tensor");
_Static_assert(COUNT_OF(grad_names) == MT_P_COUNT, "a name per gradient tensor");
_Static_assert(COUNT_OF(act_names) == MT_A_COUNT, "a name per activation tensor");
_Static_assert(COUNT_OF(dact_names) == MT_D_COUNT, "a name per activation gradient");
_Static_assert(COUNT_OF(work_names) == MT_W_COUNT, "a name per workspace tensor");

const char *mt_gpt_param_name(enum mt_gpt_param p)
{
    return (unsigned)p < MT_P_COUNT ? param_names[p] : "?";
}

/* Each tensor's dims in units of the configuration: what a dim of each kind is, and the
 * kinds per tensor (a 0 ends the list). */
enum { D_END, D_V, D_T, D_L, D_C, D_QKV, D_FO, D_F };
static const unsigned char param_dims[MT_P_COUNT][3] = {[MT_P_WTE] = {D_V, D_C},
                                                        [MT_P_WPE] = {D_T, D_C},
                                                        [MT_P_LN1W] = {D_L, D_C},
                                                        [MT_P_LN1B] = {D_L, D_C},
                                                        [MT_P_QKVW] = {D_L, D_QKV, D_C},
                                                        [MT_P_QKVB] = {D_L, D_QKV},
                                                        [MT_P_ATTPROJW] = {D_L, D_C, D_C},
                                                        [MT_P_ATTPROJB] = {D_L, D_C},
                                                        [MT_P_LN2W] = {D_L, D_C},
                                                        [MT_P_LN2B] = {D_L, D_C},
                                                        [MT_P_FCW] = {D_L, D_FO, D_C},
                                                        [MT_P_FCB] = {D_L, D_FO},
                                                        [MT_P_FCPROJW] = {D_L, D_C, D_F},
                                                        [MT_P_FCPROJB] = {D_L, D_C},
                                                        [MT_P_LNFW] = {D_C},
                                                        [MT_P_LNFB] = {D_C},
                                                        [MT_P_LMHEAD] = {D_V, D_C}};

/* Whether the configuration has tensor p (see mt_gpt_param_shape). */
static int param_exists(const struct mt_gpt_config *cfg, int p)
{
    switch (p) {
    case MT_P_WPE:
        return cfg->pos != MT_GPT_POS_ROPE;
    case MT_P_LN1B:
    case MT_P_LN2B:
    case MT_P_LNFB:
        return cfg->norm != MT_GPT_NORM_RMS;
    case MT_P_QKVB:
    case MT_P_ATTPROJB:
    case MT_P_FCB:
    case MT_P_FCPROJB:
        return !cfg->no_bias;
    case MT_P_LMHEAD:
        return cfg->untied != 0;
    default:
        return 1;
    }
}

size_t mt_gpt_param_shape(const struct mt_gpt_config *cfg, enum mt_gpt_param p, size_t dims[3])
{
    size_t C = cfg->n_embd, F = mt_gpt_ffn(cfg);
    const size_t unit[] = {[D_V] = cfg->vocab,
                           [D_T] = cfg->seq_len,
                           [D_L] = cfg->n_layer,
                           [D_C] = C,
                           [D_QKV] = C + 2 * mt_gpt_kv_dim(cfg),
                           [D_FO] = cfg->mlp == MT_GPT_MLP_SWIGLU ? 2 * F : F,
                           [D_F] = F};
    size_t n = 0;
    while (param_exists(cfg, p) && n < 3 && param_dims[p][n] != D_END) {
        dims[n] = unit[param_dims[p][n]];
        n++;
    }
    return n;
}

int mt_gpt_param_decays(enum mt_gpt_param p)
{
    return p == MT_P_WTE || p == MT_P_WPE || p == MT_P_QKVW || p == MT_P_ATTPROJW ||
           p == MT_P_FCW || p == MT_P_FCPROJW || p == MT_P_LMHEAD;
}

size_t mt_gpt_param_elems(const struct mt_gpt_config *cfg, enum mt_gpt_param p)
{
    size_t dims[3], n = 1, nd = mt_gpt_param_shape(cfg, p, dims);
    for (size_t i = 0; i < nd; i++)
        n *= dims[i];
    return nd ? n : 0;
}

enum mt_gpt_param mt_gpt_head_param(const struct mt_gpt_config *cfg)
{
    return cfg->untied ? MT_P_LMHEAD : MT_P_WTE;
}

static size_t param_len(const struct mt_gpt_config *cfg, int p)
{
    return mt_gpt_param_elems(cfg, (enum mt_gpt_param)p);
}

size_t mt_gpt_num_params(const struct mt_gpt_config *cfg)
{
    size_t n = 0;
    for (int p = 0; p < MT_P_COUNT; p++)
        n += param_len(cfg, p);
    return n;
}

/* Floats of activation `a` with Lk layer slots. */
static size_t act_len(const struct mt_gpt_config *cfg, size_t B, size_t T, size_t Lk, int a)
{
    size_t C = cfg->n_embd, BT = B * T, F = mt_gpt_ffn(cfg);
    size_t FO = cfg->mlp == MT_GPT_MLP_SWIGLU ? 2 * F : F, rms = cfg->norm == MT_GPT_NORM_RMS;
    switch (a) {
    case MT_A_ENCODED:
    case MT_A_PROJ:
    case MT_A_LNF:
        return BT * C;
    case MT_A_LN1:
    case MT_A_ATTY:
    case MT_A_RESIDUAL2:
    case MT_A_LN2:
    case MT_A_RESIDUAL3:
        return Lk * BT * C;
    case MT_A_LN1_MEAN:
    case MT_A_LN2_MEAN: /* RMSNorm has no mean */
        return rms ? 0 : Lk * BT;
    case MT_A_LN1_RSTD:
    case MT_A_LN2_RSTD:
        return Lk * BT;
    case MT_A_QKV:
        return Lk * BT * (C + 2 * mt_gpt_kv_dim(cfg));
    case MT_A_ATT: /* flash keeps the log-sum-exp of each row, dense the probabilities */
        return Lk * B * cfg->n_head * T * (cfg->attention == MT_GPT_ATTN_FLASH ? 1 : T);
    case MT_A_FCH:
        return Lk * BT * FO;
    case MT_A_FCH_GELU:
        return Lk * BT * F;
    case MT_A_LNF_MEAN:
        return rms ? 0 : BT;
    case MT_A_LNF_RSTD:
    case MT_A_LOSSES:
        return BT;
    case MT_A_LOGITS:
        return BT * cfg->vocab;
    default:
        return 0;
    }
}

static size_t dact_len(const struct mt_gpt_config *cfg, size_t B, size_t T, int d)
{
    size_t C = cfg->n_embd, BT = B * T;
    switch (d) {
    case MT_D_QKV:
        return BT * (C + 2 * mt_gpt_kv_dim(cfg));
    case MT_D_ATT: /* flash: none, its tiles live on the kernel's stack */
        return cfg->attention == MT_GPT_ATTN_FLASH ? 0 : B * cfg->n_head * T * T;
    case MT_D_FCH: /* SwiGLU: the fc output's gradient (2F), then the SwiGLU output's (F) */
        return BT * mt_gpt_ffn(cfg) * (cfg->mlp == MT_GPT_MLP_SWIGLU ? 3 : 1);
    default:
        return BT * C;
    }
}

size_t mt_gpt_act_elems(const struct mt_gpt_config *cfg, size_t B, size_t T, enum mt_gpt_act a)
{
    return act_len(cfg, B, T, 1, (int)a);
}

size_t mt_gpt_dact_elems(const struct mt_gpt_config *cfg, size_t B, size_t T, enum mt_gpt_dact d)
{
    return dact_len(cfg, B, T, (int)d);
}

/* A slab description: the byte size of each tensor; offsets are 64-byte aligned. */
struct slab {
    size_t n;
    size_t bytes[(int)MT_A_COUNT > (int)MT_P_COUNT ? (int)MT_A_COUNT : (int)MT_P_COUNT];
};

static size_t slab_total(const struct slab *s)
{
    size_t t = 0;
    for (size_t i = 0; i < s->n; i++)
        t += round_up(s->bytes[i]);
    return t;
}

/* Layer slots of a mode: all L layers when training, one reused slot for inference. */
static size_t act_slots(const struct mt_gpt_config *cfg, enum mt_gpt_mode mode)
{
    return mode == MT_GPT_TRAIN || mode == MT_GPT_FROZEN ? cfg->n_layer : 1;
}

/* The per-category slabs of a model: the one place tensor sizes are decided. */
static void layout(const struct mt_gpt_config *cfg, size_t B, size_t T, enum mt_gpt_mode mode,
                   struct slab s[MT_MEM_CAT_COUNT])
{
    memset(s, 0, sizeof(struct slab) * MT_MEM_CAT_COUNT);
    s[MT_MEM_WEIGHTS].n = MT_P_COUNT;
    for (int p = 0; p < MT_P_COUNT; p++)
        s[MT_MEM_WEIGHTS].bytes[p] = param_len(cfg, p) * sizeof(float);
    if (mode == MT_GPT_WEIGHTS) return;
    size_t Lk = act_slots(cfg, mode);
    s[MT_MEM_ACTIVATIONS].n = MT_A_COUNT;
    for (int a = 0; a < MT_A_COUNT; a++)
        s[MT_MEM_ACTIVATIONS].bytes[a] = act_len(cfg, B, T, Lk, a) * sizeof(float);
    s[MT_MEM_WORKSPACE].n = MT_W_COUNT;
    for (int w = 0; w < MT_W_COUNT; w++)
        s[MT_MEM_WORKSPACE].bytes[w] = B * T * sizeof(int);
    if (mode != MT_GPT_TRAIN && mode != MT_GPT_FROZEN) return;
    s[MT_MEM_ACT_GRADS].n = MT_D_COUNT;
    for (int d = 0; d < MT_D_COUNT; d++)
        s[MT_MEM_ACT_GRADS].bytes[d] = dact_len(cfg, B, T, d) * sizeof(float);
    if (mode == MT_GPT_FROZEN) return;
    s[MT_MEM_GRADIENTS] = s[MT_MEM_WEIGHTS];
    s[MT_MEM_OPTIMIZER].n = 2; /* m and v, each laid out like the weights */
    s[MT_MEM_OPTIMIZER].bytes[0] = s[MT_MEM_OPTIMIZER].bytes[1] = slab_total(&s[MT_MEM_WEIGHTS]);
}

size_t mt_gpt_memory(const struct mt_gpt_config *cfg, size_t B, size_t T, enum mt_gpt_mode mode,
                     size_t bytes[MT_MEM_CAT_COUNT], char *err, size_t errlen)
{
    struct slab s[MT_MEM_CAT_COUNT];
    if (mt_gpt_config_check(cfg, err, errlen)) return 0;
    if (mode != MT_GPT_WEIGHTS && (!B || !T || T > cfg->seq_len || B > ((size_t)1 << 20))) {
        mt_tf_fail(err, errlen, "batch shape B=%zu T=%zu invalid (T must be 1..%zu)", B, T,
                   cfg->seq_len);
        return 0;
    }
    layout(cfg, B, T, mode, s);
    size_t total = 0;
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++) {
        size_t b = slab_total(&s[c]);
        if (bytes) bytes[c] = b;
        total += b;
    }
    return total;
}

size_t mt_gpt_carve(const struct mt_gpt_config *cfg, size_t B, size_t T, enum mt_gpt_mode mode,
                    int cat, void *base, void **ptrs)
{
    struct slab s[MT_MEM_CAT_COUNT];
    if (cat < 0 || cat >= MT_MEM_CAT_COUNT) return 0;
    layout(cfg, B, T, mode, s);
    size_t off = 0;
    for (size_t i = 0; i < s[cat].n; i++) {
        ptrs[i] = s[cat].bytes[i] ? (unsigned char *)base + off : NULL;
        off += round_up(s[cat].bytes[i]);
    }
    return s[cat].n;
}

/* Allocates one slab under its category, zeroed, and reports its tensors. */
static void *slab_alloc(const struct slab *s, int cat, const char *const *names, void **ptrs)
{
    size_t total = slab_total(s);
    if (!total) return NULL;
    int prev = mt_memcat_set(cat);
    unsigned char *base = aligned_alloc(ALIGN, total);
    mt_memcat_set(prev);
    if (!base) return NULL;
    memset(base, 0, total);
    size_t off = 0;
    for (size_t i = 0; i < s->n; i++) {
        ptrs[i] = base + off;
        if (names && s->bytes[i]) /* empty (dropped) tensors are not reported */
            mt_memcat_report(base + off, s->bytes[i], cat, names[i]);
        off += round_up(s->bytes[i]);
    }
    return base;
}

/* Frees every slab but the weights and leaves m a weights-only model (mode
 * MT_GPT_WEIGHTS, no forward to run a backward on). */
static void state_free(struct mt_gpt *m)
{
    free(m->grads);
    free(m->opt);
    free(m->acts);
    free(m->dacts);
    free(m->work);
    m->grads = m->opt = m->acts = m->dacts = m->opt_m = m->opt_v = NULL;
    m->work = NULL;
    m->inputs = m->targets = NULL;
    memset(m->grad, 0, sizeof m->grad);
    memset(m->act, 0, sizeof m->act);
    memset(m->dact, 0, sizeof m->dact);
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        if (c != MT_MEM_WEIGHTS) m->slab_bytes[c] = 0;
    m->mode = MT_GPT_WEIGHTS;
    m->act_slots = act_slots(&m->cfg, MT_GPT_WEIGHTS);
    m->B = m->T = 0;
    m->fwd_B = m->fwd_T = 0;
    m->last_loss = -1.0f;
    m->grads_zero = 1;
}

void mt_gpt_free(struct mt_gpt *m)
{
    if (!m) return;
    state_free(m);
    free(m->params);
    if (m->mapped_release) m->mapped_release(m->mapped_user);
    free(m);
}

int mt_gpt_drop_weights(struct mt_gpt *m, const unsigned char drop[MT_P_COUNT], char *err,
                        size_t errlen)
{
    if (m->grads) return mt_tf_fail(err, errlen, "a training model cannot drop its weights");
    struct slab s = {.n = MT_P_COUNT};
    for (int p = 0; p < MT_P_COUNT; p++) /* mapped tensors stay where they are */
        s.bytes[p] = drop[p] || !m->param[p] || m->mapped[p] ? 0 : m->param_len[p] * sizeof(float);
    void *pp[MT_P_COUNT] = {0};
    void *slab = slab_alloc(&s, MT_MEM_WEIGHTS, param_names, pp);
    if (!slab && slab_total(&s))
        return mt_tf_fail(err, errlen, "out of memory rebuilding the weight slab (%zu bytes)",
                          slab_total(&s));
    for (int p = 0; p < MT_P_COUNT; p++) {
        if (m->mapped[p] && !drop[p]) continue;
        if (m->mapped[p]) m->mapped_bytes -= m->param_len[p] * sizeof(float);
        m->mapped[p] = 0;
        if (s.bytes[p]) memcpy(pp[p], m->param[p], s.bytes[p]);
        m->param[p] = s.bytes[p] ? pp[p] : NULL;
        if (!s.bytes[p]) m->param_len[p] = 0;
    }
    free(m->params);
    m->params = slab;
    m->slab_bytes[MT_MEM_WEIGHTS] = slab_total(&s);
    return 0;
}

size_t mt_gpt_mapped_slab_bytes(const struct mt_gpt *m)
{
    size_t b = 0;
    for (int p = 0; p < MT_P_COUNT; p++)
        b += m->mapped[p] ? round_up(m->param_len[p] * sizeof(float)) : 0;
    return b;
}

int mt_gpt_copy_weights(struct mt_gpt *dst, const struct mt_gpt *src, char *err, size_t errlen)
{
    if (memcmp(&dst->cfg, &src->cfg, sizeof dst->cfg))
        return mt_tf_fail(err, errlen, "copying weights between models of different shapes");
    for (int p = 0; p < MT_P_COUNT; p++)
        if ((dst->param_len[p] != 0) != (src->param_len[p] != 0) ||
            dst->param_len[p] != src->param_len[p])
            return mt_tf_fail(err, errlen, "copying weights: tensor %s is held by one model only",
                              param_names[p]);
    for (int p = 0; p < MT_P_COUNT; p++)
        if (dst->param_len[p] && dst->param[p] != src->param[p])
            memcpy(dst->param[p], src->param[p], src->param_len[p] * sizeof(float));
    return 0;
}

size_t mt_gpt_weight_slab_bytes(const struct mt_gpt_config *cfg,
                                const unsigned char drop[MT_P_COUNT])
{
    struct slab s = {.n = MT_P_COUNT};
    for (int p = 0; p < MT_P_COUNT; p++)
        s.bytes[p] = drop && drop[p] ? 0 : param_len(cfg, p) * sizeof(float);
    return slab_total(&s);
}

size_t mt_gpt_weight_bytes(const struct mt_gpt *m)
{
    size_t b = 0;
    for (int p = 0; p < MT_P_COUNT; p++)
        b += m->param[p] ? m->param_len[p] * sizeof(float) : 0;
    return b;
}

/* Allocates the slabs of `mode` beyond the weights (activations and workspace; also
 * gradients, optimizer state and activation gradients when training) for (B, T) as
 * layout() decides, carves them into m's tensors and sets m's shape and mode. Returns 0,
 * or -1 with everything it allocated freed again (m then holds weights only). */
static int state_alloc(struct mt_gpt *m, enum mt_gpt_mode mode, size_t B, size_t T)
{
    static const char *const opt_names[2] = {"adam_m", "adam_v"};
    struct slab s[MT_MEM_CAT_COUNT];
    layout(&m->cfg, B, T, mode, s);
    void *gp[MT_P_COUNT] = {0}, *ap[MT_A_COUNT] = {0}, *dp[MT_D_COUNT] = {0};
    void *opt_ptrs[2] = {0}, *work_ptrs[MT_W_COUNT] = {0};
    int fail = 0;
    if (mode != MT_GPT_WEIGHTS) {
        m->acts = slab_alloc(&s[MT_MEM_ACTIVATIONS], MT_MEM_ACTIVATIONS, act_names, ap);
        m->work = slab_alloc(&s[MT_MEM_WORKSPACE], MT_MEM_WORKSPACE, work_names, work_ptrs);
        fail |= !m->acts || !m->work;
    }
    if (mode == MT_GPT_TRAIN || mode == MT_GPT_FROZEN) {
        m->dacts = slab_alloc(&s[MT_MEM_ACT_GRADS], MT_MEM_ACT_GRADS, dact_names, dp);
        fail |= !m->dacts;
    }
    if (mode == MT_GPT_TRAIN) {
        m->grads = slab_alloc(&s[MT_MEM_GRADIENTS], MT_MEM_GRADIENTS, grad_names, gp);
        m->opt = slab_alloc(&s[MT_MEM_OPTIMIZER], MT_MEM_OPTIMIZER, opt_names, opt_ptrs);
        fail |= !m->grads || !m->opt;
    }
    if (fail) {
        state_free(m);
        return -1;
    }
    for (int i = 0; i < MT_P_COUNT; i++) /* absent tensors: NULL */
        m->grad[i] = s[MT_MEM_GRADIENTS].bytes[i] ? gp[i] : NULL;
    for (int i = 0; i < MT_A_COUNT; i++)
        m->act[i] = ap[i];
    for (int i = 0; i < MT_D_COUNT; i++)
        m->dact[i] = dp[i];
    m->opt_m = opt_ptrs[0];
    m->opt_v = opt_ptrs[1];
    m->inputs = work_ptrs[MT_W_INPUTS];
    m->targets = work_ptrs[MT_W_TARGETS];
    for (int c = 0; c < MT_MEM_CAT_COUNT; c++)
        if (c != MT_MEM_WEIGHTS) m->slab_bytes[c] = slab_total(&s[c]);
    m->mode = mode;
    m->act_slots = act_slots(&m->cfg, mode);
    m->B = mode == MT_GPT_WEIGHTS ? 0 : B;
    m->T = mode == MT_GPT_WEIGHTS ? 0 : T;
    return 0;
}

int mt_gpt_create(struct mt_gpt **out, const struct mt_gpt_config *cfg, enum mt_gpt_mode mode,
                  size_t B, size_t T, char *err, size_t errlen)
{
    return mt_gpt_create_mapped(out, cfg, mode, B, T, NULL, NULL, NULL, err, errlen);
}

int mt_gpt_create_mapped(struct mt_gpt **out, const struct mt_gpt_config *cfg,
                         enum mt_gpt_mode mode, size_t B, size_t T, float *const ext[MT_P_COUNT],
                         void (*release)(void *user), void *user, char *err, size_t errlen)
{
    struct slab s[MT_MEM_CAT_COUNT];
    int any = 0;
    *out = NULL;
    for (int p = 0; ext && p < MT_P_COUNT; p++)
        any |= ext[p] != NULL && param_len(cfg, p) != 0;
    if (any && mode == MT_GPT_TRAIN)
        return mt_tf_fail(err, errlen,
                          "a training model owns its weights (mapped tensors are read-only "
                          "inputs): load it in weights, infer or frozen mode");
    if (!mt_gpt_memory(cfg, B, T, mode, NULL, err, errlen)) return -1;
    layout(cfg, B, T, mode, s);
    for (int p = 0; any && p < MT_P_COUNT; p++) /* mapped tensors take no slab bytes */
        if (ext[p]) s[MT_MEM_WEIGHTS].bytes[p] = 0;
    struct mt_gpt *m = calloc(1, sizeof *m);
    if (!m) return mt_tf_fail(err, errlen, "out of memory for the model struct");
    m->cfg = *cfg;
    m->n_params = mt_gpt_num_params(cfg);
    m->last_loss = -1.0f;
    m->grads_zero = 1; /* the slabs are allocated zeroed */
    for (int p = 0; p < MT_P_COUNT; p++)
        m->param_len[p] = param_len(cfg, p);
    /* Carve into void pointers first, then convert: no type punning of pointer arrays. */
    void *pp[MT_P_COUNT] = {0};
    m->params = slab_alloc(&s[MT_MEM_WEIGHTS], MT_MEM_WEIGHTS, param_names, pp);
    if ((!m->params && slab_total(&s[MT_MEM_WEIGHTS])) || state_alloc(m, mode, B, T)) {
        mt_gpt_free(m); /* release not taken yet: the caller keeps its mapping */
        return mt_tf_fail(err, errlen, "out of memory allocating the model slabs");
    }
    for (int i = 0; i < MT_P_COUNT; i++) { /* absent tensors: NULL */
        m->mapped[i] = any && ext[i] && m->param_len[i];
        m->param[i] = !m->param_len[i] ? NULL : m->mapped[i] ? ext[i] : pp[i];
        m->mapped_bytes += m->mapped[i] ? m->param_len[i] * sizeof(float) : 0;
    }
    m->mapped_release = release;
    m->mapped_user = user;
    m->slab_bytes[MT_MEM_WEIGHTS] = slab_total(&s[MT_MEM_WEIGHTS]);
    *out = m;
    return 0;
}

int mt_gpt_set_mode(struct mt_gpt *m, enum mt_gpt_mode mode, size_t B, size_t T, char *err,
                    size_t errlen)
{
    if (m->mode == MT_GPT_TRAIN || mode == MT_GPT_TRAIN)
        return mt_tf_fail(err, errlen,
                          "only a model without gradients changes its mode "
                          "(weights, infer, frozen)");
    if (!mt_gpt_memory(&m->cfg, B, T, mode, NULL, err, errlen)) return -1;
    if (mode == m->mode && m->B == (mode == MT_GPT_WEIGHTS ? 0 : B) &&
        m->T == (mode == MT_GPT_WEIGHTS ? 0 : T))
        return 0;
    state_free(m);
    if (state_alloc(m, mode, B, T))
        return mt_tf_fail(err, errlen, "out of memory allocating the %s slabs for B=%zu T=%zu",
                          mode == MT_GPT_INFER ? "inference" : "model", B, T);
    return 0;
}

void mt_gpt_init(struct mt_gpt *m, uint64_t seed)
{
    struct mt_rng rng;
    mt_rng_seed(&rng, seed);
    float resid_scale = 1.0f / sqrtf(2.0f * (float)m->cfg.n_layer);
    for (int p = 0; p < MT_P_COUNT; p++) {
        float *w = m->param[p];
        size_t n = m->param_len[p];
        if (!n) continue; /* absent or dropped */
        if (p == MT_P_LN1W || p == MT_P_LN2W || p == MT_P_LNFW) {
            for (size_t i = 0; i < n; i++)
                w[i] = 1.0f;
        } else if (mt_gpt_param_decays((enum mt_gpt_param)p)) {
            float sd = 0.02f * (p == MT_P_ATTPROJW || p == MT_P_FCPROJW ? resid_scale : 1.0f);
            for (size_t i = 0; i < n; i += 2) { /* Box-Muller gives two normals per draw */
                double z[2];
                mt_rng_normal2(&rng, z);
                w[i] = (float)z[0] * sd;
                if (i + 1 < n) w[i + 1] = (float)z[1] * sd;
            }
        } else {
            memset(w, 0, n * sizeof *w);
        }
    }
    if (m->opt) memset(m->opt, 0, m->slab_bytes[MT_MEM_OPTIMIZER]);
    m->adam_step = 0;
}

/* ---------------------------------------------------------------- linear layers */

void mt_gpt_linear_weights(const struct mt_gpt *m, size_t layer, enum mt_linear which, float **w,
                           float **b, size_t *in_dim, size_t *out_dim)
{
    size_t C = m->cfg.n_embd, F = mt_gpt_ffn(&m->cfg);
    size_t ind = C, outd = C;
    int pw = mt_gpt_head_param(&m->cfg), pb = -1;
    switch (which) {
    case MT_LIN_QKV:
        pw = MT_P_QKVW, pb = MT_P_QKVB, outd = C + 2 * mt_gpt_kv_dim(&m->cfg);
        break;
    case MT_LIN_ATTPROJ:
        pw = MT_P_ATTPROJW, pb = MT_P_ATTPROJB;
        break;
    case MT_LIN_FC:
        pw = MT_P_FCW, pb = MT_P_FCB, outd = m->cfg.mlp == MT_GPT_MLP_SWIGLU ? 2 * F : F;
        break;
    case MT_LIN_FCPROJ:
        pw = MT_P_FCPROJW, pb = MT_P_FCPROJB, ind = F;
        break;
    default:
        outd = m->cfg.vocab;
        break;
    }
    *w = m->param[pw] ? m->param[pw] + (pb < 0 ? 0 : layer * ind * outd) : NULL; /* dropped */
    if (b) *b = pb < 0 || !m->param[pb] ? NULL : m->param[pb] + layer * outd;    /* bias=off */
    if (in_dim) *in_dim = ind;
    if (out_dim) *out_dim = outd;
}

int mt_gpt_linear_default(void *model, size_t layer, enum mt_linear which, const float *in,
                          float *out, size_t rows)
{
    float *w, *b;
    size_t ind, outd;
    mt_gpt_linear_weights(model, layer, which, &w, &b, &ind, &outd);
    mt_k_matmul_fwd(out, in, w, b, rows, ind, outd);
    return 0;
}

int mt_gpt_linear(struct mt_gpt *m, size_t layer, enum mt_linear which, const float *in, float *out,
                  size_t rows)
{
    if (m->hook.matmul) return m->hook.matmul(m->hook.user, layer, which, in, out, rows);
    return mt_gpt_linear_default(m, layer, which, in, out, rows);
}

/* ---------------------------------------------------------------- forward / backward */

/* OpenMP worker threads allocate only inside oneDNN (GEMM packing buffers): tag them as
 * workspace. The category is per thread, so the caller's own thread (0) is left alone;
 * done per forward/backward because the team may grow between calls. */
static void tag_omp_workers(void)
{
#pragma omp parallel
    if (omp_get_thread_num() != 0) mt_memcat_set(MT_MEM_WORKSPACE);
}

float *mt_gpt_act_at(const struct mt_gpt *m, enum mt_gpt_act a, size_t l)
{
    return m->act[a] + (l % m->act_slots) * act_len(&m->cfg, m->B, m->T, 1, a);
}

const float *mt_gpt_layer_input(const struct mt_gpt *m, size_t l)
{
    return l ? mt_gpt_act_at(m, MT_A_RESIDUAL3, l - 1) : m->act[MT_A_ENCODED];
}

void mt_gpt_block_tensors(const struct mt_gpt *m, size_t l, float *ln[MT_P_COUNT],
                          float *dln[MT_P_COUNT], float *act[MT_A_COUNT])
{
    mt_block_norm_params(&m->cfg, l, m->param, ln);
    mt_block_norm_params(&m->cfg, l, m->grad, dln);
    for (int a = MT_A_LN1; a <= MT_A_FCH_GELU; a++)
        act[a] = mt_gpt_act_at(m, (enum mt_gpt_act)a, l);
}

/* The one block (block.h) on this model's slabs: block l's tensors and its linears
 * through the model's hooks. */
struct gpt_block {
    struct mt_gpt *m;
    size_t l;
    struct mt_block_shape shape;
    float *ln[MT_P_COUNT], *dln[MT_P_COUNT], *act[MT_A_COUNT];
};

static int gpt_block_linear(void *user, enum mt_linear which, const float *in, float *out,
                            size_t rows)
{
    struct gpt_block *k = user;
    return mt_gpt_linear(k->m, k->l, which, in, out, rows);
}

static int gpt_block_linear_bwd(void *user, enum mt_linear which, const float *dout, float *din,
                                size_t rows)
{
    struct gpt_block *k = user;
    const float *in = k->act[mt_block_linear_input(which)];
    return mt_gpt_linear_bwd(k->m, k->l, which, dout, in, din, rows);
}

static void gpt_block_at(struct gpt_block *k, struct mt_gpt *m, size_t l, size_t B, size_t T)
{
    memset(k, 0, sizeof *k);
    k->m = m;
    k->l = l;
    k->shape = mt_block_shape_of(&m->cfg, B, T, 1);
    mt_gpt_block_tensors(m, l, k->ln, k->dln, k->act);
}

static int layer_fwd(struct mt_gpt *m, size_t l, size_t B, size_t T)
{
    struct gpt_block k;
    gpt_block_at(&k, m, l, B, T);
    struct mt_block_ops ops = {.linear = gpt_block_linear, .user = &k};
    return mt_block_forward(&k.shape, k.ln, k.act, mt_gpt_layer_input(m, l), m->act[MT_A_PROJ],
                            mt_gpt_act_at(m, MT_A_RESIDUAL3, l), &ops);
}

static int layer_bwd(struct mt_gpt *m, size_t l, size_t B, size_t T)
{
    struct gpt_block k;
    gpt_block_at(&k, m, l, B, T);
    struct mt_block_ops ops = {.linear_bwd = gpt_block_linear_bwd, .user = &k};
    return mt_block_backward(&k.shape, k.ln, k.dln, k.act, mt_gpt_layer_input(m, l), m->dact, &ops);
}

int mt_gpt_forward(struct mt_gpt *m, const int *inputs, const int *targets, size_t B, size_t T,
                   float *mean_loss, char *err, size_t errlen)
{
    const struct mt_gpt_config *cfg = &m->cfg;
    size_t V = cfg->vocab, L = cfg->n_layer, C = cfg->n_embd, BT = B * T;
    if (m->mode == MT_GPT_WEIGHTS)
        return mt_tf_fail(err, errlen, "forward needs a model with activations");
    if (!B || !T || B > m->B || T > m->T)
        return mt_tf_fail(err, errlen, "forward shape B=%zu T=%zu outside 1..%zu x 1..%zu", B, T,
                          m->B, m->T);
    size_t counted = 0;
    for (size_t i = 0; i < BT; i++) {
        if (inputs[i] < 0 || (size_t)inputs[i] >= V)
            return mt_tf_fail(err, errlen, "token id %d at %zu outside vocab %zu", inputs[i], i, V);
        if (targets && targets[i] >= 0 && (size_t)targets[i] >= V)
            return mt_tf_fail(err, errlen, "target id %d at %zu outside vocab %zu", targets[i], i,
                              V);
        counted += targets && targets[i] >= 0;
    }
    tag_omp_workers();
    memcpy(m->inputs, inputs, BT * sizeof *inputs);
    if (targets) memcpy(m->targets, targets, BT * sizeof *targets);
    m->fwd_B = B;
    m->fwd_T = T;
    m->last_loss = -1.0f;

    if (m->embed_hook.rows) {
        if (m->embed_hook.rows(m->embed_hook.user, m->inputs, BT, m->act[MT_A_ENCODED])) {
            m->fwd_B = 0;
            return mt_tf_fail(err, errlen, "embedding hook failed");
        }
        if (m->param[MT_P_WPE]) /* learned positions (RoPE: in the blocks) */
            mt_k_add_positions(m->act[MT_A_ENCODED], m->param[MT_P_WPE], B, T, C);
    } else if (!m->param[MT_P_WTE]) {
        m->fwd_B = 0;
        return mt_tf_fail(err, errlen,
                          "the token embedding was dropped and no embedding hook is set");
    } else {
        mt_k_encoder_fwd(m->act[MT_A_ENCODED], m->inputs, m->param[MT_P_WTE], m->param[MT_P_WPE], B,
                         T, C);
    }
    for (size_t l = 0; l < L; l++)
        if (layer_fwd(m, l, B, T)) goto hook_failed;
    const float *resid = mt_gpt_act_at(m, MT_A_RESIDUAL3, L - 1);
    mt_block_norm_fwd(cfg->norm, m->act[MT_A_LNF], m->act[MT_A_LNF_MEAN], m->act[MT_A_LNF_RSTD],
                      resid, m->param[MT_P_LNFW], m->param[MT_P_LNFB], BT, C);
    if (mt_gpt_linear(m, L, MT_LIN_LMHEAD, m->act[MT_A_LNF], m->act[MT_A_LOGITS], BT))
        goto hook_failed;
    if (targets) {
        double sum =
            mt_k_crossentropy_fwd(m->act[MT_A_LOGITS], m->act[MT_A_LOSSES], m->targets, BT, V);
        m->last_loss = counted ? (float)(sum / (double)counted) : 0.0f;
        if (mean_loss) *mean_loss = m->last_loss;
    }
    return 0;
hook_failed:
    m->fwd_B = 0; /* nothing to run a backward on */
    return mt_tf_fail(err, errlen, "linear hook failed");
}

void mt_gpt_zero_grad(struct mt_gpt *m)
{
    if (m->grads && !m->grads_zero) memset(m->grads, 0, m->slab_bytes[MT_MEM_GRADIENTS]);
    m->grads_zero = 1;
}

void mt_gpt_linear_grads(const struct mt_gpt *m, size_t layer, enum mt_linear which, float **dw,
                         float **db)
{
    float *w, *b;
    mt_gpt_linear_weights(m, layer, which, &w, &b, NULL, NULL);
    *dw = m->grads ? m->grads + (w - m->params) : NULL;
    if (db) *db = m->grads && b ? m->grads + (b - m->params) : NULL;
}

int mt_gpt_linear_bwd_default(void *model, size_t layer, enum mt_linear which, const float *dout,
                              const float *in, float *din, size_t rows)
{
    struct mt_gpt *m = model;
    float *w, *dw, *db;
    size_t ind, outd;
    mt_gpt_linear_weights(m, layer, which, &w, NULL, &ind, &outd);
    mt_gpt_linear_grads(m, layer, which, &dw, &db);
    mt_k_matmul_bwd(din, dw, db, dout, in, w, rows, ind, outd);
    return 0;
}

int mt_gpt_linear_bwd(struct mt_gpt *m, size_t layer, enum mt_linear which, const float *dout,
                      const float *in, float *din, size_t rows)
{
    if (m->bwd_hook.matmul_bwd)
        return m->bwd_hook.matmul_bwd(m->bwd_hook.user, layer, which, dout, in, din, rows);
    return mt_gpt_linear_bwd_default(m, layer, which, dout, in, din, rows);
}

/* Backward from the gradient of the logits held in act[MT_A_LOGITS]. */
static int backward_from_dlogits(struct mt_gpt *m, char *err, size_t errlen)
{
    const struct mt_gpt_config *cfg = &m->cfg;
    size_t L = cfg->n_layer, C = cfg->n_embd;
    size_t B = m->fwd_B, T = m->fwd_T, BT = B * T;
    float *dres = m->dact[MT_D_RESIDUAL], *dln = m->dact[MT_D_LN];
    float **g = m->grad, **p = m->param;
    m->fwd_B = 0; /* the forward's activations are consumed */
    tag_omp_workers();
    m->grads_zero = 0;
    if (mt_gpt_linear_bwd(m, L, MT_LIN_LMHEAD, m->act[MT_A_LOGITS], m->act[MT_A_LNF], dln, BT))
        return mt_tf_fail(err, errlen, "linear backward hook failed");
    memset(dres, 0, BT * C * sizeof *dres);
    mt_block_norm_bwd(cfg->norm, dres, g[MT_P_LNFW], g[MT_P_LNFB], dln,
                      mt_gpt_act_at(m, MT_A_RESIDUAL3, L - 1), p[MT_P_LNFW], m->act[MT_A_LNF_MEAN],
                      m->act[MT_A_LNF_RSTD], BT, C);
    for (size_t l = L; l-- > 0;)
        if (layer_bwd(m, l, B, T)) return mt_tf_fail(err, errlen, "linear backward hook failed");
    if (m->grads) mt_k_encoder_bwd(g[MT_P_WTE], g[MT_P_WPE], dres, m->inputs, B, T, C);
    return 0;
}

int mt_gpt_backward(struct mt_gpt *m, float loss_scale, size_t norm_tokens, char *err,
                    size_t errlen)
{
    if (m->mode != MT_GPT_TRAIN && m->mode != MT_GPT_FROZEN)
        return mt_tf_fail(err, errlen, "backward needs a model created in train mode");
    if (m->last_loss < 0.0f || !m->fwd_B)
        return mt_tf_fail(err, errlen, "backward needs a forward with targets first");
    size_t BT = m->fwd_B * m->fwd_T;
    m->last_loss = -1.0f; /* the probabilities are consumed below */
    float dloss = loss_scale / (float)(norm_tokens ? norm_tokens : BT);
    mt_k_crossentropy_bwd(m->act[MT_A_LOGITS], m->targets, dloss, BT, m->cfg.vocab);
    return backward_from_dlogits(m, err, errlen);
}

int mt_gpt_backward_dlogits(struct mt_gpt *m, char *err, size_t errlen)
{
    if (m->mode != MT_GPT_TRAIN && m->mode != MT_GPT_FROZEN)
        return mt_tf_fail(err, errlen, "backward needs a model created in train mode");
    if (!m->fwd_B) return mt_tf_fail(err, errlen, "backward needs a forward first");
    m->last_loss = -1.0f;
    return backward_from_dlogits(m, err, errlen);
}

/* ---------------------------------------------------------------- optimizer */

float mt_gpt_grad_norm(const struct mt_gpt *m)
{
    if (!m->grads) return 0.0f;
    return mt_k_grad_norm(mt_k_sumsq(m->grads, m->slab_bytes[MT_MEM_GRADIENTS] / sizeof(float)),
                          1.0f);
}

struct mt_gpt_recipe mt_gpt_recipe_default(size_t steps)
{
    struct mt_gpt_recipe r = {.lr = 3e-3f,
                              .min_lr_frac = 0.1f,
                              .warmup = 100,
                              .steps = steps,
                              .beta1 = 0.9f,
                              .beta2 = 0.95f,
                              .eps = 1e-8f,
                              .weight_decay = 0.1f,
                              .grad_clip = 1.0f,
                              .batch = 16,
                              .seq = 128};
    if (r.warmup > steps / 10) r.warmup = steps / 10;
    return r;
}

float mt_gpt_lr_at(const struct mt_gpt_recipe *r, size_t step)
{
    float min_lr = r->lr * r->min_lr_frac;
    if (step < r->warmup) return r->lr * (float)(step + 1) / (float)r->warmup;
    if (step >= r->steps || r->steps <= r->warmup) return min_lr;
    double ratio = (double)(step - r->warmup) / (double)(r->steps - r->warmup);
    double coeff = 0.5 * (1.0 + cos(M_PI * ratio));
    return min_lr + (float)coeff * (r->lr - min_lr);
}

void mt_gpt_adamw_args(struct mt_adamw_args *a, const struct mt_gpt_recipe *r, float lr, int decays,
                       float norm, float grad_div, uint64_t step)
{
    float scale = 1.0f / grad_div;
    if (r->grad_clip > 0.0f && norm > r->grad_clip) scale *= r->grad_clip / norm;
    *a = (struct mt_adamw_args){.lr = lr,
                                .beta1 = r->beta1,
                                .beta2 = r->beta2,
                                .eps = r->eps,
                                .weight_decay = decays ? r->weight_decay : 0.0f,
                                .grad_scale = scale,
                                .step = step,
                                .zero_grad = 1};
}

float mt_gpt_adamw_step(struct mt_gpt *m, const struct mt_gpt_recipe *r, float lr, float grad_div)
{
    float norm = mt_gpt_grad_norm(m) / grad_div;
    m->adam_step++;
    m->grads_zero = 1; /* the update below consumes the gradients */
    size_t off = 0;
    for (int p = 0; p < MT_P_COUNT; p++) {
        if (!m->param_len[p]) continue; /* absent */
        struct mt_adamw_args a;
        mt_gpt_adamw_args(&a, r, lr, mt_gpt_param_decays((enum mt_gpt_param)p), norm, grad_div,
                          m->adam_step);
        off = (size_t)(m->param[p] - m->params);
        mt_k_adamw(m->param[p], m->grad[p], m->opt_m + off, m->opt_v + off, m->param_len[p], &a);
    }
    return norm;
}

int mt_gpt_train_step(struct mt_gpt *m, const struct mt_gpt_recipe *r, size_t step,
                      const int *inputs, const int *targets, float *loss, float *gnorm, char *err,
                      size_t errlen)
{
    float l = 0.0f;
    if (mt_gpt_forward(m, inputs, targets, r->batch, r->seq, &l, err, errlen)) return -1;
    mt_gpt_zero_grad(m);
    if (mt_gpt_backward(m, 1.0f, 0, err, errlen)) return -1;
    float n = mt_gpt_adamw_step(m, r, mt_gpt_lr_at(r, step), 1.0f);
    if (loss) *loss = l;
    if (gnorm) *gnorm = n;
    return 0;
}
