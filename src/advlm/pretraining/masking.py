"""Masking as pure functions over one sequence of token ids (docs/pretraining.md).

Every function takes `ids` (list[int]), `special` (list[bool], True for special tokens and padding, which
are never selected), a `random.Random` and returns `(inputs, labels)` with `labels[i] = ids[i]` at the
selected positions and -100 elsewhere (the MLM convention).

- `bert_mask`: BERT (Devlin et al., 2019): 15% of tokens; 80% [MASK], 10% random token, 10% kept.
- `whole_word_mask`: the same decisions per word: a word's pieces are selected (and treated) together.
- `ngram_mask`: whole words in n-grams of 1..4 words with probabilities 40/30/20/10% (MacBERT's baseline).
- `macbert_mask`: MacBERT (Cui et al., 2020), MLM as correction: 15% of words in 1..4-grams; 80% replaced by a
  similar word (each word of an n-gram gets its own), 10% by a random word, 10% kept; a random word when no
  similar word exists. A similar word must tokenize to as many pieces as the word it replaces, so the
  sequence keeps its length and every label stays aligned; candidates with another piece count are skipped
  (the next most similar is tried), and a word with none left falls back to random pieces.

Words are spans of token positions (`word_spans`); "15% of words" selects words until about 15% of the real
tokens are covered, as Google's whole-word-masking code does.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

IGNORE = -100
NGRAM_PROBS = (0.4, 0.3, 0.2, 0.1)
Span = tuple[int, int]


def word_spans(tokens: Sequence[str], special: Sequence[bool]) -> list[Span]:
    """English WordPiece words: a piece starting with '##' continues the previous word."""
    spans: list[Span] = []
    for i, (tok, sp) in enumerate(zip(tokens, special)):
        if sp:
            continue
        if tok.startswith("##") and spans and spans[-1][1] == i:
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return spans


def _decide(rng: random.Random) -> str:
    r = rng.random()
    return "mask" if r < 0.8 else ("random" if r < 0.9 else "keep")


def _apply(ids, positions, how, mask_id, vocab_size, rng, inputs, labels) -> None:
    for i in positions:
        labels[i] = ids[i]
        if how == "mask":
            inputs[i] = mask_id
        elif how == "random":
            inputs[i] = rng.randrange(vocab_size)


def bert_mask(
    ids: Sequence[int], special: Sequence[bool], mask_id: int, vocab_size: int, rng: random.Random, prob: float = 0.15
) -> tuple[list[int], list[int]]:
    inputs, labels = list(ids), [IGNORE] * len(ids)
    candidates = [i for i, sp in enumerate(special) if not sp]
    for i in rng.sample(candidates, min(len(candidates), max(1, round(prob * len(candidates))))):
        _apply(ids, [i], _decide(rng), mask_id, vocab_size, rng, inputs, labels)
    return inputs, labels


def select_ngrams(
    spans: Sequence[Span], n_tokens: int, rng: random.Random, prob: float = 0.15, ngram_probs: Sequence[float] = (1.0,)
) -> list[list[Span]]:
    """Non-overlapping groups of consecutive words covering about `prob` of the tokens: draw n from
    `ngram_probs`, then a random start where n free consecutive words fit; a group that would overshoot the
    budget is skipped (so longer n-grams are slightly rarer than drawn near the budget)."""
    budget = max(1, round(prob * n_tokens))
    taken = [False] * len(spans)
    groups: list[list[Span]] = []
    covered, attempts = 0, 0
    while covered < budget and attempts < 10 * max(len(spans), 1):
        attempts += 1
        n = rng.choices(range(1, len(ngram_probs) + 1), weights=ngram_probs)[0]
        starts = [s for s in range(len(spans) - n + 1) if not any(taken[s : s + n])]
        if not starts:
            continue
        s = rng.choice(starts)
        size = spans[s + n - 1][1] - spans[s][0]
        if covered + size > budget and groups:
            continue
        taken[s : s + n] = [True] * n
        groups.append(list(spans[s : s + n]))
        covered += size
    return groups


def whole_word_mask(ids, special, spans, mask_id, vocab_size, rng, prob=0.15, ngram_probs=(1.0,)):
    inputs, labels = list(ids), [IGNORE] * len(ids)
    n_tokens = sum(not s for s in special)
    for group in select_ngrams(spans, n_tokens, rng, prob, ngram_probs):
        how = _decide(rng)  # one decision per selected unit
        _apply(ids, [i for a, b in group for i in range(a, b)], how, mask_id, vocab_size, rng, inputs, labels)
    return inputs, labels


def ngram_mask(ids, special, spans, mask_id, vocab_size, rng, prob=0.15):
    return whole_word_mask(ids, special, spans, mask_id, vocab_size, rng, prob, NGRAM_PROBS)


Similar = Callable[[Sequence[int]], list[list[int]]]  # a word's pieces -> candidate words' pieces, best first


def macbert_mask(
    ids,
    special,
    spans,
    similar: Similar,
    vocab_size: int,
    rng: random.Random,
    prob: float = 0.15,
    random_word: Callable[[int], list[int]] | None = None,
) -> tuple[list[int], list[int], dict]:
    """MacBERT's MLM-as-correction; returns (inputs, labels, counts of similar / random / kept words)."""
    inputs, labels = list(ids), [IGNORE] * len(ids)
    counts = {"similar": 0, "random": 0, "kept": 0, "no_similar": 0}
    n_tokens = sum(not s for s in special)
    pick_random = random_word or (lambda n: [rng.randrange(vocab_size) for _ in range(n)])
    for group in select_ngrams(spans, n_tokens, rng, prob, NGRAM_PROBS):
        how = _decide(rng)
        for a, b in group:  # each word of the n-gram gets its own replacement
            for i in range(a, b):
                labels[i] = ids[i]
            if how == "keep":
                counts["kept"] += 1
                continue
            pieces = None
            if how == "mask":  # "mask" means: a similar word
                pieces = next((c for c in similar(ids[a:b]) if len(c) == b - a), None)
                counts["similar" if pieces else "no_similar"] += 1
            if pieces is None:
                pieces = pick_random(b - a)
                counts["random"] += how == "random"
            inputs[a:b] = pieces
    return inputs, labels, counts
