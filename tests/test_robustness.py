"""Robustness evaluation: the Table-5 loss increase, the word-substitution attack, AdvGLUE files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from advlm.cli import main
from advlm.data.collate import TokenizedDataset
from advlm.errors import AdvlmError
from advlm.robustness.advglue import ADVGLUE_TASKS, load_advglue
from advlm.robustness.attack import STOP_WORDS, WORD, WordVectors, attack_example, embedding_vectors, summarize
from advlm.robustness.loss_increase import compare, correct_radii, loss_increase
from advlm.tasks import get_task
from advlm.tasks.classification import output_order, reorder_logits
from tests import tiny


@pytest.fixture(scope="module")
def trained_tiny(tokenizer):
    """A tiny BERT trained a little on short synthetic pairs, with the MiniLM tokenizer's ids."""
    torch.manual_seed(0)
    model = tiny.model(vocab_size=30522)
    texts = ["good fine great movie", "bad awful terrible film", "nice lovely happy story", "sad poor boring plot"]
    features = []
    for i in range(16):
        enc = tokenizer(texts[i % 4] + " " + texts[(i + 1) % 4].split()[0])
        features.append({**enc, "labels": int(i % 4 in (0, 2))})

    from advlm.data.collate import make_collator

    batch = make_collator(tokenizer)(features)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(40):
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad()
    return model.eval(), TokenizedDataset(features)


def test_loss_increase_is_zero_at_eps_zero_nonnegative_and_monotone(trained_tiny, tokenizer):
    model, data = trained_tiny
    r = loss_increase(model, data, tokenizer, [0.0, 0.05, 0.2, 0.5], steps=5, batch_size=8)
    inc = {e: r["worst_loss"][e] - r["clean_loss"] for e in r["worst_loss"]}
    assert np.all(inc[0.0] == 0)
    assert all(np.all(v >= 0) for v in inc.values())
    assert np.all(inc[0.05] <= inc[0.2]) and np.all(inc[0.2] <= inc[0.5])
    assert np.median(inc[0.5]) > 0
    assert model.training is False


def test_radii_keep_the_reference_model_correct(trained_tiny, tokenizer):
    model, data = trained_tiny
    radii = correct_radii(model, data, tokenizer, r_max=2.0, iterations=5, steps=5, batch_size=8)
    assert radii.shape == (len(data),) and np.all(radii >= 0) and np.all(radii <= 2.0)
    r = loss_increase(model, data, tokenizer, [0.1], radii, steps=5, batch_size=8)
    assert np.all(r["worst_loss_at_radius"] <= np.log(2) + 1e-5)


def test_compare_uses_only_commonly_correct_examples(trained_tiny, tokenizer):
    model, data = trained_tiny
    other = tiny.model(vocab_size=30522, seed=3).eval()  # untrained: gets some examples wrong
    result = compare({"a": model, "b": other}, data, tokenizer, eps=0.1, steps=3, r_max=1.0, iterations=3, batch_size=8)
    assert 0 <= result["examples"] <= len(data)
    assert [row["model"] for row in result["rows"]] == ["a", "b"]
    for row in result["rows"]:
        assert row["M-Inc"] >= 0 and row["M-Inc (R)"] >= 0 and row["N-Loss"] >= 0
    assert result["rows"][0]["robust acc @R"] == pytest.approx(1.0)  # radii were chosen on model "a"


class Vocab:
    words = ["good", "great", "fine", "bad", "awful", "movie", "film"]


def fake_vectors():
    vecs = torch.tensor([[1, 0.1, 0], [1, 0.2, 0], [1, 0.3, 0.1], [-1, 0.1, 0], [-1, 0.2, 0], [0, 0, 1], [0, 0.1, 1]])
    return WordVectors(Vocab.words, vecs)


def sentiment_predict(texts):
    """A keyword classifier: positive unless a negative word appears."""
    out = []
    for (t,) in texts:
        neg = any(w in t.split() for w in ("bad", "awful"))
        out.append([0.9, 0.1] if neg else [0.2, 0.8])
    return np.array(out)


def test_attack_flips_a_keyword_model_within_the_word_budget():
    r = attack_example(
        ("a good movie with a fine plot and more",),
        1,
        sentiment_predict,
        fake_vectors(),
        max_fraction=0.25,
        candidates=5,
        min_similarity=-1.0,
    )
    assert r.success and r.changed <= int(0.25 * r.words)
    assert any(w in r.adversarial[0].split() for w in ("bad", "awful"))
    assert r.queries > 1


def test_attack_never_exceeds_the_fraction_and_uses_real_words(tokenizer):
    vectors = fake_vectors()
    for fraction in (0.0, 0.1, 0.3):
        for text in ("good movie", "the good film was a fine movie indeed", "great"):
            r = attack_example((text,), 1, sentiment_predict, vectors, fraction, 5, -1.0)
            assert r.changed <= int(fraction * len(WORD.findall(text)))
            for old, new in r.substitutions:
                assert new in vectors.index and new != old and old.lower() not in STOP_WORDS


def test_constant_model_is_never_fooled():
    constant = lambda texts: np.tile([0.3, 0.7], (len(texts), 1))  # noqa: E731
    results = [attack_example((t,), 1, constant, fake_vectors(), 1.0, 5, -1.0) for t in ("good movie", "fine film")]
    s = summarize(results)
    assert s["attack_success_rate"] == 0.0 and s["accuracy_under_attack"] == 1.0 == s["clean_accuracy"]


