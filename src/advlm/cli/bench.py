"""`advlm bench`: a grid of runs (tasks x methods x seeds, from a YAML file), each method's cost per step, and the
report: quality with paired differences, robustness, cost, plots and a Markdown page, from one JSON per run under
benchmarks/results/<hardware>/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub) -> None:
    from advlm.cli.options import nonnegative_int, positive_int

    p = sub.add_parser("bench", help="run a benchmark grid and the cost table", description=__doc__)
    p.add_argument(
        "--grid",
        default="quick",
        help="a grid YAML file, or NAME for benchmarks/grids/NAME.yaml under the working directory (default: quick: "
        "SST-2 slice, 5 methods, 2 seeds, about 20 minutes on 2 CPU cores)",
    )
    p.add_argument("--quick", action="store_const", const="quick", dest="grid", help="same as --grid quick")
    p.add_argument("--tasks", nargs="+", help="run only these of the grid's tasks (default: all)")
    p.add_argument("--methods", nargs="+", help="run only these of the grid's methods (default: all)")
    p.add_argument("--seeds", nargs="+", type=nonnegative_int, help="run only these of the grid's seeds (default: all)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available); bf16 on cuda")
    p.add_argument("--results", default="benchmarks/results", help="results root (default: benchmarks/results)")
    p.add_argument("--docs", help="where the report goes (default: report.md in the results root)")
    p.add_argument("--skip-quality", action="store_true", help="do not run the grid")
    p.add_argument("--skip-cost", action="store_true", help="do not measure the cost table")
    p.add_argument("--render-only", action="store_true", help="only re-render tables, plots and docs")
    p.add_argument(
        "--cost-methods",
        nargs="+",
        help="the cost table's rows: method names, each optionally with settings, e.g. smart,bregman=false "
        "(default: every method)",
    )
    p.add_argument("--cost-batch-size", type=positive_int, help="cost batch size (default: 32 on GPU, 8 on CPU)")
    p.add_argument("--cost-seq-len", type=positive_int, default=128, help="cost sequence length (default: 128)")
    p.add_argument(
        "--cost-turns",
        type=positive_int,
        help="measured turns, one step of each method per turn (default: 100 GPU, 20 CPU)",
    )
    p.add_argument("--data-dir", help="folder of the tasks' data")
    p.add_argument("--model", help="model folder (default: the packaged MiniLM)")
    p.add_argument("--jobs", type=positive_int, default=1, help="grid runs at once, in worker processes (default: 1)")
    p.set_defaults(func=run)


def cost_settings(args: argparse.Namespace, gpu: bool) -> dict:
    return {
        "batch_size": args.cost_batch_size or (32 if gpu else 8),
        "seq_len": args.cost_seq_len,
        "turns": args.cost_turns or (100 if gpu else 20),
        "warmup": 10 if gpu else 2,
    }


def cost_kinds(args: argparse.Namespace) -> list:
    """The cost table's rows, each method and setting checked now, before any work (vanilla first: the ratios'
    denominator)."""
    from advlm.bench.cost import CostKind
    from advlm.errors import AdvlmError
    from advlm.methods import list_methods

    kinds = [CostKind.parse("method:" + name) for name in (args.cost_methods or list_methods())]
    for kind in kinds:
        try:
            kind.build()
        except AdvlmError as e:
            raise AdvlmError(f"--cost-methods {kind.label.removeprefix('method:')}: {e}") from None
        except (TypeError, ValueError) as e:
            raise AdvlmError(
                f"--cost-methods {kind.label.removeprefix('method:')}: {e}; write NAME,key=value"
            ) from None
    if kinds[0].method != "vanilla":
        kinds.insert(0, CostKind("vanilla"))
    return kinds


def measure_cost(args: argparse.Namespace, kinds: list, device: str, env: dict, cost_file: Path) -> None:
    """The cost table's measurements into `cost_file` (written whole or not at all); a table in which every row
    failed is a failure and leaves an earlier file as it was."""
    from advlm import atomic
    from advlm.bench.cost import measure_costs
    from advlm.errors import RunFailed

    settings = cost_settings(args, device == "cuda")
    cost = {"settings": settings, "environment": env, **measure_costs(kinds, settings, device, args.model)}
    measured = [row for row in cost["results"] if "error" not in row]
    if not measured:
        errors = "; ".join(f"{row['kind']}: {row['error']}" for row in cost["results"])
        raise RunFailed(f"the cost table measured nothing ({errors}); {cost_file} is left as it was")
    atomic.write_text(cost_file, json.dumps(cost, indent=2))


def check_cost_shape(args: argparse.Namespace) -> None:
    """The cost batch fits the model: its sequence length within the model's positions."""
    from transformers import AutoConfig

    from advlm.modeling import check_max_length, resolve_model

    model, _ = resolve_model(args.model)
    check_max_length(AutoConfig.from_pretrained(model), args.cost_seq_len, model, flag="--cost-seq-len")


def print_tables(results: Path, cost_file: Path) -> None:
    from advlm.bench.tables import by_grid, cost_failures, cost_rows, load_runs, markdown, ordered_methods, quality_rows

    for grid, runs in by_grid(load_runs(results)).items():
        methods = ordered_methods(runs)
        print(f"grid {grid}:", markdown(["task", *methods], quality_rows(runs, methods, sep="; ")), sep="\n")
    if cost_file.exists():
        cost = json.loads(cost_file.read_text())
        print(markdown(*cost_rows(cost)), *cost_failures(cost), sep="\n")


def run(args: argparse.Namespace) -> int:
    import torch

    from advlm.bench.environment import describe
    from advlm.bench.grid import load_grid, run_grid
    from advlm.bench.report import plot_folder, write_docs
    from advlm.errors import AdvlmError

    wants_grid = not (args.render_only or args.skip_quality)
    grid = load_grid(args.grid).only(args.tasks, args.methods, args.seeds) if wants_grid else None
    from advlm.paths import folder_problem

    problem = Path(args.results).exists() and folder_problem(args.results)
    if problem:
        raise AdvlmError(f"--results {args.results} {problem}; pass the results folder")
    kinds = cost_kinds(args) if not (args.render_only or args.skip_cost) else []
    if kinds:
        check_cost_shape(args)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise AdvlmError("--device cuda but no CUDA device is visible; use --device cpu")
    env = describe(device)
    results = Path(args.results) / env["hardware"]
    results.mkdir(parents=True, exist_ok=True)
    cost_file = results / "cost.json"
    if grid and not args.skip_quality:
        run_grid(grid, results, args.data_dir, args.model, jobs=args.jobs)
    if not args.render_only and not args.skip_cost:
        measure_cost(args, kinds, device, env, cost_file)
    # plots for this hardware; with --render-only, for every hardware folder (results copied from elsewhere)
    for folder in sorted(p for p in Path(args.results).iterdir() if p.is_dir()) if args.render_only else [results]:
        plot_folder(folder)
    print_tables(results, cost_file)
    print(f"report: {write_docs(Path(args.results), Path(args.docs or Path(args.results) / 'report.md'))}")
    return 0
