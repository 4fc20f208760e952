# tests/reliability/case_cache_key.sh — the model cache is keyed by everything the trained
# weights depend on (README: "the cache key covers seed and corpus"): another seed or
# another corpus (MEMTRADE_CORPUS, same size, other bytes) trains and caches a model of
# its own instead of serving the first one; the same seed and corpus is served from the
# cache.
. "$(dirname "$0")/lib.sh"

seq 10001 14000 >a.txt
seq 20001 24000 >b.txt
n=0
run() { # run SEED CORPUS WANT_TRAINED
  n=$((n + 1))
  MEMTRADE_CORPUS=$TMP/$2 expect_rc 0 "$MT" run baseline -p model=tiny -p steps=3 -p seed="$1" \
    -p eval_tokens=1024 --threads 1 --no-heap --db "$DB"
  expect_eq "run $n (seed $1, $2) trained" \
    "$(sql "SELECT value IS NOT NULL FROM metrics WHERE run_id = $n AND name = 'train_tokens_per_s'")" "$3"
  expect_eq "run $n cache files" "$(ls "$XDG_CACHE_HOME"/memtrade/*.mtckpt | wc -l)" "$4"
}
run 1 a.txt 1 1
run 1 a.txt 0 1 # served from the cache
run 2 a.txt 1 2 # another seed
run 1 b.txt 1 3 # another corpus
run 2 b.txt 1 4
run 1 b.txt 0 4
echo ok
