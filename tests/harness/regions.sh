# tests/harness/regions.sh — exact heap peaks per region (region counter heap_peak_bytes):
# t_regions' known kv_cache peaks, per path and with nested regions folded into outer
# ones, in full and sampled mode; shown by `query show`; unavailable with the reason,
# never 0, when the heap report is incomplete.
. "$(dirname "$0")/lib.sh"

if [ "${MT_ASAN:-0}" = 1 ] || [ ! -e "${MT_BINARY_DIR:?}/lib/libmt_heap.so" ]; then
    echo "skipped: ASan build or no libmt_heap.so"
    exit 77
fi

peaks() { # RUN COUNTER CATEGORY: path=value pairs, by path
    sql "SELECT group_concat(path || '=' || coalesce(CAST(value AS INTEGER), 'NA'), ' ') FROM
         (SELECT r.path, c.value FROM regions r JOIN region_counters c ON c.region_id = r.id
          WHERE r.run_id = $1 AND c.counter = '$2' AND c.category = '$3' ORDER BY r.path)"
}

expect_rc 0 "$MT" run t_regions --heap full --db "$DB"
expect_rc 0 "$MT" run t_regions --heap sampled --db "$DB"
for run in 1 2; do
    expect_eq "kv peaks run $run" "$(peaks $run heap_peak_bytes kv_cache)" "a=9000 a/b=6000 c=2000 c/b=2000"
    # Totals: at least the kv_cache peak, and an outer region's is at least its nested ones'.
    expect_eq "totals run $run" "$(sql "SELECT count(*) FROM regions r JOIN region_counters t
        ON t.region_id = r.id AND t.counter = 'heap_peak_bytes' AND t.category = ''
        JOIN region_counters k ON k.region_id = r.id AND k.counter = 'heap_peak_bytes'
        AND k.category = 'kv_cache'
        WHERE r.run_id = $run AND t.value >= k.value")" "4"
    expect_eq "nested run $run" "$(sql "SELECT count(*) FROM regions o JOIN regions i
        ON i.run_id = o.run_id AND i.path LIKE o.path || '/%'
        JOIN region_counters ot ON ot.region_id = o.id AND ot.counter = 'heap_peak_bytes'
        AND ot.category = ''
        JOIN region_counters it ON it.region_id = i.id AND it.counter = 'heap_peak_bytes'
        AND it.category = ''
        WHERE o.run_id = $run AND ot.value >= it.value")" "2"
done
expect_rc 0 "$MT" query show 1 --db "$DB" --format csv
expect_out "heap_peak_bytes,kv_cache"

# The profiler off: no figures at all (the runner stores none), never a 0.
expect_rc 0 "$MT" run t_regions --no-heap --db "$DB"
expect_eq "no heap" "$(sql "SELECT count(*) FROM region_counters c JOIN regions r ON r.id = c.region_id
    WHERE r.run_id = 3 AND c.counter = 'heap_peak_bytes' AND c.value IS NOT NULL")" "0"
echo "ok"
