"""Each method against vanilla on the same seeds, and what a grid of that many seeds can tell apart.

A seed fixes the classifier head's draw, dropout and data order, so a method's score minus vanilla's on the
same seed removes the part of the spread both runs share. From those differences: a 95% confidence interval
for the mean difference (Student's t), and the smallest true difference a paired t-test on that many seeds
would detect with 80% power at the two-sided 5% level (the standard power calculation, exact through the
noncentral t distribution; the spread is estimated from the grid itself, so it is a guide, not a guarantee).
Why it matters here: the quality target compares medians over 5 seeds, and the papers' gains are a few
points at most; whether such a gain could show at all depends on this spread.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

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


def detectable_difference(sd: float, seeds: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest true mean difference that a two-sided paired t-test at `alpha` on `seeds` seeds detects
    with probability `power`, when the per-seed differences spread with standard deviation `sd`."""
    if seeds < 2 or sd <= 0:
        raise ValueError(f"needs 2 or more seeds and a positive spread, got {seeds} seeds and sd {sd}")
    df, critical = seeds - 1, stats.t.ppf(1 - alpha / 2, seeds - 1)

    def shortfall(effect: float) -> float:
        shift = effect / sd * np.sqrt(seeds)
        wrong_side = stats.nct.cdf(-critical, df, shift)  # scipy gives NaN where it is vanishingly small
        return stats.nct.sf(critical, df, shift) + np.nan_to_num(wrong_side) - power

    return float(optimize.brentq(shortfall, 1e-9 * sd, 200 * sd / np.sqrt(seeds)))


def pooled_sd(differences: list[np.ndarray]) -> float:
    """The spread of per-seed differences on one task, pooled over methods (root of the mean variance)."""
    return float(np.sqrt(np.mean([d.var(ddof=1) for d in differences])))


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free interval for the median of `values`: the order statistics x(j) and x(n+1-j), j the
    binomial(n, 1/2) quantile at (1 - level) / 2, which cover the true median with probability at least `level`.
    None when there are too few values for one (fewer than 6 at 95%)."""
    j = int(stats.binom.ppf((1 - level) / 2, len(values), 0.5))
    if j < 1:
        return None
    ordered = sorted(values)
    return ordered[j - 1], ordered[len(values) - j]
