"""Tables and plots from the benchmark's JSON files, and docs/benchmarks.md."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from advlm.bench.papers import PAPERS
from advlm.data import get_task

CHALLENGERS = ("freelb", "smart", "textat")


def load_runs(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]


def _by_task_method(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups = defaultdict(list)
    for r in runs:
        groups[(r["task"], r["method"])].append(r)
    return groups


def _ordered_methods(runs: list[dict]) -> list[str]:
    methods = list(dict.fromkeys(r["method"] for r in runs))
    return sorted(methods, key=lambda m: (m != "vanilla", methods.index(m)))


def quality_table(runs: list[dict]) -> tuple[str, list[str]]:
    """Markdown: the primary dev metric (x100) per task and method, median [min, max] over seeds, then the
    papers' numbers as labelled reference columns; and one verdict line per challenger."""
    groups = _by_task_method(runs)
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    methods = _ordered_methods(runs)
    head = (
        ["task (metric, seeds)"]
        + methods
        + [f"{m} [{paper.split(',')[0]}]" for paper, cols in PAPERS.items() for m in cols]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    medians = {}
    for task in tasks:
        metric = get_task(task).primary_metric
        cells, seeds = [], 0
        for m in methods:
            values = [100 * r["eval"][metric] for r in groups.get((task, m), [])]
            seeds = max(seeds, len(values))
            if values:
                medians[(task, m)] = float(np.median(values))
                cells.append(f"{np.median(values):.2f} [{min(values):.1f}, {max(values):.1f}]")
            else:
                cells.append("-")
        refs = [str(cols[m].get(task, "-")) for cols in PAPERS.values() for m in cols]
        lines.append(f"| {task} ({metric}, {seeds}) | " + " | ".join(cells + refs) + " |")
    verdicts = []
    for m in CHALLENGERS:
        compared = [t for t in tasks if (t, m) in medians and (t, "vanilla") in medians]
        if not compared:
            continue
        wins = [t for t in compared if medians[(t, m)] > medians[(t, "vanilla")]]
        verdicts.append(
            f"{m} beats vanilla's median on {len(wins)} of {len(compared)} task(s)"
            + (f" ({', '.join(wins)})" if wins else "")
            + "."
        )
    return "\n".join(lines), verdicts


def robustness_table(runs: list[dict]) -> str | None:
    rows = [r for r in runs if isinstance(r.get("robustness"), dict) and r["robustness"].get("rows")]
    if not rows:
        return None
    groups = _by_task_method(rows)
    lines = ["| task | method | M-Inc | M-Inc (R) | N-Loss | robust acc @R | seeds |", "|---|---|---|---|---|---|---|"]
    for (task, method), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "vanilla", kv[0][1])):
        vals = {
            k: np.median([r["robustness"]["rows"][0][k] for r in rs])
            for k in ("M-Inc", "M-Inc (R)", "N-Loss", "robust acc @R")
        }
        lines.append(
            f"| {task} | {method} | {vals['M-Inc']:.3g} | {vals['M-Inc (R)']:.3g} | {vals['N-Loss']:.3g} | "
            f"{vals['robust acc @R']:.3f} | {len(rs)} |"
        )
    return "\n".join(lines)


