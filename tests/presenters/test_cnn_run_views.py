"""CNN runs as the Runs and Run pages show them: the kinds of their layers, the ranks of their first TT layer, every
parameter of the network, the configuration a row per layer; and the Compress page's views of a network."""

from __future__ import annotations

from ttexplore.presenters import compress as compress_views
from ttexplore.presenters import reports, tracking
from ttexplore.runs.presets import run_preset
from ttexplore.runs.store import RunStore


def stored(tmp_path, config, status="completed"):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run(config, status="running")
    store.finish(run_id, status)
    return store.get_run(run_id)


def test_a_cnn_run_in_the_runs_table(tmp_path):
    config = run_preset("tt-convnet", dataset="digits", epochs=1)
    run = stored(tmp_path, config)
    row = tracking.hparams_table([run]).iloc[0]
    assert row["layer"] == " + ".join(dict.fromkeys(layer.title for layer in config.layers))
    assert "TT conv" in row["layer"] and "max pool" in row["layer"]
    first_tt = next(layer for layer, shape in zip(config.layers, config.layer_shapes) if layer.ranks_used(shape))
    assert row["ranks"] == str(first_tt.rank_setting)  # the first layer with ranks, not the first (dense) conv
    assert row["net weights"] == config.net_params() and row["layer weights"] == config.layer_params()
    assert list(tracking.hparams_table([run]).columns) == tracking.hparam_columns()


def test_the_run_page_counts_a_cnn_whole_and_lists_its_layers(tmp_path):
    config = run_preset("tt-convnet", dataset="digits", epochs=1)
    run = stored(tmp_path, config)
    tile = tracking.weights_tile(run)
    assert tile["label"] == "Network parameters" and tile["value"] == f"{config.net_params():,}"
    assert tile["delta"] == tracking.compression_text(config.net_params() / config.dense_net_params())
    rows = {row["setting"]: row["value"] for row in reports.config_rows(run)}
    for index, layer in enumerate(config.layers, start=1):
        assert rows[f"hidden layer {index}"] == f"{layer.text()} · {layer.label()}"
    assert rows["network parameters"] == f"{config.net_params():,}" and "layers" not in rows
    assert rows["dataset"] == "digits" and rows["epochs"] == "1"
    mlp = stored(tmp_path, run_preset("paper", epochs=1))
    assert tracking.weights_tile(mlp)["label"] == "Layer weights"  # an MLP keeps the 2018 figures' count
    assert {row["setting"]: row["value"] for row in reports.config_rows(mlp)}["hidden layer 1"].startswith("tt:4x8x8x4")


def test_dense_cnns_can_be_compressed_tt_cnns_and_half_done_runs_not(tmp_path):
    dense = stored(tmp_path, run_preset("convnet", dataset="digits", epochs=1))
    tt = stored(tmp_path, run_preset("tt-convnet", dataset="digits", epochs=1))
    for run in (dense, tt):
        run["weights_path"] = "weights.pt"
    assert compress_views.is_network_run(dense) and not compress_views.is_network_run(stored(tmp_path, run_preset("paper")))
    assert [run["id"] for run in compress_views.compressible_runs([tt, dense])] == [dense["id"]]


def test_the_compress_views_of_a_network():
    rows = [{"rank": 2, "ranks": [2, 2, 2], "params": 900, "net_params": 3000, "dense_net_params": 120000,
             "compression": 0.01, "rel_error": 0.6, "layer_errors": [0.5, 0.6], "test_accuracy": 0.3,
             "finetuned_test_accuracy": 0.7, "scratch_test_accuracy": 0.6, "finetune_epochs": 1, "scratch_epochs": 1}]
    table = compress_views.compress_table(rows, network=True)
    assert table["weights"].iloc[0] == 3000 and table["compression"].iloc[0] == 3000 / 120000
    assert table["layer errors"].iloc[0] == "0.500, 0.600"
    figure = compress_views.compress_figure(rows, "params", 120000, 0.8, network=True)
    assert figure.layout.xaxis.title.text == "network parameters (log)"
    assert list(figure.data[1].x) == [3000] and figure.data[-1].name == "dense network"
    spectra = compress_views.spectra_figure([[3.0, 1.0], [2.0, 2.0, 1.0]], 0.5, [1, 2],
                                            boundaries=["r_0: kernel | channels", "r_1"])
    assert [trace.name for trace in spectra.data if trace.showlegend is not False][:2] == \
        ["r_0: kernel | channels (2 values)", "r_1 (3 values)"]
    words = compress_views.needed_text([[3.0, 1.0]], (9, 2), (1, 2), 0.9, 36)
    assert "ranks **1**" in words and f"**{1 * 9 * 1 * 1 + 1 * 2 * 2 * 1}** weights" in words  # the two cores at rank 1
