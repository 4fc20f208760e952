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
    refused(argv[1], "bad_dup.so", "parameter 'steps' of 'bad_dup' is declared twice");
    refused(argv[1], "bad_norun.so", "has no run() hook");
    refused(argv[1], "bad_size.so", "struct_size 16 is smaller");
    refused(argv[1], "missing.so", "cannot load");

    /* A scan of the bad folder registers nothing and warns once per file. */
    struct mt_registry reg = {0};
    int warnings = 0;
    const char *dirs[] = {argv[1], argv[2], "/nonexistent"};
    if (mt_plugins_scan(&reg, dirs, 3, warn, &warnings) != 0 || warnings != 7) {
        fprintf(stderr, "scan: %d warnings, want 7\n", warnings);
        failures++;
    }
    const char *good[] = {"t_ok", "t_fail", "t_segv", "t_hang", "t_oom", "t_ranks", "t_regions"};
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
    mt_plugins_explain_unknown(&reg, "t_okk", err, sizeof err);
    if (strcmp(err, "unknown workload 't_okk'; did you mean 't_ok'?") != 0) {
        fprintf(stderr, "explain: '%s'\n", err);
        failures++;
    }
    mt_plugins_free(&reg);
    return failures ? 1 : 0;
}
