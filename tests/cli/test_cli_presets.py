"""``train --preset`` / ``--list-presets`` and ``--hidden-layer`` (train and count)."""

from __future__ import annotations

import json

from ttexplore.cli import main


def test_list_presets_names_each_with_its_widths(capsys):
    assert main(["train", "--list-presets"]) == 0
    out = capsys.readouterr().out
    assert "wide:" in out and "paper:" in out and "1,024 -> 262,144 -> 1,024 -> 10" in out


def test_an_unknown_preset_is_one_line_naming_the_flag(capsys):
    assert main(["train", "--preset", "huge"]) == 2
    error = capsys.readouterr().err.strip()
    assert "--preset" in error and "wide" in error and len(error.splitlines()) == 1


def test_the_dense_twin_of_the_wide_preset_is_refused_before_any_work(monkeypatch, capsys):
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "4G")
    assert main(["train", "--preset", "wide", "--hidden-layer", "dense:262144", "--hidden-layer", "dense:1024"]) == 2
    error = capsys.readouterr().err
    assert "memory" in error and "4.0 GiB" in error
    # the preset itself passes the same check (count shows the estimate without training)
    assert main(["count", "--hidden-layer", "tt:4^5->8x16x16x16x8:4", "--hidden-layer", "tt:8x16x16x16x8->4^5:4"]) == 0
    out = capsys.readouterr().out
    assert "536870912" in out and "hidden_layers[1]" in out and "1,024 -> 262,144 -> 1,024 -> 10" in out


def test_train_several_hidden_layers_reports_widths_and_summed_weights(capsys):
    code = main(["train", "--dataset", "digits", "--hidden-layer", "tt:4x4x4->2x4x4:2", "--hidden-layer", "dense:16",
                 "--epochs", "1", "--train-limit", "64", "--json", "-", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["layer_widths"] == [64, 32, 16, 10]
    tt = 1 * 4 * 2 * 2 + 2 * 4 * 4 * 2 + 2 * 4 * 4 * 1
    assert summary["params"] == tt + 32 * 16 and summary["dense_params"] == 64 * 32 + 32 * 16
    assert summary["config"]["layers"][1] == {"kind": "dense", "width": 16}  # the config in its one form
    assert summary["config"]["epochs"] == 1 and summary["config"]["lr"] == 3e-3  # the other flags as usual


def test_one_layer_flags_beside_hidden_layers_are_refused(capsys):
    assert main(["train", "--dataset", "digits", "--hidden-layer", "dense:16", "--ranks", "3"]) == 2
    assert "--ranks" in capsys.readouterr().err
    assert main(["train", "--dataset", "digits", "--hidden-layer", "dense:16", "--hidden-layer", "tt:4x8:2"]) == 2
    error = capsys.readouterr().err
    assert "--hidden-layer" in error and "Hidden layer 2: in_modes" in error  # the layer as the user counts them


def test_train_a_cnn_preset_reports_the_whole_network_and_each_layer(capsys):
    code = main(["train", "--preset", "tt-convnet", "--dataset", "digits", "--epochs", "1", "--train-limit", "64",
                 "--json", "-", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    from ttexplore.runs.models import build_model
    from ttexplore.runs.config import RunConfig

    config = RunConfig.from_dict(summary["config"])
    model = build_model(config)
    assert config.pad_to is None and [layer["kind"] for layer in summary["layers"]] == [
        "conv", "pool", "ttconv", "pool", "ttconv", "pool", "tt", "head"]
    assert summary["net_params"] == sum(parameter.numel() for parameter in model.parameters())
    dense_model = build_model(config.dense_twin())
    assert summary["dense_net_params"] == sum(parameter.numel() for parameter in dense_model.parameters())
    # params: the hidden layers' weights without biases, as for every network (the 2018 figures' x axis)
    hidden = [module for name, module in model.named_children() if name.startswith("hidden")]
    assert summary["params"] == sum(parameter.numel() for module in hidden
                                    for name, parameter in module.named_parameters() if name != "bias")
    ttconv = summary["layers"][2]
    assert ttconv["in_shape"] == [32, 4, 4] and ttconv["out_shape"] == [64, 4, 4] and ttconv["ranks"] == [4, 4, 4]
    assert ttconv["dense_weights"] == 64 * 32 * 9 and ttconv["weights"] == 9 * 4 + 4 * 2 * 4 * 4 + 4 * 4 * 4 * 4 + 4 * 4 * 4
    assert summary["net_compression_factor"] == summary["dense_net_params"] / summary["net_params"]


def test_count_prints_a_row_per_layer_of_a_cnn(capsys):
    assert main(["count", "--preset", "convnet", "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    assert "network parameters  128,266" in out
    assert "hidden_layers[2]    conv 64 3x3: 18,432 weights (dense 18,432) + 64 bias; 32x4x4 -> 64x4x4; 589,824 FLOPs" in out
    assert "hidden_layers[1]    max pool 2: 0 weights (dense 0) + 0 bias; 32x8x8 -> 32x4x4; 0 FLOPs" in out
    assert "head                head 256->10: 2,560 weights" in out
    assert main(["count", "--preset", "convnet", "--pad-to", "6", "--dataset", "digits"]) == 2
    assert "at least 8x8" in capsys.readouterr().err
