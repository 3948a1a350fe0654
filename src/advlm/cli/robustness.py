"""`advlm robustness`: FreeLB's Table 5 (M-Inc, M-Inc (R), N-Loss) for one or more fine-tuned models."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from advlm.cli.options import add_eval_data_flags, add_task_flags, nonnegative_float, positive_float, positive_int

    p = sub.add_parser("robustness", help="maximum loss increase in an eps ball (FreeLB Table 5)", description=__doc__)
    add_task_flags(p, "task of every model (any kind)")
    p.add_argument("--models", nargs="+", required=True, help="run directories; the first is the reference")
    p.add_argument("--eps", type=nonnegative_float, default=0.1, help="radius of the l2 ball for M-Inc (default: 0.1)")
    p.add_argument("--steps", type=positive_int, default=20, help="ascent steps per radius, the cap (default: 20)")
    p.add_argument("--norm", default="l2", help="l2 or linf (default: l2)")
    p.add_argument("--r-max", type=positive_float, default=1.0, help="upper end of the radius bisection (default: 1.0)")
    p.add_argument("--bisection", type=positive_int, default=6, help="bisection iterations for the radii (default: 6)")
    add_eval_data_flags(p)
    p.add_argument("--batch-size", type=positive_int, default=32, help="evaluation batch size (default: 32)")
    p.add_argument("--output", help="write the table and settings to this JSON file")
    p.set_defaults(func=run)


def check_settings(args) -> None:
    """What the flags' types cannot say (the numbers' ranges are checked as they are parsed)."""
    from advlm.cli.options import check_output_file
    from advlm.errors import AdvlmError

    if args.norm not in ("l2", "linf"):
        raise AdvlmError(f"unknown norm '{args.norm}'; use l2 or linf")
    check_output_file(args.output, "--output")


def run(args: argparse.Namespace) -> int:
    import torch

    from advlm.cli.options import eval_examples, format_table, task_from_args, write_json
    from advlm.modeling import align_padding, check_fits, load_model, load_tokenizer
    from advlm.robustness.advglue import require_task_order
    from advlm.robustness.loss_increase import compare

    check_settings(args)
    task = task_from_args(args)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = load_tokenizer(args.models[0])
    models = {}
    for i, path in enumerate(args.models):  # the same folder twice stays two rows
        model = load_model(path, task, trained=True).to(device)
        check_fits(model.config, tokenizer, args.max_length, path)
        align_padding(model, tokenizer)
        models[path if path not in models else f"{path} ({i + 1})"] = model
    if task.kind == "classification":
        for model in models.values():
            require_task_order(model, task)
    examples = eval_examples(task, args)
    dataset = task.encode(tokenizer, examples, args.max_length)
    result = compare(
        models,
        dataset,
        tokenizer,
        args.eps,
        args.steps,
        args.norm,
        args.r_max,
        args.bisection,
        args.batch_size,
        progress=True,
        task=task,
    )
    result["task"] = task.name
    print(
        f"{task.name}: {result['examples']} of {len(dataset)} examples predicted correctly by every model; "
        f"eps {args.eps} ({args.norm}), at most {args.steps} ascent steps, {radii(result, args.models[0])}"
    )
    print(format_table(result["rows"]) if result["rows"] else "no example is predicted correctly by every model")
    if args.output:
        write_json(args.output, result)
    return 0


def radii(result: dict, reference: str) -> str:
    """Where the M-Inc (R) radii came from, for the table's caption."""
    if "median_radius" in result["settings"]:
        return f"radii from {reference} (median {result['settings']['median_radius']:.3f})"
    if "radii" in result["settings"]:
        return "no radii (a causal LM or regression has no notion of a correct prediction)"
    return "no radii"
