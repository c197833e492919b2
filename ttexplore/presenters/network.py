"""What the Explore page shows for a network typed layer by layer (a CNN, or any stack of kinds): its presets
sized for the dataset, the layers that may come next, and its numbers before training, per layer and for the
whole network. Pure Python (no torch, no streamlit): it runs on every widget change.

The numbers are the kinds' own (:mod:`ttexplore.runs.kinds`, through :func:`ttexplore.runs.network.network_rows`):
a layer's weights, bias, dense-twin weights, FLOPs and what it holds while training; the whole net's
parameters are :meth:`RunConfig.net_params <ttexplore.runs.config.RunConfig.net_params>` (every weight and bias,
the head included: what ``sum(p.numel() for p in model.parameters())`` counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ttexplore.presenters.preview import human_count, memory_tile, memory_verdict
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.kinds import (FLOAT_BYTES, LayerSpec, Shape, TTConvLayerSpec, TTLayerSpec, all_kinds, features_of,
                                  layer_shapes)
from ttexplore.runs.network import LayerRow, network_rows
from ttexplore.runs.presets import RUN_PRESETS, preset_values
from ttexplore.runs.resources import MemoryEstimate, human_bytes

__all__ = ["NetworkPreset", "network_presets_for", "Suggestion", "layer_suggestions", "reads_images", "NetworkPreview",
           "network_preview", "network_tiles", "network_table", "diagram_layers", "layer_diagram", "shape_text",
           "ADAM_COPIES"]

#: Copies of each parameter training keeps with Adam: the weights, their gradients and the two moments.
ADAM_COPIES = 4


def shape_text(shape: Sequence[int]) -> str:
    """An activation shape for people: ``(32, 14, 14)`` -> ``"32×14×14"``, ``(256,)`` -> ``"256"``."""
    return "×".join(f"{size:,}" for size in shape)


def reads_images(config: RunConfig) -> bool:
    """Whether the network has a layer that reads images (a convolution, a pool): its tiles describe the
    whole network, and a sweep's figure counts its every parameter."""
    return any(not layer.flattens for layer in config.layers)


# ---------------------------------------------------------------- presets
@dataclass(frozen=True)
class NetworkPreset:
    """A named network of the Explore page, typed layer by layer: a run preset that sizes itself for the
    dataset (``convnet``, ``tt-convnet``; :mod:`ttexplore.runs.presets`).

    Attributes:
        name: the run preset's name (what ``train --preset`` takes), shown in the picker.
        layers: its layers' text forms for the dataset's images.
        pad_to: the padding it trains with (0: none, as the picker's widget holds it).
        note: its description.
    """

    name: str
    layers: tuple[str, ...]
    pad_to: int
    note: str


def network_presets_for(dataset: str) -> list[NetworkPreset]:
    """The run presets that size their layers for ``dataset`` (the CNNs), in the registry's order; one whose
    images are too small for it is left out.

    Complexity: one shape pass per preset.
    """
    presets = []
    for name, preset in RUN_PRESETS.items():
        if preset.get("layers_for") is None:
            continue  # a fixed net: the Explore page's own presets describe it by shapes
        try:
            values = preset_values(name, dataset)
        except ConfigError:
            continue
        presets.append(NetworkPreset(name, tuple(values["layers"]), values.get("pad_to") or 0, preset["description"]))
    return presets


# ---------------------------------------------------------------- what may come next
@dataclass(frozen=True)
class Suggestion:
    """A layer the network may take next: its text form and how the picker describes it."""

    text: str
    words: str


def _words(layer: LayerSpec, shape: Shape) -> str:
    out = layer.out_shape(shape)
    flattens = f", flattening the {shape_text(shape)} images" if layer.flattens and len(shape) == 3 else ""
    return f"{layer.text()} — {layer.label()}: {shape_text(shape)} → {shape_text(out)}{flattens}"


