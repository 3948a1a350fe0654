"""The benchmark's tables, as Markdown, from its JSON files: quality, paired differences, robustness, cost.

Quality is the task's primary dev metric x 100, median [min, max] over the seeds every method of the task
finished (an interrupted grid leaves some seeds partly run; medians over different seeds would not compare like
with like). Paired differences and their statistics are `advlm.bench.paired`'s.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from advlm.bench.paired import confidence_interval, detectable_difference, median_interval, pooled_sd, seed_differences
from advlm.bench.papers import reported_gains
from advlm.tasks import get_task


def load_runs(results: Path) -> list[dict]:
    """Every run JSON under `results/runs/<grid>/`, each carrying its grid."""
    return [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*/*.json"))]


def by_grid(runs: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for r in runs:
        groups.setdefault(r["grid"]["name"], []).append(r)
    return groups


def by_task_method(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups = defaultdict(list)
    for r in runs:
        groups[(r["task"], r["method"])].append(r)
    return groups


def ordered_methods(runs: list[dict]) -> list[str]:
    """Vanilla first, then the order the runs name them."""
    methods = list(dict.fromkeys(r["method"] for r in runs))
    return sorted(methods, key=lambda m: (m != "vanilla", methods.index(m)))


def common_seeds(runs: list[dict]) -> tuple[list[dict], list[str]]:
    """Per task, only the seeds every method of the task finished; and one note per task that lost runs."""
    kept, notes = [], []
    for task in dict.fromkeys(r["task"] for r in runs):
        task_runs = [r for r in runs if r["task"] == task]
        seeds = set.intersection(
            *({r["seed"] for r in task_runs if r["method"] == m} for m in {r["method"] for r in task_runs})
        )
        dropped = sorted(f"{r['method']} s{r['seed']}" for r in task_runs if r["seed"] not in seeds)
        kept += [r for r in task_runs if r["seed"] in seeds]
        if dropped:
            notes.append(
                f"{task}: {len(dropped)} run(s) left out, their seed not finished by every method ({', '.join(dropped)})."
            )
    return kept, notes


def score(run: dict) -> float:
    return 100 * run["eval"][get_task(run["task"]).primary_metric]


def medians(runs: list[dict]) -> dict[tuple[str, str], float]:
    """(task, method) -> median primary dev metric x 100."""
    return {key: float(np.median([score(r) for r in rs])) for key, rs in by_task_method(runs).items()}


def step_notes(runs: list[dict]) -> list[str]:
    """Where a method took a different number of optimizer steps than vanilla on a task (not like for like)."""
    notes, groups = [], by_task_method(runs)
    for (task, method), rs in groups.items():
        base = groups.get((task, "vanilla"))
        if method != "vanilla" and base and "steps" in rs[0]:
            ratio = np.median([r["steps"] for r in rs]) / np.median([r["steps"] for r in base])
            if abs(ratio - 1) > 0.01:
                notes.append(f"{task}: {method} took {ratio:.2f}x vanilla's optimizer steps; not like for like.")
    return notes


def markdown(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(
        ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]
    )


def quality_rows(runs: list[dict], methods: list[str], sep: str = "<br>") -> list[list[str]]:
    """Per task of one grid: task (metric, seeds), then per method median [min, max] ('-' where it did not run)
    and, for each method against vanilla on 2 or more common seeds, the paired difference (`paired_cell`)."""
    runs, _ = common_seeds(runs)
    groups, rows = by_task_method(runs), []
    diffs = {k: d for k, d in seed_differences(runs).items() if len(d) >= 2}
    gains = reported_gains()
    for task in dict.fromkeys(r["task"] for r in runs):
        values = {m: [score(r) for r in groups.get((task, m), [])] for m in methods}
        cells = []
        for m, v in values.items():
            cell = f"{np.median(v):.2f} [{min(v):.1f}, {max(v):.1f}]" if v else "-"
            if (task, m) in diffs:
                cell += sep + paired_cell(diffs[(task, m)], gains.get(m, {}).get(task), sep)
            cells.append(cell)
        seeds = max(len(v) for v in values.values())
        rows.append([f"{task} ({get_task(task).primary_metric}, {seeds})", *cells])
    return rows


def paired_cell(d: np.ndarray, paper: tuple[str, float] | None, sep: str = "; ") -> str:
    """'+0.59 [-0.1, +1.3] 4/5 p=0.07': mean difference from vanilla, its 95% interval, seeds won, the paired
    t-test; and where a paper's reported gain over its own vanilla lies against that interval."""
    from scipy import stats

    if np.ptp(d) < 1e-9:  # the same difference on every seed: the t statistic is infinite (or 0/0)
        pval = "p=0.00" if abs(d.mean()) > 1e-9 else "p=1.00"
    else:
        pval = f"p={stats.ttest_1samp(d, 0.0).pvalue:.2f}"
    lo, hi = confidence_interval(d)
    cell = f"{d.mean():+.2f} [{lo:+.1f}, {hi:+.1f}] {int((d > 0).sum())}/{len(d)} {pval}"
    if paper:
        where = "above ours" if paper[1] > hi else "below ours" if paper[1] < lo else "inside"
        cell += f"{sep}{paper[0]} {paper[1]:+.2f}: {where}"
    return cell


