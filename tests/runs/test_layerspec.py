"""Networks of several hidden layers: layer specs, RunConfig.layers (and the older hidden_layers), the store, the models."""

from __future__ import annotations

import json

import pytest
import torch

from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.kinds import TTLayerSpec, layers_text, parse_layer, parse_layers
from ttexplore.runs.models import build_model, hidden_layer_params, hidden_layers, load_model, save_model
from ttexplore.runs.store import RunStore

TWO = ["tt:4x8x8x4->4x4x4x4:2", "dense:32"]


def test_text_forms_read_back_and_dicts_are_canonical():
    layers = parse_layers("tt:4^5->8x16x16x16x8:4; dense:2^8; matrix_rank:100:3; tt:4x8x8x4:2,4,2; tt:2x2:max")
    assert [layer.kind for layer in layers] == ["tt", "dense", "matrix_rank", "tt", "tt"]
    assert layers[0].out_shape((1024,)) == (2**18,) and layers[1].width == 256 and layers[2].rank == 3
    assert layers[3].ranks == (2, 4, 2) and layers[4].ranks is None
    assert parse_layers(layers_text(layers)) == layers
    assert parse_layers([layer.to_dict() for layer in layers]) == layers
    # a dense layer given as modes keeps only its width; fields of other kinds are dropped
    assert parse_layer({"kind": "dense", "out_modes": "4x8", "ranks": 7}) == parse_layer("dense:32")
    assert parse_layer("tt:4x8x8x4").to_dict() == {"kind": "tt", "in_modes": [4, 8, 8, 4], "out_modes": [4, 8, 8, 4], "ranks": 4}


@pytest.mark.parametrize("layers, field, words", [
    (["tt:4x8x8x4", "tt:4x4x4->4x4x4"], "hidden_layers[1].in_modes", "gives 1024 features"),
    (["tt:4x8x8x4->4x4x4:2", "dense:8"], "hidden_layers[0].out_modes", "same number"),
    (["dense:64", "dense"], "hidden_layers[1].width", "e.g. dense:1024"),
    (["dense:64", "tt:8x8:0"], "hidden_layers[1].ranks", "ranks"),
    (["dense:64", {"kind": "lstm"}], "hidden_layers[1].kind", "use one of tt, dense, matrix_rank, conv, ttconv, tt4d, pool"),
    (["dense:64", {"kind": "conv"}], "hidden_layers[1].channels", "is missing: a convolution needs its output channels"),
    (["dense:64", "matrix_rank:10:0"], "hidden_layers[1].matrix_rank", "between 1 and"),
    (["dense:64", "bogus"], "hidden_layers[1]", "tt:IN[->OUT][:RANKS]"),
    (["dense:8"] * 9, "hidden_layers", "at most 8"),
    (["dense:64", f"dense:{2**41}"], "hidden_layers[1].width", "2^40"),
    (["dense:64", "dense:4.5"], "hidden_layers[1].width", "whole number"),
    (["tt:4x8x8x4->2^13", "dense:4"], "hidden_layers[0].out_modes", "modes"),
])
def test_a_bad_layer_is_named_with_its_fix(layers, field, words):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"hidden_layers": layers})
    assert caught.value.field == field and words in str(caught.value)


def test_old_one_layer_configs_keep_their_keys_and_json():
    # keys computed on main before hidden_layers existed: existing sweeps keep resuming
    assert RunConfig().key() == "5e23df29cf89b17b"
    assert RunConfig.from_dict({"layer": "dense", "in_modes": None, "out_modes": None}).key() == "ce35ac0693b80c1a"
    digits = {"dataset": "digits", "pad_to": None, "in_modes": "4x4x4", "out_modes": "4x4x4", "ranks": [2, 3], "epochs": 2}
    assert RunConfig.from_dict(digits).key() == "54c4c944b57f9ba8"
    assert "hidden_layers" not in RunConfig().to_dict() and "init_from" not in RunConfig().to_dict()
    # a one-layer list is the one-layer form
    one = RunConfig.from_dict({"hidden_layers": ["tt:4x8x8x4:4"]})
    assert one == RunConfig() and one.layers == (parse_layer("tt:4x8x8x4:4"),)


def test_several_layers_size_and_describe_the_network():
    config = RunConfig.from_dict({"hidden_layers": TWO, "dataset": "mnist5k"})
    assert config.layer_widths == [1024, 256, 32, 10]
    tt = 1 * 4 * 4 * 2 + 2 * 8 * 4 * 2 + 2 * 8 * 4 * 2 + 2 * 4 * 4 * 1
    assert config.layer_params() == tt + 256 * 32
    assert config.dense_layer_params() == 1024 * 256 + 256 * 32
    assert config.hidden_features == 32 and config.shape_label() == "4x8x8x4->4x4x4x4 | dense 32"
    # one-layer fields given beside hidden_layers must mirror its first layer; contradicting them is an error naming the field
    assert config.layers[0] == TTLayerSpec((4, 8, 8, 4), (4, 4, 4, 4), 2)
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"hidden_layers": TWO, "ranks": 3})
    assert caught.value.field == "ranks"
    assert config.replace(epochs=3).layers == config.layers
    assert config.replace(hidden_layers=["dense:64", "dense:8"]).layer_widths == [1024, 64, 8, 10]
    twin = config.dense_twin()
    assert [layer.kind for layer in twin.layers] == ["dense", "dense"] and twin.layer_widths == config.layer_widths


def test_multi_layer_configs_go_through_the_store_and_back(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    config = RunConfig.from_dict({"hidden_layers": TWO, "epochs": 1})
    run_id = store.create_run(config)
    run = store.get_run(run_id)
    assert RunConfig.from_dict(run["config"]) == config
    assert RunConfig.from_dict(json.loads(config.to_json())).key() == config.key()
    assert run["layer_params"] == config.layer_params() and run["shape"] == config.shape_label()
    assert store.find_completed(config) is None


def test_multi_layer_models_build_save_and_load(tmp_path):
    config = RunConfig.from_dict({"dataset": "digits", "pad_to": None, "hidden_layers": ["tt:4x4x4->4x4x2:2", "matrix_rank:16:2", "dense:12"]})
    model = build_model(config, torch.Generator().manual_seed(0))
    assert [name for name, _ in hidden_layers(model)] == ["hidden", "hidden_2", "hidden_3"]
    assert hidden_layer_params(model) == config.layer_params()
    assert model(torch.rand(5, 1, 8, 8)).shape == (5, 10)
    path = save_model(model, config, tmp_path / "model.pt")
    loaded, again = load_model(path)
    assert again == config
    images = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(loaded(images), model(images))
    from ttexplore import TTLinear

    assert TTLinear.load(path).out_modes == (4, 4, 2)


def test_one_hidden_layer_draws_the_same_weights_as_before():
    # the child names and the order of draws are those of the one-layer net, so seeded runs repeat
    model = build_model(RunConfig(), torch.Generator().manual_seed(0))
    assert [name for name, _ in model.named_children()] == ["pad", "flatten", "hidden", "relu", "head"]
