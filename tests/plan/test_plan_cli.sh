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
json=$("$MT" plan baseline -p model=tiny --json) || fail "json exited $?"
echo "$json" | grep -q '"training":{"peak_bytes":{"weights":' || fail "json: $json"
"$MT" plan baseline -p model=tiny -p stpes=3 2>/dev/null; [ $? -eq 2 ] || fail "misspelt parameter not exit 2"
"$MT" plan baseline -p model=huge 2>/dev/null; [ $? -eq 2 ] || fail "unknown preset not exit 2"
"$MT" plan nosuch 2>/dev/null; [ $? -eq 2 ] || fail "unknown workload not exit 2"
"$MT" plan baseline --for both 2>/dev/null; [ $? -eq 2 ] || fail "--for both not exit 2"
echo ok
