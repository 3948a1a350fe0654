"""`advlm list`: every method with its cost in passes and its hyper-parameter defaults."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list the training methods", description=__doc__)
    p.set_defaults(func=run)


def method_rows() -> list[dict]:
    from advlm.cli.method_catalogue import methods

    rows = []
    for m in methods():
        defaults = ", ".join(f"{h['name']}={h['default']}" for h in m["hyperparameters"]) or "-"
        rows.append({"method": m["name"], "passes": m["passes"], "defaults": defaults, "what": m["summary"]})
    return rows


def run(args: argparse.Namespace) -> int:
    from advlm.cli.options import format_table

    rows = method_rows()
    for r in rows:
        r["passes"] = f"{r['passes']:.3g}"
    print(format_table(rows, ["method", "passes", "defaults", "what"]))
    print("\npasses: forward+backward passes per batch relative to vanilla (the ideal cost ratio)")
    return 0
