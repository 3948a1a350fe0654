"""The CLI end to end on a tiny model, and every bad input: exit 2, one line naming the fix, no run directory."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from advlm.cli import main


def _train(tmp_path, glue_dir, model, *extra):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--task",
            "rte",
            "--model",
            str(model),
            "--data-dir",
            str(glue_dir),
            "--max-train-samples",
            "16",
            "--max-eval-samples",
            "16",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--no-progress",
            "--output-dir",
            str(out),
            *extra,
        ]
    )
    return code, out


def test_train_writes_model_config_and_metrics(tmp_path, glue_dir, tiny_model_dir, capsys):
    code, out = _train(tmp_path, glue_dir, tiny_model_dir, "--seed", "3")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "rte" and metrics["method"] == "vanilla" and metrics["seed"] == 3
    assert set(metrics["eval"]) == {"accuracy"} and 0 <= metrics["eval"]["accuracy"] <= 1
    assert metrics["steps"] == 2 and metrics["train_runtime_s"] > 0
    assert (out / "config.yaml").is_file() and (out / "model.safetensors").is_file()
    assert not list(out.glob("checkpoint-*"))  # the best checkpoint became the run's model
    assert "accuracy" in capsys.readouterr().out
    # the run directory evaluates with `advlm eval` and scores what training reported
    assert (
        main(
            [
                "eval",
                "--task",
                "rte",
                "--model",
                str(out),
                "--data-dir",
                str(glue_dir),
                "--max-eval-samples",
                "16",
                "--output",
                str(tmp_path / "e.json"),
            ]
        )
        == 0
    )
    scored = json.loads((tmp_path / "e.json").read_text())["eval"]
    assert scored["accuracy"] == pytest.approx(metrics["eval"]["accuracy"])


def test_report_compares_runs_and_rejects_a_non_run(tmp_path, glue_dir, tiny_model_dir, capsys):
    code, out = _train(tmp_path, glue_dir, tiny_model_dir)
    capsys.readouterr()  # the training logs
    assert code == 0 and main(["report", str(out), str(out / "metrics.json")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["run", "task", "method", "seed"] and len(table) == 4
    assert main(["report", str(tmp_path)]) == 2
    assert "has no metrics.json" in capsys.readouterr().err


def test_yaml_config_gives_defaults_and_flags_override(tmp_path, glue_dir, tiny_model_dir):
    config = tmp_path / "c.yaml"
    config.write_text("task: rte\nlr: 1.0e-4\nseed: 5\nbatch-size: 4\n")
    code, out = _train(tmp_path, glue_dir, tiny_model_dir, "--config", str(config), "--seed", "7")
    assert code == 0
    resolved = (out / "config.yaml").read_text()
    assert "lr: 0.0001" in resolved and "seed: 7" in resolved and "batch_size: 8" in resolved


@pytest.mark.parametrize("method", ["fgm", "pgd", "freeat", "freelb", "smart", "textat"])
def test_train_with_each_method(tmp_path, glue_dir, tiny_model_dir, method):
    code, out = (
        _train(tmp_path, glue_dir, tiny_model_dir, "--method", method, "--steps", "3", "--logging-steps", "1")
        if method != "fgm"
        else _train(
            tmp_path, glue_dir, tiny_model_dir, "--method", method, "--step-size", "0.5", "--logging-steps", "1"
        )
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == method
    # logging_steps 1 (below): the training loss and the method's diagnostics of every optimizer step
    assert [h["step"] for h in metrics["train_history"]] == list(range(1, metrics["steps"] + 1))
    assert all(h["loss"] > 0 and any(k.startswith("adv/") for k in h) for h in metrics["train_history"])
    assert metrics["method_args"].get("steps", 3) == 3 and metrics["method_args"].get("step_size", 0.5)
    assert metrics["steps"] == (2 * 3 if method == "freeat" else 2)  # FreeAT: an optimizer step per replay


class NoEmbedConfig(PretrainedConfig):
    model_type = "advlm-test-noembed"


class NoEmbedModel(PreTrainedModel):
    """A classifier over bag-of-ids features: no word-embedding table."""

    config_class = NoEmbedConfig

    def __init__(self, config):
        super().__init__(config)
        self.head = nn.Linear(4, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, labels=None, **kwargs):
        return SequenceClassifierOutput(logits=self.head(input_ids[:, :4].float()))


@pytest.fixture
def no_embedding_model_dir(tmp_path, tokenizer):
    AutoConfig.register("advlm-test-noembed", NoEmbedConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(NoEmbedConfig, NoEmbedModel, exist_ok=True)
    path = tmp_path / "noembed"
    NoEmbedModel(NoEmbedConfig(num_labels=2)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _bad_rte(tmp_path, content):
    (tmp_path / "data/RTE").mkdir(parents=True)
    (tmp_path / "data/RTE/train.tsv").write_text(content)
    (tmp_path / "data/RTE/dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    return ["--data-dir", str(tmp_path / "data")]


BAD = {
    "missing data": (lambda p: ["--data-dir", str(p / "empty")], "does not exist"),
    "wrong columns": (
        lambda p: _bad_rte(p, "index\tpremise\thypothesis\tlabel\n0\ta\tb\tentailment\n"),
        "missing column",
    ),
    "bad label": (lambda p: _bad_rte(p, "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tyes\n"), "not a rte label"),
    "empty file": (lambda p: _bad_rte(p, ""), "is empty"),
    "unknown task": (lambda p: ["--task", "glue10"], "unknown task"),
    "unknown method": (lambda p: ["--method", "magic"], "unknown method 'magic'"),
    "missing model folder": (lambda p: ["--model", str(p / "no-such-model")], "does not exist"),
    "zero lr": (lambda p: ["--lr", "0"], "--lr must be positive"),
    "negative eps": (lambda p: ["--method", "freelb", "--eps", "-1"], "eps must be >= 0"),
    "unknown norm": (lambda p: ["--method", "pgd", "--norm", "l3"], "unknown norm"),
    "negative batch": (lambda p: ["--batch-size", "-4"], "--batch-size must be positive"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_line_and_no_run_dir(tmp_path, glue_dir, tiny_model_dir, capsys, case):
    make_args, message = BAD[case]
    out = tmp_path / "run"
    args = [
        "train",
        "--task",
        "rte",
        "--model",
        str(tiny_model_dir),
        "--data-dir",
        str(glue_dir),
        "--output-dir",
        str(out),
        "--max-train-samples",
        "8",
        "--epochs",
        "1",
        "--no-progress",
    ]
    code = main(args + make_args(tmp_path))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and err.startswith("advlm: error:")
    assert not out.exists()


def test_model_without_input_embeddings_is_refused(tmp_path, glue_dir, no_embedding_model_dir, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--task",
            "rte",
            "--model",
            str(no_embedding_model_dir),
            "--data-dir",
            str(glue_dir),
            "--output-dir",
            str(out),
            "--max-train-samples",
            "8",
            "--no-progress",
        ]
    )
    assert code == 2 and "no input word embeddings" in capsys.readouterr().err
    assert not out.exists()


def test_unreachable_hub_id_is_a_clear_error(tmp_path, glue_dir, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(
        [
            "train",
            "--task",
            "rte",
            "--model",
            "some-org/not-cached-model",
            "--data-dir",
            str(glue_dir),
            "--output-dir",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "not a local folder" in err and "--model" in err


def test_list_shows_every_method_with_defaults_and_cost(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name, cost in [
        ("vanilla", "1"),
        ("fgm", "2"),
        ("pgd", "3"),
        ("freeat", "1"),
        ("freelb", "2"),
        ("smart", "3.33"),
        ("textat", "2"),
    ]:
        assert any(line.split()[:2] == [name, cost] for line in out.splitlines()), name
    assert "step_size=0.02" in out and "mu=1.0" in out


def _method_flags(capsys, method):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--method", method, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    section = text.split(f"{method} hyper-parameters:")[1]
    return {word.rstrip(",") for word in section.split() if word.startswith("--")}


def test_method_help_lists_exactly_its_hyperparameters(capsys):
    assert _method_flags(capsys, "freelb") == {
        "--steps",
        "--step-size",
        "--eps",
        "--init-mag",
        "--norm",
        "--same-dropout",
        "--no-same-dropout",
        "--adv-start-step",
        "--nan-guard",
        "--no-nan-guard",
    }
    smart = _method_flags(capsys, "smart")
    assert {"--mu", "--beta", "--bregman", "--no-bregman"} <= smart and "--norm" not in smart


def test_console_script_exit_code(tmp_path):
    """The installed entry point, as a user runs it: a bad task exits 2 with one line on stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "advlm", "train", "--task", "nope", "--output-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("advlm: error: unknown task")
    assert torch.__version__  # the environment under test has torch importable


def test_same_seed_gives_the_same_run(tmp_path, glue_dir, tokenizer):
    """The new classifier head is seeded too: two runs with one seed end with identical weights."""
    from safetensors.torch import load_file
    from transformers import BertModel

    from tests.conftest import tiny_bert_config

    encoder_only = tmp_path / "encoder"  # no classifier in the checkpoint, like the packaged MiniLM
    BertModel(tiny_bert_config()).save_pretrained(encoder_only)
    tokenizer.save_pretrained(encoder_only)
    outs = []
    for name in ("a", "b"):
        run_dir = tmp_path / name
        run_dir.mkdir()
        code, out = _train(run_dir, glue_dir, encoder_only, "--seed", "5")
        assert code == 0
        outs.append(load_file(out / "model.safetensors"))
    assert outs[0].keys() == outs[1].keys()
    assert all(torch.equal(outs[0][k], outs[1][k]) for k in outs[0])