def layer_suggestions(layers: Sequence[LayerSpec], in_shape: Shape, first: Sequence[str] = ()) -> list[Suggestion]:
    """The layers that may follow ``layers`` (on inputs of ``in_shape``), each valid there (its kind's
    :meth:`~ttexplore.runs.kinds.LayerSpec.suggest`, checked): ``first`` (text forms, kept where valid), then the
    kinds' suggestions: after images those that keep images before the fully-connected ones (which flatten);
    among them, after a layer with weights one of its kind first and then one without (a pool after a
    convolution), after one without weights (a pool, the input) those with weights first; else the registry's order.

    Complexity: one shape pass, one suggestion and check per kind.
    """
    from ttexplore.runs.kinds import parse_layer

    shapes = layer_shapes(layers, in_shape)
    shape, last = tuple(shapes[-1]), layers[-1] if layers else None
    weighted = last is not None and last.params(tuple(shapes[-2])) > 0
    suggested = [layer for layer in (kind.suggest(shape, None, last) for kind in all_kinds()) if layer is not None]

    def order(layer: LayerSpec) -> tuple[bool, bool, bool]:
        same = weighted and type(layer) is type(last)
        return (len(shape) == 3 and layer.flattens, not same, (layer.params(shape) > 0) == weighted)

    candidates: list[LayerSpec] = []
    for text in first:
        try:
            candidates.append(parse_layer(text))
        except ConfigError:
            continue
    suggestions: dict[str, Suggestion] = {}
    for layer in candidates + sorted(suggested, key=order):  # sorted is stable: the registry's order within a rank
        try:
            layer.check(shape)
        except ConfigError:
            continue
        suggestions.setdefault(layer.text(), Suggestion(layer.text(), _words(layer, shape)))
    return list(suggestions.values())


# ---------------------------------------------------------------- the numbers
@dataclass(frozen=True)
class NetworkPreview:
    """The numbers of a network design, before training.

    Attributes:
        config: the design.
        rows: :func:`~ttexplore.runs.network.network_rows` (each hidden layer, then the head).
        net_params, dense_net_params: every parameter of the net and of its dense twin.
        flops, dense_flops: one image's forward through the net and through its dense twin.
        layer_memory: bytes each row holds while training at the batch size (:func:`network_table` says what).
        memory, memory_budget, memory_warning: the run's estimate, the budget and why it would be refused ('' when
            it fits), as :class:`~ttexplore.presenters.preview.LayerPreview` has them (for the memory tile).
    """

    config: RunConfig
    rows: tuple[LayerRow, ...]
    net_params: int
    dense_net_params: int
    flops: int
    dense_flops: int
    layer_memory: tuple[int, ...]
    memory: Optional[MemoryEstimate] = None
    memory_budget: Optional[int] = None
    memory_warning: str = ""

    @property
    def compression_factor(self) -> float:
        """Dense twin's parameters / the net's ("74× smaller")."""
        return self.dense_net_params / self.net_params


def _training_bytes(config: RunConfig) -> list[int]:
    """What each hidden layer and the head hold while a batch trains: its parameters :data:`ADAM_COPIES` times
    (weights, gradients, Adam's two moments), the work its kind prices beyond its output
    (:meth:`~ttexplore.runs.kinds.LayerSpec.memory`), and its output with its gradient (and the ReLU's pair)."""
    shapes, batch = config.layer_shapes, config.batch_size
    sizes = []
    for index, layer in enumerate(config.layers):
        memory = layer.memory(shapes[index], batch, True, input_grad=index > 0, strategy=config.strategy)
        outputs = (4 if layer.relu_after else 2) * features_of(shapes[index + 1])
        sizes.append(FLOAT_BYTES * (ADAM_COPIES * memory.weights + batch * outputs) + memory.work_bytes)
    head, classes = config.head_params(), config.num_classes
    sizes.append(FLOAT_BYTES * (ADAM_COPIES * head + 3 * batch * classes))  # logits, log-softmax, their gradient
    return sizes


def network_preview(config: RunConfig) -> NetworkPreview:
    """The numbers of ``config``'s network (any kinds): per layer (:func:`network_table`) and for the whole net
    (:func:`network_tiles`), and the memory guard's estimate of training it.

    Complexity: integer arithmetic, plus the cost models' cached plans for each TT layer's FLOPs and memory.
    """
    rows = tuple(network_rows(config))
    memory, budget, warning = memory_verdict(config)
    return NetworkPreview(config, rows, config.net_params(), config.dense_net_params(), sum(row.flops for row in rows),
                          sum(row.dense_flops for row in rows), tuple(_training_bytes(config)), memory, budget, warning)


