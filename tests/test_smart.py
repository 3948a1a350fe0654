"""SMART: its divergences, its teacher, its ascent step (the reference codes' and the paper's)."""

from __future__ import annotations

import torch

from advlm import build_method
from tests import tiny


def test_smart_teacher_is_a_copy_and_follows_an_ema():
    model = tiny.model()
    method = build_method("smart", beta_early=0.5)
    method.step(model, tiny.batch(model))
    student = dict(model.named_parameters())
    teacher = method.teacher.weights
    assert teacher.keys() == student.keys()
    assert all(t.data_ptr() != student[k].data_ptr() for k, t in teacher.items())
    assert not any(t.requires_grad for t in teacher.values())
    before = {k: t.detach().clone() for k, t in teacher.items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # a fake optimizer step
    assert all(torch.equal(before[k], t) for k, t in teacher.items())  # not an alias
    now = {k: p.detach().clone() for k, p in student.items()}
    method.step(model, tiny.batch(model))
    w = "classifier.weight"
    torch.testing.assert_close(teacher[w], 0.5 * before[w] + 0.5 * now[w])
    assert model.training is True and all(torch.equal(p, now[k]) for k, p in student.items())  # put back


def test_smart_teacher_pass_runs_the_average_without_dropout():
    """The Bregman term's teacher outputs are those of a model holding the averaged weights, in eval mode."""
    import copy

    model = tiny.model(dropout=True).train()
    method = build_method("smart", beta_early=0.5)
    method.step(model, tiny.batch(model))
    reference = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, p in reference.named_parameters():
            p.copy_(method.teacher.weights[name])
    batch = tiny.batch(model)
    outputs = method._teacher_outputs(model, batch, lambda m, inputs: (None, m(**inputs)))
    with torch.no_grad():
        expected = reference(**batch).logits
    torch.testing.assert_close(outputs["logits"], expected)
    assert model.training


def test_smart_teacher_holds_only_trainable_parameters():
    """A frozen encoder (as under LoRA) is not copied: the teacher holds the head alone."""
    model = tiny.model()
    model.bert.requires_grad_(False)
    method = build_method("smart")
    method.step(model, tiny.batch(model))
    assert sorted(method.teacher.weights) == ["classifier.bias", "classifier.weight"]
    head = sum(p.numel() * 4 for p in model.classifier.parameters())
    assert method.teacher.nbytes() == head


def test_smart_regression_uses_squared_error():
    model = tiny.model(num_labels=1, problem_type="regression")
    out = build_method("smart").step(model, tiny.batch(model, regression=True))
    assert torch.isfinite(out.loss) and out.metrics["smoothness"] >= 0 and out.metrics["bregman"] >= 0


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
    return [d for d in fed if d is not None]  # the clean and the teacher's passes have none


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
