/* harness/plugins.c — plugin discovery, dlopen, descriptor checks and parameter
 * resolution (see plugins.h). */
#include "plugins.h"

#include <dirent.h>
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"

#ifndef MT_INSTALL_PLUGIN_DIR
#define MT_INSTALL_PLUGIN_DIR "/usr/local/lib/memtrade/plugins"
#endif
#ifndef MT_REL_PLUGIN_DIR
#define MT_REL_PLUGIN_DIR "lib/memtrade/plugins"
#endif

/* The smallest descriptor a major-1 plugin may have: up to and including run(). */
#define MT_WORKLOAD_MIN_SIZE (offsetof(struct mt_workload, run) + sizeof(void (*)(void)))

static int valid_ident(const char *s)
{
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return 0;
    return 1;
}

const char *mt_params_type_name(enum mt_param_type type)
{
    static const char *const names[] = {[MT_PARAM_INT] = "int",
                                        [MT_PARAM_FLOAT] = "float",
                                        [MT_PARAM_STRING] = "string",
                                        [MT_PARAM_CHOICE] = "choice",
                                        [MT_PARAM_BOOL] = "bool"};
    return (unsigned)type < sizeof names / sizeof names[0] && names[type] ? names[type] : "?";
}

/* Is `value` one of the '|'-separated `choices`? */
static int in_choices(const char *choices, const char *value)
{
    size_t vlen = strlen(value);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vlen && strncmp(p, value, len) == 0) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

/* Walks the '|'-separated entries of an INT parameter's choice list: returns 1 when one
 * of them equals v, else 0; sets *bad (when not NULL) to whether the list is empty or has
 * an entry that is not an integer within [min, max]. */
static int int_choices_walk(const struct mt_param_spec *s, int64_t v, int *bad)
{
    char buf[32];
    int found = 0, wrong = 0;
    for (const char *p = s->choices;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        int64_t c = 0;
        int ok = len > 0 && len < sizeof buf;
        if (ok) {
            memcpy(buf, p, len);
            buf[len] = 0;
            ok = mt_util_parse_i64(buf, &c) == 0 && (double)c >= s->min && (double)c <= s->max;
        }
        found |= ok && c == v;
        wrong |= !ok;
        if (!bar) break;
        p = bar + 1;
    }
    if (bad) *bad = wrong;
    return found;
}

static int choices_sane(const char *choices)
{
    if (!choices || !*choices) return 0;
    for (const char *p = choices;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == 0) return 0;
        if (!bar) return 1;
        p = bar + 1;
    }
}

