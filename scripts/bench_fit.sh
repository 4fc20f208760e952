#!/bin/sh
# bench_fit.sh [BUILD_DIR] [OUT_DIR] — `memtrade fit` on (model, budget, goal) cases that
# fit this machine (tiny and small models), each with --verify.
#
# Per case: fit's choice, its predicted and measured peak (infer_peak_bytes for serving,
# train_peak_bytes for training), the share of the budget it leaves unused, its predicted
# and measured val_bpb, and the best val_bpb of any configuration measured in the database
# (fit's own accuracy runs and every verify run: same model, same scored text, same
# training budget) whose measured peak is within the same budget. fit fills its choice
# (concurrent sequences and one more shorter one for serving; micro-batch and less
# recompute, then a larger batch when measured no worse within 0.1 %, for training), so the
# unused share is that of the filled configuration as run; where 5 % or more stays unused,
# the reason fit gives (the next step's bytes) is printed under the table. A case passes
# when the measured peak is within the budget (no OOM), under 5 % of it is unused, and its
# measured val_bpb is within 1 % of that best. A case where 5 % or more stays unused
# although fit tried every step of its knobs (its reason starts "no finer step": the
# smallest step above the choice is larger than what is left, e.g. one more sequence of
# one token in a KIVI cache, which holds its fp32 window whatever the length; or "nothing
# left to spend": the whole batch without recompute, and a larger batch trains worse) is
# marked coarse and counted apart from the other misses.
# Prints the table and a summary; exits 1 when a case fails to run. CASES=serving|training
# restricts the goals; the database (OUT/fit.db) is kept, so a second run only verifies. Serving runs score EVAL_SERVING validation bytes
# (default 16384); training runs train STEPS steps (default 10) and score EVAL_TRAINING
# (default 4096): the 2-core machine this was written on runs each in 10-60 s.
set -u
BUILD=${1:-build}
OUT=${2:-out/bench_fit}
MT="$BUILD/bin/memtrade"
DB="$OUT/fit.db"
EVAL_SERVING=${EVAL_SERVING:-16384}
EVAL_TRAINING=${EVAL_TRAINING:-4096}
STEPS=${STEPS:-10}
mkdir -p "$OUT" || exit 1
[ -x "$MT" ] || { echo "bench_fit: no $MT (build first)" >&2; exit 1; }

# model goal budgets...
cases() {
    case "${CASES:-all}" in serving|all)
        echo "tiny serving 140000 170000 200000 230000 260000 300000 340000 380000 430000 480000 540000 600000 700000 820000"
    esac
    case "${CASES:-all}" in training|all)
        echo "tiny training 2400000 2700000 3000000 3400000 3800000 4300000 4800000 5400000 6000000"
        echo "tiny training 6800000 7600000 8500000 9500000 10600000 11800000 13200000 14800000 16500000"
    esac
}

# The best measured val_bpb within budget B (`memtrade query`'s read-only SQL).
best_measured() { # model goal budget
    EVAL=$EVAL_SERVING
    [ "$2" = training ] && EVAL=$EVAL_TRAINING
    if [ "$2" = serving ]; then peak=infer_peak_bytes; wl="'baseline','quantize'"; extra=""
    else peak=train_peak_bytes; wl="'mixed_precision'"
        extra="AND EXISTS (SELECT 1 FROM params s WHERE s.run_id = r.id AND s.key = 'steps' AND s.value = '$STEPS')"
    fi
    "$MT" query --db "$DB" --format csv sql "SELECT MIN(a.value) FROM runs r
        JOIN metrics p ON p.run_id = r.id AND p.rank = -1 AND p.category = '' AND p.name = '$peak'
        JOIN metrics a ON a.run_id = r.id AND a.rank = -1 AND a.category = '' AND a.name = 'val_bpb'
        JOIN params m ON m.run_id = r.id AND m.key = 'model' AND m.value = '$1'
        JOIN params e ON e.run_id = r.id AND e.key = 'eval_tokens' AND e.value = '$EVAL'
        WHERE r.status = 'ok' AND r.workload IN ($wl) AND p.value <= $3 $extra" | tail -n 1
}

TABLE="$OUT/table.txt"
WHY="$OUT/unused_why.txt"
: >"$WHY"
printf "%-6s %-8s %10s  %-15s %10s %10s %7s %9s %9s %9s %7s  %s\n" model goal budget family \
    predicted measured unused pred_bpb meas_bpb best_bpb gap verdict >"$TABLE"
