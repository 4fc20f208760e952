/* harness/sweepspec.c — sweep file parser and grid expansion (format in sweepspec.h). */
#include "sweepspec.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

#define MAX_RANGE_ITEMS 100000
#define BOM "\xEF\xBB\xBF" /* UTF-8 byte order mark */
#define MAX_GRID 1000000

static const char *const harness_keys[] = {"repeats", "timeout", "mem_limit", "threads"};
static const char *const sweep_keys[] = {"name",    "repeats", "seed",
                                         "threads", "timeout", "mem_limit"};

/* ---------------------------------------------------------------- value lists */

/* Expands "a..b[:s|:xK]" into vec. */
static int expand_range(const char *item, const char *dots, struct mt_util_strv *vec, char *err,
                        size_t errlen)
{
    char a_text[128], b_text[128], s_text[128] = "";
    if (dots[2] == '.' || strstr(dots + 2, "..")) {
        /* "10...20" would read as 10 .. .20 and "1..5..9" as nonsense: say what is meant. */
        snprintf(err, errlen, "bad range '%s': a range is a..b with exactly two dots", item);
        return -1;
    }
    size_t alen = (size_t)(dots - item);
    const char *colon = strchr(dots + 2, ':');
    size_t blen = colon ? (size_t)(colon - dots - 2) : strlen(dots + 2);
    if (alen >= sizeof a_text || blen >= sizeof b_text ||
        (colon && strlen(colon + 1) >= sizeof s_text)) {
        snprintf(err, errlen, "range '%s' is too long", item);
        return -1;
    }
    memcpy(a_text, item, alen);
    a_text[alen] = '\0';
    memcpy(b_text, dots + 2, blen);
    b_text[blen] = '\0';
    if (colon) snprintf(s_text, sizeof s_text, "%s", colon + 1);
    int geometric = s_text[0] == 'x';
    const char *step_num = geometric ? s_text + 1 : s_text;
    double a, b, s = 1;
    if (mt_util_parse_double(mt_util_trim(a_text), &a) ||
        mt_util_parse_double(mt_util_trim(b_text), &b) ||
        (colon && mt_util_parse_double(step_num, &s))) {
        snprintf(err, errlen,
                 "bad range '%s' (expected a..b, a..b:step or a..b:xFACTOR with numbers)", item);
        return -1;
    }
    if (a > b) {
        snprintf(err, errlen, "empty range '%s': start is above end", item);
        return -1;
    }
    if (geometric ? (s <= 1 || a <= 0) : s <= 0) {
        snprintf(err, errlen,
                 geometric ? "range '%s': factor must be > 1 and start > 0"
                           : "range '%s': step must be > 0",
                 item);
        return -1;
    }
    if (!geometric && floor((b - a) / s * (1 + 1e-12)) + 1 > MAX_RANGE_ITEMS) {
        snprintf(err, errlen, "range '%s' has more than %d items", item, MAX_RANGE_ITEMS);
        return -1;
    }
    int64_t ia, ib, is;
    int integers = !mt_util_parse_i64(a_text, &ia) && !mt_util_parse_i64(b_text, &ib) &&
                   (!colon || !mt_util_parse_i64(step_num, &is));
    char buf[64];
    double v = a;
    for (size_t i = 0;; i++) {
        if (!geometric) v = a + (double)i * s; /* no accumulated rounding */
        if (v > b + fabs(b) * 1e-12 + 1e-12) break;
        if (i >= MAX_RANGE_ITEMS) { /* item i + 1 would be one too many */
            snprintf(err, errlen, "range '%s' has more than %d items", item, MAX_RANGE_ITEMS);
            return -1;
        }
        if (integers)
            snprintf(buf, sizeof buf, "%lld", (long long)llround(v));
        else
            snprintf(buf, sizeof buf, "%.12g", v);
        if (mt_util_strv_push(vec, buf)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (geometric) v *= s;
    }
    return 0;
}

int mt_spec_expand_values(const char *text, char ***items, size_t *n, char *err, size_t errlen)
{
    struct mt_util_strv vec = {0, 0, 0};
    char *item = malloc(strlen(text) + 1);
    if (!item) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *p = text;
    int rc = 0;
    for (;;) {
        /* One item: up to the next comma outside quotes. */
        /* Whitespace outside quotes is not part of an item: `a, "b c" ,d` is
         * {a, b c, d}. Inside quotes everything is kept verbatim. */
        size_t len = 0, keep = 0; /* keep: length up to the last quoted character */
        int quoted = 0, was_quoted = 0;
        while (*p == ' ' || *p == '\t')
            p++;
        while (*p && (quoted || *p != ',')) {
            if (*p == '"') {
                quoted = !quoted;
                was_quoted = 1;
                keep = len;
            } else {
                item[len++] = *p;
                if (quoted) keep = len;
            }
            p++;
        }
        if (was_quoted) {
            while (len > keep && (item[len - 1] == ' ' || item[len - 1] == '\t'))
                len--;
        }
        item[len] = '\0';
        if (quoted) {
            snprintf(err, errlen, "unterminated quote in '%s'", text);
            rc = -1;
            break;
        }
        char *t = was_quoted ? item : mt_util_trim(item);
        const char *dots = was_quoted ? NULL : strstr(t, "..");
        if (!was_quoted && !*t) {
            snprintf(err, errlen, "empty item in value list '%s'", text);
            rc = -1;
            break;
        }
        if (dots ? expand_range(t, dots, &vec, err, errlen) : mt_util_strv_push(&vec, t)) {
            if (!dots) snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        if (*p != ',') break;
        p++;
    }
    free(item);
    if (rc) mt_util_strv_free(&vec);
    *items = vec.v;
    *n = vec.n;
    return rc;
}

/* ---------------------------------------------------------------- parser */

static int fail(char *err, size_t errlen, const char *path, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, const char *path, size_t line, const char *fmt, ...)
{
    int off = snprintf(err, errlen, "%s:%zu: ", path, line);
    va_list ap;
    va_start(ap, fmt);
    if (off >= 0 && (size_t)off < errlen) vsnprintf(err + off, errlen - (size_t)off, fmt, ap);
    va_end(ap);
    return -1;
}

/* Cuts an inline comment: '#' or ';' preceded by whitespace, outside quotes. */
static void strip_comment(char *s)
{
    int quoted = 0;
    for (char *p = s; *p; p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (!quoted && (*p == '#' || *p == ';') && (p == s || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            return;
        }
    }
}

static int is_ident(const char *s, int allow_dot)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' ||
              (allow_dot && *s == '.')))
            return 0;
    return 1;
}

