"""Reading the user's and the shipped data files: where they are, and rows with their line numbers.

Every reader returns `(line number, row)` pairs so that a task can name `file:line` in its errors; a file that
is missing, empty or not UTF-8 text is a one-line error naming it.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from advlm.errors import AdvlmError

DATA_ENV = "ADVLM_DATA_DIR"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """`--data-dir`, else `$ADVLM_DATA_DIR`, else the first `shared/data` in the working directory or one of its
    parents (a checkout beside `../shared`, as this project's is). A task finds its folder there (`glue/RTE`,
    `conll2003`, ...) or, for GLUE, directly inside a folder of GLUE tasks."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV)
    if data_dir is None:
        here = Path.cwd()
        for folder in (here, *here.parents):
            if (folder / "shared" / "data").is_dir():
                return folder / "shared" / "data"
        raise AdvlmError(
            f"no data directory found (no shared/data in {here} or a folder above it); pass --data-dir DIR or "
            f"set ${DATA_ENV}"
        )
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise AdvlmError(f"data directory {path} does not exist; pass --data-dir with the folder of the task's data")
    return path


def check_data_file(file: Path) -> Path:
    if not file.is_file():
        raise AdvlmError(f"data file {file} does not exist; check the path")
    if file.stat().st_size == 0:
        raise AdvlmError(f"data file {file} is empty; point to a file with examples")
    return file


def read_lines(file: Path) -> list[str]:
    """The file's lines without line ends (a byte-order mark stripped); an error naming it if not UTF-8."""
    try:
        with open(file, encoding="utf-8-sig", newline="") as f:
            return [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as e:
        raise AdvlmError(f"{file} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None


def read_jsonl(file: Path) -> list[tuple[int, dict]]:
    """One JSON object per line (blank lines skipped)."""
    rows = []
    for i, line in enumerate(read_lines(file), start=1):
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


def read_table(file: Path, delimiter: str = ",") -> list[tuple[int, dict]]:
    """A CSV (or, with a tab delimiter, a TSV with quoting off) with a header row."""
    lines = read_lines(file)
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.DictReader(lines, delimiter=delimiter, quoting=quoting)
    rows = [(i, row) for i, row in enumerate(reader, start=2)]
    for i, row in rows:
        if None in row or any(v is None for v in row.values()):
            raise AdvlmError(f"{file}:{i}: expected {len(reader.fieldnames or [])} columns as in the header row")
    return rows


def read_records(file: Path) -> list[tuple[int, dict]]:
    """Rows of a `.jsonl`/`.json` (one object per line), `.csv` or `.tsv` file with a header row."""
    suffix = file.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return read_jsonl(file)
    if suffix in (".csv", ".tsv"):
        return read_table(file, "\t" if suffix == ".tsv" else ",")
    raise AdvlmError(f"unsupported data file {file}: use .jsonl, .csv or .tsv")
