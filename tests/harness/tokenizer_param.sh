# tests/harness/tokenizer_param.sh — the `tokenizer` parameter end to end: baseline on
# tiny with the Hugging Face gpt2-tiny folder's tokenizer.json trains and scores token
# ids (the preset takes the tokenizer's vocab), stores val_bpb per byte of text and
# eval_bytes = the bytes its eval_tokens tokens decode to; a missing tokenizer and an
# unsupported one are refused with a message naming them.
. "$(dirname "$0")/lib.sh"
if [ ! -e "${MT_BINARY_DIR:?}/plugins/baseline.so" ]; then
    echo "skipped: no baseline plugin"
    exit 77
fi
export MEMTRADE_PLUGIN_PATH=$MT_BINARY_DIR/plugins
HF=${MT_SOURCE_DIR:?}/tests/fixtures/hf/gpt2-tiny
CORPUS=$MT_SOURCE_DIR/tests/golden/corpus.txt
[ -e "$HF/tokenizer.json" ] || { echo "skipped: no Hugging Face fixture"; exit 77; }
expect_rc 0 "$MT" run baseline -p model=tiny -p steps=2 -p eval_tokens=500 -p corpus="$CORPUS" \
    -p tokenizer="$HF" -p decode_tokens=16 --threads 1 --no-heap --db "$DB"
metric() { sql "SELECT value FROM metrics WHERE name = '$1' AND rank = -1 OR name = '$1' AND rank = 0 LIMIT 1"; }
bytes=$(metric eval_bytes)
bpb=$(metric val_bpb)
loss=$(metric val_loss)
[ -n "$bytes" ] && [ -n "$bpb" ] || fail "no eval_bytes / val_bpb stored"
# 500 tokens of a BPE hold more than 500 bytes; val_loss is val_bpb in nats per byte
awk -v b="$bytes" 'BEGIN { exit !(b > 600) }' || fail "eval_bytes $bytes: not the bytes of 500 BPE tokens"
awk -v b="$bpb" -v l="$loss" 'BEGIN { d = b * log(2) - l; exit !(d < 1e-9 && d > -1e-9) }' ||
    fail "val_loss $loss is not val_bpb $bpb x ln 2"
expect_eq "log line" "$(sql "SELECT count(*) FROM logs WHERE text LIKE 'eval over 500 tokens (byte-level BPE) = % bytes:%'")" 1
echo "baseline with the gpt2-tiny tokenizer: eval_bytes $bytes val_bpb $bpb"
# refusals name what was given
"$MT" run baseline -p model=tiny -p steps=2 -p tokenizer=/nonexistent/tok.json --threads 1 \
    --no-heap --db "$TMP/bad.db" >"$TMP/last.out" 2>&1
expect_out "/nonexistent/tok.json"
printf '{"model": {"type": "Unigram", "vocab": []}}' >unigram.json
"$MT" run baseline -p model=tiny -p steps=2 -p tokenizer="$TMP/unigram.json" --threads 1 \
    --no-heap --db "$TMP/bad.db" >"$TMP/last.out" 2>&1
expect_out "tokenizer model Unigram is not supported (supported: BPE"
echo "tokenizer_param: ok"
