"""Gradient checkpointing (issue #21): every method's gradients are the same with activations recomputed in
the backward pass as without, dropout on (the recomputation replays the forward's random state, and FreeLB's
and TextAT's same-dropout replay still holds); the reentrant kind, which cannot carry the perturbation's
gradient, is refused with the fix."""

from __future__ import annotations

import pytest
import torch

from advlm import build_method, list_methods
from advlm.errors import AdvlmError
from tests import tiny
from tests.method_helpers import grads


def step_grads(name: str, kind: str, checkpointing: bool) -> dict[str, torch.Tensor]:
    model = tiny.head_model(kind, dropout=True).train()
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    method = build_method(name, **({"beta_switch": 0.0} if name == "smart" else {}))
    method.prepare(model, total_steps=10)
    torch.manual_seed(7)
    method.step(model, tiny.head_batch(model, kind))
    return grads(model)


@pytest.mark.parametrize("name,kind", tiny.method_kinds(list_methods(), ["classification", "causal-lm"]))
def test_checkpointing_gives_the_same_gradients(name, kind):
    plain, recomputed = step_grads(name, kind, False), step_grads(name, kind, True)
    assert plain.keys() == recomputed.keys() and plain
    for key in plain:
        torch.testing.assert_close(recomputed[key], plain[key], rtol=1e-5, atol=1e-6, msg=key)


def test_checkpointing_is_really_on():
    """The check above is not vacuous: layers run under the checkpoint function when it is enabled."""
    model = tiny.head_model("classification")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    calls = []
    real = model.bert.encoder.layer[0]._gradient_checkpointing_func

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    for layer in model.bert.encoder.layer:
        layer._gradient_checkpointing_func = counting
    build_method("freelb").step(model.train(), tiny.head_batch(model, "classification"))
    assert len(calls) == 2 * len(model.bert.encoder.layer)  # FreeLB's two passes, every layer


def test_reentrant_checkpointing_is_refused_with_the_fix():
    model = tiny.head_model("classification")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    with pytest.raises(AdvlmError, match='"use_reentrant": False'):
        build_method("pgd").prepare(model)


def test_cli_flag_turns_it_on(tmp_path, glue_dir, tiny_model_dir, monkeypatch):
    from advlm.trainer import AdversarialTrainer
    from tests.test_cli import _train

    seen = []
    real_step = AdversarialTrainer.training_step

    def spy(self, model, *args, **kwargs):
        seen.append(self.model.is_gradient_checkpointing)
        return real_step(self, model, *args, **kwargs)

    monkeypatch.setattr(AdversarialTrainer, "training_step", spy)
    code, _ = _train(tmp_path, glue_dir, tiny_model_dir, "--method", "smart", "--gradient-checkpointing")
    assert code == 0 and seen and all(seen)