n=0 oom=0 slack=0 coarse_n=0 fits=0 acc=0 failed=0 exact=0
cases | while read -r model goal budgets; do
    for b in $budgets; do
        n=$((n + 1))
        extra="--eval-tokens $EVAL_SERVING"
        [ "$goal" = training ] && extra="--steps $STEPS --eval-tokens $EVAL_TRAINING"
        log="$OUT/case-$model-$goal-$b.txt"
        "$MT" fit --budget "$b" --for "$goal" "$model" --metric val_bpb --verify $extra \
            --db "$DB" --out "$OUT" >"$log" 2>"$log.err"
        rc=$?
        fam=$(sed -n 's/^best   *\([^ ]*\) .*/\1/p' "$log")
        fill=$(sed -n 's/^  filled: \([^;]*\);.*/\1/p' "$log")
        why=$(sed -n 's/^  filled: [^;]*; unused [0-9]* bytes ([0-9.]* %): \(.*\)/\1/p' "$log")
        pred=$(sed -n 's/^  peak *predicted \([0-9]*\)  measured.*/\1/p' "$log")
        meas=$(sed -n 's/^  peak *predicted [0-9]*  measured \([0-9]*\) .*/\1/p' "$log")
        pacc=$(sed -n 's/^  val_bpb *predicted \([^ ]*\)  measured.*/\1/p' "$log")
        macc=$(sed -n 's/^  val_bpb *predicted [^ ]*  measured \([^ ]*\).*/\1/p' "$log")
        if [ -z "$meas" ] || [ -z "$macc" ]; then
            if grep -q "nothing fits" "$log"; then verdict="nothing-fits"
            else verdict="FAILED(rc=$rc)"; failed=$((failed + 1)); fi
            printf "%-6s %-8s %10s  %-15s %10s %10s %7s %9s %9s %9s %7s  %s\n" "$model" "$goal" "$b" \
                - - - - - - - - "$verdict" >>"$TABLE"
            echo "n=$n oom=$oom slack=$slack coarse_n=$coarse_n fits=$fits acc=$acc failed=$failed exact=$exact" >"$OUT/.tally"
            continue
        fi
        best=$(best_measured "$model" "$goal" "$b")
        coarse=0
        case "$why" in "no finer step: "* | "nothing left to spend: "*) coarse=1 ;; esac
        line=$(awk -v b="$b" -v p="$pred" -v m="$meas" -v pa="$pacc" -v ma="$macc" -v be="$best" \
            -v coarse="$coarse" 'BEGIN {
            unused = 100 * (b - m) / b; gap = (be > 0) ? 100 * (ma - be) / be : 0;
            v = (m > b) ? "OOM" : "ok";
            if (m <= b && unused >= 5) v = v (coarse ? ",coarse" : ",slack");
            if (gap > 1) v = v ",acc";
            printf "%7.2f%% %9s %9s %9.4f %6.2f%%  %s", unused, pa, ma, be, gap, v }')
        printf "%-6s %-8s %10s  %-15s %10s %10s %s\n" "$model" "$goal" "$b" "$fam" "$pred" "$meas" \
            "$line" >>"$TABLE"
        case "$line" in *OOM*) oom=$((oom + 1)) ;; esac
        case "$line" in *slack* | *coarse*)
            echo "$model $goal $b ($fam, filled $fill): ${why:-no reason printed}" >>"$WHY" ;; esac
        case "$line" in *slack*) slack=$((slack + 1)) ;; *coarse*) coarse_n=$((coarse_n + 1)) ;; esac
        case "$line" in *OOM*) ;; *) fits=$((fits + 1)) ;; esac
        case "$line" in *acc*) acc=$((acc + 1)) ;; esac
        [ "$pred" = "$meas" ] && exact=$((exact + 1))
        echo "n=$n oom=$oom slack=$slack coarse_n=$coarse_n fits=$fits acc=$acc failed=$failed exact=$exact" >"$OUT/.tally"
        tail -n 1 "$TABLE"
    done
done
echo
cat "$TABLE"
if [ -s "$WHY" ]; then
    echo
    echo "cases with 5 % or more unused, and why fit could not spend it:"
    cat "$WHY"
fi
. "$OUT/.tally" 2>/dev/null || exit 1
echo
echo "summary: $n cases, $fits run within the budget; over the budget when run (OOM): $oom;" \
    "under 5 % unused: $((fits - slack - coarse_n)) of $fits; 5 % or more unused although fit" \
    "tried every step of its knobs (coarse, counted apart): $coarse_n; other 5 %" \
    "or more unused: $slack; val_bpb more than 1 % above the best measured within the budget:" \
    "$acc; failed to run: $failed; predicted peak = measured exactly: $exact (load:" \
    "$(cut -d' ' -f1-3 /proc/loadavg))"
[ "$failed" -eq 0 ]
