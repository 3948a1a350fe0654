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
    return _correlation(pearsonr, preds, labels)


def spearman(preds, labels) -> float:
    return _correlation(spearmanr, preds, labels)


def _correlation(statistic, preds, labels) -> float:
    """A correlation; NaN when a prediction is not finite (a diverged model is never scored as a number),
    0 when the predictions or the labels are constant (no correlation, as the Matthews coefficient reports it)."""
    preds, labels = np.asarray(preds, dtype=float), np.asarray(labels, dtype=float)
    if not np.isfinite(preds).all():
        return float("nan")
    if preds.size < 2 or np.ptp(preds) == 0 or np.ptp(labels) == 0:
        return 0.0
    return float(statistic(preds, labels)[0])


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
    """All of the task's official metrics from raw logits (or regression outputs); NaN for every metric when
    an output is not finite (NaN logits would otherwise argmax to class 0 and score like a model)."""
    if not np.isfinite(np.asarray(logits, dtype=float)).all():
        return {name: float("nan") for name in task.metrics}
    preds = predictions(task, logits)
    labels = np.asarray(labels).reshape(-1)
    return {name: METRICS[name](preds, labels) for name in task.metrics}
