"""Invariants of every method on tiny models (REFERENCE.md): zero budget = vanilla, norm bounds, padding,
backward counts, state round trips, and the method x architecture matrix."""

from __future__ import annotations

import logging

import pytest
import torch

from advlm import AdvlmError, build_method, list_methods
from advlm.embeddings import embed, masks_shared_by_passes, model_inputs, word_embeddings
from advlm.losses import squared_error, symmetric_kl
from advlm.methods.freeat import Replay
from tests import tiny

ADVERSARIAL = [m for m in list_methods() if m != "vanilla"]
ZERO_BUDGET = {
    "fgm": dict(weight=0.0),
    "pgd": dict(init_mag=0.0, step_size=0.0),
    "freeat": dict(init_mag=0.0, step_size=0.0),
    "freelb": dict(init_mag=0.0, step_size=0.0, steps=3),
    "smart": dict(weight=0.0, mu=0.0),
    "textat": dict(init_mag=0.0, step_size=0.0, steps=3),
}


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def vanilla_grads(arch="bert", dropout=False, seed=0, **batch_kw):
    model = tiny.model(arch, dropout)
    torch.manual_seed(seed)
    build_method("vanilla").step(model, tiny.batch(model, **batch_kw))
    return grads(model)


class EmbedsSpy:
    """Records the perturbation (inputs_embeds minus the clean lookup) of every forward."""

    def __init__(self, model, batch):
        self.clean = embed(model, batch["input_ids"]).detach()
        self.deltas: list[torch.Tensor | None] = []
        model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        e = kwargs.get("inputs_embeds")
        self.deltas.append(None if e is None else (e.detach().float() - self.clean))


def tiny_trainer(tmp_path, tokenizer, method, save_strategy="no"):
    """AdversarialTrainer on a tiny model and 8 short examples (2 batches of 4), one epoch."""
    from transformers import TrainingArguments

    from advlm import AdversarialTrainer
    from advlm.data.collate import TokenizedDataset, make_collator

    features = [{"input_ids": [2, 10 + i, 11, 3], "attention_mask": [1, 1, 1, 1], "labels": i % 2} for i in range(8)]
    args = TrainingArguments(
        str(tmp_path),
        per_device_train_batch_size=4,
        num_train_epochs=1,
        report_to="none",
        save_strategy=save_strategy,
        use_cpu=True,
        disable_tqdm=True,
    )
    return AdversarialTrainer(
        model=tiny.model(),
        args=args,
        method=method,
        processing_class=tokenizer,
        train_dataset=TokenizedDataset(features),
        data_collator=make_collator(tokenizer),
    )


def test_every_method_is_registered():
    assert list_methods()[0] == "vanilla"
    assert set(ADVERSARIAL) == {"fgm", "pgd", "freeat", "freelb", "smart", "textat"}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_zero_budget_gives_vanilla_gradients(name):
    expected = vanilla_grads()
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


def test_smart_divergences():
    a = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, 3.0]])
    assert symmetric_kl(a, a.clone()) == 0
    assert symmetric_kl(a, a + torch.tensor([0.0, 1.0, 0.0])) > 0
    assert squared_error(a, a.clone()) == 0 and squared_error(a, a + 0.1) > 0
    b = a.clone().requires_grad_()
    symmetric_kl(b, b.detach() + 1e-3 * torch.randn_like(a)).backward()
    assert b.grad is not None and torch.isfinite(b.grad).all()


