"""Quality per cost: what each method buys over vanilla for what it costs, per task of one grid.

For each task and method, the paired gain over vanilla (the primary dev metric x 100, each seed's difference
from vanilla's run on the same seed: median, and the t interval of the mean when there are two seeds or more)
against the method's measured cost (its step time over vanilla's, the median of the per-turn ratios of a cost
file, with their 95% interval). A table and a plot: a method worth its price sits up and to the left. A method
whose grid sets hyper-parameters that no cost row was measured with is left out (its cost is not its default's).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np

from advlm.bench.paired import confidence_interval, median_interval, seed_differences
from advlm.bench.tables import common_seeds, ordered_methods, turn_ratios


def cost_ratios(cost: dict) -> dict[tuple[str, str], tuple[float, tuple[float, float] | None]]:
    """(method name, its settings) -> (median step-time ratio to vanilla, its 95% interval or None), from a cost
    file's turns (or its medians when the kinds did not take turns); `settings` as `settings_key` makes it."""
    from advlm.bench.cost import CostKind

    rows = {r["kind"]: r for r in cost["results"] if "median_s" in r}
    base = rows.get("method:vanilla")
    out = {}
    for kind, row in rows.items():
        if not kind.startswith("method:") or base is None:
            continue
        try:
            parsed = CostKind.parse(kind)
            key = (parsed.method, settings_key(parsed.method, dict(parsed.overrides)))
        except Exception:  # a method or setting this code no longer has
            continue
        per_turn = turn_ratios(cost, kind, "method:vanilla")
        if per_turn:
            out[key] = (statistics.median(per_turn), median_interval(per_turn))
        else:
            out[key] = (row["median_s"] / base["median_s"], None)
    return out


def settings_key(method: str, settings: dict) -> str:
    """The method's full hyper-parameters with `settings` applied, as text: a grid's runs and a cost row match
    when they agree on every one (FreeLB-3's runs are not priced at FreeLB-2's cost)."""
    from advlm.methods import build_method

    return json.dumps(build_method(method, **settings).config(), sort_keys=True, default=str)


def pinned(run: dict) -> dict:
    """The settings a run's grid gave its method (beyond the defaults)."""
    grid = run.get("grid", {})
    out = {**grid.get("method_args", {}).get(run["method"], {})}
    out.update(grid.get("per_task_method_args", {}).get(run["task"], {}).get(run["method"], {}))
    return out


SENTENCE_LEVEL = ("classification", "regression")


def value_rows(runs: list[dict], cost: dict | list[dict], kinds: tuple[str, ...] = SENTENCE_LEVEL) -> list[dict]:
    """One row per task and method (vanilla's included, at gain 0 and cost 1): gain, its interval, cost (from
    the first of the cost files that measured the method at the grid's settings). Only tasks of `kinds`: a cost
    file is measured on one head (`advlm bench`'s on the sentence classifier)."""
    from advlm.tasks import get_task

    kept, _ = common_seeds(runs)
    ratios: dict = {}
    for one in reversed(cost if isinstance(cost, list) else [cost]):
        ratios.update(cost_ratios(one))
    diffs = seed_differences(kept)
    tasks = [t for t in dict.fromkeys(r["task"] for r in kept) if get_task(t).kind in kinds]
    rows = []
    for task in tasks:
        vanilla_seeds = sum(r["task"] == task and r["method"] == "vanilla" for r in kept)
        for method in ordered_methods(kept):
            d = np.zeros(vanilla_seeds) if method == "vanilla" else diffs.get((task, method))
            run = next(r for r in kept if r["task"] == task and r["method"] == method)
            key = (method, settings_key(method, pinned(run)))
            if d is None or not len(d) or key not in ratios:  # no cost measured at the grid's settings
                continue
            ratio, interval = ratios[key]
            rows.append(
                {
                    "task": task,
                    "method": method,
                    "seeds": len(d),
                    "gain": float(np.median(d)),  # seed_differences are x 100 already
                    "gain_interval": list(confidence_interval(d)) if len(d) >= 2 else None,
                    "cost": ratio,
                    "cost_interval": list(interval) if interval else None,
                }
            )
    return rows


def value_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(head, body) for `tables.markdown`."""
    body = []
    for r in rows:
        gain = f"{r['gain']:+.2f}"
        if r["gain_interval"] and r["method"] != "vanilla":
            gain += f" [{r['gain_interval'][0]:+.2f}, {r['gain_interval'][1]:+.2f}]"
        cost = f"{r['cost']:.2f}"
        if r["cost_interval"] and r["method"] != "vanilla":
            cost += f" ({r['cost_interval'][0]:.2f}-{r['cost_interval'][1]:.2f})"
        body.append([r["task"], r["method"], gain, cost, str(r["seeds"])])
    return [
        "task",
        "method",
        "gain over vanilla x 100, median [95% interval of the mean]",
        "cost (x vanilla)",
        "seeds",
    ], body


def value_plot(rows: list[dict], out: Path, title: str) -> Path:
    """Per task, each method at (cost, gain) with both intervals as error bars; a line at zero gain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(7 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for r in (r for r in rows if r["task"] == task):
            xerr = (
                [[r["cost"] - r["cost_interval"][0]], [r["cost_interval"][1] - r["cost"]]]
                if r["cost_interval"]
                else None
            )
            yerr = (
                [[r["gain"] - r["gain_interval"][0]], [r["gain_interval"][1] - r["gain"]]]
                if r["gain_interval"]
                else None
            )
            ax.errorbar(r["cost"], r["gain"], xerr=xerr, yerr=yerr, fmt="o", capsize=3, label=r["method"])
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.legend(fontsize=8, loc="best")
        ax.set_xlabel("cost: step time over vanilla's")
        ax.set_ylabel("gain over vanilla (metric x 100)")
        ax.set_title(f"{title}: {task}")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
