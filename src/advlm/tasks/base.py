"""What every task kind provides: its files, its model head, its tokenization and collation, its metric.

A kind (one module each: classification, token classification, multiple choice, question answering, causal
LM) subclasses `TaskKind`; a task is an instance (GLUE's RTE, CoNLL-2003, the user's own files). The training
loop, `advlm eval` and the robustness measure see a task only through this interface.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import nn

from advlm.data.collate import TokenizedDataset, make_collator
from advlm.data.loading import check_data_file, resolve_data_dir
from advlm.errors import AdvlmError


@dataclass
class TaskKind:
    """A task: `name`, where its files lie (`folder` under the data directory, one file name per split) and
    the kind's behaviour (class attributes and methods)."""

    name: str
    folder: str | None = None  # under the data directory; None for the user's own files
    splits: dict[str, str] = field(default_factory=dict)  # split -> file name (with or without suffix)

    kind: ClassVar[str] = ""
    auto_class: ClassVar[str] = ""  # the transformers Auto class of the head
    metrics: ClassVar[tuple[str, ...]] = ()
    greater_is_better: ClassVar[bool] = True
    suffixes: ClassVar[tuple[str, ...]] = ("", ".jsonl")

    @property
    def primary_metric(self) -> str:
        """The metric that picks the best checkpoint (the first official one)."""
        return self.metrics[0]

    # --- files -----------------------------------------------------------------------------------------
    def find_file(self, split: str, data_dir: str | os.PathLike | None = None) -> Path:
        if split not in self.splits:
            have = ", ".join(self.splits) or "none: pass --train-file/--eval-file"
            raise AdvlmError(f"task '{self.name}' has no '{split}' split (it has: {have})")
        root = resolve_data_dir(data_dir)
        stem = self.splits[split]
        folders = [root / self.folder, root / Path(self.folder).name] if self.folder else [root]
        for folder in folders:
            for suffix in self.suffixes:
                if (folder / f"{stem}{suffix}").is_file():
                    return folder / f"{stem}{suffix}"
        kinds = "/".join(s for s in self.suffixes if s) if "." not in stem else ""
        raise AdvlmError(
            f"missing data file for {self.name} {split}: expected {folders[0] / stem}{f' ({kinds})' if kinds else ''}; "
            "put the files there or pass --data-dir"
        )

    def load(self, split: str, data_dir: str | os.PathLike | None = None, path: str | os.PathLike | None = None):
        """The examples of `split` ("train", "dev", "test"); `path` overrides the file in the data directory."""
        file = check_data_file(Path(path) if path is not None else self.find_file(split, data_dir))
        examples = self.read(file)
        if not examples:
            raise AdvlmError(f"data file {file} has no examples")
        return examples

    def read(self, file: Path) -> list:
        raise NotImplementedError

    # --- model -----------------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        """What `from_pretrained` needs to size the head (number and names of labels)."""
        return {}

    def check_config(self, config) -> None:
        """Refuse, before loading its weights, a model that cannot serve this kind (causal LM: an encoder)."""

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Anything the kind adds to a loaded model (multiple choice masks missing choices)."""
        return model

    def adopt_model(self, config) -> None:
        """Evaluating a saved model: take what the task learns from its training file (label names) from the
        model's config instead; an error when the model is not for this task."""

    # --- data ------------------------------------------------------------------------------------------
    def encode(self, tokenizer, examples: Sequence, max_length: int) -> TokenizedDataset:
        raise NotImplementedError

    def collator(self, tokenizer) -> Callable:
        return make_collator(tokenizer)

    # --- evaluation ------------------------------------------------------------------------------------
    def reduce(self, logits, labels):
        """Per batch, what scoring needs of the model's outputs (`preprocess_logits_for_metrics`): the outputs
        as they are unless a kind needs less (token classes, per-example log-likelihoods)."""
        return logits

    def align(self, predictions, config):
        """Predictions of a model whose classes are ordered otherwise, in the task's order (identity)."""
        return predictions

    def score(self, predictions, label_ids, dataset: TokenizedDataset) -> dict[str, float]:
        raise NotImplementedError


def first(x):
    """The first array of a tuple of outputs, or the array itself."""
    return x[0] if isinstance(x, (tuple, list)) else x


def as_numpy(x) -> np.ndarray:
    return np.asarray(first(x))
