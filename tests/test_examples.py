"""The examples run (on a tiny model, two steps) so that they cannot rot."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    "script,method",
    [
        ("plain_loop.py", "freelb"),
        ("plain_loop.py", "freeat"),
        ("accelerate_loop.py", "smart"),
        ("hf_trainer.py", "textat"),
    ],
)
def test_example_runs(tmp_path, glue_dir, tiny_model_dir, script, method):
    args = [
        sys.executable,
        str(EXAMPLES / script),
        "--method",
        method,
        "--model",
        str(tiny_model_dir),
        "--data-dir",
        str(glue_dir),
        "--max-steps",
        "2",
    ]
    if script == "hf_trainer.py":
        args += ["--output-dir", str(tmp_path / "out"), "--max-eval", "16"]
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "loss" in proc.stdout


def _run(tmp_path, *args):
    proc = subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_token_classification_trainer_example_runs(tmp_path, tiny_model_dir):
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (data / "conll2003").is_dir():
        pytest.skip("../shared/data is not beside the repository")
    script = EXAMPLES / "token_classification_trainer.py"
    out = _run(
        tmp_path,
        script,
        "--model",
        tiny_model_dir,
        "--data-dir",
        data,
        "--max-steps",
        "2",
        "--max-train",
        "32",
        "--max-eval",
        "16",
        "--output-dir",
        tmp_path / "out",
    )
    assert "eval_f1" in out


@pytest.mark.parametrize("method", ["freelb", "smart"])
def test_causal_lm_plain_loop_example_runs(tmp_path, tiny_causal_lm_dir, method):
    out = _run(
        tmp_path,
        EXAMPLES / "causal_lm_plain_loop.py",
        "--model",
        tiny_causal_lm_dir,
        "--method",
        method,
        "--max-steps",
        "3",
    )
    assert "step 3 loss" in out and "after: perplexity" in out
