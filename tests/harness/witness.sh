# tests/harness/witness.sh — the three witnesses of real runs (issue 21): `baseline` (tiny,
# trained in the run) and `mixed_precision` (tiny, bf16, every 2) run by the harness with
# the heap profiler; for every phase (train, infer, eval) the plan the harness stored
# equals the heap profiler's peak of that region exactly in each category the plan
# derives (weights, gradients, optimizer, activations, act_grads, kv_cache, data); the
# residual <phase>_unaccounted_bytes is stored (measured total minus planned total), and
# `memtrade query check` shows them with a flag. The kernel's witness per phase:
# <phase>_rss_peak_bytes (VmHWM reset at the phase's start) is stored for every phase,
# serving's below training's (the reset worked: a whole-run VmHWM never falls), and the
# whole run's peak_rss_bytes is the largest of them (the resets did not lower it).
. "$(dirname "$0")/lib.sh"

need_heap_plugin baseline
expect_rc 0 "$MT" run baseline -p model=tiny -p steps=5 -p eval_tokens=2048 --db "$DB" --threads 2
expect_rc 0 "$MT" run mixed_precision -p model=tiny -p steps=3 -p eval_tokens=2048 \
    -p precision=bf16 -p every=2 --db "$DB" --threads 2

pairs=$witness_pairs
expect_eq "planned categories with a measured peak" "$(sql "SELECT count(*) $pairs")" "21"
expect_eq "plan != heap" "$(sql "SELECT group_concat(p.run_id || ':' || g.path || ':' || p.category
    || ' plan ' || p.value || ' heap ' || c.value, '; ') $pairs AND p.value <> c.value")" ""
# the residual: the heap profiler's total of the region minus the plan's total
expect_eq "residuals stored" "$(sql "SELECT count(*) FROM metrics u JOIN regions g
    ON g.run_id = u.run_id AND g.rank = 0 AND u.name = g.path || '_unaccounted_bytes'
    JOIN region_counters c ON c.region_id = g.id AND c.counter = 'heap_peak_bytes'
    AND c.category = '' JOIN metrics p ON p.run_id = u.run_id AND p.rank = -1
    AND p.category = '' AND p.name = 'plan_' || g.path || '_peak_bytes'
    WHERE u.value = c.value - p.value")" "5"
# mixed_precision never serves: its eval phase is planned, infer is not
expect_eq "phases of run 2" "$(sql "SELECT group_concat(name, ' ') FROM (SELECT name FROM metrics
    WHERE run_id = 2 AND category = '' AND name LIKE 'plan%' ORDER BY name)")" \
    "plan_eval_peak_bytes plan_train_peak_bytes"
rss() {
    sql "SELECT value FROM metrics WHERE run_id = 1 AND rank = -1 AND name = '$1'"
}
for ph in train infer eval; do
    [ -n "$(rss ${ph}_rss_peak_bytes)" ] || fail "no ${ph}_rss_peak_bytes"
done
expect_eq "infer below train" "$(sql "SELECT (SELECT value FROM metrics WHERE run_id = 1
    AND name = 'infer_rss_peak_bytes') < (SELECT value FROM metrics WHERE run_id = 1
    AND name = 'train_rss_peak_bytes')")" "1"
expect_eq "whole run = largest phase" "$(sql "SELECT (SELECT value FROM metrics WHERE
    run_id = 1 AND name = 'peak_rss_bytes') >= (SELECT max(value) FROM metrics WHERE
    run_id = 1 AND name LIKE '%\_rss\_peak\_bytes' ESCAPE '\\')")" "1"
expect_rc 0 "$MT" query check 1 --db "$DB" --format csv
expect_out "infer,kv_cache,65536,65536,65536,0"
grep -q "^train,total,.*,\(ok\|over\)$" "$TMP/last.out" || fail "no flagged train total row"
grep -q "^infer,total,[0-9.]*,[0-9.]*,[0-9.]*,[0-9.-]*,$(rss infer_rss_peak_bytes | sed 's/\.0$//')," \
    "$TMP/last.out" || { cat "$TMP/last.out"; fail "check lacks infer's own RSS peak"; }
expect_rc 3 "$MT" query check 99 --db "$DB"
echo ok
