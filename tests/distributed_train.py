"""Helper for test_distributed.py: one training run, launched directly or under torchrun."""

import os
import sys

import torch

from advlm.config import TrainConfig
from advlm.training import run_training

model, data_dir, out, batch_size, method = sys.argv[1:6]
cfg = TrainConfig(
    task="rte",
    method=method,
    model=model,
    data_dir=data_dir,
    output_dir=out,
    epochs=1,
    batch_size=int(batch_size),
    max_train_samples=32,
    max_eval_samples=16,
    lr=1e-3,
    seed=0,
    progress=False,
)
# sequential order: the two ranks' halves of each global batch are exactly the 1-process batch
# SGD compares gradients linearly: AdamW would turn float-order noise in near-zero gradients into lr-sized steps
run_training(cfg, train_sampling_strategy="sequential", optim="sgd")
# leave the process group, then the interpreter without its finalizers: gloo's threads torn down at interpreter
# exit can abort a rank ("terminate called without an active exception"; see fsdp_steps.py)
if torch.distributed.is_initialized():
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
