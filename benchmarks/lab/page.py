"""What this project's benchmark page (docs/benchmarks.md) adds to `advlm bench`'s report: where the papers'
reported gains lie against our paired intervals, the smallest difference a grid's seeds could detect, the lab's
cost columns (the fastest rounds, the median of per-round ratios, op and call counts), its comparisons with the
hand-written floor, the stock Trainer and smart-pytorch, and the papers' numbers."""

from __future__ import annotations

import statistics
from collections import defaultdict

import numpy as np

from advlm.bench.paired import confidence_interval, seed_differences
from advlm.bench.report import Page
from advlm.bench.tables import common_seeds, ideal, markdown
from lab.papers import PAPERS, reported_gains
from lab.power import detectable_difference, pooled_sd

COUNTS = ("ops_per_step", "host_syncs_per_step", "python_calls_per_step")
PEERS = [
    ("trainer:vanilla", "floor", "our vanilla Trainer step / the hand-written loop's"),
    ("stock-trainer", "floor", "the stock Trainer's step / the hand-written loop's"),
    ("trainer:vanilla", "stock-trainer", "our vanilla Trainer step / the stock Trainer's"),
    ("method:smart,bregman=false", "smart-pytorch", "our SMART step without the Bregman term / smart-pytorch's"),
]


def paper_gain(task: str, method: str, diffs: np.ndarray) -> str:
    """Where a paper's reported gain over its own vanilla (other models) lies against our 95% interval."""
    paper = reported_gains().get(method, {}).get(task)
    if not paper:
        return ""
    lo, hi = confidence_interval(diffs)
    return f"{paper[0]} {paper[1]:+.2f}: " + (
        "above ours" if paper[1] > hi else "below ours" if paper[1] < lo else "inside"
    )


def detectable_note(runs: list[dict]) -> list[str]:
    """Per task, the smallest true difference the grid's seeds would detect (paired t-test, 80% power, 5%
    two-sided), from the spread of the per-seed differences pooled over methods."""
    kept, _ = common_seeds(runs)
    by_task = defaultdict(list)
    for (task, _), d in seed_differences(kept).items():
        if len(d) >= 2 and np.ptp(d) > 1e-9:
            by_task[task].append(d)
    cells = [
        f"{task} {detectable_difference(pooled_sd(ds), len(ds[0])):.1f}"
        for task, ds in by_task.items()
        if len({len(d) for d in ds}) == 1
    ]
    return [f"smallest true difference these seeds detect (80% power): {', '.join(cells)}"] if cells else []


def round_ratios(ours: dict, theirs: dict) -> list[float]:
    """Ours over theirs within each round both ran (empty for one round)."""
    pairs = list(zip(ours.get("round_medians_s") or [], theirs.get("round_medians_s") or []))
    return [] if len(pairs) < 2 or any(None in p for p in pairs) else [x / y for x, y in pairs]


def fastest_rounds(row: dict, rows: dict) -> str:
    best, base = ideal(row["kind"]), rows.get("method:vanilla")
    return f"{row['median_s'] / base['median_s'] / best:.2f}" if best and base and "round_medians_s" in row else ""


def median_of_rounds(row: dict, rows: dict) -> str:
    best, base = ideal(row["kind"]), rows.get("method:vanilla")
    ratios = round_ratios(row, base) if best and base else []
    return f"{statistics.median(ratios) / best:.2f}" if ratios else ""


def peer_notes(cost: dict) -> list[str]:
    rows = {r["kind"]: r for r in cost["results"] if "median_s" in r}
    return [
        f"{label}: {rows[a]['median_s'] / rows[b]['median_s']:.2f}" for a, b, label in PEERS if a in rows and b in rows
    ]


def papers_section() -> list[str]:
    tasks = list(dict.fromkeys(t for cols in PAPERS.values() for scores in cols.values() for t in scores))
    rows = [[paper, m, *(str(s.get(t, "-")) for t in tasks)] for paper, cols in PAPERS.items() for m, s in cols.items()]
    title = "## The papers' numbers, for context (other models: RoBERTa-large, BERT-base)"
    more = "Each method's cost on the other heads, and SMART's memory with LoRA: docs/benchmarks-heads.md."
    return [title, "", markdown(["paper", "method", *tasks], rows), "", more, ""]


def lab_page() -> Page:
    counts = [(c.replace("_", " "), lambda r, rows, c=c: str(r.get(c, ""))) for c in COUNTS]
    return Page(
        annotate=paper_gain,
        cost_columns=[
            ("overhead, fastest rounds", fastest_rounds),
            ("overhead, median of rounds", median_of_rounds),
            *counts,
        ],
        cost_notes=peer_notes,
        grid_notes=detectable_note,
        closing=papers_section(),
    )
