"""Helpers shared by the method tests: gradients, a perturbation spy, a tiny Trainer."""

from __future__ import annotations

import torch

from advlm import build_method
from advlm.embeddings import embed
from tests import tiny


def grads(model) -> dict[str, torch.Tensor]:
    """Parameter name -> gradient; a spectrally normalised weight (R4F) under its layer's plain name."""
    return {
        n.replace(".parametrizations.weight.original", ".weight"): p.grad.detach().clone()
        for n, p in model.named_parameters()
        if p.grad is not None
    }


def vanilla_grads(arch="bert", dropout=False, seed=0, like: str = "vanilla", **batch_kw):
    """Vanilla's gradients on a tiny model, reparametrised as method `like` does (R4F's head) first."""
    model = tiny.normalise_like(like, tiny.model(arch, dropout))
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
