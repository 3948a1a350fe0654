"""Invariants of every method on tiny models: zero budget = vanilla, norm bounds, padding, backward counts,
the method x architecture matrix, bad hyper-parameters."""

from __future__ import annotations

import logging

import pytest
import torch

from advlm import AdvlmError, build_method, list_methods
from advlm.embeddings import embed, model_inputs
from advlm.methods.freeat import Replay
from tests import tiny
from tests.method_helpers import EmbedsSpy, grads, tiny_trainer, vanilla_grads

ADVERSARIAL = [m for m in list_methods() if m != "vanilla"]
ZERO_BUDGET = {
    "fgm": dict(weight=0.0),
    "pgd": dict(init_mag=0.0, step_size=0.0),
    "freeat": dict(init_mag=0.0, step_size=0.0),
    "freelb": dict(init_mag=0.0, step_size=0.0, steps=3),
    "smart": dict(weight=0.0, mu=0.0),
    "textat": dict(init_mag=0.0, step_size=0.0, steps=3),
    "neftune": dict(alpha=0.0),
    "r3f": dict(eps=0.0),
    "r4f": dict(eps=0.0),  # against vanilla on the normalised head (tiny.normalise_like)
    "awp": dict(weight=0.0),
}


def test_every_method_is_registered():
    assert list_methods()[0] == "vanilla"
    assert set(ADVERSARIAL) == {"fgm", "pgd", "freeat", "freelb", "smart", "textat", "neftune", "r3f", "r4f", "awp"}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_zero_budget_gives_vanilla_gradients(name):
    expected = vanilla_grads(like=name)
    model = tiny.model()
    torch.manual_seed(0)
    build_method(name, **ZERO_BUDGET[name]).step(model, tiny.batch(model))
    got = grads(model)
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-6, rtol=1e-5)


BOUNDED = {
    "freelb": dict(steps=4, step_size=0.5, init_mag=0.3, eps=0.1),
    "pgd": dict(steps=4, step_size=0.5, init_mag=0.3, eps=0.1),
    "freeat": dict(steps=4, step_size=0.5, init_mag=0.3, eps=0.1),
    "fgm": dict(step_size=0.5, eps=0.1),
    "textat": dict(steps=4, step_size=0.5, init_mag=0.3, eps=0.1),
}


@pytest.mark.parametrize(
    "name,norm", [(n, norm) for n in sorted(BOUNDED) for norm in ("l2", "linf") if (n, norm) != ("textat", "linf")]
)
def test_delta_stays_in_the_ball_and_zero_at_padding(name, norm):  # TextAT's token-level ball is l2 only
    kwargs = dict(BOUNDED[name], **({} if name == "textat" else {"norm": norm}))
    method = build_method(name, **kwargs)
    model = tiny.model()
    batch = tiny.batch(model)
    spy = EmbedsSpy(model, batch)
    for _ in range(method.optimizer_steps_per_batch * 2):  # FreeAT: every replay; TextAT: the table too
        method.step(model, batch)
    pad = batch["attention_mask"] == 0
    deltas = [d for d in spy.deltas if d is not None]
    assert len(deltas) >= 2 and any(d.abs().sum() > 0 for d in deltas)
    for d in deltas:
        assert d[pad].abs().max() == 0
        if norm == "l2":
            assert d.flatten(1).norm(dim=1).max() <= 0.1 * (1 + 1e-5)
        else:
            assert d.abs().max() <= 0.1 * (1 + 1e-6)


def test_freelb_backpropagates_k_times_and_averages_the_pass_gradients():
    K = 3
    model = tiny.model()
    batch = tiny.batch(model)
    spy = EmbedsSpy(model, batch)
    calls = []

    def backward(loss):
        calls.append(float(loss))
        loss.backward()

    build_method("freelb", steps=K, step_size=0.3, init_mag=0.2, eps=0.5).step(model, batch, backward=backward)
    assert len(calls) == K
    total = grads(model)
    # recompute each pass's gradient at the perturbation it used; their mean must be the accumulated gradient
    mean = {k: torch.zeros_like(v) for k, v in total.items()}
    for delta in list(spy.deltas):  # a copy: the spy keeps recording
        model.zero_grad()
        embeds = embed(model, batch["input_ids"]) + delta
        model(**model_inputs(model, batch, embeds)).loss.backward()
        for k, v in grads(model).items():
            mean[k] += v / K
    for k in total:
        torch.testing.assert_close(total[k], mean[k], atol=1e-6, rtol=1e-4)


