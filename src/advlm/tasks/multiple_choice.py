"""Multiple choice: CommonsenseQA, ARC-Easy, ARC-Challenge, and the user's own questions in their format.

Files: JSON lines `{"question": {"stem": "...", "choices": [{"label": "A", "text": "..."}, ...]},
"answerKey": "A"}`. CommonsenseQA has 5 choices (A-E); ARC has 3 to 5, and a few of its questions use the
labels 1-4, so the answer key is looked up among each question's own labels.

Tokenization: each choice is paired with the question (stem, choice) and truncated to `--max-length`, so an
example is C sequences. A batch is padded to its largest number of choices; a missing choice is a row of
padding (attention mask all zero), and `mask_missing_choices` sets its logit far below the others in the
model's outputs and recomputes the loss without it, so it never counts in the loss, the prediction or a
consistency term. Model: `AutoModelForMultipleChoice`. Metric: accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from advlm.data.collate import TokenizedDataset
from advlm.data.loading import read_jsonl
from advlm.errors import AdvlmError
from advlm.tasks.base import TaskKind, as_numpy

_HOOKED = "_advlm_masks_missing_choices"


@dataclass(frozen=True)
class ChoiceQuestion:
    question: str
    choices: tuple[str, ...]
    label: int  # index of the right choice


def mask_missing_choices(model: nn.Module) -> nn.Module:
    """Adds a forward hook to a multiple-choice model: choices whose attention mask is all zero (padding for
    questions with fewer choices than others in the batch) get a logit far below any real one, and the loss
    is recomputed over the real choices. Idempotent; the hook travels with `copy.deepcopy` (SMART's teacher)."""
    if getattr(model, _HOOKED, False):
        return model

    def hook(module, args, kwargs, output):
        mask = kwargs.get("attention_mask")
        if mask is None or mask.dim() != 3:
            return output
        logits = output["logits"]
        logits = logits.masked_fill(~mask.bool().any(-1), torch.finfo(logits.dtype).min / 2)
        output["logits"] = logits
        labels = kwargs.get("labels")
        if labels is not None:
            output["loss"] = F.cross_entropy(logits.float(), labels)
        return output

    model.register_forward_hook(hook, with_kwargs=True)
    setattr(model, _HOOKED, True)
    return model


@dataclass
class MultipleChoiceTask(TaskKind):
    kind = "multiple-choice"
    auto_class = "AutoModelForMultipleChoice"
    metrics = ("accuracy",)

    def read(self, file: Path) -> list[ChoiceQuestion]:
        return [self._question(f"{file}:{line}", row) for line, row in read_jsonl(file)]

    def _question(self, where: str, row: dict) -> ChoiceQuestion:
        question = row.get("question")
        choices = question.get("choices") if isinstance(question, dict) else None
        if not isinstance(question, dict) or not isinstance(question.get("stem"), str) or not isinstance(choices, list):
            raise AdvlmError(
                f'{where}: expected {{"question": {{"stem": ..., "choices": [{{"label": ..., "text": ...}}]}}, '
                '"answerKey": ...} (the CommonsenseQA/ARC format)'
            )
        if len(choices) < 2 or not all(isinstance(c, dict) and isinstance(c.get("text"), str) for c in choices):
            raise AdvlmError(f'{where}: a question needs at least 2 choices, each {{"label": ..., "text": ...}}')
        labels = [str(c.get("label")) for c in choices]
        key = row.get("answerKey")
        if key is None or str(key) not in labels:
            raise AdvlmError(
                f"{where}: answer key {key!r} is not among the choices' labels {', '.join(labels)}; fix the answerKey"
            )
        return ChoiceQuestion(question["stem"], tuple(c["text"] for c in choices), labels.index(str(key)))

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return mask_missing_choices(model)

    def encode(self, tokenizer, questions, max_length: int) -> TokenizedDataset:
        stems = [q.question for q in questions for _ in q.choices]
        answers = [c for q in questions for c in q.choices]
        encoded = tokenizer(stems, answers, truncation=True, max_length=max_length)
        features, row = [], 0
        for q in questions:
            rows = range(row, row + len(q.choices))
            item = {key: [torch.tensor(values[r], dtype=torch.long) for r in rows] for key, values in encoded.items()}
            item["labels"] = q.label
            features.append(item)
            row += len(q.choices)
        return TokenizedDataset(features)

    def score(self, predictions, label_ids, dataset=None) -> dict[str, float]:
        logits, labels = as_numpy(predictions), as_numpy(label_ids).reshape(-1)
        return {"accuracy": float(np.mean(logits.argmax(-1) == labels))}
