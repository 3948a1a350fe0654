"""`advlm bench`: grids from YAML files, one JSON per run, resume, the cost table, tables and the docs page."""

import dataclasses
import json
import re
from pathlib import Path

import pytest

from advlm import AdvlmError
from advlm.bench.cost import CostKind, measure_costs
from advlm.bench.grid import Grid, load_grid, run_grid
from advlm.bench.paired import median_interval
from advlm.bench.report import plots, write_docs
from advlm.bench.tables import (
    cost_failures,
    cost_rows,
    load_runs,
    markdown,
    outdated_defaults_note,
    overheads,
    quality_rows,
    step_notes,
)

GRIDS = Path(__file__).resolve().parent.parent / "benchmarks" / "grids"


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
    (row,) = quality_rows(load_runs(results), ["vanilla", "freelb"])
    assert row[0] == "rte (accuracy, 2)" and "<br>" in row[2]  # freelb's cell: its score, then paired with vanilla
    settings = {"batch_size": 2, "seq_len": 16, "turns": 3, "warmup": 1}
    kinds = [CostKind("vanilla"), CostKind("freelb"), CostKind("smart", (("bregman", "false"),))]
    cost = {"settings": settings, "environment": record["environment"]}
    cost.update(measure_costs(kinds, settings, "cpu", str(tiny_model_dir)))
    (results / "cost.json").write_text(json.dumps(cost))
    head, rows = cost_rows(cost)
    assert [r[0] for r in rows] == ["method:vanilla", "method:freelb", "method:smart,bregman=false"]
    freelb = dict(zip(head, rows[1]))
    assert freelb["ideal"] == "2" and re.fullmatch(r"\d+\.\d\d", freelb["overhead"])  # 3 turns: too few for an interval
    assert all(int(r[head.index("peak MiB")]) > 0 for r in rows)  # each measured alone, in a child process
    assert [p.name for p in plots(load_runs(results), cost, results)] == [
        "quality-tiny.png",
        "value-tiny.png",
        "cost.png",
    ]
    text = write_docs(tmp_path / "results", tmp_path / "docs" / "benchmarks.md").read_text()
    assert "## cpu-test" in text and text.count("### Cost per optimizer step") == 1 and "quality-tiny" in text
    assert "(cost.json, code" in text and "- cost (cost.json): each method's step time over vanilla's" in text
    assert "](../results/cpu-test/quality-tiny.png)" in text  # links relative to the page
    assert "- grid tiny (2 seeds): above vanilla's median on freelb " in text
    (results / "cost-earlier.json").write_text(json.dumps(cost))  # an earlier measurement kept beside the latest
    text = write_docs(tmp_path / "results", tmp_path / "docs" / "benchmarks.md").read_text()
    assert text.count("### Cost per optimizer step") == 2 and "cost-earlier.json, code" in text


def test_a_grid_is_a_yaml_file_and_every_committed_grid_loads(tmp_path):
    names = sorted(p.stem for p in GRIDS.glob("*.yaml"))
    assert {"quick", "full", "heads-quick"} <= set(names)
    for name in names:
        grid = load_grid(name, GRIDS)
        assert grid.name == name and grid.tasks and grid.methods and grid.seeds
        assert (GRIDS / f"{name}.yaml").read_text().startswith("# ")  # the question it asks, first
    own = tmp_path / "mine.yaml"
    own.write_text("tasks: [rte]\nmethods: [vanilla, fgm]\nseeds: [1]\ntrain: {epochs: 1}\n")
    assert load_grid(str(own)) == Grid(
        name="mine", tasks=["rte"], methods=["vanilla", "fgm"], seeds=[1], train={"epochs": 1}
    )
    own.write_text("tasks: [rte]\nmethods: [vanilla]\nseeds: [1]\nepochs: 1\n")
    with pytest.raises(AdvlmError, match="mine.yaml: unknown keys epochs; its keys are"):
        load_grid(str(own))
    with pytest.raises(AdvlmError, match=r"no grid file .*nosuch.yaml; .*\(full, full-long"):
        load_grid("nosuch", GRIDS)


def test_per_task_method_args_apply_to_their_task_and_method_only():
    grid = load_grid("full-pertask", GRIDS)
    assert grid.settings("stsb", "freelb", 1)["method_args"] == {
        "step_size": 0.1,
        "init_mag": 0.1,
        "eps": 0.28,
        "steps": 2,
    }
    assert grid.settings("cola", "textat", 1)["method_args"]["steps"] == 3
    assert grid.settings("cola", "vanilla", 1)["method_args"] == {}
    assert load_grid("full", GRIDS).settings("cola", "freelb", 1)["method_args"] == {}
    smart = load_grid("full-long-smart", GRIDS).settings("rte", "smart", 1)
    assert smart["method_args"] == {"bregman": False, "eps": 1.0, "normalized_step": True} and smart["epochs"] == 6


