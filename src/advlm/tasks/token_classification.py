"""Token classification (named-entity recognition): CoNLL-2003 and the user's own tagged sentences.

Files: the CoNLL format (one token per line in whitespace-separated columns, the tag in the last; a blank line
ends a sentence; `-DOCSTART-` lines are skipped), or JSON lines `{"tokens": [...], "tags": [...]}` in BIO.
CoNLL-2003 is tagged IOB1 (`I-` opens an entity unless it follows one of the same type); it is converted to
BIO (IOB2) when read. The tags of the user's own data are read from the training file.

Tokenization follows transformers' run_ner: words are split into sub-words by a fast tokenizer, the label
sits on each word's first sub-word and -100 (ignored) on the others and on special tokens. Model:
`AutoModelForTokenClassification`. Metric: entity-level F1, precision and recall with seqeval (conlleval's
counting), over every word of the file: a word cut off by `--max-length` counts as predicted `O`, so
truncation costs recall instead of vanishing from the score; word accuracy beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from advlm.data.collate import TokenizedDataset
from advlm.data.loading import read_jsonl, read_lines
from advlm.errors import AdvlmError
from advlm.tasks.base import TaskKind, as_numpy, first

CONLL2003_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


@dataclass(frozen=True)
class TaggedSentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]


def iob1_to_bio(tags: list[str]) -> list[str]:
    """IOB1 -> BIO: an `I-X` that does not continue an entity of type X opens one (`B-X`)."""
    out, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def sorted_tags(tags) -> tuple[str, ...]:
    """`O` first, then by entity type with `B-` before `I-`."""
    names = set(tags) - {"O"}
    return ("O",) + tuple(sorted(names, key=lambda t: (t[2:], t[:2]) if t[1:2] == "-" else (t, "")))


@dataclass
class TokenClassificationTask(TaskKind):
    tag_names: tuple[str, ...] | None = None  # None: read from the training file
    iob1: bool = False  # the files are IOB1 (CoNLL-2003): convert to BIO
    columns: int | None = None  # columns of a CoNLL file (CoNLL-2003: 4); None: as its first line

    kind = "token-classification"
    auto_class = "AutoModelForTokenClassification"
    metrics = ("f1", "precision", "recall", "accuracy")
    suffixes = ("", ".jsonl", ".txt", ".conll")

    def load(self, split: str, data_dir=None, path=None) -> list[TaggedSentence]:
        rows = super().load(split, data_dir, path)
        if self.tag_names is None:
            if split != "train":
                raise AdvlmError(f"{self.name}: the tag names are read from the training file; load it first")
            self.tag_names = sorted_tags(tag for _, s in rows for tag in s.tags)
        known = set(self.tag_names)
        for where, sentence in rows:
            unknown = [t for t in sentence.tags if t not in known]
            if unknown:
                raise AdvlmError(
                    f"{where}: tag {unknown[0]!r} is not a {self.name} tag; use one of {', '.join(self.tag_names)}"
                )
        return [sentence for _, sentence in rows]

    def read(self, file: Path) -> list[tuple[str, TaggedSentence]]:
        if file.suffix.lower() in (".jsonl", ".json"):
            return [self._from_record(f"{file}:{line}", row) for line, row in read_jsonl(file)]
        return self._read_conll(file)

    def _from_record(self, where: str, row: dict) -> tuple[str, TaggedSentence]:
        tokens, tags = row.get("tokens"), row.get("tags")
        for name, value in (("tokens", tokens), ("tags", tags)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise AdvlmError(
                    f'{where}: "{name}" must be a list of strings; write {{"tokens": [...], "tags": [...]}}'
                )
        if len(tokens) != len(tags) or not tokens:
            raise AdvlmError(f"{where}: {len(tokens)} tokens but {len(tags)} tags; give one tag per token")
        return where, TaggedSentence(tuple(tokens), tuple(iob1_to_bio(tags) if self.iob1 else tags))

    def _read_conll(self, file: Path) -> list[tuple[str, TaggedSentence]]:
        sentences, tokens, tags, start, width = [], [], [], 0, self.columns

        def close() -> None:
            if tokens:
                bio = iob1_to_bio(tags) if self.iob1 else list(tags)
                sentences.append((f"{file}:{start}", TaggedSentence(tuple(tokens), tuple(bio))))
                tokens.clear()
                tags.clear()

        for i, line in enumerate(read_lines(file), start=1):
            cells = line.split()
            if not cells:
                close()
                continue
            if cells[0] == "-DOCSTART-":
                continue
            width = width or len(cells)
            if len(cells) != width or width < 2:
                raise AdvlmError(
                    f"{file}:{i}: expected {max(width, 2)} space-separated columns (token ... tag), found "
                    f"{len(cells)}; a CoNLL file has one token per line and a blank line between sentences"
                )
            start = start if tokens else i
            tokens.append(cells[0])
            tags.append(cells[-1])
        close()
        return sentences

    # --- model -----------------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        return {
            "num_labels": len(self.tag_names),
            "id2label": dict(enumerate(self.tag_names)),
            "label2id": {t: i for i, t in enumerate(self.tag_names)},
        }

    def adopt_model(self, config) -> None:
        id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
        model_tags = tuple(id2label[i] for i in sorted(id2label))
        if self.tag_names is None:
            self.tag_names = model_tags
        if set(model_tags) != set(self.tag_names):
            raise AdvlmError(
                f"the model tags {', '.join(model_tags)}; task {self.name} needs {', '.join(self.tag_names)}: "
                "pass a model fine-tuned for it"
            )

    # --- data and evaluation ---------------------------------------------------------------------------
    def encode(self, tokenizer, sentences, max_length: int) -> TokenizedDataset:
        if not getattr(tokenizer, "is_fast", False):
            raise AdvlmError("token classification needs a fast tokenizer (tokenizer.json) to align sub-words to words")
        ids = {t: i for i, t in enumerate(self.tag_names)}
        encoded = tokenizer(
            [list(s.tokens) for s in sentences], is_split_into_words=True, truncation=True, max_length=max_length
        )
        features = []
        for i, sentence in enumerate(sentences):
            labels, previous = [], None
            for word in encoded.word_ids(i):
                labels.append(-100 if word is None or word == previous else ids[sentence.tags[word]])
                previous = word
            item = {key: torch.tensor(values[i], dtype=torch.long) for key, values in encoded.items()}
            item["labels"] = torch.tensor(labels, dtype=torch.long)
            features.append(item)
        return TokenizedDataset(features, meta=[s.tags for s in sentences])

    def reduce(self, logits, labels):
        return first(logits).argmax(-1)

    def align(self, predictions, config):
        id2label = {int(k): str(v) for k, v in config.id2label.items()}
        mapping = np.array([self.tag_names.index(id2label[i]) for i in sorted(id2label)])
        predictions = as_numpy(predictions)
        return np.where(predictions >= 0, mapping[np.clip(predictions, 0, None)], predictions)

    def score(self, predictions, label_ids, dataset: TokenizedDataset) -> dict[str, float]:
        gold, predicted = self.word_tags(as_numpy(predictions), as_numpy(label_ids), dataset.meta)
        return entity_scores(gold, predicted)

    def word_tags(self, predictions: np.ndarray, label_ids: np.ndarray, gold: list) -> tuple[list, list]:
        """Per sentence, the gold tags and the predicted tag of each word (its first sub-word's; `O` for a
        word that was cut off)."""
        predicted = []
        for i, tags in enumerate(gold):
            firsts = predictions[i][label_ids[i] != -100]
            words = [self.tag_names[int(p)] for p in firsts][: len(tags)]
            predicted.append(words + ["O"] * (len(tags) - len(words)))
        return [list(t) for t in gold], predicted


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """seqeval's entity-level F1, precision and recall (conlleval's counting), and word accuracy."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    words = sum(len(t) for t in gold)
    right = sum(g == p for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps))
    return {
        "f1": float(f1_score(gold, predicted, zero_division=0)),
        "precision": float(precision_score(gold, predicted, zero_division=0)),
        "recall": float(recall_score(gold, predicted, zero_division=0)),
        "accuracy": right / max(words, 1),
    }
