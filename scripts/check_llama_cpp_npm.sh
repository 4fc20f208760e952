#!/usr/bin/env bash
# check_llama_cpp_npm.sh — llama.cpp (node-llama-cpp's prebuilt CPU binary, npm registry)
# runs GGUF files memtrade wrote, and its logits on the same token ids must match
# memtrade's: seeded random GPT-2 and Llama (grouped-query, multi-query) files from
# mt-gguf-dump --make. Limits, relative to the largest logit: 1e-5 for Llama f32 (both
# run in fp32 end to end: this checks the names, shapes, RoPE and llama.cpp's q/k row
# permutation); 1e-3 for GPT-2 f32 and for f16 (llama.cpp's GELU reads an f16 table and
# its f16 matmuls round the activations to f16); 2e-2 for Q8_0/Q4_0 (llama.cpp quantizes
# the activations to 8 bits as well, memtrade decodes the weights to fp32). Then the
# Hugging Face fixture's GPT-2, Llama-2-style and Llama-3-style models with their BPE
# tokenizers, exported to GGUF by `memtrade export`: llama.cpp's token ids of each
# fixture text (llama_cpp_tokens.mjs) must equal memtrade's exactly, and its logits on
# them match memtrade's within the same limits; the same for Llama weights exported with
# a smaller tokenizer (GPT-2's), whose token arrays memtrade pads to the model's vocab.
# Usage: scripts/check_llama_cpp_npm.sh BUILD_DIR [--install]  (package in $MT_NPM_DIR,
# default ${XDG_CACHE_HOME:-~/.cache}/memtrade-npm; exits 77, skipped, without it or node)
set -u
build=${1:?usage: check_llama_cpp_npm.sh BUILD_DIR [--install]}
# shellcheck source=npm_package.sh
. "$(dirname "$0")/npm_package.sh"
mt_npm_setup node-llama-cpp mt_llama_cpp "${2:-}"
"$build/bin/mt-gguf-dump" --make "$tmp" >/dev/null || exit 1
# "Hello, world!\nI am a test." as bytes
ids="72 101 108 108 111 44 32 119 111 114 108 100 33 10 73 32 97 109 32 97 32 116 101 115 116 46"
fail=0
for spec in llama-f32:1e-5 llama-mqa-f32:1e-5 gpt2-f32:1e-3 llama-f16:1e-3 llama-bf16:1e-2 \
            llama-q8_0:2e-2 llama-q4_0:2e-2 gpt2-q8_0:2e-2; do
    f=$tmp/${spec%%:*}.gguf
    # shellcheck disable=SC2086
    "$build/bin/mt-gguf-dump" --logits "$f" "$f.f32" $ids || exit 1
    # shellcheck disable=SC2086
    node "$here/llama_cpp_logits.mjs" "$f" "$f.f32" "${spec##*:}" $ids || fail=1
done
# the Hugging Face fixture's models with their trained BPE tokenizers (tests/fixtures/hf),
# exported by memtrade: llama.cpp's ids of every fixture text must equal memtrade's
# exactly, and its logits on those ids match within the limits above
fx=$here/../tests/fixtures/hf
# (MODEL[+TOKENIZER]:LIMIT; the last: Llama-2-style weights, vocab 584, with GPT-2's
# tokenizer of 484 ids, so the file's token arrays are padded to 584 with [PAD<id>])
for spec in gpt2-tiny:1e-3 llama-tiny:1e-5 llama3-tiny:1e-5 llama-tiny+gpt2-tiny:1e-5; do
    m=${spec%%:*} name=${m%%+*} tk=${m##*+} f=$tmp/fx-${m/+/-}.gguf
    "$build/bin/memtrade" export "$fx/$name" --tokenizer "$fx/$tk" --format gguf "$f" >/dev/null ||
        exit 1
    node "$here/llama_cpp_tokens.mjs" "$f" "$fx/$tk/expected.json" "$build/bin/mt-gguf-dump" \
        >"$f.tok" || fail=1
    grep -v '^ids ' "$f.tok"
    while read -r _ i tids; do
        # shellcheck disable=SC2086
        "$build/bin/mt-gguf-dump" --logits "$f" "$f.$i.f32" $tids || exit 1
        # shellcheck disable=SC2086
        MT_LABEL="text $i" node "$here/llama_cpp_logits.mjs" "$f" "$f.$i.f32" "${spec##*:}" $tids ||
            fail=1
    done < <(grep '^ids ' "$f.tok")
done
[ $fail = 0 ] && echo ok
exit $fail
