"""scripts/gpu/torch_check.py — a small PyTorch program for scripts/gpu/check.sh, run under
`memtrade profile --device`: tensors allocated, a matmul, tensors freed, the cache emptied.

What it is for: PyTorch's own account of its device memory (torch.cuda.max_memory_reserved,
max_memory_allocated, the allocator backend, the number of tensors it made) written as one
JSON object to the file named by $TORCH_CHECK_OUT, for check.sh to put beside the
interposer's and NVML's figures. What it is not for: timing anything.
"""
import json
import os

import torch

MiB = 1 << 20
dev = torch.device("cuda")
torch.cuda.init()
tensors = []
# Six tensors of distinct sizes from distinct operators: each one allocation of its own
# under the cudaMallocAsync backend.
a = torch.empty(256 * MiB // 4, device=dev)               # 256 MiB
b = torch.randn(2048, 2048, device=dev)                   # 16 MiB
c = torch.ones(3 * MiB // 4, device=dev)                  # 3 MiB
d = torch.zeros(5 * MiB // 4, device=dev)                 # 5 MiB
e = b @ b                                                 # 16 MiB (and cuBLAS's workspace)
f = torch.arange(7 * MiB // 8, device=dev, dtype=torch.int64)  # 7 MiB
tensors_made = 6
torch.cuda.synchronize()
checksum = float(e.sum().item()) + float(c.sum().item())
del a, b, c, d, e, f
torch.cuda.synchronize()
torch.cuda.empty_cache()
out = {
    "backend": torch.cuda.get_allocator_backend(),
    "max_memory_reserved": torch.cuda.max_memory_reserved(),
    "max_memory_allocated": torch.cuda.max_memory_allocated(),
    "tensors_made": tensors_made,
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "checksum_finite": checksum == checksum,
}
with open(os.environ["TORCH_CHECK_OUT"], "w") as fh:
    json.dump(out, fh)
