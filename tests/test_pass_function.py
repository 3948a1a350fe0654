"""The pass function: every method's passes go through the Trainer's `compute_loss` (overrides,
`compute_loss_func`, label smoothing, the token-count normalisation under gradient accumulation), and through a
plain loop's own function; vanilla's causal-LM loss is the mean NLL of the response tokens."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import Trainer, TrainerCallback, TrainingArguments

from advlm import AdversarialTrainer, build_method, list_methods
from advlm.data.collate import PaddingCollator, TokenizedDataset
from advlm.passes import model_pass
from tests import tiny

PASSES_PER_STEP = {
    "vanilla": 1,
    "fgm": 2,
    "pgd": 3,
    "freeat": 1,
    "freelb": 2,
    "smart": 4,
    "textat": 2,
    "neftune": 1,
    "r3f": 2,
    "r4f": 2,
    "awp": 2,
}


def _features(kind: str, n: int = 4) -> list[dict]:
    """`n` examples of `kind` of different lengths, as tensors per example."""
    lengths = (7, 4, 6, 5, 3, 7, 5, 6)[:n]
    if kind == "classification":
        return [
            {"input_ids": torch.arange(5, 5 + k), "attention_mask": torch.ones(k, dtype=torch.long), "labels": i % 2}
            for i, k in enumerate(lengths)
        ]
    features = []
    for i, k in enumerate(lengths):  # causal LM: a prompt of 2 tokens, the rest labelled
        ids = (torch.arange(k) * 7 + i) % (tiny.VOCAB - 5) + 5
        labels = ids.clone()
        labels[:2] = -100
        features.append({"input_ids": ids, "attention_mask": torch.ones(k, dtype=torch.long), "labels": labels})
    return features


class GradAtStep(TrainerCallback):
    """The gradient the optimizer is about to apply at the first optimizer step."""

    def __init__(self):
        self.grads = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if self.grads is None:
            self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _args(tmp_path, batch_size=4, accumulation=1, **kw):
    return TrainingArguments(
        str(tmp_path),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        max_grad_norm=0.0,  # the raw gradient: no clipping
        **kw,
    )


def _trainer(cls, tmp_path, kind, method=None, features=None, **kw):
    args_kw = {k: kw.pop(k) for k in list(kw) if k in ("batch_size", "accumulation", "label_smoothing_factor")}
    extra = {} if cls is Trainer else {"method": method or build_method("vanilla")}
    callback = GradAtStep()
    trainer = cls(
        model=tiny.head_model(kind),
        args=_args(tmp_path, **args_kw),
        train_dataset=TokenizedDataset(features or _features(kind)),
        data_collator=PaddingCollator(),
        callbacks=[callback],
        **extra,
        **kw,
    )
    return trainer, callback


@pytest.mark.parametrize("name", list_methods())
def test_a_compute_loss_override_sees_every_pass_of_every_method(tmp_path, name):
    calls = []

    class Counting(AdversarialTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            calls.append(sorted(inputs))
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    method = build_method(name, steps=1) if name == "freeat" else build_method(name)
    trainer, _ = _trainer(Counting, tmp_path, "classification", method)
    trainer.train()
    assert len(calls) == PASSES_PER_STEP[name]
    if name not in ("vanilla", "awp"):  # AWP perturbs weights: its passes take the ids as vanilla's
        assert all("inputs_embeds" in keys and "input_ids" not in keys for keys in calls)


@pytest.mark.parametrize("name", list_methods())
def test_compute_loss_func_is_called_by_every_method(tmp_path, name):
    seen = []

    def loss_func(outputs, labels, num_items_in_batch=None):
        seen.append(labels.shape)
        return F.cross_entropy(outputs["logits"], labels)

    method = build_method(name, steps=1) if name == "freeat" else build_method(name)
    trainer, callback = _trainer(AdversarialTrainer, tmp_path, "classification", method, compute_loss_func=loss_func)
    trainer.train()
    assert len(seen) == PASSES_PER_STEP[name] and callback.grads


def test_label_smoothing_gives_the_stock_trainers_gradient(tmp_path):
    stock, expected = _trainer(Trainer, tmp_path / "a", "classification", label_smoothing_factor=0.2)
    ours, got = _trainer(AdversarialTrainer, tmp_path / "b", "classification", label_smoothing_factor=0.2)
    plain, unsmoothed = _trainer(AdversarialTrainer, tmp_path / "c", "classification")
    for trainer in (stock, ours, plain):
        trainer.train()
    for key in expected.grads:
        torch.testing.assert_close(got.grads[key], expected.grads[key], atol=1e-7, rtol=1e-5)
    assert not torch.allclose(unsmoothed.grads["classifier.weight"], got.grads["classifier.weight"])


def test_gradient_accumulation_gives_the_stock_trainers_gradient_on_a_token_level_loss(tmp_path):
    """4 x 1 and 2 x 2 give one gradient: the loss is normalised by the tokens of the accumulated batch."""
    grads = {}
    for name, cls, batch, accumulation in (
        ("stock 2x2", Trainer, 2, 2),
        ("ours 2x2", AdversarialTrainer, 2, 2),
        ("ours 4x1", AdversarialTrainer, 4, 1),
    ):
        torch.manual_seed(0)
        trainer, callback = _trainer(cls, tmp_path / name, "causal-lm", batch_size=batch, accumulation=accumulation)
        trainer.train()
        grads[name] = callback.grads
    for key in grads["stock 2x2"]:
        torch.testing.assert_close(grads["ours 2x2"][key], grads["stock 2x2"][key], atol=1e-7, rtol=1e-5)
        torch.testing.assert_close(grads["ours 4x1"][key], grads["stock 2x2"][key], atol=1e-7, rtol=1e-5)


def test_a_plain_loop_may_pass_its_own_pass_function():
    model = tiny.head_model("classification")
    batch = tiny.head_batch(model, "classification")
    seen = []

    def doubled(model, inputs):
        seen.append(set(inputs))
        loss, outputs = model_pass(model, inputs)
        return 2 * loss, outputs

    for name in list_methods():
        seen.clear()
        out = build_method(name).step(model, batch, compute_loss=doubled)
        assert seen and torch.isfinite(out.loss), name
    extra = dict(batch, custom_flag=torch.tensor(1))  # every batch key reaches the pass function
    build_method("freelb").step(
        model,
        extra,
        compute_loss=lambda m, i: (
            seen.append(set(i)) or model_pass(m, {k: v for k, v in i.items() if k != "custom_flag"})
        ),
    )
    assert "custom_flag" in seen[-1]


def test_causal_lm_vanilla_loss_is_the_mean_nll_of_the_response_tokens():
    model = tiny.head_model("causal-lm").eval()
    batch = tiny.head_batch(model, "causal-lm")
    out = build_method("vanilla").step(model, batch)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    log_probs = torch.log_softmax(logits.float(), -1)
    nll, count = 0.0, 0
    for b in range(len(batch["input_ids"])):
        for t in range(1, batch["input_ids"].size(1)):
            if batch["labels"][b, t] != -100:  # a response token, predicted from position t - 1
                nll -= float(log_probs[b, t - 1, batch["input_ids"][b, t]])
                count += 1
    assert count == int((batch["labels"] != -100).sum()) and count < int(batch["attention_mask"].sum())
    assert float(out.loss) == pytest.approx(nll / count, rel=1e-5)
