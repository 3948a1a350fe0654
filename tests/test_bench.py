"""The benchmark machinery on a tiny grid: one JSON per run, resume, tables, plots and the docs page."""

import dataclasses
import json
import re

import pytest
import torch

from advlm import AdvlmError
from advlm.bench.cost import build_method_spec, child_results, measure, measure_kinds, training_setup
from advlm.bench.grid import Grid, run_grid
from advlm.bench.interleaved import measure_interleaved_kinds, median_interval
from advlm.bench.paired import confidence_interval, detectable_difference
from advlm.bench.render import (
    cost_table,
    detectable_note,
    fit_note,
    load_runs,
    outdated_defaults_note,
    paired_table,
    paper_gain_table,
    plots,
    quality_table,
    quality_verdict,
    target_notes,
    write_docs,
)


def test_tiny_grid_resumes_and_renders(tmp_path, glue_dir, tiny_model_dir):
    grid = Grid(
        name="tiny",
        tasks=["rte"],
        methods=["vanilla", "freelb"],
        seeds=[1, 2],
        train=dict(max_train_samples=16, max_eval_samples=16, epochs=1, batch_size=8),
    )
    results = tmp_path / "results" / "cpu-test"
    paths = run_grid(grid, results, str(glue_dir), str(tiny_model_dir), progress=False)
    assert len(paths) == 4 and all(p.exists() for p in paths)
    record = json.loads(paths[0].read_text())
    assert record["environment"]["hardware"] and "torch" in record["environment"]["packages"]
    assert record["grid"]["name"] == "tiny" and record["config"]["seed"] == 1
    stamp = paths[0].stat().st_mtime_ns
    run_grid(grid, results, str(glue_dir), str(tiny_model_dir), progress=False)  # done runs are skipped
    assert paths[0].stat().st_mtime_ns == stamp
    grid.per_method = {"freelb": {"epochs": 2}}  # changed settings: only freelb's runs are redone
    run_grid(grid, results, str(glue_dir), str(tiny_model_dir), progress=False)
    redone = {p.name for p in paths if p.stat().st_mtime_ns != stamp and "freelb" in p.name}
    assert paths[0].stat().st_mtime_ns == stamp and redone == {"rte-freelb-s1.json", "rte-freelb-s2.json"}
    assert json.loads(paths[1].read_text())["config"]["epochs"] == 2
    other = dataclasses.replace(grid, name="tiny-other", methods=["vanilla", "fgm"], seeds=[1])
    copied = run_grid(other, results, str(glue_dir), str(tiny_model_dir), progress=False)  # vanilla is copied
    assert json.loads(copied[0].read_text())["copied_from"] == "tiny/rte-vanilla-s1.json"
    assert (
        json.loads(copied[0].read_text())["grid"]["name"] == "tiny-other" and "copied_from" not in copied[1].read_text()
    )
    for path in copied:
        path.unlink()
    copied[0].parent.rmdir()
    table, verdicts = quality_table(load_runs(results))
    assert "| rte (accuracy, 2) |" in table and "FreeLB paper" in table
    assert verdicts and verdicts[0].startswith("freelb beats vanilla's median on ")
    cost = {
        "settings": {"batch_size": 2, "seq_len": 16, "steps": 1, "warmup": 1},
        "environment": record["environment"],
        "results": [measure(k, 2, 16, 1, 1, "cpu") for k in ("floor", "method:vanilla", "method:freelb")],
    }
    (results / "cost.json").write_text(json.dumps(cost))
    table, notes = cost_table(cost)
    assert "| method:freelb |" in table and "| 2 |" in table  # FreeLB's ideal ratio: K = 2 passes
    assert [p.name for p in plots(load_runs(results), cost, results)] == ["quality-tiny.png", "cost.png"]
    docs = write_docs(tmp_path / "results", tmp_path / "benchmarks.md")
    text = docs.read_text()
    assert "## cpu-test" in text and "### Cost per optimizer step" in text and "quality-tiny.png" in text
    assert text.count("### Cost per optimizer step") == 1 and "[cost.json]" not in text
    (results / "cost-earlier.json").write_text(json.dumps(cost))  # an earlier measurement kept beside the latest
    text = write_docs(tmp_path / "results", tmp_path / "benchmarks.md").read_text()
    assert text.count("### Cost per optimizer step") == 2 and "cost-earlier.json, code" in text
    assert "  - [cost.json] target" in text and "  - [cost-earlier.json] target" in text


