"""Tiny models of every supported architecture, and random batches shaped like tokenized text."""

from __future__ import annotations

import torch
from transformers import (
    AlbertConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    RobertaConfig,
)

VOCAB = 100
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=72,
    num_labels=2,
)
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def config(arch: str, dropout: bool = False, **overrides):
    if arch == "distilbert":
        kw = dict(
            vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=72, num_labels=2
        )
        if not dropout:
            kw.update(dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0)
        return DistilBertConfig(**{**kw, **overrides})
    kw = dict(COMMON)
    if not dropout:
        kw.update(NO_DROPOUT)
    if arch == "bert":
        return BertConfig(**{**kw, **overrides})
    if arch == "roberta":
        return RobertaConfig(**{**kw, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, **overrides})
    if arch == "electra":
        return ElectraConfig(**{**kw, "embedding_size": 16, **overrides})
    if arch == "deberta-v2":
        return DebertaV2Config(
            **{
                **kw,
                "relative_attention": True,
                "pos_att_type": ["p2c", "c2p"],
                "max_relative_positions": 16,
                **overrides,
            }
        )
    if arch == "albert":
        return AlbertConfig(**{**kw, "embedding_size": 16, **overrides})
    raise ValueError(arch)


ARCHS = ("bert", "roberta", "electra", "distilbert", "deberta-v2", "albert")


def model(arch: str = "bert", dropout: bool = False, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(config(arch, dropout, **overrides))


def batch(model_or_config, lengths=(7, 4, 5), left_pad: bool = False, seed: int = 1, regression: bool = False):
    """Random ids (5..VOCAB) for examples of `lengths`, padded with the config's pad id; real labels."""
    cfg = getattr(model_or_config, "config", model_or_config)
    g = torch.Generator().manual_seed(seed)
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else 0
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad, dtype=torch.long)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for i, n in enumerate(lengths):
        span = slice(width - n, width) if left_pad else slice(0, n)
        ids[i, span] = torch.randint(5, VOCAB, (n,), generator=g)
        mask[i, span] = 1
    out = {"input_ids": ids, "attention_mask": mask}
    if regression:
        out["labels"] = torch.rand(len(lengths), generator=g) * 5
    else:
        out["labels"] = torch.randint(0, 2, (len(lengths),), generator=g)
    return out
