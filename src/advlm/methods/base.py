"""The central abstraction: an adversarial method is a training step that owns its backward calls.

`step(model, batch, backward)` runs the method's forward/backward passes on one batch and returns a
`StepOutput`; it never touches the optimizer. `backward` defaults to `loss.backward()`; accelerate users pass
`accelerator.backward`, and `AdversarialTrainer` passes its own (scaled for AMP and gradient accumulation).
Hyper-parameters are dataclass fields whose `metadata["help"]` is also the CLI help.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

Backward = Callable[[torch.Tensor], Any]


def hparam(default: Any, help: str, **kwargs) -> Any:
    """A hyper-parameter field: its help text serves `advlm train --method X --help` and the docs."""
    return field(default=default, metadata={"help": help, **kwargs})


def default_backward(loss: torch.Tensor) -> None:
    loss.backward()


@dataclass
class StepOutput:
    """What one `step` returns: the detached training loss, the clean logits when computed, and detached
    scalar diagnostics (tensors, so that reading them does not force a device sync every step)."""

    loss: torch.Tensor
    logits: torch.Tensor | None = None
    metrics: dict[str, torch.Tensor | float] = field(default_factory=dict)


@dataclass
class AdversarialMethod:
    """Base class. Subclasses are dataclasses of hyper-parameters implementing `step`."""

    name: ClassVar[str] = ""
    #: forward+backward passes per batch, in units of a vanilla step (the ideal cost ratio)
    passes: ClassVar[float] = 1.0
    #: whether the method feeds `inputs_embeds` (and so needs a model that accepts them)
    uses_embeddings: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check hyper-parameters; raise `AdvlmError` naming the bad value and the fix."""

    def prepare(self, model: nn.Module) -> None:
        """Check the model before any training (the methods here refuse models without `inputs_embeds`)."""
        if self.uses_embeddings:
            from advlm.embeddings import check_accepts_inputs_embeds

            check_accepts_inputs_embeds(model)

    def step(self, model: nn.Module, batch: Mapping[str, torch.Tensor], backward: Backward | None = None) -> StepOutput:
        raise NotImplementedError

    @property
    def optimizer_steps_per_batch(self) -> int:
        return 1

    def wrap_dataloader(self, dataloader: Iterable) -> Iterable:
        """Hook for methods that replay batches (FreeAT)."""
        return dataloader

    def state_dict(self) -> dict[str, Any]:
        """Method state that must travel with checkpoints (TextAT's table, SMART's teacher)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state:
            raise ValueError(f"method '{self.name}' has no state to load, got keys {sorted(state)}")

    @classmethod
    def hyperparameters(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if f.init]

    def config(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in self.hyperparameters()}