/* Writes "parameter 'NAME' of workload 'W': " and the formatted rest into err; returns -1. */
__attribute__((format(printf, 5, 6))) static int param_fail(char *err, size_t errlen,
                                                            const struct mt_param_spec *spec,
                                                            const char *workload, const char *fmt,
                                                            ...)
{
    int n = snprintf(err, errlen, "parameter '%s' of workload '%s': ", spec->name, workload);
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Writes the canonical text; a value that does not fit is refused, never cut. */
static int put_canon(const char *workload, const struct mt_param_spec *spec, char *canon,
                     size_t canonlen, const char *text, char *err, size_t errlen)
{
    size_t len = strlen(text);
    if (len >= canonlen)
        return param_fail(err, errlen, spec, workload,
                          "value of %zu bytes is longer than the %zu this check can hold", len,
                          canonlen ? canonlen - 1 : 0);
    memcpy(canon, text, len + 1);
    return 0;
}

int mt_params_check_value(const char *workload, const struct mt_param_spec *spec, const char *value,
                          char *canon, size_t canonlen, char *err, size_t errlen)
{
    char num[64];
    size_t vlen = strlen(value);
    if (vlen > MT_PARAMS_VALUE_MAX) {
        /* Values travel to the child as one argument each (the kernel's limit is 128 KiB);
         * refused here rather than cut anywhere later. */
        return param_fail(err, errlen, spec, workload,
                          "value of %zu bytes is longer than the limit of %d bytes", vlen,
                          MT_PARAMS_VALUE_MAX);
    }
    switch (spec->type) {
    case MT_PARAM_INT: {
        int64_t v;
        if (mt_util_parse_i64(value, &v) != 0)
            return param_fail(err, errlen, spec, workload, "'%s' is not an integer", value);
        if ((double)v < spec->min || (double)v > spec->max)
            return param_fail(err, errlen, spec, workload, "%lld is out of range [%.17g, %.17g]",
                              (long long)v, spec->min, spec->max);
        if (spec->choices && !int_choices_walk(spec, v, NULL))
            return param_fail(err, errlen, spec, workload, "%lld is not one of %s", (long long)v,
                              spec->choices);
        snprintf(canon, canonlen, "%lld", (long long)v);
        return 0;
    }
    case MT_PARAM_FLOAT: {
        double v;
        if (mt_util_parse_double(value, &v) != 0)
            return param_fail(err, errlen, spec, workload, "'%s' is not a number", value);
        if (v < spec->min || v > spec->max)
            return param_fail(err, errlen, spec, workload, "%s is out of range [%.17g, %.17g]",
                              value, spec->min, spec->max);
        snprintf(canon, canonlen, "%s", mt_util_fmt_double_short(num, sizeof num, v));
        return 0;
    }
    case MT_PARAM_STRING:
        return put_canon(workload, spec, canon, canonlen, value, err, errlen);
    case MT_PARAM_CHOICE:
        if (!in_choices(spec->choices, value))
            return param_fail(err, errlen, spec, workload, "'%s' is not one of %s", value,
                              spec->choices);
        return put_canon(workload, spec, canon, canonlen, value, err, errlen);
    case MT_PARAM_BOOL: {
        static const char *const yes[] = {"on", "true", "1", "yes"};
        static const char *const no[] = {"off", "false", "0", "no"};
        for (size_t i = 0; i < 4; i++) {
            if (strcasecmp(value, yes[i]) == 0) {
                snprintf(canon, canonlen, "true");
                return 0;
            }
            if (strcasecmp(value, no[i]) == 0) {
                snprintf(canon, canonlen, "false");
                return 0;
            }
        }
        return param_fail(err, errlen, spec, workload,
                          "'%s' is not a boolean (on|off, true|false, "
                          "1|0, yes|no)",
                          value);
    }
    }
    snprintf(err, errlen, "parameter '%s' of workload '%s' has an unknown type %d", spec->name,
             workload, (int)spec->type);
    return -1;
}

/* A plugin built before ABI 1.3 had no use for `choices` on INT parameters: its table is
 * copied with them cleared, so the harness keeps the meaning the plugin was built for.
 * Returns 0 (p->desc.params is then the copy, owned by p, or the plugin's own table when
 * nothing needed clearing) or -1 when out of memory. */
static int keep_old_minor_meaning(struct mt_plugin *p)
{
    const struct mt_workload *wl = &p->desc;
    int any = 0;
    if (wl->abi_major != MEMTRADE_WORKLOAD_ABI_MAJOR || wl->abi_minor >= 3 || !wl->params) return 0;
    for (size_t i = 0; i < wl->n_params; i++)
        any |= wl->params[i].type == MT_PARAM_INT && wl->params[i].choices;
    if (!any) return 0;
    struct mt_param_spec *copy = malloc(wl->n_params * sizeof *copy);
    if (!copy) return -1;
    memcpy(copy, wl->params, wl->n_params * sizeof *copy);
    for (size_t i = 0; i < wl->n_params; i++)
        if (copy[i].type == MT_PARAM_INT) copy[i].choices = NULL;
    p->own_params = copy;
    p->desc.params = copy;
    return 0;
}

int mt_plugins_check(const struct mt_workload *wl, size_t avail_size, const char *path, char *err,
                     size_t errlen)
{
    if (wl->abi_major != MEMTRADE_WORKLOAD_ABI_MAJOR) {
        snprintf(err, errlen, "%s: plugin ABI major version %u, this harness speaks %d", path,
                 (unsigned)wl->abi_major, MEMTRADE_WORKLOAD_ABI_MAJOR);
        return -1;
    }
    if (avail_size < MT_WORKLOAD_MIN_SIZE) {
        snprintf(err, errlen,
                 "%s: descriptor struct_size %zu is smaller than the %zu bytes of ABI %d.0", path,
                 avail_size, (size_t)MT_WORKLOAD_MIN_SIZE, MEMTRADE_WORKLOAD_ABI_MAJOR);
        return -1;
    }
    if (!valid_ident(wl->name)) {
        snprintf(err, errlen, "%s: workload name '%s' is missing or not [a-z0-9_]+", path,
                 wl->name ? wl->name : "(null)");
        return -1;
    }
    if (!wl->summary || !*wl->summary) {
        snprintf(err, errlen, "%s: workload '%s' has no summary", path, wl->name);
        return -1;
    }
    if (!wl->run) {
        snprintf(err, errlen, "%s: workload '%s' has no run() hook", path, wl->name);
        return -1;
    }
    if (wl->n_params && !wl->params) {
        snprintf(err, errlen, "%s: workload '%s' declares %zu parameters but no table", path,
                 wl->name, wl->n_params);
        return -1;
    }
    char canon[512], why[512];
    for (size_t i = 0; i < wl->n_params; i++) {
        const struct mt_param_spec *s = &wl->params[i];
        if (!valid_ident(s->name)) {
            snprintf(err, errlen, "%s: parameter #%zu of '%s' has a missing or invalid name", path,
                     i, wl->name);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(wl->params[j].name, s->name) == 0) {
                snprintf(err, errlen, "%s: parameter '%s' of '%s' is declared twice", path, s->name,
                         wl->name);
                return -1;
            }
        }
        if (s->type < MT_PARAM_INT || s->type > MT_PARAM_BOOL) {
            snprintf(err, errlen, "%s: parameter '%s' of '%s' has unknown type %d", path, s->name,
                     wl->name, (int)s->type);
            return -1;
        }
        if (s->type == MT_PARAM_CHOICE && !choices_sane(s->choices)) {
            snprintf(err, errlen, "%s: parameter '%s' of '%s' has an empty choice list", path,
                     s->name, wl->name);
            return -1;
        }
        int bad = 0;
        if (s->type == MT_PARAM_INT && s->choices && wl->abi_minor >= 3)
            int_choices_walk(s, 0, &bad);
        if (bad) {
            snprintf(err, errlen,
                     "%s: parameter '%s' of '%s' lists choices '%s' that are not integers "
                     "within [%.17g, %.17g]",
                     path, s->name, wl->name, s->choices, s->min, s->max);
            return -1;
        }
        if ((s->type == MT_PARAM_INT || s->type == MT_PARAM_FLOAT) && !(s->min <= s->max)) {
            snprintf(err, errlen, "%s: parameter '%s' of '%s' has min > max", path, s->name,
                     wl->name);
            return -1;
        }
        if (!s->def) {
            snprintf(err, errlen, "%s: parameter '%s' of '%s' has no default", path, s->name,
                     wl->name);
            return -1;
        }
        if (mt_params_check_value(wl->name, s, s->def, canon, sizeof canon, why, sizeof why)) {
            snprintf(err, errlen, "%s: the default of %s", path, why);
            return -1;
        }
    }
    if (wl->ranks_param) {
        long k = mt_params_index(wl, wl->ranks_param);
        if (k < 0 || wl->params[k].type != MT_PARAM_INT) {
            snprintf(err, errlen, "%s: ranks_param '%s' of '%s' is not an int parameter", path,
                     wl->ranks_param, wl->name);
            return -1;
        }
    }
    return 0;
}

