"""Tokenize once up front into tensors; pad per batch (dynamic padding) with tensor copies only.

A training step's data work is then one small copy per example and key: no Python work over tokens and no
`tokenizer.pad` (the Hugging Face collator's per-batch Python costs milliseconds, which a small model on a
GPU cannot hide).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from advlm.data.loading import Example


class TokenizedDataset(torch.utils.data.Dataset):
    """Pre-tokenized examples: a list of dicts of 1-D int64 tensors (or int lists), plus `labels` when known."""

    def __init__(self, features: list[dict]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]


def tokenize_examples(
    tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example], max_length: int = 128
) -> TokenizedDataset:
    columns = list(zip(*(ex.texts for ex in examples)))
    encoded = tokenizer(*columns, truncation=True, max_length=max_length)
    features = []
    for i, ex in enumerate(examples):
        item = {key: torch.tensor(values[i], dtype=torch.long) for key, values in encoded.items()}
        if ex.label is not None:
            item["labels"] = ex.label
        features.append(item)
    return TokenizedDataset(features)


@dataclass
class PaddingCollator:
    """Stacks features into a batch padded to its longest sequence: `input_ids` with the pad id, the other
    token columns with their pad values (`special_tokens_mask` with 1, the rest with 0), on the tokenizer's
    padding side; `labels` become one tensor (int64 for classes, float32 for scores)."""

    pad_token_id: int = 0
    padding_side: str = "right"

    PAD_VALUES = {"special_tokens_mask": 1}

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        for key in features[0]:
            values = [f[key] for f in features]
            if key in ("labels", "label"):
                batch["labels"] = torch.as_tensor(values, dtype=torch.float32 if _floats(values) else torch.long)
                continue
            rows = [torch.as_tensor(v, dtype=torch.long) for v in values]
            fill = self.pad_token_id if key == "input_ids" else self.PAD_VALUES.get(key, 0)
            out = torch.full((len(rows), max(len(r) for r in rows)), fill, dtype=torch.long)
            for i, row in enumerate(rows):
                if self.padding_side == "left":
                    out[i, out.size(1) - len(row) :] = row
                else:
                    out[i, : len(row)] = row
            batch[key] = out
        return batch


def _floats(values: list) -> bool:
    first = values[0]
    return first.is_floating_point() if torch.is_tensor(first) else isinstance(first, float)


def make_collator(tokenizer: PreTrainedTokenizerBase) -> PaddingCollator:
    """Pads each batch to its longest sequence (dynamic padding) with `tokenizer`'s pad id and side."""
    pad = tokenizer.pad_token_id
    return PaddingCollator(0 if pad is None else pad, tokenizer.padding_side or "right")
