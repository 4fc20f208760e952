/* harness/cli_options.c — the option parsing every command shares (cli.h, "Options").
 * What it is for: one getopt_long loop over a command's own options and the shared ones
 * it names (--db, --out, --plugin, --heap/--no-heap, --launcher, --keep-scratch, the run
 * limits --timeout, --mem-limit, --threads, and --help), so a shared option has one
 * spelling, one check and one error message. Not for: what a command does with its own
 * options, or its help text (the command's). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"

/* The shared options, by the MT_CLI_* bit that admits them (--help always). */
static const struct {
    unsigned bit;
    struct option o;
} shared[] = {
    {MT_CLI_DB, {"db", required_argument, 0, MT_OPT_DB}},
    {MT_CLI_OUT, {"out", required_argument, 0, MT_OPT_OUT}},
    {MT_CLI_PLUGIN, {"plugin", required_argument, 0, MT_OPT_PLUGIN}},
    {MT_CLI_HEAP, {"heap", required_argument, 0, MT_OPT_HEAP}},
    {MT_CLI_HEAP, {"no-heap", no_argument, 0, MT_OPT_NO_HEAP}},
    {MT_CLI_LAUNCHER, {"launcher", required_argument, 0, MT_OPT_LAUNCHER}},
    {MT_CLI_KEEP, {"keep-scratch", no_argument, 0, MT_OPT_KEEP}},
    {MT_CLI_TIMEOUT, {"timeout", required_argument, 0, MT_OPT_TIMEOUT}},
    {MT_CLI_MEMLIMIT, {"mem-limit", required_argument, 0, MT_OPT_MEMLIMIT}},
    {MT_CLI_THREADS, {"threads", required_argument, 0, MT_OPT_THREADS}},
    {0, {"help", no_argument, 0, MT_OPT_HELP}},
};
enum { NSHARED = sizeof shared / sizeof shared[0] };

/* The getopt_long table: the shared options p admits, then its own. -1 when too many. */
static int build_table(struct mt_cli_parser *p)
{
    size_t n = 0, cap = sizeof p->table / sizeof p->table[0];
    for (size_t i = 0; i < NSHARED; i++)
        if (!shared[i].bit || (p->shared & shared[i].bit)) p->table[n++] = shared[i].o;
    for (const struct mt_cli_opt *o = p->own; o && o->name; o++) {
        if (n + 1 >= cap) return -1;
        /* a text option answers with its row's index above MT_OPT_TEXT */
        int id = o->text ? MT_OPT_TEXT + (int)(o - p->own) : o->id;
        p->table[n++] = (struct option){
            o->name, o->arg || o->text ? required_argument : no_argument, o->flag, id};
    }
    p->table[n] = (struct option){0, 0, 0, 0};
    return 0;
}

/* Handles shared option c with argument arg; returns 0, or -1 after printing why. */
static int shared_option(struct mt_cli_parser *p, int c, const char *arg)
{
    struct mt_cli_common *co = &p->co;
    struct mt_cli_limits *l = &p->lim;
    int64_t v;
    switch (c) {
    case MT_OPT_DB:
        co->db = arg;
        return 0;
    case MT_OPT_OUT:
        co->out = arg;
        return 0;
    case MT_OPT_PLUGIN:
        co->plugin = arg;
        return 0;
    case MT_OPT_NO_HEAP:
        co->heap = "off";
        return 0;
    case MT_OPT_LAUNCHER:
        co->launcher = arg;
        return 0;
    case MT_OPT_KEEP:
        co->keep_scratch = 1;
        return 0;
    case MT_OPT_HEAP:
        if (strcmp(arg, "full") && strcmp(arg, "sampled") && strcmp(arg, "off")) {
            fprintf(stderr, "memtrade: --heap takes full, sampled or off, not '%s'\n", arg);
            return -1;
        }
        co->heap = arg;
        return 0;
    case MT_OPT_TIMEOUT:
        if (mt_util_parse_seconds(arg, &l->timeout_s) != 0) {
            fprintf(stderr, "memtrade: --timeout takes seconds (e.g. 30, 5m), not '%s'\n", arg);
            return -1;
        }
        return 0;
    case MT_OPT_MEMLIMIT:
        if (mt_util_parse_bytes(arg, &l->mem_limit) != 0 || l->mem_limit == 0) {
            fprintf(stderr, "memtrade: --mem-limit takes a byte size (e.g. 512M, 4GiB), not '%s'\n",
                    arg);
            return -1;
        }
        return 0;
    default: /* MT_OPT_THREADS */
        if (mt_util_parse_i64(arg, &v) != 0 || v < 1 || v > 4096) {
            fprintf(stderr, "memtrade: --threads takes an integer in [1, 4096], not '%s'\n", arg);
            return -1;
        }
        l->threads = (int)v;
        return 0;
    }
}

int mt_cli_next_option(struct mt_cli_parser *p, int argc, char **argv)
{
    if (!p->started) {
        if (build_table(p) != 0) {
            fprintf(stderr, "memtrade %s: too many options (a bug)\n", p->cmd);
            return MT_CLI_BAD;
        }
        p->started = 1;
        optind = 1;
    }
    for (;;) {
        int c = getopt_long(argc, argv, p->shortopts ? p->shortopts : "", p->table, NULL);
        if (c == -1) return MT_CLI_END;
        if (c == '?' || c == ':') return MT_CLI_BAD;
        if (c == 0) continue; /* a flag option: getopt_long stored its id */
        if (c >= MT_OPT_TEXT) {
            *p->own[c - MT_OPT_TEXT].text = optarg;
            continue;
        }
        if (c == MT_OPT_HELP) {
            fputs(p->help, stdout);
            return MT_CLI_HELP;
        }
        if (c < MT_OPT_DB || c > MT_OPT_THREADS) return c;
        if (shared_option(p, c, optarg) != 0) return MT_CLI_BAD;
    }
}

int mt_cli_options_exit(int c)
{
    return c == MT_CLI_HELP ? MT_EXIT_OK : MT_EXIT_USAGE;
}

int mt_cli_options_end(const struct mt_cli_parser *p, int c, int argc, int operands,
                       const char *usage)
{
    if (c < 0) return mt_cli_options_exit(c);
    if (argc - optind == operands) return -1;
    fprintf(stderr, "usage: memtrade %s %s (see --help)\n", p->cmd, usage);
    return MT_EXIT_USAGE;
}
