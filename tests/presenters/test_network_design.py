"""Explore's design of a network typed layer by layer (a CNN): presets sized for the dataset, layers added, edited and
removed, the suggestions always valid, and the numbers of the tiles and the table against the built modules."""

from __future__ import annotations

import pytest

from ttexplore.presenters import network as net_views
from ttexplore.presenters.design import DesignState
from ttexplore.presenters.preview import CUSTOM
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.data_info import DATASETS, dataset_info
from ttexplore.runs.kinds import parse_layer

#: The datasets whose layout the app knows (CIFAR-10's 3x32x32 included: nothing here loads images).
ALL_DATASETS = list(DATASETS)


def typed(preset: str = "tt-convnet", dataset: str = "mnist5k") -> DesignState:
    design = DesignState({})
    design.start()
    design.values["dataset"] = dataset
    design.dataset_changed()
    design.values["preset"] = preset
    design.apply_preset()
    return design


def module_counts(config: RunConfig) -> tuple[int, list[tuple[int, int]]]:
    """Every parameter of the built network, and each hidden layer's (weights, bias) numel, counted on the modules."""
    from ttexplore.runs.models import build_model, hidden_layers

    model = build_model(config)
    layers = []
    for _, module in hidden_layers(model):
        bias = getattr(module, "bias", None)
        total = sum(parameter.numel() for parameter in module.parameters())
        layers.append((total - (bias.numel() if bias is not None else 0), bias.numel() if bias is not None else 0))
    return sum(parameter.numel() for parameter in model.parameters()), layers