def test_smart_teacher_is_a_copy_and_follows_an_ema():
    model = tiny.model()
    method = build_method("smart", beta_early=0.5)
    method.step(model, tiny.batch(model))
    student = dict(model.named_parameters())
    teacher = dict(method.teacher.named_parameters())
    assert teacher.keys() == student.keys()
    assert all(t.data_ptr() != student[k].data_ptr() for k, t in teacher.items())
    assert not any(t.requires_grad for t in teacher.values())
    before = {k: t.detach().clone() for k, t in teacher.items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # a fake optimizer step
    assert all(torch.equal(before[k], t) for k, t in teacher.items())  # not an alias
    method.step(model, tiny.batch(model))
    w = "classifier.weight"
    torch.testing.assert_close(teacher[w], 0.5 * before[w] + 0.5 * student[w].detach())
    assert method.teacher.training is False and model.training is True


def test_smart_regression_uses_squared_error():
    model = tiny.model(num_labels=1, problem_type="regression")
    out = build_method("smart").step(model, tiny.batch(model, regression=True))
    assert torch.isfinite(out.loss) and out.metrics["smoothness"] >= 0 and out.metrics["bregman"] >= 0


def test_textat_table_changes_only_batch_rows_and_round_trips(tmp_path):
    model = tiny.model()
    batch = tiny.batch(model)
    method = build_method("textat", step_size=0.3, init_mag=0.2, eps=0.5)
    method.special_token_ids = [int(batch["input_ids"][0, 0])]  # pretend the first token is special
    method.step(model, batch)
    table = method.table
    real = batch["input_ids"][batch["attention_mask"].bool()].unique().tolist()
    changed = set(torch.nonzero(table.abs().sum(1)).flatten().tolist())
    expected = set(real) - set(method.special_token_ids) - {model.config.pad_token_id}
    assert changed == expected
    state = method.state_dict()
    restored = build_method("textat")
    restored.load_state_dict(state)
    assert torch.equal(restored.table, table)
    torch.save(state, tmp_path / "state.pt")
    again = build_method("textat")
    again.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert torch.equal(again.table, table)


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_the_nan_guard_is_the_only_host_sync_a_method_adds(name):
    """On a GPU a host sync stalls the launch queue. A step makes vanilla's one (transformers' "any padding?"
    check, shared by all the step's passes) plus the guard's checks, and nan_guard=False drops those."""
    from lab.counters import OpCounter

    def syncs(run):
        with OpCounter() as counter:
            run()
        return counter.syncs

    plain = tiny.model()
    vanilla = syncs(lambda: plain(**tiny.batch(plain)))
    added = {}
    for guard in (True, False):
        model = tiny.model()
        method = build_method(name, nan_guard=guard)
        method.prepare(model)
        method.step(model, tiny.batch(model))  # first step: lazy state (TextAT's table, SMART's teacher)
        added[guard] = syncs(lambda m=method, x=model: m.step(x, tiny.batch(x))) - vanilla
    assert vanilla == 1
    assert added == {True: {"freelb": 2, "textat": 2}.get(name, 1), False: 0}


def test_textat_write_back_is_the_mean_per_token_and_spares_rows_without_a_slot():
    method = build_method("textat")
    method.table = torch.randn(10, 3)
    before = method.table.clone()
    ids = torch.tensor([[1, 5, 5, 2, 0], [1, 7, 5, 2, 0]])  # 1 and 2 special, 0 padding
    rows = torch.tensor([[0, 1, 1, 0, 0], [0, 1, 1, 0, 0]], dtype=torch.bool)
    delta = torch.randn(2, 5, 3)
    method._write_back(ids, rows, delta)
    expected_5 = (delta[0, 1] + delta[0, 2] + delta[1, 2]) / 3
    assert torch.allclose(method.table[5], expected_5, atol=1e-6)
    assert torch.allclose(method.table[7], delta[1, 1])
    untouched = [i for i in range(10) if i not in (5, 7)]
    assert torch.equal(method.table[untouched], before[untouched])


def test_textat_table_in_bfloat16():
    model = tiny.model()
    method = build_method("textat", table_dtype="bfloat16")
    method.step(model, tiny.batch(model))
    assert method.table.dtype == torch.bfloat16 and method.table.abs().sum() > 0


def test_trainer_saves_and_reloads_textat_table(tmp_path, tokenizer):
    from advlm.trainer import METHOD_STATE_FILE

    method = build_method("textat")
    trainer = tiny_trainer(tmp_path, tokenizer, method, save_strategy="epoch")
    assert 101 in method.special_token_ids  # [CLS] from the tokenizer
    trainer.train()
    [checkpoint] = list(tmp_path.glob("checkpoint-*"))
    saved = torch.load(checkpoint / METHOD_STATE_FILE, weights_only=True)
    assert torch.equal(saved["table"], method.table) and method.table.abs().sum() > 0
    restored = build_method("textat")
    restored.load_state_dict(saved)
    assert torch.equal(restored.table, method.table)


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
@pytest.mark.parametrize("lengths", [(7, 4, 5), (7, 7, 7)], ids=["padded", "unpadded"])
def test_passes_of_one_step_share_the_attention_mask_and_its_one_host_sync(arch, lengths):
    from lab.counters import OpCounter

    model = tiny.model(arch).eval()
    batch = tiny.batch(model, lengths=lengths)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        plain = [model(**model_inputs(model, inputs, embed(model, batch["input_ids"]))).logits for _ in range(3)]
        with masks_shared_by_passes(), OpCounter() as counter:
            shared = [model(**model_inputs(model, inputs, embed(model, batch["input_ids"]))).logits for _ in range(3)]
    for a, b in zip(plain, shared):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=0)
    if arch in ("bert", "roberta", "electra"):  # transformers asks "any padding?" once, not once per pass
        assert counter.syncs == 1


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


