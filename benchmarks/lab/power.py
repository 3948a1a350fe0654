"""What a grid of that many seeds can tell apart: the smallest true difference a paired t-test on that many seeds
would detect with 80% power at the two-sided 5% level (the standard power calculation, exact through the
noncentral t distribution; the spread is estimated from the grid itself, so it is a guide, not a guarantee).
The papers' gains are a few points at most; whether such a gain could show at all depends on this spread."""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats


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
