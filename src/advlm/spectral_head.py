"""R4F's spectrally normalised output layer: Aghajanyan et al., "Better Fine-Tuning by Reducing
Representational Collapse", ICLR 2021, section 3.2 (reference: fairseq's `--spectral-norm-classification-head`,
which wraps RoBERTa's classification head's `out_proj` in `torch.nn.utils.spectral_norm`, one power iteration
per training forward).

Which layer, per head: the head's last linear layer outside the encoder, the one that makes the logits.
`classifier` for BERT, DeBERTa and MiniLM classifiers, taggers and multiple-choice heads; `classifier.out_proj`
for RoBERTa and ELECTRA classifiers (fairseq's choice: the dense layer before it stays as it is); `score` for
GPT-2 or Llama classifiers; `qa_outputs` for extractive QA (start and end logits come from one layer). A causal
LM has no classification head: its output layer is the vocabulary projection, tied to the word embeddings in
most models, so normalising it would rescale the embedding table too; R4F refuses it and names R3F.

Departures: torch's parametrisation moves the weight to `parametrizations.weight.original` (with the power
iteration's `_u` and `_v`). Hooks on the layer keep the saved names plain: its state dict holds `weight` with
the value the layer computes with, W / sigma(W) (sigma from the stored vectors, as in evaluation), so
`save_pretrained` writes a model that any `from_pretrained` loads and evaluates as it was trained, without
advlm; loading a plain `weight` into a normalised layer makes it the original (W / sigma(W) has sigma 1, so the
layer computes the same). The exact original and the vectors travel in the method's state, so a resumed run
continues where it stopped."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from advlm.errors import AdvlmError

ORIGINAL = "parametrizations.weight.original"
VECTORS = ("parametrizations.weight.0._u", "parametrizations.weight.0._v")
# torch's spectral_norm runs this many power iterations when it registers; a loaded weight gets the same
INITIAL_ITERATIONS = 15


def output_layer(model: nn.Module) -> tuple[str, nn.Linear]:
    """(name, module) of the linear layer that makes the head's logits: the last `nn.Linear` registered outside
    the model's encoder (`base_model`). Raises `AdvlmError` for a causal LM or a model without one."""
    from advlm.embeddings import unwrap
    from advlm.heads import CAUSAL_LM, head_of

    if head_of(model) == CAUSAL_LM:
        raise AdvlmError(
            "r4f normalises a classification head's output layer, and a causal LM has none (its output layer is "
            "the vocabulary projection, usually tied to the word embeddings): use --method r3f"
        )
    bare = unwrap(model)
    if hasattr(bare, "get_base_model"):  # peft: the head (or its trainable copy) lives in the wrapped model
        bare = bare.get_base_model()
    base = getattr(bare, "base_model", bare)
    encoder = {id(m) for m in base.modules()} if base is not bare else set()
    found = None
    for name, module in bare.named_modules():
        if isinstance(module, nn.Linear) and id(module) not in encoder:
            found = (name, module)
    if found is None:
        raise AdvlmError(f"r4f: {type(bare).__name__} has no linear output layer outside its encoder; use --method r3f")
    name, layer = found
    weight = layer.parametrizations.weight.original if is_normalised(layer) else layer.weight
    if not weight.requires_grad:
        raise AdvlmError(f"r4f: the output layer '{name}' is frozen; train it (with peft: modules_to_save) or use r3f")
    if type(weight).__name__ == "DTensor":
        raise AdvlmError(f"r4f: the output layer '{name}' is sharded (FSDP), which R4F does not support; use r3f")
    return found


def is_normalised(layer: nn.Module) -> bool:
    return parametrize.is_parametrized(layer, "weight")


def normalise(layer: nn.Linear) -> None:
    """Spectral normalisation of `layer.weight` (one power iteration per training use; R4F caches one per step), with
    plain saved names; a layer already normalised is left alone. The weight stays the same parameter object, so
    an optimizer made before keeps training it."""
    if is_normalised(layer):
        return
    device = layer.weight.device
    # torch draws the power iteration's first vectors from the global generator: draw them from a fixed seed
    # instead, so that where `prepare` is called (before or after the Trainer seeds) changes nothing, and the
    # run's own random stream (dropout, noise) is not moved by it
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(0)
        spectral_norm(layer)
    layer.register_state_dict_post_hook(_plain_weight)
    layer.register_load_state_dict_pre_hook(_weight_into_original)


def effective_weight(layer: nn.Linear) -> torch.Tensor:
    """W / sigma(W) with sigma from the stored power-iteration vectors (what evaluation computes), without
    running an iteration (which would move the vectors)."""
    original = layer.parametrizations.weight.original.detach()
    u, v = (getattr(layer.parametrizations.weight[0], k) for k in ("_u", "_v"))
    return original / torch.vdot(u, torch.mv(original, v))


def power_vectors(
    weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor, iterations: int = INITIAL_ITERATIONS
) -> tuple[torch.Tensor, torch.Tensor]:
    """`iterations` steps of the power method on `weight` from (u, v), as torch's spectral_norm runs them."""
    for _ in range(iterations):
        u = F.normalize(torch.mv(weight, v), dim=0, eps=1e-12)
        v = F.normalize(torch.mv(weight.mT, u), dim=0, eps=1e-12)
    return u, v


def _plain_weight(layer: nn.Module, state: dict, prefix: str, _metadata) -> None:
    if prefix + ORIGINAL not in state:
        return
    for key in (ORIGINAL, *VECTORS):
        state.pop(prefix + key, None)
    state[prefix + "weight"] = effective_weight(layer)


def _weight_into_original(layer: nn.Module, state: dict, prefix: str, *_args) -> None:
    if prefix + "weight" not in state:
        return
    weight = state.pop(prefix + "weight")
    parametrization = layer.parametrizations.weight[0]
    with torch.no_grad():
        w = weight.to(parametrization._u.device, parametrization._u.dtype)
        u, v = power_vectors(w, parametrization._u, parametrization._v)
    state[prefix + ORIGINAL] = weight
    state[prefix + VECTORS[0]], state[prefix + VECTORS[1]] = u, v
