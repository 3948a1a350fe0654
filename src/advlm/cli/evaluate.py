"""`advlm eval`: score a fine-tuned model on a task's dev split (or your own file)."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    from advlm.cli.options import add_eval_data_flags

    p = sub.add_parser("eval", help="evaluate a fine-tuned model", description=__doc__)
    p.add_argument("--task", required=True, help="GLUE task name")
    p.add_argument("--model", required=True, help="run directory or model folder")
    add_eval_data_flags(p)
    p.add_argument("--advglue", help="an AdvGLUE-format JSON file: evaluate on its records for --task")
    p.add_argument("--batch-size", type=int, default=128, help="evaluation batch size (default: 128)")
    p.add_argument("--output", help="also write the metrics to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from advlm.cli.options import format_table
    from advlm.data import get_task, load_split, tokenize_examples
    from advlm.errors import AdvlmError
    from advlm.evaluation import evaluate
    from advlm.modeling import load_model, load_tokenizer
    from advlm.training import subset

    task = get_task(args.task)
    if args.batch_size <= 0:
        raise AdvlmError(f"--batch-size must be positive, got {args.batch_size}")
    if args.advglue:
        from advlm.robustness.advglue import load_advglue

        examples = subset(load_advglue(args.advglue, task), args.max_eval_samples)
    else:
        examples = subset(load_split(task, "dev", args.data_dir, args.eval_file), args.max_eval_samples)
    if any(ex.label is None for ex in examples):
        raise AdvlmError(f"the evaluation data of {task.name} has examples without a label; every example needs one")
    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, task)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    metrics = evaluate(
        model, tokenize_examples(tokenizer, examples, args.max_length), tokenizer, task, args.batch_size, progress=True
    )
    source = f"AdvGLUE file {args.advglue}" if args.advglue else "dev"
    print(f"{task.name} {source} ({len(examples)} examples), model {args.model}")
    print(format_table([metrics]))
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"task": task.name, "model": args.model, "data": source, "eval": metrics}, f, indent=2)
    return 0
