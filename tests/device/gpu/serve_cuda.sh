# tests/device/gpu/serve_cuda.sh — device.serve_cuda (ctest label `gpu`): the one serving
# measurement on the GPU. `memtrade run quantize -p device=cuda` (weight-only int8 per
# channel and int4 in groups of 128) and `memtrade run kv_cache -p device=cuda` (fp32, bf16
# and fp16 caches) each run ok; the same reference weights scored on the CPU (quantize with
# its scalar reference kernels; kv_cache fp32) and on the GPU (fp32 GEMMs) give val_loss
# within 1e-4 relative; the interposer's device peaks of weights, kv_cache and activations
# equal the device plan's (the larger of plan_infer_peak and plan_eval_peak: the phases
# free each other's memory); a 16-bit cache holds half the fp32 cache's bytes. Exits 77
# (skipped) with the reason where there is no GPU or the build has no CUDA backend.
# Usage: serve_cuda.sh MEMTRADE SOURCE_DIR (its READMEs are the corpus)
set -u
MT=$1 SRC=$2
. "$(dirname "$0")/setup.sh"
fails=0
common="-p model=small -p steps=30 -p eval_tokens=4096 -p decode_tokens=128"
run() { # NAME PLUGIN ARGS...
    name=$1 plugin=$2
    shift 2
    # shellcheck disable=SC2086
    XDG_CACHE_HOME=$TMP/cache "$MT" run "$plugin" $common -p corpus="$TMP/corpus.txt" "$@" \
        --out "$TMP/$name" >"$TMP/$name.log" 2>&1
    DB=$TMP/$name/memtrade.db
    status=$(q "SELECT status || ' ' || coalesce(error, '') FROM runs")
    echo "$name: run $status"
    [ "${status%% *}" = ok ] || { echo "FAIL: $name not ok"; tail -20 "$TMP/$name.log"; fails=1; }
}
fval() { q "SELECT value FROM metrics WHERE rank = -1 AND name = '$1' AND category = ''"; }
same_loss() { # CPU_RUN GPU_RUN
    a=$(DB=$TMP/$1/memtrade.db fval val_loss) b=$(DB=$TMP/$2/memtrade.db fval val_loss)
    echo "  val_loss cpu ${a:-none} gpu ${b:-none}"
    awk -v a="${a:-nan}" -v b="${b:-nan}" 'BEGIN { d = a - b; if (d < 0) d = -d;
        exit !(a + 0 == a && b + 0 == b && a > 0 && d <= 1e-4 * a) }' ||
        { echo "FAIL: $2 val_loss not within 1e-4 of $1's"; fails=1; }
}
device_vs_plan() { # GPU_RUN
    DB=$TMP/$1/memtrade.db
    for c in weights kv_cache activations workspace; do
        dev=$(val peak_device_bytes $c) pi=$(val plan_infer_peak_bytes $c)
        pe=$(val plan_eval_peak_bytes $c)
        plan=$(( ${pi:-0} > ${pe:-0} ? ${pi:-0} : ${pe:-0} ))
        echo "  $c: device peak ${dev:-none}, plan infer ${pi:-none} eval ${pe:-none}"
        [ "$c" = workspace ] && continue # cuBLAS's own allocations land there too
        [ -n "$dev" ] && [ "$dev" = "$plan" ] || { echo "FAIL: $1 $c device peak != plan"; fails=1; }
    done
    echo "  $(q "SELECT group_concat(name || ' ' || coalesce(CAST(value AS INTEGER), 'unavailable'), ', ') FROM metrics WHERE rank = -1 AND category = '' AND name IN ('decode_tokens_per_s', 'kv_cache_bytes', 'packed_bytes', 'nvml_peak_device_bytes', 'peak_device_bytes')")"
}
run q8_cpu quantize -p bits=8 -p granularity=channel -p kernel=scalar
run q8_gpu quantize -p bits=8 -p granularity=channel -p device=cuda
same_loss q8_cpu q8_gpu
device_vs_plan q8_gpu
run q4_cpu quantize -p bits=4 -p group_size=128 -p kernel=scalar
run q4_gpu quantize -p bits=4 -p group_size=128 -p device=cuda
same_loss q4_cpu q4_gpu
device_vs_plan q4_gpu
run kv_cpu kv_cache -p kv_cache=fp32
for f in fp32 bf16 fp16; do
    run "kv_$f" kv_cache -p kv_cache=$f -p device=cuda
    same_loss kv_cpu "kv_$f"
    device_vs_plan "kv_$f"
done
k32=$(DB=$TMP/kv_fp32/memtrade.db fval kv_cache_bytes) k16=$(DB=$TMP/kv_bf16/memtrade.db fval kv_cache_bytes)
echo "kv_cache_bytes fp32 ${k32:-none}, bf16 ${k16:-none}"
awk -v a="${k32:-0}" -v b="${k16:-0}" 'BEGIN { exit !(a > 0 && a == 2 * b) }' ||
    { echo "FAIL: the bf16 cache is not half the fp32 cache"; fails=1; }
# what the device does not serve is refused, naming what it does
XDG_CACHE_HOME=$TMP/cache "$MT" run quantize -p model=small -p bits=3 -p device=cuda \
    -p corpus="$TMP/corpus.txt" --out "$TMP/refuse" >"$TMP/refuse.log" 2>&1
err=$(DB=$TMP/refuse/memtrade.db q "SELECT coalesce(error, '') FROM runs")
case $err in *"int8 and int4"*) echo "refused: $err" ;; *) echo "FAIL: bits=3 on cuda: '$err'"; fails=1 ;; esac
[ "$fails" = 0 ] && echo ok
exit "$fails"
