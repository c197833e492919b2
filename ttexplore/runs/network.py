"""A network as a table: one row per layer (the hidden layers, then the classifier head) with its shapes,
weights, bias, dense-twin weights and FLOPs. Pure Python: ``count``, ``train --json`` and the pages read it
before (or without) building the model.

What the counts mean, for every network (an MLP and a CNN alike):

* ``weights``: a layer's weights without its bias (a TT layer's cores); the sum over the hidden layers is
  :meth:`RunConfig.layer_params <ttexplore.runs.config.RunConfig.layer_params>`, the x axis of the
  2018 reproduction's figures (``params`` in ``train --json``);
* ``bias``: its bias entries (one per output feature, per output channel for a convolution);
* the sum of ``weights + bias`` over every row, the head included, is every parameter of the network,
  :meth:`RunConfig.net_params <ttexplore.runs.config.RunConfig.net_params>` (``net_params``); with the
  dense twin's weights, :meth:`RunConfig.dense_net_params` (``dense_net_params``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ttexplore.tt import ttmath
from ttexplore.runs.config import RunConfig
from ttexplore.runs.kinds import Shape, features_of

__all__ = ["LayerRow", "network_rows", "network_summary", "HEAD_KIND"]

#: The ``kind`` of the classifier's row.
HEAD_KIND = "head"


@dataclass(frozen=True)
class LayerRow:
    """One layer of a network.

    Attributes:
        index: 1-based place among the hidden layers; the head is ``len(layers) + 1``.
        module: the child's name in the built ``nn.Sequential`` (``hidden``, ``hidden_2``, ``head``).
        kind: the kind's name (``"conv"``, ``"ttconv"``, ``"pool"``, ``"tt"``, ``"dense"``, ``"head"``).
        label: its label (``"TT conv 2x4x4->4x4x4 r=4 3x3"``).
        in_shape, out_shape: activation shapes without the batch (``(32, 14, 14)``, ``(256,)``).
        weights, bias: its weights without the bias, and its bias entries.
        dense_weights: the weights of its dense twin (a ``conv`` for a TT convolution, ``dense`` for a TT layer).
        flops, dense_flops: FLOPs of one example's forward, its own and its dense twin's.
        ranks: the ranks in use after clipping (``()`` for a kind without ranks).
    """

    index: int
    module: str
    kind: str
    label: str
    in_shape: Shape
    out_shape: Shape
    weights: int
    bias: int
    dense_weights: int
    flops: int
    dense_flops: int
    ranks: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (shapes and ranks as lists)."""
        values = asdict(self)
        for key in ("in_shape", "out_shape", "ranks"):
            values[key] = list(values[key])
        return values


def network_rows(config: RunConfig) -> list[LayerRow]:
    """The rows of ``config``'s network: each hidden layer, then the head ``Linear(hidden_features, classes)``.

    Complexity: integer arithmetic, plus the cost model's (cached) plan at batch 1 for each TT layer's FLOPs.
    """
    shapes = config.layer_shapes
    rows = []
    for index, layer in enumerate(config.layers):
        in_shape, out_shape = shapes[index], shapes[index + 1]
        twin = layer.dense_twin()
        rows.append(LayerRow(index + 1, "hidden" if index == 0 else f"hidden_{index + 1}", layer.name, layer.label(),
                             tuple(in_shape), tuple(out_shape), layer.params(in_shape), layer.bias_params(in_shape),
                             layer.dense_params(in_shape), layer.flops(in_shape), twin.flops(in_shape),
                             tuple(layer.ranks_used(in_shape))))
    features, classes = features_of(shapes[-1]), config.num_classes
    head_flops = ttmath.dense_flops(features, classes, 1)
    rows.append(LayerRow(len(config.layers) + 1, "head", HEAD_KIND, f"head {features:,}->{classes}", (features,),
                         (classes,), features * classes, classes, features * classes, head_flops, head_flops))
    return rows


def network_summary(config: RunConfig) -> dict[str, Any]:
    """The counts ``train --json`` and ``count --json`` carry for a network: ``params`` (hidden-layer weights,
    no biases, as before: the 2018 figures' x axis), ``dense_params``, ``net_params`` and ``dense_net_params``
    (every parameter of the network and of its dense twin), ``net_compression_factor``
    (``dense_net_params / net_params``), ``flops`` and ``dense_flops`` (one example's forward through the whole
    network), and ``layers`` (:func:`network_rows` as dicts)."""
    rows = network_rows(config)
    net, dense_net = config.net_params(), config.dense_net_params()
    return {
        "params": config.layer_params(),
        "dense_params": config.dense_layer_params(),
        "net_params": net,
        "dense_net_params": dense_net,
        "net_compression_factor": dense_net / net,
        "flops": sum(row.flops for row in rows),
        "dense_flops": sum(row.dense_flops for row in rows),
        "layers": [row.to_dict() for row in rows],
    }
