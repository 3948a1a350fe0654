"""The lab's cost machinery: kinds in rounds and in turns (Trainers in threads), child processes, targets."""

import pytest
import torch

from advlm.bench.cost import training_setup
from advlm.bench.paired import confidence_interval
from lab.cost import child_results, measure_kinds
from lab.kinds import parse_kind
from lab.losses import squared_error, symmetric_kl
from lab.page import detectable_note, lab_page, paper_gain
from lab.power import detectable_difference
from lab.targets import quality_verdict, target_notes
from lab.turns import TrainerInTurns, measure_turns


def test_cost_series_in_one_process_keeps_rounds_and_survives_a_bad_kind(tiny_model_dir):
    # how the GPU measures: every kind in one child process, round after round
    settings = {"batch_size": 2, "seq_len": 16, "steps": 2, "warmup": 1, "rounds": 2}
    seen = []
    kinds = ["floor", "no-such-kind", "method:fgm"]
    results = measure_kinds(kinds, settings, "cpu", str(tiny_model_dir), on_result=seen.append, one_process=True)
    by_kind = {r["kind"]: r for r in results}
    assert len(seen) == 6 and set(by_kind) == set(kinds)
    assert "unknown cost kind 'no-such-kind'" in by_kind["no-such-kind"]["error"]
    for kind in ("floor", "method:fgm"):
        medians = by_kind[kind]["round_medians_s"]
        assert len(medians) == 2 and by_kind[kind]["median_s"] == min(medians)
        assert by_kind[kind]["steps"] == 2 and by_kind[kind]["ops_per_step"] > 0


def test_target_notes_give_the_round_by_round_ratio_of_ours_to_the_alternative():
    def row(kind, rounds, memory=100):
        return {"kind": kind, "median_s": min(rounds), "round_medians_s": rounds, "peak_memory_bytes": memory}

    rows = {r["kind"]: r for r in (row("method:vanilla", [1.0, 1.0]), row("trainer:vanilla", [1.1, 0.9]))}
    rows["stock-trainer"] = row("stock-trainer", [1.0, 1.2])
    notes = target_notes({"results": list(rows.values())})
    # fastest rounds: 0.9 / 1.0; within rounds: 1.1 / 1.0 and 0.9 / 1.2
    assert "target our vanilla Trainer step <= the stock Trainer's: met (0.90; round by round 1.10, 0.75)." in notes
    rows["stock-trainer"]["round_medians_s"] = [1.0]  # one round: nothing to pair
    assert "target our vanilla Trainer step <= the stock Trainer's: met (0.90)." in target_notes(
        {"results": list(rows.values())}
    )


def test_quality_verdict_needs_the_four_tasks_and_five_seeds_and_three_wins_each():
    metrics = {"rte": "accuracy", "mrpc": "accuracy", "cola": "mcc", "stsb": "pearson"}
    margin = {"freelb": 0.01, "smart": 0.01, "textat": -0.01}  # textat loses everywhere but CoLA

    def runs(seeds):
        out = []
        for task, metric in metrics.items():
            for seed in seeds:
                out.append({"task": task, "method": "vanilla", "seed": seed, "eval": {metric: 0.5}})
                for m, d in margin.items():
                    d = 0.01 if (m, task) == ("textat", "cola") else d
                    out.append({"task": task, "method": m, "seed": seed, "eval": {metric: 0.5 + d}})
        return out

    assert quality_verdict(runs(range(1, 6))) == "quality target not met (textat below 3 of 4)."
    margin["textat"] = 0.01
    assert quality_verdict(runs(range(1, 6))) == "quality target met."
    assert quality_verdict(runs([1, 2])).startswith("does not measure the quality target")
    only_smart = [r for r in runs(range(1, 6)) if r["method"] in ("vanilla", "smart")]
    assert quality_verdict(only_smart) == "quality target met by smart; freelb, textat not in this grid."
    margin["smart"] = -0.01
    only_smart = [r for r in runs(range(1, 6)) if r["method"] in ("vanilla", "smart")]
    assert (
        quality_verdict(only_smart) == "quality target not met (smart below 3 of 4; freelb, textat not in this grid)."
    )


