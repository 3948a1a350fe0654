"""FreeLB: "FreeLB: Enhanced Adversarial Training for Natural Language Understanding",
Zhu et al., ICLR 2020, https://arxiv.org/abs/1909.11764 (Algorithm 1; reference code zhuchen03/FreeLB).

K passes per batch; pass t back-propagates loss_t / K, so the parameter gradient is the mean over the K
perturbed inputs, then `delta` ascends along its normalized gradient and is projected back into the eps
ball. One optimizer step per batch. Cost: K forward+backward passes.

Departures and choices:
- `steps` counts passes (the HF reference's adv-K); the fairseq scripts' `--adv-steps` is passes - 1.
- Dropout masks are the same in all K passes (`same_dropout`, as the references do) by rewinding the RNG.
- Defaults are the BERT-base RTE setting (TextAT's README, "mostly FreeLB's"): K=2, step 2e-2, init 0.16,
  max-norm 0.14. The papers' per-task settings are under configs/.
- A non-finite loss in a pass is not back-propagated (zero gradient instead); later passes use the clean
  input. Passes already done keep their gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from advlm.embeddings import forward_embeds, token_mask
from advlm.fast_paths import StepLookup
from advlm.methods.base import (
    AdversarialMethod,
    Backward,
    StepOutput,
    dropout_replay,
    guarded,
    hparam,
    shared,
    sync_unless_last,
)
from advlm.methods.registry import register
from advlm.passes import PassFn
from advlm.perturbation import ascend, example_norm, init_delta


@register("freelb")
@dataclass
class FreeLB(AdversarialMethod):
    """FreeLB (Zhu et al., ICLR 2020): K passes, mean gradient over the perturbed inputs, one update."""

    steps: int = shared("steps", 2)
    step_size: float = shared("step_size", 2e-2)
    eps: float = shared("eps", 0.14)
    init_mag: float = shared("init_mag", 0.16)
    norm: str = shared("norm", "l2")
    same_dropout: bool = hparam(True, "reuse the same dropout masks in all K passes of a batch")
    adv_start_step: int = shared("adv_start_step", 0)
    nan_guard: bool = shared("nan_guard", True)

    @property
    def passes(self) -> float:
        return float(self.steps)

    def adversarial_step(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], backward: Backward, compute_loss: PassFn
    ) -> StepOutput:
        mask, lookup = token_mask(batch), StepLookup(model, batch["input_ids"])
        delta = init_delta(lookup.like, mask, self.init_mag, self.norm, self.eps)

        def ascent(delta: torch.Tensor) -> torch.Tensor:
            return ascend(delta, delta.grad, mask, self.step_size, self.eps, self.norm)

        return free_passes(self, model, batch, backward, compute_loss, lookup, delta, ascent)[0]


def free_passes(
    method: AdversarialMethod,
    model: nn.Module,
    batch: Mapping[str, torch.Tensor],
    backward: Backward,
    compute_loss: PassFn,
    lookup: StepLookup,
    delta: torch.Tensor,
    ascent: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[StepOutput, torch.Tensor]:
    """FreeLB's K passes (shared with TextAT): back-propagate loss_t / K at `lookup` + `delta`, then
    `delta = ascent(delta)` (its `.grad` filled) except after the last pass. Returns the step's output and the
    final perturbation."""
    steps = method.steps
    delta = delta.requires_grad_()
    replay = dropout_replay(batch) if method.same_dropout else None
    losses, skipped = [], 0
    for t in range(steps):
        last = t == steps - 1
        if t > 0 and replay is not None:
            replay.restore()
        with sync_unless_last(model, last):
            pass_loss, _ = forward_embeds(model, batch, delta, lookup.for_pass(last), compute_loss)
            loss, finite = guarded(pass_loss, model, method)
            if not finite and last:
                loss = loss + lookup.carry()
            backward(loss / steps)
        losses.append(loss.detach())
        if not finite:  # the remaining passes see the clean input
            skipped += 1
            delta = torch.zeros_like(delta).requires_grad_()
        elif not last:
            delta = ascent(delta)
    metrics = {
        "loss_first_pass": losses[0],
        "loss_last_pass": losses[-1],
        "delta_norm": example_norm(delta.detach()).mean(),
        "skipped": skipped / steps,
    }
    return StepOutput(torch.stack(losses).mean(), metrics), delta.detach()
