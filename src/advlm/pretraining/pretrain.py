"""Continued pre-training (or from a config): MLM with BERT / whole-word / n-gram / MacBERT masking, or
ELECTRA's replaced token detection. Dynamic masking (new masks every time a chunk is drawn), AdamW with
linear warm-up and decay, a progress bar with tokens per second, checkpoints, and an exact resume from the last
one (`resume`: weights, optimizer, schedule, the masking's and the chunk order's random states and torch's,
the history; refused for other settings). The checkpoint is replaced atomically, so a kill never tears it;
the output folder is held as fine-tuning's is (`OutputFolder`). The output folder holds a model that
`advlm train --model DIR` fine-tunes."""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForMaskedLM, get_linear_schedule_with_warmup

from advlm import atomic
from advlm.config import check_same_settings
from advlm.errors import AdvlmError, Diverged
from advlm.output_folder import PRE_TRAINING, OutputFolder
from advlm.pretraining import masking
from advlm.pretraining.corpus import Chunk, encode, glue_corpus, read_lines
from advlm.pretraining.settings import PretrainConfig

CHECKPOINT = "checkpoint.pt"
# settings a resumed run may change: they do not change what is trained
RESUMABLE_CHANGES = {"output_dir", "progress", "resume", "overwrite", "save_every", "data_dir", "allow_changed_data"}


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


def model_config(cfg: PretrainConfig):
    from advlm.modeling import resolve_model

    try:
        return AutoConfig.from_pretrained(cfg.model_config or resolve_model(cfg.model)[0])
    except (OSError, ValueError) as e:
        raise AdvlmError(f"could not read the model's config ({cfg.model_config or cfg.model}): {e}") from None


def build_model(cfg: PretrainConfig):
    """The model to pre-train: from `model_config` (random weights), else the `model` folder's weights; an
    encoder with a masked-LM head (ELECTRA's generator and discriminator come from it too)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    from advlm.modeling import check_weights_file, load_error, resolve_model
    from advlm.pretraining.electra import Electra

    config = model_config(cfg)
    if config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise AdvlmError(
            f"{cfg.model_config or cfg.model or 'the model'} is a {config.model_type} model, which has no masked-LM "
            "head: pre-training (MLM, MacBERT, ELECTRA) needs an encoder such as BERT, RoBERTa or ELECTRA"
        )
    if cfg.model_config:
        if cfg.objective == "electra":
            return Electra.from_config(config, cfg.generator_layers or 1, cfg.rtd_weight)
        return AutoModelForMaskedLM.from_config(config)
    source, local = resolve_model(cfg.model)
    if local:
        check_weights_file(source, cfg.model)
    try:
        if cfg.objective == "electra":
            return Electra.from_pretrained(source, cfg.generator_layers, cfg.rtd_weight)
        return AutoModelForMaskedLM.from_pretrained(source)
    except Exception as e:  # noqa: BLE001 - a torn or foreign weights file fails in many ways; one line for all
        raise load_error(cfg.model, local, e) from None


def run_pretraining(cfg: PretrainConfig) -> dict[str, Any]:
    from advlm.modeling import check_fits, load_tokenizer
    from advlm.pretraining.similar import build_similar

    cfg.validate()
    tokenizer = load_tokenizer(cfg.model_config and str(Path(cfg.model_config).parent) or cfg.model)
    lines = (
        glue_corpus(cfg.data_dir)[: cfg.max_lines] if cfg.corpus == "glue" else read_lines(cfg.corpus, cfg.max_lines)
    )
    check_fits(model_config(cfg), tokenizer, cfg.max_length, cfg.model_config or cfg.model)
    chunks, split = encode(lines, tokenizer, cfg.max_length, cfg.language)
    if not chunks:
        raise AdvlmError(f"the corpus {cfg.corpus} has no tokens")
    out = Path(cfg.output_dir)
    inputs = {"--corpus": None if cfg.corpus == "glue" else cfg.corpus, "--model-config": cfg.model_config}
    inputs["--data-dir"] = cfg.data_dir
    if cfg.model and Path(cfg.model).exists():  # a local folder, not a hub id
        inputs["--model"] = cfg.model
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)  # before the folder is taken: a model that cannot load leaves nothing behind
    with OutputFolder(out, PRE_TRAINING, overwrite=cfg.overwrite, resume=cfg.resume, inputs=inputs):
        data = corpus_fingerprint(chunks)
        state = load_checkpoint(cfg, data) if cfg.resume else None
        similar = None
        if cfg.masking == "macbert":
            embeddings_owner = model.discriminator if cfg.objective == "electra" else model
            similar = build_similar(cfg.similar, embeddings_owner, tokenizer)
        masker = Masker(cfg, tokenizer, similar)
        history, tokens_per_s = train_steps(cfg, model, masker, chunks, out, state, data)
        summary = {
            "config": asdict(cfg),
            "lines": len(lines),
            "chunks": len(chunks),
            "lines_split": split,
            "steps": cfg.steps,
            "tokens_per_s": tokens_per_s,
            "first_steps": _mean(history[: max(1, len(history) // 10)]),
            "last_steps": _mean(history[-max(1, len(history) // 10) :]),
            "macbert_counts": masker.counts,
        }
        write_results(model, tokenizer, cfg, out, summary)
        return summary


def corpus_fingerprint(chunks: list[Chunk]) -> str:
    """SHA-256 of the chunks' token ids: what the run trains on, whatever file or folder they came from."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(repr(chunk.ids).encode())
    return digest.hexdigest()


