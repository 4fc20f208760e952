# tests/reliability/heap_lib.sh — shared by the case_heap_* cases (sourced after lib.sh):
# skips where the preloaded heap profiler cannot run (ASan builds, no libmt_heap.so) or
# there is no C compiler to build the profiled programs; heap_prog NAME [CFLAGS] builds
# $TMP/NAME from the C text on stdin.
if [ "${MT_ASAN:-0}" = 1 ] || [ ! -e "${MT_BINARY_DIR:?}/lib/libmt_heap.so" ]; then
    echo "SKIP: no heap profiler in this build (ASan, or no libmt_heap.so)"
    exit 77
fi
CC=${CC:-cc}
command -v "$CC" >/dev/null || { echo "SKIP: needs a C compiler"; exit 77; }

heap_prog() {
    name=$1
    shift
    cat >"$TMP/$name.c"
    "$CC" "$@" -o "$TMP/$name" "$TMP/$name.c" || fail "cannot build $name"
}

# sites_vs_totals RUN: "allocs leaked" summed over the run's sites, then the run's metrics.
sites_vs_totals() {
    sql "SELECT coalesce((SELECT sum(allocs) || ' ' || sum(leaked_bytes) FROM alloc_sites WHERE run_id = $1), 'no sites'),
                coalesce((SELECT CAST(value AS INTEGER) FROM metrics WHERE run_id = $1 AND name = 'heap_allocs')
                || ' ' || (SELECT CAST(value AS INTEGER) FROM metrics WHERE run_id = $1 AND name = 'leaked_bytes'), 'no totals')" | tr '|' ' '
}
