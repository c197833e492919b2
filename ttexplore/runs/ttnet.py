"""The TT version of a network: its convolutions after the first as TT convolutions, its fully-connected
hidden layers as TT layers, at one rank (Garipov et al. 2016's recipe). Pure Python.

The ``tt-convnet`` preset is the ``convnet`` preset through :func:`tt_network`, and ``compress`` of a
dense CNN run proposes the same layers. The modes are chosen by one rule: sides split into balanced
modes (:func:`~ttexplore.tt.shapes.default_modes`) with the largest modes at the ends of the chain,
where a core meets rank 1 and so costs least:

* a convolution's channels in 3 modes, smallest first (the spatial core comes before them, rank
  ``r_0``; the last core ends in rank 1): 32 = 2x4x4, 64 = 4x4x4, 128 = 4x4x8;
* a fully-connected layer that reads images ``(C, H, W)`` (flattened channel-major): the channels in 3
  modes, largest first, then the ``H W`` pixels as the last mode (128 x 3 x 3 = 8x4x4x9); one that reads
  ``F`` features (or 1x1 images), ``F`` in 4 modes largest first; its output in as many modes (256 = 4x4x4x4).

The first convolution (few input channels: nothing to factorize), pools and layers already in TT stay as
they are (a TT layer's ranks become ``rank``).
"""

from __future__ import annotations

from typing import Sequence

from ttexplore.tt.shapes import default_modes
from ttexplore.runs.kinds import ConvLayerSpec, DenseLayerSpec, LayerSpec, Shape, TTConvLayerSpec, TTLayerSpec, features_of
from ttexplore.runs.kinds.ttconv import padded_modes

__all__ = ["channel_modes", "fc_in_modes", "tt_layer", "tt_network"]


def channel_modes(channels: int) -> tuple[int, ...]:
    """``channels`` in (at most) 3 balanced modes, smallest first: 32 -> 2x4x4, 128 -> 4x4x8."""
    return tuple(sorted(default_modes(channels, 3)))


def fc_in_modes(in_shape: Shape) -> tuple[int, ...]:
    """The input modes of a TT fully-connected layer reading ``in_shape``: ``(C modes largest first, H W)`` for
    images of more than one pixel, else the features in 4 modes largest first."""
    if len(in_shape) == 3 and in_shape[1] * in_shape[2] > 1:
        return (*sorted(default_modes(int(in_shape[0]), 3), reverse=True), int(in_shape[1]) * int(in_shape[2]))
    return tuple(sorted(default_modes(features_of(in_shape), 4), reverse=True))


def tt_layer(layer: LayerSpec, in_shape: Shape, rank: int, first_conv: bool) -> LayerSpec:
    """``layer``'s TT version at ``rank`` (see the module notes): a convolution that is not the first becomes a
    ``ttconv``, a dense layer a ``tt`` layer, a layer with TT cores gets ``rank``; others are kept."""
    if isinstance(layer, ConvLayerSpec) and not first_conv:
        in_modes, out_modes = padded_modes(channel_modes(int(in_shape[0])), channel_modes(layer.channels))
        return TTConvLayerSpec(in_modes, out_modes, rank, layer.kernel_size, layer.stride)
    if isinstance(layer, DenseLayerSpec):
        in_modes = fc_in_modes(in_shape)
        out_modes = tuple(sorted(default_modes(layer.width, len(in_modes))))
        in_modes, out_modes = padded_modes(in_modes, out_modes)
        return TTLayerSpec(in_modes, out_modes, rank)
    if layer.has_tt_cores:
        return layer.with_ranks(rank)
    return layer


def tt_network(layers: Sequence[LayerSpec], in_shape: Shape, rank: int = 4) -> list[LayerSpec]:
    """Every layer of a network reading ``in_shape`` through :func:`tt_layer` at ``rank``.

    Complexity: one shape pass and a balanced factorization per layer.
    """
    shape, result, seen_conv = tuple(in_shape), [], False
    for layer in layers:
        first_conv = isinstance(layer, ConvLayerSpec) and not seen_conv
        seen_conv = seen_conv or not layer.flattens and layer.params(shape) > 0
        result.append(tt_layer(layer, shape, rank, first_conv))
        shape = tuple(layer.out_shape(shape))
    return result
