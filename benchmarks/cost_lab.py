"""The lab's cost table: every method, the hand-written floor, our Trainer and the stock Trainer, SMART like for
like with smart-pytorch, FreeLB without its NaN guard; first all kinds taking turns (the drift-free ratios), then
rounds of each kind alone (memory, op and call counts). Writes benchmarks/results/<hardware>/cost-lab.json
(which benchmarks/report.py renders beside `advlm bench`'s own cost.json) and prints the table and the project's targets, met or missed.

    .venv/bin/python benchmarks/cost_lab.py                 # 2 CPU cores: about 25 minutes
    python benchmarks/cost_lab.py --device cuda             # a GPU: about 3 minutes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from advlm.bench.environment import describe  # noqa: E402
from advlm.bench.tables import cost_notes, cost_rows, markdown  # noqa: E402
from lab.cost import measure_kinds  # noqa: E402
from lab.kinds import lab_kinds  # noqa: E402
from lab.targets import target_notes  # noqa: E402
from lab.turns import measure_turns  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--results", default="benchmarks/results")
    p.add_argument("--model", help="model folder (default: the packaged MiniLM)")
    p.add_argument("--kinds", nargs="+", help="cost kinds (default: the lab's whole table)")
    p.add_argument("--batch-size", type=int, help="default: 32 on GPU, 8 on CPU")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--steps", type=int, help="measured steps per round (default: 50 on GPU, 6 on CPU)")
    p.add_argument("--rounds", type=int, help="rounds of every kind (default: 5 on GPU, 2 on CPU)")
    p.add_argument("--turns", type=int, help="turns of the kinds taking turns (default: 100 GPU, 30 CPU; 0 skips)")
    args = p.parse_args()
    gpu = args.device.startswith("cuda")
    env = describe(args.device)
    settings = {
        "batch_size": args.batch_size or (32 if gpu else 8),
        "seq_len": args.seq_len,
        "steps": args.steps or (50 if gpu else 6),
        "warmup": 10 if gpu else 2,
        "rounds": args.rounds or (5 if gpu else 2),
        "interleaved_steps": args.turns if args.turns is not None else (100 if gpu else 30),
        "interleaved_warmup": 10 if gpu else 2,
    }
    out = Path(args.results) / env["hardware"] / "cost-lab.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cost = {"settings": settings, "environment": env, "results": []}

    def save(key: str, value) -> None:  # after every report: an interrupted measurement keeps its results
        cost[key] = value
        out.write_text(json.dumps(cost, indent=2))

    kinds = args.kinds or lab_kinds()
    if settings["interleaved_steps"] > 0:
        last = measure_turns(kinds, settings, args.device, args.model, on_result=lambda r: save("interleaved", r))
        if last is None or "error" in last:
            print(f"the kinds taking turns were not measured: {(last or {}).get('error', 'no report')}")
    measure_kinds(kinds, settings, args.device, args.model, on_result=lambda r: save("results", r))
    print(markdown(*cost_rows(cost)), *cost_notes(cost), *target_notes(cost), f"written: {out}", sep="\n")


if __name__ == "__main__":
    main()
