"""What a training step costs, measured side by side in one run: every method, the floor, and what users
would use instead.

Each measurement runs in its own process (so peak memory is its own): the default model, one fixed
pre-tokenized batch (random token ids, every position real), AdamW. Kinds:
- `method:NAME`  NAME's `step` + optimizer step, timed per optimizer step;
- `floor`        a minimal hand-written loop: forward, backward, AdamW step, zero_grad;
- `trainer:NAME` our whole training step in `AdversarialTrainer`, wall time from one step's end to the next
                 (data in, collate, method step, clipping, optimizer and scheduler, callbacks);
- `stock-trainer` the same with the stock `transformers.Trainer` (vanilla);
- `smart-pytorch` the `smart-pytorch` package's SMART regularizer (no Bregman term) on the same batch.
Times are medians over the measured steps (after warm-up), synchronized on GPU; peak memory is the
process's resident memory sampled every 2 ms while the steps run (model loaded) on CPU, and
`torch.cuda.max_memory_allocated` since the steps began on GPU.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

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


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(step, steps: int, warmup: int, device) -> list[float]:
    times = []
    for i in range(warmup + steps):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def _trainer_times(kind: str, model, batch, steps: int, warmup: int, device) -> list[float]:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from advlm import AdversarialTrainer
    from advlm.data.collate import TokenizedDataset

    class Clock(TrainerCallback):
        def __init__(self):
            self.ends = []

        def on_step_end(self, args, state, control, **kwargs):
            _sync(device)
            self.ends.append(time.perf_counter())

    features = [
        {k: v[i].tolist() if v.dim() else int(v[i]) for k, v in batch.items()} for i in range(len(batch["input_ids"]))
    ] * (steps + warmup + 1)
    size = len(batch["input_ids"])
    cuda = device.type == "cuda"
    args = TrainingArguments(
        "/tmp/advlm-bench-trainer",
        max_steps=steps + warmup + 1,
        per_device_train_batch_size=size,
        learning_rate=2e-5,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=not cuda,
        bf16=cuda,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        logging_strategy="no",
        dataloader_pin_memory=cuda,
    )
    clock = Clock()
    common = dict(model=model, args=args, train_dataset=TokenizedDataset(features), callbacks=[clock])
    if kind == "stock-trainer":
        trainer = Trainer(**common)
    else:
        trainer = AdversarialTrainer(**common, method=build_method_spec(kind.split(":", 1)[1]))
    trainer.train()
    intervals = [b - a for a, b in zip(clock.ends, clock.ends[1:])]
    return intervals[warmup:]


def measure(
    kind: str, batch_size: int, seq_len: int, steps: int, warmup: int, device_name: str, model_path: str | None = None
) -> dict[str, Any]:
    """One measurement, in this process; `model_path` None is the packaged default model."""
    from advlm.data import get_task
    from advlm.modeling import load_model

    device = torch.device(device_name)
    torch.manual_seed(0)
    model = load_model(model_path, get_task("sst2")).to(device).train()
    batch = _batch(model.config.vocab_size, batch_size, seq_len, device)
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, fused=fused)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if fused else torch.autocast("cpu", enabled=False)
    per_step_examples = batch_size
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sampler = PeakRSS()  # entered here, left after the timed steps (the kinds below differ in shape)
    sampler.__enter__()
    if kind == "floor":

        def step():
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        times = _timed(step, steps, warmup, device)
    elif kind.startswith("method:"):
        method = build_method_spec(kind.split(":", 1)[1])
        method.prepare(model)

        def step():
            with autocast:
                method.step(model, batch)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        times = _timed(step, steps, warmup, device)
    elif kind in ("stock-trainer",) or kind.startswith("trainer:"):
        times = _trainer_times(kind, model, batch, steps, warmup, device)
    elif kind == "smart-pytorch":
        times = _smart_pytorch_times(model, batch, optimizer, autocast, steps, warmup, device)
    else:
        raise ValueError(f"unknown cost kind {kind}")
    sampler.__exit__()
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else sampler.peak
    median = statistics.median(times)
    return {
        "kind": kind,
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "steps": len(times),
        "peak_memory_bytes": int(peak),
        "examples_per_s": per_step_examples / median,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "device": device_name,
    }


def _smart_pytorch_times(model, batch, optimizer, autocast, steps, warmup, device) -> list[float]:
    """smart-pytorch's SMARTLoss as its README uses it: task loss + weight * SMART(embeddings, logits)."""
    import torch.nn.functional as F
    from smart_pytorch import SMARTLoss, kl_loss, sym_kl_loss

    from advlm.embeddings import embed, model_inputs

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    eval_fn = lambda e: model(**model_inputs(model, inputs, e)).logits  # noqa: E731
    smart = SMARTLoss(eval_fn=eval_fn, loss_fn=kl_loss, loss_last_fn=sym_kl_loss)

    def step():
        with autocast:
            embeds = embed(model, batch["input_ids"])
            logits = eval_fn(embeds)
            loss = F.cross_entropy(logits.float(), batch["labels"]) + 1.0 * smart(embeds, logits)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return _timed(step, steps, warmup, device)


def measure_in_subprocess(
    kind: str, batch_size: int, seq_len: int, steps: int, warmup: int, device: str, model_path: str | None = None
) -> dict[str, Any]:
    call = f"measure({kind!r}, {batch_size}, {seq_len}, {steps}, {warmup}, {device!r}, {model_path!r})"
    code = f"import json, sys; from advlm.bench.cost import measure; print('RESULT' + json.dumps({call}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    if proc.returncode != 0 or not lines:
        return {"kind": kind, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(lines[-1][len("RESULT") :])


def cost_kinds(include_alternatives: bool = True) -> list[str]:
    kinds = ["floor"] + [f"method:{m}" for m in COST_METHODS] + ["trainer:vanilla", "stock-trainer"]
    if include_alternatives:  # like for like: smart-pytorch has no Bregman term
        kinds += ["method:smart,bregman=false", "smart-pytorch"]
    return kinds
