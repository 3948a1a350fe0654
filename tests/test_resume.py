"""A run killed with SIGKILL and resumed with --resume ends exactly where the same run uninterrupted ends
(issue #20): fine-tuning (weights, optimizer, scheduler, RNG, data order, the method's state) and
pre-training (MLM and ELECTRA: the masking's and the chunk order's random states too)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from advlm.checkpoints import COMPLETE_FILE, checkpoints
from advlm.cli import main

HELPER = Path(__file__).with_name("killed_run.py")
KILL_AT = 5  # checkpoints every 2 steps: killed between checkpoint-4 and checkpoint-6


def settings(model_dir, glue_dir, out, method: str) -> dict:
    return dict(
        task="rte",
        method=method,
        model=str(model_dir),
        data_dir=str(glue_dir),
        output_dir=str(out),
        epochs=2,  # 6 steps an epoch: the resume crosses an epoch boundary
        batch_size=8,
        max_train_samples=48,
        max_eval_samples=16,
        save_steps=2,
        logging_steps=1,  # every step's loss is in metrics.json: the whole course is compared, not only the best
        lr=1e-3,
        seed=3,
        progress=False,
    )


def kill(helper: Path, kind: str, cfg: dict, step: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(helper), kind, json.dumps(cfg), str(step)], capture_output=True)


def flags(cfg: dict, command: str = "train") -> list[str]:
    args = [command]
    for key, value in cfg.items():
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else ["--no-" + key.replace("_", "-")] if value is False else [flag, str(value)]
    return args


@pytest.fixture(scope="module")
def dropout_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny BERT with dropout on: the resumed run must restore the RNG for its masks to match."""
    from transformers import BertForSequenceClassification

    from tests.conftest import tiny_bert_config

    path = tmp_path_factory.mktemp("tiny-bert-dropout")
    torch.manual_seed(0)
    BertForSequenceClassification(tiny_bert_config(hidden_dropout_prob=0.1)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("method", ["vanilla", "freelb", "smart", "textat", "r4f"])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, glue_dir, dropout_model_dir, method):
    whole = settings(dropout_model_dir, glue_dir, tmp_path / "whole", method)
    assert main(flags(whole)) == 0

    killed = settings(dropout_model_dir, glue_dir, tmp_path / "killed", method)
    proc = kill(HELPER, "finetune", killed, KILL_AT)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    out = Path(killed["output_dir"])
    assert checkpoints(out)[-1].name == "checkpoint-4" and not (out / "metrics.json").exists()
    # a checkpoint cut off mid-write (no completion mark, a torn weights file) is never resumed from
    torn = out / "checkpoint-6"
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"\x00" * 100)

    assert main([*flags(killed), "--resume"]) == 0
    expected, resumed = (json.loads((Path(c["output_dir"]) / "metrics.json").read_text()) for c in (whole, killed))
    assert resumed["eval"] == pytest.approx(expected["eval"], abs=1e-6)
    assert resumed["steps"] == expected["steps"] == 12
    assert [h["step"] for h in resumed["train_history"]][-7:] == list(range(6, 13))
    course = [h["loss"] for h in expected["train_history"]][-7:]
    assert [h["loss"] for h in resumed["train_history"]][-7:] == pytest.approx(course, abs=1e-6)
    assert [h["eval_loss"] for h in resumed["history"]] == pytest.approx([h["eval_loss"] for h in expected["history"]])
    a, b = (load_file(Path(c["output_dir"]) / "model.safetensors") for c in (whole, killed))
    assert a.keys() == b.keys() and "classifier.weight" in a  # R4F's head too, under its plain name
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
    assert not list(out.glob("checkpoint-*")) and not (out / COMPLETE_FILE).exists()


