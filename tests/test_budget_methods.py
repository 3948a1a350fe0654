"""The cheaper rungs: NEFTune against transformers' own NEFTune, R3F's noised pass, AWP's weight step and its
exact restore. (Zero budget equals vanilla, finite gradients on every head, and the perturbation's route are
tested with every other method in test_methods.py, test_heads.py and test_hook_route.py.)"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from advlm import build_method
from advlm.errors import AdvlmError
from tests import tiny
from tests.method_helpers import EmbedsSpy


# --- NEFTune ----------------------------------------------------------------------------------------------
def test_neftune_noise_has_transformers_bound_and_is_zero_at_padding():
    method = build_method("neftune", alpha=5.0)
    batch = tiny.batch(tiny.model(), lengths=(7, 4, 5))
    mask = batch["attention_mask"].float()
    like = torch.empty(3, 7, 400)
    torch.manual_seed(0)
    noise = method.noise(like, mask)
    bound = 5.0 / (7 * 400) ** 0.5
    assert noise.abs().max() <= bound and noise[mask.bool()].abs().max() > 0.99 * bound
    assert (noise[~mask.bool()] == 0).all()
    real = noise[mask.bool()]
    assert abs(float(real.mean())) < 0.01 * bound and float(real.var()) == pytest.approx(bound**2 / 3, rel=0.05)
    per_example = build_method("neftune", alpha=5.0, length="sequence").noise(like, mask)
    for i, n in enumerate((7, 4, 5)):  # the paper's L: the example's own length
        assert per_example[i].abs().max() <= 5.0 / (n * 400) ** 0.5
        assert per_example[i].abs().max() > 0.99 * 5.0 / (n * 400) ** 0.5


def _trainer_losses(tmp_path, tokenizer, neftune_in_trainer: bool, method: str = "neftune") -> tuple[list, dict]:
    from transformers import Trainer, TrainingArguments

    from advlm import AdversarialTrainer
    from advlm.data.collate import TokenizedDataset, make_collator

    g = torch.Generator().manual_seed(0)
    features = []
    for i in range(16):
        n = 4 + i % 5
        ids = [2, *torch.randint(10, 90, (n,), generator=g).tolist(), 3]
        features.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": i % 2})
    args = TrainingArguments(
        str(tmp_path / ("stock" if neftune_in_trainer else method)),
        per_device_train_batch_size=4,
        num_train_epochs=2,
        learning_rate=1e-3,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=7,
        neftune_noise_alpha=15.0 if neftune_in_trainer else None,
    )
    common = dict(
        model=tiny.model(dropout=True),  # dropout on: the noise must leave the random stream as the Trainer's
        args=args,
        processing_class=tokenizer,
        train_dataset=TokenizedDataset(features),
        data_collator=make_collator(tokenizer),
    )
    if neftune_in_trainer:
        trainer = Trainer(**common)
    else:
        options = {"alpha": 15.0} if method == "neftune" else {}
        trainer = AdversarialTrainer(**common, method=build_method(method, **options))
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return losses, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_neftune_matches_the_stock_trainers_neftune(tmp_path, tokenizer):
    """Same seed, same batches: the same loss at every step and the same weights as
    `Trainer(neftune_noise_alpha=...)`; and a different curve from plain fine-tuning (the noise is there)."""
    stock, stock_weights = _trainer_losses(tmp_path, tokenizer, True)
    ours, our_weights = _trainer_losses(tmp_path, tokenizer, False)
    assert len(ours) == len(stock) == 8
    assert ours == pytest.approx(stock, rel=1e-5, abs=1e-6)
    for key, value in stock_weights.items():
        torch.testing.assert_close(our_weights[key], value, atol=1e-5, rtol=1e-4, msg=key)
    plain, _ = _trainer_losses(tmp_path, tokenizer, False, method="vanilla")
    assert plain[1:] != pytest.approx(stock[1:], rel=1e-4)


# --- R3F --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("noise_type", ["uniform", "normal"])
def test_r3f_noises_the_second_pass_within_its_scale_and_not_at_padding(noise_type):
    model = tiny.model()
    batch = tiny.batch(model)
    spy = EmbedsSpy(model, batch)
    out = build_method("r3f", eps=1e-3, noise_type=noise_type).step(model, batch)
    clean, noised = spy.deltas
    assert clean.abs().max() == 0  # the first pass is the clean input
    pad = batch["attention_mask"] == 0
    assert (noised[pad] == 0).all() and noised[~pad].abs().max() > 0
    if noise_type == "uniform":
        assert noised.abs().max() <= 1e-3 * (1 + 1e-5)
    else:
        assert float(noised[~pad].std()) == pytest.approx(1e-3, rel=0.1)
    assert float(out.metrics["consistency"]) > 0


# --- AWP --------------------------------------------------------------------------------------------------
def test_awp_restores_every_weight_bit_for_bit_and_its_pass_saw_bounded_weights():
    model = tiny.model()
    batch = tiny.batch(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    layer = model.bert.encoder.layer[0].attention.self.query
    calls = []

    def record(module, args):
        calls.append(module.weight.detach().clone())

    layer.register_forward_pre_hook(record)
    method = build_method("awp", adv_lr=1.0, adv_eps=0.01)
    out = method.step(model, batch)
    for name, p in model.named_parameters():
        assert torch.equal(p.detach(), before[name]), name
    clean, perturbed = calls
    w0 = before["bert.encoder.layer.0.attention.self.query.weight"]
    assert torch.equal(clean, w0)
    shift = (perturbed - w0).abs()
    assert shift.max() > 0 and (shift <= 0.01 * w0.abs() * (1 + 1e-5) + 1e-12).all()  # rounding of the subtraction
    assert float(out.metrics["adv_loss"]) > float(out.metrics["clean_loss"])  # it ascended
    chosen = {n for n, _ in method.chosen(model)}
    assert "bert.encoder.layer.0.attention.self.query.weight" in chosen
    assert not any(n.endswith("bias") for n in chosen)  # the recipes' default: names containing "weight"


def test_awp_zero_step_gives_twice_the_clean_gradient_as_the_recipes():
    model = tiny.model()
    batch = tiny.batch(model)
    torch.manual_seed(0)
    build_method("vanilla").step(model, batch)
    clean = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    build_method("awp", adv_lr=0.0).step(model, batch)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, 2 * clean[n], msg=n)


# --- hyper-parameters -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,bad",
    [
        ("neftune", {"alpha": -1.0}),
        ("neftune", {"length": "tokens"}),
        ("r3f", {"eps": -1e-5}),
        ("r3f", {"noise_type": "cauchy"}),
        ("awp", {"adv_lr": -1.0}),
        ("awp", {"adv_eps": float("nan")}),
        ("awp", {"adv_param": ""}),
    ],
)
def test_bad_hyperparameters_are_refused_by_name(name, bad):
    with pytest.raises(AdvlmError, match=next(iter(bad))):
        build_method(name, **bad)


@pytest.mark.parametrize("name,flag", [("awp", "--adv-eps"), ("neftune", "--alpha"), ("r3f", "--noise-type")])
def test_each_method_lists_its_own_flags(name, flag):
    out = subprocess.run(
        [sys.executable, "-m", "advlm", "train", "--method", name, "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and flag in out.stdout
    listed = subprocess.run([sys.executable, "-m", "advlm", "list"], capture_output=True, text=True).stdout
    assert name in listed
