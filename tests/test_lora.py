"""LoRA through peft (issue #21): every method trains the adapters and the head only, its perturbation
reaches the logits, SMART's teacher holds only the trainable parameters, a run saves its adapter and `eval`
scores it, and a LoRA on the word embeddings is refused naming the real problem."""

from __future__ import annotations

import json

import pytest
import torch

from advlm import build_method, list_methods
from advlm.adapters import add_lora
from advlm.cli import main
from advlm.errors import AdvlmError
from tests import tiny
from tests.test_cli import _train

pytest.importorskip("peft")
KINDS = ["classification", "token-classification", "multiple-choice", "causal-lm"]


def lora_model(kind: str):
    model = tiny.head_model(kind)
    targets = "c_attn" if kind == "causal-lm" else "query,value"
    return add_lora(model, kind, r=4, alpha=8.0, dropout=0.0, targets=targets)


@pytest.mark.parametrize("name,kind", tiny.method_kinds([m for m in list_methods() if m != "vanilla"], KINDS))
def test_every_method_trains_only_adapters_and_head_and_perturbs_the_logits(name, kind):
    model = lora_model(kind).train()
    batch = tiny.head_batch(model, kind)
    method = build_method(name, **({"init_mag": 0.1} if name == "freeat" else {}))
    method.prepare(model, total_steps=10)
    if name == "awp":  # its step is relative to each weight's size: LoRA's B starts at zero and cannot move
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(0))
    logits = []

    def recording(m, inputs):
        out = m(**inputs)
        logits.append(out["logits"].detach().clone())
        return out.loss, out

    torch.manual_seed(0)
    method.step(model, batch, compute_loss=recording)
    trained = {n for n, p in model.named_parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)}
    assert trained and all("lora_" in n or "modules_to_save" in n or "score" in n for n in trained), trained
    assert any("lora_" in n for n in trained)
    one_pass = name in ("freeat", "neftune")  # their one pass is perturbed: compare with a clean forward
    clean = model(**batch).logits.detach() if one_pass else logits[0]
    assert any(not torch.allclose(x, clean) for x in logits), "no pass saw the perturbation"


def test_smart_teacher_holds_only_the_trainable_parameters():
    model = lora_model("classification")
    method = build_method("smart")
    method.step(model, tiny.head_batch(model, "classification"))
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert method.teacher.weights.keys() == trainable.keys()
    assert method.teacher.nbytes() == sum(p.numel() * p.element_size() for p in trainable.values())
    everything = sum(p.numel() * p.element_size() for p in model.parameters())
    assert method.teacher.nbytes() < everything / 10


def test_lora_on_the_word_embeddings_is_refused_naming_the_problem():
    with pytest.raises(AdvlmError, match="LoRA on the word embeddings is not supported"):
        add_lora(tiny.head_model("classification"), "classification", 4, 8.0, 0.0, "word_embeddings,query")


def test_cli_trains_saves_the_adapter_and_eval_scores_it(tmp_path, glue_dir, tiny_model_dir, capsys):
    args = ("--peft", "lora", "--lora-r", "4", "--method", "smart", "--lr", "1e-3")
    code, out = _train(tmp_path, glue_dir, tiny_model_dir, *args)
    assert code == 0 and (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert not (out / "model.safetensors").exists()  # the adapter, not a copy of the base model
    metrics = json.loads((out / "metrics.json").read_text())
    reported = {**metrics["eval"], "loss": metrics["eval_loss"]}  # the loss: a random head would not match it
    capsys.readouterr()
    scores = tmp_path / "scores.json"
    assert main(["eval", "--task", "rte", "--model", str(out), "--data-dir", str(glue_dir),
                 "--max-eval-samples", "16", "--output", str(scores)]) == 0  # fmt: skip
    scored = json.loads(scores.read_text())["eval"]
    assert {k: scored[k] for k in reported} == pytest.approx(reported, abs=1e-5)


def test_cli_refuses_embedding_targets_with_one_line(tmp_path, glue_dir, tiny_model_dir, capsys):
    code, out = _train(tmp_path, glue_dir, tiny_model_dir, "--peft", "lora", "--lora-targets", "word_embeddings")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "LoRA on the word embeddings" in err and not out.exists()
