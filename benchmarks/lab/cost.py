"""The lab's cost measurements: every kind (`lab.kinds`) in rounds, one kind after another, with counts.

Each measurement trains the default model on one fixed batch with AdamW (`advlm.bench.cost.training_setup`):
`steps` timed steps after `warmup`, then two more counted (`lab.counters`). On CPU each measurement runs in a
child process of its own (its resident-memory peak is its own); on GPU all of them run in one child, kind
after kind, round after round (peak memory there is the allocator's, reset per kind; a process's start and
CUDA set-up would cost more than the measurement). Every kind runs `rounds` times over, all kinds per round,
so that a slow spell of a shared machine hits every kind alike; each keeps its fastest round and records every
round's median. The kinds taking turns (`lab.turns`) are the drift-free ratio; these rounds give memory and
counts. A child prints one `RESULT{json}` line per result, so a child that dies keeps what it reported.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from advlm.bench.cost import sync_device, time_step, training_setup
from lab.counters import Counts, PeakRSS
from lab.kinds import STEP_KINDS, build_trainer, parse_kind, step_of


def timed(step, steps: int, warmup: int, device, counts: Counts) -> list[float]:
    """Times `steps` steps after `warmup`, then counts two more steps (untimed)."""
    times = [time_step(step, device) for _ in range(warmup + steps)][warmup:]
    for counter in (counts.ops, counts.calls):
        with counter:
            step()
        sync_device(device)
    return times


def trainer_times(kind, setup, steps: int, warmup: int, device, counts: Counts) -> list[float]:
    """A Trainer's step times: the intervals between step ends (data loading included); the last two counted."""
    from transformers import TrainerCallback

    total = steps + warmup + 3  # +1 for the first interval, +2 counted
    ends = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            sync_device(device)
            ends.append(time.perf_counter())
            if state.global_step == total - 2:
                counts.ops.__enter__()
            elif state.global_step == total - 1:
                counts.ops.__exit__(None, None, None)
                counts.calls.__enter__()
            elif state.global_step == total:
                counts.calls.__exit__(None, None, None)

    build_trainer(kind, setup, total, Clock()).train()
    return [b - a for a, b in zip(ends, ends[1:])][warmup:-2]


def measure(label: str, batch_size: int, seq_len: int, steps: int, warmup: int, device_name: str, model_path=None):
    """One measurement of one kind, in this process; `model_path` None is the packaged default model."""
    device, kind = torch.device(device_name), parse_kind(label)
    allocated_before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    setup = training_setup(batch_size, seq_len, device, model_path)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    counts = Counts()
    with PeakRSS() as sampler:
        if isinstance(kind, STEP_KINDS):
            times = timed(step_of(kind, setup), steps, warmup, device, counts)
        else:
            times = trainer_times(kind, setup, steps, warmup, device, counts)
    # on GPU, less what an earlier kind of the series left behind
    peak = torch.cuda.max_memory_allocated() - allocated_before if device.type == "cuda" else sampler.peak
    median = statistics.median(times)
    return {
        "kind": label,
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "steps": len(times),
        "peak_memory_bytes": int(peak),
        **counts.as_dict(),
        "examples_per_s": batch_size / median,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "device": device_name,
    }


def measure_series(labels: list[str], rounds: int, *args) -> None:
    """Every kind `rounds` times over in this process, one `RESULT` line on stdout per measurement."""
    for _ in range(rounds):
        for label in labels:
            try:
                result = measure(label, *args)
            except Exception as exc:  # one kind failing must not lose the others
                result = {"kind": label, "error": f"{type(exc).__name__}: {exc}"}
            gc.collect()  # the kind's model, optimizer and trainer go before the next kind's peak is taken
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            print("RESULT" + json.dumps(result), flush=True)


def child_results(function: str, *args) -> Iterator[dict[str, Any]]:
    """Runs `function` of this module (`measure_series`, or `lab.turns`' `print_turns`) with JSON `args` in a
    child Python and yields each `RESULT` line's JSON as it comes; then, if the child failed, `{"error": the last
    line of its stderr}`."""
    import tempfile

    lab_root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [lab_root, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "lab.cost", function, json.dumps(args)]
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
        for line in proc.stdout:
            if line.startswith("RESULT"):
                yield json.loads(line[len("RESULT") :])
        if proc.wait() != 0:  # out of memory, a crash in a kernel
            errors.seek(0)
            yield {"error": (errors.read().strip().splitlines() or [f"exit status {proc.returncode}"])[-1]}


def series(labels: list[str], rounds: int, args: tuple) -> Iterator[dict[str, Any]]:
    """`measure_series`'s results as they come from one child; the kinds a dead child did not reach fail."""
    count = 0
    for result in child_results("measure_series", labels, rounds, *args):
        if "kind" in result:
            count += 1
            yield result
        elif count < rounds * len(labels):
            for label in labels[count % len(labels) :]:
                yield {"kind": label, "error": f"the measuring process stopped: {result['error']}"}


def measurements(labels: list[str], rounds: int, args: tuple, one_process: bool) -> Iterator[dict[str, Any]]:
    if one_process:
        yield from series(labels, rounds, args)
        return
    for _ in range(rounds):
        for label in labels:
            yield from series([label], 1, args)


def measure_kinds(labels: list[str], settings: dict, device: str, model_path=None, on_result=None, one_process=None):
    """Every kind `settings["rounds"]` times over; each keeps its fastest round and every round's median. Each
    kind in its own process on CPU, all in one on GPU (`one_process` overrides). `on_result(results)` after
    every measurement."""
    from tqdm.auto import tqdm

    best: dict[str, dict[str, Any]] = {}
    rounds = settings.get("rounds", 1)
    one_process = device.startswith("cuda") if one_process is None else one_process
    args = (settings["batch_size"], settings["seq_len"], settings["steps"], settings["warmup"], device, model_path)
    for result in tqdm(measurements(labels, rounds, args, one_process), total=rounds * len(labels), desc="cost"):
        kind, previous = result["kind"], best.get(result["kind"])
        medians = (previous or {}).get("round_medians_s", []) + [result.get("median_s")]
        if previous is None or ("median_s" in result and result["median_s"] < previous.get("median_s", 1e9)):
            best[kind] = result
        best[kind]["round_medians_s"] = medians
        if on_result:
            on_result(list(best.values()))
    return list(best.values())


if __name__ == "__main__":  # a child of `child_results`
    from lab import turns

    functions = {"measure_series": measure_series, "print_turns": turns.print_turns}
    functions[sys.argv[1]](*json.loads(sys.argv[2]))
