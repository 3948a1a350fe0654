"""Every method on a `torch.compile`d model: the compiled step's gradients equal eager's, the embedding path
included (the lookup is the bare model's; the passes go through the compiled wrapper)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from advlm import build_method, list_methods
from tests import tiny
from tests.method_helpers import grads

TOKENIZER = SimpleNamespace(all_special_ids=[0, 1, 2])


def two_steps(name: str, compiled: bool, kind: str = "classification", backend: str = "aot_eager") -> dict:
    model = tiny.head_model(kind, seed=0).train()
    method = build_method(name)
    method.prepare(model, tokenizer=TOKENIZER, total_steps=10)
    runner = torch.compile(model, backend=backend) if compiled else model
    for step, seed in enumerate((1, 2)):  # two batches of other lengths: a new shape, not a new graph each time
        batch = tiny.head_batch(model, kind, seed=seed)
        if step:
            batch = {k: v[:, :-1] if v.dim() > 1 else v for k, v in batch.items()}
        torch.manual_seed(5 + step)
        model.zero_grad(set_to_none=True)
        method.step(runner, batch)
    return grads(model)


@pytest.fixture(autouse=True)
def fresh_compile_cache():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.slow
@pytest.mark.parametrize("name", list_methods())
def test_every_method_gives_eager_gradients_on_a_compiled_model(name):
    eager, compiled = two_steps(name, False), two_steps(name, True)
    assert compiled.keys() == eager.keys() and any("word_embeddings" in k for k in compiled)
    for key, grad in compiled.items():
        torch.testing.assert_close(grad, eager[key], atol=1e-5, rtol=1e-4, msg=f"{name}: {key}")


@pytest.mark.slow
def test_a_causal_lm_compiled_with_inductor_gives_eager_gradients():
    """The real compiler (C++ code generated for the CPU), on the head with the most to compile."""
    eager = two_steps("freelb", False, "causal-lm")
    compiled = two_steps("freelb", True, "causal-lm", backend="inductor")
    for key, grad in compiled.items():
        torch.testing.assert_close(grad, eager[key], atol=1e-4, rtol=1e-3, msg=key)
