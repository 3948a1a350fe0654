"""`advlm.host_memory`: with freed memory kept, a block far above glibc's mmap ceiling, freed and allocated
again as a training loop does, soon comes without page faults; without it (opted out, or malloc tuned by the
user) every page of it faults every time. Measured in a fresh process each (malloc settings are per
process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# A training process's heap: torch and transformers loaded (advlm.__init__ loaded transformers for this child before
# its names became lazy). With torch alone the heap grows in pieces the 100 MB block does not fit, and it keeps
# coming fresh from the kernel with or without the setting (seen in 11 of 12 children).
CHILD = """
import resource, torch, transformers
from advlm.host_memory import keep_freed_memory
kept = keep_freed_memory()
faults = []
for _ in range(4):  # as a training loop: the same large block, freed and allocated again
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(25_000_000)  # 100 MB, above glibc's 32 MB mmap ceiling
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del x
print(kept, min(faults[1:]))  # the heap may grow once more before a freed block fits the aligned request
"""
PAGES = 25_000_000 * 4 // 4096  # the block's pages: each faults when it comes fresh from the kernel


def second_block_faults(**env: str) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "ADVLM_KEEP"))}
    src = str(Path(__file__).parents[1] / "src")
    clean["PYTHONPATH"] = os.pathsep.join([src, clean.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env={**clean, **env}, capture_output=True, text=True, timeout=120, check=True
    )
    kept, faults = out.stdout.split()
    return kept == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_freed_block_is_reused_without_page_faults_and_the_user_can_opt_out():
    kept, faults = second_block_faults()
    assert kept and faults < PAGES / 20
    for env in ({"ADVLM_KEEP_FREED_MEMORY": "0"}, {"MALLOC_ARENA_MAX": "2", "MALLOC_TRIM_THRESHOLD_": "131072"}):
        kept, faults = second_block_faults(**env)
        assert not kept and faults > PAGES / 2, env
