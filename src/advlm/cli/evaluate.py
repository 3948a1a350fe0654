"""`advlm eval`: score a fine-tuned model on a task's dev (or test) split, or on your own file, with the
task's official metrics."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    from advlm.cli.options import add_eval_data_flags, add_task_flags

    p = sub.add_parser("eval", help="evaluate a fine-tuned model", description=__doc__)
    add_task_flags(p)
    p.add_argument("--model", required=True, help="run directory or model folder")
    add_eval_data_flags(p)
    p.add_argument("--advglue", help="an AdvGLUE-format JSON file: evaluate on its records for --task (GLUE)")
    p.add_argument("--batch-size", type=int, default=128, help="evaluation batch size (default: 128)")
    p.add_argument("--output", help="also write the metrics to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from advlm.cli.options import eval_examples, format_table, task_from_args
    from advlm.errors import AdvlmError
    from advlm.evaluation import evaluate
    from advlm.modeling import load_model, load_tokenizer
    from advlm.training import subset

    task = task_from_args(args)
    if args.batch_size <= 0:
        raise AdvlmError(f"--batch-size must be positive, got {args.batch_size}")
    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, task, trained=True)
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
        with open(args.output, "w") as f:
            json.dump({"task": task.name, "model": args.model, "data": source, "eval": metrics}, f, indent=2)
    return 0
