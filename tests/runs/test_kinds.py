"""Layer kinds: each built-in kind answers for itself (checked against the module it builds), the registry,
and a kind defined only in this file flowing through counts, the preview, a RunConfig, the store and a
model that trains, with no other edit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Union

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ttexplore.cli import main
from ttexplore.presenters.preview import memory_side_by_side, network_rows
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.fit import fit
from ttexplore.runs.kinds import (DenseLayerSpec, LayerMemory, LayerSpec, MatrixRankLayerSpec, Place, TTLayerSpec,
                                  all_kinds, kind_named, parse_layer, register, registered)
from ttexplore.runs.models import build_model, hidden_layer_params
from ttexplore.runs.store import RunStore


# ---------------------------------------------------------------- the built-in kinds
BUILT_IN = [(TTLayerSpec((4, 4, 4), (2, 4, 4), 2), (64,)), (TTLayerSpec((4, 8, 8, 4), (4, 8, 8, 4), None), (1, 32, 32)),
            (DenseLayerSpec(48), (1, 8, 8)), (MatrixRankLayerSpec(48, 3), (64,))]


@pytest.mark.parametrize("layer, in_shape", BUILT_IN)
def test_a_kind_reads_back_its_text_and_dict(layer, in_shape):
    assert parse_layer(layer.text()) == layer
    assert parse_layer(json.loads(json.dumps(layer.to_dict()))) == layer
    assert kind_named(layer.name) is type(layer)


@pytest.mark.parametrize("layer, in_shape", BUILT_IN)
def test_sizes_and_memory_are_those_of_the_module_it_builds(layer, in_shape):
    module = layer.build(in_shape, "glorot", "auto", torch.Generator().manual_seed(0), dtype=torch.float64)
    weights = [parameter for name, parameter in module.named_parameters() if name != "bias"]
    assert layer.params(in_shape) == sum(parameter.numel() for parameter in weights)
    memory = layer.memory(in_shape, batch=8)
    assert memory.weights == sum(parameter.numel() for parameter in module.parameters())
    assert memory.largest_tensor == max(parameter.numel() for parameter in module.parameters())
    inputs = torch.rand(5, *in_shape, dtype=torch.float64).flatten(1)
    assert tuple(module(inputs).shape[1:]) == layer.out_shape(in_shape)
    assert layer.dense_params(in_shape) == inputs.shape[1] * module(inputs).shape[1]


@pytest.mark.parametrize("layer", [DenseLayerSpec(48), MatrixRankLayerSpec(48, 3)])
def test_flops_are_those_torch_counts(layer):
    module = layer.build((64,), "glorot", "auto", None)
    with FlopCounterMode(display=False) as counter:
        module(torch.rand(1, 64))
    assert layer.flops((64,)) == counter.get_total_flops()


def test_a_matrix_rank_above_the_full_rank_is_clipped_with_one_warning():
    layer = parse_layer("matrix_rank:64:100")
    assert layer.rank == 100 and layer.ranks_used((64,)) == (64,) and layer.clipping((64,)) == ((1, 100, 64),)
    assert layer.params((32,)) == 32 * (32 + 64)  # min(100, N=32, M=64) = 32
    with pytest.warns(UserWarning, match="clipped to 64") as caught:
        module = layer.build((64,), "glorot", "auto", None)
    assert len(caught) == 1 and module.rank == 64
    assert parse_layer("matrix_rank:64:8").clipping((64,)) == ()


def test_ranks_change_only_in_kinds_that_have_them():
    assert TTLayerSpec().with_ranks(2).ranks == 2 and TTLayerSpec().with_ranks("2,3,2").ranks == (2, 3, 2)
    assert MatrixRankLayerSpec(64, 4).with_ranks(8).rank == 8 and DenseLayerSpec(64).with_ranks(8) == DenseLayerSpec(64)
    assert [kind.has_tt_cores for kind in all_kinds()][:3] == [True, False, False]
    config = RunConfig.from_dict({"hidden_layers": ["tt:4x8x8x4:4", "matrix_rank:64:4", "dense:32"]})
    assert [layer.text() for layer in config.with_ranks(2).layers] == ["tt:4x8x8x4:2", "matrix_rank:64:2", "dense:32"]


@pytest.mark.parametrize("text, field, words", [
    ("dense:abc", "layers[1].width", ["Hidden layer 2", "neither a whole number nor modes"]),
    ("dense:4.5", "layers[1].width", ["Hidden layer 2", "whole number"]),
    ("matrix_rank:16:x", "layers[1].matrix_rank", ["Hidden layer 2", "not a whole number"]),
    ("tt:8x8:0", "layers[1].ranks", ["Hidden layer 2", "at least 1"]),
    ("tt:4x8", "layers[1].in_modes", ["Hidden layer 2", "hidden layer 1 gives 64 features", "try"]),
    ("lstm:3", "layers[1]", ["Hidden layer 2", "tt:IN[->OUT][:RANKS], dense:WIDTH, matrix_rank:WIDTH:RANK",
                             "conv:OUT[:K][:sS]", "or pool:SIZE"]),
    ("conv:3", "layers[1]", ["Hidden layer 2", "reads images", "hidden layer 1 gives 64 features",
                             "put convolution and pool layers before the fully-connected ones"]),
])
def test_a_bad_layer_names_itself_as_the_user_counts_and_the_fix(text, field, words):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"dataset": "digits", "pad_to": None, "layers": ["dense:64", text]})
    assert caught.value.field == field
    for word in words:
        assert word in str(caught.value)


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="taken"):
        register(TTLayerSpec)
    with pytest.raises(ValueError, match="not a layer kind"):
        register(int)


# ---------------------------------------------------------------- a kind defined only here
class Diagonal(torch.nn.Module):
    """``y = w * x + b`` feature by feature."""

    def __init__(self, width: int, generator: Any) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(width).normal_(1.0, 0.1, generator=generator))
        self.bias = torch.nn.Parameter(torch.zeros(width))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs * self.weight + self.bias


@dataclass(frozen=True)
class DiagonalSpec(LayerSpec):
    """A diagonal layer of ``width`` features: ``diag:WIDTH``, as wide as what enters it."""

    width: int = 16

    name = "diagonal"
    aliases = ("diag",)
    syntax = "diag:WIDTH"
    example = "diag:64"
    title = "diagonal"
    keys = ("width",)
    reads = ("width",)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: "Union[int, Place]" = 0) -> "DiagonalSpec":
        place = Place.of(where)
        try:
            return cls(int(values["width"]))
        except (KeyError, ValueError):
            raise place.error("width", f"width {values.get('width')!r} is not a whole number: write e.g. diag:64") from None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.name, "width": self.width}

    def text(self) -> str:
        return f"diag:{self.width}"

    def out_shape(self, in_shape):
        return (self.width,)

    def params(self, in_shape) -> int:
        return self.width

    def dense_twin(self) -> DenseLayerSpec:
        return DenseLayerSpec(self.width)

    def flops(self, in_shape) -> int:
        return self.width

    def memory(self, in_shape, batch, training=True, input_grad=False, strategy="auto") -> LayerMemory:
        return LayerMemory(2 * self.width, self.width, 0)

    def label(self) -> str:
        return f"diagonal {self.width}"

    def check(self, in_shape, where=0) -> None:
        features = int(torch.tensor(in_shape).prod())
        if features != self.width:
            raise Place.of(where).error("width", f"width {self.width} must equal the {features} features entering it")

    def build(self, in_shape, init, strategy, generator, dtype=None, device=None):
        return Diagonal(self.width, generator)


def test_a_kind_defined_elsewhere_flows_through_everything(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TTEXPLORE_HOME", str(tmp_path))
    with registered(DiagonalSpec):
        layers = ["tt:4x4x4->2x4x4:2", "diag:32"]
        config = RunConfig.for_dataset("digits", layers=layers, epochs=1, train_limit=64, batch_size=16)
        tt_weights = 1 * 4 * 2 * 2 + 2 * 4 * 4 * 2 + 2 * 4 * 4 * 1
        # counts
        assert config.layers[1] == DiagonalSpec(32) and config.layer_widths == [64, 32, 32, 10]
        assert config.layer_params() == tt_weights + 32 and config.dense_layer_params() == 64 * 32 + 32 * 32
        assert main(["count", "--dataset", "digits", "--hidden-layer", layers[0], "--hidden-layer", "diag:32"]) == 0
        out = capsys.readouterr().out
        assert "diagonal 32: 32 weights (dense 1,024)" in out and f"{tt_weights + 32}" in out
        # the config: its dict, its key, its checks
        again = RunConfig.from_dict(json.loads(config.to_json()))
        assert again == config and again.key() == config.key()
        assert config.to_dict()["layers"][1] == {"kind": "diagonal", "width": 32}
        assert config.key() != config.replace(layers=[layers[0], "dense:32"]).key()
        with pytest.raises(ConfigError) as caught:
            config.replace(layers=[layers[0], "diag:31"])
        assert caught.value.field == "layers[1].width" and "Hidden layer 2" in str(caught.value)
        assert config.describe() == "TT 4x4x4->2x4x4 r=2 -> diagonal 32 on digits"
        # the preview
        rows = network_rows(config)
        assert rows[1]["layer"] == "2: diagonal 32" and rows[1]["weights"] == 32 and rows[1]["dense weights"] == 1024
        design, twin = memory_side_by_side(config)
        assert twin.estimate.hidden_weights > design.estimate.hidden_weights > 0
        # the store
        store = RunStore(tmp_path / "runs.db")
        run = store.get_run(store.create_run(config))
        assert run["layer_params"] == tt_weights + 32 and run["shape"] == "4x4x4->2x4x4 | diagonal 32"
        # a model that trains
        model = build_model(config, torch.Generator().manual_seed(0))
        assert isinstance(model.hidden_2, Diagonal) and hidden_layer_params(model) == config.layer_params()
        before = model.hidden_2.weight.detach().clone()
        result = fit(config)
        assert result.status == "completed", result.error
        assert not torch.equal(result.model.hidden_2.weight.detach(), before)
    with pytest.raises(ConfigError, match="is not a layer"):  # gone with the block
        parse_layer("diag:32")
    assert DiagonalSpec not in all_kinds()
