# tests/harness/profile.sh — `memtrade profile -- CMD`: any program as a run of workload
# `external`, with the statuses of any run.
. "$(dirname "$0")/lib.sh"

expect_rc 0 "$MT" profile --db "$DB" -- /bin/sh -c 'echo hello from the program'
expect_rc 1 "$MT" profile --db "$DB" -- /bin/sh -c 'exit 3'
expect_rc 1 "$MT" profile --db "$DB" --timeout 1 -- sleep 20
expect_rc 1 "$MT" profile --db "$DB" -- /bin/sh -c 'kill -SEGV $$'
expect_rc 1 "$MT" profile --db "$DB" -- /nonexistent/program
expect_eq statuses "$(sql "SELECT group_concat(status || ':' || coalesce(exit_code, '-') || ':' || coalesce(signal, '-'), ' ') FROM (SELECT * FROM runs ORDER BY id)")" \
    "ok:0:- failed:3:- timeout:-:15 crashed:-:11 failed:127:-"
expect_eq workload "$(sql "SELECT DISTINCT workload FROM runs")" "external"
expect_eq param "$(sql "SELECT value FROM params WHERE run_id = 2 AND key = 'command'")" "/bin/sh -c exit 3"
expect_eq output "$(sql "SELECT count(*) FROM logs WHERE run_id = 1 AND text LIKE 'hello from the program%'")" "1"
expect_eq rss "$(sql "SELECT count(*) FROM metrics WHERE name = 'peak_rss_bytes' AND value > 0")" "5"
echo "ok"
