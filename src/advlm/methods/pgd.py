"""K-step PGD: "Towards Deep Learning Models Resistant to Adversarial Attacks", Madry et al., ICLR 2018,
https://arxiv.org/abs/1706.06083, on word embeddings as in FreeLB's baselines (Zhu et al., ICLR 2020, sec. 3).

K ascent passes compute only d loss / d delta (`torch.autograd.grad`; parameter `.grad` untouched), each
followed by a normalized step and projection; then one forward+backward on the final adversarial input is
the only gradient the parameters get. Cost: K + 1 forward+backward passes.

Choices: the ascent passes run under DDP's `no_sync` and draw their own dropout masks; the update uses the
adversarial loss alone (Madry's min-max), as FreeLB's PGD baseline does. Defaults follow FreeLB's geometry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from advlm.embeddings import forward_embeds, lookup_shaped, token_mask
from advlm.methods.base import AdversarialMethod, Backward, StepOutput, guarded, shared
from advlm.methods.registry import register
from advlm.passes import PassFn
from advlm.perturbation import ascend, example_norm, init_delta


@register("pgd")
@dataclass
class PGD(AdversarialMethod):
    """K-step PGD (Madry et al., ICLR 2018): K delta-only ascent passes, then one update pass."""

    steps: int = shared("steps", 2)
    step_size: float = shared("step_size", 2e-2)
    eps: float = shared("eps", 0.14)
    init_mag: float = shared("init_mag", 0.16)
    norm: str = shared("norm", "l2")
    adv_start_step: int = shared("adv_start_step", 0)
    nan_guard: bool = shared("nan_guard", True)

    @property
    def passes(self) -> float:
        return float(self.steps + 1)

    def adversarial_step(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], backward: Backward, compute_loss: PassFn
    ) -> StepOutput:
        mask = token_mask(batch)
        delta = init_delta(
            lookup_shaped(model, batch["input_ids"]), mask, self.init_mag, self.norm, self.eps
        ).requires_grad_()
        guard = model.no_sync() if hasattr(model, "no_sync") else torch.enable_grad()
        first = None
        with guard:
            for _ in range(self.steps):
                loss, _ = forward_embeds(model, batch, delta, compute_loss=compute_loss)
                first = loss.detach() if first is None else first
                (grad,) = torch.autograd.grad(loss, delta)
                delta = ascend(delta, grad, mask, self.step_size, self.eps, self.norm)
        adv_loss, _ = forward_embeds(model, batch, delta.detach(), compute_loss=compute_loss)
        loss, finite = guarded(adv_loss, model, self)  # non-finite: a zero gradient, not a NaN one
        backward(loss)
        metrics = {
            "loss_first_pass": first,
            "adv_loss": adv_loss.detach(),
            "delta_norm": example_norm(delta.detach()).mean(),
            "skipped": float(not finite),
        }
        return StepOutput(loss.detach(), metrics)
