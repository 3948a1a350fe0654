"""Every bad input is one line (issue #20): across train, eval, report, robustness, attack and pretrain, each
case exits 2 with a single `advlm: error:` line that names the problem, without a traceback, and leaves
nothing behind (no output folder or file; a folder that was there stays as it was)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from advlm.cli import main

GLUE = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "glue")
STSB_HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"


@pytest.fixture(scope="module")
def w(tmp_path_factory, tokenizer, tiny_model_dir, tiny_causal_lm_dir):
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
    # issue #29's probe: more broken inputs
    f.pretrained = root / "pretrained"  # a pre-training run's folder
    f.pretrained.mkdir()
    (f.pretrained / "pretrain_metrics.json").write_text("{}")
    f.finished = root / "finished"  # a fine-tuning run's folder
    f.finished.mkdir()
    (f.finished / "metrics.json").write_text("{}")
    f.stranger = root / "stranger"  # the user's own files, no run
    f.stranger.mkdir()
    (f.stranger / "notes.txt").write_text("mine")
    f.causal = str(tiny_causal_lm_dir)
    f.small_vocab = root / "small-vocab"  # a tokenizer of 30522 ids, an embedding table of 100
    BertForSequenceClassification(tiny_bert_config(vocab_size=100)).save_pretrained(f.small_vocab)
    tokenizer.save_pretrained(f.small_vocab)
    f.no_weights = root / "no-weights"
    f.no_weights.mkdir()
    tiny_bert_config().save_pretrained(f.no_weights)
    tokenizer.save_pretrained(f.no_weights)
    f.binary = root / "binary.json"
    f.binary.write_bytes(bytes(range(256)) * 4)
    f.bad_metrics = root / "bad-metrics"
    f.bad_metrics.mkdir()
    (f.bad_metrics / "metrics.json").write_text(
        '{"task": 5, "method": ["x"], "seed": "a", "eval": [1, 2], "eval_loss": "low", "steps": null}'
    )
    f.latin_yaml = root / "latin.yaml"
    f.latin_yaml.write_bytes("method: caf\xe9\n".encode("latin-1"))
    f.latin_grid = root / "latin-grid.yaml"
    f.latin_grid.write_bytes("tasks: [caf\xe9]\n".encode("latin-1"))
    f.folder = root / "a-folder.jsonl"
    f.folder.mkdir()
    f.loop = root / "loop.jsonl"
    f.loop.symlink_to(f.loop)
    f.fifo = root / "fifo.jsonl"
    os.mkfifo(f.fifo)
    own = {"one_class": ["a", "a"], "bool_labels": [True, False], "good": ["a", "b"]}
    for name, labels in own.items():
        path = root / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"text": f"text {i}", "label": y}) + "\n" for i, y in enumerate(labels)))
        setattr(f, name, path)
    for name, text in {
        "yaml_method_int": "method: 5\n",
        "yaml_method_list": "method: [freelb]\n",
        "yaml_task_int": "task: 5\n",
        "yaml_model_list": "model: [a, b]\n",
        "yaml_method_args_list": "method_args: [1, 2]\n",
        "yaml_output_null": "output_dir: null\n",
        "yaml_epochs_true": "epochs: true\n",
        "yaml_no_output": "task: rte\n",
        "grid_seeds_abc": "tasks: [rte]\nmethods: [vanilla]\nseeds: abc\n",
        "grid_no_tasks": "tasks: []\nmethods: [vanilla]\nseeds: [1]\n",
        "grid_train_list": "tasks: [rte]\nmethods: [vanilla]\nseeds: [1]\ntrain: [1]\n",
    }.items():
        (root / f"{name}.yaml").write_text(text)
        setattr(f, name, root / f"{name}.yaml")
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


def own_data(args: list[str], file: Path) -> list[str]:
    return [*drop(args, "--task"), "--task", "mine", "--task-type", "classification", "--train-file", str(file),
            "--eval-file", str(file)]  # fmt: skip


def bench(w, *extra):
    return ["bench", "--skip-quality", "--results", str(w.root / "bench-results"), *extra]


def bench_grid(w, grid: Path):
    return ["bench", "--grid", str(grid), "--skip-cost", "--results", str(w.root / "bench-results")]


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
    # issue #29: what a hostile probe found (each was a traceback, a misleading line or a silent run)
    "train resume with overwrite": (lambda w, o: train(w, o, "--resume", "--overwrite"), "--overwrite and --resume"),
    "train yaml method int": (lambda w, o: train(w, o, "--config", str(w.yaml_method_int)), "'method' must be text"),
    "train yaml method list": (lambda w, o: train(w, o, "--config", str(w.yaml_method_list)), "'method' must be text"),
    "train yaml task int": (lambda w, o: drop(train(w, o, "--config", str(w.yaml_task_int)), "--task"), "'task'"),
    "train yaml model list": (
        lambda w, o: drop(train(w, o, "--config", str(w.yaml_model_list)), "--model"),
        "'model' must be text",
    ),  # fmt: skip
    "train yaml method_args list": (
        lambda w, o: train(w, o, "--config", str(w.yaml_method_args_list)),
        "'method_args' must be a mapping",
    ),  # fmt: skip
    "train yaml output null": (
        lambda w, o: drop(train(w, o, "--config", str(w.yaml_output_null)), "--output-dir"),
        "'output_dir' must be set",
    ),  # fmt: skip
    "train yaml epochs true": (
        lambda w, o: drop(train(w, o, "--config", str(w.yaml_epochs_true)), "--epochs"),
        "'epochs' must be a float",
    ),  # fmt: skip
    "train yaml without output dir": (
        lambda w, o: drop(train(w, o, "--config", str(w.yaml_no_output)), "--output-dir"),
        "--output-dir is required",
    ),  # fmt: skip
    "train latin-1 yaml": (lambda w, o: train(w, o, "--config", str(w.latin_yaml)), "not UTF-8"),
    "train latin-1 yaml help": (lambda w, o: ["train", "--config", str(w.latin_yaml), "--bogus"], "--bogus"),
    "train yaml is a folder": (lambda w, o: train(w, o, "--config", str(w.root)), "is a folder, not a file"),
    "train seed -1": (lambda w, o: train(w, o, "--seed", "-1"), "--seed must be in [0, 2**32)"),
    "train seed 2**70": (lambda w, o: train(w, o, "--seed", str(2**70)), "--seed must be in [0, 2**32)"),
    "train batch 2**70": (lambda w, o: train(w, o, "--batch-size", str(2**70)), "is too large"),
    "train eval batch 2**70": (lambda w, o: train(w, o, "--eval-batch-size", str(2**70)), "is too large"),
    "train epochs 1e300": (lambda w, o: train(w, o, "--epochs", "1e300"), "--epochs"),
    "train max length 1": (lambda w, o: train(w, o, "--max-length", "1"), "--max-length 1 leaves no room"),
    "train max length 2": (lambda w, o: train(w, o, "--max-length", "2"), "--max-length 2 leaves no room"),
    "train conll max length 2": (
        lambda w, o: train(w, o, "--task", "conll2003", "--data-dir", str(Path(GLUE).parent), "--max-length", "2"),
        "--max-length 2 leaves no room",
    ),  # fmt: skip
    "train small vocabulary": (lambda w, o: train(w, o, "--model", str(w.small_vocab)), "vocabulary"),
    "train model without weights": (lambda w, o: train(w, o, "--model", str(w.no_weights)), "no weights file"),
    "train data file is a folder": (
        lambda w, o: own_data(train(w, o), w.folder),
        "is a folder, not a file",
    ),  # fmt: skip
    "train data file is a link loop": (lambda w, o: own_data(train(w, o), w.loop), "symbolic link loop"),
    "train data file is a pipe": (lambda w, o: own_data(train(w, o), w.fifo), "not a regular file"),
    "train data dir is a file": (lambda w, o: train(w, o, "--data-dir", str(w.binary)), "is a file, not a folder"),
    "train one class": (lambda w, o: own_data(train(w, o), w.one_class), "only one class"),
    "train boolean labels": (lambda w, o: own_data(train(w, o), w.bool_labels), "true/false"),
    "train output name too long": (lambda w, o: train(w, o / ("x" * 300)), "too long"),
    "train output is the model": (lambda w, o: train(w, w.model, "--overwrite"), "the run's own --model"),
    "train output holds the train file": (
        lambda w, o: own_data(train(w, w.root, "--overwrite"), w.good),
        "the run's own --train-file",
    ),  # fmt: skip
    "train overwrite a pretraining run": (lambda w, o: train(w, w.pretrained, "--overwrite"), "pre-training run"),
    "train overwrite a folder of no run": (lambda w, o: train(w, w.stranger, "--overwrite"), "no advlm run"),
    "train logging steps 2**70": (lambda w, o: train(w, o, "--logging-steps", str(2**70)), "is too large"),
    "eval seed-free small vocabulary": (lambda w, o: evaluate(w, o, model=w.small_vocab), "vocabulary"),
    "eval model without weights": (lambda w, o: evaluate(w, o, model=w.no_weights), "no weights file"),
    "eval advglue binary": (lambda w, o: evaluate(w, o, "--advglue", str(w.binary)), "not UTF-8"),
    "eval advglue folder": (lambda w, o: evaluate(w, o, "--advglue", str(w.root)), "is a folder, not a file"),
    "eval max length 1": (lambda w, o: evaluate(w, o, "--max-length", "1"), "--max-length 1 leaves no room"),
    "eval batch 2**70": (lambda w, o: evaluate(w, o, "--batch-size", str(2**70)), "too large"),
    "eval data dir is a link loop": (lambda w, o: evaluate(w, o, "--data-dir", str(w.loop)), "symbolic link loop"),
    "report wrong types": (lambda w, o: ["report", str(w.bad_metrics)], "is not an advlm train metrics.json"),
    "report binary": (lambda w, o: ["report", str(w.binary)], "is not an advlm train metrics.json"),
    "robustness r-max 1e308": (lambda w, o: robustness(w, o, "--r-max", "1e308"), "--r-max"),
    "robustness small vocabulary": (
        lambda w, o: robustness(w, o)[:4] + [str(w.small_vocab)] + robustness(w, o)[5:],
        "vocabulary",
    ),  # fmt: skip
    "robustness batch 2**70": (lambda w, o: robustness(w, o, "--batch-size", str(2**70)), "too large"),
    "attack small vocabulary": (lambda w, o: attack(w, o, "--model", str(w.small_vocab)), "vocabulary"),
    "attack max length 1": (lambda w, o: attack(w, o, "--max-length", "1"), "--max-length 1 leaves no room"),
    "pretrain seed -1": (lambda w, o: pretrain(w, o, "--seed", "-1"), "--seed must be in [0, 2**32)"),
    "pretrain steps 2**70": (lambda w, o: pretrain(w, o, "--steps", str(2**70)), "is too large"),
    "pretrain batch 2**70": (lambda w, o: pretrain(w, o, "--batch-size", str(2**70)), "is too large"),
    "pretrain causal lm": (lambda w, o: pretrain(w, o, "--model", w.causal), "masked"),
    "pretrain model without weights": (lambda w, o: pretrain(w, o, "--model", str(w.no_weights)), "no weights file"),
    "pretrain corrupt weights": (lambda w, o: pretrain(w, o, "--model", str(w.corrupt)), "weights file complete"),
    "pretrain small vocabulary": (lambda w, o: pretrain(w, o, "--model", str(w.small_vocab)), "vocabulary"),
    "pretrain resume with overwrite": (
        lambda w, o: pretrain(w, o, "--resume", "--overwrite"),
        "--overwrite and --resume",
    ),  # fmt: skip
    "pretrain corpus is a folder": (lambda w, o: pretrain(w, o, "--corpus", str(w.root)), "is a folder, not a file"),
    "pretrain corpus is a pipe": (lambda w, o: pretrain(w, o, "--corpus", str(w.fifo)), "not a regular file"),
    "pretrain max length 1": (lambda w, o: pretrain(w, o, "--max-length", "1"), "--max-length 1 leaves no room"),
    "pretrain output is the model": (lambda w, o: pretrain(w, w.model, "--model", w.model, "--overwrite"), "--model"),
    "pretrain overwrite a fine-tuning run": (
        lambda w, o: pretrain(w, w.finished, "--overwrite"),
        "fine-tuning run",
    ),  # fmt: skip
    "bench cost method typo": (lambda w, o: bench(w, "--cost-methods", "vanila"), "unknown method 'vanila'"),
    "bench cost method bogus setting": (lambda w, o: bench(w, "--cost-methods", "smart,zzz=1"), "no hyper-param"),
    "bench cost seq len": (lambda w, o: bench(w, "--cost-seq-len", "100000"), "--cost-seq-len 100000 is longer"),
    "bench cost batch 0": (lambda w, o: bench(w, "--cost-batch-size", "0"), "not a positive integer"),
    "bench cost turns -5": (lambda w, o: bench(w, "--cost-turns", "-5"), "not a positive integer"),
    "bench results is a file": (lambda w, o: bench(w, "--results", str(w.binary)), "is a file, not a folder"),
    "bench jobs 0": (lambda w, o: bench(w, "--jobs", "0"), "not a positive integer"),
    "bench grid seeds abc": (lambda w, o: bench_grid(w, w.grid_seeds_abc), "seeds must be a non-empty list"),
    "bench grid no tasks": (lambda w, o: bench_grid(w, w.grid_no_tasks), "tasks must be a non-empty list"),
    "bench grid train list": (lambda w, o: bench_grid(w, w.grid_train_list), "train must be a mapping"),
    "bench grid latin-1": (lambda w, o: bench_grid(w, w.latin_grid), "not UTF-8"),
    "bench grid missing": (lambda w, o: bench_grid(w, w.root / "none.yaml"), "no grid file"),
}


def snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.lstat().st_mtime_ns for p in root.rglob("*")}


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


def test_there_are_at_least_120_cases_over_every_command():
    commands = {name.split()[0] for name in CASES}
    assert len(CASES) >= 120
    assert commands == {"train", "eval", "report", "robustness", "attack", "pretrain", "bench"}


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
