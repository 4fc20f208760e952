/* harness/cmd_plugins.c — `memtrade list` and `memtrade describe`: what the plugins
 * declare. Not for: running them. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "format.h"
#include "modelfile.h"

static void json_str(FILE *out, const char *s)
{
    if (s)
        mt_format_json_string(out, s, strlen(s));
    else
        fputs("null", out);
}

static void range_text(const struct mt_param_spec *s, char *buf, size_t cap)
{
    if (s->type == MT_PARAM_INT && s->choices)
        snprintf(buf, cap, "%s", s->choices);
    else if (s->type == MT_PARAM_INT || s->type == MT_PARAM_FLOAT)
        snprintf(buf, cap, "[%.10g, %.10g]", s->min, s->max);
    else if (s->type == MT_PARAM_CHOICE)
        snprintf(buf, cap, "%s", s->choices);
    else if (s->type == MT_PARAM_BOOL)
        snprintf(buf, cap, "on|off");
    else
        snprintf(buf, cap, "text");
}

static void print_json(const struct mt_registry *reg, FILE *out)
{
    fputs("[", out);
    for (size_t i = 0; i < reg->n; i++) {
        const struct mt_workload *wl = &reg->items[i].desc;
        fprintf(out, "%s\n  {\"name\": ", i ? "," : "");
        json_str(out, wl->name);
        fputs(", \"summary\": ", out);
        json_str(out, wl->summary);
        fputs(", \"path\": ", out);
        json_str(out, reg->items[i].path);
        fprintf(out, ", \"abi\": \"%u.%u\", \"ranks_param\": ", (unsigned)wl->abi_major,
                (unsigned)wl->abi_minor);
        json_str(out, wl->ranks_param);
        fputs(", \"unavailable\": ", out);
        json_str(out, wl->unavailable);
        fprintf(out, ", \"mem_estimate\": %s, \"params\": [", wl->mem_estimate ? "true" : "false");
        for (size_t k = 0; k < wl->n_params; k++) {
            const struct mt_param_spec *s = &wl->params[k];
            fprintf(out, "%s\n    {\"name\": ", k ? "," : "");
            json_str(out, s->name);
            fprintf(out, ", \"type\": \"%s\", \"default\": ", mt_params_type_name(s->type));
            json_str(out, s->def);
            if (s->type == MT_PARAM_INT || s->type == MT_PARAM_FLOAT)
                fprintf(out, ", \"min\": %.17g, \"max\": %.17g", s->min, s->max);
            if (s->type == MT_PARAM_CHOICE || (s->type == MT_PARAM_INT && s->choices)) {
                fputs(", \"choices\": ", out);
                json_str(out, s->choices);
            }
            fputs(", \"help\": ", out);
            json_str(out, s->help ? s->help : "");
            fputs("}", out);
        }
        fputs(wl->n_params ? "\n  ]}" : "]}", out);
    }
    fputs(reg->n ? "\n]\n" : "]\n", out);
}

static void print_params(const struct mt_workload *wl, FILE *out)
{
    for (size_t k = 0; k < wl->n_params; k++) {
        const struct mt_param_spec *s = &wl->params[k];
        char range[256];
        range_text(s, range, sizeof range);
        fprintf(out, "    %-16s %-6s default %-10s %-24s %s\n", s->name,
                mt_params_type_name(s->type), s->def, range, s->help ? s->help : "");
    }
}

/* Parses the options list and describe share, checks that `nargs` arguments follow, and
 * loads the registry. Returns -1 to go on (free *reg later), else an exit code. */
static int plugin_setup(int argc, char **argv, int *json, const char *help, int nargs,
                        struct mt_registry *reg)
{
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"plugin", required_argument, 0, 'P'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct mt_cli_common common = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j' && json)
            *json = 1;
        else if (c == 'P')
            common.plugin = optarg;
        else if (c == 'h') {
            fputs(help, stdout);
            return MT_EXIT_OK;
        } else
            return MT_EXIT_USAGE;
    }
    if (argc - optind != nargs) {
        fputs(help, stderr);
        return MT_EXIT_USAGE;
    }
    char err[1024];
    if (mt_cli_load_plugins(&common, reg, err, sizeof err) != 0) {
        fprintf(stderr, "memtrade: %s\n", err);
        return MT_EXIT_USAGE;
    }
    return -1;
}

int mt_cmd_list(int argc, char **argv)
{
    int json = 0;
    struct mt_registry reg;
    int code = plugin_setup(
        argc, argv, &json,
        "usage: memtrade list [--json] [--plugin PATH.so]\n\n"
        "Lists the workload plugins found (MEMTRADE_PLUGIN_PATH, then <bin>/../plugins,\n"
        "then the install folder), with their parameters: type, default, range or\n"
        "choices, help. Plugins that are refused are named on stderr. A plugin this\n"
        "build cannot run (built without MPI) is listed with 'unavailable: REASON'.\n",
        0, &reg);
    if (code >= 0) return code;
    if (json) {
        print_json(&reg, stdout);
    } else {
        for (size_t i = 0; i < reg.n; i++) {
            const struct mt_workload *wl = &reg.items[i].desc;
            printf("%s%s\n  %s\n", i ? "\n" : "", wl->name, wl->summary);
            if (wl->unavailable) printf("  unavailable: %s\n", wl->unavailable);
            print_params(wl, stdout);
        }
        if (reg.n == 0) fputs("no workload plugins found (see memtrade list --help)\n", stderr);
    }
    mt_plugins_free(&reg);
    return MT_EXIT_OK;
}

int mt_cmd_describe(int argc, char **argv)
{
    struct mt_registry reg;
    char err[1024];
    /* a model file (a path: it holds '/' or ends in .gguf) rather than a workload */
    if (argc == 2 && mt_model_is_path(argv[1])) return mt_cmd_describe_model(argv[1]);
    int code =
        plugin_setup(argc, argv, NULL,
                     "usage: memtrade describe WORKLOAD [--plugin PATH.so]\n"
                     "       memtrade describe MODEL\n\n"
                     "Shows one workload: summary, plugin file, ABI, ranks, and every parameter\n"
                     "with its type, default, range or choices and help. MODEL (a Hugging Face\n"
                     "folder or a .gguf file; a path: holds '/' or ends in .gguf) shows the\n"
                     "model's shape as `-p model=MODEL` would run it, its tensors and tokenizer.\n",
                     1, &reg);
    if (code >= 0) return code;
    const struct mt_plugin *p = mt_plugins_find(&reg, argv[optind]);
    if (!p) {
        mt_plugins_explain_unknown(&reg, argv[optind], err, sizeof err);
        fprintf(stderr, "memtrade: %s\n", err);
        mt_plugins_free(&reg);
        return MT_EXIT_USAGE;
    }
    const struct mt_workload *wl = &p->desc;
    printf("%s — %s\nplugin: %s\nABI: %u.%u\n", wl->name, wl->summary, p->path,
           (unsigned)wl->abi_major, (unsigned)wl->abi_minor);
    if (wl->unavailable) printf("unavailable: %s (memtrade run refuses it)\n", wl->unavailable);
    if (wl->ranks_param)
        printf("ranks: parameter '%s' (started through the launcher)\n", wl->ranks_param);
    printf("memory estimate: %s\nparameters:\n", wl->mem_estimate ? "declared" : "unknown");
    print_params(wl, stdout);
    mt_plugins_free(&reg);
    return MT_EXIT_OK;
}
