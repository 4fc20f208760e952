# tests/harness/runtime_resume.sh — `memtrade sweep --resume --measure-runtime` probes only
# the classes of the runs that will run (issue 21): a run already ok is skipped by
# --resume, so its class needs no probe. Without --resume every class of the grid is
# counted, as before. Runs on tiny with the heap profiler.
. "$(dirname "$0")/lib.sh"

need_heap_plugin baseline
sweep() { # FILE EVAL_TOKENS: a sweep of baseline on tiny at those eval_tokens
    printf '[sweep]\nname = %s\nrepeats = 1\nseed = 1\n\n[baseline]\nmodel = tiny\nsteps = 3\neval_tokens = %s\n' \
        "$1" "$2" >"$TMP/$1.ini"
}
sweep a 1024
sweep b "1024, 2048"
opts="--db $DB --threads 2"

# the run of eval_tokens=1024, ok, no class probed
expect_rc 0 "$MT" sweep "$TMP/a.ini" $opts
expect_eq "terms before" "$(sql "SELECT count(*) FROM runtime_terms")" "0"

# b's grid: 1024 (ok: skipped) and 2048 (will run): one class to probe
expect_rc 0 "$MT" sweep "$TMP/b.ini" $opts --resume --measure-runtime --dry-run
expect_out "--resume: 1 of 2 runs already ok; probing the classes of the 1 that will run"
expect_out "runtime terms of 1 classes: 0 stored, 1 missing"
expect_rc 0 "$MT" sweep "$TMP/b.ini" $opts --resume --measure-runtime
expect_out "runtime terms of 1 classes: 0 stored, 1 measured now"
expect_eq "runs ok" "$(sql "SELECT count(*) FROM runs WHERE status = 'ok'")" "2"
expect_eq "classes of 1024" "$(sql "SELECT count(*) FROM runtime_terms WHERE class LIKE '% eval_tokens=1024 %'")" "0"
[ "$(sql "SELECT count(*) FROM runtime_terms WHERE class LIKE '% eval_tokens=2048 %'")" -gt 0 ] ||
    fail "no terms of the class of eval_tokens=2048"

# everything ok: nothing will run, nothing to probe
expect_rc 0 "$MT" sweep "$TMP/b.ini" $opts --resume --measure-runtime --dry-run
expect_out "--resume: 2 of 2 runs already ok; probing the classes of the 0 that will run"
expect_out "runtime terms of 0 classes"

# without --resume every class of the grid counts: 2048's stored, 1024's missing
expect_rc 0 "$MT" sweep "$TMP/b.ini" $opts --measure-runtime --dry-run
expect_out "runtime terms of 2 classes: 1 stored, 1 missing"
echo ok