def test_kinds_taking_turns_time_every_one_call_kind_each_turn_and_survive_a_bad_kind(tiny_model_dir):
    settings = {"batch_size": 2, "seq_len": 16, "interleaved_steps": 3, "interleaved_warmup": 1}
    reports = []
    kinds = ["floor", "method:vanilla", "method:fgm", "method:no-such-method", "trainer:vanilla", "stock-trainer"]
    last = measure_turns(kinds, settings, "cpu", str(tiny_model_dir), on_result=reports.append)
    assert reports and reports[-1] is last and last["turns"] == 3 and last["warmup"] == 1
    assert set(last["times_s"]) == set(kinds) - {"method:no-such-method"}  # the Trainers step in their threads
    assert all(len(times) == 3 and min(times) > 0 for times in last["times_s"].values())
    assert "no-such-method" in last["errors"]["method:no-such-method"]
    assert parse_kind("trainer:smart,bregman=false").label == "trainer:smart,bregman=false"


def test_a_trainer_taking_turns_steps_once_per_turn_and_stops_when_closed(tiny_model_dir):
    setup = training_setup(2, 8, torch.device("cpu"), str(tiny_model_dir))
    model = setup.model
    steps = []
    trainer = TrainerInTurns(parse_kind("trainer:vanilla"), setup, 5, torch.device("cpu"))
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):
        steps.append(trainer())
        assert trainer.thread.is_alive()  # the Trainer's thread waits for the next turn
    assert len(steps) == 3 and min(steps) > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # it trained the shared model
    trainer.close()
    assert not trainer.thread.is_alive()


def test_a_trainer_taking_turns_that_never_stepped_closes(tiny_model_dir):
    setup = training_setup(2, 8, torch.device("cpu"), str(tiny_model_dir))
    trainer = TrainerInTurns(parse_kind("stock-trainer"), setup, 5, torch.device("cpu"))
    trainer.close()  # its first step ends at a pause, which needs one more turn to stop
    assert not trainer.thread.is_alive()


def test_the_forward_a_trainers_accelerator_wraps_runs_in_the_trainers_turns_only(tiny_model_dir, monkeypatch):
    # On a GPU (bf16) accelerate's prepare_model replaces model.forward by an instance attribute and marks the
    # model prepared; on CPU it does not, so this wraps the same way, counting the calls that go through it.
    import functools

    import accelerate

    prepare_model, calls = accelerate.Accelerator.prepare_model, []

    def wrapping_prepare_model(self, model, *args, **kwargs):
        if not getattr(model, "_is_accelerate_prepared", False):
            forward = model.forward

            @functools.wraps(forward)  # as accelerate's: a Trainer reads the model's inputs from the signature
            def wrapped(*a, **k):
                calls.append(1)
                return forward(*a, **k)

            model.forward = wrapped
        return prepare_model(self, model, *args, **kwargs)

    monkeypatch.setattr(accelerate.Accelerator, "prepare_model", wrapping_prepare_model)
    setup = training_setup(2, 8, torch.device("cpu"), str(tiny_model_dir))
    model, batch = setup.model, setup.batch
    ours = TrainerInTurns(parse_kind("trainer:vanilla"), setup, 5, torch.device("cpu"))
    stock = TrainerInTurns(parse_kind("stock-trainer"), setup, 5, torch.device("cpu"))
    try:
        ours()
        assert len(calls) == 1 and "forward" not in model.__dict__  # the other kinds get the model's own
        model(**batch)
        assert len(calls) == 1
        stock()  # its accelerator saw the model prepared and wrapped nothing: it runs the wrapped forward
        assert len(calls) == 2 and "forward" not in model.__dict__
        ours()
        assert len(calls) == 3
    finally:
        ours.close()
        stock.close()


def test_a_childs_failures_come_back_as_results_and_a_dead_child_as_its_error(tiny_model_dir):
    results = list(child_results("measure_series", ["method:vanilla", "floor"], 1, 2, 8, 1, 0, "cpu", "/no/model"))
    assert [r["kind"] for r in results] == ["method:vanilla", "floor"] and all("error" in r for r in results)
    (dead,) = child_results("no_such_function")
    assert dead == {"error": "KeyError: 'no_such_function'"}


def row(kind, rounds, **more):
    return {"kind": kind, "median_s": min(rounds), "round_medians_s": rounds, "peak_memory_bytes": 2**20,
            "examples_per_s": 1.0, "device": "cuda", **more}  # fmt: skip


