"""Output folders are the user's (issue #20): a non-empty folder is refused unless --overwrite, a second run
into a held folder is refused, a failed run removes only what it created, and the checks come first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from advlm.cli import main
from advlm.errors import AdvlmError
from advlm.output_folder import COMPLETE_FILE, FINE_TUNING, LOCK_FILE, PRE_TRAINING, OutputFolder
from tests.test_cli import _train


def test_non_empty_folder_is_refused_and_left_as_it_was(tmp_path, glue_dir, tiny_model_dir, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _ = _train(tmp_path, glue_dir, tiny_model_dir)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "is not empty (notes.txt)" in err and "--overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_overwrite_replaces_a_finished_run_and_the_stray_files(tmp_path, glue_dir, tiny_model_dir, capsys):
    assert _train(tmp_path, glue_dir, tiny_model_dir)[0] == 0
    out = tmp_path / "run"
    (out / "stray.txt").write_text("old")
    code, _ = _train(tmp_path, glue_dir, tiny_model_dir)
    assert code == 2 and "--resume" not in capsys.readouterr().err  # a finished run has nothing to resume
    assert _train(tmp_path, glue_dir, tiny_model_dir, "--overwrite", "--seed", "7")[0] == 0
    assert not (out / "stray.txt").exists() and (out / "metrics.json").is_file()
    assert "seed: 7" in (out / "config.yaml").read_text() and not (out / LOCK_FILE).exists()


def test_a_held_folder_is_refused_to_a_second_run(tmp_path, glue_dir, tiny_model_dir, capsys):
    out = tmp_path / "run"
    with OutputFolder(out, FINE_TUNING):
        code, _ = _train(tmp_path, glue_dir, tiny_model_dir)
        err = capsys.readouterr().err.strip()
        assert code == 2 and f"another advlm run (process {os.getpid()}) is writing to" in err
        assert len(err.splitlines()) == 1
    assert not out.exists()  # the holder created it, wrote nothing, and removed it


def test_paused_run_cannot_delete_the_run_that_finished_meanwhile(tmp_path, glue_dir, tiny_model_dir):
    """Run B took the folder (then paused); run A is refused meanwhile. And B, started after A finished, is
    refused; interrupted while holding a folder A wrote before, B removes only its own files."""
    out = tmp_path / "run"
    with OutputFolder(out, FINE_TUNING):  # B holds the folder
        assert _train(tmp_path, glue_dir, tiny_model_dir)[0] == 2  # A refused
    assert _train(tmp_path, glue_dir, tiny_model_dir)[0] == 0  # A runs once B is gone
    finished = sorted(p.name for p in out.iterdir())
    with pytest.raises(AdvlmError, match="not empty"):
        OutputFolder(out, FINE_TUNING).claim()  # B, restarted, is refused
    with pytest.raises(KeyboardInterrupt):
        with OutputFolder(out, FINE_TUNING, resume=True):  # B resuming into it, then Ctrl-C
            (out / "checkpoint-9").mkdir()
            (out / "checkpoint-9" / COMPLETE_FILE).write_text("{}")
            (out / "checkpoint-10").mkdir()  # torn: never resumed from
            (out / "partial.bin").write_bytes(b"x")
            raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == sorted([*finished, "checkpoint-9"])  # kept to resume from


def test_failed_run_removes_what_it_created_and_only_that(tmp_path):
    out = tmp_path / "a" / "b" / "run"
    with pytest.raises(RuntimeError):
        with OutputFolder(out, FINE_TUNING):
            (out / "checkpoint-2").mkdir()
            (out / "model.safetensors").write_bytes(b"x")
            raise RuntimeError("boom")
    assert not (tmp_path / "a").exists()  # the folders it made, parents too
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with OutputFolder(out, FINE_TUNING, overwrite=False, resume=True):
            (out / "model.safetensors").write_bytes(b"x")
            raise RuntimeError("boom")
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_unwritable_folder_is_refused_before_any_work(tmp_path, glue_dir, tiny_model_dir, capsys, monkeypatch):
    """As root, permissions cannot be taken away: the write itself is made to fail."""
    real_open = os.open

    def refuse(path, flags, *args):
        if str(path).endswith(LOCK_FILE):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refuse)
    started = []
    monkeypatch.setattr("advlm.training.AdversarialTrainer.train", lambda *a, **k: started.append(1))
    code, out = _train(tmp_path, glue_dir, tiny_model_dir)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot write to --output-dir" in err and "Permission denied" in err
    assert not started and not out.exists()


def test_output_dir_that_is_a_file(tmp_path, glue_dir, tiny_model_dir, capsys):
    (tmp_path / "run").write_text("a file")
    assert _train(tmp_path, glue_dir, tiny_model_dir)[0] == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_pretraining_and_fine_tuning_folders_are_not_mixed(tmp_path, glue_dir, tiny_model_dir, capsys):
    assert _train(tmp_path, glue_dir, tiny_model_dir)[0] == 0
    out = tmp_path / "run"
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(AdvlmError, match="holds a fine-tuning run"):
        OutputFolder(out, PRE_TRAINING, resume=True).claim()
    code = main(["pretrain", "--model", str(tiny_model_dir), "--steps", "1", "--no-progress",
                 "--data-dir", str(glue_dir), "--max-lines", "20", "--output-dir", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "holds a fine-tuning run" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    fresh = Path(tmp_path / "pre")
    fresh.mkdir()
    (fresh / "pretrain_metrics.json").write_text("{}")
    with pytest.raises(AdvlmError, match="holds a pre-training run"):
        OutputFolder(fresh, FINE_TUNING, resume=True).claim()
