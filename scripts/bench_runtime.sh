#!/bin/sh
# bench_runtime.sh MEMTRADE DB [MODEL] — the plan's runtime terms checked on MODEL (default
# small): for each workload and knob of the list below, `memtrade plan` measures the
# configuration's runtime class on first need (a lazy probe, in a folder of its own),
# `memtrade run` runs it (3 steps, 2048 scored bytes) into DB, and `memtrade query check`
# gives each phase's heap profiler peak, plan and runtime terms. Prints one line per run
# and phase, "RUN|WORKLOAD KNOBS|PHASE|heap H plan P runtime R: +D %|ok" (OFF when the
# heap peak is more than 2 % from plan + runtime, missing when the runtime terms of the
# phase are not stored), sorted; exits 1 when a command fails. The heap figures are
# deterministic for a build, so the check is of bytes, not of time. tests/harness/
# runtime.sh runs it on tiny with RAGGED=0 (harness.runtime: 16 runs); on small it takes about 5 minutes on an
# idle 2-core machine (each probe and run 4-10 s), so it lives here, not in ctest.
# Environment: RAGGED=0 leaves out the last row (a micro-batch that does not divide the
# batch); the caller's MEMTRADE_PLUGIN_PATH and XDG_CACHE_HOME (the first run trains
# the reference model into that cache, the post-training ones load it).
set -u
MT=${1:?usage: bench_runtime.sh MEMTRADE DB [MODEL]}
DB=${2:?usage: bench_runtime.sh MEMTRADE DB [MODEL]}
MODEL=${3:-small}
LOG=$(mktemp /tmp/mt_bench_runtime.XXXXXX)
trap 'rm -f "$LOG"' EXIT

step() { # command...: runs it, its output in $LOG; on failure prints it and exits 1
    "$@" >"$LOG" 2>&1 || { cat "$LOG" >&2; echo "bench_runtime: '$*' failed" >&2; exit 1; }
}

list() {
    cat <<'LIST'
baseline
grad_accum -p accum_steps=2
mixed_precision -p precision=fp32
mixed_precision -p precision=bf16
checkpointing -p every=1
mempool
kv_cache -p kv_cache=fp32
kv_cache -p kv_cache=int8
kv_cache -p kv_cache=int4
quantize -p bits=8
quantize -p bits=4
quantize -p bits=4 -p method=gptq
prune
prune -p method=sparsegpt
distill
lora
LIST
    # a micro-batch that does not divide the batch (16 = 5 x 3 + 1), as fit's fill sets it
    [ "${RAGGED:-1}" = 0 ] || echo "mixed_precision -p precision=bf16 -p micro_batch=3 -p accum_steps=6"
}

list | while read -r wl knobs; do
    [ -n "$wl" ] || continue
    # a missing database: the first plan creates it with its probe (later ones probe lazily)
    mr=
    [ -e "$DB" ] || mr=--measure-runtime
    # shellcheck disable=SC2086
    step "$MT" plan "$wl" -p model="$MODEL" -p eval_tokens=2048 $knobs --db "$DB" --csv $mr
    # shellcheck disable=SC2086
    step "$MT" run "$wl" -p model="$MODEL" -p eval_tokens=2048 -p steps=3 $knobs --db "$DB"
    run=$(sqlite3 -batch -noheader "$DB" "SELECT max(id) FROM runs")
    step "$MT" query check "$run" --db "$DB" --format csv
    awk -F, -v run="$run" -v what="$wl $knobs" '
        $2 == "runtime" { rt[$1] = $3 } $2 == "total" { heap[$1] = $5; plan[$1] = $3 }
        END { for (ph in heap) { if (plan[ph] == "" || heap[ph] == "") continue
                if (rt[ph] == "") { printf "%s|%s|%s|missing\n", run, what, ph; continue }
                d = heap[ph] - plan[ph] - rt[ph]
                printf "%s|%s|%s|heap %d plan %d runtime %d: %+.2f %%|%s\n", run, what, ph,
                    heap[ph], plan[ph], rt[ph], 100 * d / heap[ph],
                    (d <= 0.02 * heap[ph] && -d <= 0.02 * heap[ph]) ? "ok" : "OFF" } }' \
        "$LOG" | sort
done
