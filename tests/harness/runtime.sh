# tests/harness/runtime.sh — the plan's runtime terms (issue 21): without a database the
# plan says they are not measured; `memtrade plan --measure-runtime` runs the probe
# (baseline on tiny, in a database and folder of its own: it adds no run to this one and
# writes nothing here) and stores 4 terms for each of its 3 phases under this build and
# machine; the plan's runtime line is their sum for the phase; `memtrade query check`
# finds them through a run's facts. Then runs of the training and serving knobs whose
# shapes the probe shares (baseline; checkpointing every=1 and mempool: train and eval;
# grad_accum: train; kv_cache int8: infer): for each, the heap profiler's phase peak
# equals plan + runtime within 2 % of the peak.
. "$(dirname "$0")/lib.sh"

if [ "${MT_ASAN:-0}" = 1 ] || [ ! -e "${MT_BINARY_DIR:?}/plugins/baseline.so" ]; then
    echo "skipped: ASan build (the heap profiler cannot preload) or no baseline plugin"
    exit 77
fi
export MEMTRADE_PLUGIN_PATH=$MT_BINARY_DIR/plugins
expect_rc 0 "$MT" plan baseline -p model=tiny --db "$DB"
expect_out "not measured: no database at $DB"
expect_rc 0 "$MT" plan --measure-runtime --db "$DB"
expect_out "runtime terms of this build and machine (measured "
expect_eq "terms measured" "$(sql "SELECT count(*) FROM runtime_terms WHERE bytes IS NOT NULL
    AND probe LIKE 'baseline model=tiny %'")" "12"
expect_eq "runs added by the probe" "$(sql "SELECT count(*) FROM runs")" "0"
expect_eq "files left here" "$(ls "$TMP" | tr '\n' ' ')" "cache last.out out "
expect_eq "files left in out" "$(ls "$TMP/out" | grep -v '^memtrade.db' | tr '\n' ' ')" ""
expect_eq "phases" "$(sql "SELECT group_concat(DISTINCT phase) FROM runtime_terms")" "eval,infer,train"
train=$(sql "SELECT CAST(sum(bytes) AS INTEGER) FROM runtime_terms WHERE phase = 'train'
    AND term <> 'resident'")
expect_rc 0 "$MT" plan checkpointing -p model=tiny --db "$DB" --csv
expect_out "training,runtime,$train,train"
# runs with the probe's threads (the default), each knob on tiny
run() {
    expect_rc 0 "$MT" run "$@" -p model=tiny -p eval_tokens=2048 --db "$DB"
}
run baseline -p steps=5
run checkpointing -p steps=3 -p every=1
run mempool -p steps=3
run grad_accum -p steps=3 -p accum_steps=2
run kv_cache -p steps=3 -p kv_cache=int8
# run:phase pairs that must hold, and the check of each from `query check`
want="1:train 1:infer 1:eval 2:train 2:eval 3:train 3:eval 4:train 5:infer"
for rp in $want; do
    r=${rp%%:*} ph=${rp#*:}
    expect_rc 0 "$MT" query check "$r" --db "$DB" --format csv
    got=$(awk -F, -v ph="$ph" '$1 == ph && $2 == "runtime" { rt = $3 }
        $1 == ph && $2 == "total" { heap = $5; plan = $3 }
        END { if (rt == "" || heap == "") print "missing"; else {
              d = heap - plan - rt; if (d < 0) d = -d
              print (d <= 0.02 * heap ? "ok" : "off by " d " of " heap) } }' "$TMP/last.out")
    expect_eq "run $r ($ph): heap = plan + runtime within 2 %" "$got" "ok"
done
# a run of another build or machine finds none: its check says so
sql "UPDATE runs SET facts_json = json_set(facts_json, '$.cpu', 'another cpu') WHERE id = 1"
expect_rc 0 "$MT" query check 1 --db "$DB" --format csv
expect_out "train,runtime,,,"
expect_out "not measured for this run's build and machine"
echo ok
