"""Fine-tuning checkpoints that a killed run can be resumed from exactly, and that are never torn.

The Trainer writes a checkpoint folder (`checkpoint-N`: weights, optimizer, scheduler, RNG states, trainer
state; advlm adds the method's state). advlm then writes `advlm_checkpoint.json` into it, atomically and last,
listing every file with its size and SHA-256: a folder without it was cut off mid-write and is never resumed
from, and one whose files no longer match it (deleted, truncated, replaced) is passed over for the newest intact
one (`resumable`), saying why. Older checkpoints are removed only after the new one is complete, so a kill at
any moment leaves the previous good checkpoint in place.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advlm import atomic
from advlm.errors import Diverged, RunFailed, one_line_reason
from advlm.output_folder import COMPLETE_FILE

_NAME = re.compile(r"^checkpoint-(\d+)$")


def _step(folder: Path) -> int:
    return int(_NAME.match(folder.name).group(1))


def checkpoints(run_dir: str | Path, complete: bool = True) -> list[Path]:
    """The run's checkpoint folders, oldest first: the complete ones, or (complete=False) the torn ones."""
    found = [p for p in Path(run_dir).glob("checkpoint-*") if p.is_dir() and _NAME.match(p.name)]
    return sorted((p for p in found if (p / COMPLETE_FILE).is_file() == complete), key=_step)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    done = checkpoints(run_dir)
    return done[-1] if done else None


def mark_complete(folder: Path, info: dict[str, Any]) -> None:
    """The completion mark, listing the folder's files (written last)."""
    atomic.write_text(folder / COMPLETE_FILE, json.dumps({**info, "files": file_listing(folder)}, indent=2))


def file_listing(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file under `folder` but the mark: its size and SHA-256."""
    listing = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != COMPLETE_FILE):
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        listing[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "sha256": digest}
    return listing


def damage(folder: Path) -> str | None:
    """What is wrong with a checkpoint marked complete (a file missing, of another size or content, an unreadable
    mark), or None when it is intact."""
    try:
        files = checkpoint_info(folder).get("files")
    except (OSError, ValueError):
        return f"its {COMPLETE_FILE} is torn or unreadable"
    if not isinstance(files, dict):
        return f"its {COMPLETE_FILE} lists no files (an older advlm made it), so it cannot be checked"
    found = file_listing(folder)
    for name, saved in files.items():
        now = found.get(name)
        if now is None:
            return f"{name} is missing"
        if now["size"] != saved.get("size"):
            return f"{name} has {now['size']} bytes, not the {saved.get('size')} it was saved with"
        if now["sha256"] != saved.get("sha256"):
            return f"{name} is not the file that was saved (its SHA-256 differs)"
    return None


def resumable(run_dir: str | Path) -> tuple[Path | None, list[str]]:
    """The newest complete checkpoint whose files are intact, and what is wrong with each newer one."""
    damaged = []
    for folder in reversed(checkpoints(run_dir)):
        problem = damage(folder)
        if problem is None:
            return folder, damaged
        damaged.append(f"{folder.name} is damaged: {problem}")
    return None, damaged


def checkpoint_info(folder: Path) -> dict[str, Any]:
    return json.loads((folder / COMPLETE_FILE).read_text())


def save_failed(folder: Path, error: BaseException) -> RunFailed:
    """The run's failure when writing checkpoint `folder` failed: the torn folder is removed (it is never resumed,
    and a full disk needs the room), the last complete one is named."""
    shutil.rmtree(folder, ignore_errors=True)
    kept = latest_checkpoint(folder.parent)
    then = (
        f"{kept.name} is kept: free the space (or fix the folder), then continue with --resume"
        if kept
        else "no earlier checkpoint was complete: free the space (or fix the folder) and start again"
    )
    return RunFailed(f"could not write {folder.name} into {folder.parent} ({one_line_reason(error)}); {then}")


def rotate(run_dir: str | Path, keep: int | None, best: str | None) -> None:
    """Remove torn checkpoints and all complete ones but the newest `keep` (None: all) and the best."""
    for torn in checkpoints(run_dir, complete=False):
        shutil.rmtree(torn, ignore_errors=True)
    done = checkpoints(run_dir)
    if keep is None:
        return
    best_path = Path(best).resolve() if best else None
    for old in done[: max(0, len(done) - max(keep, 1))]:
        if old.resolve() != best_path:
            shutil.rmtree(old, ignore_errors=True)


def nonfinite_parameter(model: nn.Module) -> str | None:
    """The name of the first parameter holding a NaN or an infinity, or None (one host sync when all are
    finite)."""
    params = list(model.named_parameters())
    if not params:
        return None
    norms = torch._foreach_norm([p.detach() for _, p in params])
    if bool(torch.isfinite(torch.stack([n.float().to(norms[0].device) for n in norms])).all()):
        return None
    # a norm can overflow where every value is finite: then the values decide
    return next((n for n, p in params if not bool(torch.isfinite(p.detach()).all())), None)


def assert_finite(model: nn.Module, step: int) -> None:
    """`RunFailed` naming the step and the parameter when the model's weights are not all finite."""
    name = nonfinite_parameter(model)
    if name is not None:
        raise Diverged(
            f"training diverged by step {step}: the weights are not finite (first: {name}); nothing was saved as "
            "a result. Try a lower --lr, --max-grad-norm 1, or check the data for extreme values"
        )
