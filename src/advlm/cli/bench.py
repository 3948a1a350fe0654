"""`advlm bench`: the quality grid (tasks x methods x seeds), the cost of every method per step, and the
report: tables, plots and docs/benchmarks.md, under benchmarks/results/<hardware>/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub) -> None:
    from advlm.bench.grid import GRIDS

    follow_ups = ", ".join(name for name in GRIDS if name not in ("quick", "full"))
    p = sub.add_parser("bench", help="run the benchmark grid and cost table", description=__doc__)
    p.add_argument(
        "--grid",
        default="quick",
        help="quick (one task, 2 seeds, CPU-sized), full (4 tasks, 7 methods, 5 seeds: a GPU job), or one of the "
        f"follow-ups that advlm/bench/grid.py describes ({follow_ups}) (default: quick)",
    )
    p.add_argument("--quick", action="store_const", const="quick", dest="grid", help="same as --grid quick")
    p.add_argument("--tasks", nargs="+", help="run only these of the grid's tasks (default: all)")
    p.add_argument("--methods", nargs="+", help="run only these of the grid's methods (default: all)")
    p.add_argument("--seeds", nargs="+", type=int, help="run only these of the grid's seeds (default: all)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available); bf16 on cuda")
    p.add_argument("--results", default="benchmarks/results", help="results root (default: benchmarks/results)")
    p.add_argument("--docs", default="docs/benchmarks.md", help="generated report (default: docs/benchmarks.md)")
    p.add_argument("--skip-quality", action="store_true", help="do not run the quality grid")
    p.add_argument("--skip-cost", action="store_true", help="do not measure the cost table")
    p.add_argument("--render-only", action="store_true", help="only re-render tables, plots and docs")
    p.add_argument("--cost-batch-size", type=int, help="cost batch size (default: 32 on GPU, 8 on CPU)")
    p.add_argument("--cost-seq-len", type=int, default=128, help="cost sequence length (default: 128)")
    p.add_argument("--cost-steps", type=int, help="measured steps per kind (default: 50 on GPU, 6 on CPU)")
    p.add_argument(
        "--cost-rounds",
        type=int,
        help="measure every kind this many times, one kind after another, and keep each kind's fastest round "
        "(default: 2 on CPU, where other work slows some rounds; 5 on GPU, where all kinds share one process and "
        "the same kind's rounds differed by up to 37%% on a lent H100)",
    )
    p.add_argument(
        "--cost-turns",
        type=int,
        help="before the rounds, time every kind taking turns, one step each, this many turns: each kind's "
        "ratio to vanilla turn by turn, which drift does not move (default: 100 on GPU, 30 on CPU; 0 skips)",
    )
    p.add_argument("--data-dir", help="folder of GLUE task folders")
    p.add_argument("--model", help="model folder (default: the packaged MiniLM)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="grid runs at once, in worker processes (default: 1); on a GPU a small model leaves room for several",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from advlm.bench.cost import cost_kinds, measure_kinds
    from advlm.bench.environment import describe
    from advlm.bench.grid import GRIDS, run_grid
    from advlm.bench.interleaved import measure_interleaved_kinds
    from advlm.bench.render import (
        cost_table,
        detectable_note,
        load_runs,
        paired_table,
        plots,
        quality_table,
        write_docs,
    )
    from advlm.errors import AdvlmError

    if args.grid not in GRIDS:
        raise AdvlmError(f"unknown grid '{args.grid}'; choose one of: {', '.join(GRIDS)}")
    grid = GRIDS[args.grid].only(args.tasks, args.methods, args.seeds)
    if args.jobs < 1:
        raise AdvlmError(f"--jobs must be at least 1, got {args.jobs}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise AdvlmError("--device cuda but no CUDA device is visible; use --device cpu")
    env = describe(device)
    results = Path(args.results) / env["hardware"]
    results.mkdir(parents=True, exist_ok=True)
    if not args.render_only and not args.skip_quality:
        run_grid(grid, results, args.data_dir, args.model, jobs=args.jobs)
    cost_file = results / "cost.json"
    if not args.render_only and not args.skip_cost:
        gpu = device == "cuda"
        settings = {
            "batch_size": args.cost_batch_size or (32 if gpu else 8),
            "seq_len": args.cost_seq_len,
            "steps": args.cost_steps or (50 if gpu else 6),
            "warmup": 10 if gpu else 2,
        }
        settings["rounds"] = args.cost_rounds or (5 if gpu else 2)
        turns = args.cost_turns if args.cost_turns is not None else (100 if gpu else 30)
        settings.update(interleaved_steps=turns, interleaved_warmup=10 if gpu else 2)
        cost = {"settings": settings, "environment": env, "results": []}

        def save(key: str, value) -> None:  # after every report: an interrupted measurement keeps its results
            cost[key] = value
            cost_file.write_text(json.dumps(cost, indent=2))

        if turns > 0:
            last = measure_interleaved_kinds(
                cost_kinds(), settings, device, args.model, on_result=lambda r: save("interleaved", r)
            )
            if last is None or "error" in last:
                print(f"the kinds taking turns were not measured: {(last or {}).get('error', 'no report')}")
        measure_kinds(cost_kinds(), settings, device, args.model, on_result=lambda r: save("results", r))
    runs = load_runs(results)
    cost = json.loads(cost_file.read_text()) if cost_file.exists() else None
    # plots for this hardware; with --render-only, for every hardware folder (results copied from elsewhere)
    for folder in sorted(p for p in Path(args.results).iterdir() if p.is_dir()) if args.render_only else [results]:
        folder_cost = folder / "cost.json"
        plots(load_runs(folder), json.loads(folder_cost.read_text()) if folder_cost.exists() else None, folder)
    for grid in dict.fromkeys(r["grid"]["name"] for r in runs):
        grid_runs = [r for r in runs if r["grid"]["name"] == grid]
        table, verdicts = quality_table(grid_runs)
        paired = paired_table(grid_runs)
        detectable = detectable_note(grid_runs)
        print(f"grid {grid}:", table, *verdicts, *(["paired by seed:", paired] if paired else []), sep="\n")
        if detectable:
            print(detectable)
    if cost:
        table, notes = cost_table(cost)
        print(table, *notes, sep="\n")
    print(f"report: {write_docs(Path(args.results), Path(args.docs))}")
    return 0
