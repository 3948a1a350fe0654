"""Nothing a run made or read is lost (issue #29): a damaged checkpoint is passed over for the newest intact one or
refused by name, changed data are refused on resume, a full disk keeps the last complete checkpoint, SIGTERM is
handled as Ctrl-C is, and a cost table that measured nothing replaces nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from advlm.checkpoints import checkpoints, damage
from advlm.cli import main
from advlm.errors import RunFailed
from tests.test_resume import flags, settings

HELPER = Path(__file__).with_name("terminated_run.py")


def interrupt_at(monkeypatch, step: int) -> None:
    """Ctrl-C during optimizer step `step` of the next run in this process."""
    from advlm.trainer import AdversarialTrainer

    real_step = AdversarialTrainer.training_step

    def interrupted(self, *args, **kwargs):
        if self.state.global_step + 1 == step:
            monkeypatch.setattr(AdversarialTrainer, "training_step", real_step)
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(AdversarialTrainer, "training_step", interrupted)


@pytest.fixture(scope="module")
def smart_run(tmp_path_factory, tiny_model_dir, glue_dir) -> tuple[dict, Path]:
    """A SMART run (it has a method state) interrupted in step 5, keeping checkpoint-2 and checkpoint-4."""
    out = tmp_path_factory.mktemp("smart") / "run"
    cfg = {**settings(tiny_model_dir, glue_dir, out, "smart"), "save_total_limit": 2}
    with pytest.MonkeyPatch.context() as monkeypatch:
        interrupt_at(monkeypatch, 5)
        assert main(flags(cfg)) == 130
    assert [c.name for c in checkpoints(out)] == ["checkpoint-2", "checkpoint-4"]
    return cfg, out


def copy_of(run: tuple[dict, Path], tmp_path: Path) -> tuple[dict, Path]:
    cfg, out = run
    shutil.copytree(out, tmp_path / "run")
    return {**cfg, "output_dir": str(tmp_path / "run")}, tmp_path / "run"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGES = {
    "optimizer.pt deleted": ("optimizer.pt", Path.unlink),
    "scheduler.pt deleted": ("scheduler.pt", Path.unlink),
    "rng_state.pth deleted": ("rng_state.pth", Path.unlink),
    "advlm_method_state.pt deleted": ("advlm_method_state.pt", Path.unlink),
    "trainer_state.json deleted": ("trainer_state.json", Path.unlink),
    "model.safetensors deleted": ("model.safetensors", Path.unlink),
    "optimizer.pt truncated": ("optimizer.pt", truncate),
    "advlm_checkpoint.json truncated": ("advlm_checkpoint.json", truncate),
    "model.safetensors replaced": ("model.safetensors", lambda p: p.write_bytes(b"\0" * p.stat().st_size)),
}


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_a_damaged_checkpoint_is_passed_over_saying_why(smart_run, tmp_path, caplog, case):
    name, harm = DAMAGES[case]
    cfg, out = copy_of(smart_run, tmp_path)
    harm(out / "checkpoint-4" / name)
    assert damage(out / "checkpoint-4") and damage(out / "checkpoint-2") is None
    caplog.set_level("WARNING")
    assert main([*flags(cfg), "--resume"]) == 0
    err = caplog.text  # a warning on stderr from the command
    assert f"checkpoint-4 is damaged: {'its ' if name == 'advlm_checkpoint.json' else name}" in err
    assert "resuming from checkpoint-2 instead" in err
    assert json.loads((out / "metrics.json").read_text())["steps"] == 12


@pytest.mark.parametrize("case", ["optimizer.pt truncated", "rng_state.pth deleted"])
def test_with_no_intact_checkpoint_resume_names_the_damage(smart_run, tmp_path, capsys, case):
    name, harm = DAMAGES[case]
    cfg, out = copy_of(smart_run, tmp_path)
    for checkpoint in ("checkpoint-2", "checkpoint-4"):
        harm(out / checkpoint / name)
    before = sorted(p.name for p in out.rglob("*"))
    assert main([*flags(cfg), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"checkpoint-4 is damaged: {name}" in err[0] and "--overwrite" in err[0]
    assert sorted(p.name for p in out.rglob("*")) == before


def test_changed_data_are_refused_on_resume_unless_allowed(tmp_path, tiny_model_dir, glue_dir, capsys, monkeypatch):
    data = tmp_path / "glue"
    shutil.copytree(glue_dir / "RTE", data / "RTE")
    cfg = settings(tiny_model_dir, data, tmp_path / "run", "vanilla")
    interrupt_at(monkeypatch, 3)
    assert main(flags(cfg)) == 130
    train = data / "RTE" / "train.tsv"
    flipped = {"entailment": "not_entailment", "not_entailment": "entailment"}
    lines = train.read_text().splitlines()
    train.write_text(
        "\n".join([lines[0], *("\t".join([*r.split("\t")[:-1], flipped[r.split("\t")[-1]]]) for r in lines[1:])]) + "\n"
    )
    capsys.readouterr()
    assert main([*flags(cfg), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "the training data differ from what" in err and "--allow-changed-data" in err
    other = tmp_path / "other"  # another --data-dir with the same files is the same data
    shutil.copytree(glue_dir / "RTE", other / "RTE")
    assert main([*flags({**cfg, "data_dir": str(other)}), "--resume"]) == 0


def test_a_full_disk_keeps_the_last_complete_checkpoint(tmp_path, tiny_model_dir, glue_dir, monkeypatch):
    """On a small tmpfs filled up right after checkpoint-2, writing checkpoint-4 fails: one RunFailed line naming
    checkpoint-2, which stays intact and resumes once there is room (without a tmpfs, ENOSPC is simulated)."""
    from transformers import TrainerCallback

    from advlm.config import TrainConfig
    from advlm.training import run_training

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)]).returncode == 0
    )
    filler = disk / "filler"

    class FillDisk(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 2 and mounted:
                free = shutil.disk_usage(disk).free
                with open(filler, "wb") as f:
                    os.posix_fallocate(f.fileno(), 0, free - 4096)

    if not mounted:
        real_save = torch.save

        def no_space(obj, f, *args, **kwargs):
            if "checkpoint-4" in str(f):
                raise OSError(28, "No space left on device", str(f))
            return real_save(obj, f, *args, **kwargs)

        monkeypatch.setattr(torch, "save", no_space)
    try:
        cfg = settings(tiny_model_dir, glue_dir, disk / "run", "vanilla")
        with pytest.raises(RunFailed) as failed:
            run_training(TrainConfig(**cfg), callbacks=(FillDisk(),))
        message = str(failed.value)
        assert "could not write checkpoint-4" in message and "checkpoint-2 is kept" in message
        assert "--resume" in message and "\n" not in message
        out = disk / "run"
        assert [c.name for c in checkpoints(out)] == ["checkpoint-2"] and damage(out / "checkpoint-2") is None
        assert not (out / "checkpoint-4").exists()
        filler.unlink(missing_ok=True)
        monkeypatch.undo()
        assert main([*flags(cfg), "--resume"]) == 0
        assert json.loads((out / "metrics.json").read_text())["steps"] == 12
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.parametrize("command", ["train", "pretrain"])
def test_sigterm_keeps_the_checkpoint_says_how_to_resume_and_exits_143(tmp_path, tiny_model_dir, glue_dir, command):
    if command == "train":
        cfg = settings(tiny_model_dir, glue_dir, tmp_path / "run", "vanilla")
        kept = "checkpoint-2 is kept"
    else:
        cfg = dict(output_dir=str(tmp_path / "run"), model=str(tiny_model_dir), data_dir=str(glue_dir), steps=6,
                   save_every=2, max_lines=40, batch_size=4, max_length=32, progress=False)  # fmt: skip
        kept = "checkpoint.pt is kept"
    done = subprocess.run([sys.executable, str(HELPER), "4", *flags(cfg, command)], capture_output=True, text=True)
    assert done.returncode == 143, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("advlm:")]
    assert kept in lines[0] and "--resume" in lines[0] and lines[-1] == "advlm: terminated (SIGTERM)"
    assert "Traceback" not in done.stderr
    assert main([*flags(cfg, command), "--resume"]) == 0


def test_a_cost_table_that_measured_nothing_or_was_refused_keeps_the_old_one(tmp_path, monkeypatch, capsys):
    from advlm.bench import environment

    hardware = environment.describe("cpu")["hardware"]
    old = tmp_path / hardware / "cost.json"
    old.parent.mkdir(parents=True)
    old.write_text('{"results": [{"kind": "method:vanilla", "median_s": 1.0}]}')
    bench = ["bench", "--skip-quality", "--results", str(tmp_path), "--device", "cpu"]
    assert main([*bench, "--cost-methods", "vanila"]) == 2  # the typo: refused before any work
    assert "unknown method 'vanila'" in capsys.readouterr().err
    monkeypatch.setattr(
        "advlm.bench.cost.measure_costs",
        lambda kinds, *a, **k: {"results": [{"kind": k.label, "error": "RuntimeError: boom"} for k in kinds]},
    )
    assert main([*bench, "--cost-methods", "vanilla"]) == 1
    assert "the cost table measured nothing" in capsys.readouterr().err
    assert old.read_text() == '{"results": [{"kind": "method:vanilla", "median_s": 1.0}]}'
    assert not [p for p in old.parent.iterdir() if p.name != "cost.json"]


@pytest.fixture
def read_only_folder(tmp_path):
    """A read-only file system (a tmpfs mounted ro): unwritable even for root, who ignores permissions."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)]).returncode:
        pytest.skip("cannot mount a read-only tmpfs here")
    yield ro
    subprocess.run(["umount", str(ro)], check=True)