int mt_plugins_open(const char *path, struct mt_plugin *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "%s: cannot load: %s", path, dlerror());
        return -1;
    }
    const struct mt_workload *wl = dlsym(h, MEMTRADE_WORKLOAD_SYMBOL);
    if (!wl) {
        snprintf(err, errlen, "%s: no '%s' symbol: not a memtrade workload plugin", path,
                 MEMTRADE_WORKLOAD_SYMBOL);
        dlclose(h);
        return -1;
    }
    /* Copy what the plugin has; a plugin built against an older minor leaves the tail 0.
     * The major is checked before trusting struct_size. */
    size_t have = wl->abi_major == MEMTRADE_WORKLOAD_ABI_MAJOR ? wl->struct_size : 0;
    memset(&out->desc, 0, sizeof out->desc);
    memcpy(&out->desc, wl, have < sizeof out->desc ? have : sizeof out->desc);
    out->desc.abi_major = wl->abi_major;
    if (keep_old_minor_meaning(out) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        dlclose(h);
        return -1;
    }
    if (mt_plugins_check(&out->desc, have, path, err, errlen) != 0) {
        free(out->own_params);
        dlclose(h);
        return -1;
    }
    out->path = strdup(path);
    out->handle = h;
    if (!out->path) {
        snprintf(err, errlen, "out of memory");
        free(out->own_params);
        dlclose(h);
        return -1;
    }
    return 0;
}

