#!/bin/sh
# Readers create no side files they cannot share. A `memtrade query` by another user (or in
# a folder it cannot write: a read-only mount) reads a WAL database without creating -wal
# or -shm files (the defect: they stayed behind, owned by the reader, and the owner's next
# sweep failed "attempt to write a readonly database"; in a read-only folder the query
# failed "unable to open database file").
. "$MT_SOURCE_DIR/tests/reliability/lib.sh"
single_thread_spec one.ini <<'INI'
[t_ok]
INI
expect_rc 0 "$MT" sweep one.ini --no-heap
[ ! -e "$DB-wal" ] && [ ! -e "$DB-shm" ] || fail "the writer left side files"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    # Another user (nobody) in a folder everyone may write.
    chmod 755 "$TMP"
    chmod 1777 out
    mkdir -m 777 "$TMP/ncache"
    as_other() { XDG_CACHE_HOME="$TMP/ncache" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
    expect_rc 0 as_other "$MT" query --db "$DB" --format csv runs
    expect_out "t_ok"
    expect_eq "side files of another user" "$(find out -user 65534 | wc -l)" 0
    expect_rc 0 "$MT" sweep one.ini --no-heap --resume
    # A folder the reader cannot write.
    chmod 755 out
    expect_rc 0 as_other "$MT" query --db "$DB" --format csv runs
    expect_out "t_ok"
    expect_eq "files in the folder" "$(ls out | grep -c memtrade.db)" 1
else
    chmod 555 out
    "$MT" query --db "$DB" --format csv runs >"$TMP/last.out" 2>&1
    rc=$?
    chmod 755 out
    [ $rc = 0 ] || { cat "$TMP/last.out" >&2; fail "query in a read-only folder exited $rc"; }
    expect_out "t_ok"
fi
# The owner's reader beside a live writer shares the writer's side files (sees its rows).
slow_sweep_in_background 2 "" 1000
expect_rc 0 "$MT" query --db "$DB" --format csv runs --status running
expect_out "t_ok"
wait $pid || fail "the second sweep failed"
echo "ok: readers leave no side files"
