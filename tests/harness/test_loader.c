/* tests/harness/test_loader.c — the plugin loader refuses broken plugins with a message
 * naming the file, and accepts the good ones.
 * usage: test_loader BADPLUGIN_DIR GOODPLUGIN_DIR */
#include <stdio.h>
#include <string.h>

#include "plugins.h"

static int failures;

static void refused(const char *dir, const char *file, const char *want)
{
    char path[1024], err[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    struct mt_plugin p;
    if (mt_plugins_open(path, &p, err, sizeof err) == 0) {
        fprintf(stderr, "%s: accepted, want refusal '%s'\n", file, want);
        failures++;
        mt_plugins_close(&p);
        return;
    }
    if (strncmp(err, path, strlen(path)) != 0 || !strstr(err, want)) {
        fprintf(stderr, "%s: got '%s', want the path and '%s'\n", file, err, want);
        failures++;
    }
}

/* Integer parameters with a choice list (ABI 1.3): checked before anything runs, with a
 * message naming the parameter, the value and what is allowed; the canonical text is the
 * decimal integer. A plugin of ABI 1.2 keeps the meaning it was built for (`choices` on
 * INT ignored), so its table, whose default is not in its list, still loads and takes any
 * integer in range. */
static void int_choices(const struct mt_plugin *old)
{
    static const struct mt_param_spec bits = {"bits", MT_PARAM_INT, "4",   2,
                                              16,     "16|8|4|3|2", "bits"};
    static const struct {
        const char *value, *want; /* want: the canonical text, or the error */
    } cases[] = {
        {"8", "8"},
        {"08", "8"},
        {"+16", "16"},
        {"5", "parameter 'bits' of workload 'w': 5 is not one of 16|8|4|3|2"},
        {"1", "parameter 'bits' of workload 'w': 1 is out of range [2, 16]"},
        {"four", "parameter 'bits' of workload 'w': 'four' is not an integer"},
        {"4.0", "parameter 'bits' of workload 'w': '4.0' is not an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char canon[64] = "", err[256] = "";
        int rc =
            mt_params_check_value("w", &bits, cases[i].value, canon, sizeof canon, err, sizeof err);
        const char *got = rc ? err : canon;
        if (strcmp(got, cases[i].want) != 0) {
            fprintf(stderr, "bits=%s: got '%s', want '%s'\n", cases[i].value, got, cases[i].want);
            failures++;
        }
    }
    if (!old || old->desc.abi_minor != 2 || old->desc.params[0].choices != NULL) {
        fprintf(stderr, "t_minor2: not loaded, or its INT choices not ignored\n");
        failures++;
        return;
    }
    struct mt_params p;
    const char *key = "bits", *val = "6";
    char err[256];
    if (mt_params_resolve(&old->desc, &key, &val, 1, &p, err, sizeof err) != 0 ||
        strcmp(p.value[0], "6") != 0) {
        fprintf(stderr, "t_minor2: bits=6 refused: %s\n", err);
        failures++;
        return;
    }
    mt_params_free(&p);
}

static void warn(void *arg, const char *msg)
{
    (void)msg;
    ++*(int *)arg;
}

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    refused(argv[1], "bad_abi.so", "plugin ABI major version 99, this harness speaks 1");
    refused(argv[1], "bad_nosym.so", "no 'memtrade_workload' symbol");
    refused(argv[1], "bad_default.so",
            "the default of parameter 'steps' of workload 'bad_default': 0 is out of range");
    refused(argv[1], "bad_choices.so",
            "parameter 'dtype' of 'bad_choices' has an empty choice list");
    refused(argv[1], "bad_intchoices.so",
            "parameter 'bits' of 'bad_intchoices' lists choices '16|8|4|x' that are not "
            "integers within [2, 16]");
    refused(argv[1], "bad_dup.so", "parameter 'steps' of 'bad_dup' is declared twice");
    refused(argv[1], "bad_norun.so", "has no run() hook");
    refused(argv[1], "bad_size.so", "struct_size 16 is smaller");
    refused(argv[1], "missing.so", "cannot load");

    /* A scan of the bad folder registers nothing and warns once per file. */
    struct mt_registry reg = {0};
    int warnings = 0;
    const char *dirs[] = {argv[1], argv[2], "/nonexistent"};
    if (mt_plugins_scan(&reg, dirs, 3, warn, &warnings) != 0 || warnings != 8) {
        fprintf(stderr, "scan: %d warnings, want 8\n", warnings);
        failures++;
    }
    const char *good[] = {"t_ok",  "t_fail",  "t_segv",    "t_hang",
                          "t_oom", "t_ranks", "t_regions", "t_minor2"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!mt_plugins_find(&reg, good[i])) {
            fprintf(stderr, "scan: %s not registered\n", good[i]);
            failures++;
        }
    }
    if (reg.n != sizeof good / sizeof good[0]) {
        fprintf(stderr, "scan: %zu plugins registered, want %zu\n", reg.n,
                sizeof good / sizeof good[0]);
        failures++;
    }
    char err[512];
    int_choices(mt_plugins_find(&reg, "t_minor2"));
    mt_plugins_explain_unknown(&reg, "t_okk", err, sizeof err);
    if (strcmp(err, "unknown workload 't_okk'; did you mean 't_ok'?") != 0) {
        fprintf(stderr, "explain: '%s'\n", err);
        failures++;
    }
    mt_plugins_free(&reg);
    return failures ? 1 : 0;
}
