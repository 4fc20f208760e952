# tests/reliability/case_tiny_faults.sh — the earlier promises, end to end on a real
# workload (baseline, the tiny model) rather than the test plugins: a run past its
# --timeout is recorded `timeout`, one over --mem-limit `oom`, one killed by a signal
# `crashed` with the signal named, and the sweep goes on after each; a harness killed with
# kill -9 leaves a consistent database that --resume completes without duplicates; a
# malformed sweep names its file and line and runs nothing.
. "$(dirname "$0")/lib.sh"
B="baseline -p eval_tokens=1024 --threads 1 --no-heap --db $DB"

expect_rc 1 "$MT" run $B -p model=tiny -p steps=1000000 --timeout 2s
expect_eq timeout "$(sql "SELECT status FROM runs WHERE id = 1")" "timeout"
# oom: the allocation of the model's slabs fails under the limit (small, 60 MiB); under
# ASan only the resident-size watchdog applies, so there the case is a plain ok run
if [ "${MT_ASAN:-0}" = 1 ]; then
  expect_rc 0 "$MT" run $B -p model=tiny -p steps=3
else
  expect_rc 1 "$MT" run $B -p model=small -p steps=5 --mem-limit 60M
  expect_eq oom "$(sql "SELECT status || ': ' || error FROM runs WHERE id = 2")" \
    "oom: out of memory allocating the model slabs"
  # a limit the program cannot even be loaded in: oom too, with the reason, not "crashed"
  expect_rc 1 "$MT" run $B -p model=tiny -p steps=5 --mem-limit 8M
  expect_eq "oom at start" "$(sql "SELECT status FROM runs WHERE id = 3")" "oom"
  expect_eq "why" "$(sql "SELECT error LIKE '%could not start within the memory limit 8.0 MiB%' FROM runs WHERE id = 3")" 1
  sql "DELETE FROM runs WHERE id = 3"
fi

# crashed: the child of a 2-run sweep gets SIGSEGV; the second run still runs
single_thread_spec c.ini crash <<'INI'
[baseline]
model = tiny
steps = 1000000, 3
eval_tokens = 1024
INI
sweep_in_background c.log 3 c.ini --db "$DB" --no-heap
sleep 0.5
child=$(child_pids | head -n 1)
[ -n "$child" ] || { kill -9 $pid; fail "no child found"; }
kill -SEGV "$child"
wait $pid
expect_eq "sweep exit" "$?" "1"
expect_eq crashed "$(sql "SELECT status || ':' || signal FROM runs WHERE id = 3")" "crashed:11"
expect_eq "next run" "$(sql "SELECT status FROM runs WHERE id = 4")" "ok"

# kill -9 of the harness, then --resume: every configuration ok exactly once
single_thread_spec k.ini killed <<'INI'
[baseline]
model = tiny
steps = 200, 201, 202
eval_tokens = 1024
INI
sweep_in_background k.log 5 k.ini --db "$DB" --no-heap
kill -9 $pid
wait $pid 2>/dev/null
expect_eq integrity "$(sql "PRAGMA integrity_check")" "ok"
expect_rc 0 "$MT" sweep k.ini --db "$DB" --no-heap --resume
expect_eq "ok once each" "$(sql "SELECT count(*) || '/' || count(DISTINCT config_key) FROM runs r WHERE status = 'ok' AND EXISTS (SELECT 1 FROM sweeps s WHERE s.id = r.sweep_id AND s.name = 'killed')")" "3/3"

# malformed: file:line and the nearest name, nothing run, nothing written
printf '[baseline]\nmodel = tiny\nstpes = 3\n' >bad.ini
before=$(hash "$DB")
expect_rc 2 "$MT" sweep bad.ini --db "$DB"
expect_out "bad.ini:3: unknown parameter 'stpes'"
expect_out "did you mean 'steps'?"
expect_eq "db untouched" "$(hash "$DB")" "$before"
echo ok
