/* hfconfig.c — config.json <-> struct mt_gpt_config (see hfconfig.h). */
#include "hfconfig.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define EPS 1e-5 /* LayerNorm and RMSNorm epsilon of the kernels (kernels.h) */

/* A positive size field (required when def is 0). */
static int get_size(json_t *j, const char *key, size_t def, size_t *out, const char *path,
                    char *err, size_t errlen)
{
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) {
        if (!def) return mt_tf_fail(err, errlen, "%s: no '%s'", path, key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return mt_tf_fail(err, errlen, "%s: '%s' is not a positive integer", path, key);
    *out = (size_t)json_integer_value(v);
    return 0;
}

static int get_bool(json_t *j, const char *key, int def)
{
    json_t *v = json_object_get(j, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static int check_eps(json_t *j, const char *key, const char *path, char *err, size_t errlen)
{
    json_t *v = json_object_get(j, key);
    if (!v) return 0;
    double e = json_number_value(v);
    if (!json_is_number(v) || fabs(e - EPS) > 1e-12)
        return mt_tf_fail(err, errlen, "%s: %s %g; memtrade's norms use 1e-5 (supported: 1e-5)",
                          path, key, e);
    return 0;
}

static int check_str(json_t *j, const char *key, const char *const *ok, size_t n_ok,
                     const char *path, char *err, size_t errlen)
{
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) return 0;
    for (size_t i = 0; i < n_ok; i++)
        if (json_is_string(v) && !strcmp(json_string_value(v), ok[i])) return 0;
    return mt_tf_fail(err, errlen, "%s: %s '%s' is not supported (supported: %s%s%s)", path, key,
                      json_is_string(v) ? json_string_value(v) : "?", ok[0], n_ok > 1 ? ", " : "",
                      n_ok > 1 ? ok[1] : "");
}

static int read_gpt2(json_t *j, struct mt_gpt_config *c, const char *path, char *err, size_t errlen)
{
    static const char *const act[] = {"gelu_new", "gelu_pytorch_tanh"};
    size_t inner = 0;
    json_t *ni = json_object_get(j, "n_inner");
    if (get_size(j, "vocab_size", 0, &c->vocab, path, err, errlen) ||
        get_size(j, "n_positions", 0, &c->seq_len, path, err, errlen) ||
        get_size(j, "n_layer", 0, &c->n_layer, path, err, errlen) ||
        get_size(j, "n_head", 0, &c->n_head, path, err, errlen) ||
        get_size(j, "n_embd", 0, &c->n_embd, path, err, errlen) ||
        (ni && !json_is_null(ni) && get_size(j, "n_inner", 0, &inner, path, err, errlen)) ||
        check_eps(j, "layer_norm_epsilon", path, err, errlen) ||
        check_str(j, "activation_function", act, 2, path, err, errlen))
        return -1;
    if (get_bool(j, "scale_attn_by_inverse_layer_idx", 0) || !get_bool(j, "scale_attn_weights", 1))
        return mt_tf_fail(err, errlen,
                          "%s: attention scaling other than 1/sqrt(head size) is not supported",
                          path);
    c->ffn = inner && inner != 4 * c->n_embd ? inner : 0;
    c->untied = !get_bool(j, "tie_word_embeddings", 1);
    return 0;
}

static int read_llama(json_t *j, struct mt_gpt_config *c, const char *path, char *err,
                      size_t errlen)
{
    static const char *const act[] = {"silu"};
    size_t kv = 0, inter = 0, hd = 0;
    json_t *rs = json_object_get(j, "rope_scaling"), *th = json_object_get(j, "rope_theta");
    json_t *rp = json_object_get(j, "rope_parameters"); /* transformers 5: theta and type */
    if (json_is_object(rp)) {
        json_t *rt = json_object_get(rp, "rope_type");
        if (rt && (!json_is_string(rt) || strcmp(json_string_value(rt), "default")))
            return mt_tf_fail(err, errlen,
                              "%s: rope_parameters.rope_type '%s' is not supported (supported: "
                              "default)",
                              path, json_is_string(rt) ? json_string_value(rt) : "?");
        if (json_object_get(rp, "rope_theta")) th = json_object_get(rp, "rope_theta");
    }
    if (get_size(j, "vocab_size", 0, &c->vocab, path, err, errlen) ||
        get_size(j, "max_position_embeddings", 0, &c->seq_len, path, err, errlen) ||
        get_size(j, "num_hidden_layers", 0, &c->n_layer, path, err, errlen) ||
        get_size(j, "num_attention_heads", 0, &c->n_head, path, err, errlen) ||
        get_size(j, "hidden_size", 0, &c->n_embd, path, err, errlen) ||
        get_size(j, "intermediate_size", 0, &inter, path, err, errlen) ||
        get_size(j, "num_key_value_heads", c->n_head, &kv, path, err, errlen) ||
        get_size(j, "head_dim", c->n_embd / c->n_head, &hd, path, err, errlen) ||
        check_eps(j, "rms_norm_eps", path, err, errlen) ||
        check_str(j, "hidden_act", act, 1, path, err, errlen))
        return -1;
    if (rs && !json_is_null(rs))
        return mt_tf_fail(err, errlen, "%s: rope_scaling is not supported (supported: null)", path);
    if (hd * c->n_head != c->n_embd)
        return mt_tf_fail(err, errlen,
                          "%s: head_dim %zu x %zu heads != hidden_size %zu (supported: "
                          "head_dim = hidden_size / heads)",
                          path, hd, c->n_head, c->n_embd);
    double theta = th ? json_number_value(th) : 10000.0;
    if (!(theta >= 1.0) || theta != floor(theta) || theta > 1e12)
        return mt_tf_fail(err, errlen, "%s: rope_theta %g (supported: a positive integer)", path,
                          theta);
    int ab = get_bool(j, "attention_bias", 0), mb = get_bool(j, "mlp_bias", 0);
    if (ab != mb)
        return mt_tf_fail(err, errlen,
                          "%s: attention_bias %s with mlp_bias %s (supported: both or neither)",
                          path, ab ? "true" : "false", mb ? "true" : "false");
    c->norm = MT_GPT_NORM_RMS, c->pos = MT_GPT_POS_ROPE, c->mlp = MT_GPT_MLP_SWIGLU;
    c->n_kv_head = kv == c->n_head ? 0 : kv;
    c->rope_theta = theta == 10000.0 ? 0 : (size_t)theta;
    c->no_bias = !ab;
    c->untied = !get_bool(j, "tie_word_embeddings", 0);
    c->ffn = inter;
    if (mt_gpt_ffn(&(struct mt_gpt_config){.n_embd = c->n_embd, .mlp = MT_GPT_MLP_SWIGLU}) == inter)
        c->ffn = 0; /* one configuration, one spelling: the default width is 0 */
    return 0;
}

int mt_hf_config_read(const char *dir, struct mt_gpt_config *cfg, char *arch, size_t n, char *err,
                      size_t errlen)
{
    char path[4096];
    json_error_t je;
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j) return mt_tf_fail(err, errlen, "%s: %s (line %d)", path, je.text, je.line);
    json_t *a = json_object_get(j, "architectures"), *mt = json_object_get(j, "model_type");
    const char *name = json_is_array(a) && json_is_string(json_array_get(a, 0))
                           ? json_string_value(json_array_get(a, 0))
                       : json_is_string(mt) ? json_string_value(mt)
                                            : "(none)";
    memset(cfg, 0, sizeof *cfg);
    int rc;
    snprintf(arch, n, "%s", name);
    if (!strcmp(name, "GPT2LMHeadModel") || !strcmp(name, "gpt2"))
        rc = read_gpt2(j, cfg, path, err, errlen);
    else if (!strcmp(name, "LlamaForCausalLM") || !strcmp(name, "llama"))
        rc = read_llama(j, cfg, path, err, errlen);
    else
        rc = mt_tf_fail(err, errlen,
                        "%s: architecture '%s' is not supported (supported: GPT2LMHeadModel, "
                        "LlamaForCausalLM)",
                        path, name);
    json_decref(j);
    if (!rc && mt_gpt_config_check(cfg, err, errlen)) rc = -1;
    return rc;
}

/* A token id for config.json: the id, or null when the tokenizer has none (transformers'
 * GPT-2 default, 50256, would otherwise name a token outside a small vocabulary). */
static json_t *token_id(int32_t id)
{
    return id >= 0 ? json_integer(id) : json_null();
}

int mt_hf_config_write(const char *dir, const struct mt_gpt_config *c, int llama,
                       const char *torch_dtype, int32_t bos, int32_t eos, char *err, size_t errlen)
{
    char path[4096];
    json_t *j;
    if (llama)
        j = json_pack("{s:[s],s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:s,s:b,s:b,s:b,s:n,s:s}",
                      "architectures", "LlamaForCausalLM", "model_type", "llama", "vocab_size",
                      (json_int_t)c->vocab, "max_position_embeddings", (json_int_t)c->seq_len,
                      "hidden_size", (json_int_t)c->n_embd, "intermediate_size",
                      (json_int_t)mt_gpt_ffn(c), "num_hidden_layers", (json_int_t)c->n_layer,
                      "num_attention_heads", (json_int_t)c->n_head, "num_key_value_heads",
                      (json_int_t)mt_gpt_kv_heads(c), "rms_norm_eps", EPS, "rope_theta",
                      mt_gpt_rope_theta(c), "hidden_act", "silu", "tie_word_embeddings", !c->untied,
                      "attention_bias", !c->no_bias, "mlp_bias", !c->no_bias, "rope_scaling",
                      "torch_dtype", torch_dtype);
    else
        j = json_pack("{s:[s],s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:f,s:b,s:f,s:f,s:f,s:s}",
                      "architectures", "GPT2LMHeadModel", "model_type", "gpt2", "vocab_size",
                      (json_int_t)c->vocab, "n_positions", (json_int_t)c->seq_len, "n_ctx",
                      (json_int_t)c->seq_len, "n_embd", (json_int_t)c->n_embd, "n_layer",
                      (json_int_t)c->n_layer, "n_head", (json_int_t)c->n_head, "n_inner",
                      (json_int_t)mt_gpt_ffn(c), "activation_function", "gelu_new",
                      "layer_norm_epsilon", EPS, "tie_word_embeddings", !c->untied, "resid_pdrop",
                      0.0, "embd_pdrop", 0.0, "attn_pdrop", 0.0, "torch_dtype", torch_dtype);
    if (!j || json_object_set_new(j, "bos_token_id", token_id(bos)) ||
        json_object_set_new(j, "eos_token_id", token_id(eos))) {
        json_decref(j);
        return mt_tf_fail(err, errlen, "out of memory for config.json");
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = json_dump_file(j, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (rc) return mt_tf_fail(err, errlen, "%s: cannot write", path);
    return 0;
}
