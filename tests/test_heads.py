"""Every method on every head (tiny models): finite gradients on every trainable parameter, zero budget equals
vanilla, and SMART's terms blind to the positions that do not count; perturbation geometry for B x C x T."""

from __future__ import annotations

import pytest
import torch

from advlm import build_method, heads, list_methods
from advlm.heads import (
    CAUSAL_LM,
    consistency,
    example_correct,
    example_losses,
    head_of,
    symmetric_kl_mean,
    symmetric_kl_rows,
)
from advlm.perturbation import example_norm
from tests import tiny
from tests.test_methods import ZERO_BUDGET, EmbedsSpy, grads

KINDS = tiny.HEAD_KINDS


def _vanilla_grads(kind, arch="bert", like="vanilla"):
    model = tiny.normalise_like(like, tiny.head_model(kind, arch))
    torch.manual_seed(0)
    build_method("vanilla").step(model, tiny.head_batch(model, kind))
    return grads(model)


@pytest.mark.parametrize("kind", KINDS)
def test_head_is_recognized(kind):
    assert head_of(tiny.head_model(kind)) == kind


@pytest.mark.parametrize("name,kind", tiny.method_kinds(list_methods()))
def test_every_method_gives_finite_gradients_on_every_parameter_vanilla_trains(kind, name):
    expected = _vanilla_grads(kind)
    model = tiny.head_model(kind, dropout=True)
    method = build_method(name)
    method.prepare(model)
    batch = tiny.head_batch(model, kind)
    for _ in range(method.optimizer_steps_per_batch):
        out = method.step(model, batch)
    got = grads(model)
    assert got.keys() == expected.keys() and len(got) > 10
    assert all(torch.isfinite(g).all() for g in got.values())
    assert sum(float(g.abs().sum()) for g in got.values()) > 0 and torch.isfinite(out.loss)


@pytest.mark.parametrize("name,kind", tiny.method_kinds(sorted(ZERO_BUDGET)))
def test_zero_budget_gives_vanillas_gradients_on_every_head(kind, name):
    expected = _vanilla_grads(kind, like=name)
    model = tiny.head_model(kind)
    torch.manual_seed(0)
    build_method(name, **ZERO_BUDGET[name]).step(model, tiny.head_batch(model, kind))
    got = grads(model)
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-6, rtol=1e-5)


def test_causal_lm_also_works_on_a_llama_model():
    model = tiny.head_model("causal-lm", arch="llama")
    batch = tiny.head_batch(model, "causal-lm")
    for name in [n for n in list_methods() if tiny.applies(n, "causal-lm")]:
        model.zero_grad()
        out = build_method(name).step(model, batch)
        assert torch.isfinite(out.loss) and all(torch.isfinite(g).all() for g in grads(model).values()), name


def _logits_key(kind):
    return ("start_logits", "end_logits") if kind == "question-answering" else ("logits",)


class ScrambleUncounted:
    """A forward hook that writes large random values into the logits where nothing should count."""

    def __init__(self, model, kind, batch):
        self.kind, self.where = kind, tiny.uncounted(batch, kind)
        self.g = torch.Generator().manual_seed(7)
        model.register_forward_hook(self)

    def __call__(self, module, args, output):
        for key in _logits_key(self.kind):
            logits = output[key]
            noise = 50 * torch.randn(logits.shape, generator=self.g)
            where = self.where if logits.dim() == self.where.dim() else self.where.unsqueeze(-1)
            output[key] = torch.where(where, logits + noise, logits)
        return output


