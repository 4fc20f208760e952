/* tests/harness/test_phaserss.c — the kernel's resident peak per phase
 * (harness/child/phaserss.h): a phase that touches 48 MiB and one that touches 4 MiB
 * after it get peaks 40+ MiB apart (the reset at the second phase's start worked), a
 * phase entered twice keeps its larger peak, the whole run's peak survives the resets
 * that lower getrusage's, names too long to keep are not reported, and an end without a
 * begin changes nothing. Where the kernel refuses the reset every phase is reported
 * unavailable with its reason, never with a whole-run figure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "child/phaserss.h"

#include "check.h"

#define MIB ((size_t)1 << 20)

/* Makes `bytes` resident (every page written), then returns them to the kernel. Mapped
 * directly, not through malloc, so that no allocator (glibc's, or a sanitizer's
 * quarantine) keeps them resident after the phase. */
static void touch(size_t bytes)
{
    volatile char *p =
        mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    for (size_t i = 0; i < bytes; i += 4096)
        p[i] = (char)i;
    munmap((void *)p, bytes);
}

struct seen {
    size_t n;
    char name[4][64];
    uint64_t bytes[4];
    const char *why[4];
};

static void collect(void *user, const char *phase, uint64_t bytes, const char *why)
{
    struct seen *s = user;
    if (s->n < 4) {
        snprintf(s->name[s->n], sizeof s->name[0], "%s", phase);
        s->bytes[s->n] = bytes;
        s->why[s->n] = why;
    }
    s->n++;
}

int main(void)
{
    struct mt_phase_rss r;
    mt_phase_rss_init(&r);
    mt_phase_rss_end(&r, "never_begun"); /* no phase open: nothing recorded */
    CHECK(r.n == 0);

    mt_phase_rss_begin(&r, "big");
    touch(48 * MIB);
    mt_phase_rss_end(&r, "big");
    mt_phase_rss_begin(&r, "small");
    touch(4 * MIB);
    mt_phase_rss_end(&r, "small");
    mt_phase_rss_begin(&r, "big"); /* entered again, with less: keeps 48 MiB's peak */
    touch(16 * MIB);
    mt_phase_rss_end(&r, "big");
    char longname[80];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    mt_phase_rss_begin(&r, longname);
    mt_phase_rss_end(&r, longname);

    struct seen s = {0};
    mt_phase_rss_foreach(&r, collect, &s);
    CHECK(s.n == 2);
    CHECK(strcmp(s.name[0], "big") == 0 && strcmp(s.name[1], "small") == 0);
    if (r.why[0]) {
        printf("the kernel refuses the reset here: %s\n", r.why);
        CHECK(s.why[0] == r.why && s.why[1] == r.why);
    } else {
        CHECK(s.why[0] == NULL && s.why[1] == NULL);
        printf("big %llu small %llu whole %llu bytes\n", (unsigned long long)s.bytes[0],
               (unsigned long long)s.bytes[1], (unsigned long long)r.whole);
        CHECK(s.bytes[0] >= 48 * MIB);
        CHECK(s.bytes[1] >= 4 * MIB);
        CHECK(s.bytes[0] > s.bytes[1] + 40 * MIB);
        CHECK(r.whole >= s.bytes[0]);
        /* getrusage saw only the last reset's peak; the kept one is the run's */
        struct rusage ru;
        CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
        long long self = (long long)ru.ru_maxrss * 1024;
        CHECK(self < (long long)s.bytes[0]);
        CHECK(mt_phase_rss_whole(&r, self) == (long long)r.whole);
    }
    CHECK(mt_phase_rss_whole(&r, (long long)r.whole + 1) == (long long)r.whole + 1);
    if (failures) fprintf(stderr, "%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
