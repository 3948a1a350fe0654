"""How often the quality target's test (a method's median over 5 seeds above vanilla's on at least 3 of RTE,
MRPC, CoLA, STS-B) passes for a method with a given true gain, when seeds spread as in a committed grid.

Each task's seed spread is the root mean variance over the grid's methods; seeds are drawn from normal
distributions (vanilla around 0, the method around its gain), 200,000 times, seed 0. Gains: none, the FreeLB
paper's over its own vanilla (advlm.bench.papers), and half of those.

    .venv/bin/python benchmarks/analysis/median_test_power.py [RESULTS/HARDWARE/runs/GRID]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from advlm.bench.papers import reported_gains
from advlm.tasks import get_task

TASKS = ("rte", "mrpc", "cola", "stsb")


def seed_spread(runs: list[dict]) -> dict[str, float]:
    spread = {}
    for task in TASKS:
        variances = []
        for method in {r["method"] for r in runs if r["task"] == task}:
            scores = [
                100 * r["eval"][get_task(task).primary_metric]
                for r in runs
                if (r["task"], r["method"]) == (task, method)
            ]
            variances.append(np.var(scores, ddof=1))
        spread[task] = float(np.sqrt(np.mean(variances)))
    return spread


def pass_rate(gains: dict[str, float], spread: dict[str, float], seeds: int = 5, draws: int = 200_000) -> float:
    rng = np.random.default_rng(0)
    wins = np.zeros(draws, dtype=int)
    for task in TASKS:
        vanilla = np.median(rng.normal(0.0, spread[task], (draws, seeds)), axis=1)
        method = np.median(rng.normal(gains[task], spread[task], (draws, seeds)), axis=1)
        wins += method > vanilla
    return float((wins >= 3).mean())


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/cuda-nvidia-h100-80gb-hbm3/runs/full")
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    spread = seed_spread(runs)
    print("seed spread per task (points):", {t: round(s, 2) for t, s in spread.items()})
    freelb = {t: reported_gains()["freelb"][t][1] for t in TASKS}
    for label, gains in (
        ("no gain", {t: 0.0 for t in TASKS}),
        ("the FreeLB paper's gains", freelb),
        ("half of them", {t: g / 2 for t, g in freelb.items()}),
    ):
        print(f"{label}: passes {pass_rate(gains, spread):.1%}")


if __name__ == "__main__":
    main()
