"""GLUE loaders on the real files (official sizes) and the user's own files; bad input gives clear errors."""

import json

import pytest

from advlm.data import resolve_data_dir
from advlm.errors import AdvlmError
from advlm.tasks import get_task
from advlm.tasks.glue import GLUE_TASKS


def load_split(task, split, data_dir=None, path=None):
    return task.load(split, data_dir, path)


OFFICIAL = {
    ("rte", "train"): 2490,
    ("rte", "dev"): 277,
    ("mrpc", "train"): 3668,
    ("mrpc", "dev"): 408,
    ("cola", "train"): 8551,
    ("cola", "dev"): 1043,
    ("stsb", "train"): 5749,
    ("stsb", "dev"): 1500,
    ("sst2", "train"): 67349,
    ("sst2", "dev"): 872,
    ("qnli", "dev"): 5463,
    ("wnli", "train"): 635,
    ("wnli", "dev"): 71,
}


@pytest.mark.parametrize("task,split", sorted(OFFICIAL))
def test_real_glue_files_have_official_sizes(glue_dir, task, split):
    examples = load_split(get_task(task), split, glue_dir)
    assert len(examples) == OFFICIAL[(task, split)]
    assert all(ex.label is not None for ex in examples)
    assert all(len(ex.texts) == len(get_task(task).text_fields) and all(ex.texts) for ex in examples)


def test_real_files_parse_labels_and_quotes(glue_dir):
    rte = get_task("rte").load("train", glue_dir)
    assert rte[50].texts[0].startswith('"Instead of action on crime')  # unbalanced quote kept, not parsed
    assert {ex.label for ex in rte} == {0, 1}
    stsb = load_split(get_task("stsb"), "dev", glue_dir)
    assert min(ex.label for ex in stsb) == 0.0 and max(ex.label for ex in stsb) == 5.0
    mrpc = load_split(get_task("mrpc"), "train", glue_dir)
    assert sum(ex.label for ex in mrpc) == 2474  # BOM in the header did not hide the label column
    cola = load_split(get_task("cola"), "dev", glue_dir)
    assert sum(ex.label for ex in cola) == 721


def test_every_task_has_a_consistent_table():
    for task in GLUE_TASKS.values():
        assert set(task.text_fields) <= set(task.tsv_columns)
        assert "label" in task.tsv_columns and task.metrics
        assert task.num_labels == (1 if task.is_regression else len(task.label_names))
    assert get_task("SST-2").name == "sst2" and get_task("mnli-mm").splits["dev"] == "dev_mismatched"


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_mnli_qqp_and_ax_tsv_formats(tmp_path):
    header = "index\tpromptID\tpairID\tgenre\ts1bp\ts2bp\ts1p\ts2p\tsentence1\tsentence2\tlabel1\tgold_label\n"
    _write(tmp_path / "MNLI/dev_mismatched.tsv", header + "0\t1\t2\tg\t.\t.\t.\t.\tA man.\tA person.\tx\tentailment\n")
    [ex] = load_split(get_task("mnli-mm"), "dev", tmp_path)
    assert ex.texts == ("A man.", "A person.") and ex.label == 0
    _write(tmp_path / "QQP/dev.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t2\t3\tWhy?\tHow?\t1\n")
    assert load_split(get_task("qqp"), "dev", tmp_path)[0].label == 1
    ax = "Lexical Semantics\tPredicate-Argument Structure\tLogic\tKnowledge\tDomain\tPremise\tHypothesis\tLabel\n"
    _write(tmp_path / "diagnostic/diagnostic-full.tsv", ax + "\t\tNegation\t\tx\tP.\tH.\tcontradiction\n")
    assert load_split(get_task("ax"), "dev", tmp_path)[0].label == 2


