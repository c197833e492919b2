"""The image kinds (conv, ttconv, tt4d, pool): text and dict round trips, sizes and FLOPs against the modules
they build (weights counted by numel, FLOPs by torch's FlopCounterMode), their checks, and a CNN's counts
against the network built from it."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ttexplore.costmodel.conv import best_conv_strategy
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.kinds import (ConvLayerSpec, PoolLayerSpec, TT4dLayerSpec, TTConvLayerSpec, all_kinds, kind_named,
                                  parse_layer)
from ttexplore.runs.models import build_model, hidden_layer_params, hidden_layers, net_params
from ttexplore.runs.network import network_rows, network_summary

IMAGE_KINDS = [
    (ConvLayerSpec(8, 3), (3, 9, 9)),
    (ConvLayerSpec(6, 5, 2), (2, 11, 11)),
    (ConvLayerSpec(4, 2), (3, 8, 8)),
    (TTConvLayerSpec((2, 3), (3, 2), 2, 3), (6, 9, 9)),
    (TTConvLayerSpec((2, 2, 2), (2, 4, 1), (2, 3, 2), 3, 2), (8, 10, 10)),
    (TTConvLayerSpec((4,), (5,), None, 1), (4, 6, 6)),
    (TT4dLayerSpec(8, 2, 3), (6, 9, 9)),
    (TT4dLayerSpec(5, (3, 4, 2), 5, 2), (4, 12, 12)),
    (PoolLayerSpec(2), (3, 9, 9)),
    (PoolLayerSpec(3), (2, 9, 10)),
]


@pytest.mark.parametrize("layer, in_shape", IMAGE_KINDS)
def test_an_image_kind_reads_back_its_text_and_dict(layer, in_shape):
    assert parse_layer(layer.text()) == layer
    assert parse_layer(json.loads(json.dumps(layer.to_dict()))) == layer
    assert kind_named(layer.name) is type(layer)
    assert not layer.flattens


def test_text_forms_as_typed():
    assert parse_layer("conv:32") == ConvLayerSpec(32, 3, 1) and parse_layer("conv:64:3:s2") == ConvLayerSpec(64, 3, 2)
    assert parse_layer("conv:64:s2") == ConvLayerSpec(64, 3, 2) and parse_layer("CONV:16:5").text() == "conv:16:5"
    ttconv = parse_layer("ttconv:4x8->4x4x4:4:3")
    assert (ttconv.in_modes, ttconv.out_modes, ttconv.ranks) == ((4, 8, 1), (4, 4, 4), 4)
    assert ttconv == parse_layer("ttconv:4x8x1->4x4x4:4:3") and ttconv.text() == "ttconv:4x8x1->4x4x4:4:3"
    assert ttconv.label() == "TT conv 4x8x1->4x4x4 r=4 3x3"
    assert parse_layer("ttconv:4x4x4") == TTConvLayerSpec((4, 4, 4), (4, 4, 4), 4, 3)
    assert parse_layer("ttconv:4x4:2,3:5:s2") == TTConvLayerSpec((4, 4), (4, 4), (2, 3), 5, 2)
    assert parse_layer("ttconv:4x4:max").ranks is None
    assert parse_layer("tt4d:64:4:3") == TT4dLayerSpec(64, 4, 3) and parse_layer("tt4d:64:2,3,1").ranks == (2, 3, 1)
    assert parse_layer("pool") == PoolLayerSpec(2) and parse_layer("pool:3").text() == "pool:3"
    assert [kind.name for kind in all_kinds()][:7] == ["tt", "dense", "matrix_rank", "conv", "ttconv", "tt4d", "pool"]


@pytest.mark.parametrize("layer, in_shape", IMAGE_KINDS)
def test_sizes_and_memory_are_those_of_the_module_it_builds(layer, in_shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clipped ranks warn once; counted below
        module = layer.build(in_shape, "he", "auto", torch.Generator().manual_seed(0), dtype=torch.float64)
    weights = [parameter for name, parameter in module.named_parameters() if name != "bias"]
    assert layer.params(in_shape) == sum(parameter.numel() for parameter in weights)
    assert layer.bias_params(in_shape) == (module.bias.numel() if getattr(module, "bias", None) is not None else 0)
    memory = layer.memory(in_shape, batch=4)
    assert memory.weights == sum(parameter.numel() for parameter in module.parameters())
    assert memory.largest_tensor == max([parameter.numel() for parameter in module.parameters()] + [0])
    inputs = torch.rand(5, *in_shape, dtype=torch.float64)
    assert tuple(module(inputs).shape[1:]) == layer.out_shape(in_shape)
    twin = layer.dense_twin().build(in_shape, "he", "auto", None, dtype=torch.float64)
    twin_weights = [parameter for name, parameter in twin.named_parameters() if name != "bias"]
    assert layer.dense_params(in_shape) == sum(parameter.numel() for parameter in twin_weights)
    assert tuple(twin(inputs).shape[1:]) == layer.out_shape(in_shape)


@pytest.mark.parametrize("layer, in_shape", IMAGE_KINDS)
def test_flops_are_those_torch_counts_for_one_image(layer, in_shape):
    strategy = "auto"
    if isinstance(layer, TTConvLayerSpec):  # the forward auto picks for one image, run by name
        strategy = best_conv_strategy(layer.costs(in_shape, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = layer.build(in_shape, "he", strategy, None)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(torch.rand(1, *in_shape))
    assert layer.flops(in_shape) == counter.get_total_flops()


def test_ttconv_ranks_are_clipped_and_said_once():
    layer = parse_layer("ttconv:2x4->4x4:100:3")
    plan_max = layer.max_useful_ranks()
    assert layer.ranks_used((8, 6, 6)) == plan_max and plan_max[0] == 9  # r_0 <= 3 x 3
    assert layer.clipping((8, 6, 6)) == ((1, 100, 9), (2, 100, plan_max[1]))
    with pytest.warns(UserWarning, match="clipped") as caught:
        module = layer.build((8, 6, 6), "he", "auto", None)
    assert len(caught) == 1 and tuple(module.ranks) == plan_max
    assert layer.with_ranks(2).ranks == 2 and layer.with_ranks("2,3").ranks == (2, 3)
    assert parse_layer("tt4d:8:100:3").ranks_used((4, 5, 5)) == (8, 9, 3)


@pytest.mark.parametrize("layers, field, words", [
    (["dense:64", "conv:8:3"], "layers[1]", ["Hidden layer 2", "reads images", "64 features",
                                              "before the fully-connected ones"]),
    (["conv:8:3", "ttconv:2x2->4x4:2:3"], "layers[1].in_modes", ["Hidden layer 2", "multiply to 4",
                                                                  "hidden layer 1 gives 8 channels", "try 2x4"]),
    (["ttconv:1->4x4:2,2,2:3"], "layers[0].ranks", ["Hidden layer 1", "ranks", "r_0 first"]),
    (["conv:8:0"], "layers[0].kernel_size", ["between 1 and 32"]),
    (["conv:0:3"], "layers[0].channels", ["between 1 and"]),
    (["conv:8:3:s0"], "layers[0].stride", ["between 1 and 64"]),
    (["conv:8:3:sx"], "layers[0].stride", ["s2"]),
    (["pool:2", "pool:2", "pool:2", "pool:2"], "layers[3]", ["Hidden layer 4", "leaves no pixel", "1x1 images"]),
    (["pool:2", "pool:2", "pool:2", "conv:8:4"], "layers[3]", ["leaves no pixel", "1x1 images", "smaller kernel"]),
    (["ttconv"], "layers[0].in_modes", ["is missing", "ttconv:4x8->4x4x4:4:3"]),
    (["ttconv:2->2:2:3:s2:7"], "layers[0]", ["parts after ttconv", "ttconv:IN->OUT[:RANKS][:K][:sS]"]),
    (["tt4d:8:1,2:3"], "layers[0].ranks", ["three ranks"]),
])
def test_a_bad_image_layer_names_itself_and_the_fix(layers, field, words):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": layers})
    assert caught.value.field == field
    for word in words:
        assert word in str(caught.value)


def test_a_directly_built_ttconv_with_unequal_modes_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="pad one with 1s"):
        RunConfig.for_dataset("digits", layers=[TTConvLayerSpec((1,), (2, 4), 2, 3)])


CNN = ["conv:8:3", "pool:2", "ttconv:2x4->2x2x4:3:3", "tt4d:12:2:3", "pool:2", "tt:4x3x4->4x4x4:2", "dense:20"]


def test_a_cnn_counts_what_its_built_network_holds():
    config = RunConfig.for_dataset("digits", layers=CNN)
    assert config.pad_to is None and config.input_shape == (1, 8, 8)
    assert config.layer_shapes == [(1, 8, 8), (8, 8, 8), (8, 4, 4), (16, 4, 4), (12, 4, 4), (12, 2, 2), (64,), (20,), ]
    model = build_model(config, torch.Generator().manual_seed(0))
    assert config.net_params() == net_params(model) == sum(parameter.numel() for parameter in model.parameters())
    assert config.layer_params() == hidden_layer_params(model)
    twin = build_model(config.dense_twin())
    assert config.dense_net_params() == net_params(twin)
    names = [name for name, _ in model.named_children()]
    assert names == ["hidden", "relu", "hidden_2", "hidden_3", "relu_3", "hidden_4", "relu_4", "hidden_5", "flatten",
                     "hidden_6", "relu_6", "hidden_7", "relu_7", "head"]  # no ReLU after a max pool
    assert [type(module).__name__ for _, module in hidden_layers(model)] == [
        "Conv2d", "MaxPool2d", "TTConv2d", "TT4dConv2d", "MaxPool2d", "TTLinear", "Linear"]
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)


def test_the_network_table_adds_up_to_the_counts():
    config = RunConfig.for_dataset("digits", layers=CNN)
    rows = network_rows(config)
    assert [row.kind for row in rows] == ["conv", "pool", "ttconv", "tt4d", "pool", "tt", "dense", "head"]
    assert sum(row.weights + row.bias for row in rows) == config.net_params()
    assert sum(row.dense_weights + row.bias for row in rows) == config.dense_net_params()
    assert rows[-1].weights == 20 * 10 and rows[-1].module == "head" and rows[2].module == "hidden_3"
    summary = network_summary(config)
    assert summary["params"] == config.layer_params() == sum(row.weights for row in rows[:-1])
    assert summary["net_compression_factor"] == config.dense_net_params() / config.net_params()
    assert json.loads(json.dumps(summary))["layers"][2]["in_shape"] == [8, 4, 4]
    model = build_model(config)
    activation, counted = torch.rand(1, 1, 8, 8), {}
    for name, module in model.named_children():  # one image through the network, layer by layer
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            activation = module(activation)
        counted[name] = counter.get_total_flops()
    # (a TT fully-connected layer's auto forward at inference also times its candidates: its row is the
    # cost model's, checked by the TT kind's own tests)
    assert {row.module: row.flops for row in rows if row.kind != "tt"} == \
        {row.module: counted[row.module] for row in rows if row.kind != "tt"}


def test_cnns_keep_28x28_images_unpadded_and_mlps_pad_them():
    assert RunConfig.for_dataset("mnist5k", layers=["conv:8:3", "pool:2", "dense:16"]).pad_to is None
    assert RunConfig.for_dataset("mnist5k", layers="conv:8:3; dense:16").input_shape == (1, 28, 28)
    assert RunConfig.for_dataset("mnist5k", layers=["dense:16"]).pad_to == 32
    padded = RunConfig.for_dataset("mnist5k", layers=["conv:8:3", "pool:2", "dense:16"], pad_to=32)
    assert padded.layer_shapes[2] == (8, 16, 16)
