"""FGM: "Adversarial Training Methods for Semi-Supervised Text Classification", Miyato et al., ICLR 2017,
https://arxiv.org/abs/1605.07725 — the common cheap baseline.

One clean forward+backward (parameter gradients and d loss / d delta together), one normalized step of size
`step_size` on the word embeddings, one forward+backward on the perturbed input with loss weight `weight`.
Cost: 2 forward+backward passes. This is PGD with K=1 on the current batch plus the clean loss
(docs/methods.md). Departure: Miyato et al. perturb normalized embeddings of an LSTM; we perturb the
word-embedding lookup of a Transformer, with the step normalized per example (l2) as FreeLB does.

Default step 0.1 per example, not the common BERT recipe's epsilon 1.0: that recipe normalizes over the whole
batch's embedding gradient, about 1/sqrt(batch) per example; 1.0 per example is far larger (docs/methods.md,
"Defaults", says what it did to the default model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from advlm.embeddings import forward_embeds, token_mask
from advlm.fast_paths import StepLookup
from advlm.methods.base import AdversarialMethod, Backward, StepOutput, guarded, shared, sync_unless_last
from advlm.methods.registry import register
from advlm.passes import PassFn
from advlm.perturbation import ascend, example_norm


@register("fgm")
@dataclass
class FGM(AdversarialMethod):
    """FGM (Miyato et al., ICLR 2017): clean loss plus the loss at one normalized gradient step."""

    step_size: float = shared("step_size", 0.1)
    eps: float = shared("eps", 0.0)
    norm: str = shared("norm", "l2")
    weight: float = shared("weight", 1.0)
    adv_start_step: int = shared("adv_start_step", 0)
    nan_guard: bool = shared("nan_guard", True)

    @property
    def passes(self) -> float:
        return 2.0

    def adversarial_step(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], backward: Backward, compute_loss: PassFn
    ) -> StepOutput:
        mask, lookup = token_mask(batch), StepLookup(model, batch["input_ids"])
        zero = torch.zeros_like(lookup.like, dtype=torch.float32).requires_grad_()
        with sync_unless_last(model, last=False):
            clean_loss, _ = forward_embeds(model, batch, zero, lookup.for_pass(last=False), compute_loss)
            backward(clean_loss)
        delta = ascend(zero, zero.grad, mask, self.step_size, self.eps, self.norm).detach()
        adv_loss, _ = forward_embeds(model, batch, delta, lookup.for_pass(last=True), compute_loss)
        guarded_loss, finite = guarded(adv_loss, model, self)
        backward(self.weight * guarded_loss + (0.0 if finite else lookup.carry()))
        loss = clean_loss.detach() + self.weight * guarded_loss.detach()
        metrics = {
            "clean_loss": clean_loss.detach(),
            "adv_loss": adv_loss.detach(),
            "delta_norm": example_norm(delta).mean(),
            "skipped": float(not finite),
        }
        return StepOutput(loss, metrics)
