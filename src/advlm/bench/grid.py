"""The quality grid: tasks x methods x seeds, one `advlm train` run each, one JSON per run.

A run's JSON (`runs/<grid>/<task>-<method>-s<seed>.json`) is its metrics.json plus the environment (hardware,
git commit, package versions) and the grid it belongs to. A run whose JSON exists with the settings the grid
asks for (and the method's current defaults) is skipped, so an interrupted grid resumes where it stopped; a
changed setting or default reruns its runs. A run another grid of the same results folder already made with
exactly these settings (say, vanilla's runs in a grid that varies only another method) is copied, not rerun.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from advlm.bench.environment import describe
from advlm.config import TrainConfig
from advlm.errors import AdvlmError


@dataclass
class Grid:
    name: str
    tasks: list[str]
    methods: list[str]
    seeds: list[int]
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig settings shared by every run
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> TrainConfig overrides
    method_args: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> hyper-parameters
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> TrainConfig overrides
    per_task_method_args: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # task -> method -> args
    robustness: bool = False

    def only(
        self, tasks: list[str] | None = None, methods: list[str] | None = None, seeds: list[int] | None = None
    ) -> Grid:
        """The slice of this grid with only these tasks, methods and seeds (None keeps all): the same settings,
        so its runs are the grid's own and a later run of the whole grid skips them."""
        picked = {}
        for name, chosen in (("tasks", tasks), ("methods", methods), ("seeds", seeds)):
            allowed = getattr(self, name)
            if chosen is None:
                continue
            unknown = [str(c) for c in chosen if c not in allowed]
            if unknown or not chosen:
                raise AdvlmError(
                    f"grid '{self.name}' has no {name[:-1]} {', '.join(unknown) or '(none given)'}; "
                    f"its {name}: {', '.join(map(str, allowed))}"
                )
            picked[name] = [a for a in allowed if a in chosen]
        return dataclasses.replace(self, **picked)

    def settings(self, task: str, method: str, seed: int) -> dict[str, Any]:
        """Everything the grid fixes for one run (TrainConfig fields)."""
        return {
            "task": task,
            "method": method,
            "seed": seed,
            "method_args": {
                **self.method_args.get(method, {}),
                **self.per_task_method_args.get(task, {}).get(method, {}),
            },
            "robustness": self.robustness,
            **self.train,
            **self.per_task.get(task, {}),
            **self.per_method.get(method, {}),
        }


GRIDS_DIR = Path("benchmarks/grids")  # where `--grid NAME` looks, from the working directory


