#!/usr/bin/python3
"""bench_torch_gpt.py — the reference GPT of workloads/transformer, written in PyTorch.

What it is for: the comparison issue 2 asks for. `speed` times a training step (forward,
backward, AdamW) and a forward on the same shapes as `mt-bench-model` (small B=8 T=128,
GPT-2 124M with V=50257 at B=4 T=64) with the same thread count; `quality` trains a preset
with the same default recipe on the same byte-level corpus and split and prints val_bpb
over the whole validation split, the "mainstream framework" number to hold the C model to.
What it is not for: a test, or anything memtrade runs by itself (it needs python3-torch
and, for a meaningful speed, libopenblas0-pthread: without it Debian's torch multiplies
with the reference BLAS, 10-50x slower). On a shared machine run with
OMP_WAIT_POLICY=passive (spinning threads of both pools otherwise stall each other).

On a GPU (`--device cuda`, the H100 comparison of issue 22) the same model runs eager,
in fp32 or under bf16 autocast (`--bf16`), at `--batch`/`--seq` (gpt2 shape), and prints the
caching allocator's peaks beside the step time (mt-bench-cuda prints memtrade's).
`--losses` instead prints the loss of every step on mt-bench-cuda's fixed batch (its
`compare` tokens) under memtrade's default recipe (peak `--lr`, warmup a tenth of the
steps, cosine to a tenth): the trajectory to hold memtrade's fp32 and bf16 against.

Usage: scripts/bench_torch_gpt.py speed [--threads 2] [--steps 10] [--shape small|gpt2|all]
           [--device cpu|cuda] [--bf16] [--batch B] [--seq T] [--losses [--lr LR]]
       scripts/bench_torch_gpt.py quality [--preset small] [--steps 2000] [--threads 2]
"""
import argparse
import math
import os
import statistics
import sys
import time


def _early_threads():
    """--threads, read before torch loads: OpenBLAS sizes its own pool at load time."""
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    return "2"


os.environ.setdefault("OPENBLAS_NUM_THREADS", _early_threads())

import torch  # noqa: E402  (after the environment above)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

PRESETS = {  # vocab, seq_len, n_layer, n_head, n_embd — as in gpt.c
    "tiny": (256, 64, 2, 2, 64),
    "small": (256, 128, 4, 4, 128),
    "medium": (256, 256, 6, 8, 256),
    "gpt2": (256, 1024, 12, 12, 768),
}
FORTUNES = "/usr/share/games/fortunes"


class Block(nn.Module):
    sdpa = False  # --sdpa: F.scaled_dot_product_attention (PyTorch's flash kernel on CUDA)

    def __init__(self, C, NH, L):
        super().__init__()
        self.nh = NH
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.fcproj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        for lin in (self.qkv, self.proj, self.fc, self.fcproj):  # as mt_gpt_init
            resid = lin is self.proj or lin is self.fcproj
            nn.init.normal_(lin.weight, std=0.02 / (math.sqrt(2 * L) if resid else 1.0))
            nn.init.zeros_(lin.bias)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.nh, C // self.nh).transpose(1, 2) for t in (q, k, v))
        if Block.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
            return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))
        # explicit causal attention: torch 1.13 (Debian 12) has no scaled_dot_product_attention
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.shape[-1]))
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        y = att.masked_fill(mask, float("-inf")).softmax(dim=-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, V, maxT, L, NH, C):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(maxT, C)
        self.blocks = nn.ModuleList(Block(C, NH, L) for _ in range(L))
        self.lnf = nn.LayerNorm(C)
        nn.init.normal_(self.wte.weight, std=0.02)
        nn.init.normal_(self.wpe.weight, std=0.02)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.blocks:
            x = b(x)
        logits = self.lnf(x) @ self.wte.weight.t()  # tied LM head
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def make_optimizer(model, lr):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": other, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


def lr_at(step, lr, warmup, steps, min_frac=0.1):
    if step < warmup:
        return lr * (step + 1) / warmup
    if step >= steps or steps <= warmup:
        return lr * min_frac
    ratio = (step - warmup) / (steps - warmup)
    return lr * min_frac + 0.5 * (1 + math.cos(math.pi * ratio)) * (lr - lr * min_frac)


