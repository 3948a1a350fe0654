"""The GLUE task table (Wang et al., ICLR 2019): files, text columns, label names and official metrics.

Each task names its text fields canonically (the names AdvGLUE and the HF `glue` builder use); `tsv_columns`
maps those names to the columns of the original GLUE TSV files, whose headers differ from task to task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from advlm.errors import AdvlmError

NLI3 = ("entailment", "neutral", "contradiction")
NLI2 = ("entailment", "not_entailment")
BINARY = ("0", "1")


@dataclass(frozen=True)
class Task:
    name: str
    folder: str  # sub-folder of the GLUE data directory
    text_fields: tuple[str, ...]  # canonical names, in model input order
    tsv_columns: dict[str, str]  # canonical name (and "label") -> TSV header name
    label_names: tuple[str, ...] | None  # None for regression
    metrics: tuple[str, ...]
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "dev": "dev"})
    tsv_header: tuple[str, ...] | None = None  # for files without a header row (CoLA)

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)

    @property
    def primary_metric(self) -> str:
        """The metric that picks the best checkpoint (the first official one)."""
        return self.metrics[0]


def _pair(a: str, b: str, label: str) -> dict[str, str]:
    return {"sentence1": a, "sentence2": b, "label": label}


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task(
            "cola",
            "CoLA",
            ("sentence",),
            {"sentence": "sentence", "label": "label"},
            BINARY,
            ("mcc",),
            tsv_header=("source", "label", "original_mark", "sentence"),
        ),
        Task("sst2", "SST-2", ("sentence",), {"sentence": "sentence", "label": "label"}, BINARY, ("accuracy",)),
        Task(
            "mrpc",
            "MRPC",
            ("sentence1", "sentence2"),
            _pair("#1 String", "#2 String", "Quality"),
            BINARY,
            ("accuracy", "f1"),
        ),
        Task(
            "stsb",
            "STS-B",
            ("sentence1", "sentence2"),
            _pair("sentence1", "sentence2", "score"),
            None,
            ("pearson", "spearman"),
        ),
        Task(
            "qqp",
            "QQP",
            ("question1", "question2"),
            {"question1": "question1", "question2": "question2", "label": "is_duplicate"},
            BINARY,
            ("accuracy", "f1"),
        ),
        Task(
            "mnli",
            "MNLI",
            ("premise", "hypothesis"),
            {"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"},
            NLI3,
            ("accuracy",),
            splits={"train": "train", "dev": "dev_matched"},
        ),
        Task(
            "mnli-mm",
            "MNLI",
            ("premise", "hypothesis"),
            {"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"},
            NLI3,
            ("accuracy",),
            splits={"train": "train", "dev": "dev_mismatched"},
        ),
        Task(
            "qnli",
            "QNLI",
            ("question", "sentence"),
            {"question": "question", "sentence": "sentence", "label": "label"},
            NLI2,
            ("accuracy",),
        ),
        Task("rte", "RTE", ("sentence1", "sentence2"), _pair("sentence1", "sentence2", "label"), NLI2, ("accuracy",)),
        Task(
            "wnli", "WNLI", ("sentence1", "sentence2"), _pair("sentence1", "sentence2", "label"), BINARY, ("accuracy",)
        ),
        # GLUE's diagnostic set: an MNLI model is evaluated on it with Matthews correlation. Only the
        # labelled release (diagnostic-full.tsv) can be scored; there is no training split.
        Task(
            "ax",
            "diagnostic",
            ("premise", "hypothesis"),
            {"premise": "Premise", "hypothesis": "Hypothesis", "label": "Label"},
            NLI3,
            ("mcc",),
            splits={"dev": "diagnostic-full"},
        ),
    ]
}

ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli_mm": "mnli-mm", "diagnostic": "ax"}


def get_task(name: str) -> Task:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in TASKS:
        raise AdvlmError(f"unknown task '{name}'; choose one of: {', '.join(TASKS)}")
    return TASKS[key]