def test_pgd_ascent_leaves_parameter_grads_untouched():
    model = tiny.model()
    sentinel = {n: torch.full_like(p, 7.0) for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        p.grad = sentinel[n].clone()
    seen = []

    def backward(loss):
        seen.append(all(torch.equal(p.grad, sentinel[n]) for n, p in model.named_parameters()))
        loss.backward()

    build_method("pgd", steps=3).step(model, tiny.batch(model), backward=backward)
    assert seen == [True]  # one update backward, and nothing touched .grad before it
    assert any(not torch.equal(p.grad, sentinel[n]) for n, p in model.named_parameters())


def test_freeat_replays_each_batch_k_times_and_starts_a_new_delta_per_batch():
    K = 3
    method = build_method("freeat", steps=K, step_size=0.3, eps=0.5)
    model = tiny.model()
    batches = [tiny.batch(model, seed=s) for s in range(2)]
    loader = method.wrap_dataloader(batches)
    assert isinstance(loader, Replay) and len(loader) == 2 * K
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    deltas = []
    for batch in loader:
        spy = EmbedsSpy(model, batch)
        method.step(model, batch)
        optimizer.step()
        optimizer.zero_grad()
        deltas.append(spy.deltas[-1])
        model._forward_pre_hooks.clear()
    assert len(deltas) == 2 * K  # K optimizer steps per batch
    for i, d in enumerate(deltas):
        starts_batch = i % K == 0
        assert (d.abs().max() == 0) == starts_batch  # init_mag 0: a new batch starts from the clean input


def test_freeat_takes_k_optimizer_steps_per_batch_in_the_trainer(tmp_path, tokenizer):
    trainer = tiny_trainer(tmp_path, tokenizer, build_method("freeat", steps=3))
    trainer.train()
    assert trainer.state.global_step == 2 * 3


def test_roberta_left_padding_inputs_embeds_matches_input_ids():
    model = tiny.model("roberta").eval()
    batch = tiny.batch(model, left_pad=True)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        by_ids = model(**inputs).logits
        by_embeds = model(**model_inputs(model, inputs, embed(model, batch["input_ids"]))).logits
        naive = model(inputs_embeds=embed(model, batch["input_ids"]), attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(by_embeds, by_ids, atol=1e-6, rtol=0)
    assert not torch.allclose(naive, by_ids, atol=1e-4)  # what the position-id fix prevents


@pytest.mark.parametrize("arch", tiny.ARCHS)
@pytest.mark.parametrize("name", list_methods())
def test_method_architecture_matrix(name, arch):
    model = tiny.model(arch, dropout=True)
    model.train()
    method = build_method(name)
    method.prepare(model)
    for _ in range(method.optimizer_steps_per_batch):
        out = method.step(model, tiny.batch(model))
    assert torch.isfinite(out.loss)
    missing = [
        n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)
    ]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert model.training and all(m.training for m in model.modules())


def test_freelb_reuses_dropout_masks_across_passes():
    expected = vanilla_grads(dropout=True, seed=5)
    for same, equal in ((True, True), (False, False)):
        model = tiny.model(dropout=True)
        torch.manual_seed(5)
        build_method("freelb", init_mag=0.0, step_size=0.0, steps=2, same_dropout=same).step(model, tiny.batch(model))
        close = all(torch.allclose(v, grads(model)[k], atol=1e-6) for k, v in expected.items())
        assert close is equal


def test_delayed_start_trains_plainly_first():
    model = tiny.model()
    batch = tiny.batch(model)
    spy = EmbedsSpy(model, batch)
    method = build_method("freelb", adv_start_step=2)
    for _ in range(3):
        method.step(model, batch)
    assert spy.deltas[:2] == [None, None] and all(d is not None for d in spy.deltas[2:])


def test_nan_guard_skips_the_adversarial_part(caplog):
    model = tiny.model()
    batch = tiny.batch(model)
    clean = embed(model, batch["input_ids"]).detach()

    def poison(module, args, kwargs, output):  # perturbed inputs give a NaN loss
        e = kwargs.get("inputs_embeds")
        if e is not None and not torch.equal(e.detach(), clean):
            output.loss = output.loss * float("nan")
        return output

    model.register_forward_hook(poison, with_kwargs=True)
    for name in ("freelb", "pgd", "fgm", "textat", "freeat"):
        model.zero_grad()
        with caplog.at_level(logging.WARNING):
            kwargs = {"step_size": 0.5} if name == "fgm" else {"init_mag": 0.2}
            build_method(name, **kwargs).step(model, batch)
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None), name
    assert "non-finite" in caplog.text


def test_norms_are_fp32_under_autocast():
    model = tiny.model()
    batch = tiny.batch(model)
    spy = EmbedsSpy(model, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = build_method("freelb", steps=3, step_size=0.5, eps=0.1).step(model, batch)
    assert torch.isfinite(out.loss)
    assert all(d.flatten(1).norm(dim=1).max() <= 0.1 * 1.01 for d in spy.deltas)


@pytest.mark.parametrize("name", list_methods())
def test_every_method_steps_under_bf16_autocast(name):
    """The GPU path (the Trainer's bf16 autocast), here on CPU: finite loss and gradients, the same
    parameters reached as in fp32, and no dtype clash between fp32 perturbations and bf16 activations."""
    model = tiny.model()
    batch = tiny.batch(model)
    method = build_method(name)
    method.prepare(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = method.step(model, batch)
    assert torch.isfinite(out.loss)
    got = grads(model)
    assert got and all(torch.isfinite(g).all() for g in got.values())
    assert set(got) == set(vanilla_grads())


@pytest.mark.parametrize(
    "name,kwargs,message",
    [
        ("freelb", {"norm": "l3"}, "unknown norm"),
        ("pgd", {"steps": 0}, "steps must be at least 1"),
        ("freelb", {"eps": -0.1}, "eps must be >= 0"),
        ("fgm", {"step_size": -1.0}, "step_size must be >= 0"),
        ("smart", {"beta": 1.5}, "beta must be in"),
        ("freelb", {"alpha": 1}, "has no hyper-parameter"),
    ],
)
def test_bad_hyperparameters_fail_at_build(name, kwargs, message):
    with pytest.raises(AdvlmError, match=message):
        build_method(name, **kwargs)


def test_model_without_inputs_embeds_is_refused_before_training():
    class NoEmbeds(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 4)

        def get_input_embeddings(self):
            return self.emb

        def forward(self, input_ids, attention_mask=None, labels=None):
            return self.emb(input_ids).sum()

    for name in ADVERSARIAL:
        if not build_method(name).uses_embeddings:
            continue
        with pytest.raises(AdvlmError, match="does not accept inputs_embeds"):
            build_method(name).prepare(NoEmbeds())
    for name in ("vanilla", "awp"):  # they feed input_ids (AWP perturbs weights): fine
        build_method(name).prepare(NoEmbeds())
