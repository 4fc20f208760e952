#!/usr/bin/env bash
# check_gguf_npm.sh — GGUF files memtrade writes, read back by an independent reader:
# Hugging Face's @huggingface/gguf from the npm registry. For every sample file
# (mt-gguf-dump --make: GPT-2 and Llama with grouped-query heads, F32/F16/BF16/Q8_0/Q4_0,
# and a file with one metadata entry of every value type) the metadata keys, types and
# values, the tensor names, shapes, types and offsets, and the data offset must read the
# same in both (diff of canonical listings).
# Usage: scripts/check_gguf_npm.sh BUILD_DIR [--install]
#   The package lives in $MT_NPM_DIR (default ${XDG_CACHE_HOME:-~/.cache}/memtrade-npm),
#   outside the source tree; --install runs `npm install @huggingface/gguf` there first.
#   Without node or the package it exits 77 (ctest: skipped) saying why.
set -u
build=${1:?usage: check_gguf_npm.sh BUILD_DIR [--install]}
# shellcheck source=npm_package.sh
. "$(dirname "$0")/npm_package.sh"
mt_npm_setup @huggingface/gguf mt_gguf_npm "${2:-}"
"$build/bin/mt-gguf-dump" --make "$tmp" || exit 1
# and the Hugging Face fixture's models with their BPE tokenizers (tokenizer.ggml.tokens,
# merges, token_type, scores and tokenizer.memtrade.*), exported by memtrade
for name in gpt2-tiny llama-tiny llama3-tiny; do
    "$build/bin/memtrade" export "$here/../tests/fixtures/hf/$name" --format gguf \
        "$tmp/fx-$name.gguf" >/dev/null || exit 1
done
fail=0 n=0
for f in "$tmp"/*.gguf; do
    "$build/bin/mt-gguf-dump" "$f" >"$f.mt" || exit 1
    node "$here/gguf_npm_dump.mjs" "$f" >"$f.npm" || { echo "FAIL: @huggingface/gguf cannot read $f"; fail=1; continue; }
    if diff -u "$f.mt" "$f.npm" >"$f.diff"; then
        # the tokenizer's arrays, element by element in the diff: their lengths
        tok=$(sed -n 's/^meta tokenizer\.ggml\.\([a-z_]*\) array array<[a-z0-9]*>\[\([0-9]*\)\].*/\1 \2/p' "$f.mt" |
              paste -sd, - | sed 's/,/, /g')
        echo "same: $(basename "$f"): $(grep -c '^meta' "$f.mt") metadata entries, $(grep -c '^tensor' "$f.mt") tensors${tok:+ (tokenizer arrays: $tok)}"
    else
        echo "FAIL: $(basename "$f") reads differently:"; head -20 "$f.diff"; fail=1
    fi
    n=$((n + 1))
done
[ $fail = 0 ] && [ $n -gt 0 ] && echo ok
exit $fail
