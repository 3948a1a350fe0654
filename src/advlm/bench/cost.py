"""`advlm bench`'s cost table: what one optimizer step of each method costs, measured side by side in one run.

Every method trains the same model on one fixed batch (random token ids, every position real) with AdamW, the
methods taking turns: one step each (`method.step`, optimizer step, zero_grad), the order rotated every turn,
for `turns` turns after `warmup`. A method's step and vanilla's step of the same turn ran moments apart, so
their ratio does not see a machine that drifts slower than a turn; the table reports the median of those
per-turn ratios with a distribution-free 95% interval, and the overhead: that ratio over the method's ideal
(its forward+backward passes per optimizer step, `method.passes`).

Peak memory is each method's own: on CUDA the allocator's peak over two steps of that method alone (this
process, after the turns); on CPU the peak resident memory of a child process that runs only that method (a
process's resident memory never shrinks back, so in one process every method would show the largest).
"""

from __future__ import annotations

import functools
import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class CostKind:
    """One row of the cost table: a method, with hyper-parameters that differ from its defaults."""

    method: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """`method:NAME[,key=value...]`: the row's name in the table and in cost.json."""
        return "method:" + ",".join([self.method, *(f"{k}={v}" for k, v in self.overrides)])

    @classmethod
    def parse(cls, label: str) -> CostKind:
        """The kind of a `method:NAME[,key=value...]` label; ValueError for any other label."""
        if not label.startswith("method:"):
            raise ValueError(f"not a method's cost kind: {label!r}")
        name, *pairs = label.removeprefix("method:").split(",")
        return cls(name, tuple(tuple(pair.split("=", 1)) for pair in pairs))

    def build(self):
        """The method with these overrides (values given as text are coerced to the field's type)."""
        from advlm.methods import build_method

        return build_method(self.method, **dict(self.overrides))

    @property
    def ideal(self) -> float:
        """The ideal ratio to vanilla: the method's passes per optimizer step."""
        return self.build().passes


def fixed_batch(vocab_size: int, batch_size: int, seq_len: int, device) -> dict[str, torch.Tensor]:
    """One batch of random token ids ([CLS] ... [SEP], every position real) and binary labels, seeded."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, vocab_size, (batch_size, seq_len), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "token_type_ids": torch.zeros_like(ids),
        "labels": torch.randint(0, 2, (batch_size,), generator=g),
    }
    return {k: v.to(device) for k, v in batch.items()}


@dataclass
class Setup:
    """What every kind trains: the model in training mode, its tokenizer, the fixed batch, fused AdamW, and the
    autocast context (bf16 on CUDA, none on CPU)."""

    model: torch.nn.Module
    tokenizer: Any
    batch: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    autocast: Any


def training_setup(batch_size: int, seq_len: int, device: torch.device, model_path: str | None) -> Setup:
    """The default sentence classifier (or `model_path`) set up to train on the fixed batch."""
    from advlm.modeling import load_model, load_tokenizer
    from advlm.tasks import get_task

    torch.manual_seed(0)
    model = load_model(model_path, get_task("sst2")).to(device).train()
    batch = fixed_batch(model.config.vocab_size, batch_size, seq_len, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, fused=True)
    cuda = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
    return Setup(model, load_tokenizer(model_path), batch, optimizer, autocast)


def method_step(kind: CostKind, setup: Setup) -> Callable[[], None]:
    """One optimizer step of `kind`'s method as a callable: its passes, the optimizer step, zero_grad."""
    method = kind.build()
    method.prepare(setup.model, tokenizer=setup.tokenizer, total_steps=1000)

    def step() -> None:
        with setup.autocast:
            method.step(setup.model, setup.batch)
        setup.optimizer.step()
        setup.optimizer.zero_grad(set_to_none=True)

    return step


def sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_step(step: Callable[[], Any], device: torch.device) -> float:
    """Seconds of one call of `step`, the device synchronized before and after."""
    sync_device(device)
    start = time.perf_counter()
    step()
    sync_device(device)
    return time.perf_counter() - start


