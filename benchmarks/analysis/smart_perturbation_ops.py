"""Milliseconds per call of SMART's perturbation ops alone, ours against smart-pytorch's, on the cost table's
CPU shape (batch 8 x 128 x 384, the default model's hidden size): ours is the noise (`init_delta`) and one code
step (`raw_ascend`: masked step, NaN guard, per-token rescale); smart-pytorch's is its noise, step and max-abs
normalization (its `SMARTLoss.forward` without the model). A diagnostic for the CPU notes: whether these ops
explain our SMART step costing a little more than smart-pytorch's. Alternating blocks, the first pair warm-up.

    .venv/bin/python benchmarks/analysis/smart_perturbation_ops.py [calls per block, default 300]
"""

from __future__ import annotations

import sys
import time

import torch

from advlm.perturbation import init_delta, raw_ascend


def main(calls: int = 300) -> None:
    torch.manual_seed(0)
    embeds, mask, grad = torch.randn(8, 128, 384), torch.ones(8, 128), torch.randn(8, 128, 384) * 1e-3

    def ours():
        delta = init_delta(embeds, mask, 1e-5, "token-linf").requires_grad_()
        return raw_ascend(delta, grad, mask, 1e-3, 0.1, "token-linf").detach()

    def smart_pytorch():
        noise = torch.randn_like(embeds, requires_grad=True) * 1e-5
        step = noise + 1e-3 * grad
        return (step / (torch.norm(step, p=float("inf"), dim=-1, keepdim=True) + 1e-6)).detach()

    for block in range(4):
        for name, fn in (("ours", ours), ("smart-pytorch", smart_pytorch)):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            ms = (time.perf_counter() - start) / calls * 1e3
            print(f"block {block}{' (warm-up)' if block == 0 else ''}: {name} {ms:.2f} ms a call")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
