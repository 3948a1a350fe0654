"""`advlm train`: fine-tune a model on a task (GLUE, CoNLL-2003, CommonsenseQA, ARC, or your own files of any
kind) with an adversarial method."""

from __future__ import annotations

import argparse

from advlm.config import TrainConfig, config_fields, read_yaml, split_settings
from advlm.errors import AdvlmError

RUN_FLAGS = {
    "task": (
        str,
        "built-in task: cola sst2 mrpc stsb qqp mnli mnli-mm qnli rte wnli (GLUE), conll2003, commonsenseqa, "
        "arc-easy, arc-challenge; with --task-type, a name for your own task",
    ),
    "task_type": (
        str,
        "kind of your own data (with --train-file/--eval-file): classification, regression, token-classification, "
        "multiple-choice, question-answering, causal-lm",
    ),
    "text_fields": (str, "classification/regression of your own data: the text field(s), 'a' or 'a,b' (unset: text)"),
    "label_field": (str, "classification/regression of your own data: the label field (unset: label)"),
    "doc_stride": (int, "question answering: tokens shared by consecutive windows of a long context (unset: 32)"),
    "method": (str, "training method (see `advlm list`)"),
    "model": (str, "local Hugging Face model folder or hub id (default: the packaged MiniLM)"),
    "output_dir": (str, "run directory: model, config.yaml, metrics.json"),
    "data_dir": (
        str,
        "folder of the tasks' data (glue/, conll2003/, ...; default: $ADVLM_DATA_DIR, else ../shared/data)",
    ),
    "train_file": (str, "your own training file instead of the task's (.jsonl/.csv/.tsv; CoNLL; SQuAD .json)"),
    "eval_file": (str, "your own evaluation file instead of the task's dev split"),
    "epochs": (float, "training epochs"),
    "lr": (float, "peak learning rate (AdamW, linear warm-up and decay)"),
    "batch_size": (int, "training batch size per process"),
    "eval_batch_size": (int, "evaluation batch size"),
    "max_length": (int, "maximum tokens per example (longer ones are truncated)"),
    "max_train_samples": (int, "use a fixed random slice of this many training examples"),
    "max_eval_samples": (int, "use a fixed random slice of this many evaluation examples"),
    "seed": (int, "random seed"),
    "warmup_ratio": (float, "fraction of steps for the linear warm-up"),
    "weight_decay": (float, "AdamW weight decay"),
    "max_grad_norm": (float, "gradient clipping norm"),
    "grad_accum": (int, "gradient accumulation steps"),
    "logging_steps": (int, "log every N optimizer steps"),
    "robustness_eps": (float, "with --robustness: radius of the l2 ball for M-Inc"),
    "robustness_steps": (int, "with --robustness: ascent steps (the cap)"),
    "robustness_samples": (int, "with --robustness: dev examples measured (a fixed random slice)"),
}


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
    from advlm.cli.options import add_dataclass_flags
    from advlm.methods import method_class

    p = sub.add_parser("train", help="fine-tune a model", description=__doc__)
    defaults = TrainConfig()
    for name, (kind, help_text) in RUN_FLAGS.items():
        default = getattr(defaults, name)
        p.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=kind,
            default=argparse.SUPPRESS,
            help=help_text if default is None else f"{help_text} (default: {default})",
        )
    p.add_argument(
        "--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS, help="no progress bar"
    )
    p.add_argument(
        "--robustness",
        dest="robustness",
        action="store_true",
        default=argparse.SUPPRESS,
        help="after training, measure FreeLB's Table-5 loss increase on the dev set into metrics.json",
    )
    p.add_argument("--config", help="YAML file of settings (flags override it)")
    name = _peek_method(argv)
    try:
        cls = method_class(name)
    except AdvlmError:
        cls = None  # the unknown name is reported when the run starts
    if cls is not None:
        group = p.add_argument_group(f"{cls.name} hyper-parameters", (cls.__doc__ or "").strip().splitlines()[0])
        add_dataclass_flags(group, cls.hyperparameters())
    p.set_defaults(func=run)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    from advlm.methods import method_class

    given = {k: v for k, v in vars(args).items() if k not in ("func", "config", "command")}
    settings = read_yaml(args.config) if args.config else {}
    method_name = given.get("method") or settings.get("method") or "vanilla"
    fields = {f.name for f in method_class(method_name).hyperparameters()}
    run_settings, method_args = split_settings(settings, fields)
    for key, value in given.items():
        (run_settings if key in config_fields() else method_args)[key] = value
    cfg = TrainConfig(**run_settings)
    cfg.method_args = {**cfg.method_args, **method_args}
    if not args.config and "output_dir" not in given:
        raise AdvlmError("--output-dir is required (where the run's model and metrics.json go)")
    return cfg


def run(args: argparse.Namespace) -> int:
    from advlm.cli.options import format_table
    from advlm.training import run_training

    cfg = resolve_config(args)
    metrics = run_training(cfg)
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