def test_quality_rows_compare_common_seeds_and_pair_each_seed_with_vanillas():
    def run(method, seed, acc, steps=10):
        return {"task": "rte", "method": method, "seed": seed, "eval": {"accuracy": acc}, "steps": steps}

    runs = [run("vanilla", 1, 0.5), run("vanilla", 2, 0.6), run("freelb", 1, 0.7), run("freeat", 1, 0.9, steps=20)]
    (row,) = quality_rows(runs, ["vanilla", "freelb", "freeat"])  # vanilla s2 left out: one seed, nothing paired
    assert row == ["rte (accuracy, 1)", "50.00 [50.0, 50.0]", "70.00 [70.0, 70.0]", "90.00 [90.0, 90.0]"]
    assert "rte: freeat took 2.00x vanilla's optimizer steps; not like for like" in step_notes(runs)
    # vanilla's seeds spread over 20 points; SMART is 1 point above it on every seed, FreeLB wins one of three
    vanilla = {1: 0.50, 2: 0.60, 3: 0.70}
    runs = [run("vanilla", s, a) for s, a in vanilla.items()] + [run("smart", s, a + 0.01) for s, a in vanilla.items()]
    runs += [run("freelb", 1, 0.53), run("freelb", 2, 0.59), run("freelb", 3, 0.69)]
    (row,) = quality_rows(runs, ["vanilla", "smart", "freelb"], sep="; ")
    # SMART's constant difference has a zero-width interval; FreeLB's differences are +3, -1, -1
    assert row[2] == "61.00 [51.0, 71.0]; +1.00 [+1.0, +1.0] 3/3 p=0.00"
    assert row[3] == "59.00 [53.0, 69.0]; +0.33 [-5.4, +6.1] 1/3 p=0.83"
    (row,) = quality_rows(runs, ["vanilla", "smart"], sep="; ", annotate=lambda task, m, d: f"{task} {m} {len(d)}")
    assert row[2].endswith("p=0.00; rte smart 3")  # what a page adds to each paired cell
    assert markdown(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_cost_rows_give_the_overhead_by_the_turns_when_the_kinds_took_turns():
    def row(kind, rounds):
        return {"kind": kind, "median_s": min(rounds), "round_medians_s": rounds, "peak_memory_bytes": 2**20,
                "examples_per_s": 1.0, "device": "cuda"}  # fmt: skip

    # vanilla's one fast round makes the fastest-round overhead 1.10; turn by turn FGM costs 2.2x, 2.0x, 2.0x
    cost = {
        "results": [
            row("method:vanilla", [1.0, 2.0]),
            row("method:fgm", [2.2, 3.8]),
            {"kind": "method:x", "error": "boom"},
        ],
        "interleaved": {"times_s": {"method:vanilla": [1.0, 2.0, 1.5], "method:fgm": [2.2, 4.0, 3.0]}},
    }
    head, rows = cost_rows(cost, [("extra", lambda row, rows: row["kind"][-3:])])
    fgm = dict(zip(head, rows[1]))
    assert (fgm["ratio to vanilla"], fgm["ideal"], fgm["overhead"], fgm["extra"]) == ("2.20", "2", "1.00", "fgm")
    assert fgm["peak MiB"] == "1" and fgm["memory ratio"] == "1.00"
    del cost["interleaved"]
    assert overheads(cost) == {"method:fgm": "1.10"}  # without turns: the fastest rounds
    assert cost_failures(cost) == ["method:x failed: boom"]


def test_median_interval_is_the_textbook_order_statistics():
    assert median_interval(list(range(1, 31))) == (10, 21)  # n = 30: x(10) and x(21), coverage 95.7%
    assert median_interval([5, 1, 4, 2, 3, 6]) == (1, 6) and median_interval([1, 2, 3, 4, 5]) is None


def test_cost_kinds_are_typed_and_parse_their_labels():
    kind = CostKind.parse("method:smart,bregman=false,weight=3")
    assert (
        kind == CostKind("smart", (("bregman", "false"), ("weight", "3")))
        and kind.label == "method:smart,bregman=false,weight=3"
    )
    method = kind.build()
    assert method.bregman is False and method.weight == 3.0 and kind.ideal == method.passes
    with pytest.raises(ValueError, match="not a method's cost kind"):
        CostKind.parse("floor")


def test_bench_cli_measures_the_cost_table_and_writes_the_report(tmp_path, tiny_model_dir):
    from advlm.cli import main

    args = ["bench", "--skip-quality", "--device", "cpu", "--model", str(tiny_model_dir), "--results",
            str(tmp_path / "results"), "--docs", str(tmp_path / "benchmarks.md"), "--cost-batch-size", "2",
            "--cost-seq-len", "8", "--cost-turns", "2", "--cost-methods", "fgm", "smart,bregman=false"]  # fmt: skip
    assert main(args) == 0
    (cost_file,) = (tmp_path / "results").glob("*/cost.json")
    cost = json.loads(cost_file.read_text())
    assert cost["settings"]["turns"] == 2 and cost["interleaved"]["turns"] == 2
    kinds = ["method:vanilla", "method:fgm", "method:smart,bregman=false"]  # vanilla first: the denominator
    assert list(cost["interleaved"]["times_s"]) == [r["kind"] for r in cost["results"]] == kinds
    docs = (tmp_path / "benchmarks.md").read_text()
    assert "| method:fgm |" in docs and "- cost (cost.json): each method's step time over vanilla's" in docs


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
    full = str(GRIDS / "full.yaml")
    assert main(["bench", "--grid", full, "--seeds", "6", "--results", str(tmp_path / "cli"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "advlm: error: grid 'full' has no seed 6; its seeds: 1, 2, 3, 4, 5"
    assert not (tmp_path / "cli").exists()


def test_a_run_with_other_method_defaults_is_not_done(tmp_path):
    from advlm.bench.grid import is_done
    from advlm.methods import build_method

    settings = load_grid("quick", GRIDS).settings("sst2", "fgm", 1)
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
    assert outdated_defaults_note([run, old]).endswith(f"smart: eps {now['eps'] * 10} (now {now['eps']})")


def test_quality_per_cost_pairs_each_seed_with_vanilla_and_reads_the_cost_turn_by_turn(tmp_path):
    from advlm.bench.value import value_plot, value_rows, value_table

    def run(method, seed, acc):
        return {"task": "rte", "method": method, "seed": seed, "eval": {"accuracy": acc}, "steps": 10}

    runs = [run("vanilla", 1, 0.50), run("vanilla", 2, 0.60), run("r3f", 1, 0.53), run("r3f", 2, 0.61)]
    runs += [run("awp", 1, 0.40), run("awp", 2, 0.50)]
    turns = {"method:vanilla": [1.0, 2.0], "method:r3f": [2.0, 5.0], "method:awp": [3.0, 4.0]}
    cost = {
        "results": [{"kind": k, "median_s": min(v)} for k, v in turns.items()]
        + [{"kind": "method:smart,bregman=false", "median_s": 9.0}],  # settings overridden: not the method's cost
        "interleaved": {"times_s": turns},
    }
    rows = {r["method"]: r for r in value_rows(runs, cost)}
    assert set(rows) == {"vanilla", "r3f", "awp"}
    assert rows["r3f"]["gain"] == pytest.approx(2.0) and rows["r3f"]["cost"] == pytest.approx(2.25)  # +3, +1; 2.0, 2.5
    assert rows["awp"]["gain"] == pytest.approx(-10.0) and rows["awp"]["gain_interval"] == pytest.approx([-10, -10])
    assert rows["vanilla"]["gain"] == 0 and rows["vanilla"]["cost"] == 1
    head, body = value_table(list(rows.values()))
    assert body[1][:4] == ["rte", "r3f", "+2.00 [-10.71, +14.71]", "2.25"]
    assert value_plot(list(rows.values()), tmp_path / "value.png", "quick").stat().st_size > 1000


def test_quality_per_cost_prices_a_grids_settings_only_at_a_cost_measured_with_them():
    from advlm.bench.value import value_rows

    three = {"method_args": {"freelb": {"steps": 3}}}
    runs = [
        {"task": "rte", "method": m, "seed": s, "eval": {"accuracy": a}, "steps": 10, "grid": three}
        for m, s, a in [("vanilla", 1, 0.5), ("vanilla", 2, 0.6), ("freelb", 1, 0.55), ("freelb", 2, 0.6)]
    ]
    default = {"results": [{"kind": "method:vanilla", "median_s": 1.0}, {"kind": "method:freelb", "median_s": 2.0}]}
    assert {r["method"] for r in value_rows(runs, default)} == {"vanilla"}  # FreeLB-2's cost is not FreeLB-3's
    measured = {"results": [*default["results"], {"kind": "method:freelb,steps=3", "median_s": 3.0}]}
    assert {r["method"]: r["cost"] for r in value_rows(runs, measured)} == {"vanilla": 1.0, "freelb": 3.0}
