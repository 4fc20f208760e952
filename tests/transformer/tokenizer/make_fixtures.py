#!/usr/bin/env python3
"""make_fixtures.py — the hand-made tokenizer.json fixtures of test_tokenizer and their
expected ids, from an independent reference written here in plain Python.

What it is for: small tokenizers of each supported kind, trained on the golden corpus with
a few hundred merges by a naive BPE trainer, and the ids a straightforward reference
(Python's `regex` module for \\p{L}, GPT-2's byte table, merges by rank applied one at a
time, leftmost first) gives for texts covering ASCII, accents, CJK, emoji with ZWJ, long
words, whitespace runs and special tokens. memtrade's C tokenizer must reproduce them.
What it is not for: Hugging Face's own output (tests/fixtures/hf has that).

Usage: make_fixtures.py CORPUS OUTDIR   (needs python3-regex; run once, outputs committed)
"""
import json
import sys
from collections import Counter

import regex

GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
          r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SP = "\u2581"
TEXTS = [
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "naïve café — déjà vu; Größe; Ελληνικά; русский; 日本語のテキスト",
    "I \u2764\ufe0f \U0001f999 and \U0001f916! \U0001f469\u200d\U0001f4bb coding at 3am",
    "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3 + " supercalifragilisticexpialidocious",
    "  multiple   spaces\tand\ttabs\nnewlines\n\n\nend   ",
    "It's 12345 o'clock, pi is 3.14159; THEY'LL've won't. You're I'M",
    "special <|endoftext|> inside<s>text</s> and <|endoftext|><|endoftext|>",
    "",
    " ",
    "\n",
    "a",
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()


def train(words, vocab, merges, n_merges):
    """Naive BPE training: words are tuples of symbols with counts."""
    words = Counter(words)
    for _ in range(n_merges):
        pairs = Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append((a, b))
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
        nw = Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nw[tuple(out)] += c
        words = nw


def bpe(symbols, ranks):
    symbols = list(symbols)
    while True:
        best = None
        for i in range(len(symbols) - 1):
            r = ranks.get((symbols[i], symbols[i + 1]))
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            return symbols
        i = best[1]
        symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]


def split_specials(text, specials):
    out, i, start = [], 0, 0
    while i < len(text):
        m = max((s for s in specials if text.startswith(s, i)), key=len, default=None)
        if m is None:
            i += 1
            continue
        out.append((text[start:i], False))
        out.append((m, True))
        i += len(m)
        start = i
    out.append((text[start:], False))
    return [(s, sp) for s, sp in out if s]


def encode_bytelevel(text, vocab, ranks, pattern, specials):
    ids = []
    for seg, special in split_specials(text, specials):
        if special:
            ids.append(vocab[seg])
            continue
        for piece in regex.findall(pattern, seg):
            chars = [B2U[b] for b in piece.encode()]
            ids += [vocab[s] for s in bpe(chars, ranks)]
    return ids


def encode_sp(text, vocab, ranks, specials):
    ids = []
    for seg, special in split_specials(text, specials):
        if special:
            ids.append(vocab[seg])
            continue
        norm = SP + seg.replace(" ", SP)
        syms = []
        for ch in norm:
            if ch in vocab:
                syms.append(ch)
            else:
                syms += ["<0x%02X>" % b for b in ch.encode()]
        ids += [vocab[s] for s in bpe(syms, ranks)]
    return ids


def bytelevel(corpus, pattern, special, n_merges):
    vocab = {}
    for b in range(256):
        vocab[B2U[b]] = len(vocab)
    words = [tuple(B2U[b] for b in w.encode()) for w in regex.findall(pattern, corpus)]
    merges = []
    train(words, vocab, merges, n_merges)
    vocab[special] = len(vocab)
    return vocab, merges


def sentencepiece(corpus, n_merges):
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    lines = [SP + l.replace(" ", SP) for l in corpus.splitlines() if l]
    for ch in sorted(set("".join(lines))):
        vocab[ch] = len(vocab)
    words = []
    for l in lines:  # trained on whitespace-separated words, applied without pre-tokenizer
        words += [tuple(SP + w) for w in l.split(SP) if w]
    merges = []
    train(words, vocab, merges, n_merges)
    return vocab, merges


def main():
    corpus = open(sys.argv[1], encoding="utf-8", errors="replace").read()[:60000]
    out = sys.argv[2]
    cases = {}

    vocab, merges = bytelevel(corpus, GPT2, "<|endoftext|>", 300)
    ranks = {m: i for i, m in enumerate(merges)}
    cases["gpt2"] = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": vocab["<|endoftext|>"], "content": "<|endoftext|>",
                          "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [a + " " + b for a, b in merges]},
    }
    exp = {"gpt2": [encode_bytelevel(t, vocab, ranks, GPT2, ["<|endoftext|>"]) for t in TEXTS]}

    vocab, merges = bytelevel(corpus, LLAMA3, "<|begin_of_text|>", 300)
    vocab["<|end_of_text|>"] = len(vocab)
    ranks = {m: i for i, m in enumerate(merges)}
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    cases["llama3"] = dict(cases["gpt2"])
    cases["llama3"]["added_tokens"] = [
        {"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True} for s in specials]
    cases["llama3"]["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
         "use_regex": False}]}
    cases["llama3"]["model"] = dict(cases["gpt2"]["model"], vocab=vocab,
                                    merges=[[a, b] for a, b in merges])
    exp["llama3"] = [encode_bytelevel(t, vocab, ranks, LLAMA3, specials) for t in TEXTS]

    vocab, merges = sentencepiece(corpus, 300)
    ranks = {m: i for i, m in enumerate(merges)}
    specials = ["<unk>", "<s>", "</s>"]
    cases["llama"] = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": vocab[s], "content": s, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}
                         for s in specials],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SP},
            {"type": "Replace", "pattern": {"String": " "}, "content": SP}]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SP}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [a + " " + b for a, b in merges]},
    }
    exp["llama"] = [encode_sp(t, vocab, ranks, specials) for t in TEXTS]

    for name, tok in cases.items():
        with open("%s/%s.json" % (out, name), "w", encoding="utf-8") as f:
            json.dump(tok, f, ensure_ascii=False, indent=1)
    with open("%s/expected.json" % out, "w", encoding="utf-8") as f:
        json.dump({"texts": TEXTS, "ids": exp}, f, ensure_ascii=False)
    for k, v in exp.items():
        print(k, [len(x) for x in v])


if __name__ == "__main__":
    main()