def test_the_table_gradient_waits_for_the_last_pass_and_survives_a_nan_there():
    """Multi-pass methods compute the word-embedding table's gradient once, at the step's last backward (it is
    not held through later forwards), and a NaN guard on that last pass keeps the earlier passes' share."""
    model = tiny.model()
    batch = tiny.batch(model)
    table = word_embeddings(model).weight
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(table.grad is None))
    for name in ("freelb", "textat", "fgm"):
        model.zero_grad(set_to_none=True)
        seen.clear()
        build_method(name, **({"steps": 3} if name != "fgm" else {})).step(model, batch)
        assert seen and all(seen) and table.grad is not None and table.grad.abs().sum() > 0, name

    clean = embed(model, batch["input_ids"]).detach()

    def poison(module, args, kwargs, output):  # perturbed inputs give a NaN loss: FGM's second pass
        e = kwargs.get("inputs_embeds")
        if e is not None and not torch.equal(e.detach(), clean):
            output.loss = output.loss * float("nan")
        return output

    expected = vanilla_grads()
    model = tiny.model()
    model.register_forward_hook(poison, with_kwargs=True)
    build_method("fgm", step_size=0.5).step(model, tiny.batch(model))
    got = grads(model)
    for k in expected:  # the clean pass's gradient alone, the table's included
        torch.testing.assert_close(got[k], expected[k], atol=1e-6, rtol=1e-5)


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
        with pytest.raises(AdvlmError, match="does not accept inputs_embeds"):
            build_method(name).prepare(NoEmbeds())
    build_method("vanilla").prepare(NoEmbeds())  # vanilla feeds input_ids: fine


def test_raw_ascend_steps_by_the_gradient_as_it_is_then_projects():
    from advlm.perturbation import raw_ascend

    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    delta = torch.full((2, 3, 4), 1e-3)
    grad = torch.arange(24, dtype=torch.float32).view(2, 3, 4)
    out = raw_ascend(delta, grad, mask, 1e-2, 0.0, "token-linf")  # unbounded: delta + eta * grad, padding zero
    torch.testing.assert_close(out, (delta + 1e-2 * grad) * mask.unsqueeze(-1))
    assert out.requires_grad and out.is_leaf
    out = raw_ascend(delta, grad, mask, 1e-2, 0.5, "token-linf")  # each real token rescaled to max-abs 0.5
    torch.testing.assert_close(out.abs().amax(-1), 0.5 * mask)
    grad[1, 0, 0] = float("nan")  # an example with a non-finite gradient keeps its delta
    out = raw_ascend(delta, grad, mask, 1e-2, 0.0, "token-linf")
    torch.testing.assert_close(out[1], delta[1])


def _smart_perturbations(monkeypatch, **hparams) -> list:
    """The perturbations one SMART step (on a tiny model) feeds its passes, the last (adversarial) pass's last."""
    import advlm.methods.smart as smart

    fed, forward = [], smart.forward_embeds
    monkeypatch.setattr(smart, "forward_embeds", lambda m, b, d, *a, **k: fed.append(d) or forward(m, b, d, *a, **k))
    model = tiny.model()
    build_method("smart", **hparams).step(model, tiny.batch(model))
    return fed


def test_smart_code_step_keeps_the_noise_direction(monkeypatch):
    """The reference codes add eta times the raw gradient, far smaller than the 1e-5 noise, so their
    perturbation is the noise's direction, rescaled to the radius."""
    import advlm.methods.smart as smart

    seen = {}
    init = smart.init_delta
    monkeypatch.setattr(smart, "init_delta", lambda *a, **k: seen.setdefault("noise", init(*a, **k)))
    torch.manual_seed(0)
    fed = _smart_perturbations(monkeypatch)
    noise, final = seen["noise"], fed[-1]
    assert len(fed) == 2 and not final.requires_grad
    real = final.abs().amax(-1) > 0
    assert real.sum() > 8
    torch.testing.assert_close(final[real].abs().amax(-1), torch.full((int(real.sum()),), 0.1))  # default radius
    assert (torch.nn.functional.cosine_similarity(noise[real], final[real], dim=-1) > 0.999).all()


def test_smart_normalized_step_ends_in_the_eps_ball(monkeypatch):
    """The paper's step (eta = 1e-3) leaves the 1e-5 ball; the perturbation fed to the last pass is brought back."""
    final = _smart_perturbations(monkeypatch, normalized_step=True, eps=1e-5)[-1]
    real = final.abs().amax(-1) > 0
    assert real.sum() > 8
    torch.testing.assert_close(final[real].abs().amax(-1), torch.full((int(real.sum()),), 1e-5))


def test_smart_normalized_step_is_the_papers(monkeypatch):
    import advlm.methods.smart as smart

    calls = []
    ascend, raw = smart.ascend, smart.raw_ascend
    monkeypatch.setattr(smart, "ascend", lambda *a, **k: calls.append("normalized") or ascend(*a, **k))
    monkeypatch.setattr(smart, "raw_ascend", lambda *a, **k: calls.append("raw") or raw(*a, **k))
    model = tiny.model()
    build_method("smart", normalized_step=True, steps=2).step(model, tiny.batch(model))
    build_method("smart").step(model, tiny.batch(model))
    assert calls == ["normalized", "normalized", "raw"]