def network_tiles(view: NetworkPreview) -> dict[str, dict[str, Any]]:
    """The Explore tiles of a whole network, each as keyword arguments of ``st.metric``: ``weights`` (every
    parameter), ``dense`` (its dense twin's), ``compression``, ``flops`` (one image's forward) and ``memory``
    (training, :func:`~ttexplore.presenters.preview.memory_tile`). Their labels say they describe the whole net."""
    factor = view.compression_factor
    layers = len(view.config.layers)
    quiet = {"delta_color": "off", "delta_arrow": "off"}
    memory = memory_tile(view)
    return {
        "weights": {"label": "Network parameters", "value": f"{view.net_params:,}", **quiet,
                    "delta": f"whole net: {layers} layer{'s' if layers != 1 else ''} + head",
                    "help": "Every parameter of the network: each layer's weights (a TT layer's cores) and biases, and the "
                            "classifier head's — what sum(p.numel() for p in model.parameters()) counts"},
        "dense": {"label": "Dense twin's parameters", "value": f"{view.dense_net_params:,}", **quiet,
                  "delta": "every layer dense", "help": "The same network with every TT layer in its dense form "
                                                        "(a TT convolution as nn.Conv2d, a TT layer as nn.Linear)"},
        "compression": {"label": "Compression (whole net)", **quiet,
                        "value": f"{factor:,.0f}×" if factor >= 10 else f"{factor:.2f}×",
                        "delta": f"smaller · rate {1 / factor:.2e}",
                        "help": "The dense twin's parameters / the network's (biases and head included)"},
        "flops": {"label": "Forward FLOPs / image (net)", "value": human_count(view.flops), "delta_color": "inverse",
                  "delta": f"{view.flops / view.dense_flops - 1:+.0%} vs dense twin {human_count(view.dense_flops)}",
                  "help": "One image's forward through every layer (each TT layer by the strategy auto picks for it)"},
        "memory": {"label": "Training memory (est.)", "value": memory["value"], "delta": memory["delta"],
                   "help": memory["help"], **quiet},
    }


def network_table(view: NetworkPreview) -> list[dict[str, Any]]:
    """One row per layer, the head, then the whole network: the layer, its activation shapes, weights, bias,
    parameters (weights + bias), its dense twin's weights, compression rate (weights / dense weights; '' for a
    layer without weights), ranks in use, FLOPs of one image and training memory (its parameters with their
    gradients and Adam's moments, its work and outputs at the batch size; for the whole net the run's peak,
    data included, as the memory tile says)."""
    table = []
    for row, memory in zip(view.rows, view.layer_memory):
        table.append({"layer": f"{row.index}: {row.label}", "in → out": f"{shape_text(row.in_shape)} → {shape_text(row.out_shape)}",
                      "weights": row.weights, "bias": row.bias, "parameters": row.weights + row.bias,
                      "dense weights": row.dense_weights,
                      "compression": row.weights / row.dense_weights if row.dense_weights else None,
                      "ranks": ",".join(map(str, row.ranks)), "FLOPs": row.flops, "training memory": human_bytes(memory)})
    weights, dense = sum(row.weights for row in view.rows), sum(row.dense_weights for row in view.rows)
    table.append({"layer": "whole network", "in → out": f"{shape_text(view.rows[0].in_shape)} → {shape_text(view.rows[-1].out_shape)}",
                  "weights": weights, "bias": sum(row.bias for row in view.rows), "parameters": view.net_params,
                  "dense weights": dense, "compression": weights / dense, "ranks": "", "FLOPs": view.flops,
                  "training memory": human_bytes(view.memory.total) if view.memory is not None else ""})
    return table


# ---------------------------------------------------------------- core diagrams
def diagram_layers(config: RunConfig) -> dict[int, str]:
    """``{index: "3: TT conv 2x4x4->4x4x4 r=4 3x3"}`` for each layer whose cores :func:`layer_diagram` draws."""
    return {index: f"{index + 1}: {layer.label()}" for index, layer in enumerate(config.layers)
            if isinstance(layer, (TTConvLayerSpec, TTLayerSpec))}


def layer_diagram(config: RunConfig, index: int) -> Any:
    """The core diagram of layer ``index`` (0-based) of ``config``, ranks as used: a TT convolution's spatial and
    channel cores (:func:`~ttexplore.presenters.plots.ttconv_diagram`), a TT layer's cores
    (:func:`~ttexplore.presenters.plots.core_diagram`).

    Raises:
        ValueError: for a layer :func:`diagram_layers` does not list.
    """
    from ttexplore.presenters import plots

    layer, shape = config.layers[index], config.layer_shapes[index]
    if isinstance(layer, TTConvLayerSpec):
        return plots.ttconv_diagram(layer.in_modes, layer.out_modes, layer.kernel_size, layer.ranks_used(shape))
    if isinstance(layer, TTLayerSpec):
        return plots.core_diagram(layer.in_modes, layer.out_modes, layer.ranks_used(shape))
    raise ValueError(f"layer {index + 1} ({layer.label()}) has no cores to draw: pick a TT convolution or a TT layer")
