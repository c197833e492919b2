"""ttexplore.presenters.compress: which runs the Compress page offers, and what it says about shapes that do not fit."""

from __future__ import annotations

from ttexplore.presenters import compress as views


def make_run(run_id, layer="dense", status="completed", weights="w.pt", **config):
    return {"id": run_id, "status": status, "weights_path": weights, "config": {"layer": layer, **config}}


def test_compressible_runs_are_finished_single_layer_runs_with_weights_dense_first():
    runs = [make_run("tt-new", layer="tt"), make_run("dense-new"), make_run("running", status="running"),
            make_run("no-weights", weights=None), make_run("deep", hidden_layers=["tt:4x8x8x4->4x8x8x4:4", "dense:64"]),
            make_run("from-compression", layer="tt", init_from={"path": "u.pt"}), make_run("dense-old"),
            make_run("tt-old", layer="matrix_rank")]
    assert [run["id"] for run in views.compressible_runs(runs)] == ["dense-new", "dense-old", "tt-new", "tt-old"]
    assert views.compressible_runs([]) == []


def test_shape_problem_names_the_sizes_and_shapes_that_fit():
    assert views.shape_problem((4, 8, 8, 4), (4, 8, 8, 4), 1024, 1024) is None
    wrong = views.shape_problem((4, 8, 8, 4), (4, 8, 8, 4), 784, 1024)
    assert wrong == "the modes multiply to 1,024 → 1,024, but W is 784 → 1,024: try 4x7x7x4 → 4x8x8x4"
    # the suggested output modes have as many modes as the input modes typed
    assert views.shape_problem((32, 32), (4, 8, 8, 4), 1024, 1000).endswith("try 4x8x8x4 → 25x40")
    assert views.shape_problem((32, 32), (4, 8, 8, 4), 1024, 1024) == "give as many output modes as input modes (2)"


def test_the_compress_toast_counts_new_runs_only():
    from ttexplore.presenters.compress import queued_text

    assert queued_text(6) == "Queued 6 runs" and queued_text(1) == "Queued 1 run"
    assert queued_text(0, 6) == "Nothing new queued; 6 were already queued moments ago"
    assert queued_text(2, 1) == "Queued 2 runs; 1 was already queued moments ago"
    assert queued_text(0) == "Every run is already done or queued"
