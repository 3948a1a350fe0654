"""Reading the user's and the shipped data files: where they are, and rows with their line numbers.

Every reader returns `(line number, row)` pairs so that a task can name `file:line` in its errors; a file that
is missing, empty or not UTF-8 text is a one-line error naming it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

from advlm.errors import AdvlmError
from advlm.paths import file_problem, folder_problem

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
    problem = folder_problem(path)
    if problem:
        raise AdvlmError(f"data directory {path} {problem}; pass --data-dir with the folder of the task's data")
    return path


def check_data_file(file: Path) -> Path:
    problem = file_problem(file)
    if problem:
        raise AdvlmError(f"data file {file} {problem}; check the path")
    if file.stat().st_size == 0:
        raise AdvlmError(f"data file {file} is empty; point to a file with examples")
    return file


def read_lines(file: Path) -> list[str]:
    """The file's lines without line ends (a byte-order mark stripped); an error naming it if not UTF-8."""
    with _opened(file) as f:
        return [line.rstrip("\r\n") for line in f]


@contextlib.contextmanager
def _opened(file: Path) -> Iterator:
    """The file open as UTF-8 text (a byte-order mark skipped, line ends kept for csv); reading errors as one
    line naming it."""
    try:
        with open(file, encoding="utf-8-sig", newline="") as f:
            yield f
    except UnicodeDecodeError as e:
        raise AdvlmError(f"{file} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise AdvlmError(f"cannot read {file}: {e.strerror}") from None


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
    """A CSV (or, with a tab delimiter, a TSV with quoting off) with a header row; each row with the line it
    starts on (a quoted field may hold line breaks, which stay in its text)."""
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    rows = []
    with _opened(file) as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
        try:
            header = next(reader, None) or []
            end = reader.line_num
            for cells in reader:
                start, end = end + 1, reader.line_num
                if not cells:
                    continue  # a blank line
                if len(cells) != len(header):
                    raise AdvlmError(f"{file}:{start}: expected {len(header)} columns as in the header row")
                rows.append((start, dict(zip(header, cells))))
        except csv.Error as e:
            raise AdvlmError(f"{file}:{reader.line_num}: not valid CSV ({e})") from None
    return rows


def read_records(file: Path) -> list[tuple[int, dict]]:
    """Rows of a `.jsonl`/`.json` (one object per line), `.csv` or `.tsv` file with a header row."""
    suffix = file.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return read_jsonl(file)
    if suffix in (".csv", ".tsv"):
        return read_table(file, "\t" if suffix == ".tsv" else ",")
    raise AdvlmError(f"unsupported data file {file}: use .jsonl, .csv or .tsv")
