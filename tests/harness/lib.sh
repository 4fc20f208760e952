# tests/harness/lib.sh — shared by the harness integration tests (sourced).
# Arguments of every test: MEMTRADE_BINARY TEST_PLUGIN_DIR BAD_PLUGIN_DIR.
set -u
MT=$1
PLUGDIR=$2
BADDIR=$3
TMP=$(mktemp -d /tmp/mt_harness_test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export MEMTRADE_PLUGIN_PATH=$PLUGDIR
export XDG_CACHE_HOME=$TMP/cache
unset MEMTRADE_DB MEMTRADE_LAUNCHER
DB=$TMP/out/memtrade.db
cd "$TMP" || exit 1

# need_heap_plugin NAME: skip (exit 77, as ctest reads it) in an ASan build, where the heap
# profiler cannot preload, or where plugin NAME was not built; else point memtrade at the
# build's plugins.
need_heap_plugin() {
    if [ "${MT_ASAN:-0}" = 1 ] || [ ! -e "${MT_BINARY_DIR:?}/plugins/$1.so" ]; then
        echo "skipped: ASan build (the heap profiler cannot preload) or no $1 plugin"
        exit 77
    fi
    export MEMTRADE_PLUGIN_PATH=$MT_BINARY_DIR/plugins
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# expect_eq WHAT GOT WANT
expect_eq() {
    [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

# expect_rc WANT COMMAND...: runs the command, stdout+stderr to $TMP/last.out.
expect_rc() {
    want=$1
    shift
    "$@" >"$TMP/last.out" 2>&1
    got=$?
    [ "$got" = "$want" ] || { cat "$TMP/last.out" >&2; fail "'$*' exited $got, want $want"; }
}

# expect_out TEXT: the last command's output contains TEXT.
expect_out() {
    grep -qF -- "$1" "$TMP/last.out" || { cat "$TMP/last.out" >&2; fail "output lacks '$1'"; }
}

sql() {
    sqlite3 -batch -noheader "$DB" "$1"
}

# hash FILE: content hash, or "absent".
hash() {
    if [ -e "$1" ]; then sha256sum "$1" | cut -d' ' -f1; else echo absent; fi
}

# wait_runs N PID: waits until the database has N runs (the harness PID started them).
wait_runs() {
    i=0
    while [ "$(sql "SELECT count(*) FROM runs" 2>/dev/null || echo 0)" -lt "$1" ]; do
        i=$((i + 1))
        [ $i -lt 200 ] || { kill -9 "$2"; fail "run $1 never started"; }
        sleep 0.05
    done
}

# sweep_in_background LOG N ARGS...: starts `memtrade sweep ARGS` in the background, its
# output in LOG, and returns once the database holds N runs; $pid is the harness's pid.
sweep_in_background() {
    _sib_log=$1 _sib_n=$2
    shift 2
    "$MT" sweep "$@" >"$_sib_log" 2>&1 &
    pid=$!
    wait_runs "$_sib_n" $pid
}

# single_thread_spec FILE [NAME]: writes sweep file FILE: a [sweep] section (named NAME
# when given) with one thread per run, then the workload sections read from stdin.
single_thread_spec() {
    {
        echo "[sweep]"
        [ $# -lt 2 ] || echo "name = $2"
        echo "threads = 1"
        cat
    } >"$1"
}

# slow_sweep_in_background N STEPS SLEEP_MS: writes slow.ini (one t_ok run of STEPS steps,
# the plugin's default when empty, sleeping SLEEP_MS per step) and starts it with
# sweep_in_background, output discarded, heap profiler off.
slow_sweep_in_background() {
    {
        echo "[t_ok]"
        [ -z "$2" ] || echo "steps = $2"
        echo "sleep_ms = $3"
    } | single_thread_spec slow.ini
    sweep_in_background /dev/null "$1" slow.ini --no-heap
}

# child_pids: the pids of run children started for this test (their command line names
# `__child` and this test's folder); read from /proc, since procps may be absent.
child_pids() {
    for f in /proc/[0-9]*/cmdline; do
        if tr '\0' ' ' <"$f" 2>/dev/null | grep -q "__child.*$TMP"; then
            p=${f#/proc/}
            echo "${p%/cmdline}"
        fi
    done
}

# witness_pairs: the SQL tail (FROM ... WHERE) of the (run, phase, category) rows where the
# plan the harness stored (issue 21) and the heap profiler's peak of the phase's region
# meet, in the categories a plan derives (workspace and other are measured, not planned).
witness_pairs="FROM metrics p JOIN regions g ON g.run_id = p.run_id AND g.rank = 0
       AND p.name = 'plan_' || g.path || '_peak_bytes'
       JOIN region_counters c ON c.region_id = g.id AND c.counter = 'heap_peak_bytes'
       AND c.category = p.category
       WHERE p.rank = -1 AND p.category IN ('weights', 'gradients', 'optimizer', 'activations',
       'act_grads', 'kv_cache', 'data')"
