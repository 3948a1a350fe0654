"""Peak bytes in use by the C allocator (glibc `mallinfo2`, sampled every millisecond from a thread) during one
cost-table measurement on CPU, beside the table's own measure (peak resident memory). Resident memory keeps
what the allocator once took; bytes in use do not, so this shows what a method's step holds at once.
A diagnostic for the CPU notes, not part of the cost table. glibc only (Linux).

    .venv/bin/python benchmarks/analysis/allocator_peak.py method:vanilla method:freelb ...
Each kind runs in its own process (batch 8 x 128, 3 steps after 1 warm-up, as `advlm bench` on CPU but shorter).
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import threading
import time
from pathlib import Path


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    ]


def _in_use(libc) -> int:
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd  # heap chunks in use + mmapped chunks


def measure_one(kind: str) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the lab beside this folder
    from lab.cost import measure

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _in_use(libc))
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    result = measure(kind, 8, 128, 3, 1, "cpu")
    done.set()
    thread.join()
    return {
        "kind": kind,
        "allocated_peak_mb": round(peak[0] / 2**20),
        "resident_peak_mb": round(result["peak_memory_bytes"] / 2**20),
    }


def main() -> None:
    if sys.argv[1:2] == ["--one"]:
        print("RESULT" + json.dumps(measure_one(sys.argv[2])))
        return
    for kind in sys.argv[1:] or ["method:vanilla", "method:freelb"]:
        out = subprocess.run([sys.executable, __file__, "--one", kind], capture_output=True, text=True, check=True)
        print(next(line[6:] for line in out.stdout.splitlines() if line.startswith("RESULT")))


if __name__ == "__main__":
    main()
