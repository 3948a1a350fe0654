"""How large SMART's perturbation is next to what it perturbs: ours (the word-embedding lookup, as every advlm
method) against the reference code's (mt-dnn and smart-pytorch's README add it to the embedding module's
output, after its LayerNorm). Both rescale each token's perturbation to max-abs `eps` = 1.

    .venv/bin/python benchmarks/analysis/smart_perturbation_scale.py [--model PATH] [--task rte] [--dropout]

On the default model at its pre-trained weights (fresh classification head) or a fine-tuned one (--model,
made as in smart_dropout_share.py), a task's first dev examples, it prints per-token L2 norms and max-abs of
both tensors, the relative size ||delta|| / ||x|| of one reference-code SMART perturbation (noise N(0, 1e-5^2),
one step of 1e-3 times the raw gradient, rescaled to max-abs 1 per token) at each place, how large that step
is next to the noise, and the smoothness term's value (symmetric KL, or squared error for STS-B) between clean and perturbed outputs;
--dropout runs both passes in training mode, as SMART does. A diagnostic for the notes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from advlm.embeddings import unwrap, word_embeddings
from advlm.modeling import load_model, load_tokenizer
from advlm.tasks import get_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the lab beside this folder
from lab.losses import divergence  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--task", default="rte")
    parser.add_argument("--dropout", action="store_true", help="dropout on, as SMART trains (default: off)")
    args = parser.parse_args()
    torch.manual_seed(0)
    task = get_task(args.task)
    model = load_model(args.model, task).train(args.dropout)
    tok = load_tokenizer(args.model)
    rows = task.load("dev")[: args.examples]
    batch = tok(*zip(*(r.texts for r in rows)), padding=True, truncation=True, max_length=128, return_tensors="pt")
    mask = batch["attention_mask"].bool()
    places = {
        "word lookup (advlm)": word_embeddings(model),
        "embedding output, post-LN (reference)": unwrap(model).base_model.embeddings,
    }

    with torch.no_grad():
        clean = model(**batch).logits
    print(f"{args.examples} {args.task} dev examples, {int(mask.sum())} real tokens, dropout {args.dropout}")
    for name, module in places.items():
        print(f"{name}: {place_scale(model, batch, mask, module, clean, task)}")


def place_scale(model, batch, mask, module, clean, task) -> str:
    """The token sizes at `module`'s output and the reference's step's perturbation there, as one line."""
    state = {}

    def add(_, __, out, state=state):
        state["x"] = out.detach()
        return out + state["delta"] if "delta" in state else out

    handle = module.register_forward_hook(add)
    try:
        with torch.no_grad():
            model(**batch)
        x = state["x"]
        noise = (torch.randn_like(x) * 1e-5 * mask.unsqueeze(-1)).requires_grad_()
        state["delta"] = noise
        loss = divergence(model(**batch).logits, clean, task.is_regression)
        (grad,) = torch.autograd.grad(loss, noise)
        step = noise + 1e-3 * grad  # the reference: the raw gradient times eta, then the per-token rescale
        delta = step / step.abs().amax(-1, keepdim=True).clamp_min(1e-12) * mask.unsqueeze(-1)
        state["delta"] = delta.detach()
        with torch.no_grad():
            kl = divergence(model(**batch).logits, clean, task.is_regression).item()
    finally:
        handle.remove()
    xs, ds = x[mask], delta[mask]
    share = (1e-3 * grad[mask]).norm(dim=-1) / noise[mask].norm(dim=-1)
    return (
        f"per-token L2 {xs.norm(dim=-1).median():.2f}, max-abs {xs.abs().amax(-1).median():.3f}; "
        f"perturbation L2 {ds.norm(dim=-1).median():.2f} = {(ds.norm(dim=-1) / xs.norm(dim=-1)).median():.2f} x the "
        f"token's; ||eta*grad|| / ||noise|| {share.median():.2g}; symmetric KL clean vs perturbed {kl:.4f}"
    )


if __name__ == "__main__":
    main()
