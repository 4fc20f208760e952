#!/usr/bin/env bash
# scripts/gpu/bench-flash.sh — run THERE (the GPU machine), after scripts/gpu/build.sh:
# attention=flash (cflash.h) against dense attention on the device, side by side on one
# card, medians: the GPT-2 124M training step in bf16 at each B:T (same tokens per step),
# memtrade dense, memtrade flash, PyTorch eager (explicit attention) and PyTorch with
# F.scaled_dot_product_attention (its flash kernel), each its step time and memtrade's
# device bytes by category (activations: what flash saves). Results: $OUT/flash.txt.
# Usage (repository root): OUT=... scripts/gpu/bench-flash.sh [STEPS [B:T ...]]
#   default 10 steps at 16:1024 8:2048 4:4096; PYTHON: the interpreter with torch
# Not for: correctness (ctest transformer.cuda_flash*), changing the card's settings.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-/tmp/memtrade-gpu-out}
STEPS=${1:-10}
shift $(($# ? 1 : 0))
[ $# -gt 0 ] || set -- 16:1024 8:2048 4:4096
mkdir -p "$out"
log=$out/flash.txt
: >"$log"
# shellcheck disable=SC1091
. /tmp/memtrade-deps/env.sh
bench=$MEMTRADE_BUILD/bin/mt-bench-cuda
say() { echo "$*" | tee -a "$log"; }
say "== $(nvidia-smi -L 2>/dev/null | head -1)"
for bt in "$@"; do
    B=${bt%%:*} T=${bt##*:}
    say "== training step, gpt2,vocab=50257 B=$B T=$T bf16"
    for att in dense flash; do
        "$bench" train "gpt2,vocab=50257,T=$T,attention=$att" "$B" "$T" bf16 "$STEPS" 2>&1 |
            tee -a "$log"
    done
    for sdpa in "" --sdpa; do
        PYTHONUNBUFFERED=1 "${PYTHON:-python3}" "$root/scripts/bench_torch_gpt.py" speed \
            --shape gpt2 --device cuda --bf16 --batch "$B" --seq "$T" --steps "$STEPS" $sdpa 2>&1 |
            tail -1 | tee -a "$log"
    done
done
