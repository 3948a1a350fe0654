"""Headline numbers of the papers (FreeLB's Table 1 dev medians, SMART's and TextAT's GLUE tables), for context.
They are other models (RoBERTa-large, BERT-base) on other runs: context, not targets for MiniLM."""

PAPERS = {
    "FreeLB paper, RoBERTa-large dev (median of 5)": {
        "vanilla": {"rte": 85.61, "sst2": 96.56, "mrpc": 90.69, "cola": 67.57, "stsb": 92.20},
        "pgd": {"rte": 87.41, "sst2": 96.44, "mrpc": 90.93, "cola": 69.67, "stsb": 92.43},
        "freeat": {"rte": 86.69, "sst2": 96.10, "mrpc": 90.69, "cola": 68.80, "stsb": 92.40},
        "freelb": {"rte": 88.13, "sst2": 96.79, "mrpc": 91.42, "cola": 71.12, "stsb": 92.67},
    },
    "SMART paper, BERT-base dev": {
        "vanilla": {"rte": 63.5, "mrpc": 84.1, "cola": 54.7, "sst2": 92.9, "stsb": 89.2},
        "smart": {"rte": 71.2, "mrpc": 87.7, "cola": 59.1, "sst2": 93.0, "stsb": 90.0},
    },
    "TextAT paper, BERT-base test": {
        "freelb": {"rte": 70.1, "cola": 54.5, "sst2": 93.6},
        "textat": {"rte": 71.0, "cola": 55.9, "sst2": 94.5},
    },
}


def reported_gains() -> dict[str, dict[str, tuple[str, float]]]:
    """method -> task -> (paper, the method's score minus that paper's own vanilla), in points. Only papers
    with a vanilla row: the TextAT paper compares TextAT with FreeLB, not with vanilla, so TextAT has none."""
    gains: dict[str, dict[str, tuple[str, float]]] = {}
    for paper, cols in PAPERS.items():
        vanilla = cols.get("vanilla")
        for method, scores in cols.items():
            if vanilla and method != "vanilla":
                for task, score in scores.items():
                    if task in vanilla:
                        gains.setdefault(method, {})[task] = (paper.split(",")[0], round(score - vanilla[task], 2))
    return gains
