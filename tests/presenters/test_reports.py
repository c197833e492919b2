"""ttexplore.presenters.reports: labels, durations and the 2018 reproduction's summaries, from plain run dicts.
(A run's progress, the runs table and the curve series are tracking's: tests/presenters/test_tracking.py.)"""

from __future__ import annotations

import pytest

from ttexplore.presenters import groups, plots
from ttexplore.presenters import reports


def make_run(run_id="20260101-000000-abcdef", layer="tt", shape="4x8x8x4", ranks=4, status="completed",
             best=0.95, params=2176, compression=2176 / 1048576, dataset="mnist5k", epochs=2, label="", seed=0, lr=0.003):
    modes = [int(mode) for mode in shape.split("x")] if layer == "tt" and "^" not in shape else [4, 8, 8, 4]
    config = {"layer": layer, "ranks": ranks if layer == "tt" else None, "epochs": epochs, "lr": lr,
              "batch_size": 64, "seed": seed, "dataset": dataset, "in_modes": modes, "out_modes": modes,
              "matrix_rank": 4}
    return {"id": run_id, "config": config, "layer": layer, "shape": shape if layer == "tt" else layer,
            "status": status, "best_test_accuracy": best, "final_test_accuracy": best, "layer_params": params,
            "compression": compression, "dataset": dataset, "created_at": 1_700_000_000.0, "started_at": 1_700_000_001.0,
            "finished_at": 1_700_000_031.0, "error": None, "label": label}


def test_labels():
    assert reports.run_label(make_run()) == "TT 4x8x8x4 r=4 · mnist5k · #abcdef"
    assert reports.run_label(make_run(ranks=[2, 4, 2]), with_id=False) == "TT 4x8x8x4 r=2,4,2 · mnist5k"
    assert reports.run_label(make_run(ranks=None), with_id=False) == "TT 4x8x8x4 r=max · mnist5k"
    dense = make_run(layer="dense", label="baseline")
    assert reports.run_label(dense, with_id=False) == "dense 1024->1024 · mnist5k · baseline"
    assert reports.run_ranks_text(dense) == ""


def test_run_shape_text_comes_from_the_config_in_the_house_form():
    ten_twos = make_run(shape="2x2x2x2x2x2x2x2x2x2")
    assert reports.run_shape_text(ten_twos) == "2^10"
    assert reports.run_label(ten_twos, with_id=False) == "TT 2^10 r=4 · mnist5k"
    stored_long_ago = make_run()
    stored_long_ago["shape"] = "whatever an old row said"  # the config decides, not the stored column
    assert reports.run_shape_text(stored_long_ago) == "4x8x8x4"
    rectangular = make_run()
    rectangular["config"].update(in_modes=[4, 7, 4, 7], out_modes=[5, 5, 8, 4])
    assert reports.run_shape_text(rectangular) == "4x7x4x7->5x5x8x4"
    assert reports.run_shape_text(make_run(layer="dense")) == "dense"


def test_format_duration():
    assert reports.format_duration(None) == "" and reports.format_duration(float("nan")) == ""
    assert reports.format_duration(5.04) == "5.0s" and reports.format_duration(-3) == "0.0s"
    assert reports.format_duration(75.2) == "1m 15s" and reports.format_duration(7300) == "2h 01m"


def test_accuracy_points_average_the_seeds_of_each_shape_and_rank():
    runs = [
        make_run("a", ranks=1, params=160, best=0.90),
        make_run("b", ranks=2, params=576, best=0.93),
        make_run("c", ranks=2, params=576, best=0.94, seed=1),  # a second seed: averaged, with its range
        make_run("d", layer="dense", params=1048576, best=0.97),
        make_run("e", ranks=3, params=1248, best=None, status="failed"),
    ]
    points = groups.accuracy_points(runs)
    assert [(p["shape"], p["layer_params"], p["test_accuracy"], p["n"]) for p in points] == pytest.approx([
        ("4x8x8x4", 160, 0.90, 1), ("4x8x8x4", 576, 0.935, 2), ("dense", 1048576, 0.97, 1)])
    assert (points[1]["low"], points[1]["high"], points[1]["band"]) == (0.93, 0.94, "min-max")
    figure = plots.accuracy_vs_params(points)
    assert {trace.name for trace in figure.data} >= {"4x8x8x4", "dense"}
    assert figure.layout.xaxis.type == "log"


def test_accuracy_points_keep_the_best_group_where_other_settings_meet():
    runs = [make_run("a", ranks=2, params=576, best=0.90), make_run("b", ranks=2, params=576, best=0.92, lr=0.01),
            make_run("c", ranks=2, params=576, best=0.96, lr=0.01, seed=1)]
    (point,) = groups.accuracy_points(runs)
    assert (point["test_accuracy"], point["n"]) == pytest.approx((0.94, 2))


def test_rank_table_is_the_seeds_slide_13():
    runs = [make_run(str(rank), ranks=rank, params=rank * 100, compression=rank * 1e-4, best=0.9 + rank / 100)
            for rank in (1, 2, 3, 4)] + [make_run("other", shape="2x2", ranks=1), make_run("d", layer="dense")]
    runs += [make_run(f"4-{seed}", ranks=4, params=400, compression=4e-4, best=0.94 + seed / 100, seed=seed) for seed in (1, 2)]
    table = groups.rank_table(runs, shape="4x8x8x4")
    assert list(table["max TT core rank"]) == [1, 2, 3, 4]
    assert list(table["accuracy"]) == pytest.approx([0.91, 0.92, 0.93, 0.95])  # rank 4: 0.94, 0.95, 0.96
    assert list(table["runs"]) == [1, 1, 1, 3] and table["± std"].iloc[3] == pytest.approx(0.01)
    assert list(table["compression rate"]) == pytest.approx([1e-4, 2e-4, 3e-4, 4e-4])


def test_ranks_in_labels_are_the_ranks_the_layer_uses():
    clipped = make_run(shape="4x4", ranks=100)  # 4x4 -> 4x4 has one boundary of maximal useful rank 16
    assert reports.run_ranks_text(clipped) == "16"
    assert reports.run_label(clipped, with_id=False) == "TT 4x4 r=16 · mnist5k"


def test_accuracy_points_keep_training_budgets_apart():
    runs = [make_run("a", ranks=1, params=160, best=0.80, epochs=1), make_run("b", ranks=2, params=576, best=0.85, epochs=1),
            make_run("c", ranks=1, params=160, best=0.95, epochs=60), make_run("d", ranks=2, params=576, best=0.97, epochs=60)]
    points = groups.accuracy_points(runs)
    assert sorted({point["group"] for point in points}) == ["4x8x8x4 · 1 epoch", "4x8x8x4 · 60 epochs"]
    figure = plots.accuracy_vs_params(points)
    assert {trace.name: list(trace.y) for trace in figure.data} == {"4x8x8x4 · 1 epoch": [0.80, 0.85],
                                                                   "4x8x8x4 · 60 epochs": [0.95, 0.97]}
    # one budget: the lines are the shapes, as in the 2018 reproduction
    assert {point["group"] for point in groups.accuracy_points(runs[:2])} == {"4x8x8x4"}
