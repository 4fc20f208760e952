#!/bin/sh
# test_fit_cli.sh MEMTRADE DIR — `memtrade fit`: usage errors exit 2 with a clear message
# (a bad size, an unknown model with the nearest preset, a missing --for, kld for
# training, --no-measure on an empty database); a training fit on tiny (2-step runs it
# starts itself) chooses a configuration whose plan (from `memtrade plan`, the corpus
# left out, plus the runtime term it prints) is the prediction and within the budget, and
# --verify measures its train_peak_bytes within the budget too.
set -u
MT=$1
DIR=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$DIR" && mkdir -p "$DIR" || fail "cannot make $DIR"
DB="$DIR/fit.db"
expect2() { # expect2 PATTERN ARGS...: exit 2 and PATTERN in stderr
    pat=$1; shift
    err=$("$MT" fit "$@" --db "$DB" --out "$DIR" 2>&1 >/dev/null); rc=$?
    [ $rc -eq 2 ] || fail "fit $* exited $rc, not 2 ($err)"
    echo "$err" | grep -q -- "$pat" || fail "fit $*: '$err' lacks '$pat'"
}
expect2 "budget takes a byte size" --budget 12Q --for serving tiny
expect2 "budget takes a byte size" --budget 0 --for serving tiny
expect2 "did you mean 'tiny'" --budget 1M --for serving tinny
expect2 "did you mean 'small'" --budget 1M --for training smal
expect2 "for is required" --budget 1M tiny
expect2 "for takes serving, training or finetune" --budget 1M --for both tiny
expect2 "it takes --for training" --budget 1M --for serving --ranks 2 tiny
expect2 "ranks takes a whole number above 0" --budget 1M --for training --ranks 0 tiny
expect2 "judged on val_bpb" --budget 1M --for training --metric kld tiny
expect2 "measuring is off" --budget 1M --for serving --no-measure tiny
[ -e "$DB" ] && fail "a usage error created the database"

# per-tensor widths (quantize layer_bits) are planned exactly: all at 4 bits is bits=4,
# and a mix is the sum of its layers (what fit's knapsack relies on)
w() { "$MT" plan quantize -p model=tiny "$@" --for serving --csv | awk -F, '$2 == "weights" && $4 == "infer" {print $3}'; }
u4=$(w -p bits=4); l4=$(w -p bits=16 -p layer_bits=4,4,4,4,4,4,4,4)
u16=$(w -p bits=16); m=$(w -p bits=16 -p layer_bits=4,16,16,16,16,16,16,16)
m2=$(w -p bits=16 -p layer_bits=16,16,16,16,4,16,16,16)
[ -n "$u4" ] && [ "$u4" = "$l4" ] || fail "layer_bits all 4: $l4, bits=4: $u4"
[ $((u16 - m)) -gt 0 ] && [ $((u16 - m)) -eq $((u16 - m2)) ] || fail "one layer at 4 bits: $u16 $m $m2"
"$MT" plan quantize -p model=tiny -p layer_bits=4,4 2>"$DIR/lb"; [ $? -eq 2 ] || fail "short layer_bits"
grep -q "layer_bits has 2 values; this model has 8 block linears" "$DIR/lb" || fail "$(cat "$DIR/lb")"

BUDGET=9000000
out=$("$MT" fit --budget $BUDGET --for training tiny --steps 2 --eval-tokens 2048 --verify \
      --db "$DB" --out "$DIR" 2>"$DIR/err") || fail "fit exited $?: $(cat "$DIR/err")"
