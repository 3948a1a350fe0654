"""Quality per cost: what each method buys over vanilla for what it costs, per task of one grid.

For each task and method, the paired gain over vanilla (the primary dev metric x 100, each seed's difference
from vanilla's run on the same seed: median, and the t interval of the mean when there are two seeds or more)
against the method's measured cost (its step time over vanilla's, the median of the per-turn ratios of a cost
file, with their 95% interval). A table and a plot: a method worth its price sits up and to the left.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from advlm.bench.paired import confidence_interval, median_interval, seed_differences
from advlm.bench.tables import common_seeds, ordered_methods, turn_ratios


def cost_ratios(cost: dict) -> dict[str, tuple[float, tuple[float, float] | None]]:
    """Method name -> (median step-time ratio to vanilla, its 95% interval or None), from a cost file's turns
    (or its medians when the kinds did not take turns). Only plain method kinds (no overridden settings)."""
    rows = {r["kind"]: r for r in cost["results"] if "median_s" in r}
    base = rows.get("method:vanilla")
    out = {}
    for kind, row in rows.items():
        name = kind.removeprefix("method:")
        if not kind.startswith("method:") or "," in name or base is None:
            continue
        per_turn = turn_ratios(cost, kind, "method:vanilla")
        if per_turn:
            out[name] = (statistics.median(per_turn), median_interval(per_turn))
        else:
            out[name] = (row["median_s"] / base["median_s"], None)
    return out


SENTENCE_LEVEL = ("classification", "regression")


def value_rows(runs: list[dict], cost: dict, kinds: tuple[str, ...] = SENTENCE_LEVEL) -> list[dict]:
    """One row per task and method (vanilla's included, at gain 0 and cost 1): gain, its interval, cost. Only
    tasks of `kinds`: a cost file is measured on one head (`advlm bench`'s on the sentence classifier)."""
    from advlm.tasks import get_task

    kept, _ = common_seeds(runs)
    diffs, ratios = seed_differences(kept), cost_ratios(cost)
    tasks = [t for t in dict.fromkeys(r["task"] for r in kept) if get_task(t).kind in kinds]
    rows = []
    for task in tasks:
        vanilla_seeds = sum(r["task"] == task and r["method"] == "vanilla" for r in kept)
        for method in ordered_methods(kept):
            d = np.zeros(vanilla_seeds) if method == "vanilla" else diffs.get((task, method))
            if d is None or not len(d) or method not in ratios:
                continue
            ratio, interval = ratios[method]
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
