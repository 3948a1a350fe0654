"""`advlm attack`: an offline greedy word-substitution attack on a fine-tuned model."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    from advlm.cli.options import add_eval_data_flags, add_task_flags, fraction, positive_int

    p = sub.add_parser("attack", help="word-substitution attack (offline)", description=__doc__)
    add_task_flags(p, "classification task (the attack changes words of sentences and reads one class)")
    p.add_argument("--model", required=True, help="run directory or model folder")
    p.add_argument("--source", default="embedding", help="substitutes: embedding (the model's own) or glove")
    p.add_argument("--max-fraction", type=fraction, default=0.2, help="most words changed, as a fraction (0.2)")
    p.add_argument("--candidates", type=positive_int, default=20, help="neighbours tried per word (default: 20)")
    p.add_argument("--min-similarity", type=fraction, default=0.5, help="cosine similarity threshold (0.5)")
    add_eval_data_flags(p)
    p.add_argument("--save", help="write every example (original, adversarial, outcome) to this JSON lines file")
    p.add_argument("--output", help="write the summary to this JSON file")
    p.set_defaults(func=run)


SUMMARY_COLUMNS = (
    "examples",
    "clean_accuracy",
    "accuracy_under_attack",
    "attack_success_rate",
    "mean_fraction_changed",
    "queries_per_example",
)
SAVED_FIELDS = ("original", "adversarial", "label", "clean_correct", "success", "changed", "words", "substitutions")


def check_args(args: argparse.Namespace):
    """The task the flags name, refused unless it is sentence classification; the attack's settings checked."""
    from advlm.cli.options import check_output_file, task_from_args
    from advlm.errors import AdvlmError

    task = task_from_args(args)
    check_output_file(args.save, "--save")
    check_output_file(args.output, "--output")
    if task.kind != "classification":
        raise AdvlmError(
            f"advlm attack works on sentence classification; {task.name} is {task.kind}: measure its robustness "
            "with advlm robustness instead"
        )
    if args.source not in ("embedding", "glove"):
        raise AdvlmError(f"unknown substitute source '{args.source}'; use embedding or glove")
    return task


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from advlm import atomic
    from advlm.cli.options import eval_examples, format_table, write_json
    from advlm.modeling import align_padding, check_fits, load_model, load_tokenizer
    from advlm.robustness.advglue import require_task_order
    from advlm.robustness.attack import attack_example, embedding_vectors, glove_vectors, model_predictor, summarize

    task = check_args(args)
    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, task, trained=True).to("cuda" if torch.cuda.is_available() else "cpu")
    check_fits(model.config, tokenizer, args.max_length, args.model)
    align_padding(model, tokenizer)
    examples = eval_examples(task, args)
    require_task_order(model, task)
    vectors = glove_vectors() if args.source == "glove" else embedding_vectors(model, tokenizer)
    predict = model_predictor(model, tokenizer, args.max_length)
    results = [
        attack_example(ex.texts, ex.label, predict, vectors, args.max_fraction, args.candidates, args.min_similarity)
        for ex in tqdm(examples, desc="attack")
    ]
    settings = ("source", "max_fraction", "candidates", "min_similarity")
    summary = {"task": task.name, "model": args.model, **{k: getattr(args, k) for k in settings}, **summarize(results)}
    print(format_table([{k: summary[k] for k in SUMMARY_COLUMNS}]))
    if args.save:
        lines = (json.dumps({k: getattr(r, k) for k in SAVED_FIELDS}) + "\n" for r in results)
        atomic.write_text(args.save, "".join(lines))
    if args.output:
        write_json(args.output, summary)
    return 0
