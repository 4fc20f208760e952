#!/bin/sh
# SIGHUP (a closed terminal or ssh session) stops the harness as SIGTERM does: the running
# run is killed and recorded 'interrupted', the harness exits 5 (the defect: the harness
# died of the signal and left the row 'running').
. "$MT_SOURCE_DIR/tests/reliability/lib.sh"
single_thread_spec hang.ini <<'INI'
[t_hang]
INI
sweep_in_background sweep.out 1 hang.ini --no-heap
sleep 0.3
kill -HUP $pid
wait $pid
rc=$?
[ $rc = 5 ] || { cat sweep.out >&2; fail "harness exited $rc after SIGHUP, want 5"; }
expect_eq "status" "$(sql "SELECT status FROM runs WHERE id = 1")" interrupted
expect_eq "running" "$(sql "SELECT count(*) FROM runs WHERE status = 'running'")" 0
echo "ok: SIGHUP stops like SIGTERM"
