# tests/harness/arch_params.sh — the block options and the training length as parameters
# of every workload that trains or serves the reference model (MT_WL_PARAMS_ARCH:
# attention, n_kv_head, window, seq): a combination the model cannot take is refused
# before any child starts (exit 2, the reason, no database); a good one trains the model
# it names, and the run stores its training budget in tokens (train_tokens = steps x
# batch x seq), which the trade-off compares runs at.
. "$(dirname "$0")/lib.sh"

if [ ! -e "${MT_BINARY_DIR:?}/plugins/baseline.so" ]; then
    echo "skipped: no baseline plugin"
    exit 77
fi
export MEMTRADE_PLUGIN_PATH=$MT_BINARY_DIR/plugins
refused() { # refused MESSAGE ARGS...: exit 2 with MESSAGE, no database
    msg=$1
    shift
    expect_rc 2 "$MT" run baseline -p model=tiny "$@" --db "$TMP/none.db" --no-heap
    expect_out "$msg"
    [ ! -e "$TMP/none.db" ] || fail "a refused run created a database"
}
refused "seq 100 outside [0, 64] (the model's context)" -p seq=100
refused "n_kv_head 3 does not divide n_head 2" -p n_kv_head=3
refused "parameter 'attention' of workload 'baseline': 'sparse' is not one of dense|flash" \
    -p attention=sparse
printf '[checkpointing]\nmodel = tiny\nseq = 32, 80\n' >bad.ini
expect_rc 2 "$MT" sweep bad.ini --db "$TMP/none.db" --no-heap
expect_out "seq 80 outside [0, 64]"

# Two training lengths and both attention kinds: each run trains what it names.
printf '[sweep]\nthreads = 1\n[checkpointing]\nmodel = tiny\nsteps = 2\neval_tokens = 2048\nseq = 32, 64\nattention = dense, flash\n' >seq.ini
expect_rc 0 "$MT" sweep seq.ini --db "$DB" --no-heap
expect_eq "budgets (tokens)" "$(sql "SELECT group_concat(b, ',') FROM (SELECT DISTINCT train_budget AS b FROM tradeoff ORDER BY b)")" "1024.0,2048.0"
# flash keeps no T x T probabilities: less activation memory than dense at the same length
act() { # act ATTENTION SEQ: the planned activation bytes of that run
    sql "SELECT m.value FROM metrics m JOIN params a ON a.run_id = m.run_id AND a.key = 'attention'
         JOIN params s ON s.run_id = m.run_id AND s.key = 'seq'
         WHERE m.rank = -1 AND m.name = 'train_peak_bytes' AND m.category = 'activations'
           AND a.value = '$1' AND s.value = '$2'"
}
for T in 32 64; do
    d=$(act dense $T) f=$(act flash $T)
    [ -n "$d" ] && [ -n "$f" ] || fail "no activation figure at seq $T: dense '$d' flash '$f'"
    awk -v d="$d" -v f="$f" 'BEGIN { exit !(f < d) }' || fail "seq $T: flash $f >= dense $d"
done
echo "arch_params: ok"
