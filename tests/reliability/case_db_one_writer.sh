#!/bin/sh
# Two `memtrade sweep --resume` on one database at the same time: only one harness writes
# a database at a time. The second is refused at once (exit 3) with the first one's pid,
# before it marks anything; the grid ends with exactly one ok row per configuration (the
# defect: 12 ok rows for 6 configurations, each harness marking the other's runs).
. "$MT_SOURCE_DIR/tests/reliability/lib.sh"
single_thread_spec grid.ini <<'INI'
[t_ok]
steps = 1..6
sleep_ms = 150
INI
"$MT" sweep grid.ini --resume --no-heap >first.out 2>&1 &
first=$!
wait_runs 1 $first
expect_rc 3 "$MT" sweep grid.ini --resume --no-heap
expect_out "another harness (pid $first) is writing this database"
expect_out "one harness writes a database at a time"
wait $first || { cat first.out >&2; fail "the first sweep failed"; }
expect_eq "ok rows" "$(sql "SELECT count(*) FROM runs WHERE status = 'ok'")" 6
expect_eq "rows" "$(sql "SELECT count(*) FROM runs")" 6
expect_eq "keys with two ok rows" \
    "$(sql "SELECT count(*) FROM (SELECT config_key FROM runs WHERE status = 'ok'
            GROUP BY config_key, repeat HAVING count(*) > 1)")" 0
# Once the first has ended, the lock is free again.
expect_rc 0 "$MT" sweep grid.ini --resume --no-heap
expect_out "6 skipped (already ok)"
# A harness killed with -9 leaves no lock behind (its children do not inherit it).
slow_sweep_in_background 7 2 5000
kill -9 $pid
wait $pid 2>/dev/null
expect_rc 0 "$MT" sweep grid.ini --resume --no-heap
expect_out "6 skipped (already ok)"
echo "ok: one writer per database"
