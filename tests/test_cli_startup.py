"""The command line answers `--help` and `advlm list` without importing torch or transformers (their import is
most of a cold start), and the method catalogue it reads instead says what the registry says."""

import subprocess
import sys

import pytest

from advlm.cli import method_catalogue

PROBE = """
import sys
from advlm.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("imported:", ",".join(m for m in ("torch", "transformers") if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["list"],
        ["train", "--help"],
        ["train", "--method", "smart", "--help"],
        *([cmd, "--help"] for cmd in ("eval", "robustness", "attack", "bench", "pretrain", "report")),
    ],
    ids=lambda argv: " ".join(argv),
)
def test_help_and_list_import_neither_torch_nor_transformers(argv):
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().splitlines()[-1] == "imported:", done.stderr
    assert done.stdout.strip()


def test_importing_the_cli_module_imports_neither():
    code = "import sys, advlm.cli; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_the_catalogue_says_what_the_registry_says():
    assert method_catalogue.methods() == method_catalogue.from_registry(), (
        "src/advlm/cli/methods.json is stale: run `python -m advlm.cli.method_catalogue` and commit it"
    )


def test_a_methods_flags_come_from_the_catalogue(capsys):
    from advlm.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--method", "freelb", "--help"])
    out = capsys.readouterr().out
    assert "freelb hyper-parameters" in out and "--same-dropout, --no-same-dropout" in out and "--init-mag" in out
