/* tests/harness/test_events.c — the event line codec and reader (harness/events.h):
 * exact bytes of known lines, random round trips (every byte but NUL), truncation that
 * never splits an escape, malformed lines rejected, partial lines held back. */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events.h"

#include "check.h"

static uint64_t rng = 0x1234567;
static unsigned next_u32(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)rng;
}

static void test_known_bytes(void)
{
    char buf[128];
    const char *f[] = {"a\tb", "c\\d\ne\r", ""};
    size_t n = mt_events_encode(buf, sizeof buf, 'M', f, 3);
    const char want[] = "M\ta\\tb\tc\\\\d\\ne\\r\t\n";
    CHECK(n == strlen(want));
    CHECK(strcmp(buf, want) == 0);
    buf[n - 1] = '\0';
    struct mt_event ev;
    CHECK(mt_events_decode(buf, &ev) == 0);
    CHECK(ev.tag == 'M' && ev.nfields == 3);
    CHECK(strcmp(ev.field[0], "a\tb") == 0);
    CHECK(strcmp(ev.field[1], "c\\d\ne\r") == 0);
    CHECK(strcmp(ev.field[2], "") == 0);
}

static void test_round_trip(void)
{
    for (int iter = 0; iter < 2000; iter++) {
        char fields[MT_EVENT_MAX_FIELDS][200];
        const char *fp[MT_EVENT_MAX_FIELDS];
        size_t n = next_u32() % (MT_EVENT_MAX_FIELDS + 1);
        for (size_t i = 0; i < n; i++) {
            size_t len = next_u32() % 199;
            for (size_t k = 0; k < len; k++) {
                unsigned r = next_u32() % 8;
                /* Bias towards the bytes that need escaping. */
                fields[i][k] = r == 0   ? '\t'
                               : r == 1 ? '\n'
                               : r == 2 ? '\\'
                               : r == 3 ? '\r'
                                        : (char)(1 + next_u32() % 255);
            }
            fields[i][len] = '\0';
            fp[i] = fields[i];
        }
        char line[MT_EVENT_LINE_MAX];
        size_t len = mt_events_encode(line, sizeof line, 'S', fp, n);
        CHECK(line[len - 1] == '\n');
        CHECK(memchr(line, '\n', len - 1) == NULL); /* one line, whatever the fields */
        line[len - 1] = '\0';
        struct mt_event ev;
        CHECK(mt_events_decode(line, &ev) == 0);
        CHECK(ev.tag == 'S');
        CHECK(ev.nfields == (n ? n : 0));
        for (size_t i = 0; i < n && i < ev.nfields; i++)
            CHECK(strcmp(ev.field[i], fields[i]) == 0);
    }
}

static void test_truncation(void)
{
    char big[20000];
    memset(big, '\n', sizeof big - 1); /* every byte escapes to two */
    big[sizeof big - 1] = '\0';
    const char *f[] = {"name", big};
    char line[MT_EVENT_LINE_MAX];
    size_t len = mt_events_encode(line, sizeof line, 'L', f, 2);
    CHECK(len <= MT_EVENT_LINE_MAX - 1);
    line[len - 1] = '\0';
    struct mt_event ev;
    CHECK(mt_events_decode(line, &ev) == 0);
    CHECK(ev.nfields == 2);
    CHECK(strcmp(ev.field[0], "name") == 0);
    size_t got = strlen(ev.field[1]);
    CHECK(got > 4000);
    for (size_t i = 0; i < got; i++)
        CHECK(ev.field[1][i] == '\n');
    /* A tiny buffer: still a well-formed line. */
    char tiny[8];
    len = mt_events_encode(tiny, sizeof tiny, 'M', f, 2);
    CHECK(len < sizeof tiny && tiny[len - 1] == '\n');
}

static void test_malformed(void)
{
    struct mt_event ev;
    char a[] = "";
    char b[] = "MM\tx";
    char c[] = "M\t1\t2\t3\t4\t5\t6\t7\t8\t9";
    char d[] = "P";
    CHECK(mt_events_decode(a, &ev) == -1);
    CHECK(mt_events_decode(b, &ev) == -1);
    CHECK(mt_events_decode(c, &ev) == -1);
    CHECK(mt_events_decode(d, &ev) == 0 && ev.nfields == 0);
    CHECK(mt_events_arity('M') == 3);
    CHECK(mt_events_arity('?') == 0);
    char n[24];
    CHECK(strcmp(mt_events_fmt_i64(n, LLONG_MIN), "-9223372036854775808") == 0);
    CHECK(strcmp(mt_events_fmt_i64(n, 0), "0") == 0);
    CHECK(strcmp(mt_events_fmt_i64(n, 1234567), "1234567") == 0);
}

/* Random garbage lines: the decoder never reads or writes outside the line, and every
 * field it returns lies inside it. (ASan builds make this a real memory check.) */
static void test_garbage(void)
{
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = next_u32() % 64;
        char *line = malloc(len + 1);
        static const char alphabet[] = "MSPL\t\\\nxyz0";
        for (size_t i = 0; i < len; i++)
            line[i] = (next_u32() % 3) ? alphabet[next_u32() % (sizeof alphabet - 1)]
                                       : (char)(1 + next_u32() % 255);
        line[len] = '\0';
        struct mt_event ev;
        if (mt_events_decode(line, &ev) == 0) {
            CHECK(ev.nfields <= MT_EVENT_MAX_FIELDS);
            for (size_t f = 0; f < ev.nfields; f++)
                CHECK(ev.field[f] >= line && ev.field[f] + strlen(ev.field[f]) <= line + len);
        }
        free(line);
    }
}

struct seen {
    int n;
    char last[64];
};

static int count(void *arg, const struct mt_event *ev)
{
    struct seen *s = arg;
    s->n++;
    snprintf(s->last, sizeof s->last, "%c:%s", ev->tag, ev->nfields ? ev->field[0] : "");
    return 0;
}

static void test_reader(void)
{
    char path[] = "/tmp/mt_events_testXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    struct mt_events_reader r;
    CHECK(mt_events_reader_init(&r, path) == 0);
    struct seen s = {0};
    const char *f[] = {"x", "1", "m"};
    CHECK(mt_events_write(fd, 'M', f, 3) == 0);
    CHECK(write(fd, "P\t1", 3) == 3); /* a partial line: held back */
    CHECK(mt_events_reader_poll(&r, count, &s) == 0);
    CHECK(s.n == 1 && strcmp(s.last, "M:x") == 0);
    CHECK(write(fd, "\t2\nZ\tunknown\nM\ttoo\tfew\n", 23) == 23);
    CHECK(mt_events_reader_poll(&r, count, &s) == 0);
    CHECK(s.n == 2 && strcmp(s.last, "P:1") == 0);
    CHECK(r.bad_lines == 2); /* unknown tag, wrong arity */
    CHECK(mt_events_reader_poll(&r, count, &s) == 0 && s.n == 2);
    close(fd);
    unlink(path);
    mt_events_reader_free(&r);
    /* A file that does not exist yet is not an error. */
    CHECK(mt_events_reader_init(&r, "/nonexistent/events.0") == 0);
    CHECK(mt_events_reader_poll(&r, count, &s) == 0);
    mt_events_reader_free(&r);
}

int main(void)
{
    test_known_bytes();
    test_round_trip();
    test_truncation();
    test_malformed();
    test_garbage();
    test_reader();
    return mt_check_status(failures);
}