def test_the_picker_offers_the_cnns_sized_for_each_dataset():
    for dataset in ALL_DATASETS:
        design = typed("tt-convnet", dataset)
        names = [preset.name for preset in design.presets()]
        assert names[-2:] == ["convnet", "tt-convnet"]
        values = design.values
        assert values["typed_net"] and values["preset"] == "tt-convnet" and values["pad_to"] == 0
        config = design.config()
        side = dataset_info(dataset).side
        assert config.input_shape == (dataset_info(dataset).channels, side, side)  # unpadded, as the preset trains
        assert config.layer_shapes[-2][1:] == (side // 8, side // 8)  # three pools of 2 before the FC layer
        assert [layer.text() for layer in config.layers] == values["more_layers"]
        assert values["more_layer_0"] == "conv:32:3"


def test_layers_are_added_edited_and_removed_and_the_preset_follows():
    design = typed()
    values = design.values
    layers = list(values["more_layers"])
    design.add_layer()  # after the TT FC layer: a TT layer of its width first
    assert values["more_layers"][:-1] == layers and parse_layer(values["more_layers"][-1]).has_tt_cores
    assert values["preset"] == CUSTOM and design.config().layers[-1].out_shape((256,)) == (256,)
    design.remove_layer(len(layers))
    assert values["more_layers"] == layers and values["preset"] == "tt-convnet"
    values["more_layer_2"] = "conv:64:3"  # the first TT convolution typed dense: the convnet's layer
    design.layer_typed(2)
    assert design.config().layers[2].params((32, 14, 14)) == 64 * 32 * 9 and values["preset"] == CUSTOM
    values["more_layer_2"] = "ttconv:2x4x4->4x4x4:4:3"
    design.layer_typed(2)
    assert values["preset"] == "tt-convnet"
    values["more_layer_2"] = "ttconv:4x8->4x4x4:4:3"  # 32 channels, but as 4x8: the picker says custom, the net stands
    design.layer_typed(2)
    assert values["preset"] == CUSTOM and design.config().layers[2].in_modes == (4, 8, 1)
    values["more_layer_2"] = "ttconv:4x4->4x4x4:4:3"  # 16 channels where 32 come in: the message names the box
    design.layer_typed(2)
    with pytest.raises(ConfigError, match="Hidden layer 3") as wrong:
        design.config()
    assert wrong.value.field == "layers[2].in_modes" and design.layer_title(2) == "Hidden layer 3"
    design.labels = {"in_modes": "Input modes", "epochs": "Epochs"}  # the page's: the shape boxes' are not this box's
    assert design.error_labels() == {"epochs": "Epochs"}
    for _ in range(10):  # a typed network keeps at least one layer
        design.remove_layer(0)
    assert len(values["more_layers"]) == 1


def test_one_rank_for_every_tt_layer():
    design = typed()
    values = design.values
    values["net_rank"] = 8
    design.set_all_ranks()
    config = design.config()
    assert [layer.rank_setting for layer in config.layers if layer.has_tt_cores] == [8, 8, 8]
    assert values["more_layers"][0] == "conv:32:3" and values["preset"] == CUSTOM
    values["net_rank"] = 4
    design.set_all_ranks()
    assert values["preset"] == "tt-convnet"


def test_the_switch_between_typed_layers_and_the_shape_boxes():
    design = typed("Paper: pad to 32x32, 4x8x8x4")
    values = design.values
    assert not values.get("typed_net")
    values["typed_net"] = True
    design.typed_changed()  # the paper's net, typed: its TT layer's text in the first box
    assert values["more_layers"] == ["tt:4x8x8x4:4"] and design.config().pad_to == 32
    values["more_layer_0"] = "tt:4x8x8x4:2"
    design.layer_typed(0)
    values["typed_net"] = False
    design.typed_changed()  # back to the boxes, at the typed rank
    assert (values["in_modes"], values["max_rank"], values["more_layers"]) == ("4x8x8x4", 2, [])
    values["preset"] = "tt-convnet"
    design.apply_preset()
    values["typed_net"] = False
    design.typed_changed()  # a first convolution the boxes cannot describe: the dataset's first preset
    assert values["preset"].startswith("Paper") and not values["typed_net"]


def test_a_dataset_change_sizes_the_network_preset_again():
    design = typed("tt-convnet", "mnist5k")
    design.values["dataset"] = "digits"
    design.dataset_changed()
    assert design.values["preset"] == "tt-convnet" and design.config().input_shape == (1, 8, 8)
    assert design.config().layer_shapes[-2] == (128, 1, 1)


@pytest.mark.parametrize("dataset", ALL_DATASETS)
def test_every_suggestion_is_valid_after_every_layer_of_every_preset(dataset):
    design = DesignState({})
    design.start()
    design.values["dataset"] = dataset
    design.dataset_changed()
    for preset in [preset.name for preset in design.presets()]:
        design.values["preset"] = preset
        design.apply_preset()
        config = design.config()
        for end in range(len(config.layers) + 1):  # after the input (a typed net's empty start) and after each layer
            prefix = config.layers[:end] if design.typed else config.layers[:max(end, 1)]
            offered = net_views.layer_suggestions(prefix, config.input_shape)
            assert offered, (preset, end)
            for suggestion in offered:
                grown = config.replace(layers=[*prefix, suggestion.text])  # RunConfig checks every layer
                assert grown.layers[-1].text() == suggestion.text
        for suggestion in design.suggestions():
            assert config.replace(layers=[*config.layers, suggestion.text]).layers[-1].text() == suggestion.text


def test_suggestions_follow_the_last_layer():
    config = RunConfig.for_dataset("mnist5k", layers=["conv:32:3"])
    after_conv = [item.text for item in net_views.layer_suggestions(config.layers, config.input_shape)]
    assert after_conv[:2] == ["conv:64:3", "pool:2"]  # another convolution or a pool
    pooled = RunConfig.for_dataset("mnist5k", layers=["conv:32:3", "pool:2"])
    after_pool = net_views.layer_suggestions(pooled.layers, pooled.input_shape)
    assert after_pool[0].text == "conv:64:3" and after_pool[-1].text.startswith("matrix_rank")
    dense = next(item for item in after_pool if item.text.startswith("dense"))
    assert "flattening the 32×14×14 images" in dense.words  # a FC layer after images flattens them
    assert [item.text for item in net_views.layer_suggestions([], config.input_shape)][0] == "conv:32:3"
    vector = RunConfig.for_dataset("digits", layers=["dense:32"])
    after_vector = [parse_layer(item.text) for item in net_views.layer_suggestions(vector.layers, vector.input_shape)]
    assert [layer.name for layer in after_vector] == ["dense", "tt", "matrix_rank"]  # no convolution after a vector
    assert after_vector[0].width == 32 and after_vector[1].in_modes == after_vector[1].out_modes  # as wide as it


@pytest.mark.parametrize("preset, dataset", [("tt-convnet", "mnist5k"), ("tt-convnet", "digits"), ("convnet", "digits"),
                                             ("tt-convnet", "cifar10")])
def test_the_tiles_and_the_table_count_what_the_built_modules_hold(preset, dataset):
    config = typed(preset, dataset).config()
    view = net_views.network_preview(config)
    tiles, table = net_views.network_tiles(view), net_views.network_table(view)
    total, layers = module_counts(config)
    dense_total, _ = module_counts(config.dense_twin())
    assert tiles["weights"]["value"] == f"{total:,}" and tiles["weights"]["label"] == "Network parameters"
    assert tiles["dense"]["value"] == f"{dense_total:,}"
    factor = dense_total / total
    assert tiles["compression"]["value"] == (f"{factor:,.0f}×" if factor >= 10 else f"{factor:.2f}×")
    assert [(row["weights"], row["bias"]) for row in table[:len(layers)]] == layers
    assert table[-1]["layer"] == "whole network" and table[-1]["parameters"] == total
    assert sum(row["parameters"] for row in table[:-1]) == total  # the layers and the head add up
    assert table[-2]["layer"].startswith(f"{len(layers) + 1}: head") and table[-2]["in → out"].endswith(" → 10")
    assert view.flops == sum(row["FLOPs"] for row in table[:-1])
    if preset == "tt-convnet":
        assert factor > 20 and [row["ranks"] for row in table if row["ranks"]] == ["4,4,4"] * 3


def test_the_memory_tile_and_box_say_the_whole_net(monkeypatch):
    from ttexplore.presenters import design as views

    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "8G")
    config = typed("tt-convnet").config()
    view = net_views.network_preview(config)
    assert net_views.network_tiles(view)["memory"]["delta"] == "within the 8.0 GiB budget"
    _, caption = views.memory_tiles(config)
    assert f"{config.dense_net_params():,} parameters against {config.net_params():,}" in caption
    monkeypatch.setenv("TTEXPLORE_MEMORY_LIMIT", "20M")
    assert "TTEXPLORE_MEMORY_LIMIT" in net_views.network_preview(config).memory_warning


