"""The resolved settings of one training run: dataclass defaults < `--config` YAML < command-line flags."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from advlm.errors import AdvlmError

INT_MAX = 2**31 - 1  # no count, size or length of a run comes near it; beyond it torch and numpy fail obscurely
CHECKS = {
    "seed": (lambda v: 0 <= v < 2**32, "must be in [0, 2**32)", "pass a seed from 0 to 4294967295"),
    "positive": (lambda v: v > 0, "must be positive", "pass a value > 0"),
    "epochs": (lambda v: 0 < v <= 1e6, "must be in (0, 1e6]", "pass a positive number of epochs"),
    "nonnegative": (lambda v: v >= 0, "must be >= 0", "pass 0 or more"),
    "fraction": (lambda v: 0 <= v < 1, "must be in [0, 1)", "pass a fraction below 1"),
}


def setting(
    default: Any,
    help: str,
    check: str | None = None,
    type: type | None = None,
    flag: bool = True,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A run setting: its default (`dataclasses.MISSING`: required), its help (the CLI flag's), the check it
    must pass (`CHECKS`; None is allowed where the default is None) or the values it may take, the flag's type
    where the default cannot say it, and whether it is a flag."""
    meta = {"help": help, "check": check, "type": type, "flag": flag, "choices": choices}
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=meta)
    if default is dataclasses.MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def check_settings(settings: Any) -> None:
    """Each field of a settings dataclass against its check or choices; an `AdvlmError` naming the flag and the
    fix."""
    for f in dataclasses.fields(settings):
        value, flag = getattr(settings, f.name), "--" + f.name.replace("_", "-")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise AdvlmError(
                f"unknown {f.name.replace('_', ' ')} {value!r} ({flag}); choose one of: {', '.join(choices)}"
            )
        check = f.metadata.get("check")
        if check is not None and not (value is None and f.default is None):
            ok, problem, fix = CHECKS[check]
            if value is None or not ok(value):
                raise AdvlmError(f"{flag} {problem}, got {value}; {fix}")
        if isinstance(value, int) and not isinstance(value, bool) and value > INT_MAX and check != "seed":
            raise AdvlmError(f"{flag} {value} is too large; pass at most {INT_MAX}")


