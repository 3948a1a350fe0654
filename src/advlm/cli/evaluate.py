"""`advlm eval`: score a fine-tuned model on a task's dev (or test) split, or on your own file, with the
task's official metrics."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from advlm.cli.options import add_eval_data_flags, add_task_flags, positive_int

    p = sub.add_parser("eval", help="evaluate a fine-tuned model", description=__doc__)
    add_task_flags(p)
    p.add_argument("--model", required=True, help="run directory or model folder")
    add_eval_data_flags(p)
    p.add_argument("--advglue", help="an AdvGLUE-format JSON file: evaluate on its records for --task (GLUE)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="evaluation batch size (default: 128)")
    p.add_argument("--output", help="also write the metrics to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from advlm.cli.options import check_output_file, eval_examples, format_table, task_from_args, write_json
    from advlm.errors import AdvlmError
    from advlm.evaluation import evaluate
    from advlm.modeling import align_padding, check_fits, load_model, load_tokenizer
    from advlm.training import subset

    task = task_from_args(args)
    check_output_file(args.output, "--output")
    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, task, trained=True)
    check_fits(model.config, tokenizer, args.max_length, args.model)
    align_padding(model, tokenizer)
    warn_other_task(args.model, task.name)
    if args.advglue:
        from advlm.robustness.advglue import load_advglue

        if task.kind not in ("classification", "regression"):
            raise AdvlmError(f"--advglue is for GLUE classification tasks; {task.name} is {task.kind}")
        examples = subset(load_advglue(args.advglue, task), args.max_eval_samples)
    else:
        examples = eval_examples(task, args)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    dataset = task.encode(tokenizer, examples, args.max_length)
    metrics = evaluate(model, dataset, tokenizer, task, args.batch_size, progress=True)
    source = f"AdvGLUE file {args.advglue}" if args.advglue else (args.eval_file or args.split)
    print(f"{task.name} {source} ({len(examples)} examples), model {args.model}")
    print(format_table([metrics]))
    if args.output:
        write_json(args.output, {"task": task.name, "model": args.model, "data": source, "eval": metrics})
    return 0


def warn_other_task(model: str, task: str) -> None:
    """A run directory fine-tuned on another task than the one it is scored on: allowed, but said."""
    import logging
    from pathlib import Path

    import yaml

    config = Path(model) / "config.yaml"
    try:
        trained_on = (yaml.safe_load(config.read_text()) or {}).get("task") if config.is_file() else None
    except yaml.YAMLError:
        return
    if trained_on and str(trained_on).lower() != task.lower():
        logging.getLogger(__name__).warning(
            "%s was fine-tuned on %s, not %s: scored as %s anyway", model, trained_on, task, task
        )
