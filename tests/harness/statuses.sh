# tests/harness/statuses.sh — plugins that succeed, fail, segfault, hang and allocate
# without bound: each recorded with the right status and its data kept; the sweep goes on.
. "$(dirname "$0")/lib.sh"

single_thread_spec s.ini statuses <<'INI'
[t_ok]
steps = 2, 3
lr = 0.01
[t_fail]
[t_segv]
[t_hang]
timeout = 1
[t_oom]
mem_limit = 256M
check = on, off
[t_ok.after]
steps = 1
INI
expect_rc 1 "$MT" sweep s.ini --db "$DB" --no-heap
expect_out "8 started: 3 ok 1 failed 1 crashed 1 timeout 2 oom"

expect_eq statuses "$(sql "SELECT group_concat(workload || ':' || status, ' ') FROM (SELECT * FROM runs ORDER BY id)")" \
    "t_ok:ok t_ok:ok t_fail:failed t_segv:crashed t_hang:timeout t_oom:oom t_oom:oom t_ok:ok"

# Known metrics, exactly; unavailable metrics keep their reason.
expect_eq val_bpb "$(sql "SELECT group_concat(value, ' ') FROM metrics WHERE name = 'val_bpb' AND rank = -1")" "2.0 2.25 1.75"
expect_eq lr "$(sql "SELECT value FROM metrics WHERE name = 'lr_seen' AND run_id = 1")" "0.01"
expect_eq seed "$(sql "SELECT value || ':' || (SELECT seed FROM runs WHERE id = 1) FROM metrics WHERE name = 'seed_seen' AND run_id = 1")" "7.0:7"
expect_eq threads "$(sql "SELECT value FROM metrics WHERE name = 'threads_seen' AND run_id = 1")" "1.0"
expect_eq na "$(sql "SELECT coalesce(value, 'NULL') || '|' || unavailable FROM metrics WHERE name = 'decode_tokens_per_s' AND run_id = 2")" "NULL|this workload does not decode"
expect_eq samples "$(sql "SELECT group_concat(x || ',' || y, ' ') FROM samples WHERE run_id = 2 AND series = 'train_loss'")" "0.0,10.0 1.0,9.0 2.0,8.0"
expect_eq regions "$(sql "SELECT group_concat(path || ':' || calls || ':' || depth, ' ') FROM (SELECT * FROM regions WHERE run_id = 2 ORDER BY path)")" "train:1:0 train/step:3:1"
expect_eq log "$(sql "SELECT count(*) FROM logs WHERE run_id = 2 AND text = 'done with 3 steps' || char(9) || 'tab' || char(10) || 'newline'")" "1"
expect_eq params "$(sql "SELECT group_concat(key || '=' || value, '&') FROM (SELECT * FROM params WHERE run_id = 1 AND key NOT LIKE 'corpus.%' ORDER BY key)")" "dtype=fp32&flag=false&lr=0.01&note=hello&seed=7&sleep_ms=0&steps=2"
expect_eq config_key "$(sql "SELECT config_key FROM runs WHERE id = 1")" "t_ok?corpus.bytes=$(sql "SELECT value FROM params WHERE run_id = 1 AND key = 'corpus.bytes'")&corpus.hash=$(sql "SELECT value FROM params WHERE run_id = 1 AND key = 'corpus.hash'")&dtype=fp32&flag=false&lr=0.01&note=hello&seed=7&sleep_ms=0&steps=2"
expect_eq label "$(sql "SELECT coalesce(label, '-') FROM runs WHERE id IN (1, 8) ORDER BY id" | tr '\n' ' ')" "- after "

# Failure: the plugin's message; what it reported before failing stays.
expect_eq failed "$(sql "SELECT error || '|' || exit_code FROM runs WHERE workload = 't_fail'")" "deliberate failure, code 42|1"
# The seeded RNG: the same seed gives the same stream.
expect_eq rng "$(sql "SELECT count(DISTINCT value) FROM metrics WHERE name = 'rng_first' AND run_id IN (1, 2)")" "1"
expect_eq kept_f "$(sql "SELECT value FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.workload = 't_fail' AND m.name = 'before_failure'")" "1.0"

# ABI misuse and a failure without a message are failures that say so.
expect_rc 1 "$MT" run t_fail -p mode=misuse --db "$TMP/f.db" --no-heap
expect_eq misuse "$(sqlite3 "$TMP/f.db" "SELECT status || ':' || error FROM runs")" "failed:plugin read parameter 'x' with the wrong type getter"
expect_rc 1 "$MT" run t_fail -p mode=silent --db "$TMP/f.db" --no-heap
expect_eq silent "$(sqlite3 "$TMP/f.db" "SELECT status || ':' || error FROM runs WHERE id = 2")" "failed:run() failed without a message (mt_error was not called)"

# Crash: the signal; the metric and sample from before the crash stay.
expect_eq crashed "$(sql "SELECT signal FROM runs WHERE workload = 't_segv'")" "11"
expect_eq kept_c "$(sql "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.workload = 't_segv' AND m.name = 'before_crash' AND m.value = 2")" "1"
expect_eq kept_s "$(sql "SELECT count(*) FROM samples s JOIN runs r ON r.id = s.run_id WHERE r.workload = 't_segv'")" "1"

# Timeout: killed within the grace period, its metric kept.
expect_eq timeout "$(sql "SELECT wall_s >= 1 AND wall_s < 8 FROM runs WHERE workload = 't_hang'")" "1"
expect_eq kept_t "$(sql "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.workload = 't_hang' AND m.name = 'before_hang'")" "1"

# OOM: both the checked and the unchecked allocator, with a message saying so.
sql "SELECT error FROM runs WHERE workload = 't_oom'" | grep -qiE "memory" || fail "oom runs lack a memory message: $(sql "SELECT error FROM runs WHERE workload = 't_oom'")"

# Kernel-measured peak RSS for every run, in bytes (> 1 MiB: a process at all).
expect_eq rss "$(sql "SELECT count(*) FROM runs r JOIN metrics m ON m.run_id = r.id AND m.name = 'peak_rss_bytes' AND m.rank = -1 AND m.value > 1048576 AND m.unit = 'bytes'")" "8"
# Reproduction facts.
expect_eq facts "$(sql "SELECT count(*) FROM runs WHERE facts_json LIKE '%\"sqlite\"%' AND facts_json LIKE '%\"onednn\"%' AND facts_json LIKE '%\"papi\"%' AND facts_json LIKE '%\"cpu\"%' AND git_rev IS NOT NULL AND abi_version = '1.4'")" "8"
expect_eq sweep "$(sql "SELECT name || ':' || (finished_at IS NOT NULL) || ':' || (spec_text LIKE '%[t_hang]%') FROM sweeps")" "statuses:1:1"
echo "ok"