def targets(rows, times):
    return target_notes({"results": rows, "interleaved": {"times_s": times}})


def test_the_targets_are_judged_by_the_turns_when_the_kinds_took_turns():
    # the rounds: vanilla's one fast round puts FGM at 1.10 (missed); turn by turn FGM costs 2.2x, 2.0x, 2.0x
    rows = [row("method:vanilla", [1.0, 2.0]), row("method:fgm", [2.2, 3.8])]
    notes = targets(rows, {"method:vanilla": [1.0, 2.0, 1.5], "method:fgm": [2.2, 4.0, 3.0]})
    assert "target overhead <= 1.05 on cuda: met by fgm 1.00." in notes
    rows = [row("method:vanilla", [1.0, 1.0]), row("method:smart,bregman=false", [1.1, 1.0])]
    rows.append(row("smart-pytorch", [1.0, 1.0]))
    times = {"method:smart,bregman=false": [0.9, 1.1, 1.0], "smart-pytorch": [1.0, 1.0, 1.0]}
    note = [n for n in targets(rows, times) if "smart-pytorch" in n]
    assert note == [
        "target our SMART step (no Bregman term) <= smart-pytorch's: met (median per-turn ratio 1.00; fastest "
        "rounds 1.00; round by round 1.10, 1.00)."
    ]
    rows = [row("method:vanilla", [1.0]), row("floor", [1.0, 1.0]), row("trainer:vanilla", [1.1, 1.3])]
    notes = targets(rows, {"floor": [1.0, 1.0, 1.0], "trainer:vanilla": [1.3, 1.25, 1.1]})  # the rounds: 1.10
    assert (
        "target training step <= 1.2 x the floor: missed (median per-turn ratio 1.25; fastest rounds 1.10; round by round 1.10, 1.30)."
        in notes
    )


def test_a_limit_inside_the_interval_is_flagged_and_a_value_near_it_shown_to_three_decimals():
    base = {"median_s": 1.0, "peak_memory_bytes": 1, "device": "cuda"}
    rows = [{**base, "kind": "method:vanilla"}, {**base, "kind": "method:fgm", "median_s": 2.0}]
    fgm = [2.0 + 0.01 * i for i in range(30)]  # per-turn overheads 1.000 ... 1.145, median 1.07
    notes = targets(rows, {"method:vanilla": [1.0] * 30, "method:fgm": fgm})
    assert notes[0] == (
        "target overhead <= 1.05 on cuda: met by none; missed by fgm 1.07 (1.04-1.10); the limit lies inside the "
        "interval of fgm."
    )
    rows = [{**base, "kind": k} for k in ("method:vanilla", "trainer:vanilla", "stock-trainer")]
    trainers = {"trainer:vanilla": [0.9 + 0.01 * i for i in range(30)], "stock-trainer": [1.0] * 30}
    note = [n for n in targets(rows, trainers) if "stock Trainer" in n][0]
    assert note == (
        "target our vanilla Trainer step <= the stock Trainer's: missed (median per-turn ratio 1.04 (0.99-1.10); "
        "fastest rounds 1.00); 1 lies inside the interval."
    )
    trainers["trainer:vanilla"] = [1.001 + 0.0002 * i for i in range(30)]  # median 1.0039, interval 1.0029-1.0051
    note = [n for n in targets(rows, trainers) if "stock Trainer" in n][0]
    assert "missed (median per-turn ratio 1.004 (1.003-1.005); fastest rounds 1.00)." in note


def test_detectable_difference_and_interval_agree_with_textbook_values():
    import numpy as np
    from scipy import stats

    # many seeds: the normal approximation (1.96 + 0.84) sd / sqrt(n) holds
    assert detectable_difference(1.0, 200) == pytest.approx(2.80 / 200**0.5, rel=0.02)
    # 5 seeds: about 1.68 sd; fewer seeds need a larger difference
    assert detectable_difference(1.0, 5) == pytest.approx(1.68, abs=0.01)
    assert detectable_difference(1.0, 3) > detectable_difference(1.0, 5) > detectable_difference(1.0, 10)
    assert detectable_difference(2.0, 5) == pytest.approx(2 * detectable_difference(1.0, 5))
    diffs = np.array([0.5, 1.5, 1.0, 2.0])
    lo, hi = confidence_interval(diffs)
    expected = stats.ttest_1samp(diffs, 0.0).confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((expected.low, expected.high))
    with pytest.raises(ValueError, match="2 or more seeds"):
        detectable_difference(1.0, 1)


