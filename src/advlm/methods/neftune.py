"""NEFTune: "NEFTune: Noisy Embeddings Improve Instruction Finetuning", Jain et al., 2023,
https://arxiv.org/abs/2310.05914.

During training, uniform noise in [-m, m] is added to the word-embedding lookup, with m = alpha / sqrt(L x d)
(d: the embedding width). No extra pass: the cheapest rung. Cost: 1 forward+backward.

L, the length, is counted one of two ways (`length`):
- `padded` (default): the batch's padded length, as transformers' NEFTune hook (`neftune_noise_alpha`)
  counts it (the size of the lookup's sequence dimension), so that results match the Trainer's flag;
- `sequence`: each example's number of real tokens, as the paper writes it (a short example in a long batch
  gets more noise per token than under `padded`).

Departures: transformers adds the noise at padding too; advlm draws it over the whole lookup in the same
order (so the random stream, and with it every dropout mask after it, is the Trainer's) and then zeroes it at
padding, which changes nothing the loss can see (padding is masked out of attention and of the loss). The
noise is drawn in fp32 and added in the lookup's dtype.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from advlm.embeddings import forward_embeds, lookup_shaped, token_mask
from advlm.methods.base import AdversarialMethod, Backward, StepOutput, hparam, shared
from advlm.methods.registry import register
from advlm.passes import PassFn
from advlm.perturbation import example_norm


@functools.lru_cache(maxsize=256)
def padded_magnitude(alpha: float, dims: int) -> float:
    """alpha / sqrt(T x d) with transformers' arithmetic (a float32 tensor; its rounding, bit for bit), read once
    per length (a CPU scalar, cached: no read per step)."""
    return float(alpha / torch.sqrt(torch.tensor(dims)))


@register("neftune")
@dataclass
class NEFTune(AdversarialMethod):
    """NEFTune (Jain et al., 2023): scaled uniform noise on the word embeddings, one pass."""

    alpha: float = hparam(5.0, "noise scale alpha: m = alpha / sqrt(L x d) (the paper tries 5, 10, 15)")
    length: str = hparam(
        "padded",
        "how L is counted: padded (the batch's padded length, as transformers' hook) or sequence (real tokens)",
        choices=("padded", "sequence"),
    )
    adv_start_step: int = shared("adv_start_step", 0)

    @property
    def passes(self) -> float:
        return 1.0

    def validate(self) -> None:
        super().validate()
        from advlm.errors import AdvlmError

        if self.alpha < 0:
            raise AdvlmError(f"neftune: alpha must be >= 0, got {self.alpha}")

    def noise(self, like: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The noise for a lookup shaped like `like` (... x T x d), zero at padding (`mask`)."""
        noise = torch.zeros(like.shape, device=like.device)
        if self.length == "padded":
            magnitude = padded_magnitude(self.alpha, like.size(-2) * like.size(-1))
            noise.uniform_(-magnitude, magnitude)
        else:
            real = mask.sum(-1, keepdim=True).clamp_min(1).unsqueeze(-1)  # ... x 1 x 1
            noise.uniform_(-1, 1).mul_(self.alpha / (real * like.size(-1)).sqrt())
        return noise * mask.unsqueeze(-1)

    def adversarial_step(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], backward: Backward, compute_loss: PassFn
    ) -> StepOutput:
        mask = token_mask(batch)
        noise = self.noise(lookup_shaped(model, batch["input_ids"]), mask)
        loss, _ = forward_embeds(model, batch, noise, compute_loss=compute_loss)
        backward(loss)
        return StepOutput(loss.detach(), {"noise_norm": example_norm(noise).mean()})
