"""The benchmark's tables, as Markdown rows, from its JSON files: quality with paired differences, robustness, cost.

Quality is the task's primary dev metric x 100, median [min, max] over the seeds every method of the task
finished (an interrupted grid leaves some seeds partly run; medians over different seeds would not compare like
with like), and each method against vanilla on those seeds (`advlm.bench.paired`).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from advlm.bench.paired import confidence_interval, median_interval, seed_differences
from advlm.tasks import get_task

ROBUSTNESS = ("M-Inc", "M-Inc (R)", "N-Loss", "robust acc @R")


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
        per_method = [{r["seed"] for r in task_runs if r["method"] == m} for m in {r["method"] for r in task_runs}]
        seeds = set.intersection(*per_method)
        dropped = sorted(f"{r['method']} s{r['seed']}" for r in task_runs if r["seed"] not in seeds)
        kept += [r for r in task_runs if r["seed"] in seeds]
        if dropped:
            notes.append(
                f"{task}: {len(dropped)} run(s) left out, their seed not finished by every method ({', '.join(dropped)})"
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
                notes.append(f"{task}: {method} took {ratio:.2f}x vanilla's optimizer steps; not like for like")
    return notes


def markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def paired_cell(d: np.ndarray) -> str:
    """'+0.59 [-0.1, +1.3] 4/5 p=0.07': mean difference from vanilla, its 95% interval, seeds won, paired t-test."""
    from scipy import stats

    if np.ptp(d) < 1e-9:  # the same difference on every seed: the t statistic is infinite (or 0/0)
        pval = "p=0.00" if abs(d.mean()) > 1e-9 else "p=1.00"
    else:
        pval = f"p={stats.ttest_1samp(d, 0.0).pvalue:.2f}"
    lo, hi = confidence_interval(d)
    return f"{d.mean():+.2f} [{lo:+.1f}, {hi:+.1f}] {int((d > 0).sum())}/{len(d)} {pval}"


Annotate = Callable[[str, str, np.ndarray], str]  # (task, method, per-seed differences) -> more of the cell


def quality_rows(runs: list[dict], methods: list[str], sep: str = "<br>", annotate: Annotate | None = None):
    """Per task of one grid: task (metric, seeds), then per method median [min, max] ('-' where it did not run)
    and, on 2 or more seeds in common with vanilla, the paired difference (`paired_cell`, then `annotate`'s)."""
    runs, _ = common_seeds(runs)
    groups, rows = by_task_method(runs), []
    diffs = {k: d for k, d in seed_differences(runs).items() if len(d) >= 2}
    for task in dict.fromkeys(r["task"] for r in runs):
        values = {m: [score(r) for r in groups.get((task, m), [])] for m in methods}
        cells = []
        for m, v in values.items():
            cell = f"{np.median(v):.2f} [{min(v):.1f}, {max(v):.1f}]" if v else "-"
            if (task, m) in diffs:
                extra = annotate(task, m, diffs[(task, m)]) if annotate else ""
                cell += sep + paired_cell(diffs[(task, m)]) + (sep + extra if extra else "")
            cells.append(cell)
        rows.append([f"{task} ({get_task(task).primary_metric}, {max(len(v) for v in values.values())})", *cells])
    return rows


def robustness_rows(runs: list[dict], methods: list[str]) -> list[list[str]]:
    """Per task: per method the medians over seeds of FreeLB's Table 5 measures, 'M-Inc / M-Inc (R) / N-Loss /
    robust acc @R'."""
    measured = [r for r in runs if isinstance(r.get("robustness"), dict) and r["robustness"].get("rows")]
    groups, rows = by_task_method(measured), []
    for task in dict.fromkeys(r["task"] for r in measured):
        cells = []
        for m in methods:
            rs = groups.get((task, m), [])
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


def turn_ratios(cost: dict, ours: str, theirs: str) -> list[float]:
    """`ours` over `theirs`, turn by turn (the turns both measured); empty when either did not take turns."""
    times = (cost.get("interleaved") or {}).get("times_s", {})
    return [a / b for a, b in zip(times.get(ours, []), times.get(theirs, []))]


def overheads(cost: dict) -> dict[str, str]:
    """Each method kind's overhead: its step time over vanilla's, over its ideal; by the per-turn ratios (with
    their interval) when the kinds took turns."""
    rows = {r["kind"]: r for r in cost["results"] if "median_s" in r}
    base, out = rows.get("method:vanilla"), {}
    for kind, r in rows.items():
        best = ideal(kind)
        if best and base and kind != "method:vanilla":
            per_turn = turn_ratios(cost, kind, "method:vanilla")
            out[kind] = (
                ratio_with_interval(per_turn, best) if per_turn else f"{r['median_s'] / base['median_s'] / best:.2f}"
            )
    return out


Column = tuple[str, Callable[[dict, dict], str]]  # (header, (row, rows by kind) -> cell)


def cost_rows(cost: dict, more: list[Column] = ()) -> tuple[list[str], list[list[str]]]:
    """The cost table (head, rows): per kind seconds per step, examples per second, ratio to vanilla, ideal,
    overhead, peak memory and its ratio to vanilla's, then the `more` columns."""
    rows = {r["kind"]: r for r in cost["results"] if "median_s" in r}
    base, over = rows.get("method:vanilla"), overheads(cost)
    head = ["kind", "s/step", "examples/s", "ratio to vanilla", "ideal", "overhead", "peak MiB", "memory ratio"]
    body = []
    for kind, r in rows.items():
        best, mem, base_mem = ideal(kind), r.get("peak_memory_bytes"), (base or {}).get("peak_memory_bytes")
        cells = [kind, f"{r['median_s']:.4f}", f"{r['examples_per_s']:.1f}"]
        cells.append(f"{r['median_s'] / base['median_s']:.2f}" if base else "")
        cells += [f"{best:.3g}" if best else "", over.get(kind, "1.00" if kind == "method:vanilla" else "")]
        cells += [f"{mem / 2**20:.0f}" if mem else "", f"{mem / base_mem:.2f}" if mem and base_mem else ""]
        body.append(cells + [cell(r, rows) for _, cell in more])
    return head + [h for h, _ in more], body


def cost_failures(cost: dict) -> list[str]:
    errors = [f"{r['kind']} failed: {r['error']}" for r in cost["results"] if "error" in r]
    return errors + [
        f"{k} failed in the turns: {e}" for k, e in (cost.get("interleaved") or {}).get("errors", {}).items()
    ]


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
    listed = "; ".join(
        f"{m}: " + ", ".join(f"{k} {a} (now {b})" for k, (a, b) in ks.items()) for m, ks in changed.items()
    )
    return (
        f"made with defaults that have changed since (the grid reruns them when next run): {listed}"
        if changed
        else None
    )
