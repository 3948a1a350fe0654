"""The packaged default model (MiniLM) end to end on a slice of real RTE, as the issue's command runs it."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_model


def test_issue_command_writes_metrics_json(tmp_path, glue_dir):
    advlm = shutil.which("advlm", path=str(Path(sys.executable).parent)) or "advlm"
    out = tmp_path / "runs/x"
    proc = subprocess.run(
        [
            advlm,
            "train",
            "--task",
            "rte",
            "--method",
            "vanilla",
            "--max-train-samples",
            "64",
            "--max-eval-samples",
            "64",
            "--epochs",
            "1",
            "--output-dir",
            str(out),
            "--no-progress",
            "--data-dir",
            str(glue_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("task", "method", "seed", "eval", "train_runtime_s", "steps"):
        assert key in metrics
    assert metrics["task"] == "rte" and metrics["method"] == "vanilla" and metrics["steps"] == 2
    assert 0.0 <= metrics["eval"]["accuracy"] <= 1.0 and metrics["eval_examples"] == 64
    assert "accuracy" in proc.stdout
