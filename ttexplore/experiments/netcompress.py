"""Compress a trained network of several layers (a dense CNN) by TT-SVD of each layer, fine-tune it, and set it
beside the same TT network trained from scratch: :mod:`ttexplore.experiments.compress` for whole networks.

1. :func:`network_source_from_run`: the trained network (its config and the dense weight or kernel of
   each hidden layer, read from the run's model file).
2. :func:`target_network`: the TT network to compress it into: :func:`ttexplore.runs.ttnet.tt_network`
   (convolutions after the first as TT convolutions, fully-connected layers as TT layers), or layers given.
3. :func:`network_spectra`: for each layer the target puts in TT format, the singular values of every
   unfolding of its kernel (a TT convolution's ``(C_out, kh*kw*C_in)`` TT-matrix, a TT layer's ``W``, a
   4-D TT's kernel tensor): which rank each core boundary needs (the Compress page's figure, one per layer).
4. :func:`plan_network_compression`: per rank, the TT-SVD network evaluated as it is, the same fine-tuned
   ``K`` epochs (both start from the trained weights through ``init_from``: each layer TT-SVD'd at the
   run's ranks by :mod:`ttexplore.runs.warmstart`), and the same TT network from a random draw.

The runs are recorded, run and read back by :func:`~ttexplore.experiments.compress.run_plan` and
:func:`~ttexplore.experiments.compress.compress_rows`, as for one layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import torch

from ttexplore.tt.convshape import conv_tt_modes, tt4d_modes
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.kinds import LayerSpec, TT4dLayerSpec, TTConvLayerSpec, TTLayerSpec, parse_layers
from ttexplore.runs.layerspec import InitFrom
from ttexplore.runs.store import RunStore
from ttexplore.runs.ttnet import tt_network
from ttexplore.runs.warmstart import file_sha256, read_source
from ttexplore.experiments.compress import CompressTarget, unfolding_spectra

__all__ = ["NetworkSource", "LayerSpectra", "network_source_from_run", "target_network", "network_spectra",
           "plan_network_compression", "layer_tt_svd_error", "is_network"]


def is_network(config: RunConfig) -> bool:
    """Whether ``config`` is compressed as a network (several hidden layers, or a layer that reads images)
    rather than as the paper's one fully-connected hidden layer."""
    return len(config.layers) > 1 or any(not layer.flattens for layer in config.layers)


@dataclass
class NetworkSource:
    """A trained network to compress.

    Attributes:
        init_from: where its weights are (file, SHA-256, run id).
        base: its :class:`RunConfig`.
        weights: each hidden layer's dense weight ``(out, in)`` or kernel ``(C_out, C_in, kh, kw)`` (``None`` for
            a max pool), first to last.
        label: ``"run 2024...-ab12cd"``.
        has_head: the file holds the classifier (always, for a run's model file).
    """

    init_from: InitFrom
    base: RunConfig
    weights: list[Optional[torch.Tensor]]
    label: str
    has_head: bool = True
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.label}: {self.base.describe()}, {self.base.net_params():,} parameters"


def network_source_from_run(store: RunStore, run_id: str) -> NetworkSource:
    """The trained network of a recorded run (normally a dense CNN).

    Raises:
        ConfigError: field ``"run"`` for an unknown run or one without weights.
    """
    run = store.get_run(run_id)
    if run is None:
        raise ConfigError("run", f"no run {run_id!r} in {store.path}: see 'python -m ttexplore runs list'")
    path = store.artifact_path(run.get("weights_path"))
    if path is None or not path.is_file():
        raise ConfigError("run", f"run {run_id} has no saved weights ({run['status']}): compress a completed run")
    source = read_source(path)
    config = RunConfig.from_dict(run["config"]).replace(init_from=None)
    return NetworkSource(InitFrom(str(path), file_sha256(path), run=run_id), config,
                         [layer.weight for layer in source.layers], f"run {run_id}")