def test_jsonl_and_csv_with_label_names_or_ids(tmp_path):
    rows = [
        {"sentence1": "a", "sentence2": "b", "label": "not_entailment"},
        {"sentence1": "c", "sentence2": "d", "label": 0},
    ]
    jsonl = _write(tmp_path / "rte.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    assert [ex.label for ex in load_split(get_task("rte"), "train", path=jsonl)] == [1, 0]
    csv = _write(tmp_path / "sst.csv", 'sentence,label\n"good, really",1\nbad,0\n')
    examples = load_split(get_task("sst2"), "train", path=csv)
    assert examples[0].texts == ("good, really",) and [ex.label for ex in examples] == [1, 0]


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVLM_DATA_DIR", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    _write(tmp_path / "WNLI/dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t1\n")
    assert load_split(get_task("wnli"), "dev")[0].label == 1


@pytest.mark.parametrize(
    "filename,content,message",
    [
        ("RTE/train.tsv", "", "is empty"),
        ("RTE/train.tsv", "index\tpremise\thypothesis\tlabel\n0\ta\tb\tentailment\n", "missing column"),
        ("RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n", "not a rte label"),
        ("RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n", "no examples"),
        ("RTE/train.jsonl", '{"sentence1": "a", "label": 0}\n', "missing field"),
        ("RTE/train.jsonl", '{"sentence1": "a", \n', "invalid JSON"),
        ("RTE/train.jsonl", '{"sentence1": "a", "sentence2": "b", "label": 7}\n', "not a rte label"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, filename, content, message):
    _write(tmp_path / filename, content)
    with pytest.raises(AdvlmError, match=message):
        load_split(get_task("rte"), "train", tmp_path)


def test_missing_file_and_unknown_task(tmp_path):
    with pytest.raises(AdvlmError, match="missing data file for rte train"):
        load_split(get_task("rte"), "train", tmp_path)
    with pytest.raises(AdvlmError, match="does not exist"):
        load_split(get_task("rte"), "train", tmp_path / "nowhere")
    with pytest.raises(AdvlmError, match="unknown task 'glue9'"):
        get_task("glue9")


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("task,labels", [("mrpc", [0, 1, 1]), ("stsb", [0.5, 3.2, 5.0])])
def test_collator_matches_the_tokenizers_padding(tokenizer, side, task, labels):
    """Our tensor-copy collator gives exactly what transformers' DataCollatorWithPadding gives."""
    import torch
    from transformers import DataCollatorWithPadding

    from advlm.data.collate import make_collator
    from advlm.tasks.classification import Example, tokenize_examples

    texts = [("a short one", "and its pair"), ("a much longer sentence than the others here", "b"), ("x", "y z")]
    examples = [Example(t, label) for t, label in zip(texts, labels)]
    features = tokenize_examples(tokenizer, examples, max_length=12).features
    tokenizer.padding_side = side
    try:
        ours = make_collator(tokenizer)(features)
        as_lists = [{k: v.tolist() if torch.is_tensor(v) else v for k, v in f.items()} for f in features]
        theirs = DataCollatorWithPadding(tokenizer, return_tensors="pt")(as_lists)
    finally:
        tokenizer.padding_side = "right"
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key].dtype == theirs[key].dtype and torch.equal(ours[key], theirs[key]), key


def test_a_quoted_line_break_stays_in_the_text_and_later_lines_are_numbered_right(tmp_path):
    """A CSV field may hold a line break inside quotes: it is part of the text ("film\\nsecond", not
    "filmsecond"), and an error further down names the line the bad row starts on."""
    good = _write(tmp_path / "sst.csv", 'sentence,label\n"a film\nsecond line",1\nbad,0\n')
    examples = load_split(get_task("sst2"), "train", path=good)
    assert [e.texts[0] for e in examples] == ["a film\nsecond line", "bad"]
    bad = _write(tmp_path / "bad.csv", 'sentence,label\n"a film\nsecond line",1\nok,0\nno label here\n')
    with pytest.raises(AdvlmError, match=r"bad\.csv:5: expected 2 columns"):
        load_split(get_task("sst2"), "train", path=bad)
