/* harness/util.c — the helpers declared in util.h. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int mt_util_parse_bytes(const char *text, uint64_t *out)
{
    while (isspace((unsigned char)*text))
        text++;
    if (!isdigit((unsigned char)*text) && *text != '.') return -1;
    errno = 0;
    char *end;
    double v = strtod(text, &end);
    if (errno || end == text || !isfinite(v) || v < 0) return -1;
    while (isspace((unsigned char)*end))
        end++;
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {{"", 1},
                 {"b", 1},
                 {"k", 1024.0},
                 {"kb", 1024.0},
                 {"kib", 1024.0},
                 {"m", 1048576.0},
                 {"mb", 1048576.0},
                 {"mib", 1048576.0},
                 {"g", 1073741824.0},
                 {"gb", 1073741824.0},
                 {"gib", 1073741824.0},
                 {"t", 1099511627776.0},
                 {"tb", 1099511627776.0},
                 {"tib", 1099511627776.0}};
    char suffix[8];
    size_t n = strlen(end);
    while (n && isspace((unsigned char)end[n - 1]))
        n--;
    if (n >= sizeof suffix) return -1;
    memcpy(suffix, end, n);
    suffix[n] = '\0';
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(suffix, units[i].suffix) == 0) {
            double bytes = v * units[i].mult;
            if (bytes >= 18446744073709551616.0) return -1;
            *out = (uint64_t)llround(bytes);
            return 0;
        }
    }
    return -1;
}

int mt_util_parse_seconds(const char *text, double *out)
{
    errno = 0;
    char *end;
    double v = strtod(text, &end);
    if (errno || end == text || !isfinite(v) || v < 0) return -1;
    double mult = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mult = 60, end++;
    else if (*end == 'h')
        mult = 3600, end++;
    if (*end) return -1;
    *out = v * mult;
    return 0;
}

char *mt_util_fmt_bytes(char *buf, size_t cap, double bytes)
{
    static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (bytes >= 1024 && u + 1 < sizeof names / sizeof names[0])
        bytes /= 1024, u++;
    if (u == 0)
        snprintf(buf, cap, "%.0f B", bytes);
    else
        snprintf(buf, cap, "%.1f %s", bytes, names[u]);
    return buf;
}

size_t mt_util_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 255 || lb > 255) return (size_t)-1 / 2;
    /* Optimal string alignment distance: three rows suffice. */
    size_t rows[3][256];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            if (prev[j - 1] + cost < best) best = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *mt_util_nearest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = mt_util_edit_distance(word, candidates[i]);
        if (d < best_d) best_d = d, best = candidates[i];
    }
    size_t len = strlen(word);
    size_t limit = len / 3 > 2 ? len / 3 : 2;
    return best && best_d <= limit ? best : NULL;
}

static const char *sort_word; /* qsort has no argument: the word being compared to */

static int by_distance(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t dx = mt_util_edit_distance(sort_word, x), dy = mt_util_edit_distance(sort_word, y);
    return dx != dy ? (dx < dy ? -1 : 1) : strcmp(x, y);
}

char *mt_util_names_nearest_first(const char *word, const char *const *names, size_t n, char *buf,
                                  size_t cap)
{
    buf[0] = '\0';
    const char **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) return buf;
    memcpy(sorted, names, n * sizeof *sorted);
    sort_word = word;
    qsort(sorted, n, sizeof *sorted, by_distance);
    size_t len = 0;
    for (size_t i = 0; i < n && len + 4 < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", sorted[i]);
        if (w < 0 || (size_t)w >= cap - len) {
            snprintf(buf + (cap > 4 ? cap - 4 : 0), 4, "...");
            break;
        }
        len += (size_t)w;
    }
    free(sorted);
    return buf;
}

int mt_util_parse_i64(const char *text, int64_t *out)
{
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end) return -1;
    *out = v;
    return 0;
}

int mt_util_parse_double(const char *text, double *out)
{
    errno = 0;
    char *end;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

char *mt_util_fmt_double_short(char *buf, size_t cap, double v)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

char *mt_util_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int mt_util_strv_push(struct mt_util_strv *a, const char *s)
{
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        char **grown = realloc(a->v, cap * sizeof *grown);
        if (!grown) return -1;
        a->v = grown;
        a->cap = cap;
    }
    if (!(a->v[a->n] = strdup(s))) return -1;
    a->v[++a->n] = NULL;
    return 0;
}

void mt_util_strv_free(struct mt_util_strv *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    *a = (struct mt_util_strv){0};
}
