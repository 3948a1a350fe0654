"""Helper for test_nothing_lost.py: `advlm train|pretrain ARGS...` that sends itself SIGTERM (what a scheduler
sends on preemption) during optimizer step K, then exits as the command would.

python tests/terminated_run.py K train|pretrain ARGS...
"""

import os
import signal
import sys

from advlm.cli import main

kill_at, argv = int(sys.argv[1]), sys.argv[2:]


def term() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


if argv[0] == "train":
    from advlm.trainer import AdversarialTrainer

    real_step = AdversarialTrainer.training_step

    def training_step(self, *args, **kwargs):
        if self.state.global_step + 1 == kill_at:
            term()
        return real_step(self, *args, **kwargs)

    AdversarialTrainer.training_step = training_step
else:
    from advlm.pretraining import pretrain

    real_step, calls = pretrain._step, []

    def step(*args):
        calls.append(1)
        if len(calls) == kill_at:
            term()
        return real_step(*args)

    pretrain._step = step
sys.exit(main(argv))
