#!/usr/bin/env python3
"""check_hf_export.py — Hugging Face transformers loads the folders `memtrade export --format hf` wrote.

What it is for: the independent check of memtrade's folder export (issue: bring your own
model) where transformers exists (the developers' GPU machine; Debian has no transformers).
For each exported fixture, the folder memtrade wrote after importing tests/fixtures/hf/NAME
is loaded with AutoTokenizer and AutoModelForCausalLM (float32, CPU) and must give the
fixture's own token ids exactly (the tokenizers library and AutoTokenizer without special
tokens) and its logits within 1e-4 of the largest logit: transformers on memtrade's file
== transformers on the original. A folder exported from a model memtrade trained itself
(the byte tokenizer) must load and give one id per byte.
What it is not for: memtrade's own checks (ctest transformer.hf_fixture_*) or anything CI
runs.

Usage: check_hf_export.py FIXTURES_DIR EXPORT_DIR
  EXPORT_DIR/NAME   memtrade's export of FIXTURES_DIR/NAME (gpt2-tiny, llama-tiny, ...)
  EXPORT_DIR/trained-<model>  exports of memtrade-trained byte models (optional)
Prints one line per check and exits 1 when any fails.
"""
import json
import os
import struct
import sys

import torch
import transformers
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer

failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def load(folder):
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return tok, model


def fixture(fixtures, export, name):
    ref = os.path.join(fixtures, name)
    out = os.path.join(export, name)
    with open(os.path.join(ref, "expected.json"), encoding="utf-8") as f:
        exp = json.load(f)
    with open(os.path.join(ref, "logits.f32"), "rb") as f:
        logits_ref = f.read()
    raw = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    tok, model = load(out)
    worst = 0.0
    for t in exp["texts"]:
        text, ids = t["text"], t["ids"]
        check(raw.encode(text).ids == ids, f"{name}: tokenizers ids {text[:24]!r}")
        auto = tok(text, add_special_tokens=False)["input_ids"]
        check(auto == ids, f"{name}: AutoTokenizer ids {text[:24]!r}")
        rows, cols = t["shape"]
        n = rows * cols
        want = torch.tensor(struct.unpack_from(f"<{n}f", logits_ref, t["offset"])).view(rows, cols)
        with torch.no_grad():
            got = model(torch.tensor([ids])).logits[0].float()
        rel = ((got - want).abs().max() / want.abs().max()).item()
        worst = max(worst, rel)
    check(worst <= 1e-4, f"{name}: logits of memtrade's folder vs the original's, worst {worst:.2e} "
          "of the largest logit (limit 1e-4)")


def trained(export, name):
    out = os.path.join(export, name)
    tok, model = load(out)
    text = "Hello, w\u00f6rld \U0001F600 memtrade"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    check(ids == list(text.encode("utf-8")), f"{name}: one id per byte ({len(ids)} ids)")
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    check(bool(torch.isfinite(logits).all()) and logits.shape[-1] == model.config.vocab_size,
          f"{name}: logits {tuple(logits.shape)} finite")
    nll = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:])).item()
    print(f"     {name}: next-byte loss on the text {nll:.4f} nats", flush=True)


def main():
    if len(sys.argv) != 3:
        print(__doc__.split("Usage:")[1].strip().splitlines()[0], file=sys.stderr)
        return 2
    fixtures, export = sys.argv[1], sys.argv[2]
    print(f"transformers {transformers.__version__}, torch {torch.__version__}", flush=True)
    for name in sorted(os.listdir(export)):
        if not os.path.isdir(os.path.join(export, name)):
            continue
        try:
            if name.startswith("trained-"):
                trained(export, name)
            else:
                fixture(fixtures, export, name)
        except Exception as e:  # a folder transformers refuses is a failed check, not a crash
            check(False, f"{name}: {type(e).__name__}: {e}")
    print(f"{failures} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
