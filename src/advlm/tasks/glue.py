"""The GLUE tasks (Wang et al., ICLR 2019) as instances of the classification kind: files, text columns, label
names and official metrics.

Each task names its text fields canonically (the names AdvGLUE and the HF `glue` builder use); `tsv_columns`
maps those names to the columns of the original GLUE TSV files, whose headers differ from task to task. Files
lie in `<data-dir>/glue/<TASK>/` (or `<data-dir>/<TASK>/` when `--data-dir` is a folder of GLUE tasks).
"""

from __future__ import annotations

from advlm.tasks.classification import ClassificationTask

NLI3 = ("entailment", "neutral", "contradiction")
NLI2 = ("entailment", "not_entailment")
BINARY = ("0", "1")
TRAIN_DEV = {"train": "train", "dev": "dev"}


def glue(name: str, folder: str, fields: dict[str, str], labels, metrics, splits=TRAIN_DEV, **kw) -> ClassificationTask:
    """`fields`: canonical text field names (in model input order) and "label" -> the TSV header names."""
    return ClassificationTask(
        name=name,
        folder=f"glue/{folder}",
        splits=dict(splits),
        text_fields=tuple(k for k in fields if k != "label"),
        tsv_columns=fields,
        label_names=labels,
        metrics=metrics,
        **kw,
    )


def _pair(a: str, b: str, label: str) -> dict[str, str]:
    return {"sentence1": a, "sentence2": b, "label": label}


_NLI = {"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"}

GLUE_TASKS: dict[str, ClassificationTask] = {
    t.name: t
    for t in [
        glue(
            "cola",
            "CoLA",
            {"sentence": "sentence", "label": "label"},
            BINARY,
            ("mcc",),
            tsv_header=("source", "label", "original_mark", "sentence"),
        ),
        glue("sst2", "SST-2", {"sentence": "sentence", "label": "label"}, BINARY, ("accuracy",)),
        glue("mrpc", "MRPC", _pair("#1 String", "#2 String", "Quality"), BINARY, ("accuracy", "f1")),
        glue(
            "stsb", "STS-B", _pair("sentence1", "sentence2", "score"), None, ("pearson", "spearman"), score_range=(0, 5)
        ),
        glue(
            "qqp",
            "QQP",
            {"question1": "question1", "question2": "question2", "label": "is_duplicate"},
            BINARY,
            ("accuracy", "f1"),
        ),
        glue("mnli", "MNLI", _NLI, NLI3, ("accuracy",), splits={"train": "train", "dev": "dev_matched"}),
        glue("mnli-mm", "MNLI", _NLI, NLI3, ("accuracy",), splits={"train": "train", "dev": "dev_mismatched"}),
        glue(
            "qnli",
            "QNLI",
            {"question": "question", "sentence": "sentence", "label": "label"},
            NLI2,
            ("accuracy",),
        ),
        glue("rte", "RTE", _pair("sentence1", "sentence2", "label"), NLI2, ("accuracy",)),
        glue("wnli", "WNLI", _pair("sentence1", "sentence2", "label"), BINARY, ("accuracy",)),
        # GLUE's diagnostic set: an MNLI model is evaluated on it with Matthews correlation. Only the
        # labelled release (diagnostic-full.tsv) can be scored; there is no training split.
        glue(
            "ax",
            "diagnostic",
            {"premise": "Premise", "hypothesis": "Hypothesis", "label": "Label"},
            NLI3,
            ("mcc",),
            splits={"dev": "diagnostic-full"},
        ),
    ]
}

GLUE_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli_mm": "mnli-mm", "diagnostic": "ax"}
