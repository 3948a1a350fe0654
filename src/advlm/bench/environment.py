"""What a benchmark result was measured on: hardware name, git commit, package versions."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from advlm import host_memory

PACKAGES = ("advlm", "torch", "transformers", "accelerate", "numpy", "scikit-learn")


def hardware_name(device: str = "cpu") -> str:
    """e.g. `cpu-2core-amd-epyc-7b13` or `cuda-nvidia-h100-80gb-hbm3`, safe as a folder name."""
    if device.startswith("cuda") and torch.cuda.is_available():
        name = "cuda-" + torch.cuda.get_device_name(0)
    else:
        cpu = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1]
                    break
        except OSError:
            pass
        name = f"cpu-{torch.get_num_threads()}core-{cpu}"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def git_commit() -> str | None:
    """HEAD of the checkout, or `$ADVLM_GIT_COMMIT` where the code runs from a copy without `.git`."""
    if os.environ.get("ADVLM_GIT_COMMIT"):
        return os.environ["ADVLM_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _advlm_version() -> str:
    """Running from the source tree (PYTHONPATH=src) installs no metadata."""
    from advlm._version import __version__

    return __version__


def describe(device: str = "cpu") -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = _advlm_version() if name == "advlm" else None
    return {
        "hardware": hardware_name(device),
        "device": device,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "packages": versions,
        "freed_memory_kept": host_memory.kept(),  # glibc malloc's thresholds raised (advlm.host_memory)
    }
