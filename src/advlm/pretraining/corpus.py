"""Plain-text corpora for pre-training: one sentence or document per line, checked and cut to length.

`glue` builds an English corpus with nothing to download: the unique training sentences of the GLUE tasks
in the data directory. Lines longer than the model's maximum are split into consecutive chunks (and
counted, so the run can report them); word boundaries are kept per chunk for whole-word masking: English
words are whitespace-separated (WordPiece '##' pieces stay with their word), Chinese words come from jieba.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from advlm.errors import AdvlmError


@dataclass
class Chunk:
    ids: list[int]  # with special tokens
    special: list[bool]
    spans: list[tuple[int, int]]  # word spans over token positions


def read_lines(path: str | Path, max_lines: int | None = None) -> list[str]:
    from advlm.paths import file_problem

    file = Path(path)
    problem = file_problem(file)
    if problem:
        raise AdvlmError(f"corpus file {file} {problem}; pass a text file with one sentence per line or 'glue'")
    raw = file.read_bytes()
    if not raw.strip():
        raise AdvlmError(f"corpus file {file} is empty; it needs one sentence or document per line")
    if b"\x00" in raw[:65536]:
        raise AdvlmError(f"corpus file {file} looks binary (NUL bytes); pass a UTF-8 text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise AdvlmError(f"corpus file {file} is not UTF-8 text (byte {e.start}); convert it to UTF-8") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[:max_lines] if max_lines else lines


def glue_corpus(data_dir: str | None = None) -> list[str]:
    from advlm.tasks.glue import GLUE_TASKS

    seen: dict[str, None] = {}
    for task in GLUE_TASKS.values():
        if "train" not in task.splits or task.name == "mnli-mm":
            continue
        try:
            examples = task.load("train", data_dir)
        except AdvlmError:
            continue  # a task whose files are not there
        for ex in examples:
            for text in ex.texts:
                seen.setdefault(text.strip(), None)
    if not seen:
        raise AdvlmError("no GLUE training files found for the glue corpus; pass --data-dir or --corpus FILE")
    return list(seen)


def _word_ids(text: str, offsets: list[tuple[int, int]], language: str) -> list[int]:
    """The word index of each token (by its start offset)."""
    if language == "zh":
        try:
            import jieba
        except ImportError:
            raise AdvlmError("Chinese whole-word masking needs the package jieba: pip install jieba==0.42.1") from None
        bounds, pos = [], 0
        for word in jieba.cut(text):
            bounds.append((pos, pos + len(word)))
            pos += len(word)
    else:
        bounds, pos = [], 0
        for word in text.split():
            start = text.index(word, pos)
            bounds.append((start, start + len(word)))
            pos = start + len(word)
    out, w = [], 0
    for start, _ in offsets:
        while w < len(bounds) - 1 and start >= bounds[w][1]:
            w += 1
        out.append(w)
    return out


def encode(lines: list[str], tokenizer, max_length: int, language: str = "en") -> tuple[list[Chunk], int]:
    """Chunks of at most `max_length` tokens (special tokens included); also the number of lines split."""
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    prefix, suffix = [t for t in (first,) if t is not None], [t for t in (last,) if t is not None]
    room = max_length - len(prefix) - len(suffix)
    enc = tokenizer(lines, add_special_tokens=False, return_offsets_mapping=True)
    chunks, split = [], 0
    for text, ids, offsets in zip(lines, enc["input_ids"], enc["offset_mapping"]):
        if not ids:
            continue
        words = _word_ids(text, offsets, language)
        split += len(ids) > room
        for a in range(0, len(ids), room):
            piece, piece_words = ids[a : a + room], words[a : a + room]
            full = prefix + piece + suffix
            special = [True] * len(prefix) + [False] * len(piece) + [True] * len(suffix)
            start_at = len(prefix)
            spans, start = [], None
            for k, w in enumerate(piece_words):
                if k == 0 or w != piece_words[k - 1]:
                    if start is not None:
                        spans.append((start_at + start, start_at + k))
                    start = k
            spans.append((start_at + start, start_at + len(piece_words)))
            chunks.append(Chunk(full, special, spans))
    return chunks, split
