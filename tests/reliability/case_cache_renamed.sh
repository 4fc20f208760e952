# tests/reliability/case_cache_renamed.sh — the model cache trusts the header, not the file
# name: a 30-step checkpoint copied under the 20-step name is refused (said in the run's
# log, with both step counts) and the 20-step baseline is trained again, not served as
# "baseline from cache (20 steps)".
. "$(dirname "$0")/lib.sh"

run() { expect_rc 0 "$MT" run baseline -p model=tiny -p steps="$1" -p eval_tokens=2000 \
          --threads 1 --no-heap --db "$DB"; }
run 20
run 30
c20=$(ls "$XDG_CACHE_HOME"/memtrade/*-s20-*.mtckpt)
c30=$(ls "$XDG_CACHE_HOME"/memtrade/*-s30-*.mtckpt)
[ -f "$c20" ] && [ -f "$c30" ] || fail "cache files: '$c20' '$c30'"
run 20 # from the cache: no training in this run
expect_eq "3rd run served from cache" \
  "$(sql "SELECT unavailable IS NOT NULL FROM metrics WHERE run_id = 3 AND name = 'train_tokens_per_s'")" 1
cp "$c30" "$c20"
run 20
expect_eq "4th run trained again" \
  "$(sql "SELECT value > 0 FROM metrics WHERE run_id = 4 AND name = 'train_tokens_per_s'")" 1
expect_eq "why, in the log" \
  "$(sql "SELECT count(*) FROM logs WHERE run_id = 4 AND level = 'warn' AND text LIKE '%unusable%trained 30 steps, not 20%'")" 1
cmp -s "$c20" "$c30" && fail "the renamed checkpoint was left in place of the 20-step one"
# and the rewritten file is served again
run 20
expect_eq "5th run from the rewritten cache" \
  "$(sql "SELECT unavailable IS NOT NULL FROM metrics WHERE run_id = 5 AND name = 'train_tokens_per_s'")" 1
echo ok