def take_turns(
    timers: dict[str, Callable[[], float]], turns: int, warmup: int, on_turn: Callable | None = None
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Each timer (one step, returning its seconds) once per turn, the order rotated every turn: (label ->
    seconds per measured turn, label -> error of a timer that failed, which then leaves the turns).
    `on_turn(turns done, times, errors)` after every turn."""
    timers, errors = dict(timers), {}
    times: dict[str, list[float]] = {label: [] for label in timers}
    for turn in range(warmup + turns):
        order = list(timers)
        shift = turn % max(len(order), 1)
        for label in order[shift:] + order[:shift]:
            try:
                elapsed = timers[label]()
            except Exception as exc:  # one kind failing must not lose the others
                errors[label] = f"{type(exc).__name__}: {exc}"
                del timers[label], times[label]
                continue
            if turn >= warmup:
                times[label].append(elapsed)
        if on_turn is not None:
            on_turn(turn + 1, times, errors)
    return times, errors


def peak_memory(label: str, batch_size: int, seq_len: int, device_name: str, model_path: str | None) -> int:
    """Bytes at the peak of two steps of one kind alone, model and optimizer state included: on CUDA the
    allocator's peak; on CPU this process's peak resident memory (run it in a process of its own)."""
    from transformers.utils import logging as hf_logging

    from advlm.host_memory import keep_freed_memory

    hf_logging.set_verbosity_error()  # a child process: the command line's settings do not reach it
    keep_freed_memory()
    device = torch.device(device_name)
    step = method_step(CostKind.parse(label), training_setup(batch_size, seq_len, device, model_path))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step(), step()
    sync_device(device)
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resident_peak()


def resident_peak() -> int:
    """This process's peak resident memory in bytes: the high-water mark of its address space (`VmHWM`), which,
    unlike `ru_maxrss`, starts afresh in a spawned child instead of carrying over the parent's."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024  # kB


def peak_memories(labels: list[str], settings: dict[str, Any], device: str, model_path: str | None) -> dict:
    """label -> peak bytes (or the error), each on CPU in a child process of its own."""
    args = (settings["batch_size"], settings["seq_len"], device)
    out: dict[str, int | str] = {}
    if device.startswith("cuda"):
        for label in labels:
            out[label] = peak_memory(label, *args, model_path)
            torch.cuda.empty_cache()
        return out
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for label in labels:
            try:
                out[label] = pool.apply(peak_memory, (label, *args, model_path))
            except Exception as exc:
                out[label] = f"{type(exc).__name__}: {exc}"
    return out


def measure_costs(
    kinds: list[CostKind], settings: dict[str, Any], device_name: str, model_path: str | None = None
) -> dict[str, Any]:
    """The cost table's measurements (`settings`: batch_size, seq_len, turns, warmup): one row per kind
    (median seconds per step over the turns, peak memory) and every turn's times, as cost.json holds them."""
    from tqdm.auto import tqdm

    device = torch.device(device_name)
    setup = training_setup(settings["batch_size"], settings["seq_len"], device, model_path)
    timers, errors = {}, {}
    for kind in kinds:
        try:
            timers[kind.label] = functools.partial(time_step, method_step(kind, setup), device)
        except Exception as exc:  # an unknown method or setting: the others still run
            errors[kind.label] = f"{type(exc).__name__}: {exc}"
    with tqdm(total=settings["warmup"] + settings["turns"], desc="cost, methods taking turns") as bar:
        times, failed = take_turns(timers, settings["turns"], settings["warmup"], lambda *_: bar.update())
    errors.update(failed)
    del setup, timers
    memories = peak_memories(list(times), settings, device_name, model_path)
    rows = []
    for label, ts in times.items():
        median = statistics.median(ts)
        memory = memories.get(label)
        row = {"kind": label, "median_s": median, "min_s": min(ts), "max_s": max(ts), "steps": len(ts)}
        row.update(examples_per_s=settings["batch_size"] / median, batch_size=settings["batch_size"])
        row.update(seq_len=settings["seq_len"], device=device_name)
        if isinstance(memory, int):
            row["peak_memory_bytes"] = memory
        else:
            row["memory_error"] = memory
        rows.append(row)
    rows += [{"kind": label, "error": error} for label, error in errors.items()]
    turns = {"turns": settings["turns"], "warmup": settings["warmup"], "times_s": times, "errors": errors}
    return {"results": rows, "interleaved": turns}
