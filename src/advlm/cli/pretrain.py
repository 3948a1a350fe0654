"""`advlm pretrain`: continue pre-training (MLM with BERT / whole-word / n-gram / MacBERT masking, or ELECTRA)
on a plain-text corpus; the output folder fine-tunes with `advlm train --model DIR`."""

from __future__ import annotations

import argparse
import dataclasses


def add_parser(sub) -> None:
    from advlm.pretraining.pretrain import PretrainConfig

    p = sub.add_parser("pretrain", help="continued pre-training (MLM, MacBERT, ELECTRA)", description=__doc__)
    helps = {
        "output_dir": "output folder (model, tokenizer, pretrain_metrics.json; checkpoint.pt while running)",
        "objective": "mlm or electra",
        "masking": "bert, wwm, ngram or macbert",
        "corpus": "text file with one sentence or document per line, or 'glue' (GLUE training sentences)",
        "model": "model folder to continue from (default: the packaged MiniLM)",
        "model_config": "a config.json (tokenizer files beside it): train a small model from scratch instead",
        "similar": "MacBERT's similar words: embedding, glove, wordnet or cilin (Chinese)",
        "language": "en or zh (Chinese: jieba words, characters as tokens)",
        "generator_layers": "ELECTRA generator depth (default: a third of the discriminator's)",
        "rtd_weight": "ELECTRA's weight of the replaced-token-detection loss",
        "max_lines": "use only the first N lines of the corpus",
        "data_dir": "GLUE folder for --corpus glue",
    }
    for f in dataclasses.fields(PretrainConfig):
        if f.name == "progress":
            continue
        kind = (
            type(f.default)
            if f.default not in (None, dataclasses.MISSING)
            else (int if f.name in ("generator_layers", "max_lines") else str)
        )
        default = None if f.default is dataclasses.MISSING else f.default
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=kind,
            default=default,
            required=f.default is dataclasses.MISSING,
            help=f"{helps.get(f.name, '')} (default: {default})",
        )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from advlm.pretraining.pretrain import PretrainConfig, remove_output, run_pretraining

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(PretrainConfig)}
    cfg = PretrainConfig(**values)
    cfg.validate()
    created = not Path(cfg.output_dir).exists()
    try:
        summary = run_pretraining(cfg)
    except BaseException:
        if created:
            remove_output(cfg.output_dir)
        raise
    print(
        f"{summary['steps']} steps on {summary['chunks']} chunks from {summary['lines']} lines "
        f"({summary['lines_split']} lines longer than {cfg.max_length} tokens were split); "
        f"{summary['tokens_per_s']:.0f} tokens/s"
    )
    print("first steps:", {k: round(v, 4) for k, v in summary["first_steps"].items()})
    print("last steps: ", {k: round(v, 4) for k, v in summary["last_steps"].items()})
    print(f"model: {cfg.output_dir} (fine-tune it with advlm train --model {cfg.output_dir})")
    return 0
