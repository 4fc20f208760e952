/* harness/cmd_model.c — `memtrade export` and `memtrade describe PATH`: other people's
 * model files (workloads/transformer/import/modelfile.h). Not for: running models. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt.h"
#include "cli.h"
#include "modelfile.h"
#include "modeltok.h"

static const char export_help[] =
    "usage: memtrade export MODEL --format hf|gguf [--dtype f32|f16|bf16|q8_0|q4_0]\n"
    "                       [--tokenizer SPEC] OUT\n"
    "\n"
    "Writes a model as a Hugging Face folder OUT (config.json, model.safetensors,\n"
    "tokenizer.json and tokenizer_config.json) or as a GGUF v3 file OUT, readable by\n"
    "transformers, llama.cpp and `-p model=OUT`. MODEL is a memtrade checkpoint (the\n"
    "model cache's *.mtckpt), a Hugging Face folder or a .gguf file (converting between\n"
    "the two). --dtype stores the weight matrices as f32 (default), f16, bf16, or, in\n"
    "GGUF only, q8_0 or q4_0 (norms and biases stay f32 in GGUF). GPT-2 family (LayerNorm,\n"
    "learned positions, GELU) and Llama family (RMSNorm, RoPE, SwiGLU) only.\n"
    "Both get the model's tokenizer (GGUF as tokenizer.ggml.* metadata, a folder as\n"
    "tokenizer.json): the tokenizer a model file carries (tokenizer.json,\n"
    "tokenizer.ggml.*), or --tokenizer SPEC (a tokenizer.json, a folder holding one, or\n"
    "bytes), so that `-p model=OUT` tokenizes as the source did. A byte model (vocab 256)\n"
    "without one gets the byte tokenizer as byte-level BPE without merges (token b =\n"
    "byte b), which transformers loads too.\n";

static int parse_dtype(const char *s, enum mt_dtype *out)
{
    static const char *const names[] = {"f32", "f16", "bf16", "q8_0", "q4_0"};
    for (int i = 0; i < MT_DT_COUNT; i++)
        if (!strcasecmp(s, names[i])) {
            *out = (enum mt_dtype)i;
            return 0;
        }
    return -1;
}

/* Loads a checkpoint or a model file, weights only, and the tokenizer: `tok_spec`'s when
 * given (mt_tok_load), else the model file's own (*tok NULL when it has none). */
static int load_any(const char *in, const char *tok_spec, struct mt_gpt **m,
                    struct mt_tokenizer **tok, char *err, size_t errlen)
{
    struct stat sb;
    size_t n = strlen(in);
    int file = (stat(in, &sb) == 0 && S_ISDIR(sb.st_mode)) || (n > 5 && !strcmp(in + n - 5, ".gguf"));
    int rc = file ? mt_model_load(in, NULL, MT_GPT_WEIGHTS, 0, 0, 1, m, NULL, err, errlen)
                  : mt_ckpt_load(in, NULL, MT_GPT_WEIGHTS, 0, 0, m, NULL, err, errlen);
    if (!rc) rc = tok_spec ? mt_tok_load(tok, tok_spec, err, errlen)
                  : file   ? mt_model_tokenizer(in, tok, err, errlen)
                           : 0;
    if (rc) {
        mt_gpt_free(*m);
        *m = NULL;
    }
    return rc;
}

