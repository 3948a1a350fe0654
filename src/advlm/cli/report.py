"""`advlm report`: the dev metrics of several run directories side by side (reads their metrics.json)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="compare run directories", description=__doc__)
    p.add_argument("runs", nargs="+", help="run directories (or metrics.json files)")
    p.set_defaults(func=run)


def load_metrics(path: str) -> dict:
    from advlm.errors import AdvlmError

    file = Path(path)
    file = file / "metrics.json" if file.is_dir() else file
    if not file.is_file():
        raise AdvlmError(f"{path} has no metrics.json; pass run directories written by `advlm train`")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise AdvlmError(f"{file} is not valid JSON ({e.msg}); was the run interrupted?") from None


def run(args: argparse.Namespace) -> int:
    from advlm.cli.options import format_table

    rows = []
    for path in args.runs:
        m = load_metrics(path)
        rows.append(
            {
                "run": path,
                "task": m["task"],
                "method": m["method"],
                "seed": m["seed"],
                **m["eval"],
                "eval_loss": m.get("eval_loss"),
                "steps": m["steps"],
                "train_s": f"{m['train_runtime_s']:.1f}",
            }
        )
    columns = list(dict.fromkeys(k for r in rows for k in r))
    print(format_table(rows, columns))
    return 0
