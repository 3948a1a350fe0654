"""How long the command line takes to answer `--help` and `advlm list` (issue #29: about a second at most), beside
what importing torch and transformers alone costs in the same run, each command in a fresh process, taking turns.
Prints a table of medians, writes JSON.

python benchmarks/cli_startup.py --output benchmarks/results/cpu-2core-amd-epyc/cli_startup.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from advlm.bench.environment import describe

ADVLM = shutil.which("advlm") or str(Path(sys.executable).with_name("advlm"))
COMMANDS = {
    "advlm --help": [ADVLM, "--help"],
    "advlm list": [ADVLM, "list"],
    "advlm train --method smart --help": [ADVLM, "train", "--method", "smart", "--help"],
    "advlm pretrain --help": [ADVLM, "pretrain", "--help"],
    "python -c 'import torch, transformers' (reference)": [sys.executable, "-c", "import torch, transformers"],
}


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=7)
    parser.add_argument("--output", help="JSON file for the measurements")
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.turns):
        for name, argv in COMMANDS.items():
            seconds[name].append(timed(argv))
    rows = [{"command": n, "median_s": statistics.median(s), "max_s": max(s)} for n, s in seconds.items()]
    width = max(len(r["command"]) for r in rows)
    print(f"{'command':<{width}}  median s  max s")
    for r in rows:
        print(f"{r['command']:<{width}}  {r['median_s']:8.2f}  {r['max_s']:5.2f}")
    if args.output:
        Path(args.output).write_text(json.dumps({"env": describe(), "turns": args.turns, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
