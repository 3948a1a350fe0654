"""`advlm report`: the dev metrics of several run directories side by side (reads their metrics.json)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="compare run directories", description=__doc__)
    p.add_argument("runs", nargs="+", help="run directories (or metrics.json files)")
    p.set_defaults(func=run)


REQUIRED = ("task", "method", "seed", "eval", "steps", "train_runtime_s")
TYPES = {"task": str, "method": str, "seed": int, "eval": dict, "steps": int, "train_runtime_s": (int, float)}


def load_metrics(path: str) -> dict:
    from advlm.errors import AdvlmError
    from advlm.modeling import unfinished_run_hint

    file = Path(path)
    file = file / "metrics.json" if file.is_dir() else file
    if not file.is_file():
        raise AdvlmError(f"{path} has no metrics.json; {unfinished_run_hint(Path(path))}")
    try:
        metrics = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        reason = f"not UTF-8 text (byte {e.start})" if isinstance(e, UnicodeDecodeError) else f"invalid JSON: {e.msg}"
        raise AdvlmError(
            f"{file} is not an advlm train metrics.json ({reason}); pass a run folder of advlm train"
        ) from None
    except OSError as e:
        raise AdvlmError(f"cannot read {file}: {e.strerror}") from None
    missing = [k for k in REQUIRED if not isinstance(metrics, dict) or k not in metrics]
    if missing:
        raise AdvlmError(f"{file} is not an advlm train metrics.json (no {', '.join(missing)})")
    wrong = [k for k, kind in TYPES.items() if not isinstance(metrics[k], kind) or isinstance(metrics[k], bool)]
    if wrong or not all(isinstance(v, (int, float)) for v in metrics["eval"].values()):
        shown = ", ".join(wrong) or "eval's values"
        raise AdvlmError(f"{file} is not an advlm train metrics.json ({shown} of the wrong type)")
    return metrics


def diverged(metrics: dict) -> bool:
    """A run whose dev metrics or loss are not finite numbers (written before advlm refused such runs)."""
    values = [*metrics["eval"].values(), metrics.get("eval_loss")]
    return any(isinstance(v, float) and not math.isfinite(v) for v in values)


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
                **({"note": "DIVERGED (non-finite metric)"} if diverged(m) else {}),  # a column only when needed
            }
        )
    columns = list(dict.fromkeys(k for r in rows for k in r))
    print(format_table(rows, columns))
    return 0
