"""GLUE tasks and user data: the task table, file loading with clear errors, tokenization and collation."""

from advlm.data.collate import TokenizedDataset, tokenize_examples
from advlm.data.loading import Example, load_split, resolve_data_dir
from advlm.data.tasks import TASKS, Task, get_task

__all__ = [
    "TASKS",
    "Example",
    "Task",
    "TokenizedDataset",
    "get_task",
    "load_split",
    "resolve_data_dir",
    "tokenize_examples",
]
