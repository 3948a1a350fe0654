"""Tokenized features held as tensors, padded per batch (dynamic padding) with tensor copies only.

A training step's data work is then one small copy per example and key: no Python work over tokens and no
`tokenizer.pad` (the Hugging Face collator's per-batch Python costs milliseconds, which a small model on a
GPU cannot hide). Features may be scalars (class labels, answer positions), sequences (token ids, token
labels) or lists of sequences (the choices of a multiple-choice example: padded to B x C x T, missing choices
as rows of padding).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase


class TokenizedDataset(torch.utils.data.Dataset):
    """Pre-tokenized features (dicts of int64 tensors, int lists, or scalars), and `meta`: what a task keeps
    beside them for scoring (the words of each sentence, the offsets of each QA window)."""

    def __init__(self, features: list[dict], meta: Any = None):
        self.features = features
        self.meta = meta

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]

    def fingerprint(self) -> str:
        """SHA-256 of the features (what training reads): a changed label, text or file gives another one."""
        digest = hashlib.sha256()
        for feature in self.features:
            for key in sorted(feature):
                value = feature[key]
                digest.update(key.encode())
                digest.update(value.numpy().tobytes() if isinstance(value, torch.Tensor) else repr(value).encode())
        return digest.hexdigest()


@dataclass
class PaddingCollator:
    """Stacks features into a batch padded to its longest sequence: `input_ids` with the pad id, `labels`
    with -100 (ignored by the loss), `special_tokens_mask` with 1, the rest with 0, on `padding_side`. Scalar
    features become one tensor (int64, or float32 for scores)."""

    pad_token_id: int = 0
    padding_side: str = "right"

    PAD_VALUES = {"special_tokens_mask": 1, "labels": -100}

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        for key in features[0]:
            values = [f[key] for f in features]
            name = "labels" if key == "label" else key
            if _is_scalar(values[0]):
                batch[name] = torch.as_tensor(values, dtype=torch.float32 if _floats(values) else torch.long)
                continue
            fill = self.pad_token_id if key == "input_ids" else self.PAD_VALUES.get(name, 0)
            batch[name] = self._pad(values, fill)
        return batch

    def _pad(self, values: list, fill: int) -> torch.Tensor:
        nested = not _is_scalar(values[0][0]) if len(values[0]) else False
        if not nested:
            rows = [[torch.as_tensor(v, dtype=torch.long)] for v in values]
        else:  # a list of sequences per example (multiple choice)
            rows = [[torch.as_tensor(r, dtype=torch.long) for r in v] for v in values]
        width = max(len(r) for example in rows for r in example)
        choices = max(len(example) for example in rows)
        out = torch.full((len(rows), choices, width), fill, dtype=torch.long)
        for i, example in enumerate(rows):
            for j, row in enumerate(example):
                if self.padding_side == "left":
                    out[i, j, width - len(row) :] = row
                else:
                    out[i, j, : len(row)] = row
        return out if nested else out[:, 0]


def _is_scalar(value) -> bool:
    return (torch.is_tensor(value) and value.dim() == 0) or isinstance(value, (int, float))


def _floats(values: list) -> bool:
    first = values[0]
    return first.is_floating_point() if torch.is_tensor(first) else isinstance(first, float)


def make_collator(tokenizer: PreTrainedTokenizerBase, padding_side: str | None = None) -> PaddingCollator:
    """Pads each batch to its longest sequence (dynamic padding) with `tokenizer`'s pad id (its end-of-text
    id when it has no pad token) and side (or `padding_side`)."""
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id
    return PaddingCollator(0 if pad is None else pad, padding_side or tokenizer.padding_side or "right")
