"""Helper for test_resume.py: a run (`finetune` or `pretrain`, settings as JSON) that kills its own process
with SIGKILL during optimizer step K, as an out-of-memory killer or a lost machine would.

python tests/killed_run.py finetune|pretrain SETTINGS_JSON K
"""

import json
import os
import signal
import sys

from transformers import TrainerCallback

kind, settings, kill_at = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if kind == "finetune":
    from advlm.config import TrainConfig
    from advlm.training import run_training

    class KillAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == kill_at:
                die()

    run_training(TrainConfig(**settings), callbacks=(KillAt(),))
else:
    from advlm.pretraining import pretrain

    real_step, calls = pretrain._step, []

    def step(*args):
        calls.append(1)
        if len(calls) == kill_at:
            die()
        return real_step(*args)

    pretrain._step = step
    pretrain.run_pretraining(pretrain.PretrainConfig(**settings))
