"""Evaluation outside the Trainer: batched, no gradients, the task's official metrics plus the mean loss.

The same two task functions score a model here and inside `AdversarialTrainer` (`task.reduce` per batch as
`preprocess_logits_for_metrics`, then `task.score`), and batches are joined as the Trainer joins them
(`nested_concat`, padding with -100), so `advlm eval` and the training run's own evaluation agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm
from transformers.trainer_pt_utils import nested_concat, nested_numpify

from advlm.data import TokenizedDataset
from advlm.tasks import TaskKind


def batches(dataset: TokenizedDataset, task: TaskKind, tokenizer, batch_size: int, device):
    """The dataset's batches, collated by the task and moved to `device`, in order."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=task.collator(tokenizer))
    for batch in loader:
        yield {k: v.to(device) for k, v in batch.items()}


def output_tensors(model: nn.Module, outputs):
    """The outputs the Trainer would hand to `preprocess_logits_for_metrics`: all but the loss and the keys
    the model's config ignores at inference (a cache), one tensor or a tuple."""
    ignore = set(getattr(getattr(model, "config", None), "keys_to_ignore_at_inference", None) or [])
    tensors = tuple(v for k, v in outputs.items() if k != "loss" and k not in ignore)
    return tensors[0] if len(tensors) == 1 else tensors


@torch.no_grad()
def predict(model: nn.Module, dataset: TokenizedDataset, tokenizer, task: TaskKind, batch_size=128, progress=False):
    """(reduced predictions, label ids, mean loss over examples) for the dataset; the model is left in its
    prior mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    predictions = labels = None
    loss_sum, examples = 0.0, 0
    for batch in tqdm(
        batches(dataset, task, tokenizer, batch_size, device), desc="eval", disable=not progress, leave=False
    ):
        outputs = model(**batch)
        label = tuple(batch[k] for k in ("labels", "start_positions", "end_positions") if k in batch)
        label = label[0] if len(label) == 1 else label
        reduced = task.reduce(output_tensors(model, outputs), label)
        predictions = nested_concat(predictions, reduced, padding_index=-100) if predictions is not None else reduced
        labels = nested_concat(labels, label, padding_index=-100) if labels is not None else label
        size = len(batch["input_ids"])
        if outputs.get("loss") is not None:
            loss_sum += float(outputs["loss"].float()) * size
        examples += size
    model.train(was_training)
    return nested_numpify(predictions), nested_numpify(labels), loss_sum / max(examples, 1)


def evaluate(
    model: nn.Module, dataset: TokenizedDataset, tokenizer, task: TaskKind, batch_size: int = 128, progress=False
) -> dict[str, float]:
    """The task's official metrics and the mean `loss` on a labelled dataset. Predictions of a model whose
    classes are ordered otherwise are put in the task's order first (matched by name through its config)."""
    predictions, labels, loss = predict(model, dataset, tokenizer, task, batch_size, progress)
    predictions = task.align(predictions, getattr(model, "config", None))
    if task.kind == "classification":  # the loss of the classes in the task's order, whatever the model's
        loss = float(F.cross_entropy(torch.as_tensor(predictions).float(), torch.as_tensor(labels).long()))
    return {**task.score(predictions, labels, dataset), "loss": loss}