static int parse_setting(const char *path, size_t line, const char *key, const char *value,
                         struct mt_spec_settings *set, char *err, size_t errlen)
{
    int64_t i;
    if (strcmp(key, "repeats") == 0) {
        if (mt_util_parse_i64(value, &i) || i < 1 || i > 10000)
            return fail(err, errlen, path, line,
                        "repeats must be an integer in [1, 10000], not '%s'", value);
        set->repeats = (size_t)i;
    } else if (strcmp(key, "threads") == 0) {
        if (mt_util_parse_i64(value, &i) || i < 1 || i > 4096)
            return fail(err, errlen, path, line,
                        "threads must be an integer in [1, 4096], not '%s'", value);
        set->threads = (int)i;
    } else if (strcmp(key, "timeout") == 0) {
        if (mt_util_parse_seconds(value, &set->timeout_s))
            return fail(err, errlen, path, line, "timeout must be seconds (e.g. 300, 5m), not '%s'",
                        value);
    } else if (strcmp(key, "mem_limit") == 0) {
        if (mt_util_parse_bytes(value, &set->mem_limit) || set->mem_limit == 0)
            return fail(err, errlen, path, line,
                        "mem_limit must be a byte size (e.g. 512M, 4G), not '%s'", value);
    }
    return 0;
}

static struct mt_spec_section *add_section(struct mt_spec *s)
{
    struct mt_spec_section *grown = realloc(s->sections, (s->nsections + 1) * sizeof *grown);
    if (!grown) return NULL;
    s->sections = grown;
    memset(&grown[s->nsections], 0, sizeof *grown);
    return &grown[s->nsections++];
}

