"""How much of SMART's smoothness term is the perturbation, and how much is dropout? SMART's perturbed pass runs
in training mode, so its dropout masks differ from the clean pass's and the term is not zero at delta = 0.

    .venv/bin/python -m advlm train --task sst2 --method vanilla --max-train-samples 2000 --epochs 1 \\
        --lr 1e-4 --batch-size 32 --max-length 64 --seed 1 --output-dir /tmp/sst2-vanilla
    .venv/bin/python benchmarks/analysis/smart_dropout_share.py /tmp/sst2-vanilla [--task sst2] [--examples 64]

On a fine-tuned model, one dev batch: the symmetric KL (or squared error for a regression task) between the
clean outputs and the outputs with advlm's SMART perturbation of the word-embedding lookup (noise N(0, 1e-5^2),
one normalized ascent step of 1e-3, rescaled to per-token max-abs eps), for eps 0, 0.01, 0.1 and 1, with
dropout on (as SMART trains) and off; and with the noise's own direction rescaled (what the reference codes'
step amounts to: their un-normalized eta * grad is orders of magnitude below the 1e-5 noise, see
smart_perturbation_scale.py). Each value is the mean over 5 draws of noise and dropout.
"""

from __future__ import annotations

import argparse

import torch

from advlm.data.loading import load_split
from advlm.data.tasks import get_task
from advlm.embeddings import word_embeddings
from advlm.losses import divergence
from advlm.modeling import load_model, load_tokenizer
from advlm.perturbation import ascend, project


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
    rows = load_split(task, "dev")[: args.examples]
    batch = tok(*zip(*(r.texts for r in rows)), padding=True, truncation=True, max_length=128, return_tensors="pt")
    mask = batch["attention_mask"].float()
    regression = task.is_regression
    state = {}
    hook = word_embeddings(model).register_forward_hook(
        lambda _, __, out: out + state["delta"] if "delta" in state else out
    )

    def term(eps: float, dropout: bool, adversarial: bool = True) -> float:
        model.train(dropout)
        state.pop("delta", None)
        with torch.no_grad():
            clean = model(**batch).logits
        shape = (*batch["input_ids"].shape, model.config.hidden_size)
        noise = (torch.randn(shape) * 1e-5 * mask.unsqueeze(-1)).requires_grad_()
        delta = torch.zeros(shape)
        if eps > 0 and not adversarial:  # the reference codes' direction: their eta * grad is << the noise
            delta = project(noise.detach(), mask, eps, "token-linf")
        elif eps > 0:
            state["delta"] = noise
            (grad,) = torch.autograd.grad(divergence(model(**batch).logits, clean, regression), noise)
            delta = ascend(noise, grad, mask, 1e-3, eps, "token-linf").detach()
        state["delta"] = delta
        with torch.no_grad():
            return divergence(model(**batch).logits, clean, regression).item()

    print(f"{args.task} dev, {args.examples} examples; smoothness term, mean of 5 draws")
    print("eps    dropout on  dropout off  random direction, dropout on")
    try:
        for eps in (0.0, 0.01, 0.1, 1.0):
            on, off, rand = (sum(term(eps, *how) for _ in range(5)) / 5 for how in ((True,), (False,), (True, False)))
            print(f"{eps:<6} {on:10.4f} {off:12.4f} {rand:12.4f}")
    finally:
        hook.remove()


if __name__ == "__main__":
    main()
