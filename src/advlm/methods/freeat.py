"""FreeAT: "Adversarial Training for Free!", Shafahi et al., NeurIPS 2019, https://arxiv.org/abs/1904.12843,
on word embeddings as in FreeLB's baselines (Zhu et al., ICLR 2020).

Each minibatch is replayed K times in a row (`wrap_dataloader`); every replay is one forward+backward that
yields both the parameter gradient and d loss / d delta, then one optimizer step, then `delta` ascends and is
projected. `delta` is carried across the replays of a batch and starts afresh for the next batch.
Cost: 1 forward+backward per replay, so K per minibatch; optimizer steps = K x batches, which is why the
paper divides the number of epochs by K (we do not: pass `--epochs` accordingly).

Departures: Shafahi et al. use the gradient sign (an linf step); we use FreeLB's normalized step and ball
(l2 by default, linf available). A batch is recognized as new by counting replays; a replay whose shape
differs from the carried `delta` also starts a new one (inputs of any leading shape: B x T, B x C x T).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from advlm.embeddings import forward_embeds, lookup_shaped, token_mask
from advlm.methods.base import AdversarialMethod, Backward, StepOutput, guarded, shared
from advlm.methods.registry import register
from advlm.passes import PassFn
from advlm.perturbation import ascend, example_norm, init_delta


class Replay:
    """Yields each batch of `loader` `times` times in a row; `len` and other attributes follow the loader."""

    def __init__(self, loader: Iterable, times: int):
        self.loader, self.times = loader, times

    def __iter__(self) -> Iterator:
        for batch in self.loader:
            for _ in range(self.times):
                yield batch

    def __len__(self) -> int:
        return len(self.loader) * self.times  # type: ignore[arg-type]

    def __getattr__(self, name: str):
        return getattr(self.loader, name)


@register("freeat")
@dataclass
class FreeAT(AdversarialMethod):
    """FreeAT (Shafahi et al., NeurIPS 2019): each batch replayed K times, one optimizer step per replay."""

    steps: int = shared("steps", 2)
    step_size: float = shared("step_size", 2e-2)
    eps: float = shared("eps", 0.14)
    init_mag: float = shared("init_mag", 0.0)
    norm: str = shared("norm", "l2")
    adv_start_step: int = shared("adv_start_step", 0)
    nan_guard: bool = shared("nan_guard", True)

    @property
    def passes(self) -> float:  # per replay, i.e. per optimizer step
        return 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._delta: torch.Tensor | None = None
        self._replay = -1  # position of the current call within its batch's replays

    def step(
        self,
        model: nn.Module,
        batch: Mapping[str, torch.Tensor],
        backward: Backward | None = None,
        compute_loss: PassFn | None = None,
    ) -> StepOutput:
        self._replay = (self._replay + 1) % self.steps  # counted during a delayed start too
        return super().step(model, batch, backward, compute_loss)

    @property
    def optimizer_steps_per_batch(self) -> int:
        return self.steps

    def wrap_dataloader(self, dataloader: Iterable) -> Iterable:
        return Replay(dataloader, self.steps)

    def state_dict(self) -> dict[str, Any]:
        """The perturbation carried to the next replay and the position within the batch's replays."""
        return {} if self._delta is None else {"delta": self._delta.detach().cpu(), "replay": self._replay}

    def load_state_dict(self, state: Mapping[str, Any], model: nn.Module | None = None) -> None:
        if state:
            device = next(model.parameters()).device if model is not None else "cpu"
            self._delta, self._replay = state["delta"].to(device), int(state["replay"])

    def adversarial_step(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], backward: Backward, compute_loss: PassFn
    ) -> StepOutput:
        mask = token_mask(batch)
        if self._replay == 0 or self._delta is None or self._delta.shape[:-1] != mask.shape:
            self._delta = init_delta(lookup_shaped(model, batch["input_ids"]), mask, self.init_mag, self.norm, self.eps)
        delta = self._delta.requires_grad_()
        adv_loss, _ = forward_embeds(model, batch, delta, compute_loss=compute_loss)
        loss, finite = guarded(adv_loss, model, self)
        backward(loss)
        if finite:
            self._delta = ascend(delta, delta.grad, mask, self.step_size, self.eps, self.norm).detach()
        else:
            self._delta = torch.zeros_like(delta.detach())
        metrics = {
            "adv_loss": adv_loss.detach(),
            "delta_norm": example_norm(delta.detach()).mean(),
            "skipped": float(not finite),
        }
        return StepOutput(loss.detach(), metrics)
