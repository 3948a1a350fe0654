"""The hook route (`advlm.embeddings`): the model makes its own lookup from `input_ids` and a forward hook adds
the perturbation, which is how the perturbation reaches a sharded table. On one process it must give the
`inputs_embeds` route's gradients for every method on every head, RoBERTa's positions included, and leave no
hook behind."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from advlm import build_method, list_methods
from advlm.embeddings import forward_embeds, hook_route, perturb_by_hook, table_is_sharded, word_embeddings
from advlm.fast_paths import StepLookup
from tests import tiny
from tests.method_helpers import grads

TOKENIZER = SimpleNamespace(all_special_ids=[0, 1, 2])


def step_gradients(name: str, kind: str, arch: str, hooked: bool, left_pad: bool = False) -> dict[str, torch.Tensor]:
    model = tiny.head_model(kind, arch, seed=0)
    method = build_method(name)
    method.prepare(model, tokenizer=TOKENIZER, total_steps=10)
    batch = tiny.batch(model, left_pad=True) if left_pad else tiny.head_batch(model, kind)
    with perturb_by_hook(hooked):
        assert hook_route(model) is hooked
        for step in range(2):  # the second step sees TextAT's table, FreeAT's carried delta, SMART's teacher
            torch.manual_seed(5 + step)
            model.zero_grad(set_to_none=True)
            method.step(model.train(), batch)
    assert not word_embeddings(model)._forward_hooks  # every pass removed its hook
    return grads(model)


@pytest.mark.parametrize("name,kind", tiny.method_kinds(list_methods()))
def test_the_hook_route_gives_the_inputs_embeds_routes_gradients(name, kind):
    hooked, plain = step_gradients(name, kind, "bert", True), step_gradients(name, kind, "bert", False)
    assert hooked.keys() == plain.keys() and any("word_embeddings" in k or "wte" in k for k in hooked)
    for key, grad in hooked.items():
        torch.testing.assert_close(grad, plain[key], atol=1e-6, rtol=1e-5, msg=f"{name} on {kind}: {key}")


@pytest.mark.parametrize("name", ["freelb", "smart", "textat"])
def test_the_hook_route_numbers_roberta_positions_as_the_model_does(name):
    """The `inputs_embeds` route computes RoBERTa's padding-based position ids itself; the hook route leaves
    them to the model. Left padding makes them differ from 0..T-1."""
    hooked = step_gradients(name, "classification", "roberta", True, left_pad=True)
    plain = step_gradients(name, "classification", "roberta", False, left_pad=True)
    for key, grad in hooked.items():
        torch.testing.assert_close(grad, plain[key], atol=1e-6, rtol=1e-5, msg=f"{name}: {key}")


def test_the_hook_adds_the_perturbation_to_the_lookup_only_within_the_pass():
    model = tiny.head_model("classification").eval()
    batch = tiny.head_batch(model, "classification")
    with perturb_by_hook():
        _, clean = forward_embeds(model, batch)
        delta = torch.zeros(*batch["input_ids"].shape, model.config.hidden_size)
        delta[0, 1] = 3.0
        _, noisy = forward_embeds(model, batch, delta)
        _, again = forward_embeds(model, batch)
        lookup = StepLookup(model, batch["input_ids"])
    assert not torch.equal(clean.logits[0], noisy.logits[0])
    torch.testing.assert_close(again.logits, clean.logits)
    assert lookup.for_pass(last=True) is None and lookup.carry() == 0.0
    assert lookup.like.shape == (*batch["input_ids"].shape, model.config.hidden_size)


def test_an_unsharded_model_takes_the_inputs_embeds_route():
    model = tiny.head_model("classification")
    assert not table_is_sharded(model) and not hook_route(model)
    with pytest.raises(ValueError, match="words=None"), perturb_by_hook():
        forward_embeds(model, tiny.head_batch(model, "classification"), None, torch.zeros(3, 7, 32))
