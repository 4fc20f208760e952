# case_heap_sites_sum.sh — raw stacks that resolve to the same frames (no line
# information) are one stored site whose figures add up: the sum over the stored sites of
# allocs and leaked bytes equals the run's totals (issue 14, part 1: the site upsert
# replaced instead of adding, keeping 1 of 3 allocations).
. "$MT_SOURCE_DIR/tests/reliability/lib.sh"
. "$MT_SOURCE_DIR/tests/reliability/heap_lib.sh"

heap_prog three -O0 <<'C'
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
    char *a = malloc(1000000), *b = malloc(2000000), *c = malloc(3000000);
    a[0] = b[0] = c[0] = 1;
    printf("%d\n", a[0] + b[0] + c[0]);
    return 0;
}
C
expect_rc 0 "$MT" profile --db "$DB" -- "$TMP/three"
# The three mallocs in main: one site (main has no lines), 3 blocks, 6000000 bytes,
# all live at the peak and at exit.
expect_eq main_site "$(sql "SELECT allocs, bytes, peak_bytes, leaked_bytes FROM alloc_sites WHERE run_id = 1 AND bytes >= 6000000")" \
    "3|6000000|6000000|6000000"
set -- $(sites_vs_totals 1)
expect_eq "sites vs totals (allocs leaked)" "$1 $2" "$3 $4"
expect_eq peak_sum "$(sql "SELECT sum(peak_bytes) = (SELECT value FROM metrics WHERE run_id = 1 AND name = 'peak_heap_bytes' AND category = '') FROM alloc_sites WHERE run_id = 1")" "1"

# A real training run (full mode): the same invariant, exactly, over thousands of sites.
expect_rc 0 "$MT" run baseline -p model=tiny -p steps=20 --heap full --db "$DB"
set -- $(sites_vs_totals 2)
expect_eq "baseline sites vs totals (allocs leaked)" "$1 $2" "$3 $4"
expect_eq baseline_peak "$(sql "SELECT sum(peak_bytes) = (SELECT value FROM metrics WHERE run_id = 2 AND name = 'peak_heap_bytes' AND category = '') FROM alloc_sites WHERE run_id = 2")" "1"
echo "ok ($(sql "SELECT count(*) || ' sites, ' || sum(allocs) || ' allocations' FROM alloc_sites WHERE run_id = 2") on the tiny baseline)"
