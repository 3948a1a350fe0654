"""The task kinds: official sizes of the shipped data, hand-computed metrics, tokenization and alignment, and
bad input per kind (one error naming file:line and the fix)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from advlm.errors import AdvlmError
from advlm.tasks import get_task
from advlm.tasks.squad import best_answers, normalize_answer, squad_scores
from advlm.tasks.token_classification import entity_scores, iob1_to_bio

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SQUAD = Path(__file__).resolve().parent / "fixtures" / "squad_tiny.json"
OFFICIAL = {
    ("conll2003", "train"): 14041,
    ("conll2003", "dev"): 3250,
    ("conll2003", "test"): 3453,
    ("commonsenseqa", "train"): 9741,
    ("commonsenseqa", "dev"): 1221,
    ("arc-challenge", "train"): 1119,
    ("arc-challenge", "dev"): 299,
    ("arc-challenge", "test"): 1172,
    ("arc-easy", "train"): 2251,
    ("arc-easy", "dev"): 570,
    ("arc-easy", "test"): 2376,
}


@pytest.fixture(scope="module")
def data_dir():
    if not (DATA / "conll2003").is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return DATA


@pytest.mark.parametrize("task,split", sorted(OFFICIAL))
def test_shipped_files_have_the_official_sizes(data_dir, task, split):
    assert len(get_task(task).load(split, data_dir)) == OFFICIAL[(task, split)]


def test_conll_is_read_as_bio_with_its_entity_counts(data_dir):
    sentences = get_task("conll2003").load("dev", data_dir)
    tags = [t for s in sentences for t in s.tags]
    assert sum(len(s.tokens) for s in sentences) == 51362
    # entities of testa (Tjong Kim Sang & De Meulder 2003): each opens with a B- tag in BIO
    assert {k: tags.count(f"B-{k}") for k in ("LOC", "MISC", "ORG", "PER")} == {
        "LOC": 1837,
        "MISC": 922,
        "ORG": 1341,
        "PER": 1842,
    }


def test_iob1_to_bio():
    assert iob1_to_bio(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == [
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-LOC",
        "B-ORG",
    ]


def test_arc_maps_numeric_answer_keys_per_question(data_dir):
    questions = get_task("arc-challenge").load("train", data_dir)
    assert {len(q.choices) for q in questions} <= {3, 4, 5}
    raw = [json.loads(line) for line in (data_dir / "arc/ARC-Challenge/ARC-Challenge-Train.jsonl").open()]
    numeric = [i for i, r in enumerate(raw) if r["answerKey"] in "1234"]
    assert numeric
    for i in numeric:
        labels = [c["label"] for c in raw[i]["question"]["choices"]]
        assert questions[i].label == labels.index(raw[i]["answerKey"])


# --- metrics on hand-made predictions ------------------------------------------------------------------
def test_seqeval_entity_f1_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-MISC", "I-MISC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "B-MISC", "O"]]
    # gold entities: PER(0-1), LOC(3), ORG(0), MISC(2-3); predicted: PER(0-1), ORG(3), ORG(0), MISC(2)
    # right: PER, ORG(0) -> precision 2/4, recall 2/4
    scores = entity_scores(gold, pred)
    assert scores["precision"] == pytest.approx(0.5) and scores["recall"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx(0.5) and scores["accuracy"] == pytest.approx(6 / 8)


def test_squad_normalisation_exact_match_and_f1_by_hand():
    assert normalize_answer("  The  Eiffel-Tower, an  icon! ") == "eiffeltower icon"
    scores = squad_scores(
        ["the Saturday cake", "Paris France", "nothing"],
        [["Saturday cake"], ["Paris", "in Paris, France"], ["an answer"]],
    )
    # 1: exact after dropping "the"; 2: F1 max(2*(1/2*1)/(1/2+1)=2/3, vs "in paris france" 2*(1*2/3)/(1+2/3)=0.8)
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 0.8 + 0) / 3)


def test_post_processing_picks_the_best_valid_span_across_windows():
    contexts = ["alpha beta gamma delta"]
    offsets_a = [None, (0, 5), (6, 10), None]  # window 1: question token, "alpha", "beta", a separator
    offsets_b = [None, (11, 16), (17, 22), None]  # window 2: "gamma", "delta"
    start = np.array([[9.0, 1.0, 0.0, 8.0], [9.0, 0.5, 3.0, 0.0]])
    end = np.array([[9.0, 0.0, 1.0, 9.0], [9.0, 0.0, 3.5, 0.0]])
    # the highest logits sit outside the context; in window 2 the end-before-start pair (2,1) is invalid
    answers = best_answers(start, end, [(0, offsets_a), (0, offsets_b)], contexts)
    assert answers == ["delta"]


# --- tokenization and alignment ------------------------------------------------------------------------
def test_token_labels_sit_on_the_first_sub_word(tokenizer):
    from advlm.tasks.token_classification import TaggedSentence

    task = get_task("conll2003")
    sentence = TaggedSentence(("Ouagadougou", "is", "big"), ("B-LOC", "O", "O"))
    feature = task.encode(tokenizer, [sentence], max_length=32).features[0]
    pieces = tokenizer.convert_ids_to_tokens(feature["input_ids"].tolist())
    labels = feature["labels"].tolist()
    assert pieces[0] == "[CLS]" and labels[0] == -100 and labels[-1] == -100
    assert labels[1] == task.tag_names.index("B-LOC") and pieces[2].startswith("##") and labels[2] == -100
    assert [label for label in labels if label != -100] == [task.tag_names.index(t) for t in sentence.tags]


def test_truncated_words_count_as_predicted_o(tokenizer):
    from advlm.tasks.token_classification import TaggedSentence

    task = get_task("conll2003")
    sentence = TaggedSentence(("Paris", "and", "Berlin", "and", "Rome"), ("B-LOC", "O", "B-LOC", "O", "B-LOC"))
    data = task.encode(tokenizer, [sentence], max_length=5)  # [CLS] paris and berlin [SEP]
    labels = data.features[0]["labels"].numpy()[None]
    perfect = np.where(labels == -100, 0, labels)
    scores = task.score(perfect, labels, data)
    assert scores["precision"] == 1.0 and scores["recall"] == pytest.approx(2 / 3)


def test_qa_windows_find_an_answer_in_the_second_window(tokenizer):
    task = get_task(task_type="question-answering", doc_stride=8)
    examples = task.load("dev", path=SQUAD)
    data = task.encode(tokenizer, examples, max_length=40)
    windows = data.meta["windows"]
    third = [i for i, (q, _) in enumerate(windows) if examples[q].id == "q3"]  # "1968", late in a long context
    assert len(third) >= 2
    hits = [i for i in third if data.features[i]["start_positions"] > 0]
    assert hits and hits[0] != third[0]
    for i in hits:
        f = data.features[i]
        ids = f["input_ids"][f["start_positions"] : f["end_positions"] + 1]
        assert tokenizer.decode(ids) == "1968"
    # with the gold spans as logits, post-processing recovers every answer: exact match 100
    n, width = len(data), max(len(f["input_ids"]) for f in data.features)
    start, end = np.full((n, width), -9.0), np.full((n, width), -9.0)
    for i, f in enumerate(data.features):
        start[i, f["start_positions"]] = end[i, f["end_positions"]] = 5.0 if f["start_positions"] > 0 else -9.0
    assert task.score((start, end), None, data) == {"exact_match": 100.0, "f1": 100.0}


def test_causal_lm_labels_only_the_response(bpe_tokenizer, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        json.dumps({"prompt": "Q: two plus two?\nA:", "response": " four"}) + "\n" + json.dumps({"text": "hi"})
    )
    task = get_task(task_type="causal-lm")
    data = task.encode(bpe_tokenizer, task.load("train", path=path), max_length=64)
    prompt = bpe_tokenizer("Q: two plus two?\nA:")["input_ids"]
    f = data.features[0]
    assert f["labels"][: len(prompt)].tolist() == [-100] * len(prompt)
    assert f["labels"][len(prompt) :].tolist() == f["input_ids"][len(prompt) :].tolist()
    assert f["input_ids"][-1] == bpe_tokenizer.eos_token_id
    assert data.features[1]["labels"].tolist() == data.features[1]["input_ids"].tolist()


def test_multiple_choice_batches_pad_missing_choices(tokenizer, data_dir):
    task = get_task("arc-easy")
    questions = task.load("dev", data_dir)
    few = next(q for q in questions if len(q.choices) == 3)
    many = next(q for q in questions if len(q.choices) == 5)
    data = task.encode(tokenizer, [few, many], max_length=32)
    batch = task.collator(tokenizer)(data.features)
    assert batch["input_ids"].shape[:2] == (2, 5) and batch["labels"].tolist() == [few.label, many.label]
    assert batch["attention_mask"][0, 3:].sum() == 0 and batch["attention_mask"][0, :3].all(-1).any()


def test_custom_classification_learns_labels_from_the_training_file(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("headline,topic\nGoal in the last minute,sports\nShares fall,business\nNew phone,tech\n")
    task = get_task("news", task_type="classification", text_fields="headline", label_field="topic")
    examples = task.load("train", path=train)
    assert task.label_names == ("business", "sports", "tech") and [e.label for e in examples] == [1, 0, 2]
    assert task.model_kwargs()["id2label"] == {0: "business", 1: "sports", 2: "tech"}
    dev = tmp_path / "dev.jsonl"
    dev.write_text(json.dumps({"headline": "x", "topic": "weather"}) + "\n")
    with pytest.raises(AdvlmError, match=r"dev.jsonl:1: label 'weather' is not a news label"):
        task.load("dev", path=dev)


# --- bad input per kind: file:line and the fix ---------------------------------------------------------
BAD = [
    (
        "conll2003",
        None,
        "x.conll",
        "EU NNP I-NP I-ORG\nrejects VBZ I-VP\n",
        r"x.conll:2: expected 4 space-separated columns",
    ),
    (
        None,
        "token-classification",
        "x.jsonl",
        '{"tokens": ["a", "b"], "tags": ["O"]}\n',
        r"x.jsonl:1: 2 tokens but 1 tags",
    ),
    (
        "commonsenseqa",
        None,
        "x.jsonl",
        json.dumps(
            {
                "question": {"stem": "?", "choices": [{"label": "A", "text": "a"}, {"label": "B", "text": "b"}]},
                "answerKey": "C",
            }
        )
        + "\n",
        r"x.jsonl:1: answer key 'C' is not among the choices' labels A, B",
    ),
    (
        None,
        "causal-lm",
        "x.jsonl",
        '{"text": "fine"}\n{"prompt": "no answer"}\n',
        r"x.jsonl:2: a record with a prompt needs",
    ),
    (None, "classification", "x.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n', r"x.jsonl:2: no 'label' field"),
    (
        "stsb",
        None,
        "x.jsonl",
        '{"sentence1": "a", "sentence2": "b", "label": "nan"}\n',
        r"x.jsonl:1: score 'nan' is not a finite",
    ),
]


@pytest.mark.parametrize("task,kind,name,content,message", BAD)
def test_bad_input_names_the_file_line_and_the_fix(tmp_path, task, kind, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(AdvlmError, match=message):
        get_task(task, task_type=kind).load("train", path=path)


def test_squad_answer_not_at_its_start_names_the_line(tmp_path):
    data = json.loads(SQUAD.read_text())
    data["data"][1]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 3
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data, indent=1))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if '"q4"' in text)
    with pytest.raises(AdvlmError, match=rf"bad.json:{line}: question 'q4': answer .* is not at answer_start"):
        get_task(task_type="question-answering").load("train", path=path)


def test_kinds_and_names_are_checked():
    with pytest.raises(AdvlmError, match="unknown task type 'ner'"):
        get_task(task_type="ner")
    with pytest.raises(AdvlmError, match="task 'conll2003' is token-classification, not multiple-choice"):
        get_task("conll2003", task_type="multiple-choice")
    with pytest.raises(AdvlmError, match="--text-fields and --label-field describe your own data"):
        get_task("sst2", text_fields="text")
    assert get_task("conll2003", task_type="token-classification").name == "conll2003"
