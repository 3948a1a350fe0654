"""LoRA adapters (Hu et al., ICLR 2022) through `peft`, the optional `lora` extra: every method trains a LoRA
model as it trains a full one, since the methods perturb the word-embedding lookup and the adapters sit in the
layers after it.

- `add_lora` wraps a task model: `r`, `alpha`, dropout and the target modules (unset: peft's choice for the
  architecture, e.g. BERT's query and value). The task's head stays trainable and is saved with the adapter
  (peft's `modules_to_save`; for multiple choice, which peft has no task type for, set here).
- A LoRA on the word embeddings is refused: advlm perturbs the output of that lookup and needs it to be a plain
  embedding table (its gradient, TextAT's per-token table, the padding mask); peft's LoRA embedding is not one.
- A run folder of a LoRA run holds the adapter (`adapter_config.json`, `adapter_model.safetensors`), the base
  model's config (with the task's label names) and the tokenizer; `load_lora` puts the adapter on the base model
  that `adapter_config.json` names, with the task's head.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from advlm.errors import AdvlmError

ADAPTER_CONFIG = "adapter_config.json"
# peft's task types by advlm's head kinds (multiple choice has none)
TASK_TYPES = {
    "classification": "SEQ_CLS",
    "regression": "SEQ_CLS",
    "token-classification": "TOKEN_CLS",
    "question-answering": "QUESTION_ANS",
    "causal-lm": "CAUSAL_LM",
}


def _peft():
    try:
        import peft
    except ImportError:
        raise AdvlmError('--peft lora needs the peft package: pip install "advlm[lora]"') from None
    return peft


def add_lora(model: nn.Module, kind: str, r: int, alpha: float, dropout: float, targets: str | None) -> nn.Module:
    """`model` with LoRA adapters; only the adapters and the head train."""
    peft = _peft()
    target_modules = [t.strip() for t in targets.split(",") if t.strip()] if targets else None
    config = peft.LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
        task_type=TASK_TYPES.get(kind),
        modules_to_save=["classifier"] if kind == "multiple-choice" else None,
    )
    try:
        wrapped = peft.get_peft_model(model, config)
    except ValueError as e:  # e.g. a target module the model does not have
        raise AdvlmError(f"--lora-targets: {str(e).splitlines()[0]}") from None
    refuse_embedding_lora(wrapped)
    return wrapped


def refuse_embedding_lora(model: nn.Module) -> None:
    """A LoRA on the word-embedding table: refused, naming the real problem and the fix."""
    emb = model.get_input_embeddings()
    if not isinstance(emb, nn.Embedding) or type(emb).__module__.startswith("peft"):
        raise AdvlmError(
            "a LoRA on the word embeddings is not supported: advlm perturbs the output of the embedding lookup and "
            "needs it to be a plain embedding table; leave the embeddings out of --lora-targets"
        )


def is_lora_folder(path: str | Path | None) -> bool:
    return path is not None and (Path(path) / ADAPTER_CONFIG).is_file()


def base_model_of(path: str | Path) -> str:
    """The base model an adapter folder was trained on (`base_model_name_or_path` of its adapter config)."""
    config = json.loads((Path(path) / ADAPTER_CONFIG).read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise AdvlmError(f"{path}/{ADAPTER_CONFIG} names no base model (base_model_name_or_path); fix or re-save it")
    return base


def load_lora(model: nn.Module, path: str | Path) -> nn.Module:
    """The trained adapter (and head) of `path` on `model`, the base model with the task's head, for scoring."""
    peft = _peft()
    return peft.PeftModel.from_pretrained(model, str(path), is_trainable=False)