static int parse_line(struct mt_spec *s, char *raw, size_t line, int *in_sweep, char *err,
                      size_t errlen)
{
    const char *path = s->path;
    char *bom = strstr(raw, BOM);
    if (bom)
        return fail(err, errlen, path, line,
                    "a UTF-8 byte order mark (U+FEFF, bytes EF BB BF) at column %zu; only the "
                    "start of the file may have one",
                    (size_t)(bom - raw) + 1);
    char *t = mt_util_trim(raw);
    if (!*t || *t == '#' || *t == ';') return 0;
    strip_comment(t);
    t = mt_util_trim(t);
    if (*t == '[') {
        char *close = strchr(t, ']');
        if (!close || *mt_util_trim(close + 1))
            return fail(err, errlen, path, line, "malformed section header '%s' (expected [name])",
                        t);
        *close = '\0';
        char *name = mt_util_trim(t + 1);
        if (strcmp(name, "sweep") == 0) {
            if (s->sweep_line)
                return fail(err, errlen, path, line, "second [sweep] section (first at line %zu)",
                            s->sweep_line);
            s->sweep_line = line;
            *in_sweep = 1;
            return 0;
        }
        if (!is_ident(name, 1) || name[0] == '.' || name[strlen(name) - 1] == '.' ||
            strchr(strchr(name, '.') ? strchr(name, '.') + 1 : name, '.'))
            return fail(err, errlen, path, line,
                        "bad section name '%s' (expected [workload] or [workload.label], "
                        "lowercase letters, digits, _)",
                        name);
        for (size_t i = 0; i < s->nsections; i++) {
            const struct mt_spec_section *o = &s->sections[i];
            char full[512];
            snprintf(full, sizeof full, "%s%s%s", o->workload, o->label ? "." : "",
                     o->label ? o->label : "");
            if (strcmp(full, name) == 0)
                return fail(err, errlen, path, line,
                            "section [%s] appears twice (first at line %zu)", name, o->line);
        }
        struct mt_spec_section *sec = add_section(s);
        if (!sec) return fail(err, errlen, path, line, "out of memory");
        char *dot = strchr(name, '.');
        if (dot) *dot = '\0';
        sec->workload = strdup(name);
        sec->label = dot ? strdup(dot + 1) : NULL;
        sec->line = line;
        *in_sweep = 0;
        return 0;
    }
    char *eq = strchr(t, '=');
    if (!eq)
        return fail(err, errlen, path, line, "expected 'key = value' or [section], got '%s'", t);
    *eq = '\0';
    char *key = mt_util_trim(t), *value = mt_util_trim(eq + 1);
    if (!is_ident(key, 0))
        return fail(err, errlen, path, line, "bad key '%s' (lowercase letters, digits, _)", key);
    if (!*value) return fail(err, errlen, path, line, "key '%s' has no value", key);
    if (*in_sweep) {
        size_t nk = sizeof sweep_keys / sizeof sweep_keys[0];
        const char *near = mt_util_nearest(key, sweep_keys, nk);
        int known = 0;
        for (size_t i = 0; i < nk; i++)
            known |= strcmp(key, sweep_keys[i]) == 0;
        if (!known)
            return near ? fail(err, errlen, path, line,
                               "unknown key '%s' in [sweep]; did you mean '%s'?", key, near)
                        : fail(err, errlen, path, line,
                               "unknown key '%s' in [sweep] (known: name, repeats, seed, threads, "
                               "timeout, mem_limit)",
                               key);
        if (strcmp(key, "name") == 0) {
            free(s->name);
            s->name = strdup(value);
        } else if (strcmp(key, "seed") == 0) {
            int64_t seed;
            if (mt_util_parse_i64(value, &seed) || seed < 0)
                return fail(err, errlen, path, line,
                            "seed must be a non-negative integer, not '%s'", value);
            s->seed = (uint64_t)seed;
            s->has_seed = 1;
        } else if (parse_setting(path, line, key, value, &s->settings, err, errlen)) {
            return -1;
        }
        return 0;
    }
    if (s->nsections == 0) return fail(err, errlen, path, line, "'%s' outside any section", key);
    struct mt_spec_section *sec = &s->sections[s->nsections - 1];
    for (size_t i = 0; i < sec->nkeys; i++)
        if (strcmp(sec->keys[i].name, key) == 0)
            return fail(err, errlen, path, line, "key '%s' given twice in [%s] (first at line %zu)",
                        key, sec->workload, sec->keys[i].line);
    struct mt_spec_key *grown = realloc(sec->keys, (sec->nkeys + 1) * sizeof *grown);
    if (!grown) return fail(err, errlen, path, line, "out of memory");
    sec->keys = grown;
    struct mt_spec_key *k = &sec->keys[sec->nkeys];
    memset(k, 0, sizeof *k);
    char why[512];
    if (mt_spec_expand_values(value, &k->values, &k->nvalues, why, sizeof why))
        return fail(err, errlen, path, line, "%s", why);
    k->name = strdup(key);
    k->line = line;
    sec->nkeys++;
    return 0;
}

