"""Any loop, same behaviour: every method trained N steps in a plain loop (with the explicit `prepare` call) and
N steps through `AdversarialTrainer`, from the same seed and batches, ends at the same weights; a plain loop that
omits what a method relies on is warned, once."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils.data import SequentialSampler
from transformers import BertForSequenceClassification, TrainingArguments, default_data_collator

from advlm import AdversarialTrainer, build_method, list_methods
from advlm.data.collate import TokenizedDataset
from tests.conftest import tiny_bert_config

STEPS, BATCH, LENGTH, LR = 4, 4, 12, 1e-3


def batches(tokenizer) -> list[dict[str, torch.Tensor]]:
    """STEPS batches of real token ids ([CLS] ... [SEP], some padding) and labels, the same every call."""
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(STEPS):
        ids = torch.randint(1000, 2000, (BATCH, LENGTH), generator=g)
        ids[:, 0], ids[:, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
        mask = torch.ones_like(ids)
        mask[0, -3:], ids[0, -3:] = 0, tokenizer.pad_token_id  # one padded example per batch
        out.append({"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 2, (BATCH,), generator=g)})
    return out


def fresh_model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_bert_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))


def plain_loop(name: str, tokenizer):
    model, method = fresh_model().train(), build_method(name)
    method.prepare(model, tokenizer=tokenizer, total_steps=STEPS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    torch.manual_seed(7)  # the methods' random initial perturbations
    for step, batch in enumerate(method.wrap_dataloader(batches(tokenizer)), start=1):
        method.step(model, batch)
        optimizer.step()
        optimizer.zero_grad()
        if step == STEPS:
            break
    return model, method


class SequentialTrainer(AdversarialTrainer):
    """The batches in order (the Trainer shuffles by default), the seed reset where the plain loop resets it."""

    def _get_train_sampler(self, *args, **kwargs):
        return SequentialSampler(self.train_dataset)

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.state.global_step == 0 and not getattr(self, "_seeded", False):
            torch.manual_seed(7)
            self._seeded = True
        return super().training_step(model, inputs, num_items_in_batch)


def trainer_loop(name: str, tokenizer, tmp_path):
    model = fresh_model()
    rows = [{k: v[i] for k, v in batch.items()} for batch in batches(tokenizer) for i in range(BATCH)]
    args = TrainingArguments(
        str(tmp_path / name),
        max_steps=STEPS,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        weight_decay=0.0,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        optim="adamw_torch",
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        dataloader_drop_last=False,
    )
    trainer = SequentialTrainer(
        model=model,
        args=args,
        train_dataset=TokenizedDataset(rows),
        data_collator=default_data_collator,
        processing_class=tokenizer,
        method=build_method(name),
    )
    trainer.train()
    return model, trainer.method


@pytest.mark.parametrize("name", list_methods())
def test_a_plain_loop_and_the_trainer_reach_the_same_weights(name, tokenizer, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # both loops told the method everything it needs
        plain, plain_method = plain_loop(name, tokenizer)
        trained, trained_method = trainer_loop(name, tokenizer, tmp_path)
    start = fresh_model().state_dict()
    moved = 0.0
    for key, value in plain.state_dict().items():
        other = trained.state_dict()[key]
        assert torch.allclose(value, other, atol=1e-7, rtol=1e-6), (
            f"{name}: {key} differs by {(value - other).abs().max()}"
        )
        moved = max(moved, float((value - start[key]).abs().max()))
    assert moved > 1e-4  # the runs trained: the agreement is not two untouched models
    # and the method's own state: SMART's teacher (its decay schedule needs the run's length), TextAT's table
    ours, theirs = flat(plain_method.state_dict()), flat(trained_method.state_dict())
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        assert torch.allclose(value, theirs[key], atol=1e-8, rtol=1e-6), f"{name}: its {key} differs"


def flat(state, prefix: str = "") -> dict[str, torch.Tensor]:
    """The tensors of a nested state dict, by dotted key (numbers as tensors)."""
    out = {}
    for key, value in state.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = torch.as_tensor(value, dtype=torch.float64 if not torch.is_tensor(value) else None)
    return out


@pytest.mark.parametrize(
    ("name", "told", "says"),
    [
        ("smart", {"tokenizer": True}, "smart was never told the run's number of optimizer steps"),
        ("textat", {"total_steps": STEPS}, "textat was never told its special tokens"),
    ],
)
def test_a_plain_loop_that_does_not_tell_a_method_what_it_relies_on_is_warned_once(name, told, says, tokenizer):
    model, method = fresh_model().train(), build_method(name)
    told = {k: (tokenizer if k == "tokenizer" else v) for k, v in told.items()}
    method.prepare(model, **told)
    data = batches(tokenizer)
    with pytest.warns(UserWarning, match=says) as caught:
        method.step(model, data[0])
    assert "method.prepare(model, tokenizer=tokenizer, total_steps=N)" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        method.step(model, data[1])  # once
        told_all = build_method(name)
        told_all.prepare(model, tokenizer=tokenizer, total_steps=STEPS)
        told_all.step(model, data[2])  # told everything: no warning
