"""Extractive question answering in the SQuAD v1.1 format (no SQuAD file ships here: pass your own files).

Files: SQuAD v1.1 JSON, `{"data": [{"title": ..., "paragraphs": [{"context": ..., "qas": [{"id": ...,
"question": ..., "answers": [{"text": ..., "answer_start": ...}]}]}]}]}`; every answer's text must lie at its
`answer_start` in the context.

Tokenization follows transformers' run_qa: question and context as a pair, the context cut into windows of
`--max-length` tokens overlapping by `--doc-stride`, each window's answer span mapped through the tokens'
character offsets (the first gold answer; a window without it points at its first token, as BERT's [CLS]).
Model: `AutoModelForQuestionAnswering`. Metric: exact match and F1 of SQuAD v1.1 after n-best span
post-processing over all windows of a question (`advlm.tasks.squad`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from advlm.data.collate import TokenizedDataset
from advlm.errors import AdvlmError
from advlm.tasks.base import TaskKind
from advlm.tasks.squad import best_answers, squad_scores


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]  # (text, character start in the context)


@dataclass
class QuestionAnsweringTask(TaskKind):
    doc_stride: int = 32  # tokens shared by consecutive windows of a long context

    kind = "question-answering"
    auto_class = "AutoModelForQuestionAnswering"
    metrics = ("f1", "exact_match")
    suffixes = ("", ".json")

    def read(self, file: Path) -> list[QAExample]:
        try:
            text = file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            raise AdvlmError(f"{file} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise AdvlmError(f"{file}:{e.lineno}: invalid JSON ({e.msg}); expected SQuAD v1.1 JSON") from None
        articles = data.get("data") if isinstance(data, dict) else None
        if not isinstance(articles, list):
            raise AdvlmError(f'{file}: expected SQuAD v1.1 JSON, an object with a "data" list of articles')
        examples = []
        for article in articles:
            for paragraph in article.get("paragraphs", []) if isinstance(article, dict) else []:
                context = paragraph.get("context")
                for qa in paragraph.get("qas", []):
                    examples.append(self._example(file, text, context, qa))
        return examples

    def _example(self, file: Path, text: str, context, qa) -> QAExample:
        qid = str(qa.get("id", "")) if isinstance(qa, dict) else ""
        where = f"{file}:{line_of(text, qid)}"
        if not isinstance(context, str) or not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
            raise AdvlmError(f"{where}: question {qid!r} needs a string context and question (SQuAD v1.1 format)")
        answers = qa.get("answers")
        if not isinstance(answers, list) or not answers:
            raise AdvlmError(f'{where}: question {qid!r} has no answers; give each question "answers": [...]')
        spans = []
        for answer in answers:
            start, span = answer.get("answer_start"), answer.get("text")
            if not isinstance(start, int) or not isinstance(span, str) or context[start : start + len(span)] != span:
                found = context[start : start + len(span)] if isinstance(start, int) and isinstance(span, str) else ""
                raise AdvlmError(
                    f"{where}: question {qid!r}: answer {span!r} is not at answer_start {start!r} of its context "
                    f"(found {found!r}); fix answer_start"
                )
            spans.append((span, start))
        return QAExample(qid, qa["question"], context, tuple(spans))

    def encode(self, tokenizer, examples, max_length: int) -> TokenizedDataset:
        if not getattr(tokenizer, "is_fast", False):
            raise AdvlmError("question answering needs a fast tokenizer (tokenizer.json) for character offsets")
        if not 0 <= self.doc_stride < max_length // 2:
            raise AdvlmError(f"--doc-stride must be in [0, {max_length // 2}) for --max-length {max_length}")
        try:
            encoded = tokenizer(
                [e.question for e in examples],
                [e.context for e in examples],
                truncation="only_second",
                max_length=max_length,
                stride=self.doc_stride,
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
            )
        except Exception as e:  # the tokenizer refuses a question longer than max_length - stride
            raise AdvlmError(f"cannot cut the contexts into windows of {max_length} tokens: {e}") from None
        features, windows = [], []
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        for i, offsets in enumerate(encoded["offset_mapping"]):
            example = encoded["overflow_to_sample_mapping"][i]
            sequence = encoded.sequence_ids(i)
            context = [o if sequence[k] == 1 else None for k, o in enumerate(offsets)]
            start, end = answer_tokens(context, examples[example].answers[0])
            item = {k: torch.tensor(encoded[k][i], dtype=torch.long) for k in keys}
            item["start_positions"], item["end_positions"] = start, end
            features.append(item)
            windows.append((example, context))
        meta = {
            "windows": windows,
            "contexts": [e.context for e in examples],
            "answers": [[text for text, _ in e.answers] for e in examples],
        }
        return TokenizedDataset(features, meta)

    def score(self, predictions, label_ids, dataset: TokenizedDataset) -> dict[str, float]:
        start, end = (np.asarray(p) for p in predictions[:2])
        meta = dataset.meta
        answers = best_answers(start, end, meta["windows"], meta["contexts"])
        return squad_scores(answers, meta["answers"])


def answer_tokens(context: list, answer: tuple[str, int]) -> tuple[int, int]:
    """The first and last token of `answer` in a window (`context`: each token's character offsets, None
    outside the context), or (0, 0) when the window does not hold the whole answer."""
    text, start_char = answer
    end_char = start_char + len(text)
    inside = [k for k, o in enumerate(context) if o is not None]
    if not inside or context[inside[0]][0] > start_char or context[inside[-1]][1] < end_char:
        return 0, 0
    start = next(k for k in inside if context[k][1] > start_char)
    end = next(k for k in reversed(inside) if context[k][0] < end_char)
    return start, end


def line_of(text: str, qid: str) -> int:
    """The line of a question's id in the file's text (1 if not found)."""
    at = text.find(json.dumps(qid)) if qid else -1
    return text.count("\n", 0, at) + 1 if at >= 0 else 1
