"""TextAT / token-aware adversarial training: "TAVAT: Token-Aware Virtual Adversarial Training for Language
Understanding", Li & Qiu, arXiv 2004.14543 (reference code LinyangLee/Token-Aware-VAT).

A global table Z (vocab x hidden) accumulates per-token perturbations across batches. For a batch, each real
token's perturbation starts from Z[token] (plus FreeLB's random init for the sentence-level part), then K
FreeLB passes (loss / K back-propagated each) ascend it with the token-level normalization: each token's step
is scaled by n_i = ||delta_i|| / max_j ||delta_j|| (1 where the example's delta is still zero), and the whole
example is projected onto the Frobenius ball of radius eps. After the K passes the final perturbations of
the batch's tokens are written back to Z; a token that occurs several times in a batch gets the mean of its
perturbations. Special tokens and padding never read from or write to Z. Cost: K forward+backward passes.

Departures: the reference does not divide the loss by K; we do (the parameter gradient is the mean over the
K passes, as in FreeLB). The reference's table update fails on current torch; ours is one `scatter_reduce_`
(mean) without a host sync. The table has one row per vocabulary entry of any model (inputs of any leading
shape: B x T, or B x C x T for multiple choice); it is made at the first step, and its size is logged then:
vocabulary x hidden x 4 bytes (docs/methods.md gives sizes), which `table_dtype=bfloat16` halves. The table
travels with checkpoints through `state_dict` (AdversarialTrainer saves it beside the weights).

Under data parallelism (DDP, FSDP, ZeRO) every process holds the whole table and writes back the final
perturbations of every process's batch (an all-gather of the batch's ids and perturbations, not of the table),
so the tables stay identical and equal to one process's on the global batch; the reference code, single-GPU,
has no such case.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from advlm.embeddings import token_mask, word_embeddings
from advlm.fast_paths import StepLookup
from advlm.heads import id_tensor, special_ids
from advlm.methods.base import AdversarialMethod, Backward, StepOutput, hparam, shared
from advlm.methods.freelb import free_passes
from advlm.methods.registry import register
from advlm.passes import PassFn
from advlm.perturbation import TINY, ascend, init_delta, project

logger = logging.getLogger(__name__)


@register("textat")
@dataclass
class TextAT(AdversarialMethod):
    """Token-aware adversarial training (Li & Qiu, 2020): a global per-token perturbation table + token-level ball."""

    steps: int = shared("steps", 2)
    step_size: float = shared("step_size", 2e-2)
    eps: float = shared("eps", 0.14)
    init_mag: float = shared("init_mag", 0.16)
    same_dropout: bool = hparam(True, "reuse the same dropout masks in all K passes of a batch")
    table_dtype: str = hparam(
        "float32",
        "dtype of the global token table (vocabulary x hidden: 4 bytes a value in float32; bfloat16 halves it)",
        choices=("float32", "bfloat16"),
    )
    norm: str = hparam("l2", "geometry of the ball: the example's Frobenius norm (token steps scaled)", choices=("l2",))
    adv_start_step: int = shared("adv_start_step", 0)
    nan_guard: bool = shared("nan_guard", True)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.table: torch.Tensor | None = None

    @property
    def passes(self) -> float:
        return float(self.steps)

    @property
    def needs(self) -> tuple[str, ...]:
        return ("tokenizer",)

    def untold_effect(self, need: str) -> str:
        return "tokens the model's config does not name as special (e.g. [CLS], [MASK]) read and write table rows"

    def _ensure_table(self, model: nn.Module) -> torch.Tensor:
        weight = word_embeddings(model).weight
        if self.table is None:
            dtype = torch.bfloat16 if self.table_dtype == "bfloat16" else torch.float32
            self.table = torch.zeros(weight.shape, dtype=dtype, device=weight.device)
            size = self.table.numel() * self.table.element_size()
            logger.info(
                "textat: token table %d x %d in %s, %.0f MB%s",
                *weight.shape,
                self.table_dtype,
                size / 1e6,
                " (table_dtype=bfloat16 would halve it)" if dtype == torch.float32 else "",
            )
        return self.table

    def _table_mask(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """True at the tokens that read and write the table: real tokens that are not special."""
        ids = batch["input_ids"]
        special = special_ids(model, self.special_token_ids)
        keep = token_mask(batch).bool()
        if special:
            keep &= ~torch.isin(ids, id_tensor(special, ids.device))
        return keep

    def adversarial_step(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], backward: Backward, compute_loss: PassFn
    ) -> StepOutput:
        ids, mask = batch["input_ids"], token_mask(batch)
        table, rows = self._ensure_table(model), self._table_mask(model, batch)
        lookup = StepLookup(model, ids)
        start = init_delta(lookup.like, mask, self.init_mag, self.norm)
        start = start + table[ids].float() * rows.unsqueeze(-1)
        delta = project(start, mask, self.eps, self.norm)

        def ascent(delta: torch.Tensor) -> torch.Tensor:
            token_norm = delta.detach().norm(dim=-1)  # ... x T: n_i = ||delta_i|| / max_j ||delta_j||
            peak = token_norm.amax(dim=-1, keepdim=True)
            scale = torch.where(peak > 0, token_norm / peak.clamp_min(TINY), torch.ones_like(token_norm))
            return ascend(delta, delta.grad, mask, self.step_size, self.eps, self.norm, token_scale=scale)

        out, final = free_passes(self, model, batch, backward, compute_loss, lookup, delta, ascent)
        self._write_back(ids, rows, final)
        return out

    @torch.no_grad()
    def _write_back(self, ids: torch.Tensor, rows: torch.Tensor, delta: torch.Tensor) -> None:
        ids, rows, delta = gathered_from_all_processes(ids, rows, delta)
        self._scatter(ids, rows, delta)

    @torch.no_grad()
    def _scatter(self, ids: torch.Tensor, rows: torch.Tensor, delta: torch.Tensor) -> None:
        """Z[token] <- mean of the batch's final perturbations of that token, with no host sync (no boolean
        indexing, no unique: one scatter). Positions without a table row (padding, special tokens) write
        their token's current row back, which leaves those rows as they were; a token that occurs both with
        and without a row (possible only with a hand-made attention mask) would have its old row averaged in."""
        table = self.table
        src = torch.where(rows.unsqueeze(-1), delta.float(), table[ids].float())
        index = ids.reshape(-1, 1).expand(-1, table.size(1))
        table.scatter_reduce_(0, index, src.reshape(-1, table.size(1)).to(table.dtype), "mean", include_self=False)

    def state_dict(self) -> dict[str, Any]:
        return {} if self.table is None else {"table": self.table.detach().cpu()}

    def load_state_dict(self, state: Mapping[str, Any], model: nn.Module | None = None) -> None:
        if state:
            device = self.table.device if self.table is not None else "cpu"
            self.table = state["table"].to(device)


def gathered_from_all_processes(
    ids: torch.Tensor, rows: torch.Tensor, delta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every process's ids (... x T), table mask and perturbations (... x T x H), flattened to N x T and padded
    to the largest N and T; as they are on one process. A padded position repeats the token of the process's
    first position without a row (padding or a special token), which writes that token's row back unchanged;
    a batch in which every position has a row pads with its first token, averaging its old row in (no host
    sync is spent to tell the cases apart)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return ids, rows, delta
    ids, rows = ids.reshape(-1, ids.size(-1)), rows.reshape(-1, rows.size(-1))
    delta = delta.reshape(*ids.shape, delta.size(-1)).float()
    sizes = [torch.zeros(2, dtype=torch.long, device=ids.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor(ids.shape, device=ids.device))
    n, t = (max(int(size[i]) for size in sizes) for i in (0, 1))
    filler = ids.flatten()[(~rows).flatten().int().argmax()]
    local = (
        _padded(ids, filler.expand(n, t)),
        _padded(rows, torch.zeros(n, t, dtype=torch.bool, device=ids.device)),
        _padded(delta, delta.new_zeros(n, t, delta.size(-1))),
    )
    gathered = []
    for part in local:
        everyone = [torch.empty_like(part) for _ in sizes]
        dist.all_gather(everyone, part)
        gathered.append(torch.cat(everyone))
    return gathered[0], gathered[1], gathered[2]


def _padded(local: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
    canvas = canvas.clone()
    canvas[: local.size(0), : local.size(1)] = local
    return canvas