@dataclass
class TrainConfig:
    """The settings of one training run; each validates itself, and `advlm train`'s flags are made from them."""

    task: str | None = setting(
        None,
        "built-in task: cola sst2 mrpc stsb qqp mnli mnli-mm qnli rte wnli (GLUE), conll2003, commonsenseqa, "
        "arc-easy, arc-challenge; with --task-type, a name for your own task",
    )
    task_type: str | None = setting(
        None,
        "kind of your own data (with --train-file/--eval-file): classification, regression, token-classification, "
        "multiple-choice, question-answering, causal-lm",
    )
    text_fields: str | None = setting(
        None, "classification/regression of your own data: the text field(s), 'a' or 'a,b' (unset: text)"
    )
    label_field: str | None = setting(
        None, "classification/regression of your own data: the label field (unset: label)"
    )
    doc_stride: int | None = setting(
        None,
        "question answering: tokens shared by consecutive windows of a long context (unset: 32)",
        "nonnegative",
        int,
    )
    method: str = setting("vanilla", "training method (see `advlm list`)")
    method_args: dict[str, Any] = setting({}, "the method's hyper-parameters", flag=False)
    model: str | None = setting(None, "local Hugging Face model folder or hub id (unset: the packaged MiniLM)")
    output_dir: str = setting("runs/advlm", "run directory: model, config.yaml, metrics.json (required by advlm train)")
    overwrite: bool = setting(False, "replace the contents of a non-empty --output-dir (else it is refused)")
    resume: bool = setting(
        False, "continue the killed or interrupted run in --output-dir from its last complete checkpoint"
    )
    allow_changed_data: bool = setting(
        False, "with --resume: continue even though the data differ from what the checkpoint was trained on"
    )
    data_dir: str | None = setting(
        None,
        "folder of the tasks' data (glue/, conll2003/, ...; unset: $ADVLM_DATA_DIR, else the first shared/data in the "
        "working directory or a folder above it)",
    )
    train_file: str | None = setting(
        None, "your own training file instead of the task's (.jsonl/.csv/.tsv; CoNLL; SQuAD .json)"
    )
    eval_file: str | None = setting(None, "your own evaluation file instead of the task's dev split")
    epochs: float = setting(3.0, "training epochs", "epochs")
    lr: float = setting(2e-5, "peak learning rate (AdamW, linear warm-up and decay)", "positive")
    batch_size: int = setting(32, "training batch size per process", "positive")
    eval_batch_size: int = setting(128, "evaluation batch size", "positive")
    max_length: int = setting(128, "maximum tokens per example (longer ones are truncated)", "positive")
    max_train_samples: int | None = setting(
        None, "use a fixed random slice of this many training examples", "positive", int
    )
    max_eval_samples: int | None = setting(
        None, "use a fixed random slice of this many evaluation examples", "positive", int
    )
    seed: int = setting(42, "random seed", "seed")
    warmup_ratio: float = setting(0.1, "fraction of steps for the linear warm-up", "fraction")
    weight_decay: float = setting(0.01, "AdamW weight decay", "nonnegative")
    max_grad_norm: float = setting(1.0, "gradient clipping norm (0: none)", "nonnegative")
    grad_accum: int = setting(1, "gradient accumulation steps", "positive")
    logging_steps: int = setting(50, "log every N optimizer steps", "positive")
    save_steps: int | None = setting(
        None,
        "checkpoint every N optimizer steps, evaluating then to keep the best (unset: every epoch)",
        "positive",
        int,
    )
    save_total_limit: int = setting(1, "checkpoints kept besides the best one", "positive")
    peft: str = setting(
        "none", "parameter-efficient fine-tuning: lora (the lora extra: peft)", choices=("none", "lora")
    )
    lora_r: int = setting(8, "with --peft lora: the adapters' rank", "positive")
    lora_alpha: float = setting(
        16.0, "with --peft lora: the adapters' scale alpha (the update is alpha / r x BA)", "positive"
    )
    lora_dropout: float = setting(0.0, "with --peft lora: dropout on the adapters' input", "fraction")
    lora_targets: str | None = setting(
        None, "with --peft lora: modules to adapt, comma-separated (unset: peft's default, e.g. query,value for BERT)"
    )
    gradient_checkpointing: bool = setting(
        False, "recompute each layer's activations in the backward pass: less memory, more time; gradients unchanged"
    )
    compile: bool = setting(
        False, "torch.compile the model (the Trainer's torch_compile, inductor): slow first steps, then faster ones"
    )
    fsdp: str | None = setting(
        None,
        "shard the model with FSDP under torchrun or accelerate: the Trainer's options, e.g. 'full_shard auto_wrap'",
    )
    fsdp_config: str | None = setting(None, 'with --fsdp: the Trainer\'s FSDP config JSON (e.g. {"fsdp_version": 2})')
    deepspeed: str | None = setting(None, "DeepSpeed config JSON (ZeRO-2/3; needs deepspeed and a GPU)")
    progress: bool = setting(True, "show progress bars")
    robustness: bool = setting(
        False, "after training, measure FreeLB's Table-5 loss increase on the dev set into metrics.json"
    )
    robustness_eps: float = setting(0.1, "with --robustness: radius of the l2 ball for M-Inc", "positive")
    robustness_steps: int = setting(10, "with --robustness: ascent steps (the cap)", "positive")
    robustness_samples: int = setting(
        200, "with --robustness: dev examples measured (a fixed random slice)", "positive"
    )

    def __post_init__(self) -> None:
        coerce_fields(self)
        self.validate()

    def validate(self) -> None:
        check_settings(self)
        check_not_both_overwrite_and_resume(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def coerce(name: str, value: Any, default: Any, annotation: str = "") -> Any:
    """A setting from YAML or Python into the type of its default ("1e-5" -> 1e-05); a clear error if it
    does not fit. `annotation` (the field's type as written) says whether text is wanted where the default is
    None, and whether None itself is allowed."""
    if value is None:
        if default is None or default is dataclasses.MISSING or "None" in annotation or not annotation:
            return value
        raise AdvlmError(f"setting '{name}' must be set (its default is {default!r}), got null")
    if isinstance(default, str) or (default is None and annotation.startswith("str")):
        if isinstance(value, str):
            return value
        raise AdvlmError(f"setting '{name}' must be text, got {value!r}")
    if default is None or default is dataclasses.MISSING:
        return value
    kind = type(default)
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if isinstance(value, bool):
            return value
    elif kind in (int, float):
        number = None
        if not isinstance(value, bool):  # YAML's true is no number of epochs
            try:
                number = float(value)
            except (TypeError, ValueError, OverflowError):
                number = None
        if number is not None and not math.isfinite(number):
            raise AdvlmError(f"setting '{name}' must be a finite number, got {value!r}")
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value  # exact, however large (the range is the setting's check)
        if number is not None and (kind is float or number == int(number)):
            return kind(number)
    elif isinstance(default, dict):
        if isinstance(value, dict):
            return value
        raise AdvlmError(f"setting '{name}' must be a mapping of names to values, got {value!r}")
    else:
        return value
    raise AdvlmError(f"setting '{name}' must be a {kind.__name__}, got {value!r}")


def check_not_both_overwrite_and_resume(settings: Any) -> None:
    if settings.overwrite and settings.resume:
        raise AdvlmError(
            "--overwrite and --resume together: --overwrite would delete the checkpoints --resume continues from; "
            "pass --resume to continue the run, or --overwrite alone to start afresh"
        )


def coerce_fields(settings: Any) -> None:
    """Every field of a settings dataclass through `coerce`, by its default (or its `type` where that is None)."""
    for f in dataclasses.fields(settings):
        if f.default is None and f.metadata.get("type"):
            typed = f.metadata["type"]()
        elif f.default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            typed = f.default_factory()
        else:
            typed = f.default
        setattr(settings, f.name, coerce(f.name, getattr(settings, f.name), typed, str(f.type)))


def check_same_settings(saved: dict[str, Any], now: dict[str, Any], free: set[str], checkpoint: Any) -> None:
    """`--resume` continues a run only with the settings its checkpoint was made with (but those in `free`,
    which do not change what is trained); an error naming each difference."""
    changed = [k for k in now if k not in free and k in saved and saved[k] != now[k]]
    if changed:
        shown = ", ".join(f"--{k.replace('_', '-')} {saved[k]!r} (now {now[k]!r})" for k in changed)
        raise AdvlmError(
            f"--resume: {checkpoint} was made with other settings: {shown}; resume with the checkpoint's settings, "
            "or start afresh with --overwrite"
        )


def config_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(TrainConfig)}


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML mapping of settings; keys may use dashes or underscores."""
    from advlm.paths import file_problem

    file = Path(path)
    problem = file_problem(file)
    if problem:
        raise AdvlmError(f"config file {file} {problem}; pass a YAML file to --config")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise AdvlmError(f"config file {file} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise AdvlmError(f"cannot read config file {file}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise AdvlmError(f"config file {file} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise AdvlmError(f"config file {file} must hold a mapping of settings, not {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def split_settings(settings: dict[str, Any], method_fields: set[str]) -> tuple[dict, dict]:
    """(run settings, method hyper-parameters); unknown keys are an error naming them."""
    given = settings.pop("method_args", None) or {}
    if not isinstance(given, dict):
        raise AdvlmError(f"setting 'method_args' must be a mapping of names to values, got {given!r}")
    run, method = {}, dict(given)
    known = config_fields()
    for key, value in settings.items():
        if key in known:
            run[key] = value
        elif key in method_fields:
            method[key] = value
        else:
            raise AdvlmError(f"unknown setting '{key}'; see `advlm train --help` for the settings")
    return run, method