def detectable_note(runs: list[dict]) -> str | None:
    """Per task, the smallest true difference the grid's seeds would detect (paired t-test, 80% power, 5%
    two-sided), from the spread of the per-seed differences pooled over methods; None under 2 seeds."""
    runs, _ = common_seeds(runs)
    by_task = defaultdict(list)
    for (task, _), d in seed_differences(runs).items():
        if len(d) >= 2 and np.ptp(d) > 1e-9:
            by_task[task].append(d)
    cells = [
        f"{task} {detectable_difference(pooled_sd(ds), len(ds[0])):.1f}"
        for task, ds in by_task.items()
        if len({len(d) for d in ds}) == 1
    ]
    return ", ".join(cells) or None


ROBUSTNESS = ("M-Inc", "M-Inc (R)", "N-Loss", "robust acc @R")


def robustness_rows(runs: list[dict], methods: list[str]) -> list[list[str]]:
    """Per task: per method the medians over seeds of FreeLB's Table 5 measures, 'M-Inc / M-Inc (R) / N-Loss /
    robust acc @R'."""
    measured = [r for r in runs if isinstance(r.get("robustness"), dict) and r["robustness"].get("rows")]
    groups, rows = by_task_method(measured), []
    for task in dict.fromkeys(r["task"] for r in measured):
        cells = []
        for m in methods:
            rs = groups.get((task, m))
            values = [float(np.median([r["robustness"]["rows"][0][k] for r in rs])) for k in ROBUSTNESS] if rs else []
            cells.append(" / ".join(f"{v:.3g}" for v in values[:3]) + f" / {values[3]:.3f}" if rs else "-")
        rows.append([task, *cells])
    return rows


def ideal(kind: str) -> float | None:
    """A method kind's ideal cost ratio to vanilla (its passes); None for the lab's other kinds."""
    from advlm.bench.cost import CostKind

    try:
        return CostKind.parse(kind).ideal
    except ValueError:
        return None


def ratio_with_interval(ratios: list[float], over: float = 1.0) -> str:
    """'1.02 (0.98-1.05)': the median of `ratios` over `over`, with its 95% interval when there are enough."""
    interval = median_interval(ratios)
    around = f" ({interval[0] / over:.2f}-{interval[1] / over:.2f})" if interval else ""
    return f"{statistics.median(ratios) / over:.2f}{around}"


COUNTS = ("ops_per_step", "host_syncs_per_step", "python_calls_per_step")


