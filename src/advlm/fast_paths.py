"""Speed work that changes no result, in one place with one switch: what a method step shares between its passes.

- `StepLookup`: the step's passes share one word-embedding lookup, so the table's gradient (vocabulary x hidden)
  is computed once per step, at the last backward, instead of once per pass.
- `masks_shared_by_passes`: the step's passes share one prepared attention mask, so the host sync transformers
  makes to prepare it (is any token padding?) happens once per step, not once per pass.

Both give the plain path's gradients (tests/test_fast_paths.py); `ADVLM_FAST_PATHS=0` in the environment, or
`with fast_paths.disabled():`, turns both off (the plain path: a fresh lookup and mask every pass).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os

import torch
from torch import nn

from advlm.embeddings import embed, hook_route, lookup_shaped, padding_position_module, unwrap

_enabled = os.environ.get("ADVLM_FAST_PATHS", "1") != "0"


def enabled() -> bool:
    return _enabled


@contextlib.contextmanager
def disabled():
    """Within the block, every method step takes the plain path."""
    global _enabled
    outer, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = outer


# Encoders whose forward turns the 2D padding mask into the attention mask with transformers'
# `create_bidirectional_mask` alone (no sliding-window or other pattern on top), which returns a prepared 4D mask
# as it is. Others get the 2D mask on every pass, as before.
PLAIN_MASK_MODELS = frozenset({"bert", "roberta", "xlm-roberta", "electra", "camembert"})
_step_masks: list | None = None  # inside `masks_shared_by_passes`: (2D mask, what it was prepared for, result)


@contextlib.contextmanager
def masks_shared_by_passes():
    """Within the block (one method step), passes over the same batch share one prepared attention mask.

    Preparing it asks the device whether any token is padding: a host sync that transformers otherwise repeats
    on every forward, so a method making K passes per batch waited on the device K times where vanilla waits
    once. Scoped to a step: a new batch is prepared afresh, as vanilla's forward does."""
    global _step_masks
    outer, _step_masks = _step_masks, ([] if enabled() else None)
    try:
        yield
    finally:
        _step_masks = outer


def attention_mask_for_passes(model: nn.Module, mask: torch.Tensor | None, embeds: torch.Tensor):
    """The attention mask to pass with `embeds`: inside `masks_shared_by_passes`, for a plain-mask encoder,
    prepared once per mask tensor (None when nothing is padded, as transformers itself decides); else `mask`."""
    config = getattr(unwrap(model), "config", None)
    if (
        _step_masks is None
        or mask is None
        or mask.dim() != 2
        or getattr(config, "model_type", None) not in PLAIN_MASK_MODELS
        or getattr(config, "is_decoder", False)
    ):
        return mask
    # what the prepared mask depends on besides `mask` (a copy of the model, SMART's teacher, shares it)
    key = (config.model_type, getattr(config, "_attn_implementation", None), embeds.dtype, embeds.device)
    for seen, seen_key, prepared in _step_masks:
        if seen is mask and seen_key == key:
            return prepared
    try:
        from transformers.masking_utils import create_bidirectional_mask
    except ImportError:  # transformers < 5
        return mask
    prepared = create_bidirectional_mask(config=config, inputs_embeds=embeds, attention_mask=mask)
    if prepared is None and _none_mask_reads_position_ids(model):
        # the full mask, prepared without the "nothing padded" shortcut: no sync of its own, none in the passes
        prepared = create_bidirectional_mask(
            config=config, inputs_embeds=embeds, attention_mask=mask, allow_is_bidirectional_skip=False
        )
    _step_masks.append((mask, key, prepared))
    return prepared


def _none_mask_reads_position_ids(model: nn.Module) -> bool:
    """Whether handing this model no mask (what transformers prepares for an unpadded batch) makes its forward
    inspect the position ids we pass: RoBERTa-family models get exact position ids from us
    (`advlm.embeddings.position_ids`), and transformers versions whose `create_bidirectional_mask` takes
    `position_ids` look for packed sequences in them whenever the mask is None, a host sync on every pass (and a
    different mask if a padding id stood inside a sequence). There an unpadded step's passes get the full 4D mask
    instead (all positions visible: the same attention), which transformers uses as it is."""
    return padding_position_module(model) is not None and _mask_creation_takes_position_ids()


@functools.cache
def _mask_creation_takes_position_ids() -> bool:
    from transformers.masking_utils import create_bidirectional_mask

    return "position_ids" in inspect.signature(create_bidirectional_mask).parameters


class StepLookup:
    """The word-embedding lookup of one method step, computed once and shared by the step's passes.

    A method that back-propagates several passes per step (FGM, FreeLB, TextAT) would otherwise compute the
    table's gradient (vocabulary x hidden: about half of MiniLM's parameters) once per pass and hold it through
    the next pass's forward. Here the passes before the last feed a detached copy of the lookup, whose gradient
    (batch x tokens x hidden) sums there; the last pass feeds the lookup itself, with that sum added to its
    gradient, so the table's gradient is computed once, at the step's last backward. The lookup's backward is
    linear, so the table gets the same sum; under DDP it is ready in the last (synchronized) backward.

    On the hook route (`advlm.embeddings.hook_route`: a sharded table) nothing is shared: every pass gets None
    and the model makes its own lookup."""

    def __init__(self, model: nn.Module, input_ids: torch.Tensor) -> None:
        self.model, self.input_ids = model, input_ids
        self.hooked = hook_route(model)
        self.shared = enabled() and not self.hooked
        self.words = None if self.hooked else embed(model, input_ids)
        self.like = lookup_shaped(model, input_ids) if self.hooked else self.words
        self._early = None if self.hooked else self.words.detach().requires_grad_(self.words.requires_grad)
        self._carrying = False

    def for_pass(self, last: bool) -> torch.Tensor | None:
        """The lookup to perturb in a pass; `last` for the pass whose backward ends the step. With the fast paths
        off, a fresh lookup every pass (each backward then reaches the table itself); on the hook route, None."""
        if self.hooked:
            return None
        if not self.shared:
            return self.words if last else embed(self.model, self.input_ids)
        if not last:
            return self._early
        carried = self._early.grad
        if carried is not None and not self._carrying:
            self.words.register_hook(lambda grad: grad + carried.to(grad.dtype))
            self._carrying = True
        return self.words

    def carry(self) -> torch.Tensor | float:
        """A zero that depends on the lookup: add it to a last-pass loss the NaN guard replaced, so that the
        earlier passes' share of the table's gradient still reaches the table."""
        return (self.words * 0).sum() if self._carrying else 0.0
