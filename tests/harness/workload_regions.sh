# tests/harness/workload_regions.sh — a real workload's region counters as stored: the
# `baseline` plugin (tiny, 5 steps) run by the harness; for its regions `train` and
# `infer`, the perf software events (task_clock_ns, page_faults, context_switches) hold
# values, task time and page faults above 0; every hardware counter (PAPI presets, perf
# cycles/instructions) holds a value above 0 or is unavailable with a reason, never a
# stored 0 (a machine without a PMU, as in a VM, exercises the second branch; one with a
# PMU the first).
. "$(dirname "$0")/lib.sh"

need_heap_plugin baseline
expect_rc 0 "$MT" run baseline -p model=tiny -p steps=5 -p eval_tokens=2048 --db "$DB"

count() { # WHERE-clause over regions r and region_counters c of run 1's train and infer
    sql "SELECT count(*) FROM regions r JOIN region_counters c ON c.region_id = r.id
         WHERE r.run_id = 1 AND r.path IN ('train', 'infer') AND ($1)"
}
for sw in task_clock_ns page_faults context_switches; do
    expect_eq "$sw with values" "$(count "c.counter = '$sw' AND c.value IS NOT NULL")" "2"
done
expect_eq "task time and page faults above 0" \
    "$(count "c.counter IN ('task_clock_ns', 'page_faults') AND c.value > 0")" "4"
hw="c.counter LIKE 'PAPI\_%' ESCAPE '\' OR c.counter IN ('perf_cycles', 'perf_instructions')"
n_hw=$(count "$hw")
[ "$n_hw" -ge 4 ] || fail "only $n_hw hardware counter rows for train and infer"
# measured (above 0) or unavailable with a non-empty reason; cache and branch misses may
# truly be rare, instructions and cycles never are
expect_eq "hardware counters measured or explained" \
    "$(count "($hw) AND ((c.value > 0) OR (c.value = 0 AND c.counter NOT IN ('PAPI_TOT_INS',
        'PAPI_TOT_CYC', 'perf_cycles', 'perf_instructions')) OR (c.value IS NULL AND
        length(c.unavailable) > 0))")" "$n_hw"
echo "hardware counter rows: $n_hw, measured: $(count "($hw) AND c.value IS NOT NULL")"
echo "ok"
