"""The project's own acceptance targets, judged on a lab cost measurement (cost.json): each method's overhead
over its ideal, FreeLB's memory, our Trainer against the hand-written floor and the stock Trainer, our SMART
against smart-pytorch. By the median per-turn ratio where the kinds took turns (drift does not move it), with
its 95% interval, else by the fastest rounds. The user-facing report states numbers, not these targets."""

from __future__ import annotations

import statistics

from advlm.bench.paired import median_interval
from advlm.bench.tables import ideal, turn_ratios
from lab.page import round_ratios

TARGETS = {"overhead": {"cpu": 1.10, "cuda": 1.05}, "freelb_memory": 1.15, "trainer_floor": 1.2}
PAIRS = [
    ("trainer:vanilla", "floor", TARGETS["trainer_floor"], f"training step <= {TARGETS['trainer_floor']} x the floor"),
    ("trainer:vanilla", "stock-trainer", 1.0, "our vanilla Trainer step <= the stock Trainer's"),
    ("method:smart,bregman=false", "smart-pytorch", 1.0, "our SMART step (no Bregman term) <= smart-pytorch's"),
]


def judged(ratios: list[float], limit: float, over: float = 1.0) -> tuple[float, str, bool]:
    """(median of `ratios` over `over`, it shown with its interval, whether `limit` lies inside the interval). To
    three decimals where two would round a value onto `limit` and hide the side it lies on ('1.004')."""
    interval = median_interval(ratios)
    shown = [statistics.median(ratios) / over, *(bound / over for bound in interval or ())]
    digits = 3 if any(x != limit and round(x, 2) == limit for x in shown) else 2
    text = f"{shown[0]:.{digits}f}" + (f" ({shown[1]:.{digits}f}-{shown[2]:.{digits}f})" if interval else "")
    unsure = bool(interval) and shown[1] <= limit < shown[2]
    return shown[0], text, unsure


def overhead_note(cost: dict, rows: dict, base: dict) -> str:
    device = "cuda" if str(base.get("device", "cpu")).startswith("cuda") else "cpu"
    limit = TARGETS["overhead"][device]
    met, missed, unresolved = [], [], []
    for kind, r in rows.items():
        best = ideal(kind)
        if not best or kind == "method:vanilla":
            continue
        per_turn, name = turn_ratios(cost, kind, "method:vanilla"), kind.removeprefix("method:")
        if per_turn:
            over, shown, unsure = judged(per_turn, limit, best)
        else:
            over, unsure = r["median_s"] / base["median_s"] / best, False
            shown = f"{over:.2f}"
        unresolved += [name] * unsure
        (met if over <= limit else missed).append(f"{name} {shown}")
    return (
        f"target overhead <= {limit:.2f} on {device}: met by {', '.join(met) or 'none'}"
        + (f"; missed by {', '.join(missed)}" if missed else "")
        + (f"; the limit lies inside the interval of {', '.join(unresolved)}" if unresolved else "")
        + "."
    )


def target_notes(cost: dict) -> list[str]:
    """Each target said to be met or missed on these numbers."""
    rows = {r["kind"]: r for r in cost["results"] if "median_s" in r}
    base = rows.get("method:vanilla")
    if not base:
        return []
    notes = [overhead_note(cost, rows, base)]
    if "method:freelb" in rows:
        mem = rows["method:freelb"]["peak_memory_bytes"] / base["peak_memory_bytes"]
        verdict = "met" if mem <= TARGETS["freelb_memory"] else "missed"
        notes.append(f"target FreeLB peak memory <= {TARGETS['freelb_memory']} x vanilla: {verdict} ({mem:.2f}).")
    for ours, theirs, limit, label in PAIRS:
        if ours not in rows or theirs not in rows:
            continue
        ratio, per_round = rows[ours]["median_s"] / rows[theirs]["median_s"], round_ratios(rows[ours], rows[theirs])
        spread = f"; round by round {', '.join(f'{x:.2f}' for x in per_round)}" if per_round else ""
        per_turn = turn_ratios(cost, ours, theirs)
        if per_turn:
            in_turns, shown, unsure = judged(per_turn, limit)
            notes.append(
                f"target {label}: {'met' if in_turns <= limit else 'missed'} (median per-turn ratio {shown}; "
                f"fastest rounds {ratio:.2f}{spread})" + (f"; {limit:g} lies inside the interval." if unsure else ".")
            )
        else:
            notes.append(f"target {label}: {'met' if ratio <= limit else 'missed'} ({ratio:.2f}{spread}).")
    return notes


CHALLENGERS = ("freelb", "smart", "textat")
TARGET_TASKS = {"rte", "mrpc", "cola", "stsb"}


def quality_verdict(runs: list[dict]) -> str:
    """Whether a grid measures the quality target (RTE, MRPC, CoLA and STS-B, 5 seeds) and, if so, whether
    FreeLB, SMART and TextAT each beat vanilla's median on at least 3 of the 4."""
    from advlm.bench.tables import by_task_method, common_seeds, medians

    kept, _ = common_seeds([r for r in runs if r["task"] in TARGET_TASKS])
    seeds = max((len(rs) for rs in by_task_method(kept).values()), default=0)
    if not TARGET_TASKS <= {r["task"] for r in kept} or seeds < 5:
        return "does not measure the quality target (FreeLB, SMART, TextAT each above vanilla's median on 3 of RTE, MRPC, CoLA, STS-B over 5 seeds)."
    med = medians(kept)
    wins = {m: sum(med[(t, m)] > med[(t, "vanilla")] for t in TARGET_TASKS) for m in CHALLENGERS if (("rte", m) in med)}
    absent = [m for m in CHALLENGERS if m not in wins]
    absent_note = f"; {', '.join(absent)} not in this grid" if absent else ""
    if not wins:
        return "quality target not measured (none of FreeLB, SMART, TextAT in this grid)."
    short = [m for m, n in wins.items() if n < 3]
    if short:
        return f"quality target not met ({', '.join(short)} below 3 of 4{absent_note})."
    return f"quality target met{' by ' + ', '.join(wins) if absent else ''}{absent_note}."