def test_embedding_neighbours_are_whole_real_words(tokenizer):
    model = tiny.model(vocab_size=30522)
    vectors = embedding_vectors(model, tokenizer)
    assert len(vectors.words) > 10000
    assert all(w.isalpha() and not w.startswith("#") and w not in STOP_WORDS for w in vectors.words)
    neighbours = vectors.neighbours("movie", 10, -1.0)
    assert len(neighbours) == 10 and all(w != "movie" for w, _ in neighbours)


ADV_RECORDS = {
    "sst2": ({"sentence": "s"}, ["0", "1"]),
    "qqp": ({"question1": "a", "question2": "b"}, ["0", "1"]),
    "mnli": ({"premise": "p", "hypothesis": "h"}, ["entailment", "neutral", "contradiction"]),
    "mnli-mm": ({"premise": "p", "hypothesis": "h"}, ["entailment", "neutral", "contradiction"]),
    "qnli": ({"question": "q", "sentence": "s"}, ["entailment", "not_entailment"]),
    "rte": ({"sentence1": "a", "sentence2": "b"}, ["entailment", "not_entailment"]),
}


@pytest.mark.parametrize("task", ADVGLUE_TASKS)
def test_advglue_label_ids_map_to_the_task_labels(tmp_path, task):
    fields, names = ADV_RECORDS[task]
    file = tmp_path / "adv.json"
    file.write_text(json.dumps({task: [{"idx": i, "label": i, **fields} for i in range(len(names))]}))
    examples = load_advglue(file, get_task(task))
    assert [get_task(task).label_names[ex.label] for ex in examples] == names


def test_model_with_another_class_order_is_scored_by_name():
    task = get_task("rte")
    config = type("C", (), {"label2id": {"not_entailment": 0, "entailment": 1}})()
    assert output_order(config, task) == [1, 0]
    logits = np.array([[2.0, -1.0]])  # the model says not_entailment
    assert reorder_logits(logits, config, task).argmax(-1)[0] == task.label_names.index("not_entailment")
    generic = type("C", (), {"label2id": {"LABEL_0": 0, "LABEL_1": 1}})()
    assert output_order(generic, task) == [0, 1]


@pytest.mark.parametrize(
    "content,message",
    [
        ({"sst2": [{"idx": 0, "label": 1, "sentence": "x"}]}, "has no 'rte' key"),
        ({"rte": [{"idx": 0, "label": 5, "sentence1": "a", "sentence2": "b"}]}, "not a rte label"),
        ({"rte": [{"idx": 0, "label": 0, "sentence1": "a"}]}, "missing text field"),
        ({"rte": [{"idx": 0, "label": "entailment", "sentence1": "a", "sentence2": "b"}]}, "integer id"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_advglue_files(tmp_path, content, message):
    file = tmp_path / "adv.json"
    file.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(AdvlmError, match=message):
        load_advglue(file, get_task("rte"))


def test_cli_eval_attack_and_robustness_on_a_run(tmp_path, glue_dir, tiny_model_dir, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--task",
                "sst2",
                "--model",
                str(tiny_model_dir),
                "--data-dir",
                str(glue_dir),
                "--max-train-samples",
                "16",
                "--max-eval-samples",
                "16",
                "--epochs",
                "1",
                "--no-progress",
                "--output-dir",
                str(out),
                "--robustness",
                "--robustness-steps",
                "2",
                "--robustness-samples",
                "8",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert "robustness" in metrics and metrics["robustness"]["settings"]["steps"] == 2
    adv = tmp_path / "adv.json"
    adv.write_text(
        json.dumps(
            {
                "sst2": [
                    {"idx": i, "label": i % 2, "sentence": s}
                    for i, s in enumerate(["a fine film", "dull and boring", "great", "bad"])
                ]
            }
        )
    )
    assert (
        main(
            ["eval", "--task", "sst2", "--model", str(out), "--advglue", str(adv), "--output", str(tmp_path / "e.json")]
        )
        == 0
    )
    assert json.loads((tmp_path / "e.json").read_text())["eval"]["accuracy"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert (
        main(
            [
                "attack",
                "--task",
                "sst2",
                "--model",
                str(out),
                "--data-dir",
                str(glue_dir),
                "--max-eval-samples",
                "4",
                "--save",
                str(tmp_path / "adv.jsonl"),
                "--output",
                str(tmp_path / "a.json"),
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "a.json").read_text())
    assert summary["examples"] == 4 and len((tmp_path / "adv.jsonl").read_text().splitlines()) == 4
    assert (
        main(
            [
                "robustness",
                "--task",
                "sst2",
                "--models",
                str(out),
                str(out),
                "--data-dir",
                str(glue_dir),
                "--max-eval-samples",
                "8",
                "--steps",
                "2",
                "--bisection",
                "2",
                "--output",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    table = json.loads((tmp_path / "r.json").read_text())
    assert len(table["rows"]) == 2 or table["examples"] == 0
    capsys.readouterr()
    assert main(["robustness", "--task", "stsb", "--models", str(out)]) == 2  # a classifier, not a scorer
    assert "task stsb needs a score" in capsys.readouterr().err


def test_glove_neighbours():
    from advlm.robustness.attack import glove_vectors

    vectors = glove_vectors()
    words = [w for w, _ in vectors.neighbours("terrible", 10, 0.5)]
    assert "horrible" in words and "terrible" not in words
    assert all(w.isalpha() and w not in STOP_WORDS for w in vectors.words[:1000])
