"""Sweeps: grid expansion, resume, the local and Ray executors, the CLI end to end."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ttexplore.experiments import sweep
from ttexplore.cli import main
from ttexplore.core.ttshape import layer_text
from ttexplore.runs.config import ConfigError
from ttexplore.runs.store import RunStore

# a 2-cell sweep that trains in well under a second per cell
TINY = dict(name="tiny", datasets="digits", shapes="4x4x4,8x8", ranks="1", epochs=1, train_limit=300, baselines=False)


# ---------------------------------------------------------------- the grid
def test_module_and_cli_import_without_torch_ray_or_plotly():
    code = ("import sys, ttexplore.experiments.sweep, ttexplore.cli; ttexplore.cli.build_parser(\"sweep\"); "
            "print(sorted(m for m in ('torch', 'ray', 'plotly') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_parse_shapes_and_labels():
    shapes = sweep.parse_shapes("4x8x8x4, 2^10; 8x8x8x6->10^4\n32x16x6:100x10x10, 4x8x8x4")
    assert [shape.label for shape in shapes] == ["4x8x8x4", "2^10", "8x8x8x6->10x10x10x10", "32x16x6->100x10x10"]
    assert shapes[1].in_modes == (2,) * 10 and shapes[2].out_modes == (10, 10, 10, 10)
    assert sweep.SweepShape((4,) * 5, (4,) * 5).label == layer_text((4,) * 5, (4,) * 5) == "4^5"  # the house text form
    assert sweep.parse_int_list("1-3,5,2", "ranks") == (1, 2, 3, 5)
    for bad, field in (("4x8->2x2x2", "shapes"), ("4xa", "shapes"), ("", "shapes")):
        with pytest.raises(ConfigError) as error:
            sweep.parse_shapes(bad)
        assert error.value.field == field
    with pytest.raises(ConfigError, match="ranks"):
        sweep.parse_int_list("one", "ranks")


def test_expand_counts_baselines_and_dedup():
    spec = sweep.make_spec("grid", "mnist5k", "4x8x8x4, 32x32, 2^10, 4x8x8x4", ranks="1,2,2", seeds="0,1")
    grid = sweep.expand(spec)
    # 3 distinct shapes x 2 ranks x 2 seeds, + (1 dense + 2 matrix ranks) x 2 seeds
    assert grid.counts() == {"tt": 12, "dense": 2, "matrix_rank": 4}
    assert len({cell.key for cell in grid.cells}) == len(grid.cells)
    dense = [cell for cell in grid.cells if cell.config.layer == "dense"]
    assert {cell.config.layer_params() for cell in dense} == {1024 * 1024}
    matrix = [cell for cell in grid.cells if cell.config.layer == "matrix_rank"]
    assert sorted({(cell.rank, cell.config.layer_params()) for cell in matrix}) == [(1, 2048), (2, 4096)]
    assert all(cell.config.pad_to == 32 and cell.config.evals_per_epoch == 1 for cell in grid.cells)
    assert sweep.expand(sweep.make_spec("grid", "mnist5k", "32x32", ranks="1", baselines=False)).counts() == {"tt": 1}


def test_ranks_above_the_useful_ones_give_one_cell():
    # 2x32 -> 2x32 has one internal rank, at most min(2*2, 32*32) = 4: ranks 4, 5 and 9 build the same layer
    grid = sweep.expand(sweep.make_spec("clip", "digits", "2x32", ranks="3,4,5,9", baselines=False))
    assert [cell.rank for cell in grid.cells] == [3, 4]
    assert any("trains as rank 4" in note for note in grid.notes)


def test_presets_follow_the_2018_reproduction():
    mnist = sweep.expand(sweep.preset_spec("repro2018-mnist"))
    assert mnist.counts() == {"tt": 24, "dense": 1, "matrix_rank": 4}
    shapes = list(dict.fromkeys(cell.shape for cell in mnist.cells if cell.config.layer == "tt"))
    assert shapes == ["32x32", "4x8x8x4", "4^5", "2x2x8x8x2x2", "2x4x4x4x4x2", "2^10"]
    assert [cell.config.layer_params() for cell in mnist.cells if cell.shape == "4x8x8x4"] == [160, 576, 1248, 2176]
    assert sweep.preset_spec("repro2018-mnist", datasets="fashion-mnist").datasets == ("fashion-mnist",)
    cifar = sweep.expand(sweep.preset_spec("repro2018-cifar10"))
    assert all(cell.config.in_features == 3072 for cell in cifar.cells)
    assert cifar.counts() == {"tt": 40, "matrix_rank": 12, "dense": 2}  # dense 3072 x 10^5 is skipped, and says so
    assert any("3072x100000 skipped" in note for note in cifar.notes)
    # slide 15's "in 32x16x6, out 10^4" at rank 1 sits at ~3.4e3 weights
    assert [cell.config.layer_params() for cell in cifar.cells if cell.shape == "32x16x6->100x10x10"][0] == 3420


def test_former_preset_names_give_the_same_spec():
    for alias, preset in (("seed-mnist", "repro2018-mnist"), ("seed-cifar10", "repro2018-cifar10")):
        assert sweep.preset_name(alias) == preset
        assert sweep.preset_spec(alias) == sweep.preset_spec(preset)
        assert sweep.preset_spec(alias, epochs=1) == sweep.preset_spec(preset, epochs=1)
    with pytest.raises(ConfigError) as error:
        sweep.preset_spec("seed-svhn")
    assert error.value.field == "preset" and "repro2018-mnist" in str(error.value)


def test_a_shape_that_does_not_fit_names_the_shape_and_dataset():
    with pytest.raises(ConfigError) as error:
        sweep.expand(sweep.make_spec("bad", "digits", "4x8x8x4", ranks="1"))
    assert error.value.field == "shapes" and "digits" in str(error.value) and "4x8x8x4" in str(error.value)


# ---------------------------------------------------------------- resume
def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_cells_left_by_a_dead_process_are_redone_and_live_ones_not_doubled(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    first, second = sweep.expand(sweep.make_spec(**TINY)).cells
    orphan = store.create_run(first.config, sweep="tiny")
    store.mark_running(orphan)
    with store._connect() as connection:
        connection.execute("UPDATE runs SET pid=? WHERE id=?", (_dead_pid(), orphan))
    live = store.create_run(second.config, sweep="tiny")  # queued by this (live) process
    plan = sweep.plan_sweep(store, [first, second], "tiny")
    assert plan.interrupted == [orphan] and store.get_run(orphan)["status"] == "interrupted"
    assert [cell.key for cell in plan.todo] == [first.key]
    assert list(plan.active) == [second.key] and plan.active[second.key]["id"] == live


def test_local_executor_end_to_end_then_resume_runs_nothing(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    grid = sweep.expand(sweep.make_spec(**TINY))
    finished = []
    plan = sweep.run_sweep(store, grid, "tiny", executor="local", workers=2,
                           on_done=lambda cell, run_id, summary: finished.append(summary["status"]))
    assert len(plan.todo) == 2 and finished == ["completed", "completed"]
    rows = sweep.sweep_results(store, grid.cells, "tiny")
    assert [row["status"] for row in rows] == ["completed", "completed"]
    assert all(0 <= row["test_accuracy"] <= 1 and row["epochs"] == 1 for row in rows)
    for row in rows:  # each worker process wrote its own events: the step-0 probe and the epoch
        assert [event["kind"] for event in store.metrics(row["run_id"])] == ["eval", "epoch"]
    runs_before = len(store.list_runs(sweep="tiny"))

    again = sweep.run_sweep(store, grid, "tiny", executor="local", workers=2)
    assert again.todo == [] and len(again.done) == 2
    assert len(store.list_runs(sweep="tiny")) == runs_before
    rerun = sweep.plan_sweep(store, grid.cells, "tiny", resume=False)
    assert len(rerun.todo) == 2


def test_results_summary_table_and_figure():
    rows = [
        {"dataset": "d", "layer": "tt", "shape": "8x8", "rank": 1, "seed": seed, "params": 128, "compression": 0.03125,
         "test_accuracy": accuracy, "best_test_accuracy": accuracy, "status": "completed", "run_id": str(seed)}
        for seed, accuracy in ((0, 0.5), (1, 0.7))
    ] + [{"dataset": "d", "layer": "dense", "shape": "dense", "rank": None, "seed": 0, "params": 4096, "compression": 1.0,
          "test_accuracy": 0.9, "best_test_accuracy": 0.9, "status": "completed", "run_id": "x"},
         {"dataset": "d", "layer": "tt", "shape": "4x4x4", "rank": 1, "seed": 0, "params": 48, "compression": 0.01,
          "test_accuracy": None, "best_test_accuracy": None, "status": "running", "run_id": "y"}]
    summary = sweep.summarize(rows)
    assert [(row["shape"], row["seeds"], round(row["test_accuracy"], 3)) for row in summary] == [("8x8", 2, 0.6), ("dense", 1, 0.9)]
    markdown = sweep.table_markdown(summary)
    assert "| shape | max TT rank | layer weights | compression rate | accuracy |" in markdown
    assert "| 8x8 | 1 | 128 | 3.1e-2 | 0.6000 |" in markdown and "| dense | - | 4096 | 1 | 0.9000 |" in markdown
    figure = sweep.sweep_figure(rows)
    assert [trace.name for trace in figure.data] == ["8x8", "dense"]
    assert figure.layout.xaxis.type == "log"


# ---------------------------------------------------------------- CLI
def test_cli_writes_results_csv_png_html(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["sweep", "--dataset", "digits", "--shapes", "4x4x4,8x8", "--ranks", "1,2", "--epochs", "1",
                 "--train-limit", "300", "--workers", "2", "--db", str(tmp_path / "runs.db"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for column in ("shape", "rank", "params", "compression", "test_accuracy", "dataset", "layer", "seed",
                   "best_test_accuracy", "seconds", "run_id"):
        assert column in rows[0]
    assert [(row["shape"], row["rank"]) for row in rows] == [
        ("4x4x4", "1"), ("4x4x4", "2"), ("8x8", "1"), ("8x8", "2"), ("dense", ""), ("matrix rank", "1"), ("matrix rank", "2")]
    assert all(row["status"] == "completed" for row in rows)
    assert (out / "accuracy_vs_weights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"plotly" in (out / "accuracy_vs_weights.html").read_bytes()[:200_000]
    assert "| 8x8 | 2 | 256 |" in (out / "table.md").read_text()
    assert "7 to run" in err and "[7/7]" in err


def test_cli_help_lists_the_presets_and_their_former_names(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "repro2018-mnist" in help_text and "repro2018-cifar10" in help_text
    assert "seed-mnist for repro2018-mnist" in help_text and "seed-cifar10 for repro2018-cifar10" in help_text


def test_cli_former_preset_name_gives_the_same_spec():
    from ttexplore.cli import build_parser
    from ttexplore.cli.sweep import _spec_from_args

    parse = build_parser("sweep").parse_args
    assert _spec_from_args(parse(["sweep", "--preset", "seed-mnist"])) == \
        _spec_from_args(parse(["sweep", "--preset", "repro2018-mnist"])) == sweep.preset_spec("repro2018-mnist")


@pytest.mark.parametrize(
    "flags, flag",
    [
        (["--shapes", "8x8", "--ranks", "x"], "--ranks"),
        (["--shapes", "5x5"], "--shapes"),
        (["--shapes", "8x8", "--epochs", "many"], "--epochs"),
        (["--shapes", "8x8", "--executor", "spark"], "--executor"),
        (["--shapes", "8x8", "--lr", "-1"], "--lr"),
        ([], "--shapes"),
    ],
)
def test_cli_bad_flag_exits_2_with_one_line(tmp_path, capsys, flags, flag):
    code = main(["sweep", "--dataset", "digits", "--db", str(tmp_path / "runs.db"), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("ttexplore sweep: error:") and flag in err
    assert not (tmp_path / "runs.db").exists() or not RunStore(tmp_path / "runs.db").list_runs()


def test_missing_ray_is_a_clear_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ConfigError, match="pip install"):
        sweep.import_ray()
    code = main(["sweep", "--dataset", "digits", "--shapes", "8x8", "--executor", "ray", "--db", str(tmp_path / "runs.db")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--executor" in err and "requirements-ray.txt" in err


# ---------------------------------------------------------------- Ray
_HAVE_RAY = importlib.util.find_spec("ray") is not None


@pytest.mark.skipif(not _HAVE_RAY and os.environ.get("TTEXPLORE_REQUIRE_RAY") != "1",
                    reason="ray is not installed (pip install -r requirements-ray.txt; TTEXPLORE_REQUIRE_RAY=1 makes this fail)")
def test_ray_executor_end_to_end_on_a_local_ray(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    grid = sweep.expand(sweep.make_spec(**TINY))
    finished = []
    sweep.run_sweep(store, grid, "tiny", executor="ray", workers=2,
                    on_done=lambda cell, run_id, summary: finished.append(summary["status"]))
    import ray

    assert not ray.is_initialized()  # the local Ray started for the sweep is shut down after it
    assert finished == ["completed", "completed"]
    rows = sweep.sweep_results(store, grid.cells, "tiny")
    assert all(row["status"] == "completed" and row["test_accuracy"] is not None for row in rows)
    for row in rows:  # the driver recorded the events the tasks returned
        assert [event["kind"] for event in store.metrics(row["run_id"])] == ["eval", "epoch"]


def test_ray_workers_get_the_whole_ttexplore_package():
    import ttexplore
    from ttexplore.experiments.sweep.executors import _init_options

    package = str(Path(ttexplore.__file__).resolve().parent)
    assert _init_options()["runtime_env"]["py_modules"] == [package]
