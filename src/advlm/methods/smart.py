"""SMART: "SMART: Robust and Efficient Fine-Tuning for Pre-trained Natural Language Models through Principled
Regularized Optimization", Jiang et al., ACL 2020, https://arxiv.org/abs/1911.03437.

loss = task_loss + weight * R_s + mu * D_Breg, where
- R_s (smoothness-inducing adversarial regularizer) = l_s(f(x + delta), f(x)), delta from noise N(0, sigma^2)
  (`init_mag` = sigma) and `steps` (T) ascent steps on l_s against the *detached* clean outputs; l_s is the
  symmetric KL (each direction detaches its target side) for class distributions and squared error for
  regression, read through the head adapter (`advlm.heads`): per example for sequence-level heads, averaged
  over the positions that count for token-level ones (labelled tokens, response tokens, QA context).
- D_Breg (Bregman proximal point, momentum form) = l_s(f(x; theta), f(x; theta~)) against a mean teacher
  theta~, an exponential moving average of the parameters with `beta_early` for the first `beta_switch`
  fraction of the run's steps and `beta` after. Its authors never released this part.

Cost: clean forward+backward, T ascent passes (d l_s / d delta only), the adversarial forward (backward
shared with the clean one), and a teacher forward: about 2 + T + 1/3 forward+backward passes.

The ascent step follows the reference codes (mt-dnn, smart-pytorch), not the paper's Algorithm 1:
- code (default): delta <- delta + eta * grad, the gradient as it is, then each token rescaled to max-abs
  `eps` (theirs: 1). With sigma = 1e-5 and eta = 1e-3 the step is small against the noise, so the
  perturbation keeps the noise's direction (docs/methods.md, "SMART's step").
- paper (`normalized_step`): the gradient normalized per token by its max-abs before the step of eta, and
  the result in the eps ball (the paper's eps is 1e-5).

Departures and choices:
- The reference codes perturb the embedding module's output (after its LayerNorm), where max-abs 1 is about
  0.6x a token's norm; advlm perturbs the word-embedding lookup, as every method here, where max-abs 1 is
  several times a token's norm. So `eps` defaults to 0.1, the code's radius at its relative size.
- The teacher (`MeanTeacher`) averages only the trainable parameters (cloned, never aliases) and runs the
  student's modules with them in place, in eval mode (no dropout); it moves towards the current parameters
  after its use in each step: theta~ <- beta theta~ + (1 - beta) theta. With LoRA it holds the adapters and
  the head, not a copy of the frozen model.
  Tell the method the run's length (`prepare(model, total_steps=N)`; AdversarialTrainer does) for the beta
  schedule; otherwise it switches at step 1000.
- The ascent passes run under DDP's `no_sync`. Every pass, the teacher's included, goes through the pass
  function, so a Trainer's `compute_loss` override sees them all.
- All passes perturb one word-embedding lookup (the clean pass's), so the table's gradient is computed once
  (on the `inputs_embeds` route; on the hook route, for a sharded table, each pass makes its own).
- Its divergences are computed in chunks of rows and recomputed in backward (`heads.symmetric_kl_mean`), which
  for a causal LM's vocabulary-wide distributions saves more time than it costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from advlm.embeddings import forward_embeds, token_mask
from advlm.fast_paths import StepLookup
from advlm.heads import QUESTION_ANSWERING, consistency, detached, head_of, special_ids
from advlm.methods.base import AdversarialMethod, Backward, StepOutput, guarded, hparam, shared
from advlm.methods.mean_teacher import MeanTeacher
from advlm.methods.registry import register
from advlm.passes import PassFn
from advlm.perturbation import ascend, init_delta, project, raw_ascend

DEFAULT_SWITCH_STEP = 1000


@register("smart")
@dataclass
class SMART(AdversarialMethod):
    """SMART (Jiang et al., ACL 2020): adversarial smoothness regularizer plus Bregman proximal point teacher."""

    weight: float = shared("weight", 1.0)
    steps: int = hparam(1, "T: ascent steps of the inner maximization")
    step_size: float = hparam(1e-3, "eta: inner ascent step size")
    init_mag: float = hparam(1e-5, "sigma: standard deviation of the initial noise")
    eps: float = hparam(0.1, "per-token max-abs radius on the word lookup (~ the code's 1 after LayerNorm)")
    normalized_step: bool = hparam(False, "normalize the gradient before the step (the paper; the code: raw)")
    mu: float = hparam(1.0, "weight of the Bregman proximal point term")
    beta_early: float = hparam(0.99, "teacher EMA decay early in training")
    beta: float = hparam(0.999, "teacher EMA decay after the switch")
    beta_switch: float = hparam(0.1, "fraction of the run's optimizer steps that use beta_early")
    smoothness: bool = hparam(True, "use the smoothness-inducing adversarial regularizer")
    bregman: bool = hparam(True, "use the Bregman proximal point (mean teacher) term")
    norm: str = hparam(
        "token-linf", "geometry of the ball: each token's max-abs (the reference codes')", choices=("token-linf",)
    )
    adv_start_step: int = shared("adv_start_step", 0)
    nan_guard: bool = shared("nan_guard", True)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.teacher: MeanTeacher | None = None
        self._updates = 0
        self._switch_step = DEFAULT_SWITCH_STEP

    def validate(self) -> None:
        super().validate()
        from advlm.errors import AdvlmError

        for key in ("beta_early", "beta", "beta_switch"):
            if not 0 <= getattr(self, key) <= 1:
                raise AdvlmError(f"smart: {key} must be in [0, 1], got {getattr(self, key)}")
        if self.mu < 0:
            raise AdvlmError(f"smart: mu must be >= 0, got {self.mu}")

    @property
    def passes(self) -> float:
        return (1 + self.steps + 1 if self.smoothness else 1) + (1 / 3 if self.bregman else 0)

    @property
    def needs(self) -> tuple[str, ...]:
        return ("total_steps",) if self.bregman and self.mu > 0 else ()

    def untold_effect(self, need: str) -> str:
        return f"its teacher keeps decay beta_early={self.beta_early} for {DEFAULT_SWITCH_STEP} steps, whatever the run's length"

    def on_train_begin(self, total_steps: int) -> None:
        self._switch_step = int(self.beta_switch * total_steps)

    def _teacher_outputs(self, model: nn.Module, batch: Mapping[str, torch.Tensor], compute_loss: PassFn):
        """The teacher's outputs on the clean batch (no gradient), through the pass function."""
        if self.teacher is None:
            self.init_teacher(model)
        with self.teacher.in_place_of(model) as teacher:
            # through the embeddings path (the same function, tested) so that it shares the step's attention mask
            words = StepLookup(teacher, batch["input_ids"]).words  # None on the hook route
            return detached(forward_embeds(teacher, batch, None, words, compute_loss)[1])

    def _update_teacher(self, model: nn.Module) -> None:
        self.teacher.update(model, self.beta_early if self._updates < self._switch_step else self.beta)
        self._updates += 1

    def adversarial_step(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], backward: Backward, compute_loss: PassFn
    ) -> StepOutput:
        head = head_of(model)
        specials = special_ids(model, self.special_token_ids) if head == QUESTION_ANSWERING else ()
        mask = token_mask(batch)
        lookup = StepLookup(model, batch["input_ids"])
        embeds = lookup.words  # shared by all passes (None on the hook route)
        task_loss, clean = forward_embeds(model, batch, None, embeds, compute_loss)
        terms, metrics = [], {"task_loss": task_loss.detach()}
        if self.smoothness and self.weight > 0:
            target = detached(clean)
            delta = init_delta(lookup.like, mask, self.init_mag, self.norm).requires_grad_()
            with model.no_sync() if hasattr(model, "no_sync") else torch.enable_grad():
                for _ in range(self.steps):
                    _, noisy = forward_embeds(model, batch, delta, embeds, compute_loss)
                    inner = consistency(head, noisy, target, batch, specials)
                    (grad,) = torch.autograd.grad(inner, delta)
                    if self.normalized_step:
                        delta = ascend(delta, grad, mask, self.step_size, 0.0, self.norm)
                    else:  # projects as it steps
                        delta = raw_ascend(delta, grad, mask, self.step_size, self.eps, self.norm)
            delta = project(delta.detach(), mask, self.eps, self.norm) if self.normalized_step else delta.detach()
            _, noisy = forward_embeds(model, batch, delta, embeds, compute_loss)
            reg = consistency(head, noisy, clean, batch, specials)
            terms.append(self.weight * reg)
            metrics["smoothness"] = reg.detach()
        if self.bregman and self.mu > 0:
            breg = consistency(head, clean, self._teacher_outputs(model, batch, compute_loss), batch, specials)
            self._update_teacher(model)
            terms.append(self.mu * breg)
            metrics["bregman"] = breg.detach()
        loss = task_loss
        if terms:  # the regularizers are guarded; a non-finite task loss is not the guard's to hide
            regularizer, finite = guarded(sum(terms), model, self)
            loss, metrics["skipped"] = loss + regularizer, float(not finite)
        backward(loss)
        return StepOutput(loss.detach(), metrics)

    def state_dict(self) -> dict[str, Any]:
        if self.teacher is None:
            return {}
        return {"teacher": self.teacher.state_dict(), "updates": self._updates}

    def load_state_dict(self, state: Mapping[str, Any], model: nn.Module | None = None) -> None:
        if not state:
            return
        if self.teacher is None:
            if model is None:
                raise ValueError("smart: pass the model (load_state_dict(state, model)) or call init_teacher(model)")
            self.init_teacher(model)
        self.teacher.load_state_dict(state["teacher"])
        self._updates = int(state["updates"])

    def init_teacher(self, model: nn.Module) -> None:
        """Create the teacher from `model`'s trainable parameters now (e.g. before loading a checkpoint's)."""
        self.teacher = MeanTeacher(model)
