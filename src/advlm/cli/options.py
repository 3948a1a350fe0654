"""Shared command-line pieces: flags made from dataclass fields, and printing a metrics table."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path

from advlm.errors import AdvlmError

# Beyond these no flag has a meaning here, and torch or numpy fail obscurely (an index past sys.maxsize, a radius
# past float32's range)
INT_MAX, FLOAT_MAX = 2**31 - 1, 1e30


def _number(kind: type, test, wanted: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value) or not test(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}")
        limit = INT_MAX if kind is int else FLOAT_MAX
        if abs(value) > limit:
            raise argparse.ArgumentTypeError(
                f"{text!r} is too large (at most {limit if kind is int else f'{limit:g}'})"
            )
        return value

    parse.__name__ = wanted  # argparse names the type in its message
    return parse


positive_int = _number(int, lambda v: v > 0, "a positive integer")
nonnegative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: v > 0, "a positive number")
nonnegative_float = _number(float, lambda v: v >= 0, "a number >= 0")
fraction = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
finite_float = _number(float, lambda v: True, "a finite number")


def check_output_file(path: str | None, flag: str) -> None:
    """An output file's place, checked before the work that fills it: not a folder, in an existing folder."""
    if path is None:
        return
    import os

    target = Path(path)
    if target.is_dir():
        raise AdvlmError(f"{flag} {path} is a folder; pass a file name")
    if not target.parent.is_dir():
        raise AdvlmError(f"{flag} {path}: the folder {target.parent} does not exist; create it first")
    probe = target.with_name(f".{target.name}.advlm-write-test-{os.getpid()}")
    try:  # the folder takes a new file (where the result is written, then renamed into place)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise AdvlmError(
            f"{flag} {path}: cannot write into {target.parent} ({e.strerror}); choose another place"
        ) from None


def field_specs(fields: list[dataclasses.Field]) -> list[dict]:
    """Flag specifications (see `add_flags`) of dataclass fields: default, help, choices and type from the
    field and its metadata; a field without a default is a required flag."""
    specs = []
    for f in fields:
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        specs.append(
            {
                "name": f.name,
                "default": None if required else f.default,
                "help": f.metadata.get("help", ""),
                "choices": f.metadata.get("choices"),
                "type": f.metadata.get("type"),
                "required": required,
            }
        )
    return specs


def add_dataclass_flags(group, fields: list[dataclasses.Field]) -> None:
    add_flags(group, field_specs(fields))


def add_flags(group, specs: list[dict]) -> None:
    """One `--name` flag per spec (`name`, `default`, `help`, optional `choices`, `type`, `required`), typed by
    its default unless `type` says; unset = absent, so that a config file's value or the default holds."""
    for spec in specs:
        name, default, choices = spec["name"], spec["default"], spec.get("choices")
        flag = "--" + name.replace("_", "-")
        if choices is not None and len(choices) < 2:
            continue  # fixed by the method (SMART's and TextAT's norm): nothing to choose
        help_text = spec.get("help", "") + (f"; one of {', '.join(choices)}" if choices else "")
        help_text += f" (default: {default})" if default is not None else ""
        kind = spec.get("type") or (type(default) if default is not None else str)
        if spec.get("required"):
            group.add_argument(flag, dest=name, type=kind, required=True, help=help_text)
        elif isinstance(default, bool):
            group.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
            )
        else:
            # choices are checked by the method or the settings: a one-line error like the rest
            group.add_argument(flag, dest=name, type=kind, default=argparse.SUPPRESS, help=help_text)


def format_table(rows: list[Mapping[str, object]], columns: list[str] | None = None) -> str:
    """A plain aligned text table; floats with 4 decimals."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])

    def cell(v: object) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    body = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(columns)]
    line = lambda cells: "  ".join(x.ljust(w) for x, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(b) for b in body)])


def write_json(path: str, data: Mapping) -> None:
    """An output JSON file, written under a temporary name and renamed into place."""
    import json

    from advlm import atomic

    atomic.write_text(path, json.dumps(data, indent=2))


def add_task_flags(p, what: str = "task") -> None:
    """Which task (shared by eval, robustness and attack): a built-in one or `--task-type` for your own data."""
    p.add_argument("--task", help=f"{what}: a built-in task, or with --task-type a name for your own")
    p.add_argument("--task-type", help="kind of your own data (with --eval-file), as for advlm train")
    p.add_argument("--text-fields", help="classification/regression of your own data: text field(s), 'a' or 'a,b'")
    p.add_argument("--label-field", help="classification/regression of your own data: the label field")
    p.add_argument(
        "--doc-stride", type=nonnegative_int, help="question answering: tokens shared by consecutive windows"
    )


def task_from_args(args):
    """The task the flags name; own data (`--task-type`) needs `--eval-file`."""
    from advlm.errors import AdvlmError
    from advlm.tasks import TASKS, get_task

    task = get_task(args.task, args.task_type, args.text_fields, args.label_field, args.doc_stride)
    if args.task_type and (args.task or "").lower() not in TASKS and not args.eval_file:
        raise AdvlmError(f"--task-type {args.task_type} evaluates your own data: pass --eval-file")
    return task


def add_eval_data_flags(p) -> None:
    """Where the evaluation examples come from (shared by eval, robustness and attack)."""
    p.add_argument("--data-dir", help="folder of the tasks' data (glue/, conll2003/, ...)")
    p.add_argument(
        "--split", default="dev", help="the task's split to evaluate: dev (default) or test where it has one"
    )
    p.add_argument("--eval-file", help="your own evaluation file instead of the task's split")
    p.add_argument("--max-eval-samples", type=positive_int, help="use a fixed random slice of this many examples")
    p.add_argument("--max-length", type=positive_int, default=128, help="maximum tokens per example (default: 128)")


def eval_examples(task, args) -> list:
    """The examples to evaluate on: `--eval-file`, else the task's `--split`, sliced by `--max-eval-samples`."""
    from advlm.training import subset

    return subset(task.load(args.split, args.data_dir, args.eval_file), args.max_eval_samples)
