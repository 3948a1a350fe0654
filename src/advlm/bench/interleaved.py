"""Step times with the kinds taking turns, step by step: a cost ratio that a drifting machine does not move.

The cost table's rounds time 50 steps of one kind, then 50 of the next: on the lent H100 one kind's round
medians differed by up to 37% between rounds minutes apart (the floor's 16.3 to 29.7 ms on the fourth lease),
far more than the 5% the overhead target allows, and the fastest rounds of two kinds came from different
moments. Here every kind runs on one model and batch, one step each in turn (the order rotated every turn, so
that no kind always follows the same other), for `steps` turns after `warmup` turns. A kind's i-th step and
vanilla's i-th step ran a fraction of a second apart on a GPU (seconds on a CPU), so their ratio does not see a
drift slower than a turn; the report takes the median of those ratios over the turns.

Only kinds whose step is one call (`floor`, `method:NAME`, `smart-pytorch`); the Trainer kinds own their loop
and are measured in rounds. Departures from the rounds: every kind trains the same model (its weights move
under every kind's updates, which a step's time does not depend on), and memory is not measured here (the
rounds measure it, one kind at a time).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import torch

from advlm.bench.cost import STEP_KINDS, child_results, step_of, sync_device, training_setup


def interleavable(kind: str) -> bool:
    return kind in STEP_KINDS or kind.startswith("method:")


def measure_interleaved(
    kinds: list[str],
    batch_size: int,
    seq_len: int,
    steps: int,
    warmup: int,
    device_name: str,
    model_path: str | None = None,
    report_every: int = 10,
) -> Iterator[dict[str, Any]]:
    """Yields the times so far (`{"turns": n, "times_s": {kind: [...]}, "errors": {kind: message}}`) every
    `report_every` measured turns and after the last. A kind that fails is dropped, with its error."""
    device = torch.device(device_name)
    model, batch, optimizer, autocast = training_setup(batch_size, seq_len, device, model_path)
    steps_of, errors = {}, {}
    for kind in kinds:
        try:
            steps_of[kind] = step_of(kind, model, batch, optimizer, autocast)
        except Exception as exc:  # an unknown kind, a package that is missing: the others still run
            errors[kind] = f"{type(exc).__name__}: {exc}"
    times: dict[str, list[float]] = {kind: [] for kind in steps_of}
    for turn in range(warmup + steps):
        order = list(steps_of)
        order = order[turn % len(order) :] + order[: turn % len(order)] if order else []
        for kind in order:
            try:
                sync_device(device)
                start = time.perf_counter()
                steps_of[kind]()
                sync_device(device)
            except Exception as exc:
                errors[kind] = f"{type(exc).__name__}: {exc}"
                del steps_of[kind], times[kind]
                continue
            if turn >= warmup:
                times[kind].append(time.perf_counter() - start)
        measured = turn + 1 - warmup
        if measured > 0 and (measured % report_every == 0 or turn == warmup + steps - 1):
            yield {"turns": measured, "warmup": warmup, "times_s": times, "errors": errors}


def print_interleaved(*args: Any) -> None:
    """`measure_interleaved` in a child process: one `RESULT` line on stdout per report."""
    for report in measure_interleaved(*args):
        print("RESULT" + json.dumps(report), flush=True)


def measure_interleaved_kinds(
    kinds: list[str], settings: dict[str, Any], device: str, model_path: str | None = None, on_result=None
) -> dict[str, Any] | None:
    """The interleaved times of the one-call kinds among `kinds`, in a child process (`settings`:
    batch_size, seq_len, interleaved_steps, interleaved_warmup); `on_result(report)` after each report. Returns
    the last report, None when the child reported nothing (its error then in `{"error": ...}`)."""
    from tqdm.auto import tqdm

    kinds = [k for k in kinds if interleavable(k)]
    steps = settings["interleaved_steps"]
    args = (kinds, settings["batch_size"], settings["seq_len"], steps, settings["interleaved_warmup"], device)
    code = f"from advlm.bench.interleaved import print_interleaved; print_interleaved(*{args!r}, {model_path!r})"
    last = None
    with tqdm(total=steps, desc="cost, kinds taking turns") as bar:
        for report in child_results(code):
            if "turns" not in report:  # the child failed
                return last or report
            bar.update(report["turns"] - bar.n)
            last = report
            if on_result:
                on_result(report)
    return last


def turn_ratios(interleaved: dict[str, Any] | None, ours: str, theirs: str) -> list[float]:
    """`ours` over `theirs`, turn by turn (the turns both measured); empty when either is missing."""
    times = (interleaved or {}).get("times_s", {})
    return [a / b for a, b in zip(times.get(ours, []), times.get(theirs, []))]


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free interval for the median of `values`: the order statistics x(j) and x(n+1-j), j the
    binomial(n, 1/2) quantile at (1 - level) / 2, which cover the true median with probability at least `level`.
    None when there are too few values for one (fewer than 6 at 95%)."""
    from scipy.stats import binom

    j = int(binom.ppf((1 - level) / 2, len(values), 0.5))
    if j < 1:
        return None
    ordered = sorted(values)
    return ordered[j - 1], ordered[len(values) - j]
