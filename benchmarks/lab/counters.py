"""What one step does besides taking time: aten ops and host syncs dispatched, Python calls made. Counts, not
times, so they are the same on any machine: a CPU run shows what would cost on a GPU, where a small model's step
is bound by launching kernels and a host sync stalls the launch queue."""

from __future__ import annotations

import os
import sys
import threading

import torch
from torch.utils._python_dispatch import TorchDispatchMode


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


class PeakRSS:
    """Samples this process's resident memory every few milliseconds in a thread: the peak while a block runs
    (the process's own peak would include model loading, the same for every kind)."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current() -> int:
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
