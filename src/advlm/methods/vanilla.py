"""Plain fine-tuning: one forward and one backward on the clean batch (the baseline every table starts with)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from advlm.methods.base import AdversarialMethod, Backward, StepOutput
from advlm.methods.registry import register
from advlm.passes import PassFn


@register("vanilla")
@dataclass
class Vanilla(AdversarialMethod):
    """Standard fine-tuning. Cost: 1 forward + 1 backward. Feeds the batch as is (no embedding access)."""

    @property
    def passes(self) -> float:
        return 1.0

    uses_embeddings = False

    def adversarial_step(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], backward: Backward, compute_loss: PassFn
    ) -> StepOutput:
        loss, _ = compute_loss(model, dict(batch))
        backward(loss)
        return StepOutput(loss.detach())
