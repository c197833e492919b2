"""Networks built from a :class:`~ttexplore.runs.config.RunConfig`.

The paper's net (Novikov et al. 2015, as reproduced by a 2018 student team):
``[pad] -> flatten -> hidden layer -> ReLU -> Linear(hidden, classes)``, the
hidden layer being a :class:`~ttexplore.nn.layers.TTLinear` or one of the two
baselines of the same sizes (dense ``nn.Linear``; matrix-rank ``N x r``, ``r x M``);
or several layers, each followed by a ReLU (``RunConfig.layers``). Each layer's
module is built by its kind (:meth:`~ttexplore.runs.kinds.LayerSpec.build`).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ttexplore.nn.weightfile import WeightsFileError, check_state, read_payload, state_bytes, write_payload
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.kinds import features_of, init_linear
from ttexplore.tt.memory import check_bytes
from ttexplore.runs.data_info import dataset_info
from ttexplore.nn.layers import TTLinear

__all__ = ["PadImage", "build_model", "hidden_layer", "hidden_layers", "hidden_layer_params", "layer_ranks", "net_params",
           "save_model", "load_model", "MODEL_FORMAT"]

MODEL_FORMAT = "ttexplore.model/1"


class PadImage(nn.Module):
    """Zero-pad ``(batch, channels, side, side)`` images to ``(batch, channels, target, target)``,
    centred (28 -> 32 adds 2 pixels on each side, as the paper did for MNIST)."""

    def __init__(self, side: int, target: int) -> None:
        super().__init__()
        self.side, self.target = int(side), int(target)
        total = self.target - self.side
        self.before, self.after = total // 2, total - total // 2

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.pad(images, (self.before, self.after, self.before, self.after))

    def extra_repr(self) -> str:
        return f"{self.side} -> {self.target}"


def build_model(config: RunConfig, generator: Optional[torch.Generator] = None,
                layer_ranks: Optional[Mapping[str, Sequence[int]]] = None) -> nn.Sequential:
    """The network ``config`` describes, its weights drawn from ``generator``.

    A private generator (rather than the global RNG) keeps two runs that build
    models at once in two threads each deterministic by their own seed.

    Args:
        layer_ranks: ranks that replace the config's for some hidden layers, by child name
            (``{"hidden": [4, 4, 4]}``): the network as a rank schedule left it (:func:`layer_ranks`;
            a checkpoint or weights file after a rounding). The draws then differ from the config's
            network: the weights are meant to be loaded next.

    Returns:
        ``nn.Sequential`` with children ``pad`` (when padding), ``flatten``,
        ``hidden``, ``relu``, then ``hidden_2``, ``relu_2``, ... for each further
        hidden layer (a convolution, a max pool, a fully-connected layer), and ``head``; ``flatten``
        comes before the first layer that reads a vector (a fully-connected one), or before the head;
        a kind without ``relu_after`` (a max pool) has no ReLU after it. (The names, the order of
        the draws and so the weights are those the one-layer net always had.)
    """
    info = dataset_info(config.dataset)
    modules: "OrderedDict[str, nn.Module]" = OrderedDict()
    if config.pad_to is not None and config.pad_to != info.side:
        modules["pad"] = PadImage(info.side, config.pad_to)
    shapes = config.layer_shapes
    for index, layer in enumerate(config.layers):
        if layer.flattens and "flatten" not in modules:
            modules["flatten"] = nn.Flatten()
        suffix = "" if index == 0 else f"_{index + 1}"
        if layer_ranks and f"hidden{suffix}" in layer_ranks:
            layer = layer.with_ranks(tuple(layer_ranks[f"hidden{suffix}"]))
        modules[f"hidden{suffix}"] = layer.build(shapes[index], config.init, config.strategy, generator)
        if layer.relu_after:  # a max pool has none: its input is already a ReLU's output
            modules[f"relu{suffix}"] = nn.ReLU()
    if "flatten" not in modules:
        modules["flatten"] = nn.Flatten()
    head = nn.Linear(features_of(shapes[-1]), info.classes)
    init_linear(head, generator, "glorot")
    modules["head"] = head
    return nn.Sequential(modules)


def hidden_layer(model: nn.Sequential) -> nn.Module:
    """The model's (first) hidden (TT / dense / matrix-rank) layer."""
    return model.hidden


