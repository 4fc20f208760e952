#!/usr/bin/env bash
# scripts/gpu/hf-export.sh — run HERE (a Debian build machine): writes the folders that
# scripts/gpu/check_hf_export.py checks THERE with transformers (the GPU machine has it;
# Debian does not). Each fixture of tests/fixtures/hf imported and exported again with
# `memtrade export --format hf`, and `small` trained by memtrade (2000 steps, from the model
# cache, the byte tokenizer) exported as trained-small.
# Usage: scripts/gpu/hf-export.sh BUILD OUTDIR   (OUTDIR is replaced)
# Then there: python3 scripts/gpu/check_hf_export.py tests/fixtures/hf OUTDIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: hf-export.sh BUILD OUTDIR}
out=${2:?usage: hf-export.sh BUILD OUTDIR}
mt=$build/bin/memtrade
rm -rf "$out"
mkdir -p "$out"
for name in gpt2-tiny llama-tiny llama-tiny-bf16 llama3-tiny; do
    dtype=f32
    [ "$name" = llama-tiny-bf16 ] && dtype=bf16
    "$mt" export "$root/tests/fixtures/hf/$name" --format hf --dtype $dtype "$out/$name" >/dev/null
done
ckpt=$(ls "${XDG_CACHE_HOME:-$HOME/.cache}"/memtrade/gpt-L4-H4-C128-V256-T128-s2000-*.mtckpt 2>/dev/null | head -1)
if [ -z "$ckpt" ]; then
    "$mt" run baseline -p model=small -p steps=2000 --out "$out/.run" >/dev/null
    ckpt=$(ls "${XDG_CACHE_HOME:-$HOME/.cache}"/memtrade/gpt-L4-H4-C128-V256-T128-s2000-*.mtckpt | head -1)
    rm -rf "$out/.run"
fi
"$mt" export "$ckpt" --format hf "$out/trained-small" >/dev/null
du -sh "$out"