int mt_spec_parse_text(const char *path, const char *text, struct mt_spec *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* Editors on Windows start UTF-8 files with a byte order mark: skipped there; one
     * anywhere else is refused by name below, never shown as an invisible character. */
    if (strncmp(text, BOM, 3) == 0) text += 3;
    out->settings.timeout_s = -1;
    out->path = strdup(path);
    out->text = strdup(text);
    out->seed = 1;
    char *copy = strdup(text);
    if (!out->path || !out->text || !copy) {
        free(copy);
        mt_spec_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int in_sweep = 0, rc = 0;
    size_t line = 0;
    char *save = NULL;
    /* strtok_r would skip empty lines and break line numbers: split by hand. */
    for (char *p = copy; p && rc == 0; line++) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        rc = parse_line(out, p, line + 1, &in_sweep, err, errlen);
        p = nl ? nl + 1 : NULL;
    }
    (void)save;
    free(copy);
    if (rc == 0 && !out->name) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        out->name = strdup(base);
        char *dot = out->name ? strrchr(out->name, '.') : NULL;
        if (dot && strcmp(dot, ".ini") == 0) *dot = '\0';
    }
    if (rc) mt_spec_free(out);
    return rc;
}

int mt_spec_parse(const char *path, struct mt_spec *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        snprintf(err, errlen, "%s: is a directory, not a sweep file", path);
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            char *grown = realloc(text, cap);
            if (!grown) {
                free(text);
                fclose(f);
                snprintf(err, errlen, "%s: out of memory", path);
                return -1;
            }
            text = grown;
        }
        memcpy(text + len, chunk, got);
        len += got;
    }
    int bad = ferror(f), saved = errno;
    fclose(f);
    if (bad) {
        free(text);
        snprintf(err, errlen, "%s: read error: %s", path, strerror(saved));
        return -1;
    }
    if (!text)
        text = strdup("");
    else
        text[len] = '\0';
    if (text && memchr(text, '\0', len)) {
        free(text);
        snprintf(err, errlen, "%s: not a text file (contains NUL bytes)", path);
        return -1;
    }
    int rc = text ? mt_spec_parse_text(path, text, out, err, errlen) : -1;
    free(text);
    return rc;
}

void mt_spec_free(struct mt_spec *s)
{
    for (size_t i = 0; i < s->nsections; i++) {
        struct mt_spec_section *sec = &s->sections[i];
        for (size_t k = 0; k < sec->nkeys; k++) {
            struct mt_util_strv v = {sec->keys[k].values, sec->keys[k].nvalues, 0};
            mt_util_strv_free(&v);
            free(sec->keys[k].name);
        }
        free(sec->keys);
        free(sec->workload);
        free(sec->label);
    }
    free(s->sections);
    free(s->path);
    free(s->text);
    free(s->name);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- expansion */

static int is_harness_key(const struct mt_workload *wl, const char *key)
{
    if (mt_params_index(wl, key) >= 0) return 0;
    for (size_t i = 0; i < sizeof harness_keys / sizeof harness_keys[0]; i++)
        if (strcmp(key, harness_keys[i]) == 0) return 1;
    return 0;
}

struct key_ref {
    const char *key; /* a config key, or a canonical value */
    size_t plan;     /* index of the plan, or of the value */
};

static int cmp_key_ref(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->plan > y->plan) - (x->plan < y->plan);
}

