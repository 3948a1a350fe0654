"""R4F: R3F with a spectrally normalised classification head, "Better Fine-Tuning by Reducing Representational
Collapse", Aghajanyan et al., ICLR 2021, https://arxiv.org/abs/2008.03156, section 3.2 (reference: fairseq's
`sentence_prediction_r3f` criterion with `--spectral-norm-classification-head`).

The paper's argument: R3F's consistency term bounds how much the representations may move, and a head whose
Lipschitz constant is at most 1 (its weight divided by its largest singular value) keeps the head from undoing
that. The step is R3F's (`advlm.methods.r3f`: a clean and a noised pass, symmetric KL between them); the head's
output layer is reparametrised once, before the first step (`advlm.spectral_head` says which layer per head,
refuses a causal LM, which has none, and how the saved names stay plain).
Cost: R3F's 2 forward+backward passes; the power iteration (one per step) is two matrix-vector products on
the head's weight.

Departures: the departures of R3F; one power iteration per step, its normalised weight shared by the clean
and the noised pass (fairseq's runs one per forward, so its two passes see slightly different heads and the
consistency term measures that too; here a zero noise gives exactly vanilla's gradients on the normalised
head); the normalised weight is saved under the layer's own name with the value it computes with (fairseq
saves the parametrisation), so a saved model evaluates anywhere without advlm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from advlm import spectral_head
from advlm.methods.base import Backward, StepOutput
from advlm.methods.r3f import R3F
from advlm.methods.registry import register
from advlm.passes import PassFn


@register("r4f")
@dataclass
class R4F(R3F):
    """R4F (Aghajanyan et al., ICLR 2021): R3F with the head's output layer spectrally normalised."""

    _layer: tuple[Any, str, nn.Linear] | None = field(default=None, init=False, repr=False, compare=False)

    def prepare(self, model: nn.Module, tokenizer: Any = None, total_steps: int | None = None) -> None:
        super().prepare(model, tokenizer=tokenizer, total_steps=total_steps)
        self.normalised_layer(model)  # refuses a causal LM before any training

    def normalised_layer(self, model: nn.Module) -> nn.Linear:
        """The model's output layer, spectrally normalised (found and normalised once per model)."""
        if self._layer is None or self._layer[0] is not model:
            name, layer = spectral_head.output_layer(model)
            spectral_head.normalise(layer)
            self._layer = (model, name, layer)
        return self._layer[2]

    def step(
        self,
        model: nn.Module,
        batch: Mapping[str, torch.Tensor],
        backward: Backward | None = None,
        compute_loss: PassFn | None = None,
    ) -> StepOutput:
        self.normalised_layer(model)  # a reparametrisation, not a perturbation: from the first step on
        with parametrize.cached():  # one normalised weight (one power iteration) for both passes of the step
            return super().step(model, batch, backward, compute_loss)

    def state_dict(self) -> dict[str, Any]:
        """The layer's exact original weight and power-iteration vectors (its saved `weight` is the normalised
        value, which resumes the same function but not the same parametrisation)."""
        if self._layer is None:
            return {}
        layer = self._layer[2]
        parametrization = layer.parametrizations.weight
        return {
            "original": parametrization.original.detach().clone(),
            "u": parametrization[0]._u.clone(),
            "v": parametrization[0]._v.clone(),
        }

    def load_state_dict(self, state: Mapping[str, Any], model: nn.Module | None = None) -> None:
        if not state:
            return
        if model is None:
            raise ValueError("r4f: load_state_dict needs the model whose output layer the state belongs to")
        layer = self.normalised_layer(model)
        parametrization = layer.parametrizations.weight
        if state["original"].shape != parametrization.original.shape:
            raise ValueError(
                f"r4f: the state's output layer is {tuple(state['original'].shape)}, the model's "
                f"'{self._layer[1]}' is {tuple(parametrization.original.shape)}: a checkpoint of another model?"
            )
        with torch.no_grad():
            parametrization.original.copy_(state["original"])
            parametrization[0]._u.copy_(state["u"])
            parametrization[0]._v.copy_(state["v"])
