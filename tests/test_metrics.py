import math

import numpy as np
import pytest

from advlm.metrics import accuracy, f1, mcc, pearson, spearman, task_metrics
from advlm.tasks import get_task


def test_accuracy_and_f1_known_values():
    preds, labels = [1, 0, 1, 1, 0, 1], [1, 0, 0, 1, 1, 1]
    assert accuracy(preds, labels) == pytest.approx(4 / 6)
    # tp=3, fp=1, fn=1 -> precision 3/4, recall 3/4
    assert f1(preds, labels) == pytest.approx(0.75)


def test_matthews_correlation_known_value():
    preds, labels = [1, 1, 0, 0], [1, 0, 0, 0]
    # tp=1 tn=2 fp=1 fn=0: (1*2 - 1*0) / sqrt(2*1*3*2)
    assert mcc(preds, labels) == pytest.approx(2 / math.sqrt(12))
    assert mcc([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)


def test_correlations_known_values():
    x = [1.0, 2.0, 3.0, 4.0]
    assert pearson(x, [2.0, 4.0, 6.0, 8.0]) == pytest.approx(1.0)
    assert pearson(x, [1.0, 3.0, 2.0, 4.0]) == pytest.approx(0.8)
    assert spearman(x, [1.0, 4.0, 9.0, 16.0]) == pytest.approx(1.0)
    assert spearman(x, [4.0, 3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert pearson(x, [3.0, 3.0, 3.0, 3.0]) == 0.0  # constant: no correlation, not NaN


def test_task_metrics_use_argmax_and_the_official_set():
    logits = np.array([[0.1, 0.9], [2.0, -1.0], [0.0, 1.0]])
    assert task_metrics(get_task("mrpc"), logits, [1, 0, 0]) == {
        "accuracy": pytest.approx(2 / 3),
        "f1": pytest.approx(2 / 3),
    }
    assert set(task_metrics(get_task("cola"), logits, [1, 0, 1])) == {"mcc"}
    scores = task_metrics(get_task("stsb"), np.array([[1.0], [2.0], [3.0]]), [1.0, 2.5, 2.9])
    assert set(scores) == {"pearson", "spearman"} and scores["spearman"] == pytest.approx(1.0)
