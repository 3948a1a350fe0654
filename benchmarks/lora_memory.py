"""What SMART's teacher holds with LoRA and with full fine-tuning, on the default MiniLM (issue #21): the
teacher's bytes (the averaged trainable parameters) and the process's peak resident memory over two SMART
steps, each set-up in a process of its own (vanilla's too, as the baseline). Prints a table, writes JSON.

python benchmarks/lora_memory.py --output benchmarks/results/cpu-2core-amd-epyc/lora_memory.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from pathlib import Path

import torch

from advlm import build_method
from advlm.bench.cost import resident_peak, training_setup
from advlm.bench.environment import describe

MiB = 2**20


def measure(method_name: str, lora: bool, batch_size: int, seq_len: int) -> dict:
    """In a child process: two steps of `method_name` on the default classifier, LoRA (r 8, query,value) or not."""
    from transformers.utils import logging as hf_logging

    from advlm.adapters import add_lora

    hf_logging.set_verbosity_error()
    setup = training_setup(batch_size, seq_len, torch.device("cpu"), None)
    model = add_lora(setup.model, "classification", 8, 16.0, 0.0, None) if lora else setup.model
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=2e-5)
    method = build_method(method_name)
    method.prepare(model, tokenizer=setup.tokenizer, total_steps=1000)
    for _ in range(2):
        method.step(model, setup.batch)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    teacher = getattr(method, "teacher", None)
    return {
        "method": method_name,
        "lora": lora,
        "trainable_parameters": sum(p.numel() for p in trainable),
        "all_parameters": sum(p.numel() for p in model.parameters()),
        "teacher_bytes": teacher.nbytes() if teacher is not None else 0,
        "peak_bytes": resident_peak(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--output")
    args = parser.parse_args()
    rows = []
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for method in ("vanilla", "smart"):
            for lora in (False, True):
                rows.append(pool.apply(measure, (method, lora, args.batch_size, args.seq_len)))
    print("method   lora  trainable   teacher MiB  peak MiB")
    for r in rows:
        print(
            f"{r['method']:<8} {str(r['lora']):<5} {r['trainable_parameters']:>10,}  "
            f"{r['teacher_bytes'] / MiB:10.2f}  {r['peak_bytes'] / MiB:8.0f}"
        )
    if args.output:
        result = {"environment": describe("cpu"), "batch_size": args.batch_size, "seq_len": args.seq_len, "rows": rows}
        Path(args.output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
