"""`advlm list`: every method with its cost in passes and its hyper-parameter defaults."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list the training methods", description=__doc__)
    p.set_defaults(func=run)


def method_rows() -> list[dict]:
    from advlm.methods import list_methods, method_class

    rows = []
    for name in list_methods():
        cls = method_class(name)
        defaults = ", ".join(f"{f.name}={f.default}" for f in cls.hyperparameters()) or "-"
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        rows.append({"method": name, "passes": cls().passes, "defaults": defaults, "what": summary})
    return rows


def run(args: argparse.Namespace) -> int:
    from advlm.cli.options import format_table

    rows = method_rows()
    for r in rows:
        r["passes"] = f"{r['passes']:.3g}"
    print(format_table(rows, ["method", "passes", "defaults", "what"]))
    print("\npasses: forward+backward passes per batch relative to vanilla (the ideal cost ratio)")
    return 0
