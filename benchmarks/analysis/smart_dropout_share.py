"""How much of SMART's smoothness term is the perturbation, and how much is dropout? SMART's perturbed pass runs
in training mode, so its dropout masks differ from the clean pass's and the term is not zero at delta = 0.

    .venv/bin/python -m advlm train --task sst2 --method vanilla --max-train-samples 2000 --epochs 1 \\
        --lr 1e-4 --batch-size 32 --max-length 64 --seed 1 --output-dir /tmp/sst2-vanilla
    .venv/bin/python benchmarks/analysis/smart_dropout_share.py /tmp/sst2-vanilla [--task sst2] [--examples 64]

On a fine-tuned model, one dev batch: the symmetric KL (or squared error for a regression task) between the
clean outputs and the outputs with the word-embedding lookup perturbed (noise N(0, 1e-5^2), one ascent step,
each token rescaled to max-abs eps), for eps 0, 0.01, 0.1 and 1: with the paper's normalized step of 1e-3
(`normalized_step`, advlm's earlier SMART step), dropout on (as SMART trains) and off; and with the
reference codes' step (advlm's default since), whose un-normalized eta * grad is orders of magnitude below the
noise (smart_perturbation_scale.py), so that the noise's own direction is what gets rescaled: random. Each value is the
mean over 20 draws of noise and dropout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from advlm.embeddings import word_embeddings
from advlm.modeling import load_model, load_tokenizer
from advlm.perturbation import ascend, raw_ascend
from advlm.tasks import get_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the lab beside this folder
from lab.losses import divergence  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--examples", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    task = get_task(args.task)
    model = load_model(args.model, task)
    tok = load_tokenizer(args.model)
    rows = task.load("dev")[: args.examples]
    batch = tok(*zip(*(r.texts for r in rows)), padding=True, truncation=True, max_length=128, return_tensors="pt")
    mask = batch["attention_mask"].float()
    regression = task.is_regression
    state = {}
    hook = word_embeddings(model).register_forward_hook(
        lambda _, __, out: out + state["delta"] if "delta" in state else out
    )

    def term(eps: float, dropout: bool, normalized: bool = True) -> float:
        model.train(dropout)
        state.pop("delta", None)
        with torch.no_grad():
            clean = model(**batch).logits
        shape = (*batch["input_ids"].shape, model.config.hidden_size)
        noise = (torch.randn(shape) * 1e-5 * mask.unsqueeze(-1)).requires_grad_()
        delta = torch.zeros(shape)
        if eps > 0:
            state["delta"] = noise
            (grad,) = torch.autograd.grad(divergence(model(**batch).logits, clean, regression), noise)
            step = ascend if normalized else raw_ascend
            delta = step(noise, grad, mask, 1e-3, eps, "token-linf").detach()
        state["delta"] = delta
        with torch.no_grad():
            return divergence(model(**batch).logits, clean, regression).item()

    print(f"{args.task} dev, {args.examples} examples; smoothness term, mean of 20 draws")
    print("eps    normalized step: dropout on  dropout off | code step (random direction), dropout on")
    try:
        for eps in (0.0, 0.01, 0.1, 1.0):
            on, off, rand = (sum(term(eps, *how) for _ in range(20)) / 20 for how in ((True,), (False,), (True, False)))
            print(f"{eps:<6} {on:28.4f} {off:12.4f} | {rand:10.4f}")
    finally:
        hook.remove()


if __name__ == "__main__":
    main()
