"""Sentence(-pair) classification and regression: GLUE's tasks (`advlm.tasks.glue`) and the user's own files.

Files: GLUE's TSVs (read with quoting off, as RTE and STS-B hold unbalanced quotes; a byte-order mark
stripped, as MRPC's header has one; CoLA has no header row), or `.jsonl`/`.csv`/`.tsv` with a header, holding
the task's text fields and its label field. GLUE labels may be a label name or an integer id; the labels of
the user's own classification data are read from the training file (any number of classes, sorted, numbers
numerically) and kept in the saved model's `id2label`. Model: `AutoModelForSequenceClassification`.
Metrics: GLUE's official ones (accuracy, F1 of class 1, Matthews correlation, Pearson, Spearman).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from advlm.data.collate import TokenizedDataset
from advlm.data.loading import read_lines, read_records
from advlm.errors import AdvlmError
from advlm.tasks.base import TaskKind, as_numpy


@dataclass(frozen=True)
class Example:
    texts: tuple[str, ...]
    label: int | float | None  # class id, regression score, or None when unlabelled


@dataclass
class ClassificationTask(TaskKind):
    """A classification (or, with no label names, regression) task over one or two text fields."""

    text_fields: tuple[str, ...] = ("text",)
    label_names: tuple[str, ...] | None = None  # None: regression (or labels still to be read)
    metrics: tuple[str, ...] = ("accuracy",)
    label_field: str = "label"
    tsv_columns: dict[str, str] | None = None  # GLUE: canonical name (and "label") -> TSV header name
    tsv_header: tuple[str, ...] | None = None  # GLUE files without a header row (CoLA)
    learn_labels: bool = False  # the label names come from the training file (the user's own data)
    score_range: tuple[float, float] | None = None  # regression scores outside it are refused

    auto_class = "AutoModelForSequenceClassification"
    suffixes = (".tsv", ".jsonl", ".json", ".csv")

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "regression" if self.is_regression else "classification"

    @property
    def is_regression(self) -> bool:
        return self.label_names is None and not self.learn_labels

    @property
    def num_labels(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)

    # --- files -----------------------------------------------------------------------------------------
    def load(self, split: str, data_dir=None, path=None) -> list[Example]:
        rows = super().load(split, data_dir, path)
        if self.learn_labels and self.label_names is None:
            if split != "train":
                raise AdvlmError(f"{self.name}: the label names are read from the training file; load it first")
            self.label_names = sorted_labels(str(label).strip() for _, _, label in rows)
            if len(self.label_names) < 2:
                raise AdvlmError(
                    f"{self.name}: the training data hold only one class ({', '.join(self.label_names)}); a "
                    "classifier needs examples of two or more"
                )
        return [Example(texts, self.parse_label(label, where)) for where, texts, label in rows]

    def read(self, file: Path) -> list[tuple[str, tuple[str, ...], Any]]:
        """(where, texts, raw label) per record."""
        if file.suffix.lower() == ".tsv" and self.tsv_columns is not None:
            records = self._read_glue_tsv(file)
        else:
            records = read_records(file)
        out = []
        for line, row in records:
            where = f"{file}:{line}"
            missing = [name for name in self.text_fields if row.get(name) is None]
            if missing:
                raise AdvlmError(
                    f"{where}: missing field(s) {', '.join(missing)} for task '{self.name}' "
                    f"(expected {', '.join(self.text_fields)} and {self.label_field}; --text-fields names others)"
                )
            bad = [name for name in self.text_fields if not isinstance(row[name], (str, int, float))]
            if bad:
                raise AdvlmError(f"{where}: field {bad[0]} must be text, not {type(row[bad[0]]).__name__}")
            label = row.get(self.label_field)
            if label is None or (isinstance(label, str) and not label.strip()):
                raise AdvlmError(
                    f"{where}: no '{self.label_field}' field; every example needs a label "
                    "(--label-field names the field that holds it)"
                )
            if isinstance(label, bool):
                raise AdvlmError(
                    f"{where}: label {str(label).lower()} is a JSON true/false; write the class as a name "
                    '("yes") or an id (1)'
                )
            out.append((where, tuple(str(row[name]) for name in self.text_fields), label))
        return out

    def _read_glue_tsv(self, file: Path) -> list[tuple[int, dict]]:
        lines = read_lines(file)
        start, header = 0, self.tsv_header
        if header is None:
            header, start = tuple(lines[0].split("\t")), 1
            wanted = [self.tsv_columns[name] for name in self.text_fields]
            missing = [c for c in wanted if c not in header]
            if missing:
                raise AdvlmError(
                    f"{file} does not look like {self.name} TSV: missing column(s) {', '.join(missing)} "
                    f"in header [{', '.join(header)}]; is it the right file for task '{self.name}'?"
                )
        rows = []
        for i, line in enumerate(lines[start:], start=start + 1):
            if not line.strip():
                continue
            cells = line.split("\t")
            if len(cells) < len(header) - 1 or (self.tsv_header is not None and len(cells) != len(header)):
                raise AdvlmError(
                    f"{file}:{i}: expected {len(header)} tab-separated columns, found {len(cells)}; "
                    f"is it the right file for task '{self.name}'?"
                )
            row = dict(zip(header, cells))
            rows.append((i, {name: row.get(col) for name, col in self.tsv_columns.items()}))
        return rows

    def parse_label(self, value, where: str) -> int | float:
        """A label name or (GLUE) integer id -> class id; a finite score for regression."""
        if self.is_regression:
            try:
                score = float(value)
            except (TypeError, ValueError):
                raise AdvlmError(f"{where}: label {value!r} is not a number; {self.name} labels are scores") from None
            low, high = self.score_range or (-math.inf, math.inf)
            if not math.isfinite(score) or not low <= score <= high:
                span = f" in [{low:g}, {high:g}]" if self.score_range else ""
                raise AdvlmError(f"{where}: score {value!r} is not a finite number{span}; fix the label")
            return score
        names = self.label_names
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int) and not self.learn_labels and 0 <= value < len(names):
            return value
        if str(value).strip() in names:
            return names.index(str(value).strip())
        ids = "" if self.learn_labels else f" (or an integer id 0..{len(names) - 1})"
        raise AdvlmError(f"{where}: label {value!r} is not a {self.name} label; use one of {', '.join(names)}{ids}")

    # --- model -----------------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "num_labels": self.num_labels,
            "problem_type": "regression" if self.is_regression else "single_label_classification",
        }
        if self.label_names is not None:
            kwargs["id2label"] = dict(enumerate(self.label_names))
            kwargs["label2id"] = {name: i for i, name in enumerate(self.label_names)}
        return kwargs

    def adopt_model(self, config) -> None:
        if self.learn_labels and self.label_names is None:
            id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
            self.label_names = tuple(id2label[i] for i in sorted(id2label))
        regression = getattr(config, "problem_type", None) == "regression" or getattr(config, "num_labels", 0) == 1
        if regression != self.is_regression or (not regression and config.num_labels != self.num_labels):
            raise AdvlmError(
                f"the model predicts {config.num_labels} output(s) "
                f"({'a score' if regression else 'classes'}); task {self.name} needs "
                f"{'a score' if self.is_regression else f'{self.num_labels} classes'}: pass a model fine-tuned for it"
            )

    # --- data and evaluation ---------------------------------------------------------------------------
    def encode(self, tokenizer, examples, max_length: int) -> TokenizedDataset:
        return tokenize_examples(tokenizer, examples, max_length)

    def align(self, predictions, config):
        if self.is_regression:
            return predictions
        return reorder_logits(as_numpy(predictions), config, self)

    def score(self, predictions, label_ids, dataset=None) -> dict[str, float]:
        from advlm.metrics import task_metrics

        return task_metrics(self, as_numpy(predictions), as_numpy(label_ids))


def sorted_labels(values) -> tuple[str, ...]:
    """The distinct label names, sorted (numerically when every one is a number)."""
    names = set(values)
    try:
        return tuple(sorted(names, key=float))
    except ValueError:
        return tuple(sorted(names))


def tokenize_examples(tokenizer, examples, max_length: int = 128) -> TokenizedDataset:
    """Each example's text (pair) as token ids, truncated to `max_length`, with its label when known."""
    columns = list(zip(*(ex.texts for ex in examples)))
    encoded = tokenizer(*columns, truncation=True, max_length=max_length)
    features = []
    for i, ex in enumerate(examples):
        item = {key: torch.tensor(values[i], dtype=torch.long) for key, values in encoded.items()}
        if ex.label is not None:
            item["labels"] = ex.label
        features.append(item)
    return TokenizedDataset(features)


def output_order(config, task: ClassificationTask) -> list[int]:
    """For each of the task's labels, the model output that predicts it (identity for generic LABEL_i)."""
    label2id = {str(k): int(v) for k, v in (getattr(config, "label2id", None) or {}).items()}
    if task.label_names and all(name in label2id for name in task.label_names):
        return [label2id[name] for name in task.label_names]
    return list(range(task.num_labels))


def reorder_logits(logits: np.ndarray, config, task: ClassificationTask) -> np.ndarray:
    return np.asarray(logits)[:, output_order(config, task)]