void mt_plugins_close(struct mt_plugin *p)
{
    /* The handle is kept open: descriptors and parameter tables live in the .so, and a
     * plugin's libraries (OpenMP, oneDNN) do not all survive dlclose. */
    free(p->path);
    free(p->own_params);
    memset(p, 0, sizeof *p);
}

const struct mt_plugin *mt_plugins_find(const struct mt_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->n; i++)
        if (strcmp(reg->items[i].desc.name, name) == 0) return &reg->items[i];
    return NULL;
}

static int registry_push(struct mt_registry *reg, struct mt_plugin *p)
{
    struct mt_plugin *grown = realloc(reg->items, (reg->n + 1) * sizeof *grown);
    if (!grown) return -1;
    reg->items = grown;
    reg->items[reg->n++] = *p;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted *.so names in `dir`; NULL-terminated, caller frees. */
static char **list_so(const char *dir, size_t *count)
{
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0) continue;
        char **grown = realloc(names, (n + 1) * sizeof *grown);
        if (!grown) break;
        names = grown;
        if (!(names[n] = strdup(e->d_name))) break;
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    *count = n;
    return names;
}

int mt_plugins_scan(struct mt_registry *reg, const char *const *dirs, size_t ndirs,
                    mt_plugins_warn_fn warn, void *arg)
{
    int rc = 0;
    for (size_t d = 0; d < ndirs; d++) {
        size_t n;
        char **names = list_so(dirs[d], &n);
        for (size_t i = 0; i < n; i++) {
            char path[PATH_MAX], err[1024];
            snprintf(path, sizeof path, "%s/%s", dirs[d], names[i]);
            struct mt_plugin p;
            if (mt_plugins_open(path, &p, err, sizeof err) != 0) {
                if (warn) warn(arg, err);
            } else if (mt_plugins_find(reg, p.desc.name)) {
                mt_plugins_close(&p); /* an earlier folder has it */
            } else if (registry_push(reg, &p) != 0) {
                mt_plugins_close(&p);
                rc = -1;
            }
            free(names[i]);
        }
        free(names);
    }
    return rc;
}