def cost_rows(cost: dict) -> tuple[list[str], list[list[str]]]:
    """The cost table (head, rows): per kind seconds per step, ratio to vanilla, ideal, overhead (ratio over
    ideal; with the kinds taking turns, the median of the per-turn ratios and its interval), peak memory, and
    the counts the lab's measurements add."""
    rows = {r["kind"]: r for r in cost["results"] if "median_s" in r}
    base, turns = rows.get("method:vanilla"), (cost.get("interleaved") or {}).get("times_s", {})
    counts = [c for c in COUNTS if any(c in r for r in rows.values())]
    rounds = any(len(r.get("round_medians_s") or []) > 1 for r in rows.values())
    head = ["kind", "s/step", "examples/s", "ratio to vanilla", "ideal", "overhead"]
    head += ["overhead, median of rounds"] * rounds + ["overhead in turns [95%]", "peak MiB", "memory ratio"]
    body = []
    for kind, r in rows.items():
        best, mem = ideal(kind), r.get("peak_memory_bytes")
        ratio = r["median_s"] / base["median_s"] if base else float("nan")
        per_turn = [a / b for a, b in zip(turns.get(kind, []), turns.get("method:vanilla", []))]
        cells = [kind, f"{r['median_s']:.4f}", f"{r['examples_per_s']:.1f}", f"{ratio:.2f}"]
        cells += [f"{best:.3g}" if best else "", f"{ratio / best:.2f}" if best else ""]
        if rounds:
            per_round = round_ratios(r, base) if base and best else []
            cells.append(f"{statistics.median(per_round) / best:.2f}" if per_round else "")
        cells.append(ratio_with_interval(per_turn, best) if best and per_turn and kind != "method:vanilla" else "")
        cells.append(f"{mem / 2**20:.0f}" if mem else "")
        cells.append(f"{mem / base['peak_memory_bytes']:.2f}" if mem and base and base.get("peak_memory_bytes") else "")
        body.append(cells + [str(r.get(c, "")) for c in counts])
    return head + [c.replace("_", " ") for c in counts], body


def overheads(cost: dict) -> dict[str, str]:
    """Each method kind's overhead (ratio to vanilla over its ideal): by the turns when the kinds took turns."""
    rows = {r["kind"]: r for r in cost["results"] if "median_s" in r}
    base, turns = rows.get("method:vanilla"), (cost.get("interleaved") or {}).get("times_s", {})
    out = {}
    for kind, r in rows.items():
        best = ideal(kind)
        if best and base and kind != "method:vanilla":
            per_turn = [a / b for a, b in zip(turns.get(kind, []), turns.get("method:vanilla", []))]
            out[kind] = (
                ratio_with_interval(per_turn, best) if per_turn else f"{r['median_s'] / base['median_s'] / best:.2f}"
            )
    return out


def round_ratios(ours: dict, theirs: dict) -> list[float]:
    """Ours over theirs within each round the lab's measurements both ran (empty for one round)."""
    pairs = list(zip(ours.get("round_medians_s") or [], theirs.get("round_medians_s") or []))
    if len(pairs) < 2 or any(None in pair for pair in pairs):
        return []
    return [x / y for x, y in pairs]


def cost_notes(cost: dict) -> list[str]:
    """What failed, and the lab's comparisons with the hand-written floor, the stock Trainer and smart-pytorch."""
    rows = {r["kind"]: r for r in cost["results"] if "median_s" in r}
    pairs = [
        ("trainer:vanilla", "floor", "our vanilla Trainer step / the hand-written loop's"),
        ("stock-trainer", "floor", "the stock Trainer's step / the hand-written loop's"),
        ("trainer:vanilla", "stock-trainer", "our vanilla Trainer step / the stock Trainer's"),
        ("method:smart,bregman=false", "smart-pytorch", "our SMART step without the Bregman term / smart-pytorch's"),
    ]
    notes = [
        f"{label}: {rows[a]['median_s'] / rows[b]['median_s']:.2f}" for a, b, label in pairs if a in rows and b in rows
    ]
    notes += [f"{r['kind']} failed: {r['error']}" for r in cost["results"] if "error" in r]
    return notes


def outdated_defaults_note(runs: list[dict]) -> str | None:
    """Hyper-parameters runs took from a default that has changed since (the grid reruns them when run again)."""
    from advlm.methods import build_method

    changed: dict[str, dict[str, tuple]] = {}
    defaults = {m: build_method(m).config() for m in {r["method"] for r in runs}}
    for r in runs:
        grid = r["grid"]
        pinned = {**grid.get("method_args", {}).get(r["method"], {})}
        pinned.update(grid.get("per_task_method_args", {}).get(r["task"], {}).get(r["method"], {}))
        for key, value in r.get("method_args", {}).items():
            now = defaults[r["method"]]
            if key not in pinned and key in now and now[key] != value:
                changed.setdefault(r["method"], {})[key] = (value, now[key])
    if not changed:
        return None
    listed = "; ".join(
        f"{m}: " + ", ".join(f"{k} {old} (now {new})" for k, (old, new) in keys.items()) for m, keys in changed.items()
    )
    return f"made with defaults that have changed since (the grid reruns them when next run): {listed}"