def grid_names(folder: Path = GRIDS_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_grid(name_or_path: str, folder: Path = GRIDS_DIR) -> Grid:
    """The grid of a YAML file (a path, or NAME for `benchmarks/grids/NAME.yaml` under the working directory):
    tasks, methods, seeds, and optionally train, per_task, method_args, per_method, per_task_method_args,
    robustness (the fields of `Grid`). Its name is the file's stem; its first comment lines say what it asks."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = folder / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(grid_names(folder)) or f"none: no {folder}/ under {Path.cwd()}"
        raise AdvlmError(f"no grid file {path}; pass a grid YAML file, or the name of one in {folder}/ ({known})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise AdvlmError(f"grid file {path} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except yaml.YAMLError as e:
        raise AdvlmError(f"grid file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    allowed = {f.name for f in dataclasses.fields(Grid)} - {"name"}
    unknown = sorted(set(data) - allowed) if isinstance(data, dict) else ["(not a mapping)"]
    missing = sorted({"tasks", "methods", "seeds"} - set(data)) if not unknown else []
    if unknown or missing:
        problem = f"unknown keys {', '.join(unknown)}" if unknown else f"missing {', '.join(missing)}"
        raise AdvlmError(f"grid file {path}: {problem}; its keys are {', '.join(sorted(allowed))}")
    for key, kind in (("tasks", str), ("methods", str), ("seeds", int)):
        values = data[key]
        if not isinstance(values, list) or not values or not all(type(v) is kind for v in values):
            what = "integers" if kind is int else "names"
            raise AdvlmError(f"grid file {path}: {key} must be a non-empty list of {what}, got {values!r}")
    for key in set(data) - {"tasks", "methods", "seeds"}:
        kind = bool if key == "robustness" else dict
        if data[key] is not None and not isinstance(data[key], kind):
            what = "true or false" if kind is bool else "a mapping"
            raise AdvlmError(f"grid file {path}: {key} must be {what}, got {data[key]!r}")
    return Grid(name=path.stem, **data)


def run_name(task: str, method: str, seed: int) -> str:
    return f"{task}-{method}-s{seed}"


def run_grid(
    grid: Grid,
    results: Path,
    data_dir: str | None = None,
    model: str | None = None,
    progress: bool = True,
    jobs: int = 1,
) -> list[Path]:
    """Run every missing (task, method, seed) of `grid`; returns the JSON paths of all its runs.

    Runs go seed by seed (an interrupted grid holds whole seeds). `jobs` > 1 runs that many at once in
    worker processes: a small model leaves a GPU mostly idle between kernel launches, so several runs
    share it well. A failed run does not stop the others; the failures are raised together at the end.
    """
    runs_dir = results / "runs" / grid.name
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo = [(t, m, s) for s in grid.seeds for t in grid.tasks for m in grid.methods]
    paths = [runs_dir / f"{run_name(*spec)}.json" for spec in todo]
    missing = missing_runs(grid, results, todo, paths)
    bar = tqdm(total=len(todo), initial=len(todo) - len(missing), desc=f"bench {grid.name}", disable=not progress)
    failures = []
    for spec, error in outcomes(grid, missing, data_dir, model, jobs, bar):
        if error:
            failures.append(f"{run_name(*spec)}: {error}")
            tqdm.write(f"run {run_name(*spec)} failed: {error}")
        bar.update()
    bar.close()
    if failures:
        raise AdvlmError(f"{len(failures)} of {len(missing)} runs failed:\n  " + "\n  ".join(failures))
    return paths


def missing_runs(grid: Grid, results: Path, todo: list, paths: list[Path]) -> list[tuple[tuple, Path]]:
    """The (spec, path) pairs still to run: not done with the grid's settings, nor copied from another grid."""
    missing = [(spec, path) for spec, path in zip(todo, paths) if not is_done(path, grid.settings(*spec))]
    reused = [path.name for spec, path in missing if reuse_run(results / "runs", grid, spec, path)]
    if reused:
        tqdm.write(f"copied {len(reused)} run(s) other grids made with the same settings: {', '.join(reused)}")
        missing = [(spec, path) for spec, path in missing if path.name not in reused]
    stale = [path.name for _, path in missing if path.exists()]
    if stale:
        tqdm.write(
            f"rerunning {len(stale)} run(s) whose settings or method defaults have changed since: {', '.join(stale)}"
        )
    return missing


def outcomes(grid: Grid, missing: list, data_dir, model, jobs: int, bar):
    """Yields (spec, error or None) for each missing run as it finishes, `jobs` at a time."""
    env = describe("cuda" if _cuda() else "cpu")
    if jobs <= 1:
        for spec, path in missing:
            bar.set_postfix_str(run_name(*spec))
            yield spec, run_one(grid, spec, path, data_dir, model, env)
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked children
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_limit_threads, initargs=(threads,)) as pool:
        futures = {pool.submit(run_one, grid, spec, path, data_dir, model, env): spec for spec, path in missing}
        for future in as_completed(futures):
            try:
                error = future.result()
            except Exception as e:  # the worker process itself died
                error = f"{type(e).__name__}: {e}"
            yield futures[future], error


def is_done(path: Path, settings: dict[str, Any]) -> bool:
    """A run counts as done when its JSON exists and was run with the settings the grid now asks for."""
    if not path.exists():
        return False
    from advlm.methods import build_method

    record = json.loads(path.read_text())
    config = record.get("config", {})
    if not all(config.get(key) == value for key, value in settings.items()):
        return False
    # the method's resolved hyper-parameters too, so that a changed default reruns; a hyper-parameter the
    # record predates counts as having had its current default
    recorded = record.get("method_args", {})
    resolved = build_method(settings["method"], **settings["method_args"]).config()
    return all(recorded.get(key, value) == value for key, value in resolved.items())


def reuse_run(runs: Path, grid: Grid, spec: tuple[str, str, int], path: Path) -> bool:
    """Copy into `path` the run of the same name another grid under `runs` made with `grid`'s settings for
    `spec`; the copy belongs to `grid` and records where it came from. False when there is none."""
    settings = grid.settings(*spec)
    for other in sorted(runs.glob(f"*/{path.name}")):
        if other != path and is_done(other, settings):
            record = json.loads(other.read_text())
            record["copied_from"] = str(other.relative_to(runs))
            record["grid"] = asdict(grid)
            _write_record(path, record)
            return True
    return False


def run_one(grid: Grid, spec: tuple[str, str, int], path: Path, data_dir, model, env: dict) -> str | None:
    """Train one run of the grid and write its JSON; returns an error message instead of raising."""
    from advlm.training import run_training

    try:
        with tempfile.TemporaryDirectory(prefix="advlm-bench-") as tmp:
            cfg = TrainConfig(
                model=model,
                data_dir=data_dir,
                output_dir=str(Path(tmp) / "run"),
                progress=False,
                **grid.settings(*spec),
            )
            metrics = run_training(cfg)
    except Exception as e:
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    _write_record(path, {**metrics, "grid": asdict(grid), "config": cfg.to_dict(), "environment": env})
    return None


def _write_record(path: Path, record: dict[str, Any]) -> None:
    partial = path.with_suffix(".json.partial")  # a run killed while writing leaves no JSON to skip
    partial.write_text(json.dumps(record, indent=2, default=float))
    partial.replace(path)


def _limit_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
