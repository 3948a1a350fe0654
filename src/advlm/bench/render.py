"""Tables and plots from the benchmark's JSON files, and docs/benchmarks.md."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from advlm.bench.interleaved import median_interval, turn_ratios
from advlm.bench.paired import confidence_interval, detectable_difference, pooled_sd, seed_differences
from advlm.bench.papers import PAPERS, reported_gains
from advlm.tasks import get_task

CHALLENGERS = ("freelb", "smart", "textat")
TARGET_TASKS = {"rte", "mrpc", "cola", "stsb"}


def load_runs(results: Path) -> list[dict]:
    """Every run JSON under `results/runs/<grid>/`, each carrying its grid."""
    return [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*/*.json"))]


def _by_task_method(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups = defaultdict(list)
    for r in runs:
        groups[(r["task"], r["method"])].append(r)
    return groups


def _ordered_methods(runs: list[dict]) -> list[str]:
    methods = list(dict.fromkeys(r["method"] for r in runs))
    return sorted(methods, key=lambda m: (m != "vanilla", methods.index(m)))


def common_seeds(runs: list[dict]) -> tuple[list[dict], list[str]]:
    """Per task, only the seeds that every method of the task finished (an interrupted grid leaves some
    seeds partly run; a median over different seeds per method would not compare like with like).
    Returns the kept runs and one note per task that lost runs."""
    kept, notes = [], []
    for task in dict.fromkeys(r["task"] for r in runs):
        task_runs = [r for r in runs if r["task"] == task]
        methods = {r["method"] for r in task_runs}
        per_method = [{r["seed"] for r in task_runs if r["method"] == m} for m in methods]
        seeds = set.intersection(*per_method)
        dropped = [r for r in task_runs if r["seed"] not in seeds]
        kept += [r for r in task_runs if r["seed"] in seeds]
        if dropped:
            names = ", ".join(sorted(f"{r['method']} s{r['seed']}" for r in dropped))
            notes.append(f"{task}: {len(dropped)} run(s) left out, their seed not finished by every method ({names}).")
    return kept, notes


def step_notes(runs: list[dict]) -> list[str]:
    """Where a method took a different number of optimizer steps than vanilla on a task (FreeAT replays
    each batch K times: without dividing the epochs by K it gets K times the updates)."""
    notes = []
    groups = _by_task_method(runs)
    for (task, method), rs in groups.items():
        base = groups.get((task, "vanilla"))
        if method == "vanilla" or not base or "steps" not in rs[0]:
            continue
        ratio = np.median([r["steps"] for r in rs]) / np.median([r["steps"] for r in base])
        if abs(ratio - 1) > 0.01:
            notes.append(f"{task}: {method} took {ratio:.2f}x vanilla's optimizer steps; its row is not like for like.")
    return notes


def _medians(runs: list[dict]) -> dict[tuple[str, str], float]:
    """(task, method) -> median primary dev metric x 100 over `runs`."""
    return {
        key: float(np.median([100 * r["eval"][get_task(key[0]).primary_metric] for r in rs]))
        for key, rs in _by_task_method(runs).items()
    }


def _wins(medians: dict[tuple[str, str], float], tasks: list[str]) -> dict[str, tuple[list[str], int]]:
    """challenger -> (tasks where its median beats vanilla's, tasks compared)."""
    out = {}
    for m in CHALLENGERS:
        compared = [t for t in tasks if (t, m) in medians and (t, "vanilla") in medians]
        if compared:
            out[m] = ([t for t in compared if medians[(t, m)] > medians[(t, "vanilla")]], len(compared))
    return out


def quality_table(runs: list[dict]) -> tuple[str, list[str]]:
    """Markdown: the primary dev metric (x100) per task and method, median [min, max] over the seeds every
    method finished, then the papers' numbers as labelled reference columns; and notes: one verdict line per
    challenger, runs left out, rows that are not like for like."""
    runs, dropped = common_seeds(runs)
    groups = _by_task_method(runs)
    medians = _medians(runs)
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    methods = _ordered_methods(runs)
    head = (
        ["task (metric, seeds)"]
        + methods
        + [f"{m} [{paper.split(',')[0]}]" for paper, cols in PAPERS.items() for m in cols]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task in tasks:
        metric = get_task(task).primary_metric
        cells, seeds = [], 0
        for m in methods:
            values = [100 * r["eval"][metric] for r in groups.get((task, m), [])]
            seeds = max(seeds, len(values))
            cells.append(f"{medians[(task, m)]:.2f} [{min(values):.1f}, {max(values):.1f}]" if values else "-")
        refs = [str(cols[m].get(task, "-")) for cols in PAPERS.values() for m in cols]
        lines.append(f"| {task} ({metric}, {seeds}) | " + " | ".join(cells + refs) + " |")
    verdicts = [
        f"{m} beats vanilla's median on {len(wins)} of {n} task(s)" + (f" ({', '.join(wins)})" if wins else "") + "."
        for m, (wins, n) in _wins(medians, tasks).items()
    ]
    return "\n".join(lines), verdicts + dropped + step_notes(runs)


def _paired(runs: list[dict]) -> tuple[list[dict], dict[tuple[str, str], np.ndarray]]:
    """The runs on the seeds every method of a task finished, and each method's per-seed differences from
    vanilla on them where there are 2 seeds or more (what the paired tables compare)."""
    runs, _ = common_seeds(runs)
    return runs, {k: d for k, d in seed_differences(runs).items() if len(d) >= 2}


def paired_table(runs: list[dict]) -> str | None:
    """Markdown: each challenger against vanilla on the same seeds (see `advlm.bench.paired`): mean
    difference (points x 100) with its 95% confidence interval, seeds won, and a two-sided paired t-test's p
    (scipy). None under 2 seeds."""
    from scipy import stats

    runs, diffs = _paired(runs)
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    methods = [m for m in _ordered_methods(runs) if m != "vanilla"]
    lines = ["| task | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 1)]
    for task in tasks:
        cells = []
        for m in methods:
            d = diffs.get((task, m))
            if d is None:
                cells.append("-")
                continue
            if np.ptp(d) < 1e-9:  # the same difference on every seed: the t statistic is infinite (or 0/0)
                pval = "p=0.00" if abs(d.mean()) > 1e-9 else "p=1.00"
            else:
                pval = f"p={stats.ttest_1samp(d, 0.0).pvalue:.2f}"  # the paired t-test
            lo, hi = confidence_interval(d)
            cells.append(f"{d.mean():+.2f} [{lo:+.1f}, {hi:+.1f}] ({int((d > 0).sum())}/{len(d)}, {pval})")
        if any(c != "-" for c in cells):
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else None


def detectable_note(runs: list[dict]) -> str | None:
    """One line: per task, the smallest true difference from vanilla that this grid's number of seeds would
    detect (paired t-test, 80% power, 5% two-sided), from the spread of its per-seed differences pooled over
    methods. None under 2 seeds."""
    by_task = defaultdict(list)
    for (task, _), d in _paired(runs)[1].items():
        if np.ptp(d) > 1e-9:
            by_task[task].append(d)
    cells = [
        f"{task} {detectable_difference(pooled_sd(ds), len(ds[0])):.1f}"
        for task, ds in by_task.items()
        if len({len(d) for d in ds}) == 1
    ]
    if not cells:
        return None
    return (
        "Smallest true difference from vanilla these seeds would detect (paired t-test, 80% power, 5% two-sided; "
        "from the spread of the differences above, pooled over methods), in points: " + ", ".join(cells) + "."
    )


def paper_gain_table(runs: list[dict]) -> str | None:
    """Markdown: where a paper reports a method's gain over its own vanilla (other models: RoBERTa-large,
    BERT-base), whether that gain lies inside this grid's 95% interval for the same method and task, above
    it (ruled out here) or below it. None when no cell has both."""
    runs, diffs = _paired(runs)
    gains = reported_gains()
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    methods = [m for m in _ordered_methods(runs) if m in gains and any((t, m) in diffs for t in tasks)]
    lines = ["| task | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 1)]
    for task in tasks:
        cells = []
        for m in methods:
            if (task, m) not in diffs or task not in gains[m]:
                cells.append("-")
                continue
            paper, gain = gains[m][task]
            lo, hi = confidence_interval(diffs[(task, m)])
            where = "above ours" if gain > hi else "below ours" if gain < lo else "inside ours"
            cells.append(f"{gain:+.2f} ({paper}): {where}")
        if any(c != "-" for c in cells):
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else None


def fit_note(runs: list[dict]) -> str | None:
    """Vanilla's last logged training loss against its dev loss, per task (medians over seeds): whether the
    model fits its training set at all, which a regularizer needs before it has anything to trade. Vanilla only:
    the methods log their own objectives. None when no run recorded its training loss."""
    cells = []
    for (task, method), rs in _by_task_method(runs).items():
        logged = [r["train_history"][-1]["loss"] for r in rs if r.get("train_history")]
        if method == "vanilla" and logged:
            dev = float(np.median([r["eval_loss"] for r in rs]))
            cells.append(f"{task} {np.median(logged):.3f} / {dev:.3f}")
    if not cells:
        return None
    return (
        "Vanilla's training loss at its last log against its dev loss (medians over seeds): " + ", ".join(cells) + "."
    )


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
    """Markdown: per method, median s/step, ratio to vanilla, ideal ratio, overhead (by the fastest rounds, by
    the median of the per-round ratios, and by the median of the per-turn ratios when the kinds also took
    turns), memory; then the floor."""
    rows = {r["kind"]: r for r in cost["results"] if "median_s" in r}
    base = rows.get("method:vanilla")
    turns = cost.get("interleaved")
    lines = [
        "| kind | median s/step | ratio to vanilla | ideal | overhead (measured/ideal) | overhead, median of "
        "rounds | "
        + ("overhead, kinds taking turns | " if turns else "")
        + "peak memory MiB | memory ratio | examples/s | ops/step | host syncs/step | python calls/step |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if turns else ""),
    ]
    for kind, r in rows.items():
        ideal = _ideal(kind)
        ratio = r["median_s"] / base["median_s"] if base else float("nan")
        mem = r["peak_memory_bytes"] / base["peak_memory_bytes"] if base else float("nan")
        over = f"{ratio / ideal:.2f}" if ideal else ""
        per_round = _round_ratios(r, base) if base and ideal else []
        rounds = f"{statistics.median(per_round) / ideal:.2f}" if per_round else ""
        per_turn = turn_ratios(turns, kind, "method:vanilla") if ideal and kind != "method:vanilla" else []
        in_turns = f"{_median_with_interval(per_turn, ideal)} | " if per_turn else ("| " if turns else "")
        lines.append(
            f"| {kind} | {r['median_s']:.4f} | {ratio:.2f} | {ideal if ideal == '' else f'{ideal:.3g}'} | "
            f"{over} | {rounds} | {in_turns}{r['peak_memory_bytes'] / 2**20:.0f} | {mem:.2f} | "
            f"{r['examples_per_s']:.1f} | {r.get('ops_per_step', '')} | {r.get('host_syncs_per_step', '')} | "
            f"{r.get('python_calls_per_step', '')} |"
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
    if turns:
        notes.append(turns_note(turns))
    notes += target_notes(rows, turns)
    for r in cost["results"]:
        if "error" in r:
            notes.append(f"{r['kind']} failed: {r['error']}")
    for kind, error in (turns or {}).get("errors", {}).items():
        notes.append(f"{kind} failed in the turns: {error}")
    return "\n".join(lines), notes


def _median_with_interval(ratios: list[float], ideal: float = 1.0, limit: float | None = None) -> str:
    """'1.02 (0.98-1.05)': the median of `ratios` over `ideal`, with its 95% interval when there are enough; to
    three decimals where two would round one of them onto `limit` and hide the side it lies on ('1.001')."""
    interval = median_interval(ratios)
    shown = [statistics.median(ratios) / ideal, *(bound / ideal for bound in interval or ())]
    digits = 3 if limit is not None and any(x != limit and round(x, 2) == limit for x in shown) else 2
    around = f" ({shown[1]:.{digits}f}-{shown[2]:.{digits}f})" if interval else ""
    return f"{shown[0]:.{digits}f}{around}"


def _by_turns(ratios: list[float], limit: float, ideal: float = 1.0) -> tuple[float, str, bool]:
    """Per-turn `ratios` judged against `limit`: (their median over `ideal`, that median shown with its
    interval, whether the limit lies inside the interval so that the turns cannot tell)."""
    interval = median_interval(ratios)
    unresolved = bool(interval) and interval[0] / ideal <= limit < interval[1] / ideal
    return statistics.median(ratios) / ideal, _median_with_interval(ratios, ideal, limit), unresolved


def _ideal(kind: str) -> float | str:
    """A method kind's ideal cost ratio to vanilla (its pass count); '' for the other kinds."""
    if not kind.startswith("method:"):
        return ""
    from advlm.bench.cost import build_method_spec

    return build_method_spec(kind.split(":", 1)[1]).passes


def turns_note(turns: dict) -> str:
    """How the turns were measured, and the floor's and vanilla's spread across them (what drift did)."""
    times = turns["times_s"]
    spread = [
        f"{kind} {min(times[kind]) * 1e3:.1f}-{max(times[kind]) * 1e3:.1f} ms"
        for kind in ("floor", "method:vanilla")
        if times.get(kind)
    ]
    return (
        f"kinds taking turns: {len(times)} kinds, one step each per turn, {turns['turns']} turns after "
        f"{turns['warmup']} warm-up (order rotated every turn); the overhead in turns is the median over turns of a "
        "kind's step over vanilla's step of the same turn, over the ideal"
        + (f"; step times across the turns: {', '.join(spread)}" if spread else "")
    )


TARGETS = {"overhead": {"cpu": 1.10, "cuda": 1.05}, "freelb_memory": 1.15, "trainer_floor": 1.2}


def target_notes(rows: dict, turns: dict | None = None) -> list[str]:
    """The issue's targets, each said to be met or missed on these numbers: by the median per-turn ratio where
    the kinds took turns (drift does not move it), else by the fastest rounds; memory by the rounds. `rows`: the
    cost results by kind."""
    base = rows.get("method:vanilla")
    if not base:
        return []
    device = "cuda" if str(base.get("device", "cpu")).startswith("cuda") else "cpu"
    limit = TARGETS["overhead"][device]
    met, missed, unresolved = [], [], []
    for kind, r in rows.items():
        if not kind.startswith("method:") or kind == "method:vanilla":
            continue
        ideal, per_turn = _ideal(kind), turn_ratios(turns, kind, "method:vanilla")
        if per_turn:
            over, shown, unsure = _by_turns(per_turn, limit, ideal)
            if unsure:
                unresolved.append(kind[7:])
        else:
            over = r["median_s"] / base["median_s"] / ideal
            shown = f"{over:.2f}"
        (met if over <= limit else missed).append(f"{kind[7:]} {shown}")
    statistic = " (median per-turn ratio, 95% interval)" if turns and turns.get("times_s") else ""
    notes = [
        f"target overhead <= {limit:.2f} on {device}{statistic}: "
        + (f"met by {', '.join(met)}" if met else "met by none")
        + (f"; missed by {', '.join(missed)}" if missed else "")
        + (f"; the limit lies inside the interval of {', '.join(unresolved)}" if unresolved else "")
        + "."
    ]
    if "method:freelb" in rows:
        mem = rows["method:freelb"]["peak_memory_bytes"] / base["peak_memory_bytes"]
        verdict = "met" if mem <= TARGETS["freelb_memory"] else "missed"
        notes.append(f"target FreeLB peak memory <= {TARGETS['freelb_memory']} x vanilla: {verdict} ({mem:.2f}).")
    pairs = [
        (
            "trainer:vanilla",
            "floor",
            TARGETS["trainer_floor"],
            f"training step <= {TARGETS['trainer_floor']} x the floor",
        ),
        ("trainer:vanilla", "stock-trainer", 1.0, "our vanilla Trainer step <= the stock Trainer's"),
        ("method:smart,bregman=false", "smart-pytorch", 1.0, "our SMART step (no Bregman term) <= smart-pytorch's"),
    ]
    for ours, theirs, limit, label in pairs:
        if ours in rows and theirs in rows:
            ratio = rows[ours]["median_s"] / rows[theirs]["median_s"]
            per_round = _round_ratios(rows[ours], rows[theirs])
            spread = f"; round by round {', '.join(f'{x:.2f}' for x in per_round)}" if per_round else ""
            per_turn = turn_ratios(turns, ours, theirs)
            if per_turn:
                ratio_in_turns, shown, unsure = _by_turns(per_turn, limit)
                notes.append(
                    f"target {label}: {'met' if ratio_in_turns <= limit else 'missed'} (median per-turn ratio "
                    f"{shown}; fastest rounds {ratio:.2f}{spread})"
                    + (f"; {limit:g} lies inside the interval: these turns cannot tell." if unsure else ".")
                )
            else:
                notes.append(f"target {label}: {'met' if ratio <= limit else 'missed'} ({ratio:.2f}{spread}).")
    return notes


def _round_ratios(ours: dict, theirs: dict) -> list[float]:
    """Ours over theirs within each round (the two kinds ran minutes apart, so a slow spell of a shared machine
    hits both): how far apart the rounds put them, next to the ratio of the fastest rounds. Empty for one round."""
    pairs = list(zip(ours.get("round_medians_s") or [], theirs.get("round_medians_s") or []))  # the rounds both ran
    if len(pairs) < 2 or any(None in pair for pair in pairs):
        return []
    return [x / y for x, y in pairs]


def _quality_plot(runs: list[dict], path: Path) -> Path:
    import matplotlib.pyplot as plt

    runs, _ = common_seeds(runs)  # the table's seeds
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plots(runs: list[dict], cost: dict | None, out: Path) -> list[Path]:
    """quality-<grid>.png per grid (every seed, median bar) and cost.png (seconds per step)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    for grid in dict.fromkeys(r["grid"]["name"] for r in runs):
        made.append(_quality_plot([r for r in runs if r["grid"]["name"] == grid], out / f"quality-{grid}.png"))
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


def _link(path: Path, results_root: Path) -> str:
    return "../" + path.relative_to(results_root.parent.parent).as_posix()


def quality_section(runs: list[dict], hw: Path, results_root: Path) -> list[str]:
    """One grid's quality table, its notes, settings, robustness table and plot, as Markdown lines."""
    grid = runs[0]["grid"]
    table, verdicts = quality_table(runs)
    parts = [
        f"### Quality (grid: {grid['name']}; {len(runs)} runs)",
        "",
        "Primary dev metric x 100, median [min, max] over the seeds every method finished. Paper columns are "
        "other models (RoBERTa-large / BERT-base), shown for context.",
        "",
        table,
        "",
    ]
    parts += [f"- {v}" for v in verdicts] + [""]
    fit = fit_note(runs)
    if fit:
        parts += [fit, ""]
    parts += _captioned(
        "Paired by seed (a seed fixes the head's initialization, dropout and data order for every method): "
        "mean of method minus vanilla on the same seed [95% confidence interval], seeds won, two-sided "
        "paired t-test.",
        paired_table(runs),
    )
    detectable = detectable_note(runs)
    if detectable:
        parts += [detectable, ""]
    parts += _captioned(
        "The gains the papers report over their own vanilla (other models), against the 95% interval above: "
        "a gain above ours is ruled out (at that level) for this model at these settings; one inside ours "
        "could be there unseen.",
        paper_gain_table(runs),
    )
    parts += [f"This grid: {quality_verdict(runs)}", ""]
    overrides = {
        k: grid.get(k) for k in ("per_task", "per_method", "method_args", "per_task_method_args") if grid.get(k)
    }
    parts += [
        f"Settings: {json.dumps(grid['train'])}; overrides: {json.dumps(overrides)}; every other "
        "hyper-parameter is the method's default (`advlm list`) when the run was made.",
        "",
    ]
    outdated = outdated_defaults_note(runs)
    if outdated:
        parts += [outdated, ""]
    parts += _captioned(
        "#### Robustness (FreeLB Table 5 measure, per run on its own dev slice)", robustness_table(runs)
    )
    png = hw / f"quality-{grid['name']}.png"
    if png.exists():
        parts += [f"![{png.name}]({_link(png, results_root)})", ""]
    return parts


def outdated_defaults_note(runs: list[dict]) -> str | None:
    """Hyper-parameters runs took from a default that has changed since (the grid reruns them when run again)."""
    from advlm.methods import build_method

    changed: dict[str, dict[str, tuple]] = {}
    defaults = {m: build_method(m).config() for m in {r["method"] for r in runs}}
    for r in runs:
        grid = r["grid"]
        pinned = {**grid.get("method_args", {}).get(r["method"], {})}
        pinned.update(grid.get("per_task_method_args", {}).get(r["task"], {}).get(r["method"], {}))
        now = defaults[r["method"]]
        for key, value in r.get("method_args", {}).items():
            if key not in pinned and key in now and now[key] != value:
                changed.setdefault(r["method"], {})[key] = (value, now[key])
    if not changed:
        return None
    listed = "; ".join(
        f"{m}: " + ", ".join(f"{k} {old} (now {new})" for k, (old, new) in keys.items()) for m, keys in changed.items()
    )
    return f"Made with defaults that have changed since (the grid reruns these runs when next run): {listed}."


def _captioned(caption: str, body: str | None) -> list[str]:
    """A caption and its table as Markdown lines; nothing when there is no table."""
    return [caption, "", body, ""] if body else []


def seeds_compared(runs: list[dict]) -> int:
    """How many seeds the quality table compares (those every method of a task finished)."""
    return max(len(rs) for rs in _by_task_method(common_seeds(runs)[0]).values())


def quality_verdict(runs: list[dict]) -> str:
    """Whether a grid measures the quality target (RTE, MRPC, CoLA and STS-B, 5 seeds) and, if so, whether
    FreeLB, SMART and TextAT each beat vanilla's median on at least 3 of the 4."""
    if not TARGET_TASKS <= {r["task"] for r in runs} or seeds_compared(runs) < 5:
        return "does not measure the quality target (FreeLB, SMART, TextAT each above vanilla's median on 3 of RTE, MRPC, CoLA, STS-B over 5 seeds)."
    kept, _ = common_seeds([r for r in runs if r["task"] in TARGET_TASKS])
    wins = _wins(_medians(kept), sorted(TARGET_TASKS))
    ran = [m for m in CHALLENGERS if m in wins]
    short = [m for m in ran if len(wins[m][0]) < 3]
    absent = (
        f"; {', '.join(m for m in CHALLENGERS if m not in wins)} not in this grid"
        if len(ran) < len(CHALLENGERS)
        else ""
    )
    if not ran:
        return "quality target not measured (none of FreeLB, SMART, TextAT in this grid)."
    if short:
        return f"quality target not met ({', '.join(short)} below 3 of 4{absent})."
    return f"quality target met{' by ' + ', '.join(ran) if absent else ''}{absent}."


def cost_files(hw: Path) -> list[Path]:
    """A hardware folder's cost measurements: cost.json (the latest, what `advlm bench` writes) and earlier ones
    kept beside it as cost-<label>.json (a later run on a lent machine does not erase the one before)."""
    return [f for f in [hw / "cost.json", *sorted(hw.glob("cost-*.json"))] if f.exists()]


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
    header = len(parts)
    glance = [
        "## The issue's targets at a glance",
        "",
        "Each verdict is repeated, with its numbers, in the sections below. Cost verdicts compare single "
        "medians; each hardware's notes say which differences are within its noise.",
        "",
    ]
    for hw in sorted(p for p in results_root.iterdir() if p.is_dir()):
        runs = load_runs(hw)
        costs = [(f, json.loads(f.read_text())) for f in cost_files(hw)]
        glance += [f"- **{hw.name}**"]
        for grid in dict.fromkeys(r["grid"]["name"] for r in runs):
            grid_runs = [r for r in runs if r["grid"]["name"] == grid]
            wins = [v for v in quality_table(grid_runs)[1] if v.startswith(CHALLENGERS)]
            stale = (
                " Some runs predate a changed default (see the grid's section)."
                if outdated_defaults_note(grid_runs)
                else ""
            )
            glance += [
                f"  - grid {grid}, {seeds_compared(grid_runs)} seeds: {quality_verdict(grid_runs)} "
                + " ".join(wins)
                + stale
            ]
        for file, cost in costs:
            label = f"[{file.name}] " if len(costs) > 1 else ""
            glance += [f"  - {label}{n}" for n in cost_table(cost)[1] if n.startswith("target")]
        parts += [f"## {hw.name}", ""]
        for grid in dict.fromkeys(r["grid"]["name"] for r in runs):
            parts += quality_section([r for r in runs if r["grid"]["name"] == grid], hw, results_root)
        for file, cost in costs:
            table, notes = cost_table(cost)
            s = cost["settings"]
            source = f"; {file.name}, code {cost['environment'].get('git_commit', '?')[:7]}" if len(costs) > 1 else ""
            parts += (
                [
                    f"### Cost per optimizer step (batch {s['batch_size']} x {s['seq_len']} tokens, "
                    f"{s['steps']} measured steps after {s['warmup']} warm-up, "
                    + (f"the faster of {s['rounds']} rounds, " if s.get("rounds", 1) > 1 else "")
                    + (
                        f"and {cost['interleaved']['turns']} turns of the kinds taking turns, "
                        if "interleaved" in cost
                        else ""
                    )
                    + f"{cost['environment']['device']}{source})",
                    "",
                    "ops/step, host syncs/step and python calls/step are counted, not timed, on one more step "
                    "each: the same on any machine. On a GPU, where a small model's step is bound by launching "
                    "kernels, ops and Python calls are time, and a host sync stalls the launch queue.",
                    "",
                    table,
                    "",
                ]
                + [f"- {n}" for n in notes]
                + [""]
            )
        if (hw / "notes.md").exists():  # hand-written observations on these results
            parts += ["### Notes", "", (hw / "notes.md").read_text().strip(), ""]
        if (hw / "cost.png").exists():
            parts += [f"![cost.png]({_link(hw / 'cost.png', results_root)})", ""]
    docs.write_text("\n".join(parts[:header] + glance + [""] + parts[header:]))
    return docs
