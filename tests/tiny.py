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

from advlm.tasks import KINDS

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


# --- one tiny model and batch per head kind ---------------------------------------------------------------
HEAD_KINDS = KINDS  # every kind advlm has a head for


def applies(name: str, kind: str) -> bool:
    """Whether method `name` trains head `kind`: R4F refuses a causal LM, which has no classification head
    (tests/test_r4f.py checks the refusal)."""
    return not (name == "r4f" and kind == "causal-lm")


def method_kinds(names, kinds=KINDS) -> list[tuple[str, str]]:
    """(method, kind) for every pair where the method applies."""
    return [(name, kind) for name in names for kind in kinds if applies(name, kind)]


def normalise_like(name: str, model):
    """`model` as method `name` reparametrises it before its first step (R4F's spectrally normalised output
    layer), so that vanilla on it is that method's zero-budget reference; `model` unchanged otherwise."""
    if name == "r4f":
        from advlm import spectral_head

        spectral_head.normalise(spectral_head.output_layer(model)[1])
    return model


NUM_TAGS = 5


def gpt2_config(dropout: bool = False, **overrides):
    from transformers import GPT2Config

    p = 0.1 if dropout else 0.0
    kw = dict(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=72, bos_token_id=0, eos_token_id=0)
    kw.update(resid_pdrop=p, embd_pdrop=p, attn_pdrop=p)
    return GPT2Config(**{**kw, **overrides})


def llama_config(**overrides):
    from transformers import LlamaConfig

    kw = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=72,
        bos_token_id=0,
        eos_token_id=0,
    )
    return LlamaConfig(**{**kw, **overrides})


def head_model(kind: str, arch: str = "bert", dropout: bool = False, seed: int = 0):
    """A tiny model with the head of `kind` (causal LM: GPT-2, or Llama with arch="llama")."""
    import transformers

    from advlm.tasks.multiple_choice import mask_missing_choices

    torch.manual_seed(seed)
    if kind == "causal-lm":
        cfg = llama_config() if arch == "llama" else gpt2_config(dropout)
        return transformers.AutoModelForCausalLM.from_config(cfg)
    if kind in ("classification", "regression"):
        extra = dict(num_labels=1, problem_type="regression") if kind == "regression" else {}
        return AutoModelForSequenceClassification.from_config(config(arch, dropout, **extra))
    auto = {
        "token-classification": transformers.AutoModelForTokenClassification,
        "multiple-choice": transformers.AutoModelForMultipleChoice,
        "question-answering": transformers.AutoModelForQuestionAnswering,
    }[kind]
    extra = dict(num_labels=NUM_TAGS) if kind == "token-classification" else {}
    model = auto.from_config(config(arch, dropout, **extra))
    return mask_missing_choices(model) if kind == "multiple-choice" else model


def head_batch(model, kind: str, seed: int = 1) -> dict:
    """A random batch for `kind`: padding, and positions that do not count (-100 labels, a prompt, a
    missing choice, the question of a QA pair)."""
    g = torch.Generator().manual_seed(seed)
    if kind in ("classification", "regression"):
        return batch(model, seed=seed, regression=kind == "regression")
    if kind == "multiple-choice":
        rows = [batch(model, lengths=(6, 4, 5), seed=seed + c) for c in range(3)]
        ids = torch.stack([r["input_ids"] for r in rows], 1)  # B x C x T, B == C == 3
        mask = torch.stack([r["attention_mask"] for r in rows], 1)
        ids[0, 2], mask[0, 2] = 0, 0  # the first question has only two choices
        return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([1, 0, 2])}
    out = batch(model, lengths=(7, 4, 6), seed=seed)
    out.pop("labels")
    real = out["attention_mask"].bool()
    if kind == "token-classification":
        labels = torch.randint(0, NUM_TAGS, out["input_ids"].shape, generator=g)
        labels[~real] = -100
        labels[:, 0] = -100  # a special token
        labels[0, 3] = -100  # a later sub-word
        out["labels"] = labels
    elif kind == "question-answering":
        types = torch.zeros_like(out["input_ids"])
        types[:, 2:] = 1  # question: the first two tokens; context: the rest
        out["token_type_ids"] = types * out["attention_mask"]
        out["start_positions"] = torch.tensor([2, 2, 3])
        out["end_positions"] = torch.tensor([4, 3, 5])
    else:  # causal LM: a prompt of two tokens, then the response
        labels = out["input_ids"].clone()
        labels[~real] = -100
        labels[:, :2] = -100
        out["labels"] = labels
    return out


def uncounted(batch: dict, kind: str) -> torch.Tensor:
    """Where a consistency term must not look: a mask of the logits' shape without the class dimension."""
    if kind == "multiple-choice":
        return ~batch["attention_mask"].bool().any(-1)
    if kind == "question-answering":
        return batch["token_type_ids"] == 0
    if kind == "causal-lm":  # position t predicts label t + 1; the last position predicts nothing
        shifted = torch.nn.functional.pad(batch["labels"][:, 1:], (0, 1), value=-100)
        return shifted == -100
    return batch["labels"] == -100