def train_step(model, opt, amp, x, y):
    """One step: forward (under amp), backward, clipping at 1, AdamW. Returns the loss."""
    with amp:
        _, loss = model(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss


def speed(args):
    shapes = {"small": ("small", 256, 8, 128), "gpt2": ("gpt2", 50257, 4, 64)}
    print(f"[OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')} "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}]")
    for name in (["small", "gpt2"] if args.shape == "all" else [args.shape]):
        preset, V, B, T = shapes[name]
        B, T = args.batch or B, args.seq or T
        _, maxT, L, NH, C = PRESETS[preset]
        dev = torch.device(args.device)
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        torch.manual_seed(1337)
        model = GPT(V, max(maxT, T), L, NH, C).to(dev)
        opt = make_optimizer(model, 3e-3)
        x = torch.randint(0, 256, (B, T), device=dev)
        y = torch.randint(0, 256, (B, T), device=dev)
        amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.bf16)
        if args.losses:  # mt-bench-cuda's fixed batch and memtrade's recipe
            i = torch.arange(B * T, dtype=torch.int64, device=dev)
            x, y = (i * 7919 % V).view(B, T), ((i * 104729 + 3) % V).view(B, T)
            losses = []
            for s in range(args.steps):
                for g in opt.param_groups:
                    g["lr"] = lr_at(s, args.lr, args.steps // 10, args.steps)
                losses.append(f"{train_step(model, opt, amp, x, y).item():.4f}")
            print(f"torch {name} {args.device}{' bf16' if args.bf16 else ' fp32'} B={B} T={T} "
                  f"lr {args.lr:g} losses: {' '.join(losses)}")
            continue
        steps, fwd = [], []
        for s in range(args.steps + 2):
            sync()
            t0 = time.perf_counter()
            train_step(model, opt, amp, x, y)
            sync()
            if s >= 2:
                steps.append(time.perf_counter() - t0)
        with torch.no_grad():
            for s in range(args.steps):
                sync()
                t0 = time.perf_counter()
                with amp:
                    model(x, y)
                sync()
                fwd.append(time.perf_counter() - t0)
        st, ft = statistics.median(steps), statistics.median(fwd)
        nparams = sum(p.numel() for p in model.parameters())
        mem = ""
        if dev.type == "cuda":
            mem = (f", max_memory_reserved {torch.cuda.max_memory_reserved()} B, "
                   f"max_memory_allocated {torch.cuda.max_memory_allocated()} B")
        print(f"torch {torch.__version__} {name:6s} {args.device}{' bf16' if args.bf16 else ''}"
              f"{' sdpa' if Block.sdpa else ''} "
              f"B={B} T={T} params={nparams} threads={torch.get_num_threads()}: step "
              f"{st * 1e3:.2f} ms (median of {args.steps}), forward {ft * 1e3:.2f} ms, "
              f"{B * T / st:.0f} tokens/s{mem}")


def load_corpus(path):
    if os.path.isdir(path):  # the same files, in the same order, as data.c
        names = sorted(n for n in os.listdir(path)
                       if not n.startswith(".") and not n.endswith((".dat", ".u8")))
        files = [os.path.join(path, n) for n in names]
        files = [f for f in files if os.path.isfile(f) and not os.path.islink(f)]
    else:
        files = [path]
    data = b"".join(open(f, "rb").read() for f in files)
    n_train = len(data) // 10 * 9 + (len(data) % 10) * 9 // 10
    return data[:n_train], data[n_train:]


def quality(args):
    V, maxT, L, NH, C = PRESETS[args.preset]
    B, T = 16, min(128, maxT)
    train, val = load_corpus(args.corpus)
    train_t = torch.tensor(list(train), dtype=torch.long)
    val_t = torch.tensor(list(val), dtype=torch.long)
    torch.manual_seed(1337)
    model = GPT(V, maxT, L, NH, C)
    opt = make_optimizer(model, 3e-3)
    warmup = min(100, args.steps // 10)
    gen = torch.Generator().manual_seed(1337)
    t0 = time.perf_counter()
    for s in range(args.steps):
        ix = torch.randint(0, len(train_t) - T, (B,), generator=gen)
        x = torch.stack([train_t[i:i + T] for i in ix])
        y = torch.stack([train_t[i + 1:i + T + 1] for i in ix])
        for g in opt.param_groups:
            g["lr"] = lr_at(s, 3e-3, warmup, args.steps)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if s % 250 == 0 or s + 1 == args.steps:
            print(f"step {s + 1:5d} loss {loss.item():.4f} ({time.perf_counter() - t0:.1f} s)")
    train_s = time.perf_counter() - t0
    total, nll = len(val_t) - 1, 0.0
    with torch.no_grad():  # non-overlapping windows of T targets, as mt_gpt_eval
        for start in range(0, total, T * 8):
            rows = []
            for w in range(start, min(start + T * 8, total), T):
                n = min(T, total - w)
                rows.append((val_t[w:w + n], val_t[w + 1:w + n + 1]))
            for xs, ys in rows:
                logits, _ = model(xs[None])
                nll += F.cross_entropy(logits[0], ys, reduction="sum").item()
    loss = nll / total
    print(f"torch {args.preset}: {args.steps} steps B={B} T={T} in {train_s:.1f} s; val over "
          f"{total} bytes: val_loss {loss:.4f} nats/byte, val_bpb {loss / math.log(2):.4f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["speed", "quality"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--shape", default="all", choices=["small", "gpt2", "all"])
    ap.add_argument("--preset", default="small", choices=list(PRESETS))
    ap.add_argument("--corpus", default=FORTUNES)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (speed)")
    ap.add_argument("--batch", type=int, default=0, help="B of speed (0: the shape's)")
    ap.add_argument("--seq", type=int, default=0, help="T of speed (0: the shape's)")
    ap.add_argument("--losses", action="store_true",
                    help="speed: the loss trajectory on mt-bench-cuda's batch instead of times")
    ap.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of --losses")
    ap.add_argument("--sdpa", action="store_true",
                    help="attention through F.scaled_dot_product_attention (torch >= 2)")
    args = ap.parse_args()
    Block.sdpa = args.sdpa
    torch.set_num_threads(args.threads)
    if args.steps is None:
        args.steps = 10 if args.mode == "speed" else 2000
    speed(args) if args.mode == "speed" else quality(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