def test_the_project_page_adds_the_papers_gains_the_detectable_difference_and_the_lab_columns(tmp_path):
    import numpy as np

    from advlm.bench.tables import quality_rows

    def run(method, seed, acc):
        return {"task": "rte", "method": method, "seed": seed, "eval": {"accuracy": acc}}

    vanilla = {1: 0.50, 2: 0.60, 3: 0.70}
    runs = [run("vanilla", s, a) for s, a in vanilla.items()] + [run("smart", s, a + 0.01) for s, a in vanilla.items()]
    runs += [run("freelb", 1, 0.53), run("freelb", 2, 0.59), run("freelb", 3, 0.69)]
    # the SMART paper's +7.7 on RTE lies above SMART's zero-width interval, the FreeLB paper's +2.52 inside FreeLB's
    assert paper_gain("rte", "smart", np.array([1.0, 1.0, 1.0])) == "SMART paper +7.70: above ours"
    (row,) = quality_rows(runs, ["vanilla", "smart", "freelb"], sep="; ", annotate=paper_gain)
    assert row[3].endswith("1/3 p=0.83; FreeLB paper +2.52: inside")
    # SMART's zero spread tells nothing: FreeLB's sd sqrt(16/3) alone, 3 seeds
    expected = f"rte {detectable_difference((16 / 3) ** 0.5, 3):.1f}"
    assert detectable_note(runs) == [f"smallest true difference these seeds detect (80% power): {expected}"]
    page = lab_page()
    assert page.closing[0].startswith("## The papers' numbers") and [h for h, _ in page.cost_columns][:2] == [
        "overhead, fastest rounds",
        "overhead, median of rounds",
    ]
    rows = {"method:vanilla": {"kind": "method:vanilla", "median_s": 1.0, "round_medians_s": [1.0, 2.0]}}
    fgm = {"kind": "method:fgm", "median_s": 2.2, "round_medians_s": [2.2, 3.8]}
    assert [cell(fgm, rows) for _, cell in page.cost_columns[:2]] == ["1.10", "1.02"]  # 2.2x and 1.9x a round


def test_smart_divergences():
    a = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, 3.0]])
    assert symmetric_kl(a, a.clone()) == 0
    assert symmetric_kl(a, a + torch.tensor([0.0, 1.0, 0.0])) > 0
    assert squared_error(a, a.clone()) == 0 and squared_error(a, a + 0.1) > 0
    b = a.clone().requires_grad_()
    symmetric_kl(b, b.detach() + 1e-3 * torch.randn_like(a)).backward()
    assert b.grad is not None and torch.isfinite(b.grad).all()


def test_side_page_shows_each_heads_overhead_and_the_teachers_memory_with_its_command(tmp_path):
    import json

    from lab.side_page import side_page

    env = {"environment": {"git_commit": "abcdef0123"}}
    rows = [
        {"method": "vanilla", "median_step_s": 1.0, "ratio": 1.0, "ideal": 1.0, "overhead": 1.0},
        {"method": "smart", "median_step_s": 4.0, "ratio": 4.0, "ideal": 3.33, "overhead": 1.2},
    ]
    heads = [{"head": "causal-lm", "batch_size": 8, "seq_len": 128, "turns": 3, "rows": rows}]
    folder = tmp_path / "cpu-x"
    folder.mkdir()
    (folder / "head_cost.json").write_text(json.dumps({**env, "heads": heads}))
    teacher = [
        {"method": "smart", "lora": True, "trainable_parameters": 10, "teacher_bytes": 2**20, "peak_bytes": 2**30}
    ]
    (folder / "lora_memory.json").write_text(json.dumps({**env, "batch_size": 8, "seq_len": 128, "rows": teacher}))
    page = "\n".join(side_page(tmp_path))
    assert "| smart | 3.33 | 1.20 (4.00x) |" in page and "| smart, LoRA | 10 | 1.00 MiB | 1024 MiB |" in page
    assert "benchmarks/results/cpu-x/head_cost.json" in page and "code abcdef0" in page
