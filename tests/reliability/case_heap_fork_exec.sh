# case_heap_fork_exec.sh — `memtrade profile` of a program that forks and execs (here a
# shell whose child shell runs two programs): every process writes its own report, the
# descendants' sites and totals join the run, and nothing is lost (issue 14, part 4: the
# grandchildren truncated the main report, which then could not be read, and the run said
# plain ok). --no-follow-exec profiles the started process alone.
. "$MT_SOURCE_DIR/tests/reliability/lib.sh"
. "$MT_SOURCE_DIR/tests/reliability/heap_lib.sh"

heap_prog leak -O0 <<'C'
#include <stdlib.h>
int main(void)
{
    char *p = malloc(777777);
    p[0] = 1;
    return p[0] - 1; /* leaked: 777777 bytes */
}
C
expect_rc 0 "$MT" profile --db "$DB" -- /bin/sh -c "/bin/sh -c '$TMP/leak; $TMP/leak'; $TMP/leak"
expect_eq status "$(sql "SELECT status || ':' || coalesce(error, '') FROM runs WHERE id = 1")" "ok:"
set -- $(sites_vs_totals 1)
expect_eq "sites vs totals (allocs leaked)" "$1 $2" "$3 $4"
expect_eq processes "$(sql "SELECT value >= 4 FROM metrics WHERE run_id = 1 AND name = 'heap_processes'")" "1"
expect_eq leaks "$(sql "SELECT allocs, leaked_bytes FROM alloc_sites WHERE run_id = 1 AND bytes = 3 * 777777")" "3|2333331"
expect_eq unavailable "$(sql "SELECT count(*) FROM metrics WHERE run_id = 1 AND unavailable IS NOT NULL")" "0"

expect_rc 0 "$MT" profile --db "$DB" --no-follow-exec -- /bin/sh -c "$TMP/leak; $TMP/leak; true"
expect_eq status2 "$(sql "SELECT status || ':' || coalesce(error, '') FROM runs WHERE id = 2")" "ok:"
expect_eq not_followed "$(sql "SELECT count(*) FROM alloc_sites WHERE run_id = 2 AND bytes >= 777777")" "0"
set -- $(sites_vs_totals 2)
expect_eq "not followed: sites vs totals" "$1 $2" "$3 $4"
echo "ok"
