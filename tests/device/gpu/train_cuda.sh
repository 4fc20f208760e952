# tests/device/gpu/train_cuda.sh — device.train_cuda (ctest label `gpu`): the
# training-memory plugins with device=cuda, the one loop on the GPU twin: grad_accum
# (4 micro-batches accumulated on the device), mixed_precision (bf16 GEMMs),
# checkpointing (every 2: blocks recomputed in backward) and checkpointing every 1. Each
# run is ok with a finite loss; the interposer's device peaks of weights, gradients,
# optimizer, activations and act_grads are exactly the device plan's
# (plan_train_peak_bytes, mt_cuda_gpt_plan); checkpointing recomputes blocks and holds
# fewer activation bytes than every 1. attention=flash (cflash.h) on the device: baseline,
# mixed_precision and checkpointing every 2, the same checks, and checkpointing every 2
# with flash holds fewer activation bytes than with dense. Exits 77 (skipped) with the reason where there is
# no GPU or the build has no CUDA backend.
# Usage: train_cuda.sh MEMTRADE SOURCE_DIR (its READMEs are the corpus)
set -u
MT=$1 SRC=$2
. "$(dirname "$0")/setup.sh"
fails=0
run() { # NAME PLUGIN ARGS...
    name=$1 plugin=$2
    shift 2
    XDG_CACHE_HOME=$TMP/cache "$MT" run "$plugin" -p model=small -p steps=20 -p device=cuda \
        -p corpus="$TMP/corpus.txt" "$@" --out "$TMP/$name" >"$TMP/$name.log" 2>&1
    DB=$TMP/$name/memtrade.db
    status=$(q "SELECT status || ' ' || coalesce(error, '') FROM runs")
    echo "$name: run $status"
    [ "${status%% *}" = ok ] || { echo "FAIL: $name not ok"; tail -20 "$TMP/$name.log"; fails=1; return; }
    for c in weights gradients optimizer activations act_grads workspace; do
        dev=$(val peak_device_bytes $c) plan=$(val plan_train_peak_bytes $c)
        echo "  $c: device peak ${dev:-none}, plan ${plan:-none}"
        [ "$c" = workspace ] && continue
        [ -n "$dev" ] && [ "$dev" = "$plan" ] || { echo "FAIL: $name $c device peak != plan"; fails=1; }
    done
    echo "  $(q "SELECT group_concat(name || ' ' || coalesce(value, 'unavailable'), ', ') FROM metrics WHERE rank = -1 AND category = '' AND name IN ('train_loss', 'val_bpb', 'recomputed_blocks', 'skipped_steps', 'train_tokens_per_s')")"
    loss=$(q "SELECT value FROM metrics WHERE rank = -1 AND name = 'train_loss' AND category = ''")
    awk -v l="${loss:-nan}" 'BEGIN { exit !(l + 0 == l && l > 0 && l < 10) }' ||
        { echo "FAIL: $name train_loss '$loss' not finite"; fails=1; }
}
run accum grad_accum -p accum_steps=4
run bf16 mixed_precision
run ckpt checkpointing -p every=2
DB=$TMP/ckpt/memtrade.db
ck_rec=$(val recomputed_blocks '') ck_act=$(val peak_device_bytes activations)
run all checkpointing -p every=1
DB=$TMP/all/memtrade.db
all_rec=$(val recomputed_blocks '') all_act=$(val peak_device_bytes activations)
echo "checkpointing: every 2 recomputed ${ck_rec:-none} blocks, activations ${ck_act:-none} B; every 1: ${all_rec:-none}, ${all_act:-none} B"
[ "${ck_rec:-0}" -gt 0 ] && [ "${all_rec:-1}" = 0 ] && [ "${ck_act:-0}" -gt 0 ] && [ "${ck_act:-0}" -lt "${all_act:-0}" ] ||
    { echo "FAIL: checkpointing on the device"; fails=1; }
run flash baseline -p attention=flash
run flash_bf16 mixed_precision -p attention=flash
run flash_ckpt checkpointing -p every=2 -p attention=flash
DB=$TMP/flash_ckpt/memtrade.db
fl_act=$(val peak_device_bytes activations)
echo "flash, checkpointing every 2: activations ${fl_act:-none} B (dense: ${ck_act:-none} B)"
[ "${fl_act:-0}" -gt 0 ] && [ "${fl_act:-0}" -lt "${ck_act:-0}" ] ||
    { echo "FAIL: flash holds no fewer activation bytes than dense"; fails=1; }
[ "$fails" = 0 ] && echo ok
exit "$fails"
