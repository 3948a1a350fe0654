"""Fine-tuning checkpoints that a killed run can be resumed from exactly, and that are never torn.

The Trainer writes a checkpoint folder (`checkpoint-N`: weights, optimizer, scheduler, RNG states, trainer
state; advlm adds the method's state). advlm then writes `advlm_checkpoint.json` into it, atomically and last:
a folder without it was cut off mid-write and is never resumed from. Older checkpoints are removed only after
the new one is complete, so a kill at any moment leaves the previous good checkpoint in place.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advlm import atomic
from advlm.errors import RunFailed

COMPLETE_FILE = "advlm_checkpoint.json"
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
    atomic.write_text(folder / COMPLETE_FILE, json.dumps(info, indent=2))


def checkpoint_info(folder: Path) -> dict[str, Any]:
    return json.loads((folder / COMPLETE_FILE).read_text())


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
        raise RunFailed(
            f"training diverged by step {step}: the weights are not finite (first: {name}); nothing was saved as "
            "a result. Try a lower --lr, --max-grad-norm 1, or check the data for extreme values"
        )
