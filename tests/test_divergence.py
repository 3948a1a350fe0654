"""A diverged run is never a success (issue #20): the NaN guard keeps an injected infinity out of the weights
for every method on every head, a run whose loss or weights turn non-finite exits 1 with one line and writes no
result, and metrics of a non-finite model are NaN, not a number that looks like a score."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from advlm import build_method, list_methods
from advlm.cli import main
from advlm.metrics import pearson, task_metrics
from advlm.tasks import get_task
from tests import tiny
from tests.test_cli import _train

# NEFTune's one pass is its training loss, as vanilla's: a non-finite one is the run's divergence (RunFailed),
# not a pass to skip
ADVERSARIAL = [m for m in list_methods() if m not in ("vanilla", "neftune")]


def count_passes(method, model, batch) -> int:
    calls = []

    def counting(m, inputs):
        calls.append(1)
        out = m(**inputs)
        return out.loss, out

    method.step(model, batch, compute_loss=counting)
    model.zero_grad(set_to_none=True)
    return len(calls)


@pytest.mark.parametrize("name,kind", tiny.method_kinds(ADVERSARIAL))
def test_injected_infinity_in_the_adversarial_pass_never_reaches_the_weights(name, kind):
    """The step's last pass is adversarial for every method (SMART's: the teacher's, for its Bregman term):
    its loss and outputs are made infinite; the gradients and, after an AdamW step, the weights stay finite."""
    model = tiny.head_model(kind).train()
    batch = tiny.head_batch(model, kind)
    method = build_method(name, **({"steps": 1} if name == "freeat" else {}))
    last = count_passes(method, model, batch) - 1
    calls = []

    def poisoned(m, inputs):
        calls.append(1)
        out = m(**inputs)
        if len(calls) - 1 != last:
            return out.loss, out
        for key in [k for k in out if torch.is_tensor(out[k]) and out[k].is_floating_point() and k != "loss"]:
            out[key] = out[key] + math.inf
        return out.loss + math.inf, out

    result = method.step(model, batch, compute_loss=poisoned)
    assert len(calls) == last + 1
    for n, p in model.named_parameters():
        assert p.grad is None or bool(torch.isfinite(p.grad).all()), n
    torch.optim.AdamW(model.parameters(), lr=1e-3).step()
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert bool(torch.isfinite(result.loss)) and result.metrics.get("skipped", 0) > 0


def test_guard_zero_has_exact_zero_gradients_for_infinite_weights():
    from advlm.methods.base import guarded

    model = tiny.model()
    with torch.no_grad():
        model.classifier.weight[0, 0] = math.inf
    loss, finite = guarded(torch.tensor(math.nan), model, build_method("fgm"))
    loss.backward()
    assert not finite and all(bool((p.grad == 0).all()) for p in model.parameters())


@pytest.mark.parametrize("method,logging_steps", [("vanilla", "50"), ("freelb", "1"), ("smart", "1")])
def test_huge_learning_rate_fails_with_one_line_and_no_result(
    tmp_path, glue_dir, tiny_model_dir, capsys, method, logging_steps
):
    """Caught at a log (every step) or, with no log before the end, when training ends."""
    args = ("--lr", "1e30", "--method", method, "--logging-steps", logging_steps)
    code, out = _train(tmp_path, glue_dir, tiny_model_dir, *args)
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and err.startswith("advlm: failed: training diverged")
    assert not out.exists()  # nothing claims success: the folder the run created is gone


def test_nan_label_is_refused_at_load(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "data" / "STS-B"
    data.mkdir(parents=True)
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    (data / "train.tsv").write_text(header + "0\tg\tf\ty\t0\ts\ts\ta cat\ta dog\tnan\n")
    (data / "dev.tsv").write_text(header + "0\tg\tf\ty\t0\ts\ts\ta cat\ta dog\t3.0\n")
    code = main(["train", "--task", "stsb", "--model", str(tiny_model_dir), "--data-dir", str(tmp_path / "data"),
                 "--output-dir", str(tmp_path / "run"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "train.tsv:2" in err and "not a finite number in [0, 5]" in err
    assert not (tmp_path / "run").exists()


def test_metrics_of_non_finite_outputs_are_nan():
    sst2, stsb = get_task("sst2"), get_task("stsb")
    logits = np.array([[np.nan, np.nan], [0.1, 0.9]])
    assert all(math.isnan(v) for v in task_metrics(sst2, logits, np.array([0, 1])).values())
    assert math.isnan(pearson(np.array([1.0, np.nan, 2.0]), np.array([1.0, 2.0, 3.0])))
    assert task_metrics(stsb, np.array([[2.0], [2.0], [2.0]]), np.array([1.0, 2.0, 3.0]))["pearson"] == 0.0


def test_report_marks_a_run_with_non_finite_metrics(tmp_path, capsys):
    """A metrics.json written before advlm refused diverged runs (or by hand) is marked, not shown as normal."""
    import json

    run = {"task": "stsb", "method": "freelb", "seed": 1, "steps": 3, "train_runtime_s": 1.0, "eval_loss": None}
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "metrics.json").write_text(json.dumps({**run, "eval": {"pearson": 0.8}}))
    (tmp_path / "nan").mkdir()
    (tmp_path / "nan" / "metrics.json").write_text(json.dumps({**run, "eval": {"pearson": float("nan")}}))
    assert main(["report", str(tmp_path / "ok"), str(tmp_path / "nan")]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[-1] == "note" and "DIVERGED" in rows[3] and "DIVERGED" not in rows[2]
