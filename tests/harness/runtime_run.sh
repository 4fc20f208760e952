# tests/harness/runtime_run.sh — every run stores its runtime status (issue 21): for each
# planned phase, <phase>_runtime_bytes (the runtime terms of its build, machine and class,
# summed as `memtrade plan` sums them) and <phase>_residual_bytes (the unaccounted bytes
# minus them), or both unavailable with the reason, never 0. `memtrade run
# --measure-runtime` probes a missing class once (a second run of the class probes nothing);
# `memtrade query check` and the report show the status, and flag a residual over 5 % of
# the phase's heap peak and 4 MiB. Runs on tiny with the heap profiler.
. "$(dirname "$0")/lib.sh"

need_heap_plugin baseline
common="-p model=tiny -p steps=3 -p eval_tokens=2048 --db $DB --threads 2"
status() { # RUN PHASE: "value|reason" of its runtime, then of its residual
    sql "SELECT group_concat(COALESCE(CAST(value AS INTEGER), '') || '|' ||
        COALESCE(unavailable, ''), ' / ') FROM (SELECT value, unavailable FROM metrics
        WHERE run_id = $1 AND rank = -1 AND name IN ('$2_runtime_bytes', '$2_residual_bytes')
        ORDER BY name DESC)"
}

# run 1: nothing probed on this build and machine; it trains the model into the cache
expect_rc 0 "$MT" run baseline $common
why="runtime terms not measured on this build and machine (memtrade run --measure-runtime, or memtrade plan --measure-runtime --all)"
expect_eq "run 1 infer" "$(status 1 infer)" "|$why / |no runtime terms: $why"
expect_eq "zeros stored" "$(sql "SELECT count(*) FROM metrics WHERE value = 0
    AND (name LIKE '%\_runtime\_bytes' ESCAPE '\\' OR name LIKE '%\_residual\_bytes' ESCAPE '\\')")" "0"
expect_rc 0 "$MT" query check 1 --db "$DB" --format csv
expect_out "infer,runtime,,,"
expect_out ",\"$why\","

# runs 2 and 3: one class (trained=no: the model is cached), probed once before them
expect_rc 0 "$MT" run baseline $common --repeat 2 --measure-runtime
expect_out "runtime terms of 1 classes: 0 stored, 1 measured now"
expect_rc 0 "$MT" run baseline $common --measure-runtime -p seed=7
expect_out "runtime terms of 1 classes: 1 stored, 0 measured now (0.0 s of probes)"
# runs 2 and 3 load the cached model (class trained=no); run 4's seed trains another
# (trained=yes): the probe stored both histories
cls="class LIKE 'baseline % eval_tokens=2048 % threads=2 trained="
for ph in infer eval; do
    for run in 2 3 4; do
        h=no
        [ $run = 4 ] && h=yes
        rt=$(sql "SELECT CAST(sum(bytes) AS INTEGER) FROM runtime_terms WHERE ${cls}$h'
            AND phase = '$ph' AND term NOT IN ('resident', 'accounted')")
        [ -n "$rt" ] || fail "no $ph terms of trained=$h stored by the probe"
        u=$(sql "SELECT CAST(value AS INTEGER) FROM metrics WHERE run_id = $run
            AND name = '${ph}_unaccounted_bytes'")
        expect_eq "run $run $ph" "$(status $run $ph)" "$rt| / $((u - rt))|"
    done
done
expect_rc 0 "$MT" query check 2 --db "$DB" --format csv
grep -q "^infer,runtime,[0-9]*,,[0-9]*,-\?[0-9]*,,-\?[0-9]*,ok$" "$TMP/last.out" ||
    { cat "$TMP/last.out"; fail "check 2 lacks the runtime row"; }
# the class's train phase: the probe's cached-model run has none, and says why
expect_out "train,runtime,,,,,,runtime term workspace of phase train unavailable in the probe"

# run 5: a class never probed (eval_tokens is a class key): unavailable, with the reason
expect_rc 0 "$MT" run baseline -p model=tiny -p steps=3 -p eval_tokens=1024 --db "$DB" --threads 2
expect_eq "run 5 infer" "$(status 5 infer | sed 's/class baseline [^(]* not measured/class CLASS not measured/g')" \
    "|runtime terms of class CLASS not measured on this build and machine (memtrade run --measure-runtime probes it) / |no runtime terms: runtime terms of class CLASS not measured on this build and machine (memtrade run --measure-runtime probes it)"

# run 6 (another seed: trained=yes): the class's infer workspace term raised by 8 MiB: the residual (-8 MiB and a few
# bytes) is over 5 % of the phase's heap peak and over 4 MiB: flagged
sql "UPDATE runtime_terms SET bytes = bytes + 8388608 WHERE ${cls}yes' AND phase = 'infer'
    AND term = 'workspace'"
expect_rc 0 "$MT" run baseline $common -p seed=9
res=$(sql "SELECT CAST(value AS INTEGER) FROM metrics WHERE run_id = 6 AND name = 'infer_residual_bytes'")
[ "$res" -lt -4194304 ] || fail "run 6 infer residual $res, want below -4 MiB"
expect_rc 0 "$MT" query check 6 --db "$DB" --format csv
grep -q "^infer,runtime,[0-9]*,,[0-9]*,$res,,$res,over$" "$TMP/last.out" ||
    { cat "$TMP/last.out"; fail "check 6 does not flag the residual $res"; }
grep -q "^eval,runtime,.*,ok$" "$TMP/last.out" || fail "check 6 flags eval"

# the report: one row per configuration (one of runs 1-3, 4, 5, 6)
expect_rc 0 "$MT" plot --db "$DB" --out "$TMP/out" --max-runs 8
html=$TMP/out/report.html
grep -q "<td class=\"none\">unavailable: runtime terms of class baseline " "$html" ||
    fail "report lacks run 5's unavailable runtime"
mib=$(awk -v r="$res" 'BEGIN { printf "%.3f", r / 1048576 }')
grep -q "<td class=\"n\">$mib <b class=\"over\">over</b></td>" "$html" ||
    fail "report does not flag run 6's residual $mib MiB"
echo ok
