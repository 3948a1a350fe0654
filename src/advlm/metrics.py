"""GLUE's official metrics: accuracy, F1 (positive class 1), Matthews correlation, Pearson and Spearman; and
macro-averaged F1 for the user's own classification data with any number of classes."""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

from advlm.tasks.classification import ClassificationTask


def accuracy(preds, labels) -> float:
    return float(np.mean(np.asarray(preds) == np.asarray(labels)))


def f1(preds, labels) -> float:
    return float(f1_score(labels, preds, pos_label=1, average="binary", zero_division=0.0))


def macro_f1(preds, labels) -> float:
    return float(f1_score(labels, preds, average="macro", zero_division=0.0))


def mcc(preds, labels) -> float:
    return float(matthews_corrcoef(labels, preds))


def pearson(preds, labels) -> float:
    return _finite(pearsonr(np.asarray(preds, dtype=float), np.asarray(labels, dtype=float))[0])


def spearman(preds, labels) -> float:
    return _finite(spearmanr(np.asarray(preds, dtype=float), np.asarray(labels, dtype=float))[0])


def _finite(x) -> float:
    """A constant prediction has no correlation; report 0 rather than NaN."""
    x = float(x)
    return 0.0 if np.isnan(x) else x


METRICS = {
    "accuracy": accuracy,
    "f1": f1,
    "macro_f1": macro_f1,
    "mcc": mcc,
    "pearson": pearson,
    "spearman": spearman,
}


def predictions(task: ClassificationTask, logits) -> np.ndarray:
    logits = np.asarray(logits)
    return logits.reshape(-1) if task.is_regression else logits.argmax(-1)


def task_metrics(task: ClassificationTask, logits, labels) -> dict[str, float]:
    """All of the task's official metrics from raw logits (or regression outputs)."""
    preds = predictions(task, logits)
    labels = np.asarray(labels).reshape(-1)
    return {name: METRICS[name](preds, labels) for name in task.metrics}