def test_read_only_places_are_refused_before_the_work(read_only_folder, tiny_model_dir, glue_dir, capsys):
    ro = read_only_folder
    common = ["--task", "rte", "--data-dir", str(glue_dir), "--max-eval-samples", "4"]
    cases = {
        "eval": ["eval", *common, "--model", str(tiny_model_dir), "--output", str(ro / "m.json")],
        "attack": ["attack", *common, "--model", str(tiny_model_dir), "--save", str(ro / "a.jsonl")],
        "robustness": ["robustness", *common, "--models", str(tiny_model_dir), "--output", str(ro / "r.json")],
        "train": ["train", *common, "--model", str(tiny_model_dir), "--output-dir", str(ro / "run")],
    }
    for command, argv in cases.items():
        assert main(argv) == 2, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Read-only file system" in err[0] and "cannot" in err[0], (command, err)


def test_unreadable_files_are_one_line(tmp_path, tiny_model_dir, glue_dir, capsys, monkeypatch):
    """As root nothing is unreadable by its permissions: the read itself is made to fail."""
    import builtins

    data = tmp_path / "dev.jsonl"
    data.write_text('{"sentence1": "a", "sentence2": "b", "label": "entailment"}\n')
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    refused = {str(data), str(run / "metrics.json")}

    def check(file) -> None:
        if str(file) in refused:
            raise PermissionError(13, "Permission denied", str(file))

    real_open, real_path_open = builtins.open, Path.open
    monkeypatch.setattr(builtins, "open", lambda file, *a, **k: check(file) or real_open(file, *a, **k))
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: check(self) or real_path_open(self, *a, **k))
    evaluate = ["eval", "--task", "rte", "--model", str(tiny_model_dir), "--eval-file", str(data)]
    for argv, what in ((evaluate, str(data)), (["report", str(run)], "metrics.json")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Permission denied" in err[0] and what in err[0], err


def test_a_changed_corpus_is_refused_on_pretraining_resume_unless_allowed(tmp_path, tiny_model_dir, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"sentence number {i} about a cat and a dog\n" for i in range(40)))
    cfg = dict(output_dir=str(tmp_path / "run"), model=str(tiny_model_dir), corpus=str(corpus), steps=6,
               save_every=2, batch_size=4, max_length=32, progress=False)  # fmt: skip
    done = subprocess.run([sys.executable, str(HELPER), "4", *flags(cfg, "pretrain")], capture_output=True, text=True)
    assert done.returncode == 143, done.stderr[-2000:]
    corpus.write_text(corpus.read_text().replace("cat", "bird"))
    assert main([*flags(cfg, "pretrain"), "--resume"]) == 2
    assert "the corpus differs from what" in capsys.readouterr().err
    assert main([*flags(cfg, "pretrain"), "--resume", "--allow-changed-data"]) == 0
