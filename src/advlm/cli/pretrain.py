"""`advlm pretrain`: continue pre-training (MLM with BERT / whole-word / n-gram / MacBERT masking, or ELECTRA)
on a plain-text corpus; the output folder fine-tunes with `advlm train --model DIR`."""

from __future__ import annotations

import argparse
import dataclasses
import sys


def add_parser(sub) -> None:
    from advlm.cli.options import add_dataclass_flags
    from advlm.pretraining.settings import PretrainConfig

    p = sub.add_parser("pretrain", help="continued pre-training (MLM, MacBERT, ELECTRA)", description=__doc__)
    add_dataclass_flags(p, dataclasses.fields(PretrainConfig))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from advlm.pretraining.pretrain import PretrainConfig, run_pretraining

    names = {f.name for f in dataclasses.fields(PretrainConfig)}
    cfg = PretrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    cfg.validate()
    try:
        summary = run_pretraining(cfg)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: say how to continue from the checkpoint kept
        from pathlib import Path

        from advlm.pretraining.pretrain import CHECKPOINT

        if (Path(cfg.output_dir) / CHECKPOINT).is_file():
            print(
                f"advlm: {Path(cfg.output_dir) / CHECKPOINT} is kept: the same command with --resume continues from it",
                file=sys.stderr,
            )
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
