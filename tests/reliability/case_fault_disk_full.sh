#!/bin/sh
# A full scratch disk: the runs' event files cannot be written. The harness names the
# cause (ENOSPC and the folder), records the run 'interrupted' with it and stops the sweep
# with exit 4 (the defect: every run 'crashed', "child 0 ended without reporting (exit
# status 0)", and the sweep went on burning runs). The scratch folder is on a 16 KiB tmpfs
# (mounted in a user and mount namespace of its own, so no root is needed); the database
# is elsewhere.
. "$MT_SOURCE_DIR/tests/reliability/lib.sh"
mkdir -p small
# root mounts in a mount namespace of its own (no user namespace: a chroot, such as CI's
# bare root, may not create one); anyone else in a user and mount namespace
if [ "$(id -u)" = 0 ]; then ns="unshare -m"; else ns="unshare -rm"; fi
$ns sh -c "mount -t tmpfs -o size=16k tmpfs '$TMP/small'" 2>/dev/null ||
    { echo "SKIP: cannot mount a small tmpfs in a namespace of its own ($ns)"; exit 77; }
single_thread_spec big.ini <<'INI'
[t_ok]
steps = 1000, 999
INI
$ns sh -c "mount -t tmpfs -o size=16k tmpfs '$TMP/small' &&
    exec '$MT' sweep big.ini --no-heap --out '$TMP/small' --db '$DB'" >"$TMP/last.out" 2>&1
rc=$?
[ $rc = 4 ] || { cat "$TMP/last.out" >&2; fail "sweep exited $rc, want 4"; }
expect_out "run 1's measurements were lost: its event file could not be written in $TMP/small/scratch/run-1."
expect_out "No space left on device (ENOSPC"
expect_out "the sweep stops here"
expect_eq "rows (the sweep stopped)" "$(sql "SELECT count(*) FROM runs")" 1
expect_eq "status" "$(sql "SELECT status FROM runs WHERE id = 1")" interrupted
expect_eq "reason" "$(sql "SELECT error LIKE '%ENOSPC%' FROM runs WHERE id = 1")" 1
expect_eq "false crashes" "$(sql "SELECT count(*) FROM runs WHERE status = 'crashed'")" 0
echo "ok: a full scratch disk stops the sweep and says why"
