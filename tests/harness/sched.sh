# tests/harness/sched.sh — --jobs within --mem-budget: runs whose estimates do not fit
# together run one after the other; runs that fit overlap; a run larger than the whole
# budget runs alone with a warning. (t_ok estimates `steps` MiB.)
. "$(dirname "$0")/lib.sh"

single_thread_spec j.ini <<'INI'
[t_ok]
steps = 2
sleep_ms = 150
note = a, b, c
INI
# Budget 3 MiB, 2 MiB each: one at a time although --jobs 3.
expect_rc 0 "$MT" sweep j.ini --db "$DB" --no-heap --jobs 3 --mem-budget 3M
expect_eq serial "$(sql "SELECT count(*) FROM runs a JOIN runs b ON b.id = a.id + 1 WHERE b.started_at >= a.finished_at")" "2"
# Budget 8 MiB: all three at once.
expect_rc 0 "$MT" sweep j.ini --db "$TMP/p.db" --no-heap --jobs 3 --mem-budget 8MiB
DB=$TMP/p.db
expect_eq parallel "$(sql "SELECT count(*) FROM runs a JOIN runs b ON b.id > a.id WHERE b.started_at < a.finished_at")" "3"
# Larger than the budget: alone, with a warning, and still ok.
expect_rc 0 "$MT" sweep j.ini --db "$TMP/w.db" --no-heap --jobs 2 --mem-budget 1M
expect_out "needs about 2.0 MiB, more than the budget 1.0 MiB; running it alone"
echo "ok"
