/* harness/events.c — codec and incremental reader for the child-to-parent event stream.
 * The format is documented in events.h. Not for: interpreting events (the runner does). */
#include "events.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t escaped_len(char c)
{
    return (c == '\\' || c == '\t' || c == '\n' || c == '\r') ? 2 : 1;
}

size_t mt_events_encode(char *buf, size_t cap, char tag, const char *const *fields, size_t n)
{
    size_t len = 0;
    size_t room = cap - 2; /* keep space for LF and NUL */
    buf[len++] = tag;
    for (size_t i = 0; i < n && i < MT_EVENT_MAX_FIELDS; i++) {
        if (len + 1 > room) break;
        buf[len++] = '\t';
        for (const char *p = fields[i] ? fields[i] : ""; *p; p++) {
            size_t need = escaped_len(*p);
            if (len + need > room) break;
            if (need == 2) {
                buf[len++] = '\\';
                buf[len++] = *p == '\t' ? 't' : *p == '\n' ? 'n' : *p == '\r' ? 'r' : '\\';
            } else {
                buf[len++] = *p;
            }
        }
    }
    buf[len++] = '\n';
    buf[len] = '\0';
    return len;
}

int mt_events_decode(char *line, struct mt_event *ev)
{
    if (!line[0] || (line[1] != '\0' && line[1] != '\t')) return -1;
    ev->tag = line[0];
    ev->nfields = 0;
    if (line[1] == '\0') return 0;
    char *in = line + 2, *out = line + 2;
    ev->field[ev->nfields++] = out;
    for (; *in; in++) {
        if (*in == '\t') {
            if (ev->nfields == MT_EVENT_MAX_FIELDS) return -1;
            *out++ = '\0';
            ev->field[ev->nfields++] = out;
        } else if (*in == '\\' && in[1]) {
            in++;
            *out++ = *in == 't' ? '\t' : *in == 'n' ? '\n' : *in == 'r' ? '\r' : *in;
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
    return 0;
}

size_t mt_events_arity(char tag)
{
    switch (tag) {
    case MT_EV_HELLO:
        return 4;
    case MT_EV_METRIC:
        return 3;
    case MT_EV_METRIC_NA:
        return 3;
    case MT_EV_SAMPLE:
        return 4;
    case MT_EV_LOG:
        return 3;
    case MT_EV_ERROR:
        return 2;
    case MT_EV_PROGRESS:
        return 2;
    case MT_EV_REGION:
        return 5;
    case MT_EV_COUNTER:
        return 4;
    case MT_EV_FACT:
        return 2;
    case MT_EV_DONE:
        return 3;
    case MT_EV_FATAL:
        return 4;
    default:
        return 0;
    }
}

static volatile sig_atomic_t first_write_errno; /* of this process; 0 = none failed */

int mt_events_write(int fd, char tag, const char *const *fields, size_t n)
{
    char buf[MT_EVENT_LINE_MAX];
    size_t len = mt_events_encode(buf, sizeof buf, tag, fields, n);
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, buf + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC; /* a write of 0 bytes: no room */
            if (!first_write_errno) first_write_errno = e;
            errno = e;
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

int mt_events_write_errno(void)
{
    return first_write_errno;
}

char *mt_events_fmt_double(char *buf, size_t cap, double v)
{
    snprintf(buf, cap, "%.17g", v);
    return buf;
}

char *mt_events_fmt_i64(char *buf, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t k = 0;
    if (v < 0) buf[k++] = '-';
    while (n)
        buf[k++] = tmp[--n];
    buf[k] = '\0';
    return buf;
}

int mt_events_reader_init(struct mt_events_reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->path = strdup(path);
    return r->path ? 0 : -1;
}

void mt_events_reader_free(struct mt_events_reader *r)
{
    free(r->path);
    free(r->partial);
    memset(r, 0, sizeof *r);
}

/* Appends `n` bytes to the partial-line buffer. */
static int partial_append(struct mt_events_reader *r, const char *p, size_t n)
{
    char *grown = realloc(r->partial, r->partial_len + n + 1);
    if (!grown) return -1;
    memcpy(grown + r->partial_len, p, n);
    r->partial = grown;
    r->partial_len += n;
    r->partial[r->partial_len] = '\0';
    return 0;
}

/* Decodes one complete line (NUL-terminated, LF removed) and hands it on if valid. */
static int dispatch(struct mt_events_reader *r, char *line, mt_events_fn fn, void *arg)
{
    struct mt_event ev;
    if (mt_events_decode(line, &ev) != 0 || mt_events_arity(ev.tag) != ev.nfields) {
        r->bad_lines++;
        return 0;
    }
    return fn(arg, &ev);
}

int mt_events_reader_poll(struct mt_events_reader *r, mt_events_fn fn, void *arg)
{
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    int result = 0;
    char chunk[65536];
    for (;;) {
        ssize_t got = pread(fd, chunk, sizeof chunk, r->offset);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            result = -1;
            break;
        }
        if (got == 0) break;
        r->offset += got;
        if (partial_append(r, chunk, (size_t)got) != 0) {
            result = -1;
            break;
        }
        /* Hand on every complete line; keep the tail. */
        char *start = r->partial, *nl;
        while ((nl = memchr(start, '\n', r->partial_len - (size_t)(start - r->partial)))) {
            *nl = '\0';
            int rc = dispatch(r, start, fn, arg);
            if (rc != 0 && result == 0) result = rc;
            start = nl + 1;
        }
        size_t rest = r->partial_len - (size_t)(start - r->partial);
        memmove(r->partial, start, rest);
        r->partial_len = rest;
        r->partial[rest] = '\0';
    }
    close(fd);
    return result;
}
