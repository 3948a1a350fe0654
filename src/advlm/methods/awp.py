"""AWP: adversarial weight perturbation, "Adversarial Weight Perturbation Helps Robust Generalization", Wu et al.,
NeurIPS 2020, https://arxiv.org/abs/2004.05884, in the one-step form NLP fine-tuning recipes use (the Kaggle
competition code most users copy).

A step: the clean loss is back-propagated; then each chosen weight w (trainable, its name containing
`adv_param`) moves up its own clean gradient g by a step relative to its size,
    w <- w + adv_lr x g / ||g|| x ||w||,
clipped elementwise to [w0 - adv_eps |w0|, w0 + adv_eps |w0|] (w0: the weight before the step); the loss at
the perturbed weights is back-propagated too (times `weight`), adding its gradient to the clean one; then every
weight is restored bit for bit (a copy of w0, not a subtraction) before the optimizer steps.
Cost: 2 forward+backward passes. It perturbs weights, not embeddings: any model that trains with the Trainer
works, and the perturbation does not depend on the input route.

Departures and choices:
- `adv_param` defaults to "weight" (the recipes' default: every parameter named *weight*, embeddings and
  LayerNorm scales included, no biases); `adv_lr` 1.0 and `adv_eps` 1e-3 are common recipe values (the recipes
  vary: 1e-4 to 1 for adv_lr, 1e-3 to 1e-2 for adv_eps). The recipes skip a weight whose gradient norm is 0 or
  NaN; here such a weight is left unperturbed without a host sync (the step is computed and masked).
- `weight` scales the adversarial loss (the recipes: 1); with a zero perturbation (`adv_lr` or `adv_eps` 0)
  the step's gradient is then twice the clean one, as the recipes', and vanilla's only with `weight` 0.
- Under gradient accumulation, g is the gradient accumulated so far in the optimizer step (the recipes run
  without accumulation). Untested with sharded parameters (FSDP, ZeRO-3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from advlm.embeddings import id_inputs, unwrap
from advlm.methods.base import AdversarialMethod, Backward, StepOutput, guarded, hparam, shared, sync_unless_last
from advlm.methods.registry import register
from advlm.passes import PassFn

TINY = 1e-6  # the recipes' e, in both norms


@register("awp")
@dataclass
class AWP(AdversarialMethod):
    """AWP (Wu et al., NeurIPS 2020): one ascent step on the weights, relative to each weight's norm."""

    adv_lr: float = hparam(1.0, "step on each weight relative to its norm: adv_lr x g / ||g|| x ||w||")
    adv_eps: float = hparam(1e-3, "bound: each weight stays within adv_eps x |w| of its value, elementwise")
    adv_param: str = hparam("weight", "perturb the trainable parameters whose name contains this")
    weight: float = shared("weight", 1.0)
    adv_start_step: int = shared("adv_start_step", 0)
    nan_guard: bool = shared("nan_guard", True)

    uses_embeddings = False

    @property
    def passes(self) -> float:
        return 2.0

    def validate(self) -> None:
        super().validate()
        from advlm.errors import AdvlmError

        for key in ("adv_lr", "adv_eps"):
            if getattr(self, key) < 0:
                raise AdvlmError(f"awp: {key} must be >= 0, got {getattr(self, key)}")
        if not self.adv_param:
            raise AdvlmError("awp: adv_param must name part of a parameter name (e.g. weight)")

    def chosen(self, model: nn.Module) -> list[tuple[str, nn.Parameter]]:
        """The parameters AWP perturbs: trainable, their name containing `adv_param`."""
        return [(n, p) for n, p in unwrap(model).named_parameters() if p.requires_grad and self.adv_param in n]

    def adversarial_step(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], backward: Backward, compute_loss: PassFn
    ) -> StepOutput:
        clean_loss, _ = compute_loss(model, id_inputs(model, batch))
        with sync_unless_last(model, last=False):
            backward(clean_loss)
        params = [p for _, p in self.chosen(model) if p.grad is not None]
        saved = [p.detach().clone() for p in params]
        with torch.no_grad():
            moved = self._perturb(params, saved)
        try:
            adv_loss, _ = compute_loss(model, id_inputs(model, batch))
            guarded_loss, finite = guarded(adv_loss, model, self)
            backward(self.weight * guarded_loss)
        finally:  # restored even if the pass fails: the weights are the user's
            with torch.no_grad():
                for p, w0 in zip(params, saved):
                    p.copy_(w0)
        loss = clean_loss.detach() + self.weight * guarded_loss.detach()
        metrics = {"clean_loss": clean_loss.detach(), "adv_loss": adv_loss.detach(), "weight_shift": moved}
        return StepOutput(loss, {**metrics, "skipped": float(not finite)})

    def _perturb(self, params: list[torch.Tensor], saved: list[torch.Tensor]) -> torch.Tensor:
        """Move each weight and clip it; returns the mean relative size of the move (||w - w0|| / ||w0||)."""
        if not params:
            return torch.zeros(())
        shifts = []
        for p, w0 in zip(params, saved):
            g = p.grad.float()
            g_norm, w_norm = g.norm(), w0.float().norm()
            usable = (g_norm > 0) & torch.isfinite(g_norm)
            step = torch.where(usable, self.adv_lr / (g_norm + TINY) * (w_norm + TINY), torch.zeros_like(g_norm))
            bound = self.adv_eps * w0.abs()
            moved = torch.minimum(torch.maximum(w0 + (step * torch.nan_to_num(g)).to(w0.dtype), w0 - bound), w0 + bound)
            p.copy_(moved)
            shifts.append((moved - w0).float().norm() / (w_norm + TINY))
        return torch.stack(shifts).mean()
