"""The benchmark's report: plots per hardware folder and one Markdown page, generated from the JSON files.

Per hardware: a short verdict, every grid's quality in one table (median [min, max] over seeds, each method
paired with vanilla on the same seeds), robustness where measured, each cost file's table, links to the plots
and to the folder's hand-written notes.md. A `Page` adds what a project wants beside that (this repository's
lab adds the papers' numbers and its own cost columns: benchmarks/report.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from advlm.bench.paired import confidence_interval, seed_differences
from advlm.bench.tables import (
    Annotate,
    Column,
    by_grid,
    by_task_method,
    common_seeds,
    cost_failures,
    cost_rows,
    load_runs,
    markdown,
    medians,
    ordered_methods,
    outdated_defaults_note,
    overheads,
    quality_rows,
    robustness_rows,
    score,
    step_notes,
)
from advlm.bench.value import value_plot, value_rows, value_table


@dataclass
class Page:
    """What a report adds to the standard tables: more of each paired cell, more cost columns, notes under a
    cost table, notes under a grid's settings, and sections at the end."""

    annotate: Annotate | None = None
    cost_columns: list[Column] = field(default_factory=list)
    cost_notes: Callable[[dict], list[str]] = lambda cost: []
    grid_notes: Callable[[list[dict]], list[str]] = lambda runs: []
    closing: list[str] = field(default_factory=list)


def plots(runs: list[dict], cost: dict | list[dict] | None, out: Path) -> list[Path]:
    """In `out`: quality-<grid>.png per grid (every seed's score per task and method, a bar at the median),
    value-<grid>.png (quality per cost, from every cost file given) and cost.png (seconds per optimizer step
    per kind, the first cost file's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    for grid, grid_runs in by_grid(runs).items():
        kept, _ = common_seeds(grid_runs)
        groups, methods = by_task_method(kept), ordered_methods(kept)
        tasks = list(dict.fromkeys(r["task"] for r in kept))
        fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.5), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            for i, m in enumerate(methods):
                values = [score(r) for r in groups.get((task, m), [])]
                ax.scatter([i] * len(values), values, alpha=0.6)
                if values:
                    ax.hlines(np.median(values), i - 0.3, i + 0.3, color="black")
            ax.set_xticks(range(len(methods)), methods, rotation=45)
            ax.set_title(f"{task}; bar = median")
        fig.tight_layout()
        made.append(out / f"quality-{grid}.png")
        fig.savefig(made[-1], dpi=100)
        plt.close(fig)
        rows = value_rows(grid_runs, cost) if cost else []
        if any(r["method"] != "vanilla" for r in rows):
            made.append(value_plot(rows, out / f"value-{grid}.png", grid))
    first = cost[0] if isinstance(cost, list) and cost else cost
    if first:
        rows = [r for r in first["results"] if "median_s" in r]
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.barh([r["kind"] for r in rows], [r["median_s"] for r in rows])
        ax.set_xlabel("median seconds per optimizer step")
        fig.tight_layout()
        made.append(out / "cost.png")
        fig.savefig(made[-1], dpi=100)
        plt.close(fig)
    return made


def grid_verdict(name: str, runs: list[dict]) -> str:
    """One line: per method, on how many tasks its median beats vanilla's, and where the paired interval lies
    wholly above or below zero."""
    kept, _ = common_seeds(runs)
    med, diffs = medians(kept), seed_differences(kept)
    tasks, seeds = list(dict.fromkeys(r["task"] for r in kept)), max(map(len, diffs.values()), default=1)
    parts = []
    for m in ordered_methods(kept)[1:]:
        compared = [t for t in tasks if (t, m) in med and (t, "vanilla") in med]
        sure = {t: confidence_interval(diffs[(t, m)]) for t in compared if len(diffs.get((t, m), [])) >= 2}
        above, below = [t for t, (lo, _) in sure.items() if lo > 0], [t for t, (_, hi) in sure.items() if hi < 0]
        wins = sum(med[(t, m)] > med[(t, "vanilla")] for t in compared)
        parts.append(
            f"{m} {wins}/{len(compared)}"
            + (f", surely above on {', '.join(above)}" if above else "")
            + (f", surely below on {', '.join(below)}" if below else "")
        )
    verdict = "; ".join(parts) or "no method besides vanilla finished a seed"
    return f"grid {name} ({seeds} seed{'s' * (seeds > 1)}): above vanilla's median on {verdict}."


def quality_section(runs: list[dict], page: Page) -> list[str]:
    """Every grid of one hardware in one table, then each grid's settings and notes."""
    grids, methods = by_grid(runs), ordered_methods(runs)
    rows = [[g, *row] for g, rs in grids.items() for row in quality_rows(rs, methods, annotate=page.annotate)]
    lines = [
        "### Quality",
        "",
        "Primary dev metric x 100, median [min, max] over the seeds every method finished; below it, paired with "
        "vanilla on the same seeds: mean difference [95% interval], seeds won, paired t-test p. Under the table, each "
        "grid's settings beyond the methods' defaults, and notes.",
        "",
        markdown(["grid", "task (metric, seeds)", *methods], rows),
        "",
    ]
    for g, rs in grids.items():
        notes = [*common_seeds(rs)[1], *step_notes(rs), *page.grid_notes(rs), outdated_defaults_note(rs)]
        settings = {k: v for k, v in rs[0]["grid"].items() if v and k not in ("name", "tasks", "methods", "seeds")}
        lines.append(f"- {g}: {json.dumps(settings)}" + "".join(f"; {n}" for n in notes if n))
    rows = [[g, *row] for g, rs in grids.items() for row in robustness_rows(rs, methods)]
    if rows:
        title = "### Robustness (FreeLB's Table 5 per run on its dev slice, medians: M-Inc / M-Inc (R) / N-Loss / robust acc @R)"
        lines += ["", title, "", markdown(["grid", "task", *methods], rows)]
    return lines + [""]


