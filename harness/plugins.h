/* harness/plugins.h — finding, loading and checking workload plugins, and resolving a
 * user's parameters against a plugin's table.
 *
 * What it is for: everything that must be refused before any child starts — a wrong ABI,
 * a missing symbol, an insane parameter table, an unknown parameter (with the nearest
 * valid name), a value of the wrong type or out of range. Used by the parent (list,
 * describe, run, sweep) and by the child (which loads the one plugin it runs).
 * What it is not for: running plugins (runner_spawn.c, child/child.c) or storing anything.
 */
#ifndef MT_HARNESS_PLUGINS_H
#define MT_HARNESS_PLUGINS_H

#include <stddef.h>

#include <memtrade/workload.h>

struct mt_plugin {
    char *path;              /* owned: the .so file */
    void *handle;            /* dlopen handle */
    struct mt_workload desc; /* copy; fields beyond the plugin's struct_size are 0 */
    /* owned: desc.params when the plugin's table had to be copied (an older minor's INT
     * parameters with `choices`, which the harness ignores for it), else NULL */
    struct mt_param_spec *own_params;
};

struct mt_registry {
    struct mt_plugin *items; /* owned */
    size_t n;
};

/* Reports one plugin that was refused while scanning a folder. */
typedef void (*mt_plugins_warn_fn)(void *arg, const char *message);

/* Contract: dlopens `path`, finds `memtrade_workload` and checks the descriptor (see
 * mt_plugins_check). On success fills *out (caller frees with mt_plugins_close) and
 * returns 0; otherwise returns -1 with a message naming the file in err. */
int mt_plugins_open(const char *path, struct mt_plugin *out, char *err, size_t errlen);
void mt_plugins_close(struct mt_plugin *p);

/* Contract: checks a descriptor: ABI major, struct_size, name ([a-z0-9_]+), summary and
 * run present, and the parameter table (names valid and unique, known types, defaults
 * that pass their own checks, non-empty choices, min <= max, ranks_param naming an INT
 * parameter). A plugin marked `unavailable` (ABI 1.2) is checked, loaded and listed like
 * any other; mt_plan_finish refuses to run it. Returns 0, or -1 with a message (prefixed
 * by `path`) in err. */
int mt_plugins_check(const struct mt_workload *wl, size_t avail_size, const char *path, char *err,
                     size_t errlen);

/* Contract: adds every *.so in each folder of `dirs` (missing folders are skipped) to the
 * registry, in folder order then file-name order. A plugin whose name is already
 * registered is skipped (earlier folders win). A refused plugin is reported through
 * `warn` (may be NULL) and skipped. Returns 0, or -1 on allocation failure. */
int mt_plugins_scan(struct mt_registry *reg, const char *const *dirs, size_t ndirs,
                    mt_plugins_warn_fn warn, void *arg);
/* Contract: loads one plugin given by path (e.g. --plugin); its name replaces any
 * registered plugin of the same name. Returns 0 or -1 with err. */
int mt_plugins_add(struct mt_registry *reg, const char *path, char *err, size_t errlen);
/* Contract: the plugin named `name`, or NULL. */
const struct mt_plugin *mt_plugins_find(const struct mt_registry *reg, const char *name);
/* Contract: writes "unknown workload 'x'" plus "; did you mean 'y'?" or the list of known
 * workloads into err. */
void mt_plugins_explain_unknown(const struct mt_registry *reg, const char *name, char *err,
                                size_t errlen);
void mt_plugins_free(struct mt_registry *reg);

/* Contract: the folders to scan, in priority order: each entry of MEMTRADE_PLUGIN_PATH
 * (':'-separated), `<dir of the executable>/../plugins` (a build tree),
 * `<dir of the executable>/../<libdir>/memtrade/plugins` (an install, wherever it was
 * moved), then the configured install folder `<prefix>/<libdir>/memtrade/plugins`. Returns a
 * NULL-terminated array the caller frees with mt_plugins_free_dirs, or NULL on allocation failure.
 */
char **mt_plugins_default_dirs(void);
void mt_plugins_free_dirs(char **dirs);

/* ---------------------------------------------------------------- parameters */

/* Resolved parameters of one run: value[i] is the canonical text of spec[i]. */
struct mt_params {
    const struct mt_workload *wl; /* borrowed */
    size_t n;
    char **value; /* owned, n entries */
};

/* The longest parameter value, in bytes: each travels to the child as one argument. */
#define MT_PARAMS_VALUE_MAX 65536

/* Contract: checks `value` against one parameter spec and writes its canonical text
 * (integers in decimal, floats as the shortest exact "%g", booleans "true"/"false") to
 * canon. A value over MT_PARAMS_VALUE_MAX bytes, or whose canonical text does not fit
 * canonlen, is refused, never cut. Returns 0, or -1 with a message naming the parameter
 * and the workload. */
int mt_params_check_value(const char *workload, const struct mt_param_spec *spec, const char *value,
                          char *canon, size_t canonlen, char *err, size_t errlen);

/* Contract: resolves `n` key=value settings against the plugin's table, filling
 * defaults. Unknown keys are refused with the nearest valid name, a key given twice is
 * refused with both values. On success fills *out (free with mt_params_free) and returns
 * 0; else -1, err. */
int mt_params_resolve(const struct mt_workload *wl, const char *const *keys,
                      const char *const *values, size_t n, struct mt_params *out, char *err,
                      size_t errlen);
void mt_params_free(struct mt_params *p);
/* Contract: index of parameter `name` in the table, or -1. */
long mt_params_index(const struct mt_workload *wl, const char *name);
/* Contract: the nearest parameter name to `name` among the table, or NULL. */
const char *mt_params_suggest(const struct mt_workload *wl, const char *name);

/* Contract: a human name for a parameter type ("int", "float", ...). */
const char *mt_params_type_name(enum mt_param_type type);

#endif