int mt_cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"format", required_argument, 0, 'f'},
                                         {"dtype", required_argument, 0, 'd'},
                                         {"tokenizer", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *format = NULL, *tok_spec = NULL;
    enum mt_dtype dtype = MT_DT_F32;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(export_help, stdout);
            return MT_EXIT_OK;
        }
        if (c == 'f') {
            format = optarg;
        } else if (c == 't') {
            tok_spec = optarg;
        } else if (c == 'd') {
            if (parse_dtype(optarg, &dtype)) {
                fprintf(stderr, "memtrade: --dtype '%s' unknown (f32, f16, bf16, q8_0, q4_0)\n",
                        optarg);
                return MT_EXIT_USAGE;
            }
        } else {
            return MT_EXIT_USAGE;
        }
    }
    if (argc - optind != 2 || !format) {
        fputs(export_help, stderr);
        return MT_EXIT_USAGE;
    }
    enum mt_model_format fmt;
    if (!strcmp(format, "hf"))
        fmt = MT_MF_HF;
    else if (!strcmp(format, "gguf"))
        fmt = MT_MF_GGUF;
    else {
        fprintf(stderr, "memtrade: --format '%s' unknown (hf, gguf)\n", format);
        return MT_EXIT_USAGE;
    }
    char err[1024];
    struct mt_gpt *m = NULL;
    struct mt_tokenizer *tok = NULL;
    if (load_any(argv[optind], tok_spec, &m, &tok, err, sizeof err)) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_USAGE;
    }
    int rc = mt_model_export_tok(m, tok, fmt, dtype, argv[optind + 1], err, sizeof err);
    if (rc) fprintf(stderr, "memtrade: %s\n", err);
    else
        printf("memtrade: wrote %s (%s, %zu parameters, matrices %s, tokenizer %s)\n",
               argv[optind + 1], fmt == MT_MF_HF ? "Hugging Face folder" : "GGUF v3", m->n_params,
               mt_dtype_name(dtype),
               tok                   ? mt_tok_kind_name(tok)
               : m->cfg.vocab == 256 ? "bytes"
                                     : "none");
    mt_tok_free(tok);
    mt_gpt_free(m);
    return rc ? MT_EXIT_USAGE : MT_EXIT_OK;
}

int mt_cmd_describe_model(const char *path)
{
    char err[1024], opts[256];
    struct mt_gpt_config cfg;
    struct mt_model_info info;
    if (mt_model_peek(path, &cfg, &info, err, sizeof err)) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_USAGE;
    }
    mt_gpt_config_options(&cfg, opts, sizeof opts);
    size_t w[MT_MEM_CAT_COUNT];
    size_t weights = mt_gpt_memory(&cfg, 0, 0, MT_GPT_WEIGHTS, w, err, sizeof err);
    size_t kv;
    mt_gpt_kv_memory(&cfg, cfg.seq_len, &kv, NULL);
    printf("%s — %s (%s)\n", path, info.arch,
           info.format == MT_MF_HF ? "Hugging Face folder" : "GGUF v3");
    printf("shape: L%zu H%zu KV%zu C%zu F%zu V%zu T%zu%s\n", cfg.n_layer, cfg.n_head,
           mt_gpt_kv_heads(&cfg), cfg.n_embd, mt_gpt_ffn(&cfg), cfg.vocab, cfg.seq_len, opts);
    printf("parameters: %zu (fp32 weights %zu bytes; fp32 KV cache at %zu positions %zu bytes)\n",
           mt_gpt_num_params(&cfg), weights, cfg.seq_len, kv);
    if (info.n_tensors) {
        printf("tensors: %zu, %zu bytes stored:", info.n_tensors, info.tensor_bytes);
        for (int t = 0; t < MT_DT_COUNT; t++)
            if (info.dtype_count[t]) printf(" %zu %s", info.dtype_count[t], mt_dtype_name((enum mt_dtype)t));
        printf("\n");
    }
    struct mt_tokenizer *tok = NULL;
    const char *where = info.format == MT_MF_HF ? "tokenizer.json" : "tokenizer.ggml.*";
    if (info.has_tokenizer && mt_model_tokenizer(path, &tok, err, sizeof err))
        printf("tokenizer: %s, refused: %s\n", where, err);
    else if (!tok)
        printf("tokenizer: none (a vocabulary beyond bytes needs -p tokenizer=FILE)\n");
    else
        printf("tokenizer: %s (%s, %zu ids; used by default)\n", where, mt_tok_kind_name(tok),
               mt_tok_vocab(tok));
    mt_tok_free(tok);
    printf("use: memtrade run baseline -p model=%s\n", path);
    return MT_EXIT_OK;
}
