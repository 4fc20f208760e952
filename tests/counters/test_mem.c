/* tests/counters/test_mem.c — RSS and peak RSS from /proc follow real memory.
 *
 * Mapping and touching 64 MiB raises rss_bytes by at least 64 MiB and peak_rss_bytes to
 * at least that; unmapping drops rss by the 64 MiB the test freed (no more, no less) but
 * not the peak; resetting the peak brings it back near the current RSS (when the kernel
 * allows clear_refs). The checks bound only the bytes this test maps, touches and frees:
 * whatever else the process grows by meanwhile (a sanitizer's shadow and quarantine
 * pages, libc's arenas) is not the code under test, so the growth has a lower bound only
 * and the exact amount is asserted on the drop, where nothing else moves.
 */
#include "check.h"

#include <sys/mman.h>
#include <unistd.h>

#define MIB (1024.0 * 1024.0)

int main(void)
{
    char err[512] = "";
    struct mt_memsnap m0, m1, m2, m3;
    MUST(mt_counters_mem(&m0, err, sizeof err), err);
    CHECK(m0.rss_bytes > 0 && m0.peak_rss_bytes >= m0.rss_bytes && m0.vm_bytes >= m0.rss_bytes);

    size_t len = 64u << 20;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    if (p == MAP_FAILED) return 1;
    for (size_t i = 0; i < len; i += 4096)
        p[i] = 1;
    MUST(mt_counters_mem(&m1, err, sizeof err), err);
    double grew = ((double)m1.rss_bytes - (double)m0.rss_bytes) / MIB;
    printf("rss %.1f MiB -> %.1f MiB (+%.1f), peak %.1f MiB\n", m0.rss_bytes / MIB,
           m1.rss_bytes / MIB, grew, m1.peak_rss_bytes / MIB);
    CHECK(grew >= 63.0);
    CHECK(m1.peak_rss_bytes >= m1.rss_bytes);
    CHECK(m1.vm_bytes >= m0.vm_bytes + len);

    munmap(p, len);
    MUST(mt_counters_mem(&m2, err, sizeof err), err);
    double dropped = ((double)m1.rss_bytes - (double)m2.rss_bytes) / MIB;
    printf("after munmap: rss %.1f MiB (-%.1f), peak %.1f MiB\n", m2.rss_bytes / MIB, dropped,
           m2.peak_rss_bytes / MIB);
    /* 64 MiB within the kernel's per-CPU RSS counter batches (64 pages a CPU) */
    CHECK(dropped >= 62.0 && dropped <= 66.0);
    /* the peak remembers, within the kernel's RSS counter slack (per-CPU batches) */
    CHECK(m2.peak_rss_bytes + (2u << 20) >= m1.rss_bytes);

    if (mt_counters_mem_reset_peak(err, sizeof err) == 0) {
        MUST(mt_counters_mem(&m3, err, sizeof err), err);
        printf("after reset: rss %.1f MiB, peak %.1f MiB\n", m3.rss_bytes / MIB,
               m3.peak_rss_bytes / MIB);
        CHECK(m3.peak_rss_bytes < m1.rss_bytes - (32u << 20));
    } else {
        printf("peak reset refused: %s\n", err);
        CHECK(err[0] != '\0');
    }
    return mt_check_status(check_failures);
}
