"""The benchmark's report: plots per hardware folder and docs/benchmarks.md, generated from the JSON files.

Per hardware: a short verdict, the quality table of every grid (median [min, max] over seeds), each method
paired with vanilla on the same seeds, robustness where measured, the cost table of every cost file, plots, and
a link to the folder's hand-written notes.md (lab notes stay there, not pasted here).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from advlm.bench.paired import confidence_interval, seed_differences
from advlm.bench.papers import PAPERS
from advlm.bench.tables import (
    by_grid,
    common_seeds,
    cost_notes,
    cost_rows,
    detectable_note,
    load_runs,
    markdown,
    medians,
    ordered_methods,
    outdated_defaults_note,
    overheads,
    quality_rows,
    robustness_rows,
    step_notes,
)


def quality_plot(runs: list[dict], path: Path) -> Path:
    """Every seed's score per task and method, a bar at the median."""
    import matplotlib.pyplot as plt

    from advlm.bench.tables import by_task_method, score

    runs, _ = common_seeds(runs)
    groups, methods = by_task_method(runs), ordered_methods(runs)
    tasks = list(dict.fromkeys(r["task"] for r in runs))
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plots(runs: list[dict], cost: dict | None, out: Path) -> list[Path]:
    """quality-<grid>.png per grid and cost.png (seconds per step per kind) in `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = [quality_plot(grid_runs, out / f"quality-{grid}.png") for grid, grid_runs in by_grid(runs).items()]
    if cost:
        rows = [r for r in cost["results"] if "median_s" in r]
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.barh([r["kind"] for r in rows], [r["median_s"] for r in rows])
        ax.set_xlabel("median seconds per optimizer step")
        fig.tight_layout()
        made.append(out / "cost.png")
        fig.savefig(made[-1], dpi=100)
        plt.close(fig)
    return made


def grid_verdict(name: str, runs: list[dict]) -> str:
    """One line: per method, the tasks where its median beats vanilla's, and where the paired interval lies
    wholly above or below zero."""
    kept, _ = common_seeds(runs)
    med, diffs = medians(kept), seed_differences(kept)
    tasks = list(dict.fromkeys(r["task"] for r in kept))
    seeds = max(len(d) for d in diffs.values()) if diffs else 1
    parts = []
    for m in ordered_methods(kept)[1:]:
        compared = [t for t in tasks if (t, m) in med and (t, "vanilla") in med]
        wins = sum(med[(t, m)] > med[(t, "vanilla")] for t in compared)
        sure = {t: confidence_interval(diffs[(t, m)]) for t in compared if len(diffs.get((t, m), [])) >= 2}
        above = [t for t, (lo, _) in sure.items() if lo > 0]
        below = [t for t, (_, hi) in sure.items() if hi < 0]
        extra = (f", surely above on {', '.join(above)}" if above else "") + (
            f", surely below on {', '.join(below)}" if below else ""
        )
        parts.append(f"{m} {wins}/{len(compared)}{extra}")
    verdict = "; ".join(parts) if parts else "no method besides vanilla finished a seed"
    return f"grid {name} ({seeds} seed{'s' * (seeds > 1)}): above vanilla's median on {verdict}."


def quality_section(runs: list[dict]) -> list[str]:
    """Every grid of one hardware in one table, with each grid's settings and notes."""
    grids, methods = by_grid(runs), ordered_methods(runs)
    rows = [[g, *row] for g, rs in grids.items() for row in quality_rows(rs, methods)]
    lines = [
        "### Quality",
        "",
        "Primary dev metric x 100, median [min, max] over the seeds every method finished; below it, paired with "
        "vanilla on the same seeds: mean difference [95% interval], seeds won, paired t-test p; then where a paper "
        "reports the method's gain over its own vanilla (other models), whether it lies inside our interval.",
        "",
        markdown(["grid", "task (metric, seeds)", *methods], rows),
        "",
        "Settings beyond each method's defaults, and notes:",
        "",
    ]
    for g, rs in grids.items():
        notes = [*common_seeds(rs)[1], *step_notes(rs)]
        detect = detectable_note(rs)
        notes += [f"smallest true difference these seeds detect (80% power): {detect}"] if detect else []
        notes += [n for n in [outdated_defaults_note(rs)] if n]
        skip = ("name", "tasks", "methods", "seeds")
        settings = {k: v for k, v in rs[0]["grid"].items() if v and k not in skip}
        lines.append(f"- {g}: {json.dumps(settings)}" + "".join(f"; {n}" for n in notes))
    return lines + [""]