def test_resume_refuses_other_settings_and_a_folder_without_checkpoint(tmp_path, glue_dir, tiny_model_dir, capsys):
    cfg = settings(tiny_model_dir, glue_dir, tmp_path / "run", "vanilla")
    proc = kill(HELPER, "finetune", cfg, 3)
    assert proc.returncode == -9
    capsys.readouterr()
    assert main([*flags({**cfg, "lr": 5e-4}), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--lr 0.001 (now 0.0005)" in err
    empty = settings(tiny_model_dir, glue_dir, tmp_path / "empty", "vanilla")
    assert main([*flags(empty), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no complete checkpoint" in err
    assert not (tmp_path / "empty").exists()


@pytest.mark.parametrize("objective,masking", [("mlm", "wwm"), ("electra", "bert")])
def test_killed_pretraining_resumes_exactly(tmp_path, tokenizer, objective, masking):
    from tests import tiny

    config = tmp_path / "config"
    tiny.config("bert", dropout=True, vocab_size=tokenizer.vocab_size).save_pretrained(config)
    tokenizer.save_pretrained(config)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"sentence number {i} says something about {i % 7} things" for i in range(40)))
    runs = {}
    for name in ("whole", "killed"):
        runs[name] = dict(
            output_dir=str(tmp_path / name), objective=objective, masking=masking, corpus=str(corpus),
            model_config=str(config / "config.json"), steps=6, batch_size=4, max_length=24, save_every=2,
            progress=False,
        )  # fmt: skip
    assert main(flags(runs["whole"], "pretrain")) == 0
    proc = kill(HELPER, "pretrain", runs["killed"], 5)  # after the checkpoint at step 4
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    out = Path(runs["killed"]["output_dir"])
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 4
    assert main([*flags(runs["killed"], "pretrain"), "--resume"]) == 0
    expected, resumed = (json.loads((tmp_path / n / "pretrain_metrics.json").read_text()) for n in ("whole", "killed"))
    assert resumed["last_steps"] == pytest.approx(expected["last_steps"], abs=1e-6)
    a, b = (load_file(tmp_path / n / "model.safetensors") for n in ("whole", "killed"))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
    assert not (out / "checkpoint.pt").exists()


def test_pretraining_resume_refuses_another_objective(tmp_path, tokenizer, capsys):
    from tests import tiny

    config = tmp_path / "config"
    tiny.config("bert", vocab_size=tokenizer.vocab_size).save_pretrained(config)
    tokenizer.save_pretrained(config)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"line {i} of the corpus" for i in range(20)))
    cfg = dict(output_dir=str(tmp_path / "run"), corpus=str(corpus), model_config=str(config / "config.json"),
               steps=4, batch_size=2, save_every=2, max_length=32, progress=False)  # fmt: skip
    assert kill(HELPER, "pretrain", cfg, 3).returncode == -9
    capsys.readouterr()
    assert main([*flags({**cfg, "objective": "electra"}, "pretrain"), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--objective 'mlm' (now 'electra')" in err
    assert main(flags(cfg, "pretrain")) == 2  # neither --resume nor --overwrite: refused, checkpoint kept
    assert "--resume to continue" in capsys.readouterr().err
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_freeat_resumes_exactly_from_an_epoch_end_and_refuses_mid_epoch(tmp_path, glue_dir, dropout_model_dir, capsys):
    """FreeAT replays each batch (2 optimizer steps a batch): its carried perturbation and replay position
    travel with the checkpoint; within an epoch the Trainer's batch skipping cannot know of the replays."""
    runs = {}
    for name in ("whole", "killed"):
        cfg = settings(dropout_model_dir, glue_dir, tmp_path / name, "freeat")
        del cfg["save_steps"]  # a checkpoint at each epoch's end: step 12
        runs[name] = cfg
    assert main(flags(runs["whole"])) == 0
    assert kill(HELPER, "finetune", runs["killed"], 15).returncode == -9
    assert main([*flags(runs["killed"]), "--resume"]) == 0
    expected, resumed = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("whole", "killed"))
    assert resumed["steps"] == expected["steps"] == 24
    course = [h["loss"] for h in expected["train_history"]][-12:]
    assert [h["loss"] for h in resumed["train_history"]][-12:] == pytest.approx(course, abs=1e-6)

    mid = settings(dropout_model_dir, glue_dir, tmp_path / "mid", "freeat")
    assert kill(HELPER, "finetune", mid, 5).returncode == -9
    capsys.readouterr()
    assert main([*flags(mid), "--resume"]) == 2
    assert "resumes only from a checkpoint at an epoch's end" in capsys.readouterr().err


def test_ctrl_c_keeps_the_checkpoints_and_says_how_to_resume(tmp_path, glue_dir, tiny_model_dir, capsys, monkeypatch):
    from advlm.trainer import AdversarialTrainer

    real_step = AdversarialTrainer.training_step

    def interrupted(self, *args, **kwargs):
        if self.state.global_step == 3:
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(AdversarialTrainer, "training_step", interrupted)
    cfg = settings(tiny_model_dir, glue_dir, tmp_path / "run", "vanilla")
    assert main(flags(cfg)) == 130
    err = capsys.readouterr().err
    assert "checkpoint-2 is kept: the same command with --resume continues from it" in err
    assert [p.name for p in checkpoints(tmp_path / "run")] == ["checkpoint-2"]
    monkeypatch.setattr(AdversarialTrainer, "training_step", real_step)
    assert main([*flags(cfg), "--resume"]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 12
