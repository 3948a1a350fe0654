"""TextAT's token table: which rows a step changes, the write-back, bfloat16, saving with checkpoints."""

from __future__ import annotations

import torch

from advlm import build_method
from tests import tiny
from tests.method_helpers import tiny_trainer


def test_textat_table_changes_only_batch_rows_and_round_trips(tmp_path):
    model = tiny.model()
    batch = tiny.batch(model)
    method = build_method("textat", step_size=0.3, init_mag=0.2, eps=0.5)
    method.special_token_ids = [int(batch["input_ids"][0, 0])]  # pretend the first token is special
    method.step(model, batch)
    table = method.table
    real = batch["input_ids"][batch["attention_mask"].bool()].unique().tolist()
    changed = set(torch.nonzero(table.abs().sum(1)).flatten().tolist())
    expected = set(real) - set(method.special_token_ids) - {model.config.pad_token_id}
    assert changed == expected
    state = method.state_dict()
    restored = build_method("textat")
    restored.load_state_dict(state)
    assert torch.equal(restored.table, table)
    torch.save(state, tmp_path / "state.pt")
    again = build_method("textat")
    again.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert torch.equal(again.table, table)


def test_textat_write_back_is_the_mean_per_token_and_spares_rows_without_a_slot():
    method = build_method("textat")
    method.table = torch.randn(10, 3)
    before = method.table.clone()
    ids = torch.tensor([[1, 5, 5, 2, 0], [1, 7, 5, 2, 0]])  # 1 and 2 special, 0 padding
    rows = torch.tensor([[0, 1, 1, 0, 0], [0, 1, 1, 0, 0]], dtype=torch.bool)
    delta = torch.randn(2, 5, 3)
    method._write_back(ids, rows, delta)
    expected_5 = (delta[0, 1] + delta[0, 2] + delta[1, 2]) / 3
    assert torch.allclose(method.table[5], expected_5, atol=1e-6)
    assert torch.allclose(method.table[7], delta[1, 1])
    untouched = [i for i in range(10) if i not in (5, 7)]
    assert torch.equal(method.table[untouched], before[untouched])


def test_textat_table_in_bfloat16():
    model = tiny.model()
    method = build_method("textat", table_dtype="bfloat16")
    method.step(model, tiny.batch(model))
    assert method.table.dtype == torch.bfloat16 and method.table.abs().sum() > 0


def test_trainer_saves_and_reloads_textat_table(tmp_path, tokenizer):
    from advlm.trainer import METHOD_STATE_FILE

    method = build_method("textat")
    trainer = tiny_trainer(tmp_path, tokenizer, method, save_strategy="epoch")
    assert 101 in method.special_token_ids  # [CLS] from the tokenizer
    trainer.train()
    [checkpoint] = list(tmp_path.glob("checkpoint-*"))
    saved = torch.load(checkpoint / METHOD_STATE_FILE, weights_only=True)
    assert torch.equal(saved["table"], method.table) and method.table.abs().sum() > 0
    restored = build_method("textat")
    restored.load_state_dict(saved)
    assert torch.equal(restored.table, method.table)
