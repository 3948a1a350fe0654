"""Every shipped config names its source and resolves to a valid run configuration and method."""

from pathlib import Path

import pytest

from advlm.config import read_yaml, split_settings
from advlm.methods import build_method, method_class
from advlm.tasks import get_task

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_configs_exist():
    assert len(CONFIGS) >= 11


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_resolves(path):
    assert path.read_text().startswith("# Source:")
    settings = read_yaml(path)
    assert isinstance(settings["lr"], float)  # YAML 1.1 reads "1e-05" as a string; the files write 1.0e-05
    cls = method_class(settings["method"])
    run, method_args = split_settings(dict(settings), {f.name for f in cls.hyperparameters()})
    get_task(run["task"])
    method = build_method(settings["method"], **method_args)
    assert method.steps >= 2 and method.eps > 0
