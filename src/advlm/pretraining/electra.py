"""ELECTRA (Clark et al., ICLR 2020): replaced token detection with a small generator.

The generator is a masked LM with fewer layers than the discriminator (a truncated copy of it by default),
sharing the discriminator's word embeddings (tied again with `tie_weights()` after sharing, as transformers
v5 needs). It predicts only the masked positions (its MLM head runs on those rows alone, to save memory),
and a replacement is sampled from its distribution with no gradient through the sample. The discriminator
(the encoder being pre-trained plus a one-unit head) labels every real token replaced (1) or original (0); a
sample equal to the original counts as original. Loss = mlm + `rtd_weight` x rtd (50 in the paper).

Departure: the paper's generator is narrower (1/4-1/3 of the hidden size) and trained jointly from scratch;
with one pre-trained checkpoint offline we truncate depth instead (narrower needs a new embedding width,
which would break the shared embeddings). After pre-training, the discriminator's encoder is saved and
fine-tunes with `AutoModelForSequenceClassification` (the generator is dropped).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoModelForMaskedLM


@dataclass
class ElectraOutput:
    loss: torch.Tensor
    mlm_loss: torch.Tensor
    rtd_loss: torch.Tensor
    rtd_accuracy: torch.Tensor  # over real tokens
    all_original_accuracy: torch.Tensor  # the baseline of always answering "original"
    replaced: torch.Tensor  # B x T, 1 where the discriminator's input differs from the original


class Electra(nn.Module):
    def __init__(self, discriminator: nn.Module, generator: nn.Module, rtd_weight: float = 50.0):
        super().__init__()
        self.discriminator, self.generator, self.rtd_weight = discriminator, generator, rtd_weight
        self.rtd_head = nn.Linear(discriminator.config.hidden_size, 1)
        # share the token embeddings; the generator's decoder stays tied to them
        generator.set_input_embeddings(discriminator.get_input_embeddings())
        generator.tie_weights()

    @classmethod
    def from_pretrained(cls, path: str, generator_layers: int | None = None, rtd_weight: float = 50.0) -> Electra:
        discriminator = AutoModel.from_pretrained(path)
        generator = AutoModelForMaskedLM.from_pretrained(path)
        layers = discriminator.config.num_hidden_layers
        keep = generator_layers or max(1, layers // 3)
        truncate_layers(generator, keep)
        return cls(discriminator, generator, rtd_weight)

    @classmethod
    def from_config(cls, config, generator_layers: int = 1, rtd_weight: float = 50.0) -> Electra:
        gen_config = copy.deepcopy(config)
        gen_config.num_hidden_layers = generator_layers
        return cls(AutoModel.from_config(config), AutoModelForMaskedLM.from_config(gen_config), rtd_weight)

    def forward(self, input_ids, attention_mask, labels, **kwargs) -> ElectraOutput:
        """`input_ids` are masked (by any masking function); `labels` hold the originals where masked."""
        extra = {k: v for k, v in kwargs.items() if k == "token_type_ids"}
        masked = labels != -100
        hidden = self.generator.base_model(input_ids=input_ids, attention_mask=attention_mask, **extra)[0]
        logits = _mlm_logits(self.generator, hidden[masked])  # only the masked rows: memory
        mlm_loss = F.cross_entropy(logits.float(), labels[masked])
        with torch.no_grad():
            sampled = torch.multinomial(F.softmax(logits.float(), -1), 1).squeeze(-1)
        originals = torch.where(masked, labels, input_ids)
        corrupted = originals.clone()
        corrupted[masked] = sampled
        replaced = (corrupted != originals).float()
        disc_hidden = self.discriminator(input_ids=corrupted, attention_mask=attention_mask, **extra)[0]
        scores = self.rtd_head(disc_hidden).squeeze(-1)
        real = attention_mask.bool()
        rtd_loss = F.binary_cross_entropy_with_logits(scores[real].float(), replaced[real])
        with torch.no_grad():
            accuracy = ((scores[real] > 0).float() == replaced[real]).float().mean()
            baseline = (replaced[real] == 0).float().mean()
        return ElectraOutput(mlm_loss + self.rtd_weight * rtd_loss, mlm_loss, rtd_loss, accuracy, baseline, replaced)

    def save_discriminator(self, path: str) -> None:
        self.discriminator.save_pretrained(path)


def _mlm_logits(mlm_model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The MLM head on selected hidden states (BERT-style `cls`, else the output embeddings)."""
    head = getattr(mlm_model, "cls", None) or getattr(mlm_model, "lm_head", None)
    if head is not None:
        return head(hidden)
    return hidden @ mlm_model.get_output_embeddings().weight.T


def truncate_layers(mlm_model: nn.Module, keep: int) -> None:
    """Keep the first `keep` transformer layers of a BERT-family masked LM (the generator)."""
    encoder = mlm_model.base_model.encoder
    encoder.layer = encoder.layer[:keep]
    mlm_model.config.num_hidden_layers = keep
