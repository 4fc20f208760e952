# tests/harness/interrupt.sh — SIGINT to the harness mid-sweep: the running runs are
# killed and recorded `interrupted`, no run starts after, the sweep exits 5 and the
# database is consistent; --resume then finishes the grid.
. "$(dirname "$0")/lib.sh"

single_thread_spec i.ini <<'INI'
[t_ok]
steps = 10
sleep_ms = 200
note = a, b, c, d
INI
sweep_in_background i.log 2 i.ini --db "$DB" --no-heap --jobs 2
sleep 0.3
kill -INT $pid
wait $pid
rc=$?
expect_eq exit "$rc" "5"
expect_eq integrity "$(sql "PRAGMA integrity_check")" "ok"
expect_eq statuses "$(sql "SELECT group_concat(status, ' ') FROM runs")" "interrupted interrupted"
expect_eq errors "$(sql "SELECT count(*) FROM runs WHERE error LIKE 'harness interrupted%' AND wall_s < 1.9")" "2"
[ "$(sql "SELECT count(*) FROM samples WHERE series = 'train_loss'")" -gt 0 ] || fail "interrupted runs lost their samples"
expect_rc 0 "$MT" sweep i.ini --db "$DB" --no-heap --jobs 2 --resume
expect_eq ok "$(sql "SELECT count(*) FROM runs WHERE status = 'ok'")" "4"
echo "ok"
