"""The resolved settings of one training run: dataclass defaults < `--config` YAML < command-line flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from advlm.errors import AdvlmError


@dataclass
class TrainConfig:
    task: str | None = None  # a built-in task, or a name for your own data with task_type
    task_type: str | None = None  # the kind of your own data (classification, token-classification, ...)
    text_fields: str | None = None  # classification/regression of your own data: "a" or "a,b"
    label_field: str | None = None
    doc_stride: int | None = None  # question answering: tokens shared by consecutive windows
    method: str = "vanilla"
    method_args: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # local folder or hub id; None = the packaged MiniLM
    output_dir: str = "runs/advlm"
    data_dir: str | None = None
    train_file: str | None = None
    eval_file: str | None = None
    epochs: float = 3.0
    lr: float = 2e-5
    batch_size: int = 32
    eval_batch_size: int = 128
    max_length: int = 128
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    seed: int = 42
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    grad_accum: int = 1
    logging_steps: int = 50
    progress: bool = True
    robustness: bool = False  # FreeLB Table-5 measure on the dev set after training
    robustness_eps: float = 0.1
    robustness_steps: int = 10
    robustness_samples: int = 200

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, coerce(f.name, getattr(self, f.name), f.default))

    def validate(self) -> None:
        positive = {
            "lr": self.lr,
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
            "epochs": self.epochs,
            "max_length": self.max_length,
            "grad_accum": self.grad_accum,
        }
        for name, value in positive.items():
            if value is None or value <= 0:
                flag = "--" + name.replace("_", "-")
                raise AdvlmError(f"{flag} must be positive, got {value}; pass a value > 0")
        if self.doc_stride is not None and self.doc_stride < 0:
            raise AdvlmError(f"--doc-stride must be >= 0, got {self.doc_stride}")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise AdvlmError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if not 0 <= self.warmup_ratio < 1:
            raise AdvlmError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def coerce(name: str, value: Any, default: Any) -> Any:
    """A setting from YAML or Python into the type of its default ("1e-5" -> 1e-05); a clear error if it
    does not fit."""
    if value is None or default is None or default is dataclasses.MISSING or isinstance(default, str):
        return value
    kind = type(default)
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if isinstance(value, bool):
            return value
    elif kind in (int, float) and not isinstance(value, bool):
        try:
            number = float(value)
            if kind is int and number != int(number):
                raise ValueError
            return kind(number)
        except (TypeError, ValueError):
            pass
    else:
        return value
    raise AdvlmError(f"setting '{name}' must be a {kind.__name__}, got {value!r}")


def config_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(TrainConfig)}


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML mapping of settings; keys may use dashes or underscores."""
    file = Path(path)
    if not file.is_file():
        raise AdvlmError(f"config file {file} does not exist")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as e:
        raise AdvlmError(f"config file {file} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise AdvlmError(f"config file {file} must hold a mapping of settings, not {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def split_settings(settings: dict[str, Any], method_fields: set[str]) -> tuple[dict, dict]:
    """(run settings, method hyper-parameters); unknown keys are an error naming them."""
    run, method = {}, dict(settings.pop("method_args", None) or {})
    known = config_fields()
    for key, value in settings.items():
        if key in known:
            run[key] = value
        elif key in method_fields:
            method[key] = value
        else:
            raise AdvlmError(f"unknown setting '{key}'; see `advlm train --help` for the settings")
    return run, method
