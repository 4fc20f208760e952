#!/bin/sh
# same_model.sh MEMTRADE [-p KEY=VALUE...] — issue 16: `baseline` and the four distributed
# workloads at the same model (tiny), steps (20), global batch (16) and seed, every other
# parameter at its default or as the extra parameters say (given to every run: with
# `-p tokenizer=...`, issue 18, the distributed workloads must train and score the same
# token ids as the baseline), run through the harness (the distributed ones on 2 ranks
# under its launcher), train the same model: each stores a val_loss within 1e-5
# (relative) of the baseline's. The baseline is trained here, in a model cache of this
# test's own, never loaded from one another build wrote.
memtrade=$1
shift
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
XDG_CACHE_HOME="$dir/cache"
export XDG_CACHE_HOME
for w in baseline data_parallel zero tensor_parallel pipeline_parallel; do
    ranks=""
    [ "$w" = baseline ] || ranks="-p ranks=2"
    # shellcheck disable=SC2086 # ranks is empty or one option and its value
    if ! timeout 120 "$memtrade" run "$w" -p model=tiny -p steps=20 -p batch=16 -p seed=1337 \
        $ranks "$@" --threads 1 --heap off --db "$dir/t.db" --out "$dir/out" >"$dir/$w.log" 2>&1; then
        cat "$dir/$w.log"
        echo "FAIL: $w did not run"
        exit 1
    fi
done
# the run's val_loss (rank -1: what the harness stores for the whole run)
sqlite3 -separator ' ' "$dir/t.db" "SELECT r.workload, printf('%.9f', m.value) FROM runs r
    JOIN metrics m ON m.run_id = r.id AND m.name = 'val_loss' AND m.rank = -1
    WHERE r.status = 'ok' ORDER BY r.id" >"$dir/val" || exit 1
cat "$dir/val"
awk '$1 == "baseline" { ref = $2 }
     { n++; if (!ref) { bad = 1; next }
       d = ($2 - ref) / ref; if (d < 0) d = -d
       if (d > 1e-5) { printf "FAIL: %s val_loss %s is %.2e from the baseline %s\n", $1, $2, d, ref; bad = 1 } }
     END { if (n != 5) { print "FAIL: want 5 val_loss, got " n; bad = 1 }
           if (bad) exit 1; print "ok: the five agree within 1e-5" }' "$dir/val"
