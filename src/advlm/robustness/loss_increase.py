"""The robustness measure of FreeLB's Table 5 (Zhu et al., ICLR 2020): the maximum loss increase in an
eps ball on the word embeddings, Delta L_max(X, eps) = max_{||delta|| <= eps} L(f(X + delta), y) - L(f(X), y).

Per example, models in eval mode, maximized by normalized-gradient ascent (l2 ball by default), batched.
- "M-Inc": the median increase over examples at a fixed eps; "N-Loss": the median clean loss.
- "M-Inc (R)": per-example radii chosen on the first (reference) model as the largest radius whose maximal
  loss keeps the prediction correct (loss <= -log 0.5), found by bisection, then applied to every model.
- Only examples that every compared model classifies correctly are used.

Departures: the reference runs up to 2000 ascent steps with batch size 1; we batch examples and cap the
steps (`steps`, reported). The step size is 2.5 * radius / steps (Madry et al.'s rule). For a list of
radii, each ascent starts from the best perturbation found at the previous (smaller) radius, so the
measured increase never shrinks as eps grows. N-Loss is reported as a median, like M-Inc.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from advlm.data.collate import TokenizedDataset, make_collator
from advlm.embeddings import embed, model_inputs, token_mask
from advlm.perturbation import ascend

CORRECT_LOSS = math.log(2.0)  # cross-entropy of a prediction that is still (barely) correct for 2 classes


def example_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels, reduction="none")


@dataclass
class Ascent:
    clean_loss: torch.Tensor  # (B,)
    worst_loss: torch.Tensor  # (B,) the largest loss found in the ball
    worst_correct: torch.Tensor  # (B,) whether the prediction at the worst point is still correct
    worst_delta: torch.Tensor  # B x T x H


def worst_case(
    model: nn.Module,
    batch: dict,
    eps: float | torch.Tensor,
    steps: int,
    norm: str = "l2",
    start: torch.Tensor | None = None,
) -> Ascent:
    """Ascend the per-example loss within radius `eps` (a float or per-example radii) for `steps` steps."""
    ids, labels, mask = batch["input_ids"], batch["labels"], token_mask(batch)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    clean_embeds = embed(model, ids).detach()
    radius = eps if torch.is_tensor(eps) else torch.full((len(ids),), float(eps), device=ids.device)
    step_size = 2.5 * radius / max(steps, 1)
    delta = (start if start is not None else torch.zeros_like(clean_embeds, dtype=torch.float32)).clone()
    best_loss = best_correct = best_delta = clean_loss = None
    for s in range(steps + 1):
        delta.requires_grad_(True)
        logits = model(**model_inputs(model, inputs, clean_embeds + delta)).logits
        losses = example_losses(logits, labels)
        correct = logits.argmax(-1) == labels
        if s == 0:
            with torch.no_grad():
                clean_logits = model(**model_inputs(model, inputs, clean_embeds)).logits
            clean_loss = example_losses(clean_logits, labels).detach()
            best_loss, best_correct, best_delta = clean_loss.clone(), clean_logits.argmax(-1) == labels, delta.detach()
        better = losses.detach() > best_loss
        best_loss = torch.where(better, losses.detach(), best_loss)
        best_correct = torch.where(better, correct, best_correct)
        best_delta = torch.where(better.view(-1, 1, 1), delta.detach(), best_delta)
        if s == steps or not bool((radius > 0).any()):
            break
        (grad,) = torch.autograd.grad(losses.sum(), delta)
        delta = ascend(delta, grad, mask, step_size, radius, norm).detach()
    return Ascent(clean_loss, best_loss, best_correct, best_delta)


def _batches(dataset: TokenizedDataset, tokenizer, batch_size: int, device):
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=make_collator(tokenizer))
    for batch in loader:
        yield {k: v.to(device) for k, v in batch.items()}


def loss_increase(
    model: nn.Module,
    dataset: TokenizedDataset,
    tokenizer,
    eps: list[float] | float,
    radii: np.ndarray | None = None,
    steps: int = 20,
    norm: str = "l2",
    batch_size: int = 32,
    progress: bool = False,
) -> dict:
    """Per-example clean loss and maximal loss at each radius in `eps` (and at per-example `radii`)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    eps_list = sorted([eps] if isinstance(eps, (int, float)) else eps)
    clean, worst, at_r_loss, at_r_correct = [], {e: [] for e in eps_list}, [], []
    offset = 0
    for batch in tqdm(
        list(_batches(dataset, tokenizer, batch_size, device)), desc="loss increase", disable=not progress
    ):
        n = len(batch["input_ids"])
        start = None
        for e in eps_list:
            result = worst_case(model, batch, e, steps, norm, start)
            start = result.worst_delta
            worst[e].append(result.worst_loss.cpu())
        clean.append(result.clean_loss.cpu())
        if radii is not None:
            r = torch.as_tensor(radii[offset : offset + n], dtype=torch.float32, device=device)
            result = worst_case(model, batch, r, steps, norm)
            at_r_loss.append(result.worst_loss.cpu())
            at_r_correct.append(result.worst_correct.cpu())
        offset += n
    model.train(was_training)
    out = {"clean_loss": torch.cat(clean).numpy(), "worst_loss": {e: torch.cat(v).numpy() for e, v in worst.items()}}
    if radii is not None:
        out["worst_loss_at_radius"] = torch.cat(at_r_loss).numpy()
        out["correct_at_radius"] = torch.cat(at_r_correct).numpy()
    return out


