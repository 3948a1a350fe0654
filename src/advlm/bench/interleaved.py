"""Step times with the kinds taking turns, step by step: a cost ratio that a drifting machine does not move.

The cost table's rounds time 50 steps of one kind, then 50 of the next: on the lent H100 one kind's round
medians differed by up to 37% between rounds minutes apart (the floor's 16.3 to 29.7 ms on the fourth lease),
far more than the 5% the overhead target allows, and the fastest rounds of two kinds came from different
moments. Here every kind runs on one model and batch, one step each in turn (the order rotated every turn, so
that no kind always follows the same other), for `steps` turns after `warmup` turns. A kind's i-th step and
vanilla's i-th step ran a fraction of a second apart on a GPU (seconds on a CPU), so their ratio does not see a
drift slower than a turn; the report takes the median of those ratios over the turns.

A Trainer kind (`trainer:NAME`, `stock-trainer`) owns its loop, so it runs in a thread of its own that a
callback stops at every step end and the turn resumes for one step: one thread runs at a time, and its step is
timed from its resumption to its next step end (data in, collate, step, optimizer and scheduler, callbacks),
as the rounds time it. Departures from the rounds: every kind trains the same model (its weights move under
every kind's updates, which a step's time does not depend on; each Trainer has its own optimizer), and memory
is not measured here (the rounds measure it, one kind at a time). On a GPU a Trainer's accelerator replaces
the model's `forward` (bf16 autocast, outputs cast to fp32) and marks the model prepared, so that a second
Trainer does not wrap it again: the wrapped forward is put in place for the Trainers' turns only, and the other
kinds run the model's own, as their users do.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import torch

from advlm.bench.cost import (
    STEP_KINDS,
    build_trainer,
    child_results,
    step_of,
    sync_device,
    time_step,
    training_setup,
)


def interleavable(kind: str) -> bool:
    return kind in STEP_KINDS or kind.startswith(("method:", "trainer:")) or kind == "stock-trainer"


_TRAINER_FORWARD = "_advlm_trainer_forward"  # where the forward a Trainer's accelerator wrapped waits its turn


def _trainer_forward_in(model) -> None:
    """Puts back the forward a Trainer's accelerator wrapped (none before the first Trainer step)."""
    wrapped = model.__dict__.get(_TRAINER_FORWARD)
    if wrapped is not None:
        model.__dict__["forward"] = wrapped


def _trainer_forward_out(model) -> None:
    """Sets aside the forward a Trainer's accelerator wrapped (an instance attribute over the class's)."""
    wrapped = model.__dict__.pop("forward", None)
    if wrapped is not None:
        model.__dict__[_TRAINER_FORWARD] = wrapped


class _TrainerInTurns:
    """A Trainer training in its own thread, one step per call: the call lets the thread run and waits until
    the Trainer's next step end; returns the seconds from the thread's resumption to that step end."""

    def __init__(self, kind: str, model, batch, total: int, device: torch.device) -> None:
        from transformers import TrainerCallback

        self.model = model
        self._go, self._stopped = threading.Semaphore(0), threading.Semaphore(0)
        self._elapsed, self._error, self._start, self.device = None, None, 0.0, device
        self._closing = False
        turns = self

        class Pause(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                sync_device(turns.device)
                turns._elapsed = time.perf_counter() - turns._start
                turns._stopped.release()
                turns._go.acquire()  # until the next turn
                control.should_training_stop = turns._closing
                turns._start = time.perf_counter()

        trainer = build_trainer(kind, model, batch, total, device, Pause())
        self.thread = threading.Thread(target=self._train, args=(trainer,), daemon=True)
        self.thread.start()

    def _train(self, trainer) -> None:
        self._go.acquire()
        self._start = time.perf_counter()
        try:
            trainer.train()
            self._error = RuntimeError("the Trainer ran out of steps")
        except Exception as exc:  # handed to the turn that runs this step
            self._error = exc
        self._elapsed = None
        self._stopped.release()

    def __call__(self) -> float:
        _trainer_forward_in(self.model)
        self._go.release()
        self._stopped.acquire()
        _trainer_forward_out(self.model)
        if self._elapsed is None:
            raise self._error
        return self._elapsed

    def close(self) -> None:
        """Lets the Trainer end its training and its thread finish."""
        self._closing = True
        while self.thread.is_alive():  # one turn more ends it; a Trainer that never stepped takes two
            self._go.release()
            self._stopped.acquire(timeout=1)
        self.thread.join()


def _runner(kind: str, model, batch, optimizer, autocast, total: int, device: torch.device):
    """A callable that runs one step of `kind` and returns its seconds."""
    if kind.startswith("trainer:") or kind == "stock-trainer":
        return _TrainerInTurns(kind, model, batch, total, device)
    return functools.partial(time_step, step_of(kind, model, batch, optimizer, autocast), device)


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
    runners, errors = {}, {}
    for kind in kinds:
        try:
            runners[kind] = _runner(kind, model, batch, optimizer, autocast, warmup + steps + 1, device)
        except Exception as exc:  # an unknown kind, a package that is missing: the others still run
            errors[kind] = f"{type(exc).__name__}: {exc}"
    try:
        yield from _turns(runners, errors, steps, warmup, report_every)
    finally:
        for runner in runners.values():
            if isinstance(runner, _TrainerInTurns):
                runner.close()


def _turns(runners: dict, errors: dict, steps: int, warmup: int, report_every: int) -> Iterator[dict[str, Any]]:
    times: dict[str, list[float]] = {kind: [] for kind in runners}
    for turn in range(warmup + steps):
        order = list(runners)
        order = order[turn % len(order) :] + order[: turn % len(order)] if order else []
        for kind in order:
            try:
                elapsed = runners[kind]()
            except Exception as exc:
                errors[kind] = f"{type(exc).__name__}: {exc}"
                del runners[kind], times[kind]
                continue
            if turn >= warmup:
                times[kind].append(elapsed)
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
    """The interleaved times of `kinds` (all but those that cannot take turns), in a child process (`settings`:
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