int mt_plugins_add(struct mt_registry *reg, const char *path, char *err, size_t errlen)
{
    struct mt_plugin p;
    if (mt_plugins_open(path, &p, err, errlen) != 0) return -1;
    for (size_t i = 0; i < reg->n; i++) {
        if (strcmp(reg->items[i].desc.name, p.desc.name) == 0) {
            mt_plugins_close(&reg->items[i]);
            reg->items[i] = p;
            return 0;
        }
    }
    if (registry_push(reg, &p) != 0) {
        mt_plugins_close(&p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void mt_plugins_explain_unknown(const struct mt_registry *reg, const char *name, char *err,
                                size_t errlen)
{
    const char **names = calloc(reg->n + 1, sizeof *names);
    for (size_t i = 0; names && i < reg->n; i++)
        names[i] = reg->items[i].desc.name;
    const char *near = names ? mt_util_nearest(name, names, reg->n) : NULL;
    if (near) {
        snprintf(err, errlen, "unknown workload '%s'; did you mean '%s'?", name, near);
    } else {
        size_t off = (size_t)snprintf(err, errlen, "unknown workload '%s'; known:", name);
        for (size_t i = 0; i < reg->n && off < errlen; i++)
            off += (size_t)snprintf(err + off, errlen - off, " %s", reg->items[i].desc.name);
        if (reg->n == 0 && off < errlen)
            snprintf(err + off, errlen - off, " none (see MEMTRADE_PLUGIN_PATH)");
    }
    free(names);
}

void mt_plugins_free(struct mt_registry *reg)
{
    for (size_t i = 0; i < reg->n; i++)
        mt_plugins_close(&reg->items[i]);
    free(reg->items);
    memset(reg, 0, sizeof *reg);
}

char **mt_plugins_default_dirs(void)
{
    size_t cap = 8, n = 0;
    char **dirs = calloc(cap + 1, sizeof *dirs);
    if (!dirs) return NULL;
    const char *env = getenv("MEMTRADE_PLUGIN_PATH");
    if (env && *env) {
        char *copy = strdup(env), *save = NULL;
        for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok;
             tok = strtok_r(NULL, ":", &save)) {
            if (n + 2 >= cap) {
                char **grown = realloc(dirs, (cap * 2 + 1) * sizeof *grown);
                if (!grown) break;
                dirs = grown;
                cap *= 2;
            }
            dirs[n++] = strdup(tok);
        }
        free(copy);
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *dir = dirname(exe);
        char buf[PATH_MAX + 64];
        snprintf(buf, sizeof buf, "%s/../plugins", dir); /* a build tree */
        dirs[n++] = strdup(buf);
        snprintf(buf, sizeof buf, "%s/../%s", dir, MT_REL_PLUGIN_DIR); /* a relocated install */
        dirs[n++] = strdup(buf);
    }
    dirs[n++] = strdup(MT_INSTALL_PLUGIN_DIR);
    dirs[n] = NULL;
    return dirs;
}

void mt_plugins_free_dirs(char **dirs)
{
    for (size_t i = 0; dirs && dirs[i]; i++)
        free(dirs[i]);
    free(dirs);
}

/* ---------------------------------------------------------------- parameters */

long mt_params_index(const struct mt_workload *wl, const char *name)
{
    for (size_t i = 0; i < wl->n_params; i++)
        if (strcmp(wl->params[i].name, name) == 0) return (long)i;
    return -1;
}

const char *mt_params_suggest(const struct mt_workload *wl, const char *name)
{
    const char **names = calloc(wl->n_params + 1, sizeof *names);
    if (!names) return NULL;
    for (size_t i = 0; i < wl->n_params; i++)
        names[i] = wl->params[i].name;
    const char *near = mt_util_nearest(name, names, wl->n_params);
    free(names);
    return near;
}

void mt_params_free(struct mt_params *p)
{
    for (size_t i = 0; p->value && i < p->n; i++)
        free(p->value[i]);
    free(p->value);
    memset(p, 0, sizeof *p);
}

int mt_params_resolve(const struct mt_workload *wl, const char *const *keys,
                      const char *const *values, size_t n, struct mt_params *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->wl = wl;
    out->n = wl->n_params;
    out->value = calloc(wl->n_params + 1, sizeof *out->value);
    if (!out->value) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char **chosen = calloc(wl->n_params + 1, sizeof *chosen);
    if (!chosen) {
        mt_params_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        long k = mt_params_index(wl, keys[i]);
        if (k < 0) {
            const char *near = mt_params_suggest(wl, keys[i]);
            if (near)
                snprintf(err, errlen,
                         "unknown parameter '%s' for workload '%s'; did you mean '%s'?", keys[i],
                         wl->name, near);
            else
                snprintf(err, errlen,
                         "unknown parameter '%s' for workload '%s' (see: memtrade describe %s)",
                         keys[i], wl->name, wl->name);
            rc = -1;
        } else if (chosen[k]) {
            /* `-p k=1 -p k=2`: which one was meant is a guess; say so instead. */
            snprintf(err, errlen, "parameter '%s' of workload '%s' given twice ('%s', then '%s')",
                     keys[i], wl->name, chosen[k], values[i]);
            rc = -1;
        } else {
            chosen[k] = values[i];
        }
    }
    for (size_t i = 0; i < wl->n_params && rc == 0; i++) {
        const struct mt_param_spec *s = &wl->params[i];
        const char *v = chosen[i] ? chosen[i] : s->def;
        size_t cap = strlen(v) + 64; /* room for any canonical number */
        char *canon = malloc(cap);
        if (!canon || mt_params_check_value(wl->name, s, v, canon, cap, err, errlen) != 0) {
            if (!canon) snprintf(err, errlen, "out of memory");
            free(canon);
            rc = -1;
        } else {
            out->value[i] = canon;
        }
    }
    free(chosen);
    if (rc != 0) mt_params_free(out);
    return rc;
}
