"""Files written to a temporary name beside their target and renamed into place, so a run killed mid-write
leaves either the old file or the new one, never a torn one (`os.replace` is atomic within a file system)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """`with replacing(p) as tmp: write tmp` puts the written file at `p` at the end, and only if the writing
    did not raise (then the temporary file is removed)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb") as f:  # on disk before the rename, so a power cut cannot leave an empty file
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text)


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    import torch

    with replacing(path) as tmp:
        torch.save(obj, tmp)


@contextlib.contextmanager
def saving_into(folder: str | os.PathLike) -> Iterator[Path]:
    """`with saving_into(out) as tmp: model.save_pretrained(tmp)`: the files written into `tmp` (a hidden
    folder inside `out`) are renamed into `out` one by one at the end, each rename atomic."""
    staging = Path(folder) / ".advlm-saving"
    shutil.rmtree(staging, ignore_errors=True)  # a killed run's leftover
    staging.mkdir()
    try:
        yield staging
        for file in staging.iterdir():
            os.replace(file, Path(folder) / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
