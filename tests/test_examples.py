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
