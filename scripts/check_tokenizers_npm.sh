#!/usr/bin/env bash
# check_tokenizers_npm.sh — the tokenizer.json files memtrade writes (`memtrade export
# --format hf`), read by Hugging Face's own tokenizers library (the Rust crate through the
# npm registry's @anush008/tokenizers binding): its ids of every text must equal
# memtrade's exactly. Files: the Hugging Face fixture's three BPE tokenizers
# (tests/fixtures/hf: GPT-2 byte-level, Llama-2 SentencePiece-style, Llama-3 regex)
# exported with their models; the byte tokenizer of a byte model; and a SentencePiece BPE with a Metaspace pre-tokenizer
# (prepend_scheme always, first, never) and a `normalized` added token, as written by
# hand, and as memtrade writes it after a trip through GGUF (export --tokenizer to GGUF,
# then GGUF to a folder), on texts with leading, doubled and trailing spaces.
# Usage: scripts/check_tokenizers_npm.sh BUILD_DIR [--install]  (package in $MT_NPM_DIR,
# default ${XDG_CACHE_HOME:-~/.cache}/memtrade-npm; exits 77, skipped, without it or node)
set -u
build=${1:?usage: check_tokenizers_npm.sh BUILD_DIR [--install]}
# shellcheck source=npm_package.sh
. "$(dirname "$0")/npm_package.sh"
mt_npm_setup @anush008/tokenizers mt_tokenizers_npm "${2:-}"
fx=$here/../tests/fixtures/hf
ids() { node "$here/tokenizers_npm_ids.mjs" "$1" "$2" "$build/bin/mt-gguf-dump" || fail=1; }
fail=0
for name in gpt2-tiny llama-tiny llama3-tiny; do
    "$build/bin/memtrade" export "$fx/$name" --format hf "$tmp/$name" >/dev/null || exit 1
    ids "$tmp/$name" "$fx/$name/expected.json"
done
# the byte tokenizer as memtrade writes it for a byte model (256 tokens, token b = byte b)
mkdir "$tmp/made" && "$build/bin/mt-gguf-dump" --make "$tmp/made" >/dev/null &&
    "$build/bin/memtrade" export "$tmp/made/gpt2-f32.gguf" --tokenizer bytes --format hf \
        "$tmp/bytes" >/dev/null || exit 1
ids "$tmp/bytes" "$fx/gpt2-tiny/expected.json"
cat >"$tmp/texts.json" <<'JSON'
{"texts": [{"text": "a foo b"}, {"text": " a foo  b"}, {"text": "foo a"}, {"text": "afoo"},
           {"text": "  b "}, {"text": "ab foofoo fab"}]}
JSON
for scheme in always first never; do
    d=$tmp/metaspace-$scheme
    mkdir -p "$d"
    # (tokenizers gives an added token missing from the vocab the next id after it)
    cat >"$d/tokenizer.json" <<JSON
{"added_tokens": [{"id": 8, "content": "foo", "single_word": false, "lstrip": false,
  "rstrip": false, "normalized": true, "special": false}],
 "normalizer": null,
 "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "$scheme",
  "split": false},
 "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "$scheme",
  "split": false},
 "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": false,
  "vocab": {"<unk>": 0, "\u2581": 1, "a": 2, "b": 3, "f": 4, "o": 5, "fo": 6, "\u2581a": 7},
  "merges": [["f", "o"], ["\u2581", "a"]]}}
JSON
    ids "$d" "$tmp/texts.json"
    "$build/bin/memtrade" export "$fx/llama-tiny" --tokenizer "$d" --format gguf "$d.gguf" >/dev/null &&
        "$build/bin/memtrade" export "$d.gguf" --format hf "$d-gguf-hf" >/dev/null || exit 1
    ids "$d-gguf-hf" "$tmp/texts.json"
done
[ $fail = 0 ] && echo ok
exit $fail
