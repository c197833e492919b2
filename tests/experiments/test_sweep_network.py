"""A sweep of a network's TT layers (a CNN): every layer with TT cores at each rank beside its dense twin, read back
from the store with the same labels, the figure and table counting every parameter of the network; the CLI's
--network and its one-line errors."""

from __future__ import annotations

import pytest

from ttexplore.cli import main
from ttexplore.experiments import sweep
from ttexplore.runs.config import ConfigError
from ttexplore.runs.presets import run_preset
from ttexplore.runs.store import RunStore


def grid(ranks="2,4,8", seeds="0,1", dataset="digits", **values):
    return sweep.expand(sweep.make_spec("cnn", dataset, "", ranks, seeds, network=values.pop("network", "tt-convnet"),
                                        epochs=1, **values))


def test_every_tt_layer_takes_each_rank_beside_the_dense_twin():
    cells = grid().cells
    preset = run_preset("tt-convnet", dataset="digits")
    tt_cells = [cell for cell in cells if cell.rank is not None]
    assert [(cell.rank, cell.config.seed) for cell in tt_cells] == [(2, 0), (2, 1), (4, 0), (4, 1), (8, 0), (8, 1)]
    for cell in tt_cells:
        assert cell.shape == cell.config.label == "tt-convnet"
        for layer, theirs in zip(cell.config.layers, preset.layers):
            if theirs.has_tt_cores:  # every TT layer at the cell's rank, the rest as the preset has them
                assert layer == theirs.with_ranks(cell.rank)
            else:
                assert layer == theirs
    twins = [cell for cell in cells if cell.rank is None]
    assert [cell.shape for cell in twins] == ["tt-convnet dense twin"] * 2
    assert twins[0].config.layers == preset.dense_twin().layers and twins[0].config.net_params() == \
        run_preset("convnet", dataset="digits").net_params()
    assert len({cell.key for cell in cells}) == len(cells) == 8
    assert grid(seeds="0").counts() == {"conv": 1, "ttconv": 3}  # counted by their first TT kind


def test_a_rank_above_the_useful_ones_is_clipped_once():
    spec_grid = grid(ranks="4,64,128", seeds="0", network="conv:8:3; pool:2; ttconv:2x4->2x4:4:3; dense:16")
    ranked = [cell for cell in spec_grid.cells if cell.rank is not None]
    assert len(ranked) == 2  # 64 and 128 both clip to the maximal useful ranks: one network, one cell
    layer = ranked[1].config.layers[2]
    assert layer.ranks_used(ranked[1].config.layer_shapes[2]) == layer.max_useful_ranks() and not layer.clipping()
    assert any(f"rank 64 is above the maximal useful ranks of {layer.part_label()}" in note for note in spec_grid.notes)
    assert ranked[0].shape == "network" and ranked[0].config.layers[0].text() == "conv:8:3"


@pytest.mark.parametrize("network, words", [
    ("convnet", "no layer with TT cores"), ("paper", "one TT layer"), ("blah", "neither a preset"),
    ("conv:8:3; ttconv:4x4->4x4:2:3", "Hidden layer 2"), ("", "empty")])
def test_a_network_that_cannot_be_swept_says_why(network, words):
    with pytest.raises(ConfigError, match=words) as error:
        grid(network=network)
    assert error.value.field == "network"


def finished(store: RunStore, cell, accuracy: float) -> str:
    run_id = store.create_run(cell.config, sweep="cnn", status="running")
    store.add_event(run_id, {"kind": "epoch", "epoch": 1.0, "step": 10, "elapsed_s": 1.0, "test_accuracy": accuracy,
                             "test_loss": 1.0, "train_loss": 1.0, "train_accuracy": accuracy})
    store.finish(run_id, "completed")
    return run_id


def test_results_count_every_parameter_and_the_store_gives_the_same_cells(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    cells = grid(seeds="0").cells
    for index, cell in enumerate(cells):
        finished(store, cell, 0.5 + 0.1 * index)
    again = sweep.cells_from_store(store, "cnn")
    assert [(cell.shape, cell.rank, cell.key) for cell in again] == [(cell.shape, cell.rank, cell.key) for cell in cells]
    rows = sweep.sweep_results(store, again, "cnn")
    assert [row["params"] for row in rows] == [cell.config.net_params() for cell in cells]
    twin = rows[-1]
    assert twin["layer"] == "conv" and twin["compression"] == 1.0
    assert rows[0]["compression"] == pytest.approx(cells[0].config.net_params() / twin["params"])
    assert sweep.counts_network(rows) and sweep.weights_column(rows) == "network parameters"
    figure = sweep.sweep_figure(rows)
    assert figure.layout.xaxis.title.text == sweep.X_TITLES[True]
    assert [trace.name for trace in figure.data] == ["tt-convnet", "tt-convnet dense twin"]
    assert list(figure.data[0].x) == [cell.config.net_params() for cell in cells[:-1]]
    table = sweep.results_table(sweep.summarize(rows))
    assert [row["shape"] for row in table] == ["tt-convnet"] * 3 + ["tt-convnet dense twin"]  # the baseline last
    assert "| shape | max TT rank | network parameters |" in sweep.table_markdown(sweep.summarize(rows))


def test_a_sweep_of_shapes_still_counts_the_first_layer():
    rows = [{"dataset": "d", "layer": "tt", "shape": "8x8", "rank": 1, "seed": 0, "params": 128, "compression": 0.03,
             "test_accuracy": 0.5, "best_test_accuracy": 0.5, "status": "completed", "run_id": "a", "network": False}]
    assert not sweep.counts_network(rows) and sweep.weights_column(rows) == "layer weights"
    assert sweep.sweep_figure(rows).layout.xaxis.title.text == sweep.X_TITLES[False]


@pytest.mark.parametrize("arguments, words", [
    (["--network", "tt-convnet", "--shapes", "4x4"], "not both"), (["--network", ""], "empty"),
    (["--network", "convnet"], "no layer with TT cores"), (["--network", "nope"], "neither a preset")])
def test_the_cli_refuses_in_one_line(arguments, words, tmp_path, capsys, monkeypatch):
    import ttexplore.runs.data as data

    monkeypatch.setattr(data, "load_dataset", lambda *args, **kwargs: pytest.fail("loaded data before the checks"))
    code = main(["sweep", "--dataset", "digits", "--ranks", "2", "--out", str(tmp_path / "out"), *arguments])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--network" in lines[0] and words in lines[0]
