"""What each method's step costs on a head other than sentence classification: token classification (the
default MiniLM with a CoNLL-2003 head) and causal LM (a GPT-2 of MiniLM's size: 6 layers, 384 wide, MiniLM's
30,522-token vocabulary, random weights, as no pretrained causal LM can be had offline; a step's time does not
depend on the weights).

The methods take turns on one model and one fixed batch, one step each (`method.step`, AdamW step, zero_grad),
the order rotated every turn; a method's ratio to vanilla is taken turn by turn (a drift slower than a turn
does not move it), then its median over the turns, with a distribution-free 95% interval. Overhead = median
ratio / ideal ratio (the method's passes per optimizer step). Prints a table and writes JSON.

python benchmarks/head_cost.py --heads token-classification causal-lm --turns 30 \
    --output benchmarks/results/cpu-2core-amd-epyc/head_cost.json
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
from pathlib import Path

import torch

from advlm import build_method, list_methods
from advlm.bench.cost import take_turns, time_step
from advlm.bench.environment import describe
from advlm.bench.paired import median_interval
from advlm.errors import AdvlmError
from advlm.host_memory import keep_freed_memory


def head_model(head: str, model_path: str | None):
    from transformers import AutoModelForCausalLM, GPT2Config

    from advlm.modeling import load_model
    from advlm.tasks import get_task

    torch.manual_seed(0)
    if head == "token-classification":
        return load_model(model_path, get_task("conll2003"))
    config = GPT2Config(
        vocab_size=30522, n_embd=384, n_layer=6, n_head=12, n_positions=512, bos_token_id=0, eos_token_id=0
    )
    return AutoModelForCausalLM.from_config(config)


def fixed_batch(head: str, vocab: int, batch_size: int, seq_len: int) -> dict[str, torch.Tensor]:
    """Random token ids, every position real; token labels on every token but the first and last (special
    tokens), or, for the causal LM, on the last two thirds (a prompt, then its response)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, vocab, (batch_size, seq_len), generator=g)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if head == "token-classification":
        labels = torch.randint(0, 9, ids.shape, generator=g)
        labels[:, [0, -1]] = -100
    else:
        labels = ids.clone()
        labels[:, : seq_len // 3] = -100
    batch["labels"] = labels
    return batch


def measure(
    head: str, turns: int, warmup: int, batch_size: int, seq_len: int, model_path: str | None, names: list[str]
) -> dict:
    model = head_model(head, model_path).train()
    batch = fixed_batch(head, model.config.vocab_size, batch_size, seq_len)
    methods = {name: build_method(name) for name in ["vanilla", *(n for n in names if n != "vanilla")]}
    steps, refused = {}, {}
    for name, method in list(methods.items()):
        try:
            method.prepare(model)
        except AdvlmError as exc:  # a method that does not apply to this head (R4F on a causal LM)
            refused[name] = str(exc)
            del methods[name]
            continue
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def step(method=method, optimizer=optimizer) -> None:
            method.step(model, batch)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        steps[name] = step
    timers = {name: functools.partial(time_step, step, torch.device("cpu")) for name, step in steps.items()}
    times, errors = take_turns(timers, turns, warmup)
    if errors:
        raise RuntimeError(f"methods failed on {head}: {errors}")
    rows = []
    for name in times:
        ratios = [t / v for t, v in zip(times[name], times["vanilla"])]
        ratio, ideal = statistics.median(ratios), methods[name].passes
        low, high = median_interval(ratios) or (ratio, ratio)
        rows.append(
            {
                "method": name,
                "median_step_s": statistics.median(times[name]),
                "ratio": ratio,
                "ratio_interval": [low, high],
                "ideal": ideal,
                "overhead": ratio / ideal,
                "overhead_interval": [low / ideal, high / ideal],
            }
        )
    settings = {"batch_size": batch_size, "seq_len": seq_len, "turns": turns, "warmup": warmup}
    return {"head": head, **settings, "rows": rows, "refused": refused}


def table(result: dict) -> str:
    lines = [
        f"{result['head']} ({result['batch_size']} x {result['seq_len']} tokens, {result['turns']} turns)",
        "method   step s  ratio  95% interval  ideal  overhead",
    ]
    for r in result["rows"]:
        low, high = r["ratio_interval"]
        lines.append(
            f"{r['method']:<8} {r['median_step_s']:6.3f}  {r['ratio']:5.2f}  {low:5.2f}-{high:<5.2f}    "
            f"{r['ideal']:5.2f}  {r['overhead']:5.3f}"
        )
    lines += [f"{name:<8} refused: {reason}" for name, reason in result.get("refused", {}).items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", nargs="+", default=["token-classification", "causal-lm"])
    parser.add_argument("--methods", nargs="+", default=list_methods(), help="methods to time (vanilla always)")
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--model", help="token-classification model folder (default: the packaged MiniLM)")
    parser.add_argument("--output", help="write the results to this JSON file")
    parser.add_argument(
        "--system-malloc", action="store_true", help="leave glibc malloc as it is (advlm.host_memory; the CLI sets it)"
    )
    args = parser.parse_args()
    if not args.system_malloc:
        keep_freed_memory()
    results = {"environment": describe("cpu"), "heads": []}
    for head in args.heads:
        result = measure(head, args.turns, args.warmup, args.batch_size, args.seq_len, args.model, args.methods)
        print(table(result), flush=True)
        results["heads"].append(result)
        if args.output:
            Path(args.output).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
