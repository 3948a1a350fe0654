"""One fine-tuning run from a `TrainConfig`: load and check everything, train with `AdversarialTrainer`,
keep the best checkpoint, write the model, the resolved config and `metrics.json` to the run directory.

All input is checked before the run directory is touched; the run then holds its folder (`OutputFolder`:
a lock, no surprise overwrite, a failed run removes only what it created). Checkpoints hold everything an
exact resume needs (`--resume`; the settings must be the checkpoint's). A run whose loss or weights turn
non-finite fails (`RunFailed`) and writes no result; the result files are written under temporary names and
renamed into place, `metrics.json` last, so its presence means the run finished.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import TrainingArguments, set_seed

from advlm import atomic
from advlm.config import TrainConfig
from advlm.errors import AdvlmError, Diverged, RunFailed, one_line_reason
from advlm.methods import build_method
from advlm.modeling import align_padding, check_fits, load_model, load_tokenizer
from advlm.output_folder import FINE_TUNING, OutputFolder
from advlm.resume import data_fingerprints, resume_point
from advlm.tasks import TASKS, TaskKind, get_task
from advlm.trainer import AdversarialTrainer

logger = logging.getLogger(__name__)
SUBSET_SEED = 0  # the same --max-*-samples slice for every seed and method


def subset_dataset(dataset, n: int | None):
    """A fixed random slice of a tokenized dataset's features (scoring metadata is kept whole, so this is for
    kinds whose score does not read it, which the robustness measure's do not)."""
    from advlm.data import TokenizedDataset

    return TokenizedDataset(subset(dataset.features, n), dataset.meta)


def subset(items: list, n: int | None) -> list:
    """A fixed random slice of `n` items (all when n is None or large), in the original order."""
    if n is None or n >= len(items):
        return items
    keep = sorted(random.Random(SUBSET_SEED).sample(range(len(items)), n))
    return [items[i] for i in keep]


def training_arguments(
    cfg: TrainConfig, primary_metric: str, greater_is_better: bool = True, **overrides: Any
) -> TrainingArguments:
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    args = dict(
        output_dir=cfg.output_dir,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.lr,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        lr_scheduler_type="linear",
        optim="adamw_torch_fused",  # one kernel per step on a GPU, no per-parameter host syncs (CPU too)
        seed=cfg.seed,
        bf16=bf16,
        fp16=cuda and not bf16,
        eval_strategy="steps" if cfg.save_steps else "epoch",
        save_strategy="steps" if cfg.save_steps else "epoch",
        eval_steps=cfg.save_steps,
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        save_only_model=False,  # optimizer, scheduler and RNG states too: what an exact resume needs
        load_best_model_at_end=True,
        metric_for_best_model=f"eval_{primary_metric}",
        greater_is_better=greater_is_better,
        logging_steps=cfg.logging_steps,
        report_to="none",
        disable_tqdm=not cfg.progress,
        use_cpu=not cuda,  # multi-process CPU runs (torchrun, gloo) need this to form a process group
        ddp_backend="gloo" if not cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        dataloader_pin_memory=cuda,
        # our losses are batch means; the token-count rescaling would multiply eval loss by the world size
        average_tokens_across_devices=False,
        # its isnan/isinf test of every step's loss is a host sync per step; the methods guard non-finite losses
        logging_nan_inf_filter=False,
    )
    # non-reentrant: the methods take gradients with torch.autograd.grad, which reentrant checkpoints refuse;
    # transformers >= 5.24 names it activation checkpointing (the old name warns)
    name = (
        "activation_checkpointing"
        if _has_field(TrainingArguments, "activation_checkpointing")
        else "gradient_checkpointing"
    )
    args.update({name: cfg.gradient_checkpointing, f"{name}_kwargs": {"use_reentrant": False}})
    if cfg.compile:
        args.update(torch_compile=True)
    check_sharding_engine(cfg, cuda)
    if cfg.fsdp:
        args.update(fsdp=cfg.fsdp, fsdp_config=cfg.fsdp_config)
    if cfg.deepspeed:
        args.update(deepspeed=cfg.deepspeed)
    args.update(overrides)
    return TrainingArguments(**args)