def test_the_core_diagram_of_a_tt_convolution():
    config = typed("tt-convnet").config()
    drawable = net_views.diagram_layers(config)
    assert list(drawable) == [2, 4, 6] and drawable[2].startswith("3: TT conv 2x4x4->4x4x4")
    figure = net_views.layer_diagram(config, 2)
    notes = [note.text for note in figure.layout.annotations]
    # the spatial core (1, 3*3, 1, r_0) first, then a channel core (r_{k-1}, c_k, s_k, r_k) per mode
    assert notes[:3] == ["<b>G<sub>0</sub></b>", "1×9×1×4", "(x, y): 3×3"]
    assert "4×2×4×4" in notes and "c<sub>1</sub>=2" in notes and "s<sub>3</sub>=4" in notes
    weights = 1 * 9 * 1 * 4 + 4 * 2 * 4 * 4 + 4 * 4 * 4 * 4 + 4 * 4 * 4 * 1  # the four cores at rank 4
    assert f"{weights:,} weights" in figure.layout.title.text and config.layers[2].params(config.layer_shapes[2]) == weights
    fc = net_views.layer_diagram(config, 6)
    assert fc.layout.title.text.startswith("4 cores")
    with pytest.raises(ValueError, match="no cores to draw"):
        net_views.layer_diagram(config, 0)
