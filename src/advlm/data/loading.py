"""Read a task's split from GLUE TSV files, or from the user's own JSON lines / CSV files.

GLUE TSVs are read with quoting off (RTE and STS-B contain unbalanced quotes) and a byte-order mark stripped
(MRPC's header has one); CoLA has no header row. JSON lines and CSV files use the task's canonical field names
plus `label`, which may be a label name or an integer id.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from advlm.data.tasks import Task
from advlm.errors import AdvlmError

DATA_ENV = "ADVLM_DATA_DIR"
SUFFIXES = (".tsv", ".jsonl", ".json", ".csv")


@dataclass(frozen=True)
class Example:
    texts: tuple[str, ...]
    label: int | float | None  # class id, regression score, or None when unlabelled


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """`--data-dir`, else `$ADVLM_DATA_DIR`, else `../shared/data/glue` beside the repository."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV)
    if data_dir is None:
        repo = Path(__file__).resolve().parents[3]
        candidate = repo.parent / "shared" / "data" / "glue"
        if not candidate.is_dir():
            raise AdvlmError(
                f"no GLUE data directory found (looked for {candidate}); pass --data-dir DIR or set ${DATA_ENV}"
            )
        return candidate
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise AdvlmError(f"data directory {path} does not exist; pass --data-dir with a folder of GLUE tasks")
    return path


def find_split_file(task: Task, split: str, data_dir: str | os.PathLike | None = None) -> Path:
    if split not in task.splits:
        raise AdvlmError(f"task '{task.name}' has no '{split}' split (it has: {', '.join(task.splits)})")
    folder = resolve_data_dir(data_dir) / task.folder
    stem = task.splits[split]
    for suffix in SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    raise AdvlmError(
        f"missing data file for {task.name} {split}: expected {folder / stem}.tsv (or .jsonl/.csv); "
        f"put the GLUE files there or pass --data-dir"
    )


def load_split(
    task: Task, split: str, data_dir: str | os.PathLike | None = None, path: str | os.PathLike | None = None
) -> list[Example]:
    """Examples of `split` ("train" or "dev"); `path` overrides the file found in the data directory."""
    file = Path(path) if path is not None else find_split_file(task, split, data_dir)
    if not file.is_file():
        raise AdvlmError(f"data file {file} does not exist; check the path")
    if file.stat().st_size == 0:
        raise AdvlmError(f"data file {file} is empty; point to a file with examples")
    suffix = file.suffix.lower()
    if suffix == ".tsv":
        rows = _read_tsv(task, file)
    elif suffix in (".jsonl", ".json"):
        rows = _read_jsonl(file)
    elif suffix == ".csv":
        rows = _read_csv(file)
    else:
        raise AdvlmError(f"unsupported data file {file}: use .tsv (GLUE), .jsonl or .csv")
    examples = [_to_example(task, file, line, row) for line, row in rows]
    if not examples:
        raise AdvlmError(f"data file {file} has a header but no examples")
    return examples


def _read_tsv(task: Task, file: Path) -> list[tuple[int, dict]]:
    with open(file, encoding="utf-8-sig", newline="") as f:
        lines = [line.rstrip("\r\n") for line in f]
    start = 0
    header = task.tsv_header
    if header is None:
        header = tuple(lines[0].split("\t"))
        start = 1
        wanted = [task.tsv_columns[name] for name in task.text_fields]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise AdvlmError(
                f"{file} does not look like {task.name} TSV: missing column(s) {', '.join(missing)} "
                f"in header [{', '.join(header)}]; is it the right file for task '{task.name}'?"
            )
    rows = []
    for i, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) < len(header) - 1 or (task.tsv_header is not None and len(cells) != len(header)):
            raise AdvlmError(
                f"{file}:{i}: expected {len(header)} tab-separated columns, found {len(cells)}; "
                f"is it the right file for task '{task.name}'?"
            )
        row = dict(zip(header, cells))
        rows.append((i, {name: row.get(col) for name, col in task.tsv_columns.items()}))
    return rows


def _read_jsonl(file: Path) -> list[tuple[int, dict]]:
    rows = []
    with open(file, encoding="utf-8-sig") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise AdvlmError(f"{file}:{i}: invalid JSON ({e.msg}); write one JSON object per line") from None
            if not isinstance(row, dict):
                raise AdvlmError(f"{file}:{i}: expected a JSON object per line, found {type(row).__name__}")
            rows.append((i, row))
    return rows


def _read_csv(file: Path) -> list[tuple[int, dict]]:
    with open(file, encoding="utf-8-sig", newline="") as f:
        return [(i, row) for i, row in enumerate(csv.DictReader(f), start=2)]


def _to_example(task: Task, file: Path, line: int, row: dict) -> Example:
    missing = [name for name in task.text_fields if row.get(name) is None]
    if missing:
        raise AdvlmError(
            f"{file}:{line}: missing field(s) {', '.join(missing)} for task '{task.name}' "
            f"(expected {', '.join(task.text_fields)} and label)"
        )
    texts = tuple(str(row[name]) for name in task.text_fields)
    return Example(texts, parse_label(task, row.get("label"), f"{file}:{line}"))


def parse_label(task: Task, value, where: str) -> int | float | None:
    """A label name or integer id -> class id (a float score for regression); None/blank = unlabelled."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if task.is_regression:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise AdvlmError(f"{where}: label {value!r} is not a number; {task.name} labels are scores") from None
    names = task.label_names
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        if 0 <= value < len(names):
            return value
    elif str(value).strip() in names:
        return names.index(str(value).strip())
    raise AdvlmError(
        f"{where}: label {value!r} is not a {task.name} label; use one of {', '.join(names)} "
        f"(or an integer id 0..{len(names) - 1})"
    )
