/* plots/plot_gp.c — the plot generator's plumbing: strings, quoting, running gnuplot.
 *
 * What it is for: every string that reaches a gnuplot script or the HTML report passes
 * through here, so quoting lives in one place: gnuplot gets single-quoted strings ('' for
 * a quote, no other escapes; the terminal is noenhanced so ^ _ @ { } are literal), HTML
 * gets entities, data files get one clean line per field. It also finds gnuplot and runs
 * it as a child on one script, keeping its stderr. What it is not for: deciding what to
 * plot (plot_draw.c, plot_runs.c) or what the report says (plot_report.c).
 */
#define _GNU_SOURCE /* vasprintf */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plot_internal.h"

void pl_buf_printf(struct pl_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->oom) {
        va_end(ap2);
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            va_end(ap2);
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

void pl_buf_free(struct pl_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

char *pl_strdup(struct pl_ctx *ctx, const char *s)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) ctx->oom = 1;
    return d;
}

char *pl_asprintf(struct pl_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) {
        s = NULL;
        ctx->oom = 1;
    }
    va_end(ap);
    return s;
}

void *pl_grow(struct pl_ctx *ctx, void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 8;
    while (c < need)
        c *= 2;
    void *q = realloc(p, c * elem);
    if (!q) {
        ctx->oom = 1;
        return NULL;
    }
    *cap = c;
    return q;
}

/* Length of the valid UTF-8 sequence at s, or 0 when the byte does not start one. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n;
    if (s[0] < 0x80)
        return 1;
    else if ((s[0] & 0xe0) == 0xc0 && s[0] >= 0xc2)
        n = 2;
    else if ((s[0] & 0xf0) == 0xe0)
        n = 3;
    else if ((s[0] & 0xf8) == 0xf0 && s[0] <= 0xf4)
        n = 4;
    else
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return n;
}

/* Writes s to f as clean text: control characters become spaces, invalid UTF-8 bytes
 * become '?', at most max_chars characters (0: no limit, else an ellipsis ends it), and
 * each byte in `dup` is written twice (the quote-doubling of gnuplot strings). */
static void put_clean(FILE *f, const char *s, size_t max_chars, int dup)
{
    const unsigned char *p = (const unsigned char *)pl_s(s);
    size_t chars = 0;
    while (*p) {
        if (max_chars && chars == max_chars) {
            fputs("\xe2\x80\xa6", f);
            return;
        }
        size_t n = utf8_len(p);
        if (n == 0) {
            fputc('?', f);
            n = 1;
        } else if (n == 1 && (*p < 0x20 || *p == 0x7f)) {
            fputc(' ', f);
        } else {
            fwrite(p, 1, n, f);
            if (n == 1 && *p == dup) fputc(*p, f);
        }
        p += n;
        chars++;
    }
}

void pl_gp_str_max(FILE *f, const char *s, size_t max_chars)
{
    fputc('\'', f);
    put_clean(f, s, max_chars, '\'');
    fputc('\'', f);
}

void pl_gp_str(FILE *f, const char *s)
{
    pl_gp_str_max(f, s, 0);
}

void pl_dat_text(FILE *f, const char *s)
{
    if (!s || !*s) {
        fputc('-', f);
        return;
    }
    put_clean(f, s, 0, 0);
}

FILE *pl_html_open(struct pl_ctx *ctx, struct pl_html_frag *fr)
{
    *fr = (struct pl_html_frag){0};
    FILE *f = open_memstream(&fr->html, &fr->len);
    if (!f) ctx->oom = 1;
    return f;
}

void pl_html_close(struct pl_ctx *ctx, FILE *f, struct pl_html_frag *fr, struct pl_buf *dest)
{
    fclose(f);
    if (fr->html) pl_buf_printf(dest, "%s", fr->html);
    if (dest->oom) ctx->oom = 1;
    free(fr->html);
    fr->html = NULL;
}

/* The ASCII characters HTML wants written as entities, and their entities. */
static const char *const html_escapes[128] = {
    ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;", ['\''] = "&#39;"};

void pl_html(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)pl_s(s);
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 0) {
            fputs("\xef\xbf\xbd", f); /* U+FFFD for a byte that is not UTF-8 */
            p++;
            continue;
        }
        if (n == 1) {
            if (html_escapes[*p])
                fputs(html_escapes[*p], f);
            else if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
                fputc(' ', f); /* other control characters */
            else
                fputc(*p, f);
        } else {
            fwrite(p, 1, n, f);
        }
        p += n;
    }
}