def correct_radii(
    model: nn.Module,
    dataset: TokenizedDataset,
    tokenizer,
    r_max: float,
    iterations: int = 6,
    steps: int = 20,
    norm: str = "l2",
    batch_size: int = 32,
    progress: bool = False,
) -> np.ndarray:
    """Per example, the largest radius (bisection in [0, r_max]) whose maximal loss stays <= -log 0.5."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    radii = []
    for batch in tqdm(list(_batches(dataset, tokenizer, batch_size, device)), desc="radii", disable=not progress):
        lo = torch.zeros(len(batch["input_ids"]), device=device)
        hi = torch.full_like(lo, r_max)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            ok = worst_case(model, batch, mid, steps, norm).worst_loss <= CORRECT_LOSS
            lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
        radii.append(lo.cpu())
    model.train(was_training)
    return torch.cat(radii).numpy()


def compare(
    models: dict[str, nn.Module],
    dataset: TokenizedDataset,
    tokenizer,
    eps: float,
    steps: int = 20,
    norm: str = "l2",
    r_max: float = 1.0,
    iterations: int = 6,
    batch_size: int = 32,
    progress: bool = False,
) -> dict:
    """FreeLB's Table 5 for `models` (the first is the reference for the radii), on the examples that every
    model classifies correctly. Returns {"rows": [...], "examples": n, "settings": {...}}."""
    from advlm.evaluation import predict

    labels = np.array([f["labels"] for f in dataset.features])
    correct = np.ones(len(dataset), dtype=bool)
    for model in models.values():
        logits = predict(model, dataset, tokenizer, batch_size)
        correct &= logits.argmax(-1) == labels
    common = TokenizedDataset([f for f, ok in zip(dataset.features, correct) if ok])
    settings = {
        "eps": eps,
        "steps": steps,
        "norm": norm,
        "r_max": r_max,
        "bisection_iterations": iterations,
        "step_size": f"2.5 * radius / {steps}",
        "examples_total": len(dataset),
    }
    if len(common) == 0:
        return {"rows": [], "examples": 0, "settings": settings}
    reference = next(iter(models.values()))
    radii = correct_radii(reference, common, tokenizer, r_max, iterations, steps, norm, batch_size, progress)
    rows = []
    for name, model in models.items():
        r = loss_increase(model, common, tokenizer, [eps], radii, steps, norm, batch_size, progress)
        rows.append(
            {
                "model": name,
                "M-Inc": float(np.median(r["worst_loss"][eps] - r["clean_loss"])),
                "M-Inc (R)": float(np.median(r["worst_loss_at_radius"] - r["clean_loss"])),
                "N-Loss": float(np.median(r["clean_loss"])),
                "robust acc @R": float(np.mean(r["correct_at_radius"])),
            }
        )
    settings["median_radius"] = float(np.median(radii))
    return {"rows": rows, "examples": len(common), "settings": settings}
