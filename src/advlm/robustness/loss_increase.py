"""The robustness measure of FreeLB's Table 5 (Zhu et al., ICLR 2020): the maximum loss increase in an
eps ball on the word embeddings, Delta L_max(X, eps) = max_{||delta|| <= eps} L(f(X + delta), y) - L(f(X), y).

Per example, models in eval mode, maximized by normalized-gradient ascent (l2 ball by default), batched.
It is head-agnostic: an example's loss is read through the head adapter (`advlm.heads.example_losses`: the
cross-entropy of its class or choice, the mean over its labelled tokens or response tokens, the mean of the
start and end losses of a QA window).
- "M-Inc": the median increase over examples at a fixed eps; "N-Loss": the median clean loss.
- "M-Inc (R)": per-example radii chosen on the first (reference) model as the largest radius whose maximal
  loss keeps the prediction correct (loss <= -log 0.5, and for heads with several predictions per example
  every one of them still right), found by bisection, then applied to every model. Heads without a notion of
  a correct prediction (regression, causal LM) have no radii and report M-Inc and N-Loss only.
- Only examples that every compared model predicts correctly are used (all, for those heads).

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
from torch import nn
from tqdm.auto import tqdm

from advlm.data.collate import TokenizedDataset
from advlm.embeddings import embed, model_inputs, token_mask
from advlm.heads import example_correct, example_losses, head_of
from advlm.perturbation import ascend

CORRECT_LOSS = math.log(2.0)  # cross-entropy of a prediction that is still (barely) correct for 2 classes


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
    """Ascend the per-example loss within radius `eps` (a float or per-example radii) for `steps` steps. A
    multiple-choice example's radius bounds each of its choices' perturbations."""
    head, ids, mask = head_of(model), batch["input_ids"], token_mask(batch)
    clean_embeds = embed(model, ids).detach()
    radius = eps if torch.is_tensor(eps) else torch.full((len(ids),), float(eps), device=ids.device)
    radius = radius.view(-1, *[1] * (mask.dim() - 2)).expand(mask.shape[:-1])  # one per sequence
    step_size = 2.5 * radius / max(steps, 1)
    delta = (start if start is not None else torch.zeros_like(clean_embeds, dtype=torch.float32)).clone()
    best_loss = best_correct = best_delta = clean_loss = None

    def judged(outputs) -> tuple[torch.Tensor, torch.Tensor]:
        correct = example_correct(head, outputs, batch)
        losses = example_losses(head, outputs, batch)
        return losses, (torch.ones_like(losses, dtype=torch.bool) if correct is None else correct)

    for s in range(steps + 1):
        delta.requires_grad_(True)
        losses, correct = judged(model(**model_inputs(model, batch, clean_embeds + delta)))
        if s == 0:
            with torch.no_grad():
                clean_loss, clean_correct = judged(model(**model_inputs(model, batch, clean_embeds)))
            best_loss, best_correct, best_delta = clean_loss.clone(), clean_correct, delta.detach()
        better = losses.detach() > best_loss
        best_loss = torch.where(better, losses.detach(), best_loss)
        best_correct = torch.where(better, correct, best_correct)
        best_delta = torch.where(better.view(-1, *[1] * (delta.dim() - 1)), delta.detach(), best_delta)
        if s == steps or not bool((radius > 0).any()):
            break
        (grad,) = torch.autograd.grad(losses.sum(), delta)
        delta = ascend(delta, grad, mask, step_size, radius, norm).detach()
    return Ascent(clean_loss, best_loss, best_correct, best_delta)


def _batches(dataset: TokenizedDataset, tokenizer, batch_size: int, device, task=None):
    from advlm.evaluation import batches
    from advlm.tasks import get_task

    yield from batches(dataset, task or get_task("sst2"), tokenizer, batch_size, device)


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
    task=None,
) -> dict:
    """Per-example clean loss and maximal loss at each radius in `eps` (and at per-example `radii`). `task`
    collates the batches (default: a sentence-classification task's padding)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    eps_list = sorted([eps] if isinstance(eps, (int, float)) else eps)
    clean, worst, at_r_loss, at_r_correct = [], {e: [] for e in eps_list}, [], []
    offset = 0
    for batch in tqdm(
        list(_batches(dataset, tokenizer, batch_size, device, task)), desc="loss increase", disable=not progress
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
    task=None,
) -> np.ndarray:
    """Per example, the largest radius (bisection in [0, r_max]) whose maximal loss stays <= -log 0.5 with
    the prediction still correct."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    radii = []
    batches = list(_batches(dataset, tokenizer, batch_size, device, task))
    for batch in tqdm(batches, desc="radii", disable=not progress):
        lo = torch.zeros(len(batch["input_ids"]), device=device)
        hi = torch.full_like(lo, r_max)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            result = worst_case(model, batch, mid, steps, norm)
            ok = (result.worst_loss <= CORRECT_LOSS) & result.worst_correct
            lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
        radii.append(lo.cpu())
    model.train(was_training)
    return torch.cat(radii).numpy()


@torch.no_grad()
def predicted_correctly(model: nn.Module, dataset: TokenizedDataset, tokenizer, batch_size: int, task=None):
    """Whether the model predicts each example correctly (None for heads without such a notion)."""
    was_training = model.training
    model.eval()
    head, device, flags = head_of(model), next(model.parameters()).device, []
    for batch in _batches(dataset, tokenizer, batch_size, device, task):
        correct = example_correct(head, model(**batch), batch)
        if correct is None:
            model.train(was_training)
            return None
        flags.append(correct.cpu())
    model.train(was_training)
    return torch.cat(flags).numpy()


def correct_by_all(models: dict[str, nn.Module], dataset: TokenizedDataset, tokenizer, batch_size: int, task):
    """(the examples every model predicts correctly, whether the head has a notion of correct at all; where it
    has none, every example)."""
    correct = np.ones(len(dataset), dtype=bool)
    judged = True
    for model in models.values():
        flags = predicted_correctly(model, dataset, tokenizer, batch_size, task)
        judged = flags is not None
        if judged:
            correct &= flags
    return TokenizedDataset([f for f, ok in zip(dataset.features, correct) if ok], dataset.meta), judged


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
    task=None,
) -> dict:
    """FreeLB's Table 5 for `models` (the first is the reference for the radii), on the examples that every
    model predicts correctly. Returns {"rows": [...], "examples": n, "settings": {...}}."""
    common, judged = correct_by_all(models, dataset, tokenizer, batch_size, task)
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
    radii = None
    if judged:
        radii = correct_radii(reference, common, tokenizer, r_max, iterations, steps, norm, batch_size, progress, task)
        settings["median_radius"] = float(np.median(radii))
    else:
        settings["radii"] = "none: this head has no notion of a correct prediction"
    rows = []
    for name, model in models.items():
        r = loss_increase(model, common, tokenizer, [eps], radii, steps, norm, batch_size, progress, task)
        row = {"model": name, "M-Inc": float(np.median(r["worst_loss"][eps] - r["clean_loss"]))}
        if radii is not None:
            row["M-Inc (R)"] = float(np.median(r["worst_loss_at_radius"] - r["clean_loss"]))
        row["N-Loss"] = float(np.median(r["clean_loss"]))
        if radii is not None:
            row["robust acc @R"] = float(np.mean(r["correct_at_radius"]))
        rows.append(row)
    return {"rows": rows, "examples": len(common), "settings": settings}
