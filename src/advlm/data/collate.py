"""Tokenize once up front; pad per batch (dynamic padding) with the tokenizer's collator."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from advlm.data.loading import Example


class TokenizedDataset(torch.utils.data.Dataset):
    """Pre-tokenized examples: a list of dicts of python int lists, plus `labels` when known."""

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
        item = {key: values[i] for key, values in encoded.items()}
        if ex.label is not None:
            item["labels"] = ex.label
        features.append(item)
    return TokenizedDataset(features)


def make_collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
    """Pads each batch to its longest sequence (dynamic padding)."""
    return DataCollatorWithPadding(tokenizer, return_tensors="pt")