/* Checks one section against its plugin; fills its settings. */
static int check_section(const struct mt_spec *s, const struct mt_spec_section *sec,
                         const struct mt_workload *wl, struct mt_spec_settings *set, char *err,
                         size_t errlen)
{
    char why[1024];
    for (size_t k = 0; k < sec->nkeys; k++) {
        const struct mt_spec_key *key = &sec->keys[k];
        if (is_harness_key(wl, key->name)) {
            if (key->nvalues != 1)
                return fail(err, errlen, s->path, key->line,
                            "'%s' takes one value in a workload section", key->name);
            if (parse_setting(s->path, key->line, key->name, key->values[0], set, err, errlen))
                return -1;
            continue;
        }
        long idx = mt_params_index(wl, key->name);
        if (idx < 0) {
            const char *near = mt_params_suggest(wl, key->name);
            if (near)
                return fail(err, errlen, s->path, key->line,
                            "unknown parameter '%s' for workload '%s'; did you mean '%s'?",
                            key->name, wl->name, near);
            return fail(err, errlen, s->path, key->line,
                        "unknown parameter '%s' for workload '%s' (see: memtrade describe %s)",
                        key->name, wl->name, wl->name);
        }
        /* Canonical texts, so that `20, 20`, `0.1, 1e-1` or `1..3, 2` are caught: each
         * would run one configuration twice. Sorted, as a list may hold 100000 items. */
        struct key_ref *canon = calloc(key->nvalues, sizeof *canon);
        int rc = canon ? 0 : fail(err, errlen, s->path, key->line, "out of memory");
        for (size_t v = 0; rc == 0 && v < key->nvalues; v++) {
            size_t cap = strlen(key->values[v]) + 64;
            char *text = malloc(cap);
            canon[v] = (struct key_ref){text, v};
            if (!text)
                rc = fail(err, errlen, s->path, key->line, "out of memory");
            else if (mt_params_check_value(wl->name, &wl->params[idx], key->values[v], text, cap,
                                           why, sizeof why))
                rc = fail(err, errlen, s->path, key->line, "%s", why);
        }
        if (rc == 0) qsort(canon, key->nvalues, sizeof *canon, cmp_key_ref);
        for (size_t v = 1; rc == 0 && v < key->nvalues; v++)
            if (strcmp(canon[v - 1].key, canon[v].key) == 0)
                rc = fail(err, errlen, s->path, key->line,
                          "'%s' lists the value %s twice (items %zu and %zu): the same "
                          "configuration would run twice",
                          key->name, canon[v].key, canon[v - 1].plan + 1, canon[v].plan + 1);
        for (size_t v = 0; canon && v < key->nvalues; v++)
            free((char *)canon[v].key);
        free(canon);
        if (rc) return rc;
    }
    return 0;
}

/* Two sections giving one configuration would run it twice (two 'ok' rows for one
 * config key and repeat): refused with both sections' lines. Within one section the
 * per-key check above already makes every configuration distinct. */
static int refuse_duplicates(const struct mt_spec *s, const struct mt_plan *plans,
                             const size_t *section_of, size_t n, char *err, size_t errlen)
{
    struct key_ref *refs = malloc((n ? n : 1) * sizeof *refs);
    if (!refs) return fail(err, errlen, s->path, 1, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (plans[i].repeat == 0) refs[m++] = (struct key_ref){plans[i].config_key, i};
    qsort(refs, m, sizeof *refs, cmp_key_ref);
    int rc = 0;
    for (size_t i = 1; i < m && rc == 0; i++) {
        if (strcmp(refs[i - 1].key, refs[i].key) != 0) continue;
        const struct mt_spec_section *a = &s->sections[section_of[refs[i - 1].plan]],
                                     *b = &s->sections[section_of[refs[i].plan]];
        rc = fail(err, errlen, s->path, b->line,
                  "[%s%s%s] repeats a configuration of [%s%s%s] (line %zu): %s; remove it from "
                  "one of them (use repeats = N to run it again)",
                  b->workload, b->label ? "." : "", b->label ? b->label : "", a->workload,
                  a->label ? "." : "", a->label ? a->label : "", a->line, refs[i].key);
    }
    free(refs);
    return rc;
}

static int push_plan(struct mt_plan **plans, size_t *n, size_t *cap, struct mt_plan *p)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct mt_plan *grown = realloc(*plans, ncap * sizeof *grown);
        if (!grown) return -1;
        *plans = grown;
        *cap = ncap;
    }
    (*plans)[(*n)++] = *p;
    return 0;
}

