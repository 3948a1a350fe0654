"""Large CPU tensors without a trip to the kernel each time: glibc's malloc set to keep freed memory.

glibc serves a block above its mmap threshold (128 KB at first, raised as such blocks are freed, at most 32 MB)
with fresh pages from the kernel and gives them back when it is freed; it also returns the top of its heap
once more than its trim threshold is free. A training step allocates and frees blocks far above 32 MB every
time (a causal LM's logits and their gradient over the vocabulary, 125 MB at 1,024 positions of a 30k
vocabulary; the word-embedding table's dense gradient, 47 MB for MiniLM), so each one is page-faulted in anew
at every use, and what a step costs comes to depend on what ran before it. With both thresholds raised, the
blocks come from the heap and freed memory stays in the process for the next step to reuse, as a GPU's caching
allocator does. PyTorch's CPU performance guide reaches the same end by preloading jemalloc or tcmalloc.

The cost: the process keeps its peak memory until it exits instead of returning it between steps (a training
loop reaches the same peak at every step anyway), and a freed block does not always fit the next aligned
request of the same size, so the heap can grow by a block or so before it settles (tests/test_host_memory.py). The `advlm` command turns this on at start; plain-loop users
call `keep_freed_memory()` themselves. It does nothing where malloc is not glibc's, when `ADVLM_KEEP_FREED_MEMORY=0`,
or when the user already tunes malloc through glibc's own environment variables (`MALLOC_MMAP_THRESHOLD_`,
`MALLOC_TRIM_THRESHOLD_`, `GLIBC_TUNABLES`), whose choice stands."""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: the heap's top is never trimmed in practice
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
_kept = False


def kept() -> bool:
    """Whether `keep_freed_memory()` set the thresholds in this process (benchmarks record it)."""
    return _kept


def keep_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds for this process; True when they were set."""
    global _kept
    if not sys.platform.startswith("linux") or os.environ.get("ADVLM_KEEP_FREED_MEMORY") == "0":
        return False
    if any(key in os.environ for key in USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl has mallopt without these parameters)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _kept = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _kept
