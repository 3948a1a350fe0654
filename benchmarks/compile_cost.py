"""Compiled against eager: seconds per optimizer step of each method on the default sentence classifier, with
the model run eagerly and through `torch.compile` (inductor), side by side in one process.

The two take turns on one model and one fixed batch (the compiled wrapper shares the eager model's weights),
one step each, the order rotated every turn; each method's compiled/eager ratio is taken turn by turn, then its
median over the turns with a distribution-free 95% interval. The compiled side's warm-up (its compilations)
is timed apart, and dynamo's count of graphs compiled is reported: a method that recompiles every step shows it.

python benchmarks/compile_cost.py --turns 10 --output benchmarks/results/cpu-2core-amd-epyc/compile_cost.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from advlm import list_methods
from advlm.bench.cost import CostKind, take_turns, time_step, training_setup
from advlm.bench.environment import describe
from advlm.bench.paired import median_interval


def measure(name: str, turns: int, warmup: int, batch_size: int, seq_len: int, device: torch.device) -> dict:
    from torch._dynamo.utils import counters

    setup = training_setup(batch_size, seq_len, device, None)
    compiled_model = torch.compile(setup.model)
    steps = {}
    for label, runner in (("eager", setup.model), ("compiled", compiled_model)):
        method = CostKind.parse(f"method:{name}").build()
        method.prepare(setup.model, tokenizer=setup.tokenizer, total_steps=1000)

        def step(method=method, runner=runner) -> None:
            with setup.autocast:
                method.step(runner, setup.batch)
            setup.optimizer.step()
            setup.optimizer.zero_grad(set_to_none=True)

        steps[label] = step
    torch._dynamo.reset()
    counters.clear()
    start = time.perf_counter()
    for _ in range(warmup):
        steps["compiled"]()
    compile_s = time.perf_counter() - start
    graphs = int(counters["stats"]["unique_graphs"])
    timers = {label: (lambda s=s: time_step(s, device)) for label, s in steps.items()}
    times, errors = take_turns(timers, turns, 1)
    if errors:
        raise RuntimeError(f"{name}: {errors}")
    ratios = [c / e for c, e in zip(times["compiled"], times["eager"])]
    low, high = median_interval(ratios) or (statistics.median(ratios),) * 2
    return {
        "method": name,
        "eager_step_s": statistics.median(times["eager"]),
        "compiled_step_s": statistics.median(times["compiled"]),
        "ratio": statistics.median(ratios),
        "ratio_interval": [low, high],
        "warmup_s": compile_s,
        "graphs_compiled": graphs,
        "graphs_after_warmup": int(counters["stats"]["unique_graphs"]) - graphs,
    }


def table(rows: list[dict]) -> str:
    lines = ["method   eager s  compiled s  compiled/eager  95% interval  warm-up s  graphs (+ after warm-up)"]
    for r in rows:
        low, high = r["ratio_interval"]
        lines.append(
            f"{r['method']:<8} {r['eager_step_s']:7.3f}  {r['compiled_step_s']:10.3f}  {r['ratio']:14.2f}  "
            f"{low:5.2f}-{high:<5.2f}    {r['warmup_s']:9.1f}  {r['graphs_compiled']} (+{r['graphs_after_warmup']})"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list_methods())
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3, help="compiled steps before timing (compilation)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output", help="write the results to this JSON file")
    args = parser.parse_args()
    device = torch.device(args.device)
    results = {
        "environment": describe(args.device),
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "turns": args.turns,
        "rows": [],
    }
    for name in args.methods:
        results["rows"].append(measure(name, args.turns, args.warmup, args.batch_size, args.seq_len, device))
        print(table(results["rows"][-1:]), flush=True)
        if args.output:
            Path(args.output).write_text(json.dumps(results, indent=2))
    print(table(results["rows"]))


if __name__ == "__main__":
    main()
