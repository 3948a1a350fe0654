"""R4F: which layer it normalises per head, that layer's spectral norm 1, a saved model that loads and evaluates
without advlm, an exact resume from the method's state, and a causal LM refused."""

from __future__ import annotations

import pytest
import torch

from advlm import AdvlmError, build_method
from advlm.spectral_head import effective_weight, is_normalised, output_layer
from tests import tiny

LAYERS = {
    ("classification", "bert"): "classifier",
    ("classification", "roberta"): "classifier.out_proj",  # fairseq's choice: the dense layer before it stays
    ("regression", "bert"): "classifier",
    ("token-classification", "bert"): "classifier",
    ("multiple-choice", "bert"): "classifier",
    ("question-answering", "bert"): "qa_outputs",
}


def spectral_norm(weight: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(weight.detach(), 2))


@pytest.mark.parametrize("kind,arch", list(LAYERS))
def test_the_heads_output_layer_computes_with_spectral_norm_one(kind, arch):
    model = tiny.head_model(kind, arch).train()
    method = build_method("r4f")
    method.prepare(model)
    name, layer = output_layer(model)
    assert name == LAYERS[(kind, arch)] and is_normalised(layer)
    original = layer.parametrizations.weight.original
    assert abs(spectral_norm(original) - 1) > 0.1  # what it normalises is not normalised already
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for seed in range(3):
        torch.manual_seed(seed)
        method.step(model, tiny.head_batch(model, kind, seed=seed))
        optimizer.step()
        optimizer.zero_grad()
    assert layer.parametrizations.weight.original is original  # the same parameter, trained in place
    # one power iteration per forward tracks sigma as the weight moves (approximately, as fairseq's does) ...
    assert spectral_norm(effective_weight(layer)) == pytest.approx(1.0, abs=0.15)
    for _ in range(200):  # ... and each training-mode use of the weight is one more iteration
        _ = layer.weight
    assert spectral_norm(effective_weight(layer)) == pytest.approx(1.0, abs=1e-3)
    assert spectral_norm(layer.eval().weight) == pytest.approx(1.0, abs=1e-3)


def test_a_causal_lm_is_refused_naming_r3f():
    with pytest.raises(AdvlmError, match="causal LM has none.*--method r3f"):
        build_method("r4f").prepare(tiny.head_model("causal-lm"))


def test_the_saved_model_has_plain_names_and_evaluates_as_trained_without_advlm(tmp_path):
    model = tiny.head_model("classification", "roberta").train()
    plain_keys = set(model.state_dict())
    method = build_method("r4f")
    method.prepare(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    batch = tiny.head_batch(model, "classification")
    for _ in range(3):
        method.step(model, batch)
        optimizer.step()
        optimizer.zero_grad()
    assert set(model.state_dict()) == plain_keys
    expected = model.eval()(**batch).logits.detach()
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    assert not is_normalised(loaded.classifier.out_proj)
    torch.testing.assert_close(loaded(**batch).logits, expected, atol=1e-6, rtol=1e-5)
    # the unnormalised weight would compute something else: the saved value is the normalised one
    raw = model.classifier.out_proj.parametrizations.weight.original.detach()
    assert not torch.allclose(loaded.classifier.out_proj.weight, raw, atol=1e-3)


def _course(tmp_path, stop_at: int | None, with_state: bool = True) -> list[float]:
    """Four steps of R4F with SGD; at `stop_at` the model is saved, loaded afresh and the method rebuilt."""
    model = tiny.head_model("classification").train()
    method = build_method("r4f")
    method.prepare(model)
    batch = tiny.head_batch(model, "classification")
    losses = []
    for step in range(4):
        if step == stop_at:
            model.save_pretrained(tmp_path)
            state = method.state_dict()
            model = type(model).from_pretrained(tmp_path).train()
            method = build_method("r4f")
            method.prepare(model)
            if with_state:
                method.load_state_dict(state, model=model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)  # no momentum: no optimizer state to carry
        torch.manual_seed(10 + step)
        losses.append(float(method.step(model, batch).loss))
        optimizer.step()
        optimizer.zero_grad()
    return losses


def test_a_resumed_run_continues_exactly_from_the_methods_state(tmp_path):
    whole = _course(tmp_path / "a", None)
    assert _course(tmp_path / "b", 2) == pytest.approx(whole, rel=1e-6, abs=1e-7)
    # the saved weight alone resumes the same function (step 2's loss), not the same parametrisation
    weights_only = _course(tmp_path / "c", 2, with_state=False)
    assert weights_only[2] == pytest.approx(whole[2], rel=1e-4)  # up to the power iteration's estimate
    assert weights_only[3] != pytest.approx(whole[3], rel=1e-4)


def test_state_for_another_models_layer_is_refused():
    method = build_method("r4f")
    method.prepare(tiny.head_model("classification"))
    state = method.state_dict()
    with pytest.raises(ValueError, match="a checkpoint of another model"):  # 5 tags, not 2 classes
        build_method("r4f").load_state_dict(state, model=tiny.head_model("token-classification"))
