"""Tasks by kind: one module per head (classification and regression, token classification, multiple choice,
question answering, causal LM), each owning its files, tokenization, model head, collation and metric; the
built-in tasks are instances of them (GLUE, CoNLL-2003, CommonsenseQA, ARC), and `--task-type` makes one of
the user's own files."""

from __future__ import annotations

import dataclasses

from advlm.errors import AdvlmError
from advlm.tasks.base import TaskKind
from advlm.tasks.causal_lm import CausalLMTask
from advlm.tasks.classification import ClassificationTask, Example, tokenize_examples
from advlm.tasks.glue import GLUE_ALIASES, GLUE_TASKS
from advlm.tasks.multiple_choice import MultipleChoiceTask
from advlm.tasks.question_answering import QuestionAnsweringTask
from advlm.tasks.token_classification import CONLL2003_TAGS, TokenClassificationTask

KINDS = (
    "classification",
    "regression",
    "token-classification",
    "multiple-choice",
    "question-answering",
    "causal-lm",
)


def _arc(name: str, folder: str) -> MultipleChoiceTask:
    return MultipleChoiceTask(
        name,
        folder=f"arc/{folder}",
        splits={
            split: f"{folder}-{file}.jsonl" for split, file in (("train", "Train"), ("dev", "Dev"), ("test", "Test"))
        },
    )


TASKS: dict[str, TaskKind] = {
    **GLUE_TASKS,
    "conll2003": TokenClassificationTask(
        "conll2003",
        folder="conll2003",
        splits={"train": "eng.train", "dev": "eng.testa", "test": "eng.testb"},
        tag_names=CONLL2003_TAGS,
        iob1=True,
        columns=4,
    ),
    "commonsenseqa": MultipleChoiceTask(
        "commonsenseqa",
        folder="commonsenseqa",
        splits={"train": "train_rand_split.jsonl", "dev": "dev_rand_split.jsonl"},
    ),
    "arc-easy": _arc("arc-easy", "ARC-Easy"),
    "arc-challenge": _arc("arc-challenge", "ARC-Challenge"),
}
ALIASES = {**GLUE_ALIASES, "conll": "conll2003", "csqa": "commonsenseqa"}


def _custom(kind: str, name: str, text_fields: str | None, label_field: str | None, doc_stride: int | None):
    if kind in ("classification", "regression"):
        fields = tuple(f.strip() for f in (text_fields or "text").split(",") if f.strip())
        if not 1 <= len(fields) <= 2:
            raise AdvlmError(f"--text-fields takes one or two field names (a,b), got {text_fields!r}")
        regression = kind == "regression"
        return ClassificationTask(
            name,
            text_fields=fields,
            label_field=label_field or "label",
            learn_labels=not regression,
            metrics=("pearson", "spearman") if regression else ("accuracy", "macro_f1"),
        )
    if text_fields or label_field:
        raise AdvlmError(f"--text-fields and --label-field are for classification and regression data, not {kind}")
    if kind == "question-answering":
        return QuestionAnsweringTask(name, **({} if doc_stride is None else {"doc_stride": doc_stride}))
    return {
        "token-classification": TokenClassificationTask,
        "multiple-choice": MultipleChoiceTask,
        "causal-lm": CausalLMTask,
    }[kind](name)


def get_task(
    name: str | None = None,
    task_type: str | None = None,
    text_fields: str | None = None,
    label_field: str | None = None,
    doc_stride: int | None = None,
) -> TaskKind:
    """A built-in task by name (a fresh copy), or with `task_type` a task of that kind over the user's own
    files (`name` names it in reports; default: the kind)."""
    key = ALIASES.get((name or "").lower(), (name or "").lower())
    if task_type is not None:
        kind = task_type.lower()
        if kind not in KINDS:
            raise AdvlmError(f"unknown task type '{task_type}'; choose one of: {', '.join(KINDS)}")
        if key in TASKS:
            if TASKS[key].kind != kind:
                raise AdvlmError(f"task '{name}' is {TASKS[key].kind}, not {kind}; name your own task otherwise")
        else:
            return _custom(kind, name or kind, text_fields, label_field, doc_stride)
    if not key:
        raise AdvlmError("pass --task (a built-in task) or --task-type KIND with --train-file/--eval-file")
    if key not in TASKS:
        raise AdvlmError(
            f"unknown task '{name}'; choose one of: {', '.join(TASKS)}, or pass --task-type KIND for your own data"
        )
    if text_fields or label_field:
        raise AdvlmError("--text-fields and --label-field describe your own data: pass --task-type classification too")
    task = dataclasses.replace(TASKS[key])
    if doc_stride is not None and isinstance(task, QuestionAnsweringTask):
        task.doc_stride = doc_stride
    return task


__all__ = [
    "KINDS",
    "TASKS",
    "CausalLMTask",
    "ClassificationTask",
    "Example",
    "MultipleChoiceTask",
    "QuestionAnsweringTask",
    "TaskKind",
    "TokenClassificationTask",
    "get_task",
    "tokenize_examples",
]
