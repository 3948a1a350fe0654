"""Dev-set evaluation outside the Trainer: batched, no gradients, GLUE metrics plus the mean loss."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from advlm.data import Task, TokenizedDataset
from advlm.data.collate import make_collator
from advlm.metrics import task_metrics


@torch.no_grad()
def predict(
    model: nn.Module, dataset: TokenizedDataset, tokenizer, batch_size: int = 128, progress: bool = False
) -> np.ndarray:
    """Logits (or regression outputs) for every example; the model is left in its prior mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=make_collator(tokenizer))
    logits = []
    for batch in tqdm(loader, desc="eval", disable=not progress, leave=False):
        inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        logits.append(model(**inputs).logits.float().cpu())
    model.train(was_training)
    return torch.cat(logits).numpy()


def evaluate(
    model: nn.Module, dataset: TokenizedDataset, tokenizer, task: Task, batch_size: int = 128, progress: bool = False
) -> dict[str, float]:
    """The task's official metrics and the mean `loss` on a labelled dataset. The model's classes are put in
    the task's label order first (matched by name through its config), so a model trained elsewhere with
    another class order is scored correctly."""
    from advlm.robustness.advglue import reorder_logits

    logits = predict(model, dataset, tokenizer, batch_size, progress)
    labels = np.array([f["labels"] for f in dataset.features])
    if task.is_regression:
        loss = F.mse_loss(torch.as_tensor(logits).view(-1), torch.as_tensor(labels, dtype=torch.float32))
    else:
        logits = reorder_logits(logits, getattr(model, "config", None), task)
        loss = F.cross_entropy(torch.as_tensor(logits), torch.as_tensor(labels))
    return {**task_metrics(task, logits, labels), "loss": float(loss)}
