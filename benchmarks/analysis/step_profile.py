"""Where a training step's time goes, kind by kind, from torch's profiler: host time inside ops, device
(kernel) time and kernel launches per step, beside the step's wall time; and the ops whose time differs most
from the first kind's. A diagnostic for the notes, not part of the cost table: it asks why a ratio in the cost
table is what it is (a method's overhead, ours against smart-pytorch), which the table's timings cannot say.

All kinds train one model on one fixed batch (the cost table's `training_setup` and `step_of`), taking turns
one step each (the order reversed every other turn). Each turn times one unprofiled step per kind (the wall
time) and profiles another (the profiler's own cost stays out of the wall time).

    .venv/bin/python benchmarks/analysis/step_profile.py method:smart,bregman=false smart-pytorch --turns 8
    python benchmarks/analysis/step_profile.py --device cuda --batch-size 32   # every cost-table method
    ... --threads 1 --flush-denormal --call-times aten.gelu_backward   # denormals off; each call's time

On a GPU, a kind whose wall time grows more than its kernel time over vanilla's loses the difference on the
host (launches, Python, syncs), not in the passes its ideal ratio counts.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the lab beside this folder
from advlm.bench.cost import sync_device, time_step, training_setup  # noqa: E402
from advlm.methods import list_methods  # noqa: E402
from lab.kinds import parse_kind, step_of  # noqa: E402

LAUNCHES = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx")


def _device_us(event) -> float:
    return getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0) or 0


class CallTimes(TorchDispatchMode):
    """Milliseconds of each call of the ops named `prefix` (e.g. "aten.gelu_backward"), in call order."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix, self.ms = prefix, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not str(func).startswith(self.prefix):
            return func(*args, **(kwargs or {}))
        start = time.perf_counter()
        result = func(*args, **(kwargs or {}))
        self.ms.append((time.perf_counter() - start) * 1e3)
        return result


def profile_kinds(
    kinds: list[str],
    device: str,
    batch_size: int,
    seq_len: int,
    turns: int,
    call_times: str | None = None,
    model_path: str | None = None,
) -> dict[str, dict]:
    """Per kind: wall seconds per step, and per profiled step the mean host microseconds by op (`host_us`),
    device microseconds by op (`device_us`), op calls by name (`calls`); with `call_times`, the milliseconds of
    every call of those ops in one more step per kind (`call_ms`; CPU only: a GPU call returns at launch)."""
    dev = torch.device(device)
    setup = training_setup(batch_size, seq_len, dev, model_path)
    steps = {kind: step_of(parse_kind(kind), setup) for kind in kinds}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    for kind in kinds:  # warm-up: allocations, kernel selection, the optimizer's state
        for _ in range(2):
            time_step(steps[kind], dev)
    out = {
        k: {
            "wall_s": [],
            "host_us": collections.Counter(),
            "device_us": collections.Counter(),
            "calls": collections.Counter(),
        }
        for k in kinds
    }
    for turn in range(turns):
        for kind in kinds if turn % 2 == 0 else kinds[::-1]:
            out[kind]["wall_s"].append(time_step(steps[kind], dev))
            with profile(activities=activities) as prof:
                steps[kind]()
                sync_device(dev)
            for event in prof.key_averages():
                out[kind]["host_us"][event.key] += event.self_cpu_time_total / turns
                out[kind]["device_us"][event.key] += _device_us(event) / turns
                out[kind]["calls"][event.key] += event.count / turns
    for kind in kinds if call_times else []:
        with CallTimes(call_times) as timer:
            steps[kind]()
        out[kind]["call_ms"] = timer.ms
    return out


def report(out: dict[str, dict], top: int) -> None:
    kinds = list(out)
    base = kinds[0]
    wall0 = statistics.median(out[base]["wall_s"])
    host0, dev0 = sum(out[base]["host_us"].values()), sum(out[base]["device_us"].values())
    print(
        f"{'kind':32s} {'wall ms':>9s} {'x':>6s} {'op host ms':>11s} {'x':>6s} {'kernel ms':>10s} {'x':>6s} "
        f"{'launches':>9s} {'ops':>7s}"
    )
    for kind in kinds:
        wall = statistics.median(out[kind]["wall_s"])
        host, dev = sum(out[kind]["host_us"].values()), sum(out[kind]["device_us"].values())
        launches = sum(out[kind]["calls"][name] for name in LAUNCHES)
        ops = sum(n for name, n in out[kind]["calls"].items() if name.startswith("aten::"))
        kernel = f"{dev / 1e3:10.2f} {dev / dev0:6.2f}" if dev0 else f"{'-':>10s} {'-':>6s}"
        print(
            f"{kind:32s} {wall * 1e3:9.2f} {wall / wall0:6.2f} {host / 1e3:11.2f} {host / host0:6.2f} {kernel} "
            f"{launches:9.0f} {ops:7.0f}"
        )
    print(
        "(x: against the first kind; wall: median of unprofiled steps; the rest: mean per profiled step, the"
        " profiler's own cost included; ops:"
        " aten calls, nested ones included)"
    )
    for kind in kinds[1:]:
        a, b = out[kind], out[base]
        names = set(a["host_us"]) | set(b["host_us"])
        total = {n: a["host_us"][n] + a["device_us"][n] - b["host_us"][n] - b["device_us"][n] for n in names}
        print(f"\n{kind} against {base}: the {top} ops whose host + device time differs most (ms per step; calls)")
        for name in sorted(names, key=lambda n: -abs(total[n]))[:top]:
            print(
                f"  {name[:52]:52s} {total[name] / 1e3:+8.2f}   host {a['host_us'][name] / 1e3:8.2f} vs "
                f"{b['host_us'][name] / 1e3:8.2f}   device {a['device_us'][name] / 1e3:8.2f} vs "
                f"{b['device_us'][name] / 1e3:8.2f}   calls {a['calls'][name]:5.0f} vs {b['calls'][name]:5.0f}"
            )
    for kind in kinds:
        if "call_ms" in out[kind]:
            calls = out[kind]["call_ms"]
            print(f"\n{kind}: {len(calls)} calls, ms each in call order: " + " ".join(f"{ms:.1f}" for ms in calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kinds", nargs="*", help="cost-table kinds (default: every method, vanilla first)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", help="a local model folder (default: $ADVLM_MODEL, else the packaged model)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--top", type=int, default=10, help="ops listed per kind against the first")
    parser.add_argument("--call-times", metavar="OP", help="also time each call of this op (e.g. aten.gelu_backward)")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's choice)")
    parser.add_argument(
        "--flush-denormal", action="store_true", help="flush denormals to zero (with --threads 1 it covers every op)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.flush_denormal and not torch.set_flush_denormal(True):
        parser.error("this CPU cannot flush denormals")
    kinds = args.kinds or [f"method:{m}" for m in list_methods()]
    report(
        profile_kinds(kinds, args.device, args.batch_size, args.seq_len, args.turns, args.call_times, args.model),
        args.top,
    )


if __name__ == "__main__":
    main()
