"""Where `advlm train --resume` continues from, and what it must find unchanged there.

The newest checkpoint whose files are intact (`advlm.checkpoints.resumable`: a damaged newer one is passed over
with a warning saying why), made with the same settings but those in `RESUMABLE_CHANGES`, and on the same data:
each checkpoint holds fingerprints of the tokenized training and evaluation sets, so a changed file, a
`--data-dir` with other files or another slice is refused unless `allow_changed_data`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from advlm.checkpoints import checkpoint_info, resumable
from advlm.config import TrainConfig, check_same_settings
from advlm.errors import AdvlmError

logger = logging.getLogger(__name__)
# settings a resumed run may change: they do not change what is trained
RESUMABLE_CHANGES = {
    "resume",
    "overwrite",
    "progress",
    "logging_steps",
    "output_dir",
    "data_dir",
    "eval_batch_size",
    "save_total_limit",
    "robustness",
    "robustness_eps",
    "robustness_steps",
    "robustness_samples",
    "allow_changed_data",
}


def data_fingerprints(train_ds, dev_ds) -> dict[str, str]:
    return {"train": train_ds.fingerprint(), "eval": dev_ds.fingerprint()}


def resume_point(cfg: TrainConfig, method, data: dict[str, str]) -> Path:
    """The checkpoint `--resume` continues from: the newest complete one whose files are intact (a damaged newer
    one is passed over, saying why), made with the same settings and on the same data (`data`: this run's
    fingerprints; `allow_changed_data` lets it go on with other data). A method that replays batches (FreeAT)
    resumes only from the end of an epoch: the Trainer's skipping of the epoch's first batches does not know
    of the replays."""
    out = Path(cfg.output_dir)
    checkpoint, damaged = resumable(out)
    if checkpoint is None:
        if damaged:
            raise AdvlmError(
                f"--resume: {damaged[0]}; no intact checkpoint is left to resume from: start afresh with --overwrite"
            )
        finished = " (it holds a finished run)" if (out / "metrics.json").is_file() else ""
        raise AdvlmError(f"--resume: {out} has no complete checkpoint to resume from{finished}; drop --resume")
    for problem in damaged:
        logger.warning("--resume: %s; resuming from %s instead", problem, checkpoint.name)
    info = checkpoint_info(checkpoint)
    check_same_settings(info.get("settings", {}), cfg.to_dict(), RESUMABLE_CHANGES, checkpoint)
    changed = [split for split, digest in (info.get("data") or {}).items() if data.get(split) != digest]
    if changed and not cfg.allow_changed_data:
        shown = " and ".join(f"{'training' if s == 'train' else 'evaluation'} data" for s in changed)
        raise AdvlmError(
            f"--resume: the {shown} differ from what {checkpoint} was trained on (a changed file, --data-dir or "
            "slice); resume on the same data, or pass --allow-changed-data to continue on these"
        )
    epoch = json.loads((checkpoint / "trainer_state.json").read_text()).get("epoch") or 0
    if method.optimizer_steps_per_batch > 1 and epoch != int(epoch):
        raise AdvlmError(
            f"--resume: {checkpoint} is within an epoch, and {method.name} replays batches, so it resumes only from "
            "a checkpoint at an epoch's end: train without --save-steps, or start afresh with --overwrite"
        )
    return checkpoint
