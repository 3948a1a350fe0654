"""The settings of one pre-training run (`advlm pretrain`'s flags are made from them), apart from the code that
runs it so that the command line can offer them without importing torch."""

from __future__ import annotations

from dataclasses import MISSING, dataclass

from advlm.config import check_not_both_overwrite_and_resume, check_settings, setting

OBJECTIVES = ("mlm", "electra")
MASKINGS = ("bert", "wwm", "ngram", "macbert")


@dataclass
class PretrainConfig:
    """The settings of one pre-training run; `advlm pretrain`'s flags are made from them."""

    output_dir: str = setting(
        MISSING, "output folder (model, tokenizer, pretrain_metrics.json; checkpoint.pt while running)"
    )
    overwrite: bool = setting(False, "replace the contents of a non-empty --output-dir (else it is refused)")
    resume: bool = setting(False, "continue the killed or interrupted run in --output-dir from its checkpoint.pt")
    allow_changed_data: bool = setting(
        False, "with --resume: continue even though the corpus differs from what the checkpoint was trained on"
    )
    objective: str = setting("mlm", "training objective", choices=OBJECTIVES)
    masking: str = setting("bert", "which tokens to mask and how", choices=MASKINGS)
    corpus: str = setting(
        "glue", "text file with one sentence or document per line, or 'glue' (GLUE training sentences)"
    )
    model: str | None = setting(None, "model folder to continue from (unset: the packaged MiniLM)")
    model_config: str | None = setting(
        None, "a config.json (tokenizer files beside it): train a small model from scratch instead"
    )
    similar: str = setting("embedding", "MacBERT's similar words", choices=("embedding", "glove", "wordnet", "cilin"))
    language: str = setting(
        "en", "language of the corpus (Chinese: jieba words, characters as tokens)", choices=("en", "zh")
    )
    max_length: int = setting(128, "tokens per chunk (longer lines are split)", "positive")
    batch_size: int = setting(32, "chunks per step", "positive")
    lr: float = setting(5e-5, "peak learning rate (AdamW, linear warm-up and decay)", "positive")
    steps: int = setting(1000, "optimizer steps", "positive")
    warmup_ratio: float = setting(0.06, "fraction of steps for the linear warm-up", "fraction")
    save_every: int = setting(200, "write checkpoint.pt every N steps (--resume continues from it)", "positive")
    seed: int = setting(42, "random seed", "seed")
    rtd_weight: float = setting(50.0, "ELECTRA's weight of the replaced-token-detection loss", "nonnegative")
    generator_layers: int | None = setting(
        None, "ELECTRA generator depth (unset: a third of the discriminator's)", "positive", int
    )
    max_lines: int | None = setting(None, "use only the first N lines of the corpus", "positive", int)
    data_dir: str | None = setting(None, "GLUE folder for --corpus glue")
    progress: bool = setting(True, "show a progress bar")

    def validate(self) -> None:
        check_settings(self)
        check_not_both_overwrite_and_resume(self)
