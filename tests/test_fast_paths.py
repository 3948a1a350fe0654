"""Each fast path gives the plain path's gradients: one step of every method with the fast paths on and off
(`advlm.fast_paths.disabled`), from the same weights, batch and seed, leaves the same gradient on every parameter."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import BertForSequenceClassification

from advlm import build_method, fast_paths, list_methods
from advlm.embeddings import embed, model_inputs, word_embeddings
from advlm.fast_paths import StepLookup, masks_shared_by_passes
from tests import tiny
from tests.conftest import tiny_bert_config
from tests.method_helpers import grads, vanilla_grads


def padded_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1000, 2000, (4, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[1, -4:], ids[1, -4:] = 0, 0  # padding: the shared mask is a prepared 4D mask, not None
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 1, 0])}


def gradients(name: str, fast: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_bert_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    method = build_method(name)
    method.prepare(model, tokenizer=SimpleNamespace(all_special_ids=[0, 101, 102]), total_steps=10)
    torch.manual_seed(5)
    if fast:
        method.step(model.train(), padded_batch())
    else:
        with fast_paths.disabled():
            method.step(model.train(), padded_batch())
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", list_methods())
def test_the_fast_paths_give_the_plain_paths_gradients(name):
    fast, plain = gradients(name, True), gradients(name, False)
    assert fast.keys() == plain.keys() and "bert.embeddings.word_embeddings.weight" in fast
    for key, grad in fast.items():
        assert torch.allclose(grad, plain[key], atol=1e-6, rtol=1e-5), f"{name}: {key}"


def test_the_switch_turns_each_fast_path_off():
    model = BertForSequenceClassification(tiny_bert_config())
    ids = padded_batch()["input_ids"]
    with fast_paths.disabled():
        lookup = StepLookup(model, ids)
        assert lookup.for_pass(last=False) is not lookup.for_pass(last=False)  # a fresh lookup every pass
        with masks_shared_by_passes():
            assert fast_paths._step_masks is None  # nothing shared
    assert fast_paths.enabled()
    lookup = StepLookup(model, ids)
    assert lookup.for_pass(last=False) is lookup.for_pass(last=False)  # one lookup, detached, for early passes


@pytest.mark.parametrize("name", [m for m in list_methods() if m not in ("vanilla", "neftune")])
def test_the_nan_guard_is_the_only_host_sync_a_method_adds(name):
    """On a GPU a host sync stalls the launch queue. A step makes vanilla's one (transformers' "any padding?"
    check, shared by all the step's passes) plus the guard's checks, and nan_guard=False drops those."""
    from lab.counters import OpCounter

    def syncs(run):
        with OpCounter() as counter:
            run()
        return counter.syncs

    plain = tiny.model()
    vanilla = syncs(lambda: plain(**tiny.batch(plain)))
    added = {}
    for guard in (True, False):
        model = tiny.model()
        method = build_method(name, nan_guard=guard)
        method.prepare(model)
        method.step(model, tiny.batch(model))  # first step: lazy state (TextAT's table, SMART's teacher)
        added[guard] = syncs(lambda m=method, x=model: m.step(x, tiny.batch(x))) - vanilla
    assert vanilla == 1
    assert added == {True: {"freelb": 2, "textat": 2}.get(name, 1), False: 0}


def test_neftune_adds_no_host_sync():
    """NEFTune has no guard (its one pass is the training loss, as vanilla's) and no sync of its own."""
    from lab.counters import OpCounter

    model, method = tiny.model(), build_method("neftune")
    method.step(model, tiny.batch(model))  # its magnitude is read once per batch length
    with OpCounter() as plain:
        model(**tiny.batch(model))
    with OpCounter() as noised:
        method.step(model, tiny.batch(model))
    assert noised.syncs == plain.syncs == 1


@pytest.mark.parametrize("arch", tiny.ARCHS)
@pytest.mark.parametrize("lengths", [(7, 4, 5), (7, 7, 7)], ids=["padded", "unpadded"])
def test_passes_of_one_step_share_the_attention_mask_and_its_one_host_sync(arch, lengths):
    from lab.counters import OpCounter

    model = tiny.model(arch).eval()
    batch = tiny.batch(model, lengths=lengths)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        plain = [model(**model_inputs(model, inputs, embed(model, batch["input_ids"]))).logits for _ in range(3)]
        with masks_shared_by_passes(), OpCounter() as counter:
            shared = [model(**model_inputs(model, inputs, embed(model, batch["input_ids"]))).logits for _ in range(3)]
    for a, b in zip(plain, shared):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=0)
    if arch in ("bert", "roberta", "electra"):  # transformers asks "any padding?" once, not once per pass
        assert counter.syncs == 1


def test_an_unpadded_roberta_step_gets_a_full_mask_where_no_mask_would_read_its_position_ids():
    """Where transformers looks for packed sequences in the position ids whenever it is handed no mask (the
    prepared mask of an unpadded batch), a RoBERTa-family step gets the full 4D mask instead (the outputs are the
    plain path's: the test above). BERT gets no position ids from us and keeps the shared None."""
    import inspect

    from transformers.masking_utils import create_bidirectional_mask

    reads = "position_ids" in inspect.signature(create_bidirectional_mask).parameters
    for arch, expected in (("roberta", reads), ("bert", False)):
        model = tiny.model(arch).eval()
        batch = tiny.batch(model, lengths=(7, 7, 7))
        words = embed(model, batch["input_ids"])
        with masks_shared_by_passes():
            inputs = model_inputs(model, batch, words)
        assert fast_paths._none_mask_reads_position_ids(model) is expected
        mask = inputs["attention_mask"]
        assert (mask is None) is not expected, arch
        assert expected is False or (mask.dim() == 4 and bool(mask.all()))


def test_the_table_gradient_waits_for_the_last_pass_and_survives_a_nan_there():
    """Multi-pass methods compute the word-embedding table's gradient once, at the step's last backward (it is
    not held through later forwards), and a NaN guard on that last pass keeps the earlier passes' share."""
    model = tiny.model()
    batch = tiny.batch(model)
    table = word_embeddings(model).weight
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(table.grad is None))
    for name in ("freelb", "textat", "fgm"):
        model.zero_grad(set_to_none=True)
        seen.clear()
        build_method(name, **({"steps": 3} if name != "fgm" else {})).step(model, batch)
        assert seen and all(seen) and table.grad is not None and table.grad.abs().sum() > 0, name

    clean = embed(model, batch["input_ids"]).detach()

    def poison(module, args, kwargs, output):  # perturbed inputs give a NaN loss: FGM's second pass
        e = kwargs.get("inputs_embeds")
        if e is not None and not torch.equal(e.detach(), clean):
            output.loss = output.loss * float("nan")
        return output

    expected = vanilla_grads()
    model = tiny.model()
    model.register_forward_hook(poison, with_kwargs=True)
    build_method("fgm", step_size=0.5).step(model, tiny.batch(model))
    got = grads(model)
    for k in expected:  # the clean pass's gradient alone, the table's included
        torch.testing.assert_close(got[k], expected[k], atol=1e-6, rtol=1e-5)
