# tests/harness/profile.sh — `memtrade profile -- CMD`: any program as a run of workload
# `external`, with the statuses of any run.
. "$(dirname "$0")/lib.sh"

expect_rc 0 "$MT" profile --db "$DB" -- /bin/sh -c 'echo hello from the program'
expect_rc 1 "$MT" profile --db "$DB" -- /bin/sh -c 'exit 3'
expect_rc 1 "$MT" profile --db "$DB" --timeout 1 -- sleep 20
expect_rc 1 "$MT" profile --db "$DB" -- /bin/sh -c 'kill -SEGV $$'
expect_rc 2 "$MT" profile --db "$DB" -- /nonexistent/program # refused: no run
expect_out "cannot execute /nonexistent/program"
expect_eq statuses "$(sql "SELECT group_concat(status || ':' || coalesce(exit_code, '-') || ':' || coalesce(signal, '-'), ' ') FROM (SELECT * FROM runs ORDER BY id)")" \
    "ok:0:- failed:3:- timeout:-:15 crashed:-:11"
expect_eq workload "$(sql "SELECT DISTINCT workload FROM runs")" "external"
expect_eq param "$(sql "SELECT value FROM params WHERE run_id = 2 AND key = 'command'")" "/bin/sh -c exit 3"
expect_eq output "$(sql "SELECT count(*) FROM logs WHERE run_id = 1 AND text LIKE 'hello from the program%'")" "1"
expect_eq rss "$(sql "SELECT count(*) FROM metrics WHERE name = 'peak_rss_bytes' AND value > 0")" "4"

# With the heap profiler (absent from AddressSanitizer builds, which own malloc): a
# program's sites, and a plugin run whose parameters survive the child's re-exec.
if [ "${MT_ASAN:-0}" = 1 ] || [ ! -e "${MT_BINARY_DIR:?}/lib/libmt_heap.so" ]; then
    echo "ok (heap profiler parts skipped: ASan build or no libmt_heap.so)"
    exit 0
fi
expect_rc 0 "$MT" profile --db "$DB" -- ls -la /usr
expect_eq sites "$(sql "SELECT count(*) > 0 FROM alloc_sites WHERE run_id = 5")" "1"
expect_eq peak "$(sql "SELECT count(*) FROM metrics WHERE run_id = 5 AND name = 'peak_heap_bytes' AND category = '' AND value > 0")" "1"
# dash may leave through _exit, before any exit report: the totals are then unavailable
# with the reason, never 0.
expect_eq incomplete "$(sql "SELECT (value IS NULL AND unavailable LIKE 'heap report incomplete:%') OR value > 0 FROM metrics WHERE run_id = 1 AND name = 'peak_heap_bytes' AND category = ''")" "1"
expect_rc 0 "$MT" run t_ok -p steps=5 --heap full --db "$DB"
expect_eq steps "$(sql "SELECT value FROM metrics WHERE run_id = 6 AND name = 'model_bytes'")" "20480.0"
expect_eq heap "$(sql "SELECT count(*) FROM metrics WHERE run_id = 6 AND name = 'peak_heap_bytes' AND category = '' AND value > 0")" "1"
expect_eq timeline "$(sql "SELECT count(*) > 0 FROM samples WHERE run_id = 6 AND series = 'heap.live' AND category = ''")" "1"
expect_eq fact "$(sql "SELECT count(*) FROM logs WHERE run_id = 6 AND text = 'fact heap_profiler=full'")" "1"
echo "ok"
