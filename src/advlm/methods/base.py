"""The central abstraction: an adversarial method is a training step that owns its backward calls.

`step(model, batch, backward, compute_loss)` runs the method's forward/backward passes on one batch and returns
a `StepOutput`; it never touches the optimizer. `backward` defaults to `loss.backward()`; accelerate users pass
`accelerator.backward`, and `AdversarialTrainer` passes its own (scaled for AMP and gradient accumulation).
Every pass goes through `compute_loss`, the pass function `(model, inputs) -> (loss, outputs)` (`advlm.passes`);
consistency terms read the outputs through the head adapter (`advlm.heads`), so every method works on every
head. Hyper-parameters are dataclass fields whose `metadata["help"]` is also the CLI help.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from advlm.passes import PassFn, model_pass

logger = logging.getLogger(__name__)
Backward = Callable[[torch.Tensor], Any]


def hparam(default: Any, help: str, **kwargs) -> Any:
    """A hyper-parameter field: its help text serves `advlm train --method X --help` and the docs."""
    return field(default=default, metadata={"help": help, **kwargs})


def default_backward(loss: torch.Tensor) -> None:
    loss.backward()


@dataclass
class StepOutput:
    """What one `step` returns: the detached training loss and detached scalar diagnostics (tensors, so that
    reading them does not force a device sync every step)."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor | float] = field(default_factory=dict)


@dataclass
class AdversarialMethod:
    """Base class. Subclasses are dataclasses of hyper-parameters implementing `step`."""

    name: ClassVar[str] = ""
    #: whether the method feeds `inputs_embeds` (and so needs a model that accepts them)
    uses_embeddings: ClassVar[bool] = True
    #: the tokenizer's special token ids, told by `prepare(model, tokenizer=...)`
    special_token_ids: list[int] = field(default_factory=list, init=False, repr=False, compare=False)
    #: what `prepare` was told: "tokenizer", "total_steps"
    _told: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    @property
    def passes(self) -> float:
        """Forward+backward passes per batch, in units of a vanilla step: the ideal cost ratio to vanilla."""
        return 1.0

    @property
    def needs(self) -> tuple[str, ...]:
        """What this method's behaviour depends on being told by `prepare`: "tokenizer" (its special tokens),
        "total_steps" (the run's number of optimizer steps). A step without it warns once."""
        return ()

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the shared hyper-parameters that this method has; raise `AdvlmError` naming the fix."""
        from advlm.errors import AdvlmError

        for f in self.hyperparameters():
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise AdvlmError(f"{self.name}: {f.name} must be a finite number, got {value}")
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise AdvlmError(
                    f"{self.name}: unknown {f.name} {getattr(self, f.name)!r}; use one of {', '.join(choices)}"
                )
        if getattr(self, "steps", 1) < 1:
            raise AdvlmError(f"{self.name}: steps must be at least 1, got {self.steps}")
        for key in ("eps", "step_size", "init_mag", "weight", "adv_start_step"):
            value = getattr(self, key, 0)
            if value is None or value < 0:
                raise AdvlmError(f"{self.name}: {key} must be >= 0, got {value}")

    def prepare(self, model: nn.Module, tokenizer: Any = None, total_steps: int | None = None) -> None:
        """Check the model before any training (the methods here refuse models without `inputs_embeds`), and
        tell the method what it may need: the tokenizer's special tokens (TextAT's table skips them, QA's
        context mask uses them) and the run's number of optimizer steps (SMART's teacher schedule)."""
        if self.uses_embeddings:
            from advlm.embeddings import check_accepts_inputs_embeds

            check_accepts_inputs_embeds(model)
        check_checkpointing(model)
        if tokenizer is not None:
            self.special_token_ids = list(getattr(tokenizer, "all_special_ids", []) or [])
            self._told.add("tokenizer")
        if total_steps is not None:
            self.on_train_begin(total_steps)
            self._told.add("total_steps")

    def step(
        self,
        model: nn.Module,
        batch: Mapping[str, torch.Tensor],
        backward: Backward | None = None,
        compute_loss: PassFn | None = None,
    ) -> StepOutput:
        """Run the method's passes on `batch`, each through `compute_loss` (default: the model's own loss),
        calling `backward(loss)` as the method needs; never touches the optimizer."""
        backward = backward or default_backward
        compute_loss = compute_loss or model_pass
        self._calls = getattr(self, "_calls", 0) + 1
        if self._calls == 1:
            self._warn_untold()
        if self._calls <= getattr(self, "adv_start_step", 0):
            loss, _ = compute_loss(model, dict(batch))  # delayed start: plain fine-tuning for a while
            backward(loss)
            return StepOutput(loss.detach())
        from advlm.fast_paths import masks_shared_by_passes

        with masks_shared_by_passes():
            return self.adversarial_step(model, batch, backward, compute_loss)

    def adversarial_step(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], backward: Backward, compute_loss: PassFn
    ) -> StepOutput:
        raise NotImplementedError

    UNTOLD = {
        "tokenizer": "its special tokens (pass prepare(model, tokenizer=tokenizer))",
        "total_steps": "the run's number of optimizer steps (pass prepare(model, total_steps=N))",
    }

    def _warn_untold(self) -> None:
        """Warns once, at the first step, for each thing the method relies on that `prepare` was never told."""
        for need in self.needs:
            if need not in self._told:
                warnings.warn(
                    f"{self.name} was never told {self.UNTOLD[need]}: {self.untold_effect(need)}. "
                    "AdversarialTrainer tells it; in your own loop call method.prepare(model, tokenizer=tokenizer, "
                    "total_steps=N) before the first step.",
                    UserWarning,
                    stacklevel=3,
                )

    def untold_effect(self, need: str) -> str:
        """What the method does instead when `need` was never told (the warning says it)."""
        return "it runs without it"

    def on_train_begin(self, total_steps: int) -> None:
        """Told the run's number of optimizer steps (AdversarialTrainer does this; schedules use it)."""

    @property
    def optimizer_steps_per_batch(self) -> int:
        return 1

    def wrap_dataloader(self, dataloader: Iterable) -> Iterable:
        """Hook for methods that replay batches (FreeAT)."""
        return dataloader

    def state_dict(self) -> dict[str, Any]:
        """Method state that must travel with checkpoints (TextAT's table, SMART's teacher)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any], model: nn.Module | None = None) -> None:
        """Restore `state_dict()`'s state; `model` is the model being trained (for state made from it)."""
        if state:
            raise ValueError(f"method '{self.name}' has no state to load, got keys {sorted(state)}")

    @classmethod
    def hyperparameters(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if f.init]

    def config(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in self.hyperparameters()}