echo "$out"
cmd=$(echo "$out" | sed -n 's/^  run it: memtrade run //p')
[ -n "$cmd" ] || fail "no chosen configuration"
pred=$(echo "$out" | sed -n 's/^  predicted peak \([0-9]*\) bytes = plan \([0-9]*\) + runtime term \(-*[0-9]*\).*/\1 \2 \3/p')
set -- $pred
[ $# -eq 3 ] || fail "no prediction line"
p_total=$1 p_plan=$2 p_rt=$3
[ "$p_total" -le $BUDGET ] || fail "predicted $p_total over the budget $BUDGET"
[ $((p_plan + p_rt)) -eq "$p_total" ] || fail "plan $p_plan + runtime $p_rt is not $p_total"
# the same configuration through `memtrade plan`: its training total without the corpus
w=${cmd%% *}
params=${cmd#* }
plan=$("$MT" plan "$w" $params --for training) || fail "plan of the choice exited $?"
total=$(echo "$plan" | awk '$1 == "total" {print $4}')
corpus=$(echo "$plan" | sed -n 's/^data includes the corpus the run holds whole: \([0-9]*\) bytes.*/\1/p')
[ -n "$total" ] && [ -n "$corpus" ] || fail "plan output: $plan"
[ $((total - corpus)) -eq "$p_plan" ] || fail "plan says $((total - corpus)), fit $p_plan"
[ $((total - corpus + p_rt)) -le $BUDGET ] || fail "the choice's plan is over the budget"
meas=$(echo "$out" | sed -n 's/^  peak *predicted [0-9]*  measured \([0-9]*\) .*/\1/p')
[ -n "$meas" ] || fail "no verify line"
[ "$meas" -le $BUDGET ] || fail "measured $meas over the budget $BUDGET"
echo "$out" | grep -q "within the budget" || fail "verify did not say within the budget"
# the choice is filled: its micro-batch (with accum_steps when it does not divide the
# batch), checkpointing, recompute, attention kernel and optimizer offload are the ones
# that fit with the most bytes (fit.fill checks that against every combination), printed
# with the unused bytes and run as printed
echo "$out" | grep -q "^  filled: micro_batch=[0-9]*\( accum_steps=[0-9]*\)\? every=[0-9]* recompute=[a-z]* attention=[a-z]* offload=[a-z]*; unused [0-9]* bytes" \
    || fail "no filled line"
fill=$(echo "$out" | sed -n 's/^  filled: \([^;]*\);.*/\1/p')
for kv in $fill; do
    echo "$cmd" | grep -q -- "-p $kv\( \|$\)" || fail "the run command lacks $kv of the fill"
done
# --json has the fill and the unused share of the budget
"$MT" fit --budget $BUDGET --for training tiny --steps 2 --eval-tokens 2048 --json --no-measure \
    --db "$DB" --out "$DIR" >"$DIR/json" 2>&1 || fail "fit --json exited $?: $(cat "$DIR/json")"
grep -q '"best":{.*"fill":"micro_batch=.*","unused_bytes":[0-9]*,"unused_share":0\.[0-9]*,"unused_why":' \
    "$DIR/json" || fail "json: $(cat "$DIR/json")"
# a database without runtime terms and --no-measure: no probe runs, and the term is
# printed as unavailable (null in --json), never as 0
sqlite3 "$DB" ".backup '$DIR/nort.db'" && sqlite3 "$DIR/nort.db" "DELETE FROM runtime_terms" ||
    fail "copy of the database"
"$MT" fit --budget $BUDGET --for training tiny --steps 2 --eval-tokens 2048 --no-measure \
    --db "$DIR/nort.db" --out "$DIR" >"$DIR/nort" 2>&1 || fail "fit without terms: $(cat "$DIR/nort")"
grep -q "^  predicted peak [0-9]* bytes = plan [0-9]* + runtime term unavailable (runtime terms not measured for this class" \
    "$DIR/nort" || fail "no unavailable runtime term: $(cat "$DIR/nort")"
"$MT" fit --budget $BUDGET --for training tiny --steps 2 --eval-tokens 2048 --no-measure --json \
    --db "$DIR/nort.db" --out "$DIR" >"$DIR/nort.json" 2>&1 || fail "fit --json without terms"
grep -q '"best":{[^}]*}[^}]*"runtime_bytes":null,"runtime_unavailable":"runtime terms not measured for this class' \
    "$DIR/nort.json" || fail "json without terms: $(cat "$DIR/nort.json")"
[ "$(sqlite3 "$DIR/nort.db" "SELECT count(*) FROM runtime_terms")" = 0 ] || fail "a probe ran"
# serving with concurrent sequences: the plan and the accounted peak count one KV cache
# per sequence, and the heap profiler measures exactly that (tiny: 64 KiB each)
"$MT" run baseline -p model=tiny -p steps=3 -p eval_tokens=2048 -p decode_sequences=3 \
    --db "$DIR/seq.db" --out "$DIR" >"$DIR/seq" 2>&1 || fail "decode_sequences=3: $(tail "$DIR/seq")"
"$MT" query check 1 --db "$DIR/seq.db" --format csv >"$DIR/check" || fail "query check exited $?"
# (under ASan the heap profiler cannot run: plan and accounted only)
want="^infer,kv_cache,196608,196608,196608,0"
[ "${MT_ASAN:-0}" = 1 ] && want="^infer,kv_cache,196608,196608,"
grep -q "$want" "$DIR/check" || fail "check: $(cat "$DIR/check")"
# and one more sequence of 16 tokens beside them (decode_extra_tokens: fit's finer step)
"$MT" run baseline -p model=tiny -p steps=3 -p eval_tokens=2048 -p decode_sequences=3 \
    -p decode_extra_tokens=16 --db "$DIR/seq.db" --out "$DIR" >"$DIR/seq" 2>&1 ||
    fail "decode_extra_tokens=16: $(tail "$DIR/seq")"
"$MT" query check 2 --db "$DIR/seq.db" --format csv >"$DIR/check" || fail "query check exited $?"
want="^infer,kv_cache,212992,212992,212992,0"
[ "${MT_ASAN:-0}" = 1 ] && want="^infer,kv_cache,212992,212992,"
grep -q "$want" "$DIR/check" || fail "check extra: $(cat "$DIR/check")"
# fine-tuning (LoRA/QLoRA) and --ranks: a budget nothing fits starts no run and says why
n0=$(sqlite3 "$DB" "SELECT count(*) FROM runs")
"$MT" fit --budget 64K --for finetune tiny --steps 2 --eval-tokens 2048 --db "$DB" --out "$DIR" \
    >"$DIR/ft" 2>&1; [ $? -eq 1 ] || fail "finetune 64K did not exit 1: $(cat "$DIR/ft")"
grep -q "for fine-tuning" "$DIR/ft" && grep -q "nothing fits" "$DIR/ft" || fail "ft: $(cat "$DIR/ft")"
"$MT" fit --budget 64K --for training --ranks 2 tiny --steps 2 --eval-tokens 2048 --db "$DB" \
    --out "$DIR" >"$DIR/ranks" 2>&1; [ $? -eq 1 ] || fail "ranks 64K did not exit 1"
grep -q "per rank" "$DIR/ranks" || fail "ranks: $(cat "$DIR/ranks")"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM runs")" = "$n0" ] || fail "a budget nothing fits started runs"
# a budget nothing fits: exit 1, said
"$MT" fit --budget 64K --for training tiny --steps 2 --eval-tokens 2048 --db "$DB" --out "$DIR" \
    >"$DIR/none" 2>&1; [ $? -eq 1 ] || fail "64K did not exit 1"
grep -q "nothing fits" "$DIR/none" || fail "64K: $(cat "$DIR/none")"
echo ok
