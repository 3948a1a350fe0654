"""The only place that touches model internals: the word-embedding lookup, position ids, unwrapping.

Every method perturbs the output of the word-embedding lookup (`get_input_embeddings()`), before position/type
embeddings, LayerNorm and dropout, which the model applies itself, so a zero perturbation reproduces the
`input_ids` path exactly. The perturbation gets there by one of two routes (docs/methods.md, "Where the
perturbation enters"):

- `inputs_embeds` (the default): the lookup is made here, outside the model's forward, perturbed, and passed as
  `inputs_embeds=`. The step's passes can then share one lookup, so the table's gradient is computed once per
  step (`advlm.fast_paths.StepLookup`). RoBERTa-family models number positions from the padding in
  `input_ids`, which `inputs_embeds` hides; we compute those ids ourselves.
- `hook`: the model is called with `input_ids` and a forward hook on the word-embedding module adds the
  perturbation to its output (the way transformers' NEFTune adds its noise). Taken when the table is sharded
  outside the forward (FSDP's `fully_shard`, FSDP1, DeepSpeed ZeRO-3), where a lookup made here fails or
  reads an empty shard, and under `perturb_by_hook()` / `ADVLM_PERTURB_BY_HOOK=1`. Each pass then makes its
  own lookup (the table's gradient at every backward).

Every other key of the batch reaches the model as it is (no allow-list), and the ids may have any leading shape
(B x T, or B x C x T for multiple choice).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import weakref
from collections.abc import Mapping

import torch
from torch import nn

from advlm.errors import AdvlmError
from advlm.passes import PassFn, model_pass


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model under DistributedDataParallel / accelerate / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def word_embeddings(model: nn.Module) -> nn.Embedding:
    from advlm.modeling import check_input_embeddings

    return check_input_embeddings(unwrap(model))


def check_accepts_inputs_embeds(model: nn.Module) -> None:
    """Methods feed `inputs_embeds`; refuse a model whose forward cannot take them, before any training."""
    word_embeddings(model)
    params = inspect.signature(unwrap(model).forward).parameters
    if "inputs_embeds" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise AdvlmError(
            f"{type(unwrap(model)).__name__}.forward does not accept inputs_embeds; adversarial methods perturb "
            "the word embeddings and need a model that takes them (BERT, RoBERTa, ELECTRA, DeBERTa, ...)"
        )


def embed(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """The word-embedding lookup (... x T x H), with its gradient to the table (see `advlm.fast_paths.StepLookup` for methods
    that back-propagate several passes per step)."""
    return word_embeddings(model)(input_ids)


def lookup_shaped(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor with the lookup's shape (... x T x H), dtype and device, to size a perturbation
    without making a lookup (which a sharded table cannot do outside the forward)."""
    table = word_embeddings(model)
    return torch.empty((*input_ids.shape, table.embedding_dim), dtype=table.weight.dtype, device=input_ids.device)


_by_hook = os.environ.get("ADVLM_PERTURB_BY_HOOK", "0") == "1"


@contextlib.contextmanager
def perturb_by_hook(on: bool = True):
    """Within the block, every method takes the hook route, sharded or not (for tests and comparisons)."""
    global _by_hook
    outer, _by_hook = _by_hook, on
    try:
        yield
    finally:
        _by_hook = outer


def _is_fsdp1(model: nn.Module) -> bool:
    while isinstance(model, nn.Module):
        if type(model).__name__ == "FullyShardedDataParallel":
            return True
        model = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
    return False


def table_is_sharded(model: nn.Module) -> bool:
    """Whether the word-embedding table lives in shards outside the model's forward: a DTensor (FSDP's
    `fully_shard`), a DeepSpeed ZeRO-3 parameter, or a module under FSDP1."""
    weight = word_embeddings(model).weight
    if hasattr(weight, "ds_id"):  # DeepSpeed ZeRO-3 partitions every parameter
        return True
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch without distributed
        DTensor = ()  # noqa: N806
    return isinstance(weight, DTensor) or _is_fsdp1(model)


def hook_route(model: nn.Module) -> bool:
    """Whether the perturbation enters through a forward hook (module docstring) rather than `inputs_embeds`."""
    return _by_hook or table_is_sharded(model)