class _DropoutReplay:
    """Saves the RNG state once; `restore()` rewinds it so a later pass draws the same dropout masks."""

    def __init__(self, device: torch.device):
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        self.device = device

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def dropout_replay(batch: Mapping[str, torch.Tensor]) -> _DropoutReplay:
    return _DropoutReplay(batch["input_ids"].device)


def is_finite(loss: torch.Tensor, method: str) -> bool:
    """NaN/inf guard: False (with a logged warning) when a loss is not finite. One host sync per call."""
    if bool(torch.isfinite(loss.detach())):
        return True
    logger.warning("%s: non-finite adversarial loss (%s); skipping the adversarial part of this step", method, loss)
    return False


class _ZeroGradient(torch.autograd.Function):
    """A zero whose gradient is exactly zero for every parameter given, whatever their values (0 x p would
    be NaN for an infinite p)."""

    @staticmethod
    def forward(ctx, *params: torch.Tensor) -> torch.Tensor:
        ctx.shapes = [(p.shape, p.dtype, p.device) for p in params]
        return params[0].new_zeros((), dtype=torch.float32)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return tuple(torch.zeros(shape, dtype=dtype, device=device) for shape, dtype, device in ctx.shapes)


def check_checkpointing(model: nn.Module) -> None:
    """Gradient checkpointing must be the non-reentrant kind (transformers' default): the reentrant one refuses
    `torch.autograd.grad`, which PGD, SMART and the ascent steps use, and drops gradients to `inputs_embeds`."""
    from advlm.embeddings import unwrap
    from advlm.errors import AdvlmError

    for module in unwrap(model).modules():
        func = getattr(module, "_gradient_checkpointing_func", None)
        if getattr(module, "gradient_checkpointing", False) and getattr(func, "keywords", {}).get("use_reentrant"):
            raise AdvlmError(
                "gradient checkpointing with use_reentrant=True cannot give the perturbation its gradient; enable it "
                'with model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})'
            )


def guarded(loss: torch.Tensor, model: nn.Module, method: AdversarialMethod) -> tuple[torch.Tensor, bool]:
    """(what to back-propagate, whether `loss` was finite). A non-finite loss is replaced by a zero whose
    gradient reaches every trainable parameter as exact zeros, so the weights are not poisoned and every DDP
    rank still makes the same all-reduce calls. The check is a host sync; with `method.nan_guard` false it is
    skipped. Methods report the loss they back-propagated and `skipped` (1 for a step whose loss was
    replaced), which the Trainer's divergence check reads."""
    if not getattr(method, "nan_guard", True) or is_finite(loss, method.name):
        return loss, True
    return _ZeroGradient.apply(*(p for p in model.parameters() if p.requires_grad)), False


def sync_unless_last(model: nn.Module, last: bool):
    """Under DDP, defer the gradient all-reduce to the last backward of a step (`no_sync` for the others)."""
    if not last and hasattr(model, "no_sync"):
        return model.no_sync()
    return contextlib.nullcontext()


SHARED_HELP = {
    "steps": "K: forward+backward passes per batch",
    "step_size": "ascent step size (alpha, the reference code's adv-lr)",
    "eps": "radius of the perturbation ball (the reference code's adv-max-norm); 0 = unbounded",
    "init_mag": "magnitude of the random initial perturbation (adv-init-mag); 0 = start from the clean input",
    "norm": "geometry of the ball and the normalized step: l2 (per example) or linf",
    "weight": "weight of the adversarial term in the loss (lambda)",
    "adv_start_step": "plain fine-tuning for this many batches before the adversarial part starts",
    "nan_guard": "skip the back-propagation of a non-finite adversarial loss (a host sync per guarded pass; "
    "false trades the guard for speed on a GPU)",
}


def shared(name: str, default: Any, **kwargs: Any) -> Any:
    """A hyper-parameter with the shared name and help text used across methods."""
    if name == "norm":
        kwargs.setdefault("choices", ("l2", "linf"))
    return hparam(default, SHARED_HELP[name], **kwargs)
