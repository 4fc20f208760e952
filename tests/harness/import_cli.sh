# tests/harness/import_cli.sh — `-p model=PATH`, `memtrade export` and `memtrade describe
# MODEL`: a trained tiny baseline exported to a Hugging Face folder and to GGUF (f32, q8_0)
# scores exactly the same val_bpb when served from either f32 file, with its f32 weights
# mapped rather than copied; a quantized file scores close to it; a training workload
# trains the file's shape; missing files, a vocabulary that needs a tokenizer and a
# key/value head count the weights cannot take are refused with the reason. A model file's
# own tokenizer is used by default (the Hugging Face fixture's folder, and the GGUF file
# exported from it, which carries it, and the folder exported from it with memtrade's own
# tokenizer.json: the same val_bpb), `-p tokenizer=bytes` forces bytes.
. "$(dirname "$0")/lib.sh"

if [ ! -e "${MT_BINARY_DIR:?}/plugins/baseline.so" ]; then
    echo "skipped: no baseline plugin"
    exit 77
fi
export MEMTRADE_PLUGIN_PATH=$MT_BINARY_DIR/plugins
run() { expect_rc 0 "$MT" run "$@" -p eval_tokens=4096 --db "$DB" --no-heap; }
metric() { # metric RUN_ID NAME
    sql "SELECT value FROM metrics WHERE run_id = $1 AND name = '$2' AND category = '' AND rank = -1"
}
run baseline -p model=tiny -p steps=5
ckpt=$(ls "$XDG_CACHE_HOME"/memtrade/*.mtckpt)
expect_rc 0 "$MT" export "$ckpt" --format hf "$TMP/tiny-hf"
expect_rc 0 "$MT" export "$ckpt" --format gguf "$TMP/tiny.gguf"
expect_rc 0 "$MT" export "$ckpt" --format gguf --dtype q8_0 "$TMP/tiny-q8.gguf"
expect_rc 0 "$MT" describe "$TMP/tiny-q8.gguf"
expect_out "shape: L2 H2 KV2 C64 F256 V256 T64"
expect_out "18 F32 10 Q8_0"
expect_rc 0 "$MT" describe "$TMP/tiny-hf"
expect_out "GPT2LMHeadModel (Hugging Face folder)"
run baseline -p model="$TMP/tiny-hf"
run baseline -p model="$TMP/tiny.gguf"
run baseline -p model="$TMP/tiny-q8.gguf"
ref=$(metric 1 val_bpb)
expect_eq "val_bpb from the HF folder" "$(metric 2 val_bpb)" "$ref"
expect_eq "val_bpb from the GGUF file" "$(metric 3 val_bpb)" "$ref"
[ "$(metric 4 val_bpb)" != "$ref" ] || fail "q8_0 scored exactly the f32 val_bpb"
awk -v a="$(metric 4 val_bpb)" -v b="$ref" 'BEGIN { d = a - b; exit !(d < 0.01 && d > -0.01) }' ||
    fail "q8_0 val_bpb $(metric 4 val_bpb) far from $ref"
# every f32 tensor of a GGUF memtrade wrote is mapped; GPT-2's Conv1D matrices are copied
expect_eq "gguf copied bytes" "$(metric 3 import_copied_bytes)" "0.0"
expect_eq "gguf mapped = model bytes" "$(metric 3 import_mapped_bytes)" "$(metric 3 model_bytes)"
expect_eq "unknown budget" "$(sql "SELECT unavailable FROM metrics WHERE run_id = 2 AND name = 'train_tokens'")" \
    "weights imported from a model file: its training budget is not known"
# a training workload trains the file's shape
run checkpointing -p model="$TMP/tiny-hf" -p steps=2
# refusals before any child starts
expect_rc 2 "$MT" run baseline -p model="$TMP/none.gguf" --db "$TMP/none.db" --no-heap
expect_out "No such file or directory"
expect_rc 2 "$MT" run baseline -p model="$TMP/tiny-hf" -p n_kv_head=1 --db "$TMP/none.db" --no-heap
expect_out "has 2 key/value heads; its weights fix them"
[ ! -e "$TMP/none.db" ] || fail "a refused run created a database"
# a vocabulary beyond bytes needs a tokenizer: the run fails saying so
run baseline -p model=tiny,vocab=300 -p steps=2
ck300=$(ls "$XDG_CACHE_HOME"/memtrade/*V300*.mtckpt)
expect_rc 0 "$MT" export "$ck300" --format gguf "$TMP/v300.gguf"
expect_rc 1 "$MT" run baseline -p model="$TMP/v300.gguf" --db "$DB" --no-heap
expect_eq "tokenizer refusal" "$(sql "SELECT error LIKE '%vocabulary of 300 tokens%needs its tokenizer%' FROM runs ORDER BY id DESC LIMIT 1")" "1"
expect_eq "forced bytes" "$(sql "SELECT error LIKE '%vocabulary of 300 tokens%the file carries none%' FROM runs ORDER BY id DESC LIMIT 1")" "1"
# a model's own tokenizer, by default: the folder's tokenizer.json, the GGUF's metadata
HF=${MT_SOURCE_DIR:?}/tests/fixtures/hf/gpt2-tiny
CORPUS=$MT_SOURCE_DIR/tests/golden/corpus.txt
tok() { m=$1; shift; run baseline -p model="$m" -p corpus="$CORPUS" -p decode_tokens=16 "$@"; }
expect_rc 0 "$MT" export "$HF" --format gguf "$TMP/gpt2-tiny.gguf"
expect_out "tokenizer byte-level BPE"
tok "$HF"
hf_id=$(sql "SELECT max(id) FROM runs")
tok "$TMP/gpt2-tiny.gguf"
gg_id=$(sql "SELECT max(id) FROM runs")
expect_eq "log of the model's own tokenizer" "$(sql "SELECT count(*) FROM logs WHERE run_id = $hf_id AND text LIKE 'tokenizer $HF (the model''s own) (byte-level BPE, vocab 484)%'")" 1
expect_eq "val_bpb through GGUF's tokenizer" "$(metric "$gg_id" val_bpb)" "$(metric "$hf_id" val_bpb)"
# and through memtrade's own folder of it: its tokenizer.json written by export
expect_rc 0 "$MT" export "$HF" --format hf "$TMP/gpt2-tiny-hf"
expect_out "tokenizer byte-level BPE"
tok "$TMP/gpt2-tiny-hf"
expect_eq "val_bpb through memtrade's tokenizer.json" "$(metric "$(sql "SELECT max(id) FROM runs")" val_bpb)" "$(metric "$hf_id" val_bpb)"
expect_eq "tokenizer_config.json" "$(grep -c '"bos_token": "<|endoftext|>"' "$TMP/gpt2-tiny-hf/tokenizer_config.json")" 1
expect_rc 1 "$MT" run baseline -p model="$HF" -p tokenizer=bytes -p eval_tokens=4096 --db "$DB" --no-heap
expect_eq "tokenizer=bytes forces bytes" "$(sql "SELECT error LIKE '%vocabulary of 484 tokens%tokenizer=bytes forced bytes%' FROM runs ORDER BY id DESC LIMIT 1")" "1"
expect_rc 2 "$MT" export "$ckpt" --format onnx "$TMP/x"
expect_out "--format 'onnx' unknown (hf, gguf)"
echo ok
