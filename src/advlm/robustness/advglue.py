"""Evaluation on AdvGLUE-format files (Wang et al., NeurIPS 2021 Datasets and Benchmarks, "Adversarial GLUE").

A file is one JSON object keyed by task (`sst2`, `qqp`, `mnli`, `mnli-mm`, `qnli`, `rte`), each a list of
records with `idx`, an integer `label` and the task's text fields (sst2 `sentence`; qqp `question1`,
`question2`; mnli/mnli-mm `premise`, `hypothesis`; qnli `question`, `sentence`; rte `sentence1`,
`sentence2`). Integer labels index the task's label names (GLUE TSVs use the names themselves); a model's
outputs are matched to those names through its config's `label2id`, so a model whose classes are ordered
differently is still scored correctly.
"""

from __future__ import annotations

import json
from pathlib import Path

from advlm.errors import AdvlmError
from advlm.tasks.classification import ClassificationTask as Task
from advlm.tasks.classification import Example, output_order

ADVGLUE_TASKS = ("sst2", "qqp", "mnli", "mnli-mm", "qnli", "rte")


def load_advglue(path: str | Path, task: Task) -> list[Example]:
    from advlm.paths import file_problem

    file = Path(path)
    problem = file_problem(file)
    if problem:
        raise AdvlmError(f"AdvGLUE file {file} {problem}; pass an AdvGLUE JSON file to --advglue")
    if task.name not in ADVGLUE_TASKS:
        raise AdvlmError(f"AdvGLUE has no task '{task.name}'; it covers {', '.join(ADVGLUE_TASKS)}")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise AdvlmError(f"AdvGLUE file {file} is not UTF-8 text (byte {e.start}); expected one JSON object") from None
    except json.JSONDecodeError as e:
        raise AdvlmError(f"{file} is not valid JSON ({e.msg} at line {e.lineno}); expected one JSON object") from None
    if not isinstance(data, dict):
        raise AdvlmError(f"{file} must hold one JSON object keyed by task, not a {type(data).__name__}")
    if task.name not in data:
        raise AdvlmError(f"{file} has no '{task.name}' key (it has: {', '.join(data) or 'none'})")
    records = data[task.name]
    if not isinstance(records, list) or not records:
        raise AdvlmError(f"{file}: '{task.name}' must be a non-empty list of records")
    examples = []
    for n, record in enumerate(records):
        where = f"{file}: {task.name} record {record.get('idx', n) if isinstance(record, dict) else n}"
        if not isinstance(record, dict):
            raise AdvlmError(f"{where} is not a JSON object")
        missing = [f for f in task.text_fields if not isinstance(record.get(f), str)]
        if missing:
            raise AdvlmError(f"{where} is missing text field(s) {', '.join(missing)}")
        label = record.get("label")
        if not isinstance(label, int) or isinstance(label, bool):
            raise AdvlmError(f"{where}: label {label!r} must be an integer id 0..{task.num_labels - 1}")
        examples.append(Example(tuple(record[f] for f in task.text_fields), task.parse_label(label, where)))
    return examples


def require_task_order(model, task: Task) -> None:
    """Measures that compare argmax with label ids need the model's classes in the task's order."""
    order = output_order(getattr(model, "config", None), task)
    if order != list(range(task.num_labels)):
        raise AdvlmError(
            f"the model orders its classes {order} relative to {task.name}'s labels {list(task.label_names)}; "
            "fine-tune it with advlm (or fix its config's label2id) before measuring robustness"
        )
