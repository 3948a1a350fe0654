"""`advlm train`: fine-tune a model on a task (GLUE, CoNLL-2003, CommonsenseQA, ARC, or your own files of any
kind) with an adversarial method."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from advlm.config import TrainConfig, config_fields, read_yaml, split_settings
from advlm.errors import AdvlmError


def _peek_method(argv: list[str]) -> str:
    """The method named on the command line or in --config, so its own flags can be offered."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--method")
    peek.add_argument("--config")
    known, _ = peek.parse_known_args(argv)
    if known.method:
        return known.method
    if known.config:
        try:
            return str(read_yaml(known.config).get("method", "vanilla"))
        except AdvlmError:
            return "vanilla"  # reported properly when the run starts
    return "vanilla"


def add_parser(sub, argv: list[str]) -> None:
    from advlm.cli.method_catalogue import method
    from advlm.cli.options import add_dataclass_flags, add_flags

    p = sub.add_parser("train", help="fine-tune a model", description=__doc__)
    add_dataclass_flags(p, [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("flag", True)])
    p.add_argument("--config", help="YAML file of settings (flags override it)")
    entry = method(_peek_method(argv))  # None for an unknown name: reported when the run starts
    if entry is not None:
        group = p.add_argument_group(f"{entry['name']} hyper-parameters", entry["summary"])
        add_flags(group, entry["hyperparameters"])
    p.set_defaults(func=run)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    from advlm.methods import method_class

    given = {k: v for k, v in vars(args).items() if k not in ("func", "config", "command")}
    settings = read_yaml(args.config) if args.config else {}
    method_name = given.get("method") or settings.get("method") or "vanilla"
    if not isinstance(method_name, str):
        raise AdvlmError(f"setting 'method' must be text (a method's name), got {method_name!r}")
    fields = {f.name for f in method_class(method_name).hyperparameters()}
    run_settings, method_args = split_settings(settings, fields)
    for key, value in given.items():
        (run_settings if key in config_fields() else method_args)[key] = value
    if "output_dir" not in run_settings:
        where = "--output-dir or output_dir in the --config file" if args.config else "--output-dir"
        raise AdvlmError(f"--output-dir is required (where the run's model and metrics.json go): pass {where}")
    cfg = TrainConfig(**run_settings)
    cfg.method_args = {**cfg.method_args, **method_args}
    return cfg


def run(args: argparse.Namespace) -> int:
    from advlm.cli.options import format_table
    from advlm.training import run_training

    cfg = resolve_config(args)
    try:
        metrics = run_training(cfg)
    except KeyboardInterrupt:
        from pathlib import Path

        from advlm.checkpoints import latest_checkpoint

        kept = latest_checkpoint(Path(cfg.output_dir)) if Path(cfg.output_dir).is_dir() else None
        if kept is not None:
            print(f"advlm: {kept} is kept: the same command with --resume continues from it", file=sys.stderr)
        raise
    print(
        f"\n{metrics['task']} dev ({metrics['eval_examples']} examples), method {metrics['method']}, "
        f"seed {metrics['seed']}, {metrics['steps']} steps in {metrics['train_runtime_s']:.0f}s"
    )
    print(format_table([{**metrics["eval"], "loss": metrics["eval_loss"]}]))
    if "robustness" in metrics:
        r = metrics["robustness"]
        print(f"robustness on {r['examples']} correctly classified dev examples (eps {r['settings']['eps']}):")
        print(format_table(r["rows"]) if r["rows"] else "no correctly classified example")
    print(f"run directory: {cfg.output_dir}")
    return 0