def hidden_layers(model: nn.Sequential) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` of every hidden layer, first to last."""
    return [(name, module) for name, module in model.named_children() if name == "hidden" or name.startswith("hidden_")]


def _weights(layer: nn.Module) -> int:
    """A hidden layer's weights without its bias (0 for a max pool)."""
    if hasattr(layer, "param_count"):
        return int(layer.param_count())
    weight = getattr(layer, "weight", None)
    return int(weight.numel()) if isinstance(weight, torch.Tensor) else 0


def net_params(model: nn.Sequential) -> int:
    """Every parameter of the network (weights and biases of every layer and of the head): what
    :meth:`RunConfig.net_params <ttexplore.runs.config.RunConfig.net_params>` counts without building it."""
    return sum(parameter.numel() for parameter in model.parameters())


def hidden_layer_params(model: nn.Sequential) -> int:
    """Weights of the hidden layers without their biases, summed (the 2018 reproduction's "layer weights")."""
    return sum(_weights(layer) for _, layer in hidden_layers(model))


def layer_ranks(model: nn.Sequential, config: RunConfig) -> dict[str, list[int]]:
    """The ranks of the hidden layers with TT cores whose ranks are not those ``config`` builds (a rank
    schedule rounded them), by child name: what :func:`build_model` takes back as ``layer_ranks``.
    Empty for a network as built."""
    shapes = config.layer_shapes
    changed = {}
    for index, ((name, module), spec) in enumerate(zip(hidden_layers(model), config.layers)):
        if spec.has_tt_cores and tuple(module.ranks) != tuple(spec.ranks_used(shapes[index])):
            changed[name] = [int(rank) for rank in module.ranks]
    return changed


def save_model(model: nn.Sequential, config: RunConfig, path: "str | Path") -> Path:
    """Write the model's weights and its config to ``path`` (``torch.save``), whole or not at all.

    The file also carries the TT layers' specs, so :meth:`TTLinear.load` reads
    the trained cores of the first straight back from it, and the ranks of layers a rank
    schedule rounded (``layer_ranks``, :func:`layer_ranks`), so :func:`load_model` builds them so.

    Raises:
        WriteError: (an ``OSError``) one line naming the file and the fix; ``path`` keeps its old
            content and no temporary file is left (:func:`~ttexplore.nn.weightfile.write_payload`).
    """
    path = Path(path)
    tt_layers = [{"prefix": f"{name}.", "spec": layer.export_spec()} for name, layer in hidden_layers(model)
                 if isinstance(layer, TTLinear)]
    payload = {
        "format": MODEL_FORMAT,
        "config": config.to_dict(),
        "state_dict": model.state_dict(),
        # the first TT layer, for TTLinear.load; every TT layer in tt_layers
        "tt_spec": tt_layers[0]["spec"] if tt_layers else None,
        "tt_prefix": tt_layers[0]["prefix"] if tt_layers else None,
        "tt_layers": tt_layers,
    }
    rounded = layer_ranks(model, config)
    if rounded:
        payload["layer_ranks"] = rounded
    return write_payload(payload, path)


def load_model(path: "str | Path", map_location: str = "cpu") -> tuple[nn.Sequential, RunConfig]:
    """Read a file written by :func:`save_model`; returns ``(model, config)``.

    The file is read without running code (``weights_only``) and memory-mapped; its
    config is validated as a user's would be, the shape of every tensor is compared
    with the model the config describes (built on the ``meta`` device, which allocates
    nothing), and the model's size is checked against the memory budget, all before
    the model is built.

    Raises:
        WeightsFileError: (a ``ValueError``) naming the file and what is wrong with it.
        ResourceError: (a ``ValueError``) when the model would not fit the memory budget.
    """
    payload = read_payload(path)
    if payload.get("format") != MODEL_FORMAT:
        raise WeightsFileError(f"{path} is not a ttexplore model file (no {MODEL_FORMAT!r} header)")
    values = payload.get("config")
    if not isinstance(values, dict):
        raise WeightsFileError(f"{path} has no run config (found a {type(values).__name__})")
    try:
        config = RunConfig.from_dict(values)
    except ConfigError as error:
        raise WeightsFileError(f"{path} has an invalid run config: {error.field}: {error}") from None
    ranks = _file_layer_ranks(payload.get("layer_ranks"), config, path)
    with torch.device("meta"):
        skeleton = build_model(config, layer_ranks=ranks)
    expected = {key: tuple(tensor.shape) for key, tensor in skeleton.state_dict().items()}
    check_state(payload.get("state_dict"), expected, path, "model")
    check_bytes(state_bytes(expected, 4), f"the model in {path}")
    model = build_model(config, layer_ranks=ranks)
    model.load_state_dict(payload["state_dict"])
    return (model if str(map_location) == "cpu" else model.to(map_location)), config


def _file_layer_ranks(values: Any, config: RunConfig, path: "str | Path") -> Optional[dict[str, tuple[int, ...]]]:
    """A file's ``layer_ranks`` checked against its config: names of hidden layers with TT cores, each a
    list of whole ranks those layers accept (None when the file has none).

    Raises:
        WeightsFileError: naming the file and what is wrong.
    """
    if values is None:
        return None
    names = {("hidden" if index == 0 else f"hidden_{index + 1}"): layer for index, layer in enumerate(config.layers)}
    if not isinstance(values, dict):
        raise WeightsFileError(f"{path} has layer_ranks of type {type(values).__name__}: expected a dict of layer ranks")
    ranks = {}
    for name, value in values.items():
        layer = names.get(name)
        if layer is None or not layer.has_tt_cores:
            raise WeightsFileError(f"{path} gives ranks for {name!r}, which is not a hidden layer with TT cores")
        if not isinstance(value, (list, tuple)) or not all(isinstance(rank, int) and not isinstance(rank, bool)
                                                           and rank >= 1 for rank in value):
            raise WeightsFileError(f"{path} gives {name!r} the ranks {value!r:.60}: expected a list of whole numbers >= 1")
        try:
            layer.with_ranks(tuple(value)).check(config.layer_shapes[list(names).index(name)])
        except ConfigError as error:
            raise WeightsFileError(f"{path} gives {name!r} ranks it cannot have: {error}") from None
        ranks[name] = tuple(value)
    return ranks
