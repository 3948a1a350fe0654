"""Causal language-model fine-tuning: instruction-style `{"prompt", "response"}` records (loss on the response
only) or plain `{"text"}` records (loss on every token), in JSON lines.

Tokenization: the prompt as the tokenizer encodes one text (with the special tokens it adds, such as a
beginning-of-text token), then the response without special tokens and an end-of-text token (the tokenizer's
eos, else its sep); labels are -100 on the prompt and the padding, so the model's own shifted loss is the
mean negative log-likelihood of the response tokens. Sequences are cut to `--max-length`; a record whose
response lies wholly beyond it is dropped with a warning. Batches are padded on the right (the pad token,
else eos). Model: any `AutoModelForCausalLM` that takes `inputs_embeds` (an encoder such as BERT is refused).
Metric: perplexity, exp of the mean negative log-likelihood per response token over the whole file.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from advlm.data.collate import TokenizedDataset, make_collator
from advlm.data.loading import read_jsonl
from advlm.errors import AdvlmError
from advlm.tasks.base import TaskKind, as_numpy, first

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LMRecord:
    prompt: str | None  # None: a plain text, trained on every token
    response: str


@dataclass
class CausalLMTask(TaskKind):
    kind = "causal-lm"
    auto_class = "AutoModelForCausalLM"
    metrics = ("perplexity", "nll")
    greater_is_better = False

    def read(self, file: Path) -> list[LMRecord]:
        records = []
        for line, row in read_jsonl(file):
            where = f"{file}:{line}"
            if "prompt" in row or "response" in row:
                prompt, response = row.get("prompt"), row.get("response")
                if not isinstance(response, str) or not response.strip():
                    raise AdvlmError(f'{where}: a record with a prompt needs a non-empty "response" string')
                if not isinstance(prompt, str):
                    raise AdvlmError(f'{where}: "prompt" must be a string (or write {{"text": ...}} instead)')
                records.append(LMRecord(prompt, response))
            elif isinstance(row.get("text"), str) and row["text"].strip():
                records.append(LMRecord(None, row["text"]))
            else:
                raise AdvlmError(f'{where}: expected {{"prompt": ..., "response": ...}} or {{"text": ...}}')
        return records

    def check_config(self, config) -> None:
        from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

        if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
            raise AdvlmError(
                f"causal-lm needs a causal language model (GPT-2, Llama, Qwen, ...); the model is a "
                f"{config.model_type} encoder: pass --model with a causal LM's folder"
            )

    def encode(self, tokenizer, records, max_length: int) -> TokenizedDataset:
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        features, dropped = [], 0
        for record in records:
            if record.prompt is None:
                ids = tokenizer(record.response)["input_ids"]
                ids = ids + [eos] if eos is not None and (not ids or ids[-1] != eos) else ids
                labels = list(ids)
            else:
                prompt = tokenizer(record.prompt)["input_ids"]
                response = tokenizer(record.response, add_special_tokens=False)["input_ids"]
                response = response + [eos] if eos is not None else response
                ids, labels = prompt + response, [-100] * len(prompt) + response
            ids, labels = ids[:max_length], labels[:max_length]
            if all(label == -100 for label in labels[1:]):
                dropped += 1
                continue
            features.append(
                {
                    "input_ids": torch.tensor(ids, dtype=torch.long),
                    "attention_mask": torch.ones(len(ids), dtype=torch.long),
                    "labels": torch.tensor(labels, dtype=torch.long),
                }
            )
        if not features:
            raise AdvlmError(f"no record has a response within --max-length {max_length} tokens; raise it")
        if dropped:
            logger.warning(
                "%d of %d records dropped: their response lies beyond --max-length %d",
                dropped,
                len(records),
                max_length,
            )
        return TokenizedDataset(features)

    def collator(self, tokenizer):
        return make_collator(tokenizer, padding_side="right")

    def reduce(self, logits, labels):
        """Per example: the summed negative log-likelihood of its labelled tokens, and their count."""
        logits, labels = first(logits)[..., :-1, :].float(), first(labels)[..., 1:]
        nll = F.cross_entropy(logits.transpose(1, -1), labels, ignore_index=-100, reduction="none")
        counted = labels != -100
        return torch.stack([(nll * counted).sum(-1), counted.sum(-1).float()], dim=-1)

    def score(self, predictions, label_ids, dataset=None) -> dict[str, float]:
        totals = as_numpy(predictions).reshape(-1, 2).astype(np.float64).sum(0)
        nll = totals[0] / max(totals[1], 1.0)
        return {"perplexity": math.exp(min(nll, 700.0)), "nll": float(nll)}
