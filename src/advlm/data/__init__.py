"""Data plumbing shared by the task kinds: finding and reading files with line numbers, tokenized datasets
and per-batch padding. The tasks themselves are in `advlm.tasks`."""

from advlm.data.collate import PaddingCollator, TokenizedDataset, make_collator
from advlm.data.loading import resolve_data_dir

__all__ = ["PaddingCollator", "TokenizedDataset", "make_collator", "resolve_data_dir"]