int mt_spec_expand(const struct mt_spec *s, const struct mt_registry *reg, int threads_default,
                   uint64_t unknown_estimate, struct mt_plan **plans, size_t *n, char *err,
                   size_t errlen)
{
    *plans = NULL;
    *n = 0;
    size_t cap = 0, *section_of = NULL, section_cap = 0;
    if (s->nsections == 0)
        return fail(err, errlen, s->path, s->sweep_line ? s->sweep_line : 1,
                    "empty grid: no workload section");
    for (size_t si = 0; si < s->nsections; si++) {
        const struct mt_spec_section *sec = &s->sections[si];
        const struct mt_plugin *pl = mt_plugins_find(reg, sec->workload);
        if (!pl) {
            char why[1024];
            mt_plugins_explain_unknown(reg, sec->workload, why, sizeof why);
            fail(err, errlen, s->path, sec->line, "%s", why);
            goto fail_all;
        }
        const struct mt_workload *wl = &pl->desc;
        struct mt_spec_settings set = s->settings;
        if (check_section(s, sec, wl, &set, err, errlen)) goto fail_all;
        size_t repeats = set.repeats ? set.repeats : 1;
        /* Parameter keys of this section, in file order, and the seed default. */
        size_t nk = 0, total = 1;
        const struct mt_spec_key **pk = calloc(sec->nkeys + 1, sizeof *pk);
        if (!pk) goto oom;
        for (size_t k = 0; k < sec->nkeys; k++) {
            if (is_harness_key(wl, sec->keys[k].name)) continue;
            pk[nk++] = &sec->keys[k];
            total *= sec->keys[k].nvalues;
            if (total * repeats + *n > MAX_GRID) {
                free(pk);
                fail(err, errlen, s->path, sec->keys[k].line, "grid larger than %d runs", MAX_GRID);
                goto fail_all;
            }
        }
        int seed_given = 0;
        for (size_t k = 0; k < nk; k++)
            seed_given |= strcmp(pk[k]->name, "seed") == 0;
        size_t nkv = nk + 1;
        const char **keys = calloc(nkv, sizeof *keys), **vals = calloc(nkv, sizeof *vals);
        char seedtext[32];
        snprintf(seedtext, sizeof seedtext, "%llu", (unsigned long long)s->seed);
        for (size_t c = 0; keys && vals && c < total; c++) {
            /* Mixed-radix digits of c, first key most significant. */
            size_t rest = c, used = 0;
            for (size_t k = nk; k-- > 0;) {
                keys[k] = pk[k]->name;
                vals[k] = pk[k]->values[rest % pk[k]->nvalues];
                rest /= pk[k]->nvalues;
            }
            used = nk;
            if (!seed_given && s->has_seed && mt_params_index(wl, "seed") >= 0) {
                keys[used] = "seed";
                vals[used++] = seedtext;
            }
            for (size_t r = 0; r < repeats; r++) {
                struct mt_plan p = {.plugin = pl, .repeat = r};
                if (mt_params_resolve(wl, keys, vals, used, &p.params, err, errlen)) {
                    char why[1024];
                    snprintf(why, sizeof why, "%s", err);
                    fail(err, errlen, s->path, sec->line, "%s", why);
                    free(keys), free(vals), free(pk);
                    goto fail_all;
                }
                p.label = sec->label ? strdup(sec->label) : NULL;
                p.threads = set.threads ? set.threads : threads_default;
                p.threads_auto = !set.threads;
                p.timeout_s = set.timeout_s > 0 ? set.timeout_s : 0;
                p.mem_limit = set.mem_limit;
                p.grid_index = *n;
                if (mt_plan_finish(&p, s->seed, unknown_estimate, err, errlen)) {
                    char why[1024];
                    snprintf(why, sizeof why, "%s", err);
                    fail(err, errlen, s->path, sec->line, "[%s%s%s]: %s", sec->workload,
                         sec->label ? "." : "", sec->label ? sec->label : "", why);
                    mt_plan_free(&p);
                    free(keys), free(vals), free(pk);
                    goto fail_all;
                }
                if (*n == section_cap) {
                    size_t ncap = section_cap ? 2 * section_cap : 16;
                    size_t *grown = realloc(section_of, ncap * sizeof *grown);
                    if (grown) section_of = grown, section_cap = ncap;
                }
                if (*n == section_cap || push_plan(plans, n, &cap, &p)) {
                    mt_plan_free(&p);
                    free(keys), free(vals), free(pk);
                    goto oom;
                }
                section_of[*n - 1] = si;
            }
        }
        int ok = keys && vals;
        free(keys);
        free(vals);
        free(pk);
        if (!ok) goto oom;
    }
    if (refuse_duplicates(s, *plans, section_of, *n, err, errlen)) goto fail_all;
    free(section_of);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail_all:
    free(section_of);
    for (size_t i = 0; i < *n; i++)
        mt_plan_free(&(*plans)[i]);
    free(*plans);
    *plans = NULL;
    *n = 0;
    return -1;
}

int mt_spec_parse_shard(const char *text, size_t *index, size_t *count)
{
    int64_t i, n;
    char buf[64];
    const char *slash = strchr(text, '/');
    if (!slash || (size_t)(slash - text) >= sizeof buf) return -1;
    memcpy(buf, text, (size_t)(slash - text));
    buf[slash - text] = '\0';
    if (mt_util_parse_i64(buf, &i) || mt_util_parse_i64(slash + 1, &n) || n < 1 || i < 1 || i > n)
        return -1;
    *index = (size_t)i;
    *count = (size_t)n;
    return 0;
}