def value_section(runs: list[dict], cost_files: list[Path]) -> list[str]:
    """Per grid, each method's paired gain over vanilla against its measured cost (`advlm.bench.value`), from
    the first cost file that measured it at the grid's settings."""
    cost, lines = [json.loads(f.read_text()) for f in cost_files], []
    for grid, grid_runs in by_grid(runs).items():
        rows = value_rows(grid_runs, cost)
        if any(r["method"] != "vanilla" for r in rows):
            lines += [f"Grid {grid}:", "", markdown(*value_table(rows)), ""]
    if not lines:
        return []
    files = ", ".join(
        f"{f.name} (code {str(c['environment'].get('git_commit') or '?')[:7]})" for f, c in zip(cost_files, cost)
    )
    return [
        "### Quality per cost",
        "",
        f"What each method buys over vanilla for what it costs: the paired gain in the primary dev metric (x 100, "
        f"median over the seeds, with the t interval of the mean) against the step time over vanilla's "
        f"(median of the per-turn ratios, 95% interval; the first of {files} that measured the method at the "
        "grid's settings). Plots: value-<grid>.png.",
        "",
        *lines,
    ]


def plot_folder(hw: Path) -> list[Path]:
    """The plots of one hardware folder: its runs, and the first cost file (`advlm bench`'s own, else the lab's)."""
    costs = cost_files(hw)
    return plots(load_runs(hw), [json.loads(f.read_text()) for f in costs] or None, hw)


def cost_files(hw: Path) -> list[Path]:
    """cost.json (`advlm bench`'s) and the others kept beside it as cost-<label>.json."""
    return [f for f in [hw / "cost.json", *sorted(hw.glob("cost-*.json"))] if f.exists()]


def hardware_section(hw: Path, docs: Path, page: Page) -> list[str]:
    runs, costs = load_runs(hw), [(f, json.loads(f.read_text())) for f in cost_files(hw)]
    link = lambda p: os.path.relpath(p, docs.parent)  # noqa: E731
    lines = [f"## {hw.name}", "", *(f"- {grid_verdict(g, rs)}" for g, rs in by_grid(runs).items())]
    for file, cost in costs:
        over = ", ".join(f"{kind.removeprefix('method:')} {value}" for kind, value in overheads(cost).items())
        lines.append(f"- cost ({file.name}): each method's step time over vanilla's, over its ideal: {over}.")
    if (hw / "notes.md").exists():
        lines.append(
            f"- How these were measured, findings, what was left: [{hw.name}/notes.md]({link(hw / 'notes.md')})"
        )
    pngs = sorted(hw.glob("*.png"))
    if pngs:
        lines.append("- Plots: " + ", ".join(f"[{p.stem}]({link(p)})" for p in pngs))
    lines += [""] + (quality_section(runs, page) if runs else [])
    if runs and costs:
        lines += value_section(runs, [file for file, _ in costs])
    for file, cost in costs:
        s, turns = cost["settings"], (cost.get("interleaved") or {}).get("turns")
        code = str(cost["environment"].get("git_commit") or "?")[:7]
        title = (
            f"### Cost per optimizer step ({file.name}, code {code}: batch {s['batch_size']} x {s['seq_len']} tokens"
        )
        lines += [title + (f", {turns} turns)" if turns else ")"), "", markdown(*cost_rows(cost, page.cost_columns))]
        lines += ["", *(f"- {n}" for n in cost_failures(cost) + page.cost_notes(cost)), ""]
    return lines


def write_docs(results_root: Path, docs: Path, page: Page | None = None) -> Path:
    """The report of every hardware folder under `results_root`, written to `docs`."""
    page = page or Page()
    lines = [
        "# Benchmarks",
        "",
        "Generated from the JSON files under `benchmarks/results/<hardware>/` (one per run, with its config, git "
        "commit, package versions and hardware); do not edit by hand. Grids and the question each asks: "
        "`benchmarks/grids/*.yaml`. The cost table times each method with the methods taking turns on one batch; "
        "its overhead is the step time over vanilla's, over the method's ideal (its passes per step).",
        "",
    ]
    for hw in sorted(p for p in results_root.iterdir() if p.is_dir()):
        lines += hardware_section(hw, docs, page)
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text("\n".join(lines + page.closing))
    return docs
