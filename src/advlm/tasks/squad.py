"""SQuAD v1.1's answer post-processing and official metric (Rajpurkar et al., EMNLP 2016).

Post-processing (as transformers' `utils_qa.postprocess_qa_predictions`): for each question, over all the
windows of its context, the `n_best` highest start and end logits are paired; a pair counts when both ends
lie in the context, the end is not before the start and the span has at most `max_answer_tokens` tokens;
the pair with the highest start + end logit gives the answer, cut from the context by the tokens' character
offsets. Metric (the official evaluate-v1.1 script): exact match and token F1 after normalising case,
punctuation, the articles a/an/the and whitespace, the maximum over the gold answers, averaged, times 100.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD v1.1's normalisation)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Exact match and F1 (0-100), each the maximum over a question's gold answers, averaged over questions."""
    em = [max(exact_match(p, g) for g in gs) for p, gs in zip(predictions, golds)]
    f1 = [max(token_f1(p, g) for g in gs) for p, gs in zip(predictions, golds)]
    return {"exact_match": 100 * float(np.mean(em)), "f1": 100 * float(np.mean(f1))}


def best_answers(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    windows: Sequence[tuple[int, list]],
    contexts: Sequence[str],
    n_best: int = 20,
    max_answer_tokens: int = 30,
) -> list[str]:
    """The answer text of each question. `windows[i]` = (question index, character offsets of window i's
    tokens, None outside the context); logits are per window (padded columns beyond a window are ignored)."""
    best: dict[int, tuple[float, str]] = {}
    for i, (question, offsets) in enumerate(windows):
        starts = np.argsort(start_logits[i][: len(offsets)])[::-1][:n_best]
        ends = np.argsort(end_logits[i][: len(offsets)])[::-1][:n_best]
        for s in starts:
            for e in ends:
                if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_tokens:
                    continue
                score = float(start_logits[i][s] + end_logits[i][e])
                if question not in best or score > best[question][0]:
                    best[question] = (score, contexts[question][offsets[s][0] : offsets[e][1]])
    return [best.get(q, (0.0, ""))[1] for q in range(len(contexts))]