def check_sharding_engine(cfg: TrainConfig, cuda: bool) -> None:
    """Refuse a sharding request the run could not honour: accelerate shards with FSDP only on accelerators (on
    CPU processes the Trainer would silently fall back to plain DDP), and DeepSpeed needs its package and a GPU."""
    if cfg.fsdp and not cuda:
        raise AdvlmError(
            "--fsdp needs GPUs: accelerate shards only on accelerators, and on CPU processes the Trainer would "
            "silently run plain DDP instead; drop --fsdp here (DDP is what torchrun gives), or shard with torch's "
            "fully_shard in your own loop (docs/methods.md, 'Sharded training')"
        )
    if cfg.deepspeed:
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None or not cuda:
            raise AdvlmError(
                "--deepspeed needs the deepspeed package (pip install deepspeed) and a GPU; "
                f"{'deepspeed is not installed' if cuda else 'no GPU is visible'}"
            )
        if not Path(cfg.deepspeed).is_file():
            raise AdvlmError(f"--deepspeed: no config file {cfg.deepspeed}; pass a DeepSpeed JSON config")


def _has_field(cls: type, name: str) -> bool:
    import dataclasses

    return any(f.name == name for f in dataclasses.fields(cls))


def resolve_task(cfg: TrainConfig) -> TaskKind:
    """The run's task: a built-in one, or with `--task-type` one over the user's own files (which then needs
    both `--train-file` and `--eval-file`)."""
    task = get_task(cfg.task, cfg.task_type, cfg.text_fields, cfg.label_field, cfg.doc_stride)
    own = cfg.task_type is not None and (cfg.task or "").lower() not in TASKS
    if own and (cfg.train_file is None or cfg.eval_file is None):
        raise AdvlmError(f"--task-type {cfg.task_type} trains on your own data: pass --train-file and --eval-file")
    if "train" not in task.splits and cfg.train_file is None:
        raise AdvlmError(f"task '{task.name}' has no training split; train on another task and evaluate on it")
    return task


def prepare(cfg: TrainConfig):
    """Everything that can fail on bad input, before anything is written."""
    cfg.validate()
    task = resolve_task(cfg)
    method = build_method(cfg.method, **cfg.method_args)
    train = subset(task.load("train", cfg.data_dir, cfg.train_file), cfg.max_train_samples)
    dev = subset(task.load("dev", cfg.data_dir, cfg.eval_file), cfg.max_eval_samples)
    tokenizer = load_tokenizer(cfg.model)
    set_seed(cfg.seed)  # the new head is drawn here: the same seed must give the same head
    model = load_model(cfg.model, task)
    check_fits(model.config, tokenizer, cfg.max_length, cfg.model)
    align_padding(model, tokenizer)
    if cfg.peft == "lora":
        from advlm.adapters import add_lora

        model = add_lora(model, task.kind, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets)
    method.prepare(model, tokenizer=tokenizer)
    return (
        task,
        method,
        tokenizer,
        model,
        task.encode(tokenizer, train, cfg.max_length),
        task.encode(tokenizer, dev, cfg.max_length),
    )


def measure_robustness(cfg: TrainConfig, task, model, tokenizer, dev_ds) -> dict[str, Any]:
    """FreeLB's Table 5 for the trained model alone (its own radii) on a slice of the dev set."""
    from advlm.robustness.loss_increase import compare

    result = compare(
        {"trained": model},
        subset_dataset(dev_ds, cfg.robustness_samples),
        tokenizer,
        cfg.robustness_eps,
        cfg.robustness_steps,
        batch_size=cfg.eval_batch_size,
        progress=cfg.progress,
        task=task,
    )
    return result