def cost_table(cost: dict) -> tuple[str, list[str]]:
    """Markdown: per method, median s/step, ratio to vanilla, ideal ratio, overhead, memory; then the floor."""
    rows = {r["kind"]: r for r in cost["results"] if "median_s" in r}
    base = rows.get("method:vanilla")
    lines = [
        "| kind | median s/step | ratio to vanilla | ideal | overhead (measured/ideal) | peak memory MiB | "
        "memory ratio | examples/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, r in rows.items():
        ideal = ""
        if kind.startswith("method:"):
            from advlm.bench.cost import build_method_spec

            ideal = build_method_spec(kind.split(":", 1)[1]).passes
        ratio = r["median_s"] / base["median_s"] if base else float("nan")
        mem = r["peak_memory_bytes"] / base["peak_memory_bytes"] if base else float("nan")
        over = f"{ratio / ideal:.2f}" if ideal else ""
        lines.append(
            f"| {kind} | {r['median_s']:.4f} | {ratio:.2f} | {ideal if ideal == '' else f'{ideal:.3g}'} | "
            f"{over} | {r['peak_memory_bytes'] / 2**20:.0f} | {mem:.2f} | {r['examples_per_s']:.1f} |"
        )
    notes = []
    floor = rows.get("floor")
    for kind, label in (("trainer:vanilla", "AdversarialTrainer vanilla step"), ("stock-trainer", "stock Trainer")):
        if floor and kind in rows:
            notes.append(
                f"{label}: {rows[kind]['median_s'] / floor['median_s']:.2f} x the floor "
                f"(hand-written loop, {floor['median_s']:.4f} s)"
            )
    if "trainer:vanilla" in rows and "stock-trainer" in rows:
        notes.append(
            f"our vanilla Trainer step / stock Trainer step: "
            f"{rows['trainer:vanilla']['median_s'] / rows['stock-trainer']['median_s']:.2f}"
        )
    ours = rows.get("method:smart,bregman=false")
    if ours and "smart-pytorch" in rows:
        notes.append(
            f"our SMART step without the Bregman term / smart-pytorch's: "
            f"{ours['median_s'] / rows['smart-pytorch']['median_s']:.2f}"
        )
    for r in cost["results"]:
        if "error" in r:
            notes.append(f"{r['kind']} failed: {r['error']}")
    return "\n".join(lines), notes


def plots(runs: list[dict], cost: dict | None, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    if runs:
        groups = _by_task_method(runs)
        tasks = list(dict.fromkeys(r["task"] for r in runs))
        methods = _ordered_methods(runs)
        fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.5), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            metric = get_task(task).primary_metric
            for i, m in enumerate(methods):
                values = [100 * r["eval"][metric] for r in groups.get((task, m), [])]
                ax.scatter([i] * len(values), values, alpha=0.6)
                if values:
                    ax.hlines(np.median(values), i - 0.3, i + 0.3, color="black")
            ax.set_xticks(range(len(methods)), methods, rotation=45)
            ax.set_title(f"{task} ({metric}); bar = median")
        fig.tight_layout()
        made.append(out / "quality.png")
        fig.savefig(made[-1], dpi=100)
        plt.close(fig)
    if cost:
        rows = [r for r in cost["results"] if "median_s" in r]
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.barh([r["kind"] for r in rows], [r["median_s"] for r in rows])
        ax.set_xlabel(f"median seconds per optimizer step ({cost['environment']['hardware']})")
        fig.tight_layout()
        made.append(out / "cost.png")
        fig.savefig(made[-1], dpi=100)
        plt.close(fig)
    return made


def write_docs(results_root: Path, docs: Path) -> Path:
    """docs/benchmarks.md from every hardware folder under `results_root`."""
    parts = [
        "# Benchmarks",
        "",
        "Generated by `advlm bench` from the JSON files under `benchmarks/results/` "
        "(one per run; each records its config, git commit, package versions and hardware). Do not edit "
        "by hand: rerun `advlm bench --render-only`.",
        "",
    ]
    for hw in sorted(p for p in results_root.iterdir() if p.is_dir()):
        runs = load_runs(hw)
        cost_file = hw / "cost.json"
        cost = json.loads(cost_file.read_text()) if cost_file.exists() else None
        parts += [f"## {hw.name}", ""]
        if runs:
            grids = sorted({r["grid"]["name"] for r in runs})
            table, verdicts = quality_table(runs)
            parts += [
                f"### Quality (grid: {', '.join(grids)}; {len(runs)} runs)",
                "",
                "Primary dev metric x 100, median [min, max] over seeds. Paper columns are other models "
                "(RoBERTa-large / BERT-base), shown for context.",
                "",
                table,
                "",
            ]
            parts += [f"- {v}" for v in verdicts] + [""]
            tasks = {r["task"] for r in runs}
            if not {"rte", "mrpc", "cola", "stsb"} <= tasks:
                parts += [
                    "The quality target (FreeLB, SMART and TextAT each beat vanilla's median on at least 3 of "
                    "RTE, MRPC, CoLA, STS-B over 5 seeds) needs the full grid, which was not run on this "
                    "hardware: these rows do not measure it.",
                    "",
                ]
            settings = runs[0]["grid"]["train"]
            parts += [
                f"Settings: {json.dumps(settings)}; method hyper-parameters: each method's defaults "
                f"(`advlm list`) unless the grid says otherwise ({json.dumps(runs[0]['grid']['method_args'])}).",
                "",
            ]
            rob = robustness_table(runs)
            if rob:
                parts += ["### Robustness (FreeLB Table 5 measure, per run on its own dev slice)", "", rob, ""]
        if cost:
            table, notes = cost_table(cost)
            s = cost["settings"]
            parts += (
                [
                    f"### Cost per optimizer step (batch {s['batch_size']} x {s['seq_len']} tokens, "
                    f"{s['steps']} measured steps after {s['warmup']} warm-up, {cost['environment']['device']})",
                    "",
                    table,
                    "",
                ]
                + [f"- {n}" for n in notes]
                + [""]
            )
        if (hw / "notes.md").exists():  # hand-written observations on these results
            parts += ["### Notes", "", (hw / "notes.md").read_text().strip(), ""]
        for png in ("quality.png", "cost.png"):
            if (hw / png).exists():
                parts += [f"![{png}](../{(hw / png).relative_to(results_root.parent.parent).as_posix()})", ""]
    docs.write_text("\n".join(parts))
    return docs
