# tests/harness/runtime.sh — the plan's runtime terms (issue 21): without a database the
# plan says they are not measured; `memtrade plan --measure-runtime` runs the default
# probe (baseline on tiny, in a database and folder of its own: it adds no run to this one
# and writes nothing here) and stores 6 terms for each of its 3 phases under this build,
# machine and class, for both histories (trained in the run: train, infer, eval; loaded
# from the cache: infer, eval); the plan's runtime line is their sum for the phase;
# `memtrade query check` finds them through a run's facts and class. Then the table: for
# each workload and knob on tiny, `memtrade plan` measures its class on first need (a
# lazy probe), `memtrade run` runs it, and for every phase of the run the heap profiler's
# peak equals plan + runtime within 2 % of the peak (heap figures are deterministic for a
# build, so the comparison is of bytes). A run of a class without terms probes nothing
# (without --measure-runtime) and stores why, which its check shows; `plan --measure-runtime --all` probes the classes still missing.
. "$(dirname "$0")/lib.sh"

need_heap_plugin baseline
expect_rc 0 "$MT" plan baseline -p model=tiny --db "$DB"
expect_out "not measured: no database at $DB"
expect_rc 0 "$MT" plan --measure-runtime --db "$DB"
expect_out "runtime terms of this build and machine, class baseline "
expect_out " trained=yes (measured "
expect_out " trained=no (measured "
expect_eq "terms measured" "$(sql "SELECT count(*) FROM runtime_terms WHERE bytes IS NOT NULL
    AND probe LIKE 'baseline model=tiny %'")" "30"
expect_eq "runs added by the probe" "$(sql "SELECT count(*) FROM runs")" "0"
expect_eq "files left here" "$(ls "$TMP" | tr '\n' ' ')" "cache last.out out "
expect_eq "files left in out" "$(ls "$TMP/out" | grep -v '^memtrade.db' | tr '\n' ' ')" ""
expect_eq "phases" "$(sql "SELECT group_concat(DISTINCT phase) FROM runtime_terms")" "eval,infer,train"
train=$(sql "SELECT CAST(sum(bytes) AS INTEGER) FROM runtime_terms WHERE phase = 'train'
    AND term <> 'resident' AND class LIKE 'baseline %'")
expect_rc 0 "$MT" plan baseline -p model=tiny -p eval_tokens=2048 --db "$DB" --csv
expect_out "training,runtime,$train,train"

# The table: workload and knobs, on tiny with the probe's threads (the default), by
# scripts/bench_runtime.sh (which runs it on small too). The first run trains the
# reference model into this cache (its class is trained=yes), the post-training ones load
# it (trained=no).
table=$TMP/table.txt
RAGGED=0 sh "$(dirname "$0")/../../scripts/bench_runtime.sh" "$MT" "$DB" tiny >"$table" ||
    fail "scripts/bench_runtime.sh on tiny failed"
n=$(sql "SELECT count(*) FROM runs")
cat "$table"
expect_eq "runs of the table" "$n" "16"
expect_eq "phases off by more than 2 %" "$(grep -c '|OFF$\||missing$' "$table")" "0"
expect_eq "runs with a checked phase" "$(cut -d'|' -f1 "$table" | sort -u | wc -l)" "$n"
# `memtrade run` without --measure-runtime probes nothing: a run of a class without terms
# (eval_tokens is a class key) stores why in its status, and its check says so
expect_rc 0 "$MT" run baseline -p model=tiny -p eval_tokens=1024 -p steps=3 --db "$DB"
expect_eq "terms stored by a run" "$(sql "SELECT count(*) FROM runtime_terms
    WHERE class LIKE 'baseline % eval_tokens=1024 %'")" "0"
expect_rc 0 "$MT" query check 17 --db "$DB" --format csv
expect_out "train,runtime,,,"
expect_out " not measured on this build and machine (memtrade run --measure-runtime probes it)"
# --measure-runtime --all: every single-process workload's class at its defaults and the
# -p it declares; after the table only grad_accum's default (accum_steps=4) is missing
expect_rc 2 "$MT" plan --all --db "$DB"
expect_out "--all goes with --measure-runtime and no workload"
expect_rc 0 "$MT" plan --measure-runtime --all -p model=tiny -p eval_tokens=2048 --db "$DB"
expect_out "grad_accum         measured now: class grad_accum accum_steps=4 "
expect_out "baseline           stored: class baseline "
expect_out "skeleton           skipped: no plan() hook"
expect_out ": 9 already stored, 1 measured now, 0 failed;"
expect_rc 0 "$MT" plan --measure-runtime --all -p model=tiny -p eval_tokens=2048 --db "$DB"
expect_out ": 10 already stored, 0 measured now, 0 failed;"
expect_eq "runs added by --all" "$(sql "SELECT count(*) FROM runs")" "$((n + 1))"
# merge copies the terms (and the runs: fit's --verify runs are ordinary runs); merged
# again, the output keeps its as recent measurements
expect_rc 0 "$MT" merge "$TMP/merged.db" "$DB"
terms=$(sql "SELECT count(*) || ' ' || total(bytes) FROM runtime_terms")
expect_eq "runtime terms merged" "$(sqlite3 -batch -noheader "$TMP/merged.db" \
    "SELECT count(*) || ' ' || total(bytes) FROM runtime_terms")" "$terms"
expect_rc 0 "$MT" merge "$TMP/merged.db" "$DB"
expect_eq "runtime terms merged twice" "$(sqlite3 -batch -noheader "$TMP/merged.db" \
    "SELECT count(*) || ' ' || total(bytes) FROM runtime_terms")" "$terms"
rm -f "$TMP"/merged.db*
# a run of another build or machine finds none (the terms here moved to another
# machine): its check says so
sql "UPDATE runtime_terms SET machine = 'another machine'"
expect_rc 0 "$MT" run baseline -p model=tiny -p steps=3 --db "$DB"
expect_rc 0 "$MT" query check "$(sql "SELECT max(id) FROM runs")" --db "$DB" --format csv
expect_out "infer,runtime,,,"
expect_out "runtime terms not measured on this build and machine"
echo ok
