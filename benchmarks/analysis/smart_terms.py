"""SMART's loss terms at the end of training, grid by grid, beside vanilla's training loss: does SMART fit its
training set, and which term is large? Reads the committed run JSONs (their `train_history`).

    .venv/bin/python benchmarks/analysis/smart_terms.py [RESULTS_DIR] [GRID ...]

Prints, per grid and task, medians over seeds of the last logged values: vanilla's training loss, SMART's
clean task loss, smoothness term R_s and Bregman term (0 when off), and the dev metric x 100.
Default: the H100 folder and every grid with a SMART run.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / "results" / "cuda-nvidia-h100-80gb-hbm3"


def last(history: list[dict], key: str) -> float:
    values = [h[key] for h in history if key in h]
    return values[-1] if values else 0.0


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    grids = sys.argv[2:] or sorted(p.parent.name for p in root.glob("runs/*/*-smart-s*.json"))
    for grid in dict.fromkeys(grids):
        rows = defaultdict(lambda: defaultdict(list))
        for path in sorted((root / "runs" / grid).glob("*.json")):
            run = json.loads(path.read_text())
            hist, key = run.get("train_history", []), (run["task"], run["method"])
            rows[key]["metric"].append(100 * next(iter(run["eval"].values())))
            if run["method"] == "smart":
                for term in ("task_loss", "smoothness", "bregman"):
                    rows[key][term].append(last(hist, f"adv/{term}"))
            else:
                rows[key]["task_loss"].append(last(hist, "loss"))
        args = next(
            (json.loads(p.read_text())["method_args"] for p in (root / "runs" / grid).glob("*-smart-s1.json")), {}
        )
        print(
            f"\n{grid}: SMART eps {args.get('eps')}, normalized step {args.get('normalized_step')}, bregman {args.get('bregman')}"
        )
        print("task   vanilla loss  metric | smart task loss  R_s     Bregman  metric")
        for task in sorted({t for t, _ in rows}):
            v, s = rows[(task, "vanilla")], rows[(task, "smart")]
            med = lambda d, k: statistics.median(d[k]) if d[k] else float("nan")  # noqa: E731
            print(
                f"{task:6s} {med(v, 'task_loss'):12.3f} {med(v, 'metric'):7.2f} | {med(s, 'task_loss'):15.3f} "
                f"{med(s, 'smoothness'):7.4f} {med(s, 'bregman'):8.4f} {med(s, 'metric'):7.2f}"
            )


if __name__ == "__main__":
    main()
