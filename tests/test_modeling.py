"""Model loading: fp32 whatever the checkpoint's dtype, and the default model's override."""

import pytest
import torch
from transformers import BertForSequenceClassification

from advlm import AdvlmError
from advlm.modeling import load_model, load_tokenizer
from advlm.tasks import get_task
from tests.conftest import tiny_bert_config


def test_half_precision_checkpoint_loads_in_fp32(tmp_path):
    BertForSequenceClassification(tiny_bert_config()).half().save_pretrained(tmp_path)
    model = load_model(str(tmp_path), get_task("rte"))
    assert model.dtype == torch.float32  # AdamW on fp16 weights would lose updates below their precision
    assert load_model(str(tmp_path), get_task("rte"), dtype=torch.bfloat16).dtype == torch.bfloat16


def test_advlm_model_overrides_the_default(monkeypatch, tiny_model_dir, tmp_path):
    monkeypatch.setenv("ADVLM_MODEL", str(tiny_model_dir))
    model = load_model(None, get_task("rte"))
    assert model.config.hidden_size == tiny_bert_config().hidden_size
    assert load_tokenizer(None).vocab_size > 0
    monkeypatch.setenv("ADVLM_MODEL", str(tmp_path))
    with pytest.raises(AdvlmError, match=r"ADVLM_MODEL=.* is not a model folder with a config.json"):
        load_model(None, get_task("rte"))
