"""Layer kinds: one class per kind of hidden layer, registered in one place. Pure Python (torch is
imported only when a kind builds its module).

* :class:`LayerSpec` (:mod:`.base`): what every kind answers (text form, sizes, FLOPs, memory,
  labels, checks, ranks, the module it builds);
* the kinds: :class:`TTLayerSpec` (``tt:IN[->OUT][:RANKS]``), :class:`DenseLayerSpec`
  (``dense:WIDTH``), :class:`MatrixRankLayerSpec` (``matrix_rank:WIDTH:RANK``), and for images
  :class:`ConvLayerSpec` (``conv:OUT[:K][:sS]``), :class:`TTConvLayerSpec` (``ttconv:IN->OUT[:RANKS][:K]``),
  :class:`TT4dLayerSpec` (``tt4d:OUT[:RANKS][:K]``), :class:`PoolLayerSpec` (``pool:SIZE``);
* the registry (:mod:`.registry`): :func:`register`, :func:`registered`, :func:`kind_named`,
  :func:`parse_layer`, :func:`parse_layers`, :func:`all_kinds`.

A new kind is one module with a :class:`LayerSpec` subclass, and one line here registering it.
"""

from __future__ import annotations

from ttexplore.runs.kinds.base import FLOAT_BYTES, LayerMemory, LayerSpec, Place, Shape, features_of, layer_title
from ttexplore.runs.kinds.dense import DenseLayerSpec, init_linear
from ttexplore.runs.kinds.matrix_rank import MatrixRankLayerSpec
from ttexplore.runs.kinds.registry import (DEFAULT_KIND, MAX_HIDDEN_LAYERS, all_kinds, check_layers, kind_named,
                                           kind_names, layer_shapes, layers_text, parse_layer, parse_layers, register,
                                           registered, unregister)
from ttexplore.runs.kinds.tt import TTLayerSpec
from ttexplore.runs.kinds.conv import ConvLayerSpec
from ttexplore.runs.kinds.ttconv import TTConvLayerSpec
from ttexplore.runs.kinds.tt4d import TT4dLayerSpec
from ttexplore.runs.kinds.pool import PoolLayerSpec

__all__ = ["LayerSpec", "LayerMemory", "Place", "Shape", "features_of", "layer_title", "FLOAT_BYTES", "TTLayerSpec",
           "DenseLayerSpec", "MatrixRankLayerSpec", "ConvLayerSpec", "TTConvLayerSpec", "TT4dLayerSpec", "PoolLayerSpec",
           "init_linear", "register", "unregister", "registered", "kind_named", "kind_names", "all_kinds", "parse_layer",
           "parse_layers", "check_layers", "layer_shapes", "layers_text", "MAX_HIDDEN_LAYERS", "DEFAULT_KIND"]

for _kind in (TTLayerSpec, DenseLayerSpec, MatrixRankLayerSpec, ConvLayerSpec, TTConvLayerSpec, TT4dLayerSpec,
              PoolLayerSpec):  # the order tables and messages list them in
    if _kind.name not in kind_names():
        register(_kind)
