"""What the command line shows of each method (`advlm list`, `advlm train --method X --help`), read from
`methods.json` beside this file so that neither imports torch (importing the methods does).

The file is made from the method registry: `python -m advlm.cli.method_catalogue` rewrites it, and
tests/test_cli_startup.py fails while it differs from what the registry says, naming that command."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

CATALOGUE = Path(__file__).with_name("methods.json")


def from_registry() -> list[dict]:
    """Each registered method: name, passes (the ideal cost ratio to vanilla), its docstring's first line and its
    hyper-parameters (name, default, help, choices), in the registry's order."""
    from advlm.methods import list_methods, method_class

    rows = []
    for name in list_methods():
        cls = method_class(name)
        params = [
            {
                "name": f.name,
                "default": f.default,
                "help": f.metadata.get("help", ""),
                "choices": f.metadata.get("choices"),
            }
            for f in cls.hyperparameters()
        ]
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        rows.append({"name": name, "passes": cls().passes, "summary": summary, "hyperparameters": params})
    return json.loads(json.dumps(rows))  # tuples as lists: the file's own form


@cache
def methods() -> list[dict]:
    return json.loads(CATALOGUE.read_text(encoding="utf-8"))


def method(name: str) -> dict | None:
    """The catalogue's entry for `name` (any case), or None for a name no method has."""
    return next((m for m in methods() if m["name"] == name.lower()), None)


def write() -> None:
    from advlm import atomic

    atomic.write_text(CATALOGUE, json.dumps(from_registry(), indent=1) + "\n")


if __name__ == "__main__":
    write()
    print(f"wrote {CATALOGUE}")
