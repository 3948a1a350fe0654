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


@pytest.fixture(scope="module")
def rte_slice(glue_dir):
    from advlm.modeling import load_tokenizer
    from advlm.tasks import get_task

    tokenizer = load_tokenizer(None)
    task = get_task("rte")
    data = task.encode(tokenizer, task.load("train", glue_dir)[:48], max_length=64)
    collate = task.collator(tokenizer)
    batches = [collate(data.features[i : i + 8]) for i in range(0, 48, 8)]
    return tokenizer, batches


def _clean_loss(model, batches):
    import torch

    model.eval()
    with torch.no_grad():
        loss = sum(float(model(**b).loss) for b in batches) / len(batches)
    model.train()
    return loss


@pytest.mark.parametrize("name", ["vanilla", "fgm", "pgd", "freeat", "freelb", "smart", "textat"])
def test_thirty_steps_of_each_method_lower_the_training_loss(rte_slice, name):
    import torch

    from advlm import build_method
    from advlm.modeling import load_model
    from advlm.tasks import get_task

    tokenizer, batches = rte_slice
    torch.manual_seed(0)
    model = load_model(None, get_task("rte"))
    method = build_method(name)
    method.prepare(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    before = _clean_loss(model, batches)
    stream = method.wrap_dataloader(batches * 10)
    for step, batch in enumerate(stream, start=1):
        method.step(model, batch)
        optimizer.step()
        optimizer.zero_grad()
        if step == 30:
            break
    after = _clean_loss(model, batches)
    assert after < before - 0.02, (before, after)
