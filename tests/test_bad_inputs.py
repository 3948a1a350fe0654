"""Every bad input is one line (issue #20): across train, eval, report, robustness, attack and pretrain, each
case exits 2 with a single `advlm: error:` line that names the problem, without a traceback, and leaves
nothing behind (no output folder or file; a folder that was there stays as it was)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from advlm.cli import main

GLUE = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "glue")
STSB_HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"


@pytest.fixture(scope="module")
def w(tmp_path_factory, tokenizer, tiny_model_dir):
    """The broken inputs: models with something wrong, files in a wrong encoding, bad YAML, a killed run."""
    from transformers import BertForSequenceClassification, BertModel

    from tests.conftest import tiny_bert_config

    root = tmp_path_factory.mktemp("bad-inputs")
    f = SimpleNamespace(model=str(tiny_model_dir), root=root)
    torch.manual_seed(0)
    f.no_tokenizer = root / "no-tokenizer"
    BertForSequenceClassification(tiny_bert_config()).save_pretrained(f.no_tokenizer)
    f.three_labels = root / "three-labels"
    BertForSequenceClassification(tiny_bert_config(num_labels=3)).save_pretrained(f.three_labels)
    tokenizer.save_pretrained(f.three_labels)
    f.corrupt = root / "corrupt"
    shutil.copytree(tiny_model_dir, f.corrupt)
    (f.corrupt / "model.safetensors").write_bytes(b"torn" * 10)
    f.diverged = root / "diverged"
    nan_model = BertForSequenceClassification(tiny_bert_config())
    with torch.no_grad():
        nan_model.classifier.weight.fill_(float("nan"))
    nan_model.save_pretrained(f.diverged)
    tokenizer.save_pretrained(f.diverged)
    f.encoder = root / "encoder"
    BertModel(tiny_bert_config()).save_pretrained(f.encoder)
    tokenizer.save_pretrained(f.encoder)
    f.latin = root / "latin"
    (f.latin / "RTE").mkdir(parents=True)
    for split in ("train", "dev"):
        text = "index\tsentence1\tsentence2\tlabel\n0\tcaf\xe9 au lait\tb\tentailment\n"
        (f.latin / "RTE" / f"{split}.tsv").write_bytes(text.encode("latin-1"))
    f.latin_jsonl = root / "latin.jsonl"
    f.latin_jsonl.write_bytes('{"text": "caf\xe9", "label": "a"}\n'.encode("latin-1"))
    for name, score in (("stsb_nan", "nan"), ("stsb_high", "7.5")):
        folder = root / name / "STS-B"
        folder.mkdir(parents=True)
        (folder / "train.tsv").write_text(STSB_HEADER + f"0\tg\tf\ty\t0\ts\ts\ta cat\ta dog\t{score}\n")
        (folder / "dev.tsv").write_text(STSB_HEADER + "0\tg\tf\ty\t0\ts\ts\ta cat\ta dog\t3.0\n")
        setattr(f, name, root / name)
    for name, text in {
        "yaml_nan": "lr: .nan\n",
        "yaml_type": "epochs: [1, 2]\n",
        "yaml_list": "- lr\n- 1e-5\n",
        "yaml_syntax": "lr: [1e-5\n",
        "yaml_key": "learning_rate: 1e-5\n",
    }.items():
        (root / f"{name}.yaml").write_text(text)
        setattr(f, name, root / f"{name}.yaml")
    f.killed = root / "killed"  # what a SIGKILL leaves: a checkpoint, no result
    (f.killed / "checkpoint-4").mkdir(parents=True)
    (f.killed / "checkpoint-4" / "advlm_checkpoint.json").write_text('{"step": 4}')
    f.not_metrics = root / "not-metrics.json"
    f.not_metrics.write_text('{"accuracy": 0.5}')
    return f


def train(w, o, *extra):
    return ["train", "--task", "rte", "--model", w.model, "--data-dir", GLUE, "--max-train-samples", "8",
            "--epochs", "1", "--no-progress", "--output-dir", str(o), *extra]  # fmt: skip


def drop(args: list[str], flag: str) -> list[str]:
    i = args.index(flag)
    return args[:i] + args[i + 2 :]


def evaluate(w, o, *extra, model=None):
    return ["eval", "--task", "rte", "--model", str(model or w.model), "--data-dir", GLUE,
            "--max-eval-samples", "8", *extra]  # fmt: skip


def robustness(w, o, *extra):
    return ["robustness", "--task", "rte", "--models", w.model, "--data-dir", GLUE, "--max-eval-samples", "8",
            *extra]  # fmt: skip


def attack(w, o, *extra):
    return ["attack", "--task", "rte", "--model", w.model, "--data-dir", GLUE, "--max-eval-samples", "4", *extra]


def pretrain(w, o, *extra):
    return ["pretrain", "--output-dir", str(o), "--steps", "1", "--data-dir", GLUE, "--max-lines", "20",
            "--no-progress", *extra]  # fmt: skip


# name: (arguments from the fixtures and the output path o, what the line must say)
CASES = {
    # train: flags, YAML, data, model, output folder
    "train lr nan": (lambda w, o: train(w, o, "--lr", "nan"), "must be a finite number"),
    "train lr inf": (lambda w, o: train(w, o, "--lr", "inf"), "must be a finite number"),
    "train eps nan": (lambda w, o: train(w, o, "--method", "freelb", "--eps", "nan"), "'eps' must be a finite number"),
    "train zero lr": (lambda w, o: train(w, o, "--lr", "0"), "--lr must be positive"),
    "train negative samples": (lambda w, o: train(w, o, "--max-train-samples", "-3"), "must be positive"),
    "train negative save steps": (lambda w, o: train(w, o, "--save-steps", "-1"), "--save-steps must be positive"),
    "train zero batch": (lambda w, o: train(w, o, "--batch-size", "0"), "--batch-size must be positive"),
    "train warmup 1": (lambda w, o: train(w, o, "--warmup-ratio", "1"), "--warmup-ratio must be in [0, 1)"),
    "train yaml nan": (lambda w, o: train(w, o, "--config", str(w.yaml_nan)), "'lr' must be a finite number"),
    "train yaml type": (
        lambda w, o: drop(train(w, o, "--config", str(w.yaml_type)), "--epochs"),
        "'epochs' must be a float",
    ),  # fmt: skip
    "train yaml list": (lambda w, o: train(w, o, "--config", str(w.yaml_list)), "must hold a mapping"),
    "train yaml syntax": (lambda w, o: train(w, o, "--config", str(w.yaml_syntax)), "is not valid YAML"),
    "train yaml unknown key": (
        lambda w, o: train(w, o, "--config", str(w.yaml_key)),
        "unknown setting 'learning_rate'",
    ),
    "train unknown task": (lambda w, o: train(w, o, "--task", "glue10"), "unknown task"),
    "train unknown method": (lambda w, o: train(w, o, "--method", "magic"), "unknown method 'magic'"),
    "train unknown norm": (lambda w, o: train(w, o, "--method", "pgd", "--norm", "l3"), "unknown norm"),
    "train fsdp on cpu": (lambda w, o: train(w, o, "--fsdp", "full_shard auto_wrap"), "--fsdp needs GPUs"),
    "train deepspeed on cpu": (lambda w, o: train(w, o, "--deepspeed", "ds.json"), "--deepspeed needs"),
    "train awp negative eps": (lambda w, o: train(w, o, "--method", "awp", "--adv-eps", "-1"), "adv_eps must be >= 0"),
    "train neftune length": (
        lambda w, o: train(w, o, "--method", "neftune", "--length", "tokens"),
        "unknown length 'tokens'",
    ),  # fmt: skip
    "train r3f noise": (lambda w, o: train(w, o, "--method", "r3f", "--noise-type", "cauchy"), "unknown noise_type"),
    "train latin-1 data": (lambda w, o: train(w, o, "--data-dir", str(w.latin)), "not UTF-8"),
    "train latin-1 own file": (
        lambda w, o: train(
            w,
            o,
            "--task",
            "mine",
            "--task-type",
            "classification",
            "--train-file",
            str(w.latin_jsonl),
            "--eval-file",
            str(w.latin_jsonl),
        ),
        "not UTF-8",
    ),  # fmt: skip
    "train nan score": (lambda w, o: train(w, o, "--task", "stsb", "--data-dir", str(w.stsb_nan)), "train.tsv:2"),
    "train score 7.5": (lambda w, o: train(w, o, "--task", "stsb", "--data-dir", str(w.stsb_high)), "in [0, 5]"),
    "train own data without files": (
        lambda w, o: train(w, o, "--task-type", "classification", "--task", "x"),
        "pass --train-file and --eval-file",
    ),  # fmt: skip
    "train missing data": (lambda w, o: train(w, o, "--data-dir", str(w.root / "nowhere")), "does not exist"),
    "train missing model": (lambda w, o: train(w, o, "--model", str(w.root / "nowhere")), "does not exist"),
    "train model without tokenizer": (lambda w, o: train(w, o, "--model", str(w.no_tokenizer)), "no tokenizer files"),
    "train corrupt weights": (lambda w, o: train(w, o, "--model", str(w.corrupt)), "is the weights file complete"),
    "train max length": (lambda w, o: train(w, o, "--max-length", "1000"), "(128 positions); pass --max-length 128"),
    "train resume nothing": (lambda w, o: train(w, o, "--resume"), "no complete checkpoint"),
    "train output is a file": (lambda w, o: train(w, o.with_name("a-file")), "is a file, not a folder"),
    # eval
    "eval three labels as rte": (lambda w, o: evaluate(w, o, model=w.three_labels), "predicts 3 output(s)"),
    "eval without tokenizer": (lambda w, o: evaluate(w, o, model=w.no_tokenizer), "no tokenizer files"),
    "eval corrupt weights": (lambda w, o: evaluate(w, o, model=w.corrupt), "is the weights file complete"),
    "eval diverged model": (lambda w, o: evaluate(w, o, model=w.diverged), "non-finite weights"),
    "robustness diverged model": (
        lambda w, o: robustness(w, o)[:4] + [str(w.diverged)] + robustness(w, o)[5:],
        "non-finite weights",
    ),  # fmt: skip
    "eval killed run": (lambda w, o: evaluate(w, o, model=w.killed), "unfinished run (last checkpoint checkpoint-4)"),
    "eval negative samples": (lambda w, o: evaluate(w, o, "--max-eval-samples", "-2"), "not a positive integer"),
    "eval zero batch": (lambda w, o: evaluate(w, o, "--batch-size", "0"), "not a positive integer"),
    "eval max length": (lambda w, o: evaluate(w, o, "--max-length", "999"), "pass --max-length 128"),
    "eval output is a folder": (lambda w, o: evaluate(w, o, "--output", str(w.root)), "is a folder"),
    "eval output nowhere": (lambda w, o: evaluate(w, o, "--output", str(o / "m.json")), "does not exist"),
    "eval latin-1 file": (
        lambda w, o: evaluate(
            w, o, "--task", "mine", "--task-type", "classification", "--eval-file", str(w.latin_jsonl)
        ),
        "not UTF-8",
    ),  # fmt: skip
    # report
    "report missing run": (lambda w, o: ["report", str(w.root / "nowhere")], "has no metrics.json"),
    "report killed run": (lambda w, o: ["report", str(w.killed)], "unfinished run (last checkpoint checkpoint-4)"),
    "report other json": (lambda w, o: ["report", str(w.not_metrics)], "is not an advlm train metrics.json"),
    # robustness
    "robustness eps nan": (lambda w, o: robustness(w, o, "--eps", "nan"), "not a number >= 0"),
    "robustness negative steps": (lambda w, o: robustness(w, o, "--steps", "-1"), "not a positive integer"),
    "robustness unknown norm": (lambda w, o: robustness(w, o, "--norm", "l5"), "unknown norm"),
    "robustness output is a folder": (lambda w, o: robustness(w, o, "--output", str(w.root)), "is a folder"),
    "robustness max length": (lambda w, o: robustness(w, o, "--max-length", "4096"), "pass --max-length 128"),
    # attack
    "attack negative candidates": (lambda w, o: attack(w, o, "--candidates", "-1"), "not a positive integer"),
    "attack fraction 2": (lambda w, o: attack(w, o, "--max-fraction", "2"), "not a number in [0, 1]"),
    "attack save is a folder": (lambda w, o: attack(w, o, "--save", str(w.root)), "--save"),
    "attack output nowhere": (lambda w, o: attack(w, o, "--output", str(o / "s.json")), "does not exist"),
    "attack regression task": (lambda w, o: attack(w, o, "--task", "stsb"), "works on sentence classification"),
    # pretrain
    "pretrain negative steps": (lambda w, o: pretrain(w, o, "--steps", "-1"), "--steps must be positive"),
    "pretrain lr nan": (lambda w, o: pretrain(w, o, "--lr", "nan"), "--lr must be positive, got nan"),
    "pretrain latin-1 corpus": (lambda w, o: pretrain(w, o, "--corpus", str(w.latin_jsonl)), "not UTF-8"),
    "pretrain model without tokenizer": (
        lambda w, o: pretrain(w, o, "--model", str(w.no_tokenizer)),
        "no tokenizer files",
    ),  # fmt: skip
    "pretrain max length": (lambda w, o: pretrain(w, o, "--max-length", "5000"), "pass --max-length 512"),
    "pretrain unknown objective": (lambda w, o: pretrain(w, o, "--objective", "gan"), "unknown objective"),
    "pretrain resume nothing": (lambda w, o: pretrain(w, o, "--resume"), "no checkpoint.pt to resume from"),
    "pretrain missing corpus": (lambda w, o: pretrain(w, o, "--corpus", str(w.root / "none.txt")), "does not exist"),
}


def snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(w, tmp_path, capsys, case):
    make_args, message = CASES[case]
    out = tmp_path / "out"
    (tmp_path / "a-file").write_text("the user's file")
    before = snapshot(w.root)
    try:
        code = main(make_args(w, out))
    except SystemExit as e:  # a usage error: argparse exits as the console script would
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = err.splitlines()
    assert lines and lines[-1].startswith("advlm: error:") and message in lines[-1], err
    assert len(lines) == 1 and "Traceback" not in err
    assert not out.exists() and (tmp_path / "a-file").read_text() == "the user's file"
    assert snapshot(w.root) == before


def test_there_are_at_least_40_cases_over_every_command():
    commands = {name.split()[0] for name in CASES}
    assert len(CASES) >= 40 and commands == {"train", "eval", "report", "robustness", "attack", "pretrain"}


def test_eval_warns_of_an_untuned_head_and_of_another_task(w, tmp_path, glue_dir, caplog):
    caplog.set_level("WARNING")
    assert main(evaluate(w, tmp_path, model=w.encoder)) == 0
    assert "no trained weights for classifier.bias, classifier.weight" in caplog.text and "untuned" in caplog.text
    caplog.clear()
    run = tmp_path / "sst2-run"
    shutil.copytree(w.model, run)
    (run / "config.yaml").write_text("task: sst2\n")
    assert main(evaluate(w, tmp_path, model=run)) == 0
    assert "was fine-tuned on sst2, not rte" in caplog.text
    caplog.clear()
    (run / "config.yaml").write_text("task: rte\n")
    assert main(evaluate(w, tmp_path, model=run)) == 0
    assert "fine-tuned on" not in caplog.text and "untuned" not in caplog.text
