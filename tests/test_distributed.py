"""torchrun with 2 CPU processes (gloo) matches 1 process with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertForSequenceClassification

from tests.conftest import tiny_bert_config

HELPER = Path(__file__).with_name("distributed_train.py")


def _run(cmd, env):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["vanilla", "freelb"])
def test_two_process_run_matches_one_process(tmp_path, glue_dir, tokenizer, method):
    model_dir = tmp_path / "model"
    torch.manual_seed(0)
    config = tiny_bert_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertForSequenceClassification(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    _run([sys.executable, str(HELPER), str(model_dir), str(glue_dir), str(tmp_path / "one"), "8", method], env)
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(HELPER),
            str(model_dir),
            str(glue_dir),
            str(tmp_path / "two"),
            "4",
            method,
        ],
        env,
    )
    one, two = (load_file(tmp_path / d / "model.safetensors") for d in ("one", "two"))
    start = load_file(model_dir / "model.safetensors")
    moved = max((one[k] - start[k]).abs().max().item() for k in one)
    assert moved > 1e-4  # training really changed the weights
    for key in one:
        torch.testing.assert_close(one[key], two[key], atol=2e-5, rtol=1e-4)
    m1, m2 = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert m1["steps"] == m2["steps"] == 4
    assert m1["eval"] == pytest.approx(m2["eval"]) and m1["eval_loss"] == pytest.approx(m2["eval_loss"], rel=1e-4)