def robustness_section(runs: list[dict]) -> list[str]:
    methods = ordered_methods(runs)
    rows = [[g, *row] for g, rs in by_grid(runs).items() for row in robustness_rows(rs, methods)]
    if not rows:
        return []
    caption = "FreeLB's Table 5 measures per run on its dev slice, medians over seeds: M-Inc / M-Inc (R) / N-Loss / robust acc @R."
    return ["### Robustness", "", caption, "", markdown(["grid", "task", *methods], rows), ""]


def cost_section(file: Path, cost: dict, several: bool) -> list[str]:
    s, head_rows = cost["settings"], cost_rows(cost)
    turns = cost.get("interleaved", {}).get("turns")
    source = f", {file.name}, code {str(cost['environment'].get('git_commit') or '?')[:7]}" if several else ""
    title = (
        f"### Cost per optimizer step (batch {s['batch_size']} x {s['seq_len']} tokens"
        + (f", {turns} turns" if turns else "")
        + f"{source})"
    )
    return [title, "", markdown(*head_rows), "", *(f"- {n}" for n in cost_notes(cost)), ""]


def cost_files(hw: Path) -> list[Path]:
    """cost.json (the latest) and earlier ones kept beside it as cost-<label>.json."""
    return [f for f in [hw / "cost.json", *sorted(hw.glob("cost-*.json"))] if f.exists()]


def hardware_section(hw: Path, docs: Path) -> list[str]:
    runs, costs = load_runs(hw), [(f, json.loads(f.read_text())) for f in cost_files(hw)]
    lines = [f"## {hw.name}", ""]
    lines += [f"- {grid_verdict(g, rs)}" for g, rs in by_grid(runs).items()]
    for file, cost in costs:
        over = ", ".join(f"{kind.removeprefix('method:')} {value}" for kind, value in overheads(cost).items())
        lines.append(f"- cost ({file.name}): each method's step time over vanilla's, over its ideal: {over}.")
    link = lambda p: os.path.relpath(p, docs.parent)  # noqa: E731
    if (hw / "notes.md").exists():
        lines.append(
            f"- Lab notes (how these were measured, findings, what was left): [{hw.name}/notes.md]({link(hw / 'notes.md')})"
        )
    lines.append("")
    if runs:
        lines += quality_section(runs) + robustness_section(runs)
    for file, cost in costs:
        lines += cost_section(file, cost, len(costs) > 1)
    pngs = sorted(hw.glob("*.png"))
    if pngs:
        lines += ["Plots: " + ", ".join(f"[{p.stem}]({link(p)})" for p in pngs), ""]
    return lines


def papers_section() -> list[str]:
    tasks = list(dict.fromkeys(t for cols in PAPERS.values() for scores in cols.values() for t in scores))
    rows = [
        [paper.split(",")[0] + paper.split(",")[1], m, *(str(s.get(t, "-")) for t in tasks)]
        for paper, cols in PAPERS.items()
        for m, s in cols.items()
    ]
    return [
        "## The papers' numbers, for context (other models: RoBERTa-large, BERT-base)",
        "",
        markdown(["paper", "method", *tasks], rows),
        "",
    ]


def write_docs(results_root: Path, docs: Path) -> Path:
    """docs/benchmarks.md from every hardware folder under `results_root`."""
    lines = [
        "# Benchmarks",
        "",
        "Generated by `advlm bench` from the JSON files under `benchmarks/results/<hardware>/` (one per run, with its "
        "config, git commit, package versions and hardware); do not edit by hand: `advlm bench --render-only`. "
        "Grids and the question each asks: `benchmarks/grids/*.yaml`.",
        "",
    ]
    for hw in sorted(p for p in results_root.iterdir() if p.is_dir()):
        lines += hardware_section(hw, docs)
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text("\n".join(lines + papers_section()))
    return docs
