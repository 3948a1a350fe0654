"""Step times with the kinds taking turns, step by step: a cost ratio that a drifting machine does not move.

The lab's rounds time many steps of one kind, then many of the next; on a shared or lent machine a kind's round
medians can differ between rounds minutes apart by more than the overhead a target allows, and the fastest
rounds of two kinds can come from different moments (benchmarks/results/*/notes.md). Here every kind runs on one
model and batch, one step each in turn (the order rotated every turn, so that no kind always follows the same
other); a kind's i-th step and vanilla's i-th step ran moments apart, so their ratio does not see a drift
slower than a turn, and the report takes the median of those ratios over the turns.

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
from typing import Any

import torch

from advlm.bench.cost import sync_device, take_turns, time_step, training_setup
from lab.kinds import STEP_KINDS, build_trainer, parse_kind, step_of

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


class TrainerInTurns:
    """A Trainer training in its own thread, one step per call: the call lets the thread run and waits until
    the Trainer's next step end; returns the seconds from the thread's resumption to that step end."""

    def __init__(self, kind, setup, total: int, device: torch.device) -> None:
        from transformers import TrainerCallback

        self.model = setup.model
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

        trainer = build_trainer(kind, setup, total, Pause())
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


def timer(label: str, setup, total: int, device: torch.device):
    """A callable that runs one step of the kind `label` and returns its seconds."""
    kind = parse_kind(label)
    if isinstance(kind, STEP_KINDS):
        return functools.partial(time_step, step_of(kind, setup), device)
    return TrainerInTurns(kind, setup, total, device)


def print_turns(
    labels: list[str],
    batch_size: int,
    seq_len: int,
    steps: int,
    warmup: int,
    device_name: str,
    model_path: str | None = None,
    report_every: int = 10,
) -> None:
    """The kinds taking turns, in this process: one `RESULT` line on stdout (`{"turns": n, "warmup": w,
    "times_s": {label: [...]}, "errors": {label: message}}`) every `report_every` measured turns and after the
    last. A kind that fails is dropped, with its error."""
    device = torch.device(device_name)
    setup = training_setup(batch_size, seq_len, device, model_path)
    timers, errors = {}, {}
    for label in labels:
        try:
            timers[label] = timer(label, setup, warmup + steps + 1, device)
        except Exception as exc:  # an unknown kind, a package that is missing: the others still run
            errors[label] = f"{type(exc).__name__}: {exc}"

    def report(done: int, times: dict, failed: dict) -> None:
        measured = done - warmup
        if measured > 0 and (measured % report_every == 0 or done == warmup + steps):
            report = {"turns": measured, "warmup": warmup, "times_s": times, "errors": {**errors, **failed}}
            print("RESULT" + json.dumps(report), flush=True)

    try:
        take_turns(timers, steps, warmup, report)
    finally:
        for runner in timers.values():
            if isinstance(runner, TrainerInTurns):
                runner.close()


def measure_turns(labels: list[str], settings: dict[str, Any], device: str, model_path=None, on_result=None):
    """The kinds taking turns in a child process (`settings`: batch_size, seq_len, interleaved_steps,
    interleaved_warmup); `on_result(report)` after each report. Returns the last report, or `{"error": ...}`
    when the child failed before reporting."""
    from tqdm.auto import tqdm

    from lab.cost import child_results

    steps = settings["interleaved_steps"]
    args = (labels, settings["batch_size"], settings["seq_len"], steps, settings["interleaved_warmup"], device)
    last = None
    with tqdm(total=steps, desc="cost, kinds taking turns") as bar:
        for report in child_results("print_turns", *args, model_path):
            if "turns" not in report:  # the child failed
                return last or report
            bar.update(report["turns"] - bar.n)
            last = report
            if on_result:
                on_result(report)
    return last
