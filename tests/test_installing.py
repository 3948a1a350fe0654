"""Installing as a user would: what `pip install .` installs (the product, not the lab), where the default data is
found, a command whose reader leaves early, run settings that validate themselves and make the flags."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from advlm.cli import main
from advlm.errors import AdvlmError

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_the_package_and_none_of_the_lab(tmp_path):
    import shutil

    tree = tmp_path / "tree"  # a copy of what the build reads: no stale build/ folder of a working checkout
    shutil.copytree(REPO / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tree / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=tree,
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("advlm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    modules = [n for n in names if n.endswith(".py")]
    assert "advlm/methods/freelb.py" in modules and "advlm/bench/grid.py" in modules
    assert "advlm/cli/methods.json" in names  # the command line's method catalogue
    assert not [n for n in modules if not n.startswith("advlm/")]  # no lab/ package, no benchmarks/
    bench = sorted(n.removeprefix("advlm/bench/") for n in modules if n.startswith("advlm/bench/"))
    assert bench == [
        "__init__.py",
        "cost.py",
        "environment.py",
        "grid.py",
        "paired.py",
        "report.py",
        "tables.py",
        "value.py",
    ]
    text = "".join(zipfile.ZipFile(wheel).read(n).decode() for n in modules)
    for lab_only in (
        "TorchDispatchMode",
        "sys.setprofile",
        "smart_pytorch",
        "subprocess.Popen",
        'model.__dict__["forward"]',
    ):
        assert lab_only not in text, lab_only


def test_the_default_data_directory_is_found_from_the_working_directory(tmp_path, monkeypatch):
    from advlm.data.loading import resolve_data_dir

    monkeypatch.delenv("ADVLM_DATA_DIR", raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "checkout" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "checkout" / "sub")
    assert resolve_data_dir() == tmp_path / "shared" / "data"  # a folder above the working directory
    monkeypatch.chdir(tmp_path.parent)
    if not any((p / "shared" / "data").is_dir() for p in (tmp_path.parent, *tmp_path.parent.parents)):
        with pytest.raises(AdvlmError, match=r"no shared/data in .* or a folder above it\); pass --data-dir"):
            resolve_data_dir()


def test_a_reader_that_leaves_early_ends_the_command_quietly():
    # the reader is gone before the command writes (as `advlm list | true`, or `| head` on a long listing): the
    # write fails; before the fix that was a BrokenPipeError traceback and exit status 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "advlm", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and "BrokenPipe" not in err and "Traceback" not in err


def test_run_settings_validate_themselves_and_make_the_train_flags(capsys):
    import dataclasses

    from advlm.config import TrainConfig

    with pytest.raises(AdvlmError, match=r"--warmup-ratio must be in \[0, 1\), got 1.5; pass a fraction below 1"):
        TrainConfig(warmup_ratio=1.5)
    assert TrainConfig(doc_stride="16", max_train_samples="8").doc_stride == 16  # YAML text typed as the flag is
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(TrainConfig):
        if f.metadata["flag"]:
            assert "--" + f.name.replace("_", "-") in out
    assert "gradient accumulation steps (default: 1)" in out and "--method-args" not in out