@pytest.mark.parametrize("kind", ["token-classification", "multiple-choice", "question-answering", "causal-lm"])
def test_smart_terms_ignore_padding_unlabelled_prompt_and_question_positions(kind):
    def terms(scramble: bool):
        model = tiny.head_model(kind)
        batch = tiny.head_batch(model, kind)
        if scramble:
            ScrambleUncounted(model, kind, batch)
        method = build_method("smart", beta_early=0.5)
        method.prepare(model)
        torch.manual_seed(0)
        method.step(model, batch)  # the teacher starts equal to the student: bregman 0
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        torch.manual_seed(1)
        return method.step(model, batch).metrics

    plain, scrambled = terms(False), terms(True)
    for key in ("smoothness", "bregman"):
        assert float(plain[key]) > 0
        torch.testing.assert_close(scrambled[key], plain[key], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("kind", ["token-classification", "causal-lm"])
def test_consistency_is_a_mean_over_counted_positions(kind):
    """Doubling the counted positions' divergence doubles the term; it is not a sum over the sequence."""
    model = tiny.head_model(kind)
    batch = tiny.head_batch(model, kind)
    out = model(**batch)
    other = {"logits": out.logits + 0.3 * torch.randn_like(out.logits)}
    term = consistency(kind, out, other, batch)
    counted = (~tiny.uncounted(batch, kind)).sum()
    if kind == CAUSAL_LM:
        rows = symmetric_kl_rows(out.logits[:, :-1], other["logits"][:, :-1])
        manual = (rows * (batch["labels"][:, 1:] != -100)).sum() / counted
    else:
        rows = symmetric_kl_rows(out.logits, other["logits"])
        manual = (rows * (batch["labels"] != -100)).sum() / counted
    torch.testing.assert_close(term, manual)


@pytest.mark.parametrize("chunk_elements", [1 << 22, 7, 1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("weighted", [False, True])
def test_chunked_symmetric_kl_equals_the_plain_one(monkeypatch, chunk_elements, dtype, weighted):
    """The chunked, recomputing divergence the methods use: the weighted mean of the plain per-row one, and
    the same gradients on both sides (each direction's target detached), whatever the chunking and runs."""
    monkeypatch.setattr(heads, "CHUNK_ELEMENTS", chunk_elements)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(11, 5, generator=g).to(dtype).requires_grad_()
    b = torch.randn(11, 5, generator=g).to(dtype).requires_grad_()
    weight = torch.tensor([0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0.0]) if weighted else None
    fast = symmetric_kl_mean(a, b, weight)
    fast_grads = torch.autograd.grad(fast, (a, b))
    rows = symmetric_kl_rows(a, b)
    plain = rows.mean() if weight is None else (rows * weight).sum() / weight.sum()
    plain_grads = torch.autograd.grad(plain, (a, b))
    torch.testing.assert_close(fast, plain)
    for got, want in zip(fast_grads, plain_grads):
        assert got.dtype == dtype
        torch.testing.assert_close(got, want)
    if weighted:  # rows that do not count get no gradient
        assert (fast_grads[0][weight == 0] == 0).all() and (fast_grads[1][weight == 0] == 0).all()


def test_symmetric_kl_with_nothing_counted_is_zero():
    a = torch.randn(4, 3, requires_grad=True)
    value = symmetric_kl_mean(a, torch.randn(4, 3), torch.zeros(4))
    value.backward()
    assert value == 0 and (a.grad == 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_example_losses_and_correctness_have_one_value_per_example(kind):
    model = tiny.head_model(kind).eval()
    batch = tiny.head_batch(model, kind)
    out = model(**batch)
    losses = example_losses(kind, out, batch)
    assert losses.shape == (3,) and torch.isfinite(losses).all()
    correct = example_correct(kind, out, batch)
    assert (correct is None) == (kind in ("regression", "causal-lm"))
    if kind in ("classification", "multiple-choice", "question-answering"):  # the model's loss is their mean
        torch.testing.assert_close(losses.mean(), out.loss, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["fgm", "pgd", "freelb", "freeat", "textat"])
def test_multiple_choice_perturbations_are_per_choice_and_zero_at_missing_choices(name):
    """B == C == 3: norms are taken per choice sequence, never across the batch's choices."""
    kwargs = dict(step_size=0.5, eps=0.1) if name == "fgm" else dict(steps=3, step_size=0.5, init_mag=0.3, eps=0.1)
    model = tiny.head_model("multiple-choice")
    batch = tiny.head_batch(model, "multiple-choice")
    spy = EmbedsSpy(model, batch)
    method = build_method(name, **kwargs)
    for _ in range(method.optimizer_steps_per_batch):
        method.step(model, batch)
    deltas = [d for d in spy.deltas if d is not None and d.abs().sum() > 0]
    assert deltas
    pad = batch["attention_mask"] == 0
    for d in deltas:
        assert d.shape == (3, 3, batch["input_ids"].size(-1), 32) and d[pad].abs().max() == 0
        norms = example_norm(d)  # B x C
        assert norms.shape == (3, 3) and norms.max() <= 0.1 * (1 + 1e-5)
        assert norms[0, 2] == 0  # the missing choice
    if name == "fgm":  # a normalized step: every real choice at exactly the radius
        torch.testing.assert_close(norms[~pad.all(-1)], torch.full((8,), 0.1), rtol=1e-4, atol=0)


def test_freeat_carries_its_perturbation_across_replays_for_multiple_choice():
    method = build_method("freeat", steps=3, step_size=0.3, eps=0.5, init_mag=0.0)
    model = tiny.head_model("multiple-choice")
    batch = tiny.head_batch(model, "multiple-choice")
    spy = EmbedsSpy(model, batch)
    for _ in range(3):
        method.step(model, batch)
    first, second, third = spy.deltas
    assert first.abs().max() == 0 and second.abs().max() > 0 and not torch.equal(second, third)


def test_textat_table_serves_any_vocabulary_and_input_shape():
    model = tiny.head_model("multiple-choice")
    batch = tiny.head_batch(model, "multiple-choice")
    method = build_method("textat", step_size=0.3, init_mag=0.2, eps=0.5)
    method.step(model, batch)
    assert method.table.shape == model.get_input_embeddings().weight.shape and method.table.abs().sum() > 0
    lm = tiny.head_model("causal-lm")
    other = build_method("textat", table_dtype="bfloat16")
    other.step(lm, tiny.head_batch(lm, "causal-lm"))
    assert other.table.shape == lm.get_input_embeddings().weight.shape and other.table.dtype == torch.bfloat16


@pytest.mark.parametrize("kind", KINDS)
def test_the_loss_increase_measure_works_on_every_head(kind):
    from advlm.robustness.loss_increase import worst_case

    model = tiny.head_model(kind).eval()
    batch = tiny.head_batch(model, kind)
    at_zero = worst_case(model, batch, 0.0, steps=3)
    torch.testing.assert_close(at_zero.worst_loss, at_zero.clean_loss)
    result = worst_case(model, batch, torch.tensor([0.5, 0.5, 0.0]), steps=3)
    assert result.worst_loss.shape == (3,) and (result.worst_loss >= result.clean_loss).all()
    assert (result.worst_loss[:2] > result.clean_loss[:2]).all() and result.worst_loss[2] == result.clean_loss[2]
    assert float(example_norm(result.worst_delta).max()) <= 0.5 * (1 + 1e-5)