def run_training(cfg: TrainConfig, callbacks: tuple = (), **trainer_overrides: Any) -> dict[str, Any]:
    """Train, evaluate the best checkpoint, and return (and write) the run's metrics. `callbacks` are extra
    `TrainerCallback`s; `trainer_overrides` override `TrainingArguments`."""
    task, method, tokenizer, model, train_ds, dev_ds = prepare(cfg)
    out = Path(cfg.output_dir)
    inputs = {"--train-file": cfg.train_file, "--eval-file": cfg.eval_file, "--data-dir": cfg.data_dir}
    if cfg.model and Path(cfg.model).exists():  # a local folder, not a hub id
        inputs["--model"] = cfg.model
    with OutputFolder(out, FINE_TUNING, overwrite=cfg.overwrite, resume=cfg.resume, inputs=inputs):
        data = data_fingerprints(train_ds, dev_ds)
        resume_from = resume_point(cfg, method, data) if cfg.resume else None
        args = training_arguments(cfg, task.primary_metric, task.greater_is_better, **trainer_overrides)
        trainer = AdversarialTrainer(
            model=model,
            args=args,
            method=method,
            train_dataset=train_ds,
            eval_dataset=dev_ds,
            data_collator=task.collator(tokenizer),
            processing_class=tokenizer,
            compute_metrics=lambda p: task.score(p.predictions, p.label_ids, dev_ds),
            preprocess_logits_for_metrics=task.reduce,
            callbacks=list(callbacks),
        )
        trainer.checkpoint_info = {"settings": cfg.to_dict(), "data": data}
        start = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        metrics = run_metrics(cfg, task, trainer, result, time.perf_counter() - start, len(train_ds), len(dev_ds))
        check_finished(metrics)
        if cfg.robustness:
            metrics["robustness"] = measure_robustness(cfg, task, trainer.model, tokenizer, dev_ds)
        if trainer.is_world_process_zero():
            try:
                write_results(trainer, out, cfg, metrics)
            except Exception as e:  # a full disk, a folder made read-only: torch and safetensors raise their own kinds
                raise results_failed(out, e) from e
        return metrics


def check_finished(metrics: dict[str, Any]) -> None:
    """`RunFailed` for a run whose training or dev loss is not finite: it is never reported as a result."""
    for key in ("train_loss", "eval_loss"):
        value = metrics.get(key)
        if value is not None and not math.isfinite(value):
            raise Diverged(
                f"training diverged: the {key.replace('_', ' ')} is {value} after {metrics['steps']} steps; nothing "
                "was saved as a result. Try a lower --lr, --max-grad-norm 1, or check the data for extreme values"
            )


def write_results(trainer: AdversarialTrainer, out: Path, cfg: TrainConfig, metrics: dict[str, Any]) -> None:
    """The model (saved aside, then each file renamed into place), config.yaml, then metrics.json; the
    checkpoints go once the result is whole."""
    with atomic.saving_into(out) as staging:
        trainer.save_model(str(staging))
        if hasattr(trainer.model, "get_base_model"):  # an adapter: the base config (label names) beside it
            trainer.model.get_base_model().config.save_pretrained(staging)
    atomic.write_text(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    atomic.write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    for checkpoint in out.glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)


def results_failed(out: Path, error: BaseException) -> RunFailed:
    return RunFailed(
        f"the run trained but its results could not be written into {out} ({one_line_reason(error)}); its "
        "checkpoints are kept: free the space (or fix the folder), then continue with --resume"
    )


def run_metrics(cfg: TrainConfig, task, trainer, result, runtime: float, train_size: int, dev_size: int) -> dict:
    """metrics.json: the settings, the best checkpoint's dev metrics, the training's course."""
    final = trainer.evaluate()
    history = trainer.state.log_history
    return {
        "task": task.name,
        "task_type": task.kind,
        "method": trainer.method.name,
        "method_args": trainer.method.config(),
        "seed": cfg.seed,
        "model": cfg.model or "minilm",
        "eval": {m: final[f"eval_{m}"] for m in task.metrics},
        "eval_loss": final.get("eval_loss"),
        "train_loss": result.training_loss,
        "train_runtime_s": runtime,
        "steps": trainer.state.global_step,
        "train_examples": train_size,
        "eval_examples": dev_size,
        "best_checkpoint_metric": trainer.state.best_metric,
        "history": [h for h in history if any(k.startswith("eval_") for k in h)],
        # the logged training loss (every logging_steps): whether a model fits its training set at all
        "train_history": [h for h in history if "loss" in h],
    }
