"""The benchmark: a grid of tasks x methods x seeds (quality, robustness), the cost of every method per step,
and the report (tables, plots, a Markdown page) rendered from one JSON per run."""
