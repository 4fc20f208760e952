#!/bin/sh
# Another connection holds the database's write lock (BEGIN EXCLUSIVE in an sqlite3 shell)
# while a run ends. The harness waits for it with back-off and says what it waits for,
# then stores the run (the defect: after SQLite's 10 s busy timeout it exited 3, the
# finished run's events were deleted and its row stayed 'running'). When the wait bound
# (MEMTRADE_DB_WAIT) runs out, the events stay on disk and --resume stores them.
. "$MT_SOURCE_DIR/tests/reliability/lib.sh"
single_thread_spec one.ini <<'INI'
[t_ok]
steps = 1
sleep_ms = 1000
INI
# hold SECONDS: the write lock, from another connection (in the background; pid in $holder).
hold() {
    { echo "BEGIN EXCLUSIVE;"; echo "SELECT 'held';"; sleep "$1"; echo "COMMIT;"; } |
        sqlite3 "$DB" >"$TMP/holder.out" 2>&1 &
    holder=$!
    i=0
    until grep -q held "$TMP/holder.out"; do
        i=$((i + 1))
        [ $i -lt 200 ] || fail "the holder never got the lock"
        sleep 0.05
    done
}

# 1. Held for 12 s (past SQLite's old 10 s timeout) while the run ends: waited for, stored.
sweep_in_background sweep.out 1 one.ini --no-heap
hold 12
wait $pid
rc=$?
wait $holder
[ $rc = 0 ] || { cat sweep.out >&2; fail "sweep exited $rc, want 0"; }
grep -qF "another connection holds the database's write lock; waiting up to 600 s" sweep.out ||
    { cat sweep.out >&2; fail "the wait is not announced"; }
expect_eq "status" "$(sql "SELECT status FROM runs WHERE id = 1")" ok
expect_eq "val_bpb" "$(sql "SELECT value FROM metrics WHERE run_id = 1 AND name = 'val_bpb'")" 1.75

# 2. The wait bound runs out: exit 3, the events are kept, --resume stores the run as ok.
single_thread_spec two.ini <<'INI'
[t_ok]
steps = 2
sleep_ms = 500
INI
MEMTRADE_DB_WAIT=1 "$MT" sweep two.ini --no-heap >sweep2.out 2>&1 &
pid=$!
wait_runs 2 $pid
hold 6
wait $pid
rc=$?
[ $rc = 3 ] || { cat sweep2.out >&2; fail "sweep exited $rc, want 3"; }
grep -qF "run 2's events are kept in" sweep2.out || { cat sweep2.out >&2; fail "no word of the kept events"; }
wait $holder
expect_eq "left running" "$(sql "SELECT status FROM runs WHERE id = 2")" running
expect_eq "folders kept" "$(ls out/scratch | wc -l)" 1
expect_rc 0 "$MT" sweep two.ini --resume --no-heap
expect_out "1 runs stored from their events"
expect_out "1 skipped (already ok)"
expect_eq "stored by --resume" "$(sql "SELECT status FROM runs WHERE id = 2")" ok
expect_eq "its metric" "$(sql "SELECT value FROM metrics WHERE run_id = 2 AND name = 'val_bpb'")" 2.0
expect_eq "its samples" "$(sql "SELECT count(*) FROM samples WHERE run_id = 2")" 2
expect_eq "peak_rss_bytes" "$(sql "SELECT value > 0 FROM metrics WHERE run_id = 2 AND rank = -1
                                   AND name = 'peak_rss_bytes'")" 1
expect_eq "rows" "$(sql "SELECT count(*) FROM runs")" 2
expect_eq "folders left" "$(ls out/scratch | wc -l)" 0
echo "ok: a held lock loses nothing"
