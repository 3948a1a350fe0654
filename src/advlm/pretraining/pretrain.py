"""Continued pre-training (or from a config): MLM with BERT / whole-word / n-gram / MacBERT masking, or
ELECTRA's replaced token detection. Dynamic masking (new masks every time a chunk is drawn), AdamW with
linear warm-up and decay, a progress bar with tokens per second, checkpoints, and resume from the last one.
The output folder holds a model that `advlm train --model DIR` fine-tunes."""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForMaskedLM, get_linear_schedule_with_warmup

from advlm.errors import AdvlmError
from advlm.pretraining import masking
from advlm.pretraining.corpus import Chunk, encode, glue_corpus, read_lines

OBJECTIVES = ("mlm", "electra")
MASKINGS = ("bert", "wwm", "ngram", "macbert")
CHECKPOINT = "checkpoint.pt"


@dataclass
class PretrainConfig:
    output_dir: str
    objective: str = "mlm"
    masking: str = "bert"
    corpus: str = "glue"  # a text file, or "glue"
    model: str | None = None  # a model folder; None = the packaged MiniLM
    model_config: str | None = None  # a config.json to train a small model from scratch instead
    similar: str = "embedding"
    language: str = "en"
    max_length: int = 128
    batch_size: int = 32
    lr: float = 5e-5
    steps: int = 1000
    warmup_ratio: float = 0.06
    save_every: int = 200
    seed: int = 42
    rtd_weight: float = 50.0
    generator_layers: int | None = None
    max_lines: int | None = None
    data_dir: str | None = None
    progress: bool = True

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise AdvlmError(f"unknown objective '{self.objective}'; choose one of: {', '.join(OBJECTIVES)}")
        if self.masking not in MASKINGS:
            raise AdvlmError(f"unknown masking '{self.masking}'; choose one of: {', '.join(MASKINGS)}")
        if self.language not in ("en", "zh"):
            raise AdvlmError(f"unknown language '{self.language}'; use en or zh")
        for name in ("lr", "batch_size", "steps", "max_length", "save_every"):
            if getattr(self, name) <= 0:
                raise AdvlmError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")


class Masker:
    """Applies the configured masking to chunks and pads them into a batch."""

    def __init__(self, cfg: PretrainConfig, tokenizer, similar=None):
        self.cfg, self.tokenizer, self.similar = cfg, tokenizer, similar
        self.rng = random.Random(cfg.seed)
        self.counts: dict[str, int] = {}

    def __call__(self, chunks: list[Chunk]) -> dict[str, torch.Tensor]:
        tok, rng, vocab = self.tokenizer, self.rng, len(self.tokenizer)
        rows = []
        for c in chunks:
            if self.cfg.masking == "bert":
                rows.append(masking.bert_mask(c.ids, c.special, tok.mask_token_id, vocab, rng))
            elif self.cfg.masking == "wwm":
                rows.append(masking.whole_word_mask(c.ids, c.special, c.spans, tok.mask_token_id, vocab, rng))
            elif self.cfg.masking == "ngram":
                rows.append(masking.ngram_mask(c.ids, c.special, c.spans, tok.mask_token_id, vocab, rng))
            else:
                inputs, labels, counts = masking.macbert_mask(c.ids, c.special, c.spans, self.similar, vocab, rng)
                for k, v in counts.items():
                    self.counts[k] = self.counts.get(k, 0) + v
                rows.append((inputs, labels))
        width = max(len(r[0]) for r in rows)
        pad = tok.pad_token_id
        return {
            "input_ids": torch.tensor([r[0] + [pad] * (width - len(r[0])) for r in rows]),
            "labels": torch.tensor([r[1] + [-100] * (width - len(r[1])) for r in rows]),
            "attention_mask": torch.tensor([[1] * len(r[0]) + [0] * (width - len(r[0])) for r in rows]),
        }


def build_model(cfg: PretrainConfig):
    from advlm.modeling import resolve_model
    from advlm.pretraining.electra import Electra

    if cfg.model_config:
        config = AutoConfig.from_pretrained(cfg.model_config)
        if cfg.objective == "electra":
            return Electra.from_config(config, cfg.generator_layers or 1, cfg.rtd_weight)
        return AutoModelForMaskedLM.from_config(config)
    source, _ = resolve_model(cfg.model)
    if cfg.objective == "electra":
        return Electra.from_pretrained(source, cfg.generator_layers, cfg.rtd_weight)
    return AutoModelForMaskedLM.from_pretrained(source)


def run_pretraining(cfg: PretrainConfig) -> dict[str, Any]:
    from advlm.modeling import load_tokenizer
    from advlm.pretraining.similar import build_similar

    cfg.validate()
    tokenizer = load_tokenizer(cfg.model_config and str(Path(cfg.model_config).parent) or cfg.model)
    lines = (
        glue_corpus(cfg.data_dir)[: cfg.max_lines] if cfg.corpus == "glue" else read_lines(cfg.corpus, cfg.max_lines)
    )
    chunks, split = encode(lines, tokenizer, cfg.max_length, cfg.language)
    if not chunks:
        raise AdvlmError(f"the corpus {cfg.corpus} has no tokens")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    similar = None
    if cfg.masking == "macbert":
        embeddings_owner = model.discriminator if cfg.objective == "electra" else model
        similar = build_similar(cfg.similar, embeddings_owner, tokenizer)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * cfg.steps), cfg.steps)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start_step, history = 0, []
    if (out / CHECKPOINT).is_file():  # resume
        state = torch.load(out / CHECKPOINT, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_step, history = state["step"], state["history"]
    masker = Masker(cfg, tokenizer, similar)
    order = random.Random(cfg.seed + start_step)
    tokens, t0 = 0, time.perf_counter()
    bar = tqdm(range(start_step, cfg.steps), desc=f"pretrain {cfg.objective}/{cfg.masking}", disable=not cfg.progress)
    for step in bar:
        batch = {k: v.to(device) for k, v in masker([order.choice(chunks) for _ in range(cfg.batch_size)]).items()}
        record = _step(model, batch, cfg.objective)
        record["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
        history.append({k: float(v.detach()) for k, v in record.items()} | {"step": step + 1})
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", tok_s=f"{tokens / (time.perf_counter() - t0):.0f}")
        if (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "step": step + 1,
                    "history": history,
                },
                out / CHECKPOINT,
            )
    elapsed = time.perf_counter() - t0
    (model.discriminator if cfg.objective == "electra" else model).save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / CHECKPOINT).unlink(missing_ok=True)
    first, last = history[: max(1, len(history) // 10)], history[-max(1, len(history) // 10) :]
    summary = {
        "config": asdict(cfg),
        "lines": len(lines),
        "chunks": len(chunks),
        "lines_split": split,
        "steps": cfg.steps,
        "tokens_per_s": tokens / elapsed if elapsed else 0.0,
        "first_steps": _mean(first),
        "last_steps": _mean(last),
        "macbert_counts": masker.counts,
    }
    (out / "pretrain_metrics.json").write_text(json.dumps(summary, indent=2))
    return summary


def _step(model, batch, objective: str) -> dict[str, torch.Tensor]:
    if objective == "electra":
        o = model(**batch)
        return {
            "loss": o.loss,
            "mlm_loss": o.mlm_loss.detach(),
            "rtd_loss": o.rtd_loss.detach(),
            "rtd_accuracy": o.rtd_accuracy,
            "all_original_accuracy": o.all_original_accuracy,
        }
    return {"loss": model(**batch).loss}


def _mean(rows: list[dict]) -> dict[str, float]:
    keys = [k for k in rows[0] if k != "step"]
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys}


def remove_output(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
