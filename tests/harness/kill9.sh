# tests/harness/kill9.sh — kill -9 of the harness in the middle of a sweep: the database
# stays consistent, and --resume completes the grid with exactly one ok row per
# configuration and no duplicates.
. "$(dirname "$0")/lib.sh"

single_thread_spec k.ini killme <<'INI'
[t_ok]
steps = 1
sleep_ms = 1000
note = a, b, c, d
INI
sweep_in_background k1.log 2 k.ini --db "$DB" --no-heap
kill -9 $pid
wait $pid 2>/dev/null
sleep 0.2 # PR_SET_PDEATHSIG takes the child down with the harness

expect_eq integrity "$(sql "PRAGMA integrity_check")" "ok"
rows=$(sql "SELECT group_concat(id || ':' || status, ' ') FROM runs")
expect_eq "running (rows $rows)" "$(sql "SELECT count(*) FROM runs WHERE status = 'running'")" "1"
# children of the killed harness still alive
expect_eq orphans "$(child_pids | wc -l)" "0"

expect_rc 0 "$MT" sweep k.ini --db "$DB" --no-heap --resume
expect_out "1 runs left 'running' by an earlier harness marked interrupted"
expect_eq integrity2 "$(sql "PRAGMA integrity_check")" "ok"
expect_eq ok "$(sql "SELECT count(*) FROM runs WHERE status = 'ok'")" "4"
expect_eq distinct "$(sql "SELECT count(DISTINCT config_key || '#' || repeat) FROM runs WHERE status = 'ok'")" "4"
expect_eq running2 "$(sql "SELECT count(*) FROM runs WHERE status = 'running'")" "0"
expect_eq interrupted "$(sql "SELECT count(*) FROM runs WHERE status = 'interrupted'")" "1"

# A second --resume has nothing left to do and adds no row.
before=$(sql "SELECT count(*) FROM runs")
expect_rc 0 "$MT" sweep k.ini --db "$DB" --no-heap --resume
expect_out "4 skipped"
expect_eq rows "$(sql "SELECT count(*) FROM runs")" "$before"
echo "ok"
