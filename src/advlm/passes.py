"""The pass function: every forward+loss of every method goes through one `(model, inputs) -> (loss, outputs)`.

In a plain loop it is `model_pass` (the model's own loss) unless the user passes another to `method.step(...,
compute_loss=...)`; in `AdversarialTrainer` it is the Trainer's `compute_loss(model, inputs,
return_outputs=True, num_items_in_batch=...)`, so a subclass's override, `compute_loss_func`, label smoothing
and the token-count normalisation under gradient accumulation hold for every method's passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

PassFn = Callable[[nn.Module, dict[str, Any]], tuple[torch.Tensor, Any]]


def model_pass(model: nn.Module, inputs: dict[str, Any]) -> tuple[torch.Tensor, Any]:
    """`model(**inputs)` and the loss it returns (`outputs.loss`, or the first element of a tuple output)."""
    outputs = model(**inputs)
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs[0]
    return loss, outputs
