"""Each method against vanilla on the same seeds, and a median's interval.

A seed fixes the classifier head's draw, dropout and data order, so a method's score minus vanilla's on the
same seed removes the part of the spread both runs share. From those differences: a 95% confidence interval
for the mean difference (Student's t).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from advlm.tasks import get_task


def seed_differences(runs: list[dict]) -> dict[tuple[str, str], np.ndarray]:
    """(task, method) -> the method's primary dev metric x 100 minus vanilla's, one entry per seed both ran,
    in seed order. Methods without vanilla on the task are left out."""
    score = {(r["task"], r["method"], r["seed"]): 100 * r["eval"][get_task(r["task"]).primary_metric] for r in runs}
    out = {}
    for task, method in dict.fromkeys((t, m) for (t, m, _) in score if m != "vanilla"):
        seeds = sorted(s for (t, m, s) in score if (t, m) == (task, method) and (task, "vanilla", s) in score)
        if seeds:
            out[(task, method)] = np.array([score[(task, method, s)] - score[(task, "vanilla", s)] for s in seeds])
    return out


def confidence_interval(diffs: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The t interval for the mean difference (needs 2 seeds; a constant difference gives a zero-width one)."""
    mean, half = float(diffs.mean()), 0.0
    if np.ptp(diffs) > 1e-9:
        half = float(stats.t.ppf(0.5 + level / 2, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs)))
    return mean - half, mean + half


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free interval for the median of `values`: the order statistics x(j) and x(n+1-j), j the
    binomial(n, 1/2) quantile at (1 - level) / 2, which cover the true median with probability at least `level`.
    None when there are too few values for one (fewer than 6 at 95%)."""
    j = int(stats.binom.ppf((1 - level) / 2, len(values), 0.5))
    if j < 1:
        return None
    ordered = sorted(values)
    return ordered[j - 1], ordered[len(values) - j]
