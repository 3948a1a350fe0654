"""The quality grid: tasks x methods x seeds, one `advlm train` run each, one JSON per run.

A run's JSON is its metrics.json plus the environment (hardware, git commit, package versions) and the
grid it belongs to. Runs whose JSON exists are skipped, so an interrupted grid resumes where it stopped.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from advlm.bench.environment import describe
from advlm.config import TrainConfig


@dataclass
class Grid:
    name: str
    tasks: list[str]
    methods: list[str]
    seeds: list[int]
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig settings shared by every run
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> TrainConfig overrides
    method_args: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> hyper-parameters
    robustness: bool = False


QUALITY_METHODS = ["vanilla", "fgm", "pgd", "freeat", "freelb", "smart", "textat"]

GRIDS = {
    # Under 20 minutes on 2 CPU cores: SST-2's short sentences, a 2,000-example slice, one epoch, 2 seeds.
    # (CoLA at this budget left MiniLM predicting one class, MCC 0 for every method: no signal.)
    "quick": Grid(
        name="quick",
        tasks=["sst2"],
        methods=["vanilla", "fgm", "freelb", "smart", "textat"],
        seeds=[1, 2],
        train=dict(max_train_samples=2000, epochs=1, lr=1e-4, batch_size=32, max_length=64),
    ),
    # The papers' comparison on the default model: 4 tasks, every method, 5 seeds (a GPU job).
    "full": Grid(
        name="full",
        tasks=["rte", "mrpc", "cola", "stsb"],
        methods=QUALITY_METHODS,
        seeds=[1, 2, 3, 4, 5],
        train=dict(epochs=3, lr=5e-5, batch_size=32, max_length=128),
        method_args={"freeat": {"steps": 2}},
        robustness=True,
    ),
}


def run_name(task: str, method: str, seed: int) -> str:
    return f"{task}-{method}-s{seed}"


def run_grid(
    grid: Grid, results: Path, data_dir: str | None = None, model: str | None = None, progress: bool = True
) -> list[Path]:
    """Run every missing (task, method, seed) of `grid`; returns the JSON paths of all its runs."""
    from advlm.training import run_training

    runs_dir = results / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    env = describe("cuda" if _cuda() else "cpu")
    todo = [(t, m, s) for t in grid.tasks for m in grid.methods for s in grid.seeds]
    paths = []
    bar = tqdm(todo, desc=f"bench {grid.name}", disable=not progress)
    for task, method, seed in bar:
        path = runs_dir / f"{run_name(task, method, seed)}.json"
        paths.append(path)
        if path.exists():
            continue
        bar.set_postfix_str(run_name(task, method, seed))
        settings = {**grid.train, **grid.per_task.get(task, {})}
        with tempfile.TemporaryDirectory(prefix="advlm-bench-") as tmp:
            cfg = TrainConfig(
                task=task,
                method=method,
                method_args=dict(grid.method_args.get(method, {})),
                seed=seed,
                model=model,
                data_dir=data_dir,
                output_dir=str(Path(tmp) / "run"),
                robustness=grid.robustness,
                progress=False,
                **settings,
            )
            metrics = run_training(cfg)
            shutil.rmtree(Path(tmp) / "run", ignore_errors=True)
        record = {**metrics, "grid": asdict(grid), "config": cfg.to_dict(), "environment": env}
        path.write_text(json.dumps(record, indent=2, default=float))
    return paths


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
