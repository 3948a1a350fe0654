"""`advlm train / eval / report / robustness / attack` for every task kind, on tiny models: a run trains, its
folder scores the same under `advlm eval`, and bad input exits 2 with one line and no run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advlm.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
INSTRUCTIONS = Path(__file__).resolve().parents[1] / "examples" / "data" / "instructions.jsonl"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SMALL = ["--max-train-samples", "16", "--max-eval-samples", "12", "--epochs", "1", "--batch-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def data_dir():
    if not (DATA / "conll2003").is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return DATA


def _train_and_eval(tmp_path, model, task_flags, method="vanilla", extra=(), eval_flags=None):
    out = tmp_path / "run"
    assert (
        main(
            ["train", *task_flags, "--model", str(model), "--method", method, *SMALL, *extra, "--output-dir", str(out)]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    scored = tmp_path / "eval.json"
    flags = eval_flags if eval_flags is not None else task_flags
    assert main(["eval", *flags, "--model", str(out), "--max-eval-samples", "12", "--output", str(scored)]) == 0
    return out, metrics, json.loads(scored.read_text())["eval"]


@pytest.mark.parametrize(
    "task,method,metric",
    [("conll2003", "freelb", "f1"), ("commonsenseqa", "smart", "accuracy"), ("arc-easy", "textat", "accuracy")],
)
def test_built_in_tasks_train_and_evaluate(tmp_path, data_dir, tiny_model_dir, task, method, metric):
    flags = ["--task", task, "--data-dir", str(data_dir)]
    out, metrics, scored = _train_and_eval(tmp_path, tiny_model_dir, flags, method)
    assert metrics["task"] == task and metrics["method"] == method and metrics["steps"] == 2
    assert scored[metric] == pytest.approx(metrics["eval"][metric])
    assert main(["report", str(out)]) == 0


def test_question_answering_on_squad_format_files(tmp_path, tiny_model_dir):
    squad = str(FIXTURES / "squad_tiny.json")
    flags = ["--task-type", "question-answering", "--doc-stride", "8"]
    data = ["--train-file", squad, "--eval-file", squad, "--max-length", "40"]
    out, metrics, scored = _train_and_eval(
        tmp_path, tiny_model_dir, flags, "fgm", data, eval_flags=[*flags, "--eval-file", squad, "--max-length", "40"]
    )
    assert metrics["task_type"] == "question-answering" and set(metrics["eval"]) == {"f1", "exact_match"}
    assert scored["f1"] == pytest.approx(metrics["eval"]["f1"]) and 0 <= scored["f1"] <= 100


def test_causal_lm_on_prompt_response_records(tmp_path, tiny_causal_lm_dir, capsys):
    data = ["--train-file", str(INSTRUCTIONS), "--eval-file", str(INSTRUCTIONS)]
    flags = ["--task-type", "causal-lm", "--task", "instructions"]
    out, metrics, scored = _train_and_eval(
        tmp_path, tiny_causal_lm_dir, flags, "smart", data, eval_flags=[*flags, "--eval-file", str(INSTRUCTIONS)]
    )
    assert metrics["task"] == "instructions" and metrics["eval"]["perplexity"] > 1
    assert scored["perplexity"] == pytest.approx(metrics["eval"]["perplexity"], rel=1e-4)
    capsys.readouterr()
    code = main(
        [
            "robustness",
            *flags,
            "--eval-file",
            str(INSTRUCTIONS),
            "--models",
            str(out),
            "--steps",
            "2",
            "--max-eval-samples",
            "6",
        ]
    )
    assert code == 0 and "no radii" in capsys.readouterr().out


def test_own_classification_data_with_its_own_fields_and_labels(tmp_path, tiny_model_dir):
    rows = [("Goal in the last minute", "Cup final", "sports"), ("Shares fall", "Markets", "business")]
    rows += [("New phone out", "Gadgets", "tech")]
    for split in ("train", "dev"):
        lines = [json.dumps({"title": a, "section": b, "topic": c}) for a, b, c in rows * 4]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    flags = [
        "--task",
        "news",
        "--task-type",
        "classification",
        "--text-fields",
        "title,section",
        "--label-field",
        "topic",
    ]
    data = ["--train-file", str(tmp_path / "train.jsonl"), "--eval-file", str(tmp_path / "dev.jsonl")]
    out, metrics, scored = _train_and_eval(
        tmp_path, tiny_model_dir, flags, "pgd", data, eval_flags=[*flags, "--eval-file", str(tmp_path / "dev.jsonl")]
    )
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "business", "1": "sports", "2": "tech"}
    assert set(metrics["eval"]) == {"accuracy", "macro_f1"}
    assert scored["accuracy"] == pytest.approx(metrics["eval"]["accuracy"])


def test_robustness_measures_a_token_classifier(tmp_path, data_dir, tiny_model_dir, capsys):
    flags = ["--task", "conll2003", "--data-dir", str(data_dir)]
    out, _, _ = _train_and_eval(tmp_path, tiny_model_dir, flags)
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(out)
    model.classifier.bias.data[0] = 20.0  # predicts O everywhere: right on sentences without entities
    model.save_pretrained(out)
    capsys.readouterr()
    code = main(
        ["robustness", *flags, "--models", str(out), "--steps", "2", "--bisection", "2", "--max-eval-samples", "60"]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "M-Inc (R)" in printed and "robust acc @R" in printed, printed


def _fails_with_one_line(capsys, argv, message, absent=None):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    if absent is not None:
        assert not absent.exists()


def test_bad_input_per_kind_exits_2_with_one_line(tmp_path, data_dir, tiny_model_dir, tiny_causal_lm_dir, capsys):
    out = tmp_path / "run"
    common = ["--model", str(tiny_model_dir), "--output-dir", str(out), *SMALL]
    bad_conll = tmp_path / "bad.conll"
    bad_conll.write_text("EU NNP I-NP I-ORG\nrejects VBZ\n")
    _fails_with_one_line(
        capsys,
        ["train", "--task", "conll2003", "--train-file", str(bad_conll), "--data-dir", str(data_dir), *common],
        "bad.conll:2: expected 4 space-separated columns",
        out,
    )
    no_response = tmp_path / "lm.jsonl"
    no_response.write_text('{"prompt": "hi", "response": ""}\n')
    lm = ["--task-type", "causal-lm", "--train-file", str(no_response), "--eval-file", str(no_response)]
    _fails_with_one_line(capsys, ["train", *lm, *common], "lm.jsonl:1: a record with a prompt needs", out)
    encoder = ["--task-type", "causal-lm", "--train-file", str(INSTRUCTIONS), "--eval-file", str(INSTRUCTIONS)]
    _fails_with_one_line(capsys, ["train", *encoder, *common], "causal-lm needs a causal language model", out)
    lm_r4f = [*encoder, "--model", str(tiny_causal_lm_dir), "--output-dir", str(out), *SMALL, "--method", "r4f"]
    _fails_with_one_line(capsys, ["train", *lm_r4f], "a causal LM has none", out)
    _fails_with_one_line(
        capsys, ["train", "--task-type", "question-answering", *common], "pass --train-file and --eval-file", out
    )
    _fails_with_one_line(
        capsys,
        ["attack", "--task", "conll2003", "--model", str(tiny_model_dir), "--data-dir", str(data_dir)],
        "advlm attack works on sentence classification; conll2003 is token-classification",
    )
    _fails_with_one_line(
        capsys,
        ["eval", "--task", "conll2003", "--model", str(tiny_model_dir), "--data-dir", str(data_dir)],
        "is a BertForSequenceClassification; task conll2003 needs a token-classification model",
    )
