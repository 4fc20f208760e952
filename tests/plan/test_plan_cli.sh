#!/bin/sh
# test_plan_cli.sh MEMTRADE — `memtrade plan` on a Llama-2-70B shape (L80 H64 KV8 C8192
# F28672 T4096 V32000: 68,976,648,192 parameters) under a 1 GiB address-space limit:
# exact bytes per category, nothing of the model allocated; refusals exit 2.
set -u
MT=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
# ASan reserves terabytes of shadow address space: there the limit is left off (the
# plain build keeps it, and with it the proof that nothing of the model is allocated)
LIMIT=1048576
[ -n "${MT_NO_VLIMIT:-}" ] && LIMIT=unlimited
SHAPE=model=llama-1b,L=80,C=8192,H=64,KV=8,F=28672,T=4096,V=32000
out=$( (ulimit -v $LIMIT; "$MT" plan mixed_precision -p $SHAPE -p seq=4096 -p batch=1 \
        -p precision=bf16 --csv) ) || fail "plan under 1 GiB exited $?"
echo "$out"
line() { echo "$out" | grep -qx "$1" || fail "missing line '$1'"; }
line "goal,category,peak_bytes,phase"
line "training,weights,137953296384,train"      # 2 bytes x 68,976,648,192
line "training,gradients,137953296384,train"
line "training,optimizer,827719778304,train"    # 12 bytes: fp32 master, m, v
line "serving,weights,275906592768,eval"        # the fp32 evaluation model
# the KV cache of the serving measurement: 80 layers x 2 x 4096 tokens x 1024 x 2 bytes
out=$( (ulimit -v $LIMIT; "$MT" plan baseline -p $SHAPE -p kv_cache=fp16 --for serving --csv) ) ||
    fail "baseline plan exited $?"
echo "$out"
line "serving,kv_cache,1342177280,infer"
echo "$out" | grep -q "^training" && fail "--for serving printed training rows"
# tensor parallel over 8 ranks on a 64B GPT-2 shape (L80 C8192 T2048 V50257; the distributed
# engine has no Llama options) under the same limit: the sharded 8-bit AdamW and Adafactor
# state per rank, from the closed forms (doptim.h's mt_dopt_plan), not a walk of the rows.
# adamw8: 2 bytes an element + 8 a block run; a rank's part of a unit touches: qkv_w 12288
# blocks, qkv_b 3, attproj_w 8192 (a run a row), fc_w 16384, fc_b 2, fcproj_w 16384 (2 a row).
# adafactor: 4 (rows + cols) of each part (qkv_w 3072 x 8192, attproj_w 8192 x 1024, fc_w
# 4096 x 8192, fcproj_w 8192 x 4096), 4 rows of a vector part (qkv_b 3072, fc_b 4096).
TP=model=gpt2,L=80,C=8192,H=64,T=2048,vocab=50257
for o in adamw8,17007907552 adafactor,32780612; do
    out=$( (ulimit -v $LIMIT; "$MT" plan tensor_parallel -p $TP -p ranks=8 -p optimizer=${o%,*} \
            --no-runtime --csv) ) || fail "tensor_parallel ${o%,*} plan under 1 GiB exited $?"
    line "training,optimizer,${o#*,},train"
done
# prune on tiny (2 layers of 49152 prunable weights, sparsity 0.5): the served weights are
# the slim slab plus the packed layers, by format (dense keeps the zeros: the fp32 slab)
out=$("$MT" plan prune -p model=tiny -p storage=csr --csv) || fail "prune plan exited $?"
line "serving,weights,389120,infer"
out=$("$MT" plan prune -p model=tiny -p method=sparsegpt --csv) || fail "sparsegpt plan exited $?"
line "serving,weights,303104,infer"
out=$("$MT" plan prune -p model=tiny -p storage=dense --csv) || fail "dense plan exited $?"
line "serving,weights,482304,infer"
# heads: 1 of 2 heads per layer kept: qkv 96 x 64 and attproj 64 x 32, dense, with
# their 96 + 32 kept indices, beside the full MLP matrices
out=$("$MT" plan prune -p model=tiny -p method=heads --csv) || fail "heads plan exited $?"
line "serving,weights,417792,infer"
"$MT" plan prune -p model=tiny -p scope=global 2>/dev/null; [ $? -eq 2 ] || fail "global scope not exit 2"
"$MT" plan prune -p model=tiny -p storage=fastest 2>/dev/null; [ $? -eq 2 ] || fail "fastest not exit 2"
# distill: a one-layer student trained beside the tiny teacher's inference slabs, then with
# the teacher's logits cached (bf16: 16 x 64 x 256 values, 4 + 2 bytes each, in data)
out=$("$MT" plan distill -p model=tiny -p student_layers=1 --csv) || fail "distill plan exited $?"
line "training,weights,764672,train"
line "serving,weights,282368,infer"
data() { echo "$out" | sed -n "s/^training,data,\([0-9]*\),$1\$/\1/p"; }
d0=$(data train)
out=$("$MT" plan distill -p model=tiny -p student_layers=1 -p teacher_cache=on \
      -p teacher_cache_dtype=bf16 --csv) || fail "distill cache plan exited $?"
line "training,weights,764672,teacher_cache"
[ $(($(data teacher_cache) - d0)) -eq 1572864 ] || fail "cache buffers: $(data teacher_cache) - $d0"
json=$("$MT" plan baseline -p model=tiny --json) || fail "json exited $?"
echo "$json" | grep -q '"training":{"peak_bytes":{"weights":' || fail "json: $json"
"$MT" plan baseline -p model=tiny -p stpes=3 2>/dev/null; [ $? -eq 2 ] || fail "misspelt parameter not exit 2"
"$MT" plan baseline -p model=huge 2>/dev/null; [ $? -eq 2 ] || fail "unknown preset not exit 2"
"$MT" plan nosuch 2>/dev/null; [ $? -eq 2 ] || fail "unknown workload not exit 2"
"$MT" plan baseline --for both 2>/dev/null; [ $? -eq 2 ] || fail "--for both not exit 2"
echo ok
