"""A mean teacher that holds only what training changes: an exponential moving average of the student's
trainable parameters (SMART's Bregman proximal point, Jiang et al., ACL 2020).

The teacher's pass runs the student's own modules with the averaged tensors put in place of its trainable
parameters for the duration of the pass (their `.data` swapped, under `no_grad`, then swapped back), in eval
mode (no dropout). Frozen parameters (a LoRA model's base weights, a frozen encoder) and buffers are the
student's: they never differ from a copy's, so a copy of them would only cost memory. With full fine-tuning
the teacher holds as much as a copy of the parameters; with LoRA, only the adapters and the head.

The averaged tensors are clones (never aliases of the live weights: an aliased teacher makes the Bregman
term identically zero, a known community bug). Under FSDP's `fully_shard` a parameter is a DTensor and the
teacher averages this process's shard of it; as FSDP gathers the full weights from its own shard storage, the
swap there copies the values in and out (one shard-sized temporary at a time) instead of swapping `.data`.
DeepSpeed ZeRO-3's partitioned parameters are refused by name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import nn

from advlm.embeddings import unwrap
from advlm.errors import AdvlmError


def _local(p: torch.Tensor) -> torch.Tensor:
    """What this process holds of parameter `p`: its shard under FSDP's `fully_shard` (a view of the storage
    FSDP gathers from), else `p` itself."""
    return p.to_local() if hasattr(p, "to_local") and hasattr(p, "placements") else p


def _reshard(model: nn.Module) -> None:
    """Under FSDP's `fully_shard`, free every gathered weight, so that the registered parameters are the shards
    and the next forward or backward gathers from them (the root module keeps its weights gathered after its
    forward, and those are what its backward uses)."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:
        return
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


def _check_not_partitioned(p: torch.Tensor, name: str) -> None:
    if hasattr(p, "ds_id"):
        raise AdvlmError(
            f"smart: {name} is a DeepSpeed ZeRO-3 partitioned parameter, which its mean teacher cannot average; "
            "use ZeRO-2 or FSDP, or turn the teacher off with --bregman false"
        )


class MeanTeacher:
    """theta~ <- decay theta~ + (1 - decay) theta over the trainable parameters of `model`, by name."""

    def __init__(self, model: nn.Module):
        student = unwrap(model)
        _reshard(student)  # the shards, not gathered weights, are what it averages
        trainable = [(n, p) for n, p in student.named_parameters() if p.requires_grad]
        for name, p in trainable:
            _check_not_partitioned(p, name)
        self.sharded = any(_local(p) is not p for _, p in trainable)
        self.weights = {n: _local(p).detach().clone() for n, p in trainable}
        self._lists: tuple | None = None

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.weights.values())

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        """One multi-tensor kernel for all averaged tensors (listed once, not every step)."""
        student = unwrap(model)
        if self._lists is None or self._lists[0] is not student:
            params = dict(student.named_parameters())
            self._lists = (student, list(self.weights.values()), [_local(params[n]).detach() for n in self.weights])
        torch._foreach_lerp_(self._lists[1], self._lists[2], 1 - decay)

    @contextlib.contextmanager
    def in_place_of(self, model: nn.Module) -> Iterator[nn.Module]:
        """The student module with the teacher's weights, in eval mode, without gradients; restored after."""
        student = unwrap(model)
        if self.sharded:
            _reshard(student)
        params = dict(student.named_parameters())
        pairs = [(_local(params[n]), t) for n, t in self.weights.items()]
        was_training = student.training
        with torch.no_grad():
            self._swap(pairs)
            student.eval()
            try:
                yield student
            finally:
                student.train(was_training)
                if self.sharded:  # the gathered weights are the teacher's now: the backward must gather anew
                    _reshard(student)
                self._swap(pairs)

    def _swap(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        for p, t in pairs:
            if self.sharded:  # in place: FSDP gathers from the shard's storage, not from `.data`
                held = p.clone()
                p.copy_(t)
                t.copy_(held)
            else:
                p.data, t.data = t.data, p.data

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.weights)

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """The averaged tensors of a checkpoint; names the model's trainable parameters must all have (a
        teacher saved as a full copy also holds frozen ones and buffers, which are not needed)."""
        missing = sorted(set(self.weights) - set(state))
        if missing:
            raise ValueError(f"smart: the saved teacher has no {', '.join(missing[:3])}; was it saved for this model?")
        with torch.no_grad():
            for name, tensor in self.weights.items():
                tensor.copy_(state[name])
