# tests/device/gpu/baseline_cuda.sh — device.baseline_cuda (ctest label `gpu`):
# `memtrade run baseline -p device=cuda` trains on the GPU and stores the interposer's device
# peaks by category; the weights, gradients and optimizer slabs on the device are exactly
# the plan's (plan_train_peak_bytes of those categories). Exits 77 (skipped) with the
# reason where there is no GPU or the build has no CUDA backend.
# Usage: baseline_cuda.sh MEMTRADE SOURCE_DIR (its READMEs are the corpus: a GPU machine
# has no Debian fortunes)
set -u
MT=$1 SRC=$2
. "$(dirname "$0")/setup.sh"
XDG_CACHE_HOME=$TMP/cache "$MT" run baseline -p model=small -p steps=30 -p device=cuda \
    -p corpus="$TMP/corpus.txt" --out "$TMP/out"
DB=$TMP/out/memtrade.db
status=$(q "SELECT status || ' ' || coalesce(error, '') FROM runs")
echo "run: $status"
[ "${status%% *}" = ok ] || { echo "FAIL: run not ok"; exit 1; }
fails=0
echo "peak_device_bytes $(val peak_device_bytes '')"
for c in weights gradients optimizer act_grads activations workspace kv_cache; do
    dev=$(val peak_device_bytes $c) plan=$(val plan_train_peak_bytes $c)
    echo "$c: device peak ${dev:-none}, plan ${plan:-none}"
    case $c in weights | gradients | optimizer)
        [ -n "$dev" ] && [ "$dev" = "$plan" ] || { echo "FAIL: $c device peak != plan"; fails=1; } ;;
    esac
done
q "SELECT name || ' ' || value FROM metrics WHERE rank = -1 AND name IN ('train_loss', 'val_bpb', 'train_tokens_per_s')"
q "SELECT name || ' ' || coalesce(CAST(value AS INTEGER), 'unavailable: ' || unavailable) FROM metrics WHERE rank = -1 AND name LIKE 'nvml%'"
[ "$fails" = 0 ] && echo ok
exit "$fails"