def target_network(source: NetworkSource, layers: Optional[Sequence[Any]] = None, rank: int = 4) -> list[LayerSpec]:
    """The TT network ``source`` is compressed into: ``layers`` as given (text forms or specs, as many as the
    source has, each of the same output shape), else :func:`~ttexplore.runs.ttnet.tt_network` at ``rank``.

    Raises:
        ConfigError: field ``"layers"`` naming the layer that does not fit the source's and the fix.
    """
    base = source.base
    if layers is None:
        return tt_network(base.layers, base.input_shape, rank)
    target = list(parse_layers(list(layers)))
    if len(target) != len(base.layers):
        raise ConfigError("layers", f"the TT network has {len(target)} layers but {source.label} has "
                                    f"{len(base.layers)}: give one per layer, e.g. "
                                    f"{'; '.join(layer.text() for layer in tt_network(base.layers, base.input_shape))}")
    config = base.replace(layers=target)  # checks each layer against the one before
    for index, (mine, theirs) in enumerate(zip(config.layer_shapes[1:], base.layer_shapes[1:])):
        if mine != theirs:
            raise ConfigError("layers", f"layer {index + 1} ({target[index].text()}) gives {mine}, but {source.label}'s "
                                        f"layer {index + 1} ({base.layers[index].text()}) gives {theirs}: the TT layer "
                                        "must have the sizes of the layer it compresses")
        if target[index] != base.layers[index] and base.layers[index].has_tt_cores:
            raise ConfigError("layers", f"layer {index + 1} of {source.label} is already {base.layers[index].label()}: "
                                        "compress networks whose layers are dense (conv, dense)")
    return target


def _tt_view(layer: LayerSpec, weight: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...], tuple[int, ...]]:
    """The trained ``weight`` as the matrix a TT layer of kind ``layer`` factorizes, with its TT modes."""
    if isinstance(layer, TTConvLayerSpec):
        # (C_out, C_in, kh, kw) -> (C_out, kh*kw*C_in), kernel position major (TTConv2d's layout)
        matrix = weight.detach().permute(0, 2, 3, 1).reshape(weight.shape[0], -1)
        tt_in, tt_out = conv_tt_modes(layer.in_modes, layer.out_modes, layer.kernel)
        return matrix, tt_in, tt_out
    if isinstance(layer, TT4dLayerSpec):
        tt_in, tt_out = tt4d_modes(weight.shape[1], weight.shape[0], layer.kernel)
        return weight.detach().reshape(1, -1), tt_in, tt_out
    if isinstance(layer, TTLayerSpec):
        return weight.detach(), layer.in_modes, layer.out_modes
    raise ValueError(f"{layer.label()} is not a TT layer this module compresses (ttconv, tt4d, tt)")


def _compressed(source: NetworkSource, target: Sequence[LayerSpec]) -> list[int]:
    """Indices of the layers ``target`` turns from the source's dense layers into TT ones."""
    return [index for index, (mine, theirs) in enumerate(zip(target, source.base.layers))
            if mine.has_tt_cores and mine != theirs]


@dataclass
class LayerSpectra:
    """The singular values of every unfolding of one layer's trained weight, in the TT layout of its target.

    Attributes:
        index: 1-based hidden layer; ``module``: its child's name (``hidden_3``).
        source_label, target_label: the trained layer and the TT layer it becomes.
        in_modes, out_modes: the TT-matrix modes (a TT convolution's start with ``kh*kw`` and 1).
        boundaries: a name per unfolding (``"r_0: kernel | channels"``, ``"r_1"``, ...).
        spectra: per unfolding its singular values, largest first (plain floats).
    """

    index: int
    module: str
    source_label: str
    target_label: str
    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]
    boundaries: list[str]
    spectra: list[list[float]]

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "in_modes": list(self.in_modes), "out_modes": list(self.out_modes)}


def network_spectra(source: NetworkSource, target: Sequence[LayerSpec]) -> list[LayerSpectra]:
    """For each layer ``target`` compresses, the singular values of every unfolding of its trained weight
    (:func:`~ttexplore.experiments.compress.unfolding_spectra` of the layer's TT view): the ``k``-th unfolding's
    rank is the smallest ``k``-th TT rank that holds the kernel exactly. Ready for
    :func:`ttexplore.presenters.compress.spectra_figure` (one figure per layer).

    Complexity: one SVD per boundary of each layer; for the preset CNN on 28x28, milliseconds.
    """
    result = []
    for index in _compressed(source, target):
        layer, weight = target[index], source.weights[index]
        matrix, tt_in, tt_out = _tt_view(layer, weight)
        spectra = unfolding_spectra(matrix, tt_in, tt_out)
        if isinstance(layer, TTConvLayerSpec):
            names = ["r_0: kernel | channels"] + [f"r_{k}" for k in range(1, len(spectra))]
        else:
            names = [f"r_{k}" for k in range(1, len(spectra) + 1)]
        result.append(LayerSpectra(index + 1, "hidden" if index == 0 else f"hidden_{index + 1}",
                                   source.base.layers[index].label(), layer.with_ranks(None).label().replace(" r=max", ""),
                                   tuple(tt_in), tuple(tt_out),
                                   names, spectra))
    return result