/* Colour-blind-friendly palette (Okabe-Ito, then darker extras). */
static const char *const palette[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00",
                                      "#56b4e9", "#7f7f00", "#882255", "#332288", "#44aa99"};
const char *pl_color(size_t i)
{
    return palette[i % (sizeof palette / sizeof palette[0])];
}

int pl_marker(size_t i)
{
    static const int markers[] = {7, 5, 9, 11, 13, 15, 4, 6, 8, 10};
    return markers[i % (sizeof markers / sizeof markers[0])];
}

char *pl_safe_name(struct pl_ctx *ctx, const char *s)
{
    char *d = pl_strdup(ctx, pl_s(s));
    if (!d) return NULL;
    for (char *p = d; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            *p = '_';
    if (strlen(d) > 40) d[40] = 0;
    return d;
}

int pl_find_program(const char *name, char *path, size_t pathlen)
{
    if (strchr(name, '/')) {
        if (access(name, X_OK) != 0) return -1;
        snprintf(path, pathlen, "%s", name);
        return 0;
    }
    const char *env = getenv("PATH");
    if (!env) return -1;
    const char *p = env;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0 && (size_t)snprintf(path, pathlen, "%.*s/%s", (int)len, p, name) < pathlen) {
            struct stat st;
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0) return 0;
        }
        p += len;
        if (*p == ':') p++;
    }
    return -1;
}

FILE *pl_open(struct pl_ctx *ctx, const char *name, const char *suffix, char *err, size_t errlen)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.%s", ctx->plots_dir, name, suffix);
    FILE *f = fopen(path, "w");
    if (!f) snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return f;
}

void pl_gp_preamble(struct pl_ctx *ctx, FILE *f, const char *name, int width, int height)
{
    if (ctx->opts->format == MT_PLOT_SVG)
        fprintf(f,
                "set terminal svg noenhanced size %d,%d dynamic font 'DejaVu Sans,11' "
                "background '#ffffff'\n",
                width, height);
    else
        fprintf(f,
                "set terminal pngcairo noenhanced size %d,%d font 'DejaVu Sans,10' "
                "background '#ffffff'\n",
                width, height);
    fprintf(f, "set output '%s.%s'\n", name, ctx->ext);
    fputs("set datafile separator '\\t'\nset datafile missing 'NaN'\nset encoding utf8\n"
          "set grid lc rgb '#dddddd'\nset border lc rgb '#444444'\n"
          "set key outside right top box lc rgb '#bbbbbb'\n",
          f);
}

void pl_gp_title(FILE *f, const char *what, const struct pl_ctx *ctx, const char *extra)
{
    fputs("set title ", f);
    pl_gp_title_expr(f, what, ctx, extra);
    fputc('\n', f);
}

void pl_gp_title_expr(FILE *f, const char *what, const struct pl_ctx *ctx, const char *extra)
{
    pl_gp_str_max(f, what, 120);
    fputs(" . \"\\n\" . ", f);
    char line[1024];
    snprintf(line, sizeof line, "sweep %s \xe2\x80\x94 %s", pl_s(ctx->sweep_name),
             pl_s(ctx->machine));
    pl_gp_str_max(f, line, 140);
    if (extra && *extra) {
        fputs(" . \"\\n\" . ", f);
        pl_gp_str_max(f, extra, 140);
    }
}

static struct mt_plot_item *new_item(struct pl_ctx *ctx, const char *name, const char *title)
{
    struct mt_plot_result *r = ctx->res;
    size_t cap = r->n_items; /* items grow one at a time; capacity equals count */
    struct mt_plot_item *items = realloc(r->items, (cap + 1) * sizeof *items);
    if (!items) {
        ctx->oom = 1;
        return NULL;
    }
    r->items = items;
    struct mt_plot_item *it = &items[r->n_items++];
    memset(it, 0, sizeof *it);
    it->name = pl_strdup(ctx, name);
    it->title = pl_strdup(ctx, title);
    return it;
}

