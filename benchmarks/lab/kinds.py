"""The lab's cost kinds: besides a method's step (`advlm.bench.cost.CostKind`, label `method:NAME[,k=v]`),
- `Floor` (`floor`): a minimal hand-written loop: forward, backward, AdamW step, zero_grad;
- `TrainerKind` (`trainer:NAME[,k=v]`): our whole training step in `AdversarialTrainer` as `advlm train` sets it
  up (its training arguments, tensor features, its collator): data in, collate, method step, clipping,
  optimizer and scheduler, callbacks;
- `StockTrainer` (`stock-trainer`): the same with the stock `transformers.Trainer` at its defaults (vanilla);
- `SmartPytorch` (`smart-pytorch`): the `smart-pytorch` package's SMART regularizer (no Bregman term).
Labels are what cost.json and the command line use; `parse_kind` turns one into its kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from advlm.bench.cost import CostKind, Setup, method_step


@dataclass(frozen=True)
class Floor:
    label = "floor"


@dataclass(frozen=True)
class TrainerKind:
    method: CostKind

    @property
    def label(self) -> str:
        return "trainer:" + self.method.label.removeprefix("method:")


@dataclass(frozen=True)
class StockTrainer:
    label = "stock-trainer"


@dataclass(frozen=True)
class SmartPytorch:
    label = "smart-pytorch"


Kind = CostKind | Floor | TrainerKind | StockTrainer | SmartPytorch
STEP_KINDS = (CostKind, Floor, SmartPytorch)  # one call is one step; the Trainers own their loops


def parse_kind(label: str) -> Kind:
    if label.startswith("method:"):
        return CostKind.parse(label)
    if label.startswith("trainer:"):
        return TrainerKind(CostKind.parse("method:" + label.removeprefix("trainer:")))
    for kind in (Floor(), StockTrainer(), SmartPytorch()):
        if label == kind.label:
            return kind
    raise ValueError(f"unknown cost kind {label!r}: method:NAME, trainer:NAME, floor, stock-trainer, smart-pytorch")


def lab_kinds() -> list[str]:
    """The lab's cost table: the floor, every method, both Trainers, SMART like for like with smart-pytorch (no
    Bregman term), and FreeLB without its NaN guard (what the guard's host syncs cost)."""
    from advlm.methods import list_methods

    methods = [f"method:{m}" for m in list_methods()]
    return ["floor", *methods, "trainer:vanilla", "stock-trainer", "method:smart,bregman=false", "smart-pytorch"] + [
        "method:freelb,nan_guard=false"
    ]


def step_of(kind: Kind, setup: Setup) -> Callable[[], None]:
    """One optimizer step of a one-call kind: its passes, the optimizer step and zero_grad."""
    if isinstance(kind, CostKind):
        return method_step(kind, setup)
    passes = floor_passes(setup) if isinstance(kind, Floor) else smart_pytorch_passes(setup)

    def step() -> None:
        passes()
        setup.optimizer.step()
        setup.optimizer.zero_grad(set_to_none=True)

    return step


def floor_passes(setup: Setup) -> Callable[[], None]:
    def passes() -> None:
        with setup.autocast:
            loss = setup.model(**setup.batch).loss
        loss.backward()

    return passes


def smart_pytorch_passes(setup: Setup) -> Callable[[], None]:
    """smart-pytorch's SMARTLoss as its README uses it: task loss + weight * SMART(embeddings, logits)."""
    import torch.nn.functional as F
    from smart_pytorch import SMARTLoss, kl_loss, sym_kl_loss

    from advlm.embeddings import embed, model_inputs

    model, batch = setup.model, setup.batch
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    eval_fn = lambda e: model(**model_inputs(model, inputs, e)).logits  # noqa: E731
    smart = SMARTLoss(eval_fn=eval_fn, loss_fn=kl_loss, loss_last_fn=sym_kl_loss)

    def passes() -> None:
        with setup.autocast:
            embeds = embed(model, batch["input_ids"])
            logits = eval_fn(embeds)
            loss = F.cross_entropy(logits.float(), batch["labels"]) + 1.0 * smart(embeds, logits)
        loss.backward()

    return passes


def build_trainer(kind: TrainerKind | StockTrainer, setup: Setup, total: int, callback):
    """The Trainer of a Trainer kind, for `total` steps over copies of the batch's rows, with `callback` added."""
    from advlm.data.collate import TokenizedDataset

    size = len(setup.batch["input_ids"])
    rows = [{k: v[i].cpu() for k, v in setup.batch.items()} for i in range(size)] * total
    if isinstance(kind, StockTrainer):
        return stock_trainer(setup, rows, total, callback)
    from advlm import AdversarialTrainer
    from advlm.config import TrainConfig
    from advlm.data.collate import PaddingCollator
    from advlm.training import training_arguments

    # what `advlm train` runs: its training arguments, tensor features, its collator
    cfg = TrainConfig(output_dir="/tmp/advlm-bench-trainer", batch_size=size, lr=2e-5, progress=False)
    overrides = dict(max_steps=total, eval_strategy="no", save_strategy="no", load_best_model_at_end=False)
    args = training_arguments(cfg, "accuracy", **overrides, logging_strategy="no", warmup_steps=0)
    return AdversarialTrainer(
        model=setup.model,
        args=args,
        train_dataset=TokenizedDataset(rows),
        data_collator=PaddingCollator(),
        callbacks=[callback],
        method=kind.method.build(),
    )


def stock_trainer(setup: Setup, rows: list[dict], total: int, callback):
    """What a user of the stock Trainer gets: its defaults, list features, its collator."""
    from transformers import Trainer, TrainingArguments

    from advlm.data.collate import TokenizedDataset

    cuda = setup.model.device.type == "cuda"
    args = TrainingArguments(
        "/tmp/advlm-bench-trainer",
        max_steps=total,
        per_device_train_batch_size=len(rows) // total,
        learning_rate=2e-5,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=not cuda,
        bf16=cuda,
        optim="adamw_torch_fused",
        logging_strategy="no",
        dataloader_pin_memory=cuda,
    )
    features = [{k: v.tolist() for k, v in row.items()} for row in rows]
    return Trainer(model=setup.model, args=args, train_dataset=TokenizedDataset(features), callbacks=[callback])