def layer_tt_svd_error(layer: LayerSpec, weight: torch.Tensor, in_shape: Sequence[int]) -> float:
    """``||W - W_TT||_F / ||W||_F`` of TT-SVD of the trained ``weight`` at ``layer``'s ranks (as used)."""
    from ttexplore.nn.ttmatrix import TTMatrix

    matrix, tt_in, tt_out = _tt_view(layer, weight)
    return float(TTMatrix.from_dense(matrix.double(), tt_in, tt_out, ranks=layer.ranks_used(tuple(in_shape)))
                 .approximation_error)


def _at_rank(layer: LayerSpec, rank: int, in_shape: Sequence[int]) -> LayerSpec:
    """``layer`` at max rank ``rank``: one number while no rank is clipped (as a sweep writes it), else the
    maximal useful ranks it reaches (the same layer, without a clipping warning when it is built)."""
    layer = layer.with_ranks(rank)
    return layer.with_ranks(layer.ranks_used(tuple(in_shape))) if layer.clipping(tuple(in_shape)) else layer


def plan_network_compression(source: NetworkSource, target: Sequence[LayerSpec], ranks: Sequence[int],
                             finetune_epochs: int = 0, scratch_epochs: Optional[int] = None,
                             **training: Any) -> list[CompressTarget]:
    """The runs that compress ``source`` into ``target`` at each of ``ranks`` (every TT layer at that max rank).

    Each :class:`~ttexplore.experiments.compress.CompressTarget`'s ``ranks`` are the first compressed layer's
    ranks in use, ``rel_error`` the largest of the compressed layers' TT-SVD errors, ``layer_errors`` each one.

    Raises:
        ConfigError: naming ``ranks`` or ``scratch_epochs`` and the fix, or ``layers`` when the target compresses nothing.
    """
    if not ranks:
        raise ConfigError("ranks", "give ranks (e.g. 1,2,4,8) to compress the network to")
    for rank in ranks:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ConfigError("ranks", f"ranks: {rank!r} is not a TT rank: every rank is a whole number of at least 1")
    if scratch_epochs is not None and scratch_epochs < 1:
        raise ConfigError("scratch_epochs", f"scratch_epochs {scratch_epochs} must be at least 1")
    compressed = _compressed(source, target)
    if not compressed:
        raise ConfigError("layers", f"the TT network compresses no layer of {source.label}: it needs a dense "
                                    "convolution after the first, or a dense fully-connected layer")
    base = source.base.replace(**training) if training else source.base
    scratch_epochs = scratch_epochs or finetune_epochs or base.epochs
    shapes = base.layer_shapes
    targets, seen = [], set()
    for rank in ranks:
        layers = [_at_rank(layer, rank, shapes[index]) if index in compressed else layer
                  for index, layer in enumerate(target)]
        used = tuple(layers[index].ranks_used(shapes[index]) for index in compressed)
        if used in seen:
            continue  # above the maximal useful ranks: the same network as a lower rank
        seen.add(used)
        errors = [layer_tt_svd_error(layers[index], source.weights[index], shapes[index]) for index in compressed]
        start = base.replace(layers=layers, init_from=source.init_from.to_dict(), label=f"TT-SVD of {source.label}")
        finetuned = start.replace(epochs=finetune_epochs, label=f"TT-SVD of {source.label} + {finetune_epochs} epochs") \
            if finetune_epochs else None
        targets.append(CompressTarget(rank, None, used[0], max(errors), start.replace(epochs=0), finetuned,
                                      start.replace(init_from=None, epochs=scratch_epochs, label=""), tuple(errors)))
    return targets