def test_cost_series_in_one_process_keeps_rounds_and_survives_a_bad_kind(tiny_model_dir):
    # how the GPU measures: every kind in one child process, round after round
    settings = {"batch_size": 2, "seq_len": 16, "steps": 2, "warmup": 1, "rounds": 2}
    seen = []
    kinds = ["floor", "no-such-kind", "method:fgm"]
    results = measure_kinds(kinds, settings, "cpu", str(tiny_model_dir), on_result=seen.append, one_process=True)
    by_kind = {r["kind"]: r for r in results}
    assert len(seen) == 6 and set(by_kind) == set(kinds)
    assert "unknown cost kind no-such-kind" in by_kind["no-such-kind"]["error"]
    for kind in ("floor", "method:fgm"):
        medians = by_kind[kind]["round_medians_s"]
        assert len(medians) == 2 and by_kind[kind]["median_s"] == min(medians)
        assert by_kind[kind]["steps"] == 2 and by_kind[kind]["ops_per_step"] > 0


def test_target_notes_give_the_round_by_round_ratio_of_ours_to_the_alternative():
    def row(kind, rounds, memory=100):
        return {"kind": kind, "median_s": min(rounds), "round_medians_s": rounds, "peak_memory_bytes": memory}

    rows = {r["kind"]: r for r in (row("method:vanilla", [1.0, 1.0]), row("trainer:vanilla", [1.1, 0.9]))}
    rows["stock-trainer"] = row("stock-trainer", [1.0, 1.2])
    notes = target_notes(rows)
    # fastest rounds: 0.9 / 1.0; within rounds: 1.1 / 1.0 and 0.9 / 1.2
    assert "target our vanilla Trainer step <= the stock Trainer's: met (0.90; round by round 1.10, 0.75)." in notes
    rows["stock-trainer"]["round_medians_s"] = [1.0]  # one round: nothing to pair
    assert "target our vanilla Trainer step <= the stock Trainer's: met (0.90)." in target_notes(rows)


def test_method_spec_parses_overrides():
    method = build_method_spec("smart,bregman=false,weight=3")
    assert method.bregman is False and method.weight == 3.0


def test_parallel_grid_matches_sequential_and_reports_failures(tmp_path, glue_dir, tiny_model_dir):
    grid = Grid(
        name="tiny",
        tasks=["rte"],
        methods=["vanilla", "fgm"],
        seeds=[1],
        train=dict(max_train_samples=16, max_eval_samples=16, epochs=1, batch_size=8),
    )
    one = run_grid(grid, tmp_path / "one", str(glue_dir), str(tiny_model_dir), progress=False)
    two = run_grid(grid, tmp_path / "two", str(glue_dir), str(tiny_model_dir), progress=False, jobs=2)
    for a, b in zip(one, two):
        first, second = json.loads(a.read_text()), json.loads(b.read_text())
        assert abs(first["eval_loss"] - second["eval_loss"]) < 1e-4, a.name
    broken = Grid(name="broken", tasks=["rte"], methods=["vanilla", "nosuch"], seeds=[1], train=grid.train)
    with pytest.raises(AdvlmError, match=r"1 of 2 runs failed:\n  rte-nosuch-s1: AdvlmError: unknown method"):
        run_grid(broken, tmp_path / "three", str(glue_dir), str(tiny_model_dir), progress=False, jobs=2)
    assert (tmp_path / "three" / "runs" / "broken" / "rte-vanilla-s1.json").exists()  # the good run was kept