void pl_item_skip(struct pl_ctx *ctx, const char *name, const char *title, const char *fmt, ...)
{
    struct mt_plot_item *it = new_item(ctx, name, title);
    if (!it) return;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&it->skip, fmt, ap) < 0) {
        it->skip = NULL;
        ctx->oom = 1;
    }
    va_end(ap);
    ctx->res->n_skipped++;
}

/* Reads at most cap-1 bytes of a file into buf; returns the length. */
static size_t slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    if (f) {
        n = fread(buf, 1, cap - 1, f);
        fclose(f);
    }
    buf[n] = 0;
    return n;
}

void pl_run_gnuplot(struct pl_ctx *ctx, const char *name, const char *title)
{
    struct mt_plot_item *it = new_item(ctx, name, title);
    if (!it) return;
    char script[512], errfile[512], image[512], errpath[4700], imgpath[4700];
    snprintf(script, sizeof script, "%s.gp", name);
    snprintf(errfile, sizeof errfile, "%s.err", name);
    snprintf(image, sizeof image, "%s.%s", name, ctx->ext);
    snprintf(errpath, sizeof errpath, "%s/%s", ctx->plots_dir, errfile);
    snprintf(imgpath, sizeof imgpath, "%s/%s", ctx->plots_dir, image);
    unlink(imgpath);

    int status = -1, status_known = 1;
    pid_t pid = fork();
    if (pid == 0) {
        /* Child: only async-signal-safe calls until exec. */
        if (chdir(ctx->plots_dir) != 0) _exit(126);
        int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int devnull = open("/dev/null", O_RDWR);
        if (fd < 0 || devnull < 0) _exit(126);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(fd, 2);
        /* -d: ignore the user's ~/.gnuplot, so every machine draws the same plot */
        execl(ctx->gnuplot, "gnuplot", "-d", script, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) {
        pid_t w;
        while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
            ;
        /* A caller that reaps every child (SIGCHLD handler) took the status: judge by the
           image and stderr alone. */
        if (w < 0) status_known = 0;
    }
    char msg[2048];
    size_t n = slurp(errpath, msg, sizeof msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = 0;
    struct stat st;
    int have_image = stat(imgpath, &st) == 0 && st.st_size > 0;
    int exited_ok = status_known ? WIFEXITED(status) && WEXITSTATUS(status) == 0 : n == 0;
    if (pid < 0 || !exited_ok || !have_image) {
        char why[2200];
        if (pid < 0)
            snprintf(why, sizeof why, "cannot start gnuplot: %s", strerror(errno));
        else if (n > 0)
            snprintf(why, sizeof why, "gnuplot failed on %s: %s", script, msg);
        else if (!have_image && exited_ok)
            snprintf(why, sizeof why, "gnuplot wrote no image for %s", script);
        else
            snprintf(why, sizeof why, "gnuplot failed on %s (status %d)", script, status);
        it->failed = pl_strdup(ctx, why);
        ctx->res->n_failed++;
        return;
    }
    if (n > 0)
        it->warnings = pl_strdup(ctx, msg);
    else
        unlink(errpath);
    it->image = pl_asprintf(ctx, "plots/%s", image);
    ctx->res->n_drawn++;
}

void pl_finish(struct pl_ctx *ctx, FILE **dat, FILE **gp, const char *name, const char *title)
{
    fclose(*dat);
    fclose(*gp);
    *dat = *gp = NULL;
    pl_run_gnuplot(ctx, name, title);
}

/* Contract in plot_internal.h. */
int pl_open_pair(struct pl_ctx *ctx, const char *name, const char *title, FILE **dat, FILE **gp)
{
    char err[512];
    *dat = pl_open(ctx, name, "dat", err, sizeof err);
    *gp = *dat ? pl_open(ctx, name, "gp", err, sizeof err) : NULL;
    if (*gp) return 0;
    if (*dat) fclose(*dat);
    *dat = NULL;
    pl_item_skip(ctx, name, title, "%s", err);
    return -1;
}

/* Contract in plot_internal.h. */
void pl_dat_num(FILE *f, double v, const char *sep)
{
    if (isfinite(v))
        fprintf(f, "%s%.10g", sep, v);
    else
        fprintf(f, "%sNaN", sep);
}