@contextlib.contextmanager
def added_to_lookup(model: nn.Module, delta: torch.Tensor):
    """Within the block, `delta` is added to the word-embedding module's output (its shape: the ids' leading
    shape x H; a model that flattens choices, B x C x T to B*C x T, gets it flattened alike)."""

    def add(module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        return output + delta.reshape(output.shape).to(output.dtype)

    handle = word_embeddings(model).register_forward_hook(add)
    try:
        yield
    finally:
        handle.remove()


def token_mask(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """1.0 at real tokens, 0.0 at padding, the shape of `input_ids` (float, for masking deltas)."""
    mask = batch.get("attention_mask")
    if mask is None:
        return torch.ones_like(batch["input_ids"], dtype=torch.float)
    return mask.float()


_POSITION_MODULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def padding_position_module(model: nn.Module) -> nn.Module | None:
    """Found once per model (a walk over all its modules would cost every forward pass)."""
    bare = unwrap(model)
    if bare not in _POSITION_MODULES:
        found = [
            m for m in bare.modules() if hasattr(m, "create_position_ids_from_input_ids") and hasattr(m, "padding_idx")
        ]
        _POSITION_MODULES[bare] = found[0] if found else None
    return _POSITION_MODULES[bare]


def position_ids(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor | None:
    """Position ids as the model would derive them from `input_ids` (RoBERTa family), else None. Ids of any
    leading shape are numbered per sequence (the last dimension), as the model does after flattening them."""
    module = padding_position_module(model)
    if module is None:
        return None
    flat = input_ids.reshape(-1, input_ids.size(-1))
    return module.create_position_ids_from_input_ids(flat, module.padding_idx).view(input_ids.shape)


def model_inputs(model: nn.Module, batch: Mapping[str, torch.Tensor], embeds: torch.Tensor) -> dict:
    """The model's keyword arguments: every key of `batch` but `input_ids`, and `inputs_embeds` in its place
    (a new dict each call: the Trainer's `compute_loss` pops `labels` from the one it is given)."""
    inputs = {k: v for k, v in batch.items() if k != "input_ids"}
    inputs["inputs_embeds"] = embeds
    if "attention_mask" in inputs:
        from advlm.fast_paths import attention_mask_for_passes

        inputs["attention_mask"] = attention_mask_for_passes(model, inputs["attention_mask"], embeds)
    if "position_ids" not in inputs:
        pos = position_ids(model, batch["input_ids"])
        if pos is not None:
            inputs["position_ids"] = pos
    return inputs


def id_inputs(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict:
    """The model's keyword arguments for a pass on the ids themselves (a method that perturbs weights, not
    embeddings): the batch, its attention mask prepared once per step like `model_inputs`' (a new dict)."""
    inputs = dict(batch)
    if "attention_mask" in inputs:
        from advlm.fast_paths import attention_mask_for_passes

        dtype = next(unwrap(model).parameters()).dtype  # what the mask is made for: the embeddings' dtype
        like = torch.empty((*batch["input_ids"].shape, 1), dtype=dtype, device=batch["input_ids"].device)
        inputs["attention_mask"] = attention_mask_for_passes(model, inputs["attention_mask"], like)
    return inputs


def forward_embeds(
    model: nn.Module,
    batch: Mapping[str, torch.Tensor],
    delta: torch.Tensor | None = None,
    words: torch.Tensor | None = None,
    compute_loss: PassFn = model_pass,
):
    """One pass at the word embeddings (`words`, else looked up now) plus `delta` (zero where None), through
    the pass function; returns its `(loss, outputs)`. On the hook route (`hook_route`) the model makes the lookup
    itself and `words` must be None."""
    if hook_route(model):
        if words is not None:
            raise ValueError("forward_embeds: on the hook route the model makes the lookup; pass words=None")
        if delta is None:
            return compute_loss(model, dict(batch))
        with added_to_lookup(model, delta):
            return compute_loss(model, dict(batch))
    embeds = embed(model, batch["input_ids"]) if words is None else words
    if delta is not None:
        embeds = embeds + delta.to(embeds.dtype)
    return compute_loss(model, model_inputs(model, batch, embeds))