def load_checkpoint(cfg: PretrainConfig, data: str) -> dict[str, Any]:
    """The checkpoint `--resume` continues from, made with the same settings (else an error naming them) on the
    same corpus (`data`: its fingerprint; `allow_changed_data` lets it go on with another)."""
    path = Path(cfg.output_dir) / CHECKPOINT
    if not path.is_file():
        finished = " (it holds a finished run)" if (path.parent / "pretrain_metrics.json").is_file() else ""
        raise AdvlmError(f"--resume: {path.parent} has no {CHECKPOINT} to resume from{finished}; drop --resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same problem for the user
        raise AdvlmError(
            f"--resume: {path} cannot be read ({type(e).__name__}); start afresh with --overwrite"
        ) from None
    if "settings" not in state or "random" not in state:
        raise AdvlmError(
            f"--resume: {path} was made by an older advlm and cannot be resumed exactly; start afresh with --overwrite"
        )
    check_same_settings(state["settings"], asdict(cfg), RESUMABLE_CHANGES, path)
    if state.get("data", data) != data and not cfg.allow_changed_data:
        raise AdvlmError(
            f"--resume: the corpus differs from what {path} was trained on (a changed file or --data-dir); resume "
            "on the same corpus, or pass --allow-changed-data to continue on this one"
        )
    return state


def write_results(model, tokenizer, cfg: PretrainConfig, out: Path, summary: dict[str, Any]) -> None:
    """The model and tokenizer (saved aside, then renamed into place), then pretrain_metrics.json; the
    checkpoint goes once the result is whole."""
    with atomic.saving_into(out) as staging:
        (model.discriminator if cfg.objective == "electra" else model).save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    atomic.write_text(out / "pretrain_metrics.json", json.dumps(summary, indent=2))
    (out / CHECKPOINT).unlink(missing_ok=True)


def train_steps(
    cfg: PretrainConfig,
    model,
    masker: Masker,
    chunks: list,
    out: Path,
    state: dict[str, Any] | None = None,
    data: str = "",
) -> tuple[list[dict], float]:
    """The training loop, from `state` (a checkpoint) when given, checkpointed every `save_every` steps:
    (every step's losses, tokens per second)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * cfg.steps), cfg.steps)
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    order = random.Random(cfg.seed)
    randoms = {"order": order, "masking": masker.rng}
    start_step, history = 0, []
    if state is not None:
        for name, part in parts.items():
            part.load_state_dict(state[name])
        restore_random_states(state["random"], randoms)
        start_step, history, masker.counts = state["step"], state["history"], state["macbert_counts"]
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
        if not math.isfinite(history[-1]["loss"]):
            raise Diverged(
                f"pre-training diverged at step {step + 1}: the loss is {history[-1]['loss']}; nothing was saved "
                f"as a result. Try a lower --lr (now {cfg.lr:g})"
            )
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", tok_s=f"{tokens / (time.perf_counter() - t0):.0f}")
        if (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            saved = {name: part.state_dict() for name, part in parts.items()}
            extra = {"step": step + 1, "history": history, "macbert_counts": dict(masker.counts)}
            saved |= extra | {"random": random_states(randoms), "settings": asdict(cfg), "data": data}
            atomic.torch_save(saved, out / CHECKPOINT)
    elapsed = time.perf_counter() - t0
    return history, tokens / elapsed if elapsed else 0.0


def random_states(randoms: dict[str, random.Random]) -> dict[str, Any]:
    """Every random state the loop draws from: Python's generators for the chunk order and the masking (as
    lists, which a weights-only load reads), torch's (dropout, ELECTRA's sampling) and CUDA's."""
    states = {name: _listed(rng.getstate()) for name, rng in randoms.items()}
    states["torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any], randoms: dict[str, random.Random]) -> None:
    for name, rng in randoms.items():
        rng.setstate(_tupled(states[name]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _listed(value):
    return [_listed(v) for v in value] if isinstance(value, tuple) else value


def _tupled(value):
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


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
