#!/bin/sh
# A harness killed with -9 in the middle of a run leaves the run's scratch folder (its
# events so far). --resume stores what the run reported into its row (status
# 'interrupted', with the reason) and removes the folder (the defect: the folders piled
# up, never read, never removed). A folder of another database is left alone.
. "$MT_SOURCE_DIR/tests/reliability/lib.sh"
slow_sweep_in_background 1 3 1500
i=0
until grep -q '^S' out/scratch/run-1.$pid/events.0 2>/dev/null; do # the first sample
    i=$((i + 1))
    [ $i -lt 200 ] || { kill -9 $pid; fail "no sample written"; }
    sleep 0.05
done
kill -9 $pid
wait $pid 2>/dev/null
[ -d out/scratch/run-1.$pid ] || fail "the killed run left no folder"
# A folder another harness (another database, same output folder) left: not ours.
mkdir -p out/scratch/run-1.999999
printf 'db /elsewhere/other.db\nrun 1\nharness 999999\n' >out/scratch/run-1.999999/run.txt
expect_rc 0 "$MT" sweep slow.ini --resume --no-heap
expect_out "1 runs stored from their events"
expect_eq "first attempt" "$(sql "SELECT status FROM runs WHERE id = 1")" interrupted
expect_eq "reason" "$(sql "SELECT error LIKE '%stored from its scratch folder%' FROM runs WHERE id = 1")" 1
expect_eq "its samples" "$(sql "SELECT count(*) >= 1 FROM samples WHERE run_id = 1")" 1
expect_eq "no made-up rss" "$(sql "SELECT count(*) FROM metrics WHERE run_id = 1 AND name = 'peak_rss_bytes'")" 0
expect_eq "redo" "$(sql "SELECT status FROM runs WHERE id = 2")" ok
[ ! -d out/scratch/run-1.$pid ] || fail "the killed run's folder is still there"
[ -d out/scratch/run-1.999999 ] || fail "another database's folder was removed"
echo "ok: a killed run's folder is stored and removed by --resume"
