"""What a training step costs, measured side by side in one run: every method, the floor, and what users
would use instead.

On CPU each measurement runs in its own process (so the resident-memory peak is its own); on GPU all of them
run in one process, kind after kind, round after round (peak memory there is the allocator's, reset per kind,
and a process's start and CUDA set-up, about 15 s, would otherwise cost more than the measurement: one round
of every kind took 230 s of a 15-minute lease, and single rounds on the lent H100 varied by up to 30% between
calls). Each measures the default model on one fixed pre-tokenized batch (random token ids, every position
real) with AdamW. Kinds:
- `method:NAME`  NAME's `step` + optimizer step, timed per optimizer step;
- `floor`        a minimal hand-written loop: forward, backward, AdamW step, zero_grad;
- `trainer:NAME` our whole training step in `AdversarialTrainer` as `advlm train` sets it up (its training
                 arguments, tensor features, its collator), wall time from one step's end to the next
                 (data in, collate, method step, clipping, optimizer and scheduler, callbacks);
- `stock-trainer` the same with the stock `transformers.Trainer` at its defaults (vanilla);
- `smart-pytorch` the `smart-pytorch` package's SMART regularizer (no Bregman term) on the same batch.
Times are medians over the measured steps (after warm-up), synchronized on GPU; peak memory is the
process's resident memory sampled every 2 ms while the steps run (model loaded) on CPU, and
`torch.cuda.max_memory_allocated` since the steps began on GPU. These are the rounds; before them
`advlm bench` times the kinds taking turns, one step each (`advlm.bench.interleaved`), by which the report
judges the time targets.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

COST_METHODS = ["vanilla", "fgm", "pgd", "freeat", "freelb", "smart", "textat"]


def build_method_spec(spec: str):
    """ "smart,bregman=false" -> build_method("smart", bregman="false") (values coerced to their types)."""
    from advlm.methods import build_method

    name, *pairs = spec.split(",")
    return build_method(name, **dict(pair.split("=", 1) for pair in pairs))


def _batch(tokenizer_vocab: int, batch_size: int, seq_len: int, device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, tokenizer_vocab, (batch_size, seq_len), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "token_type_ids": torch.zeros_like(ids).to(device),
        "labels": torch.randint(0, 2, (batch_size,), generator=g).to(device),
    }


class PeakRSS:
    """Samples this process's resident memory every few milliseconds in a thread: the peak while a block
    runs (process-wide max RSS would be dominated by model loading, the same for every kind)."""

    def __init__(self, interval: float = 0.002):
        import threading

        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current() -> int:
        import os

        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self.current()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


class OpCounter(TorchDispatchMode):
    """Counts what one step dispatches: aten ops (each a kernel launch, or at least dispatcher work, on a GPU,
    where a small model's step is bound by them) and host syncs, the ops that make the host wait for the
    device (`.item()`/`bool()` of a tensor, nonzero, unique, boolean-mask indexing). The same counts on any
    device, so a CPU run shows what would cost on a GPU."""

    SYNCING = (
        "aten._local_scalar_dense.",
        "aten.nonzero.",
        "aten._unique2.",
        "aten.unique_dim.",
        "aten.unique_consecutive.",
        "aten.masked_select.",
    )

    def __init__(self) -> None:
        super().__init__()
        self.ops, self.syncs = 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        name = str(func)
        if name.startswith(self.SYNCING) or (name.startswith("aten.index.Tensor") and _bool_index(args)):
            self.syncs += 1
        return func(*args, **(kwargs or {}))


class CallCounter:
    """Counts Python function calls in a block (Python and C functions, as cProfile counts them): the host
    work a step does besides dispatching ops. Deterministic, unlike times on a shared CPU."""

    def __init__(self) -> None:
        self.calls = 0

    def _hook(self, frame, event, arg) -> None:
        if event in ("call", "c_call"):
            self.calls += 1

    def __enter__(self) -> CallCounter:
        sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        sys.setprofile(None)


class Counts:
    """One step's counts: ops and host syncs (one step under `OpCounter`), Python calls (another step under
    `CallCounter`; counting both at once would count the op counter's own Python)."""

    def __init__(self) -> None:
        self.ops, self.calls = OpCounter(), CallCounter()

    def as_dict(self) -> dict[str, int]:
        return {
            "ops_per_step": self.ops.ops,
            "host_syncs_per_step": self.ops.syncs,
            "python_calls_per_step": self.calls.calls,
        }


def _bool_index(args) -> bool:
    return any(torch.is_tensor(t) and t.dtype == torch.bool for t in args[1])


def sync_device(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_step(step, device) -> float:
    """Seconds of one call of `step`, the device synchronized before and after."""
    sync_device(device)
    start = time.perf_counter()
    step()
    sync_device(device)
    return time.perf_counter() - start


def _timed(step, steps: int, warmup: int, device, counts: Counts) -> list[float]:
    """Times `steps` steps after `warmup`, then counts two more steps (untimed)."""
    times = [time_step(step, device) for _ in range(warmup + steps)][warmup:]
    for counter in (counts.ops, counts.calls):
        with counter:
            step()
        sync_device(device)
    return times


def _trainer_times(kind: str, model, batch, steps: int, warmup: int, device, counts: Counts) -> list[float]:
    from transformers import TrainerCallback

    total = steps + warmup + 3  # +1 for the first interval, +2 counted

    class Clock(TrainerCallback):
        """A step is the interval between two step ends (data loading included); the last two are counted."""

        def __init__(self):
            self.ends = []

        def on_step_end(self, args, state, control, **kwargs):
            sync_device(device)
            self.ends.append(time.perf_counter())
            if state.global_step == total - 2:
                counts.ops.__enter__()
            elif state.global_step == total - 1:
                counts.ops.__exit__(None, None, None)
                counts.calls.__enter__()
            elif state.global_step == total:
                counts.calls.__exit__(None, None, None)

    clock = Clock()
    build_trainer(kind, model, batch, total, device, clock).train()
    intervals = [b - a for a, b in zip(clock.ends, clock.ends[1:])]
    return intervals[warmup:-2]


def build_trainer(kind: str, model, batch, total: int, device, callback):
    """The Trainer of a `trainer:NAME` or `stock-trainer` kind, for `total` steps over copies of `batch`'s rows,
    with `callback` added."""
    from transformers import Trainer, TrainingArguments

    from advlm import AdversarialTrainer
    from advlm.data.collate import TokenizedDataset

    size = len(batch["input_ids"])
    rows = [{k: v[i].cpu() for k, v in batch.items()} for i in range(size)] * total
    cuda = device.type == "cuda"
    if kind == "stock-trainer":  # what a user of the stock Trainer gets: its defaults, lists, its collator
        args = TrainingArguments(
            "/tmp/advlm-bench-trainer",
            max_steps=total,
            per_device_train_batch_size=size,
            learning_rate=2e-5,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            use_cpu=not cuda,
            bf16=cuda,
            optim="adamw_torch_fused",
            logging_strategy="no",
            dataloader_pin_memory=cuda,
        )
        features = [{k: v.tolist() for k, v in row.items()} for row in rows]
        return Trainer(model=model, args=args, train_dataset=TokenizedDataset(features), callbacks=[callback])
    if not kind.startswith("trainer:"):
        raise ValueError(f"unknown cost kind {kind}")
    # what `advlm train` runs: its training arguments, tensor features, its collator
    from advlm.config import TrainConfig
    from advlm.data.collate import PaddingCollator
    from advlm.training import training_arguments

    cfg = TrainConfig(output_dir="/tmp/advlm-bench-trainer", batch_size=size, lr=2e-5, progress=False)
    overrides = dict(max_steps=total, eval_strategy="no", save_strategy="no", load_best_model_at_end=False)
    args = training_arguments(cfg, "accuracy", **overrides, logging_strategy="no", warmup_steps=0)
    return AdversarialTrainer(
        model=model,
        args=args,
        train_dataset=TokenizedDataset(rows),
        data_collator=PaddingCollator(),
        callbacks=[callback],
        method=build_method_spec(kind.split(":", 1)[1]),
    )


def training_setup(batch_size: int, seq_len: int, device: torch.device, model_path: str | None):
    """The default model (or `model_path`) in training mode, the fixed batch, fused AdamW, and the autocast
    context (bf16 on GPU, none on CPU)."""
    from advlm.modeling import load_model
    from advlm.tasks import get_task

    torch.manual_seed(0)
    model = load_model(model_path, get_task("sst2")).to(device).train()
    batch = _batch(model.config.vocab_size, batch_size, seq_len, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, fused=True)
    cuda = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
    return model, batch, optimizer, autocast


def measure(
    kind: str, batch_size: int, seq_len: int, steps: int, warmup: int, device_name: str, model_path: str | None = None
) -> dict[str, Any]:
    """One measurement, in this process; `model_path` None is the packaged default model."""
    device = torch.device(device_name)
    allocated_before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    model, batch, optimizer, autocast = training_setup(batch_size, seq_len, device, model_path)
    per_step_examples = batch_size
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    counts = Counts()
    sampler = PeakRSS()  # entered here, left after the timed steps (the kinds below differ in shape)
    sampler.__enter__()
    if kind in STEP_KINDS or kind.startswith("method:"):
        times = _timed(step_of(kind, model, batch, optimizer, autocast), steps, warmup, device, counts)
    elif kind in ("stock-trainer",) or kind.startswith("trainer:"):
        times = _trainer_times(kind, model, batch, steps, warmup, device, counts)
    else:
        raise ValueError(f"unknown cost kind {kind}")
    sampler.__exit__()
    # on GPU, less what was allocated before this kind's model (nothing in a fresh process; in a series, what
    # an earlier kind left behind)
    peak = torch.cuda.max_memory_allocated() - allocated_before if device.type == "cuda" else sampler.peak
    median = statistics.median(times)
    return {
        "kind": kind,
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "steps": len(times),
        "peak_memory_bytes": int(peak),
        **counts.as_dict(),
        "examples_per_s": per_step_examples / median,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "device": device_name,
    }


STEP_KINDS = ("floor", "smart-pytorch")  # with `method:NAME`: the kinds whose step is one call


def step_of(kind: str, model, batch, optimizer, autocast):
    """One training step of `kind` (`floor`, `method:NAME`, `smart-pytorch`) on `model` and `batch`, as a
    callable: the passes, the optimizer step and zero_grad."""
    if kind == "floor":

        def passes():
            with autocast:
                loss = model(**batch).loss
            loss.backward()

    elif kind.startswith("method:"):
        method = build_method_spec(kind.split(":", 1)[1])
        method.prepare(model)

        def passes():
            with autocast:
                method.step(model, batch)

    elif kind == "smart-pytorch":
        passes = _smart_pytorch_passes(model, batch, autocast)
    else:
        raise ValueError(f"unknown cost kind {kind}")

    def step():
        passes()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def _smart_pytorch_passes(model, batch, autocast):
    """smart-pytorch's SMARTLoss as its README uses it: task loss + weight * SMART(embeddings, logits)."""
    import torch.nn.functional as F
    from smart_pytorch import SMARTLoss, kl_loss, sym_kl_loss

    from advlm.embeddings import embed, model_inputs

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    eval_fn = lambda e: model(**model_inputs(model, inputs, e)).logits  # noqa: E731
    smart = SMARTLoss(eval_fn=eval_fn, loss_fn=kl_loss, loss_last_fn=sym_kl_loss)

    def passes():
        with autocast:
            embeds = embed(model, batch["input_ids"])
            logits = eval_fn(embeds)
            loss = F.cross_entropy(logits.float(), batch["labels"]) + 1.0 * smart(embeds, logits)
        loss.backward()

    return passes


def measure_in_subprocess(
    kind: str, batch_size: int, seq_len: int, steps: int, warmup: int, device: str, model_path: str | None = None
) -> dict[str, Any]:
    call = f"measure({kind!r}, {batch_size}, {seq_len}, {steps}, {warmup}, {device!r}, {model_path!r})"
    code = f"import json; from advlm.bench.cost import measure; print('RESULT' + json.dumps({call}))"
    results = list(child_results(code))
    if not results or "error" in results[-1]:
        return {"kind": kind, "error": results[-1]["error"] if results else "failed"}
    return results[-1]


def measure_series(
    kinds: list[str], rounds: int, batch_size: int, seq_len: int, steps: int, warmup: int, device: str, model_path
) -> None:
    """Every kind `rounds` times over in this process, one `RESULT` line on stdout per measurement."""
    import gc

    for _ in range(rounds):
        for kind in kinds:
            try:
                result = measure(kind, batch_size, seq_len, steps, warmup, device, model_path)
            except Exception as exc:  # one kind failing must not lose the others
                result = {"kind": kind, "error": f"{type(exc).__name__}: {exc}"}
            gc.collect()  # the kind's model, optimizer and trainer go before the next kind's peak is taken
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            print("RESULT" + json.dumps(result), flush=True)


def child_results(code: str) -> Iterator[dict[str, Any]]:
    """Runs `code` in a child Python and yields the JSON of each `RESULT` line it prints, as it comes; then,
    if the child failed, `{"error": the last line of its stderr}`."""
    import tempfile

    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=errors, text=True)
        for line in proc.stdout:
            if line.startswith("RESULT"):
                yield json.loads(line[len("RESULT") :])
        if proc.wait() != 0:  # out of memory, a crash in a kernel
            errors.seek(0)
            yield {"error": (errors.read().strip().splitlines() or [f"exit status {proc.returncode}"])[-1]}


def _series_in_subprocess(kinds: list[str], rounds: int, args: tuple, model_path: str | None):
    """Yields `measure_series`'s results as they come, from one child process."""
    call = f"measure_series({kinds!r}, {rounds}, {', '.join(map(repr, args))}, {model_path!r})"
    count = 0
    for result in child_results(f"from advlm.bench.cost import measure_series; {call}"):
        if "kind" in result:
            count += 1
            yield result
        elif count < rounds * len(kinds):  # the child died: the kinds of its round it did not reach fail
            for kind in kinds[count % len(kinds) :]:
                yield {"kind": kind, "error": f"the measuring process stopped: {result['error']}"}


def _measurements(kinds: list[str], rounds: int, args: tuple, model_path: str | None, one_process: bool):
    if one_process:
        yield from _series_in_subprocess(kinds, rounds, args, model_path)
        return
    for _ in range(rounds):
        for kind in kinds:
            yield measure_in_subprocess(kind, *args, model_path)


def measure_kinds(
    kinds: list[str],
    settings: dict[str, Any],
    device: str,
    model_path: str | None = None,
    on_result=None,
    one_process: bool | None = None,
) -> list[dict[str, Any]]:
    """Every kind, `settings["rounds"]` times over (all kinds per round, so that a slow spell of a shared
    machine hits every kind alike); each kind keeps its round with the lowest median (noise only adds time)
    and records every round's median. Each kind in its own process on CPU; all in one on GPU (`one_process`
    overrides). `on_result(results)` after every measurement."""
    from tqdm.auto import tqdm

    best: dict[str, dict[str, Any]] = {}
    rounds = settings.get("rounds", 1)
    one_process = device.startswith("cuda") if one_process is None else one_process
    args = (settings["batch_size"], settings["seq_len"], settings["steps"], settings["warmup"], device)
    bar = tqdm(total=rounds * len(kinds), desc="cost")
    for result in _measurements(kinds, rounds, args, model_path, one_process):
        kind = result["kind"]
        previous = best.get(kind)
        medians = (previous or {}).get("round_medians_s", []) + [result.get("median_s")]
        if previous is None or ("median_s" in result and result["median_s"] < previous.get("median_s", 1e9)):
            best[kind] = result
        best[kind]["round_medians_s"] = medians
        bar.update()
        if on_result:
            on_result(list(best.values()))
    bar.close()
    return list(best.values())


def cost_kinds(include_alternatives: bool = True) -> list[str]:
    kinds = ["floor"] + [f"method:{m}" for m in COST_METHODS] + ["trainer:vanilla", "stock-trainer"]
    if include_alternatives:  # like for like: smart-pytorch has no Bregman term
        kinds += ["method:smart,bregman=false", "smart-pytorch"]
    kinds.append("method:freelb,nan_guard=false")  # what the guard's host syncs cost
    return kinds