def test_a_slice_of_a_grid_runs_only_its_runs_and_the_whole_grid_then_skips_them(
    tmp_path, glue_dir, tiny_model_dir, capsys
):
    from advlm.cli import main

    grid = Grid(
        name="tiny",
        tasks=["rte", "mrpc"],
        methods=["vanilla", "fgm"],
        seeds=[1, 2],
        train=dict(max_train_samples=16, max_eval_samples=16, epochs=1, batch_size=8),
    )
    piece = grid.only(tasks=["rte"], methods=["fgm", "vanilla"], seeds=[2])
    assert (piece.tasks, piece.methods, piece.seeds, piece.train) == (["rte"], ["vanilla", "fgm"], [2], grid.train)
    assert grid.only() == grid
    results = tmp_path / "results"
    made = run_grid(piece, results, str(glue_dir), str(tiny_model_dir), progress=False)
    assert sorted(p.name for p in (results / "runs" / "tiny").iterdir()) == ["rte-fgm-s2.json", "rte-vanilla-s2.json"]
    stamps = {p: p.stat().st_mtime_ns for p in made}
    whole = run_grid(grid, results, str(glue_dir), str(tiny_model_dir), progress=False)
    assert len(whole) == 8 and all(p.exists() for p in whole)
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())  # the slice's runs were not redone
    for bad, message in [
        (dict(tasks=["cola"]), "grid 'tiny' has no task cola; its tasks: rte, mrpc"),
        (dict(methods=["fgm", "nosuch"]), "grid 'tiny' has no method nosuch; its methods: vanilla, fgm"),
        (dict(seeds=[]), "grid 'tiny' has no seed (none given)"),
    ]:
        with pytest.raises(AdvlmError, match=re.escape(message)):
            grid.only(**bad)
    # on the command line: one line naming the grid's values, exit 2, nothing written
    capsys.readouterr()
    assert main(["bench", "--grid", "full", "--seeds", "6", "--results", str(tmp_path / "cli"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "advlm: error: grid 'full' has no seed 6; its seeds: 1, 2, 3, 4, 5"
    assert not (tmp_path / "cli").exists()


def test_quality_table_compares_common_seeds_and_flags_unequal_steps():
    def run(method, seed, acc, steps=10):
        return {"task": "rte", "method": method, "seed": seed, "eval": {"accuracy": acc}, "steps": steps}

    runs = [run("vanilla", 1, 0.5), run("vanilla", 2, 0.6), run("freelb", 1, 0.7), run("freeat", 1, 0.9, steps=20)]
    table, notes = quality_table(runs)
    assert "| rte (accuracy, 1) | 50.00 [50.0, 50.0] | 70.00 [70.0, 70.0] | 90.00" in table  # vanilla s2 left out
    assert "rte: 1 run(s) left out, their seed not finished by every method (vanilla s2)." in notes
    assert "rte: freeat took 2.00x vanilla's optimizer steps; its row is not like for like." in notes


def test_paired_table_compares_each_seed_with_vanillas_same_seed():
    def run(method, seed, acc):
        return {"task": "rte", "method": method, "seed": seed, "eval": {"accuracy": acc}}

    # vanilla's seeds spread over 20 points; SMART is 1 point above it on every seed, FreeLB wins one of three
    vanilla = {1: 0.50, 2: 0.60, 3: 0.70}
    runs = [run("vanilla", s, a) for s, a in vanilla.items()]
    runs += [run("smart", s, a + 0.01) for s, a in vanilla.items()]
    runs += [run("freelb", 1, 0.53), run("freelb", 2, 0.59), run("freelb", 3, 0.69)]
    table = paired_table(runs)
    assert "| task | smart | freelb |" in table
    row = table.splitlines()[2]
    # SMART's constant difference has a zero-width interval; FreeLB's differences are +3, -1, -1
    assert row.startswith("| rte | +1.00 [+1.0, +1.0] (3/3, p=0.00)") and "+0.33 [-5.4, +6.1] (1/3, p=0.83)" in row
    assert paired_table([run("vanilla", 1, 0.5), run("smart", 1, 0.6)]) is None  # one seed: nothing to pair
    # the FreeLB paper's +2.52 on RTE lies inside FreeLB's [-5.4, +6.1]; the SMART paper's +7.7 above SMART's
    gains = paper_gain_table(runs)
    assert "| rte | +7.70 (SMART paper): above ours | +2.52 (FreeLB paper): inside ours |" in gains
    note = detectable_note(runs)  # SMART's zero spread tells nothing: FreeLB's sd sqrt(16/3) alone, 3 seeds
    assert note.endswith(f"rte {detectable_difference((16 / 3) ** 0.5, 3):.1f}.")


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


def test_per_task_method_args_apply_to_their_task_and_method_only():
    from advlm.bench.grid import GRIDS

    grid = GRIDS["full-pertask"]
    assert grid.settings("stsb", "freelb", 1)["method_args"] == {
        "step_size": 0.1,
        "init_mag": 0.1,
        "eps": 0.28,
        "steps": 2,
    }
    assert grid.settings("cola", "textat", 1)["method_args"]["steps"] == 3
    assert grid.settings("cola", "vanilla", 1)["method_args"] == {}
    assert GRIDS["full"].settings("cola", "freelb", 1)["method_args"] == {}
    smart = GRIDS["full-long-smart"].settings("rte", "smart", 1)
    assert smart["method_args"] == {"bregman": False, "eps": 1.0, "normalized_step": True} and smart["epochs"] == 6
    assert GRIDS["full-long-smart"].settings("rte", "vanilla", 1)["method_args"] == {}


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


def test_fit_note_reports_vanillas_last_training_loss_against_its_dev_loss():
    def run(method, seed, last, dev):
        return {
            "task": "rte",
            "method": method,
            "seed": seed,
            "eval_loss": dev,
            "train_history": [{"loss": 9.0}, {"loss": last}],
        }

    runs = [run("vanilla", 1, 0.2, 0.7), run("vanilla", 2, 0.4, 0.9), run("freelb", 1, 5.0, 5.0)]
    assert fit_note(runs).endswith("(medians over seeds): rte 0.300 / 0.800.")
    assert fit_note([{"task": "rte", "method": "vanilla", "seed": 1, "eval_loss": 0.7}]) is None  # older runs


def test_a_run_with_other_method_defaults_is_not_done(tmp_path):
    from advlm.bench.grid import GRIDS, is_done
    from advlm.methods import build_method

    settings = GRIDS["quick"].settings("sst2", "fgm", 1)
    current = build_method("fgm").config()
    path = tmp_path / "run.json"
    record = {"config": dict(settings), "method_args": {k: v for k, v in current.items() if k != "nan_guard"}}
    path.write_text(json.dumps(record))
    assert is_done(path, settings)  # a record that predates nan_guard had it at its default
    record["method_args"]["step_size"] = current["step_size"] * 2  # run with another default
    path.write_text(json.dumps(record))
    assert not is_done(path, settings)


def test_outdated_defaults_note_names_changed_defaults_but_not_a_grids_own_settings():
    from advlm.methods import build_method

    now = build_method("smart").config()
    grid = {"method_args": {"smart": {"mu": 0.5}}}
    run = {"task": "rte", "method": "smart", "grid": grid, "method_args": {**now, "mu": 0.5}}
    assert outdated_defaults_note([run]) is None  # the grid's own setting is not a default
    old = {**run, "method_args": {**now, "mu": 0.5, "eps": now["eps"] * 10}}
    assert outdated_defaults_note([run, old]).endswith(f"smart: eps {now['eps'] * 10} (now {now['eps']}).")


def test_cost_table_gives_each_methods_overhead_as_the_median_of_its_per_round_ratios_too():
    def row(kind, rounds):
        return {
            "kind": kind,
            "median_s": min(rounds),
            "round_medians_s": rounds,
            "peak_memory_bytes": 2**20,
            "examples_per_s": 1.0,
            "device": "cuda",
        }

    # vanilla's one fast round makes the fastest-round overhead 1.25; round by round FGM costs 2.2x, 1.9x, 2.0x
    cost = {
        "results": [
            row("method:vanilla", [1.0, 2.0, 2.0]),
            row("method:fgm", [2.2, 3.8, 4.0]),
            row("method:freelb", [2.5, 4.0]),
        ]
    }  # a kind the last round did not reach
    table, _ = cost_table(cost)
    assert "| method:fgm | 2.2000 | 2.20 | 2 | 1.10 | 1.00 |" in table
    assert "| method:freelb | 2.5000 | 2.50 | 2 | 1.25 | 1.12 |" in table  # rounds 1-2: 2.5x, 2.0x


def test_kinds_taking_turns_time_every_one_call_kind_each_turn_and_survive_a_bad_kind(tiny_model_dir):
    settings = {"batch_size": 2, "seq_len": 16, "interleaved_steps": 3, "interleaved_warmup": 1}
    reports = []
    kinds = ["floor", "method:vanilla", "method:fgm", "method:no-such-method", "trainer:vanilla", "stock-trainer"]
    last = measure_interleaved_kinds(kinds, settings, "cpu", str(tiny_model_dir), on_result=reports.append)
    assert reports and reports[-1] is last and last["turns"] == 3 and last["warmup"] == 1
    assert set(last["times_s"]) == set(kinds) - {"method:no-such-method"}  # the Trainers step in their threads
    assert all(len(times) == 3 and min(times) > 0 for times in last["times_s"].values())
    assert "no-such-method" in last["errors"]["method:no-such-method"]


def test_a_trainer_taking_turns_steps_once_per_turn_and_stops_when_closed(tiny_model_dir):
    from advlm.bench.interleaved import _TrainerInTurns

    model, batch, _, _ = training_setup(2, 8, torch.device("cpu"), str(tiny_model_dir))
    steps = []
    trainer = _TrainerInTurns("trainer:vanilla", model, batch, 5, torch.device("cpu"))
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):
        steps.append(trainer())
        assert trainer.thread.is_alive()  # the Trainer's thread waits for the next turn
    assert len(steps) == 3 and min(steps) > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # it trained the shared model
    trainer.close()
    assert not trainer.thread.is_alive()


def test_a_trainer_taking_turns_that_never_stepped_closes(tiny_model_dir):
    from advlm.bench.interleaved import _TrainerInTurns

    model, batch, _, _ = training_setup(2, 8, torch.device("cpu"), str(tiny_model_dir))
    trainer = _TrainerInTurns("stock-trainer", model, batch, 5, torch.device("cpu"))
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
    from advlm.bench.interleaved import _TrainerInTurns

    model, batch, _, _ = training_setup(2, 8, torch.device("cpu"), str(tiny_model_dir))
    ours = _TrainerInTurns("trainer:vanilla", model, batch, 5, torch.device("cpu"))
    stock = _TrainerInTurns("stock-trainer", model, batch, 5, torch.device("cpu"))
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


def test_a_child_that_fails_after_reporting_gives_its_reports_then_its_error():
    code = "import sys; print('RESULT' + '{\"a\": 1}', flush=True); sys.exit('out of memory')"
    assert list(child_results(code)) == [{"a": 1}, {"error": "out of memory"}]


def test_overheads_and_verdicts_come_from_the_turns_when_the_kinds_took_turns():
    def row(kind, rounds):
        return {"kind": kind, "median_s": min(rounds), "round_medians_s": rounds, "peak_memory_bytes": 2**20,
                "examples_per_s": 1.0, "device": "cuda"}  # fmt: skip

    # the rounds: vanilla's one fast round puts FGM at 1.10 (missed); turn by turn FGM costs 2.2x, 2.0x, 2.0x
    cost = {
        "results": [row("method:vanilla", [1.0, 2.0]), row("method:fgm", [2.2, 3.8])],
        "interleaved": {
            "turns": 3,
            "warmup": 1,
            "times_s": {"method:vanilla": [1.0, 2.0, 1.5], "method:fgm": [2.2, 4.0, 3.0]},
            "errors": {"method:textat": "RuntimeError: boom"},
        },
    }
    table, notes = cost_table(cost)
    assert "| method:fgm | 2.2000 | 2.20 | 2 | 1.10 | 1.02 | 1.00 |" in table
    assert "target overhead <= 1.05 on cuda (median per-turn ratio, 95% interval): met by fgm 1.00." in notes
    assert "method:textat failed in the turns: RuntimeError: boom" in notes
    rows = {r["kind"]: r for r in (row("method:smart,bregman=false", [1.1, 1.0]), row("smart-pytorch", [1.0, 1.0]))}
    turns = {"times_s": {"method:smart,bregman=false": [0.9, 1.1, 1.0], "smart-pytorch": [1.0, 1.0, 1.0]}}
    note = [
        n
        for n in target_notes({**rows, "method:vanilla": row("method:vanilla", [1.0, 1.0])}, turns)
        if "smart-pytorch" in n
    ]
    assert note == [
        "target our SMART step (no Bregman term) <= smart-pytorch's: met (median per-turn ratio 1.00; fastest "
        "rounds 1.00; round by round 1.10, 1.00)."
    ]
    rows = {"floor": row("floor", [1.0, 1.0]), "trainer:vanilla": row("trainer:vanilla", [1.1, 1.3])}
    turns = {"times_s": {"floor": [1.0, 1.0, 1.0], "trainer:vanilla": [1.3, 1.25, 1.1]}}  # the rounds: 1.10
    notes = target_notes({**rows, "method:vanilla": row("method:vanilla", [1.0])}, turns)
    assert (
        "target training step <= 1.2 x the floor: missed (median per-turn ratio 1.25; fastest rounds 1.10; round by round 1.10, 1.30)."
        in notes
    )


def test_median_interval_is_the_textbook_order_statistics_and_flags_a_limit_inside_it():
    assert median_interval(list(range(1, 31))) == (10, 21)  # n = 30: x(10) and x(21), coverage 95.7%
    assert median_interval([5, 1, 4, 2, 3, 6]) == (1, 6) and median_interval([1, 2, 3, 4, 5]) is None
    vanilla = [1.0] * 30
    fgm = [2.0 + 0.01 * i for i in range(30)]  # per-turn overheads 1.000 ... 1.145, median 1.07
    turns = {"times_s": {"method:vanilla": vanilla, "method:fgm": fgm}}
    row = {"median_s": 1.0, "peak_memory_bytes": 1, "device": "cuda"}
    notes = target_notes({"method:vanilla": row, "method:fgm": {**row, "median_s": 2.0}}, turns)
    assert notes[0] == (
        "target overhead <= 1.05 on cuda (median per-turn ratio, 95% interval): met by none; missed by fgm 1.07 "
        "(1.04-1.10); the limit lies inside the interval of fgm."
    )
    trainers = {"trainer:vanilla": [0.9 + 0.01 * i for i in range(30)], "stock-trainer": [1.0] * 30}
    rows = {kind: {**row, "kind": kind} for kind in trainers}
    note = [n for n in target_notes({**rows, "method:vanilla": row}, {"times_s": trainers}) if "stock Trainer" in n][0]
    assert note == (
        "target our vanilla Trainer step <= the stock Trainer's: missed (median per-turn ratio 1.04 (0.99-1.10); "
        "fastest rounds 1.00); 1 lies inside the interval: these turns cannot tell."
    )
    # a median or bound that two decimals would round onto the limit is shown to three, with the side it lies on
    trainers["trainer:vanilla"] = [1.001 + 0.0002 * i for i in range(30)]  # median 1.0039, interval 1.0029-1.0051
    note = [n for n in target_notes({**rows, "method:vanilla": row}, {"times_s": trainers}) if "stock Trainer" in n][0]
    assert "missed (median per-turn ratio 1.004 (1.003-1.005); fastest rounds 1.00)." in note


def test_bench_cli_measures_turns_then_rounds_and_reports_both(tmp_path, tiny_model_dir, monkeypatch):
    from advlm.bench import cost as cost_module
    from advlm.cli import main

    monkeypatch.setattr(cost_module, "cost_kinds", lambda: ["floor", "method:vanilla", "method:fgm", "trainer:vanilla"])
    args = ["bench", "--skip-quality", "--device", "cpu", "--model", str(tiny_model_dir), "--results",
            str(tmp_path / "results"), "--docs", str(tmp_path / "benchmarks.md"), "--cost-batch-size", "2",
            "--cost-seq-len", "8", "--cost-steps", "1", "--cost-rounds", "1", "--cost-turns", "2"]  # fmt: skip
    assert main(args) == 0
    (cost_file,) = (tmp_path / "results").glob("*/cost.json")
    cost = json.loads(cost_file.read_text())
    assert cost["settings"]["interleaved_steps"] == 2 and cost["interleaved"]["turns"] == 2
    assert set(cost["interleaved"]["times_s"]) == {r["kind"] for r in cost["results"]} == set(cost_module.cost_kinds())
    docs = (tmp_path / "benchmarks.md").read_text()
    assert "overhead, kinds taking turns" in docs and "and 2 turns of the kinds taking turns" in docs
    assert "target training step <= 1.2 x the floor" in docs and "(median per-turn ratio" in docs
