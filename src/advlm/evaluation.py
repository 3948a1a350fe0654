"""Dev-set evaluation outside the Trainer: batched, no gradients, GLUE metrics plus the mean loss."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from advlm.data import Task, TokenizedDataset
from advlm.data.collate import make_collator
from advlm.metrics import task_metrics


@torch.no_grad()
def predict(
    model: nn.Module, dataset: TokenizedDataset, tokenizer, batch_size: int = 128, progress: bool = False
) -> tuple[np.ndarray, float | None]:
    """(logits for every example, mean loss or None when unlabelled); model left in its prior mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=make_collator(tokenizer))
    logits, loss_sum, n = [], 0.0, 0
    for batch in tqdm(loader, desc="eval", disable=not progress, leave=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)
        logits.append(out.logits.float().cpu())
        if out.loss is not None:
            loss_sum += float(out.loss) * len(batch["input_ids"])
            n += len(batch["input_ids"])
    model.train(was_training)
    return torch.cat(logits).numpy(), (loss_sum / n if n else None)


def evaluate(
    model: nn.Module, dataset: TokenizedDataset, tokenizer, task: Task, batch_size: int = 128, progress: bool = False
) -> dict[str, float]:
    """The task's official metrics and `loss` on a labelled dataset."""
    logits, loss = predict(model, dataset, tokenizer, batch_size, progress)
    labels = [f["labels"] for f in dataset.features]
    return {**task_metrics(task, logits, labels), "loss": loss}
