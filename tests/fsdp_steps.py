"""Helper for test_fsdp.py: a few plain-loop steps of one method on a tiny BERT, either on one process with the
whole batch or, under torchrun, sharded with FSDP's `fully_shard` (gloo, CPU) with each rank taking its half.
Writes the per-step losses (the ranks' mean), the method's metrics and the full weights to OUT (rank 0).

python tests/fsdp_steps.py METHOD OUT [key=value ...]      (one process)
torchrun --nproc_per_node 2 tests/fsdp_steps.py METHOD OUT [key=value ...]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from transformers import BertForSequenceClassification

from advlm import build_method
from tests import tiny  # the test puts the repository on the path

STEPS, BATCH, LENGTH, VOCAB = 3, 8, 12, tiny.VOCAB


def batch() -> dict[str, torch.Tensor]:
    """Eight examples; every one has padding, so the halves pad alike."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, VOCAB, (BATCH, LENGTH), generator=g)
    mask = torch.ones_like(ids)
    for i in range(BATCH):
        n = 6 + i % 5
        ids[i, n:], mask[i, n:] = 0, 0
    ids[:, 0] = 2  # a [CLS]-like special token
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.arange(BATCH) % 2}


def model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny.config("bert"))  # dropout off


def main() -> None:
    name, out = sys.argv[1], Path(sys.argv[2])
    options = {k: json.loads(v) for k, v in (a.split("=", 1) for a in sys.argv[3:])}
    sharded = "WORLD_SIZE" in os.environ
    net, data = model(), batch()
    rank, world = 0, 1
    if sharded:
        import torch.distributed as dist
        from torch.distributed.fsdp import fully_shard

        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        for layer in net.bert.encoder.layer:
            fully_shard(layer)
        fully_shard(net)
        half = BATCH // world
        data = {k: v[rank * half : (rank + 1) * half] for k, v in data.items()}
    method = build_method(name, **options)
    method.prepare(net, tokenizer=type("T", (), {"all_special_ids": [0, 2]})(), total_steps=STEPS)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    losses, metrics = [], []
    for step in range(STEPS):
        torch.manual_seed(100 + step)
        result = method.step(net.train(), data)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = result.loss.detach().clone()
        values = {k: float(v) for k, v in result.metrics.items()}
        if sharded:
            torch.distributed.all_reduce(loss, op=torch.distributed.ReduceOp.AVG)
        losses.append(float(loss))
        metrics.append(values)
    weights = {}
    for key, value in net.state_dict().items():
        weights[key] = value.full_tensor() if hasattr(value, "full_tensor") else value
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "losses.json").write_text(json.dumps({"losses": losses, "metrics": metrics}))
        torch.save({k: v.detach().cpu() for k, v in weights.items()}, out / "weights.pt")
        if getattr(method, "table", None) is not None:  # TextAT's token table: every process holds all of it
            torch.save(method.table.cpu(), out / "table.pt")
    if sharded:  # both ranks done before the group goes: gloo torn down under a busy peer can abort a rank
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        # Under load a rank still aborted at exit ("terminate called without an active exception", about 1 run in
        # 5 with two busy cores): gloo's worker threads are torn down during interpreter finalization (pytorch
        # issue 190489). Everything is written and the group is gone, so leave without finalizers.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
