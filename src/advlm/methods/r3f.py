"""R3F: "Better Fine-Tuning by Reducing Representational Collapse", Aghajanyan et al., ICLR 2021,
https://arxiv.org/abs/2008.03156 (reference: fairseq's `sentence_prediction_r3f` criterion).

loss = task_loss(f(x)) + lambda x KL_S(f(x) || f(x + z)), z ~ N(0, sigma^2 I) or U(-sigma, sigma) (`noise_type`,
`eps` = sigma) on the word-embedding lookup. No ascent: one noised forward instead of SMART's inner
maximization, which is what the paper offers as "matching SMART and FreeLB while much faster".
Cost: the clean pass and the noised one, each back-propagated (one shared backward): 2 forward+backward.

R4F (`advlm.methods.r4f`) is this step with the classification head's output layer spectrally normalised.

Departures and choices:
- KL_S is read through the head adapter (`advlm.heads.consistency`), as SMART's terms: per example for
  sentence-level heads, averaged over the positions that count for token-level ones (fairseq's criterion is for
  sentence classification only), squared error for regression.
- Each direction of the symmetric KL detaches its target side (mt-dnn's SymKlCriterion, as SMART here); fairseq
  back-propagates through both sides of both directions. The value is the same; the gradient differs by the
  terms through the target distributions.
- Noise is zero at padding (fairseq's is drawn at every position, padding included).
- Defaults are fairseq's: `eps` 1e-5, `lambda` 1.0, `noise_type` uniform.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from advlm.embeddings import forward_embeds, token_mask
from advlm.fast_paths import StepLookup
from advlm.heads import QUESTION_ANSWERING, consistency, head_of, special_ids
from advlm.methods.base import AdversarialMethod, Backward, StepOutput, guarded, hparam, shared
from advlm.methods.registry import register
from advlm.passes import PassFn
from advlm.perturbation import example_norm


@register("r3f")
@dataclass
class R3F(AdversarialMethod):
    """R3F (Aghajanyan et al., ICLR 2021): task loss plus a symmetric KL to a noised pass, no ascent."""

    eps: float = hparam(1e-5, "sigma: the noise scale, half-width of the uniform or sd of the normal (fairseq: --eps)")
    noise_type: str = hparam(
        "uniform", "noise distribution: uniform in [-eps, eps] or normal with sd eps", choices=("uniform", "normal")
    )
    weight: float = shared("weight", 1.0)
    adv_start_step: int = shared("adv_start_step", 0)
    nan_guard: bool = shared("nan_guard", True)

    @property
    def passes(self) -> float:
        return 2.0

    def noise(self, like: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """z of the lookup's shape in fp32, zero at padding."""
        z = torch.empty(like.shape, device=like.device)
        z = z.uniform_(-self.eps, self.eps) if self.noise_type == "uniform" else z.normal_(0.0, self.eps)
        return z * mask.unsqueeze(-1)

    def adversarial_step(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], backward: Backward, compute_loss: PassFn
    ) -> StepOutput:
        head = head_of(model)
        specials = special_ids(model, self.special_token_ids) if head == QUESTION_ANSWERING else ()
        lookup = StepLookup(model, batch["input_ids"])
        embeds = lookup.words  # shared by both passes (None on the hook route)
        task_loss, clean = forward_embeds(model, batch, None, embeds, compute_loss)
        z = self.noise(lookup.like, token_mask(batch))
        _, noisy = forward_embeds(model, batch, z, embeds, compute_loss)
        reg = consistency(head, noisy, clean, batch, specials)
        guarded_reg, finite = guarded(self.weight * reg, model, self)
        loss = task_loss + guarded_reg  # a non-finite task loss is not the guard's to hide
        backward(loss)
        metrics = {"task_loss": task_loss.detach(), "consistency": reg.detach(), "noise_norm": example_norm(z).mean()}
        return StepOutput(loss.detach(), {**metrics, "skipped": float(not finite)})
