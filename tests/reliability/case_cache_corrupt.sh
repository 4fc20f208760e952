# tests/reliability/case_cache_corrupt.sh — a corrupt cached reference is retrained and the
# terminal says so (not only the run's log); the time spent preparing the reference
# (training it here) is left out of the run's wall_s and stored as reference_s.
. "$(dirname "$0")/lib.sh"

q() { expect_rc 0 "$MT" run quantize -p model=tiny -p steps=20 -p bits=8 -p eval_tokens=2000 \
        --threads 1 --no-heap --db "$DB"; }
q
expect_out "preparing its reference model"
expect_eq "reference_s stored" "$(sql "SELECT value > 0 FROM metrics WHERE run_id = 1 AND name = 'reference_s'")" 1
expect_eq "wall_s without it" "$(sql "SELECT r.wall_s > 0 FROM runs r WHERE r.id = 1")" 1
ckpt=$(ls "$XDG_CACHE_HOME"/memtrade/*-s20-*.mtckpt)
[ -f "$ckpt" ] || fail "no cached reference"
printf 'garbage' | dd of="$ckpt" bs=1 seek=100 conv=notrunc 2>/dev/null
q
expect_out "run 2 logged 1 warning: cached baseline"
expect_out "unusable, retraining"
expect_eq "retrained" "$(sql "SELECT count(*) FROM logs WHERE run_id = 2 AND level = 'warn' AND text LIKE '%unusable, retraining: checkpoint%'")" 1
q # the rewritten cache serves quietly
grep -q "warning" "$TMP/last.out" && { cat "$TMP/last.out"; fail "a warning with a good cache"; }
echo ok
