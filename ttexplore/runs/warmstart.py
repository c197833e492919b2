"""Start a network from trained weights (``RunConfig.init_from``): read the weights file, turn each
trained hidden layer into the run's layer of the same place, copy the biases and the head.

The slides' "in theory" path: choose the shapes, compute ``W``'s TT factorization (TT-SVD,
Oseledets 2011), the ranks given by ``W``; here capped by the run's ranks. A TT layer gets the
TT-SVD of the source layer's dense weight, a matrix-rank layer its truncated SVD, a dense layer
a copy; for images, a TT convolution the TT-SVD of the source convolution's kernel as its
``(C_out, kh*kw*C_in)`` TT-matrix (``TTConv2d.from_conv``'s), a 4-D TT convolution the TT-SVD of the
4-D kernel, a convolution a copy, and a max pool (no weights) nothing. Files are read with
``torch.load(weights_only=True)``: tensors and plain containers only, never code.

``tt-round`` (:func:`continue_config`, "Round and continue", and compressing a TT run): each TT layer
starts from the source run's trained TT layer TT-rounded to the run's ranks (:mod:`ttexplore.runs.rounding`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

from ttexplore.nn.kernels import dense_to_tt_matrix
from ttexplore.nn.layers import MatrixRankLinear, TTLinear
from ttexplore.nn.tt4d import TT4dConv2d
from ttexplore.nn.ttconv import TTConv2d
from ttexplore.nn.ttmatrix import TTMatrix
from ttexplore.tt.convshape import conv_tt_modes, tt4d_modes
from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.layerspec import InitFrom
from ttexplore.nn.weightfile import WeightsFileError, read_tensors
from ttexplore.runs.models import MODEL_FORMAT, hidden_layers, load_model
from ttexplore.runs.rounding import round_start, roundable
from ttexplore.runs.store import RunStore

__all__ = ["SourceLayer", "SourceWeights", "WarmStartError", "file_sha256", "read_source", "dense_weight", "dense_shape",
           "tt_svd_cores", "apply_init_from", "continue_config"]


class WarmStartError(ValueError):
    """A weights file that cannot start this run; the message says what is wrong and what to do, in words
    neither the CLI's nor a page's: a setting is named by its field (``weight_key``), which the CLI shows as
    its flag (``--weight-key``) and a page as its label (``Weight key``).

    Attributes:
        field: the setting to change (``"weight_key"``), or ``None`` when the file itself is the problem.
    """

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class SourceLayer:
    """One trained hidden layer: its dense weight (``(out, in)``, or a convolution's ``(C_out, C_in, kh, kw)``
    kernel; ``None`` for a layer without weights, a max pool, and for a TT layer that ``tt-round`` rounds from
    its cores) and its bias (``None`` when it has none)."""

    weight: Optional[torch.Tensor]
    bias: Optional[torch.Tensor] = None
    key: str = ""

    @property
    def shape(self) -> Optional[tuple[int, ...]]:
        return tuple(self.weight.shape) if self.weight is not None else None


@dataclass
class SourceWeights:
    """What a weights file holds, as dense matrices.

    Attributes:
        layers: the hidden layers, first to last.
        head_weight, head_bias: the classifier, when the file has one.
        config: the network's :class:`RunConfig` when the file is a ttexplore model file.
        path: the file.
    """

    layers: list[SourceLayer]
    head_weight: Optional[torch.Tensor] = None
    head_bias: Optional[torch.Tensor] = None
    config: Optional[RunConfig] = None
    path: Optional[Path] = None
    notes: list[str] = field(default_factory=list)


def file_sha256(path: "str | Path") -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dense_weight(layer: nn.Module) -> Optional[torch.Tensor]:
    """A hidden layer's weight as one ``(out, in)`` matrix, or a convolution's ``(C_out, C_in, kh, kw)`` kernel
    (TT, matrix-rank and TT convolution layers rebuilt); ``None`` for a layer without weights (a max pool)."""
    with torch.no_grad():
        if isinstance(layer, (TTLinear, MatrixRankLinear, TTConv2d, TT4dConv2d)):
            return layer.to_dense().detach()
        weight = getattr(layer, "weight", None)
        return weight.detach() if isinstance(weight, torch.Tensor) else None


def dense_shape(layer: nn.Module) -> Optional[tuple[int, ...]]:
    """The shape :func:`dense_weight` gives for ``layer``, without building it: ``(out, in)``,
    ``(C_out, C_in, kh, kw)``, or ``None`` for a layer without weights."""
    if isinstance(layer, (TTConv2d, TT4dConv2d, nn.Conv2d)):
        return (layer.out_channels, layer.in_channels, *layer.kernel_size)
    if isinstance(layer, (TTLinear, MatrixRankLinear)):
        return (layer.out_features, layer.in_features)
    weight = getattr(layer, "weight", None)
    return tuple(weight.shape) if isinstance(weight, torch.Tensor) else None


def read_source(path: "str | Path", weight_key: Optional[str] = None, in_features: Optional[int] = None,
                classes: Optional[int] = None) -> SourceWeights:
    """The trained layers a weights file holds.

    Reads a ttexplore model file (``--save-model``, a run's weights), a ``state_dict`` (also inside
    ``{"state_dict": ...}`` or ``{"model_state_dict": ...}``) or a single 2-D tensor. In a
    ``state_dict`` the hidden weight is ``weight_key``, else the one 2-D tensor with ``in_features``
    columns; its bias is the same name ending in ``bias``; a ``(classes, width)`` tensor is the head.

    Raises:
        WarmStartError: for a missing or unreadable file, or one without a fitting weight.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WarmStartError(f"{path} does not exist or is not a file: give a weights file (.pt)")
    try:  # weights-only: unpickling refuses anything but tensors and plain containers
        payload = read_tensors(path, "save a state_dict or a tensor with torch.save (torch.save(layer.state_dict(), "
                                     "'weights.pt'))")
    except WeightsFileError as error:  # names the file first, then what is wrong with it and the fix
        raise WarmStartError(str(error)) from None
    except OSError as error:
        raise WarmStartError(f"{path} cannot be read ({error.strerror or error}): give a readable weights file (.pt)") from None
    if isinstance(payload, dict) and payload.get("format") == MODEL_FORMAT:
        return _finite(_from_model_file(path), path)
    if isinstance(payload, torch.Tensor):
        payload = {"weight": payload}
    if isinstance(payload, dict):
        for nested in ("state_dict", "model_state_dict", "model"):
            if isinstance(payload.get(nested), dict):
                payload = payload[nested]
                break
    if not isinstance(payload, dict) or not any(isinstance(value, torch.Tensor) for value in payload.values()):
        raise WarmStartError(f"{path} holds no tensors: save an nn.Linear's state_dict or its weight with torch.save")
    return _finite(_from_state_dict(payload, path, weight_key, in_features, classes), path)


def _finite(source: SourceWeights, path: Path) -> SourceWeights:
    """``source``, once every hidden weight is known to be finite (TT-SVD of a NaN is an SVD error).

    Raises:
        WarmStartError: naming the file, the tensor and how many values are NaN or infinite.
    """
    for index, layer in enumerate(source.layers):
        if layer.weight is None:
            continue
        finite = torch.isfinite(layer.weight)
        if not bool(finite.all()):
            nan = int(torch.isnan(layer.weight).sum())
            where = f"its weight {layer.key!r}" if layer.key else f"its hidden layer {index}"
            raise WarmStartError(f"{path}: {where} has {nan} NaN and {int((~finite).sum()) - nan} infinite values: "
                                 "a trained layer's weights are finite (the run that wrote it may have diverged); "
                                 "give another file")
    return source


def _from_model_file(path: Path) -> SourceWeights:
    """A ttexplore model file, through :func:`~ttexplore.runs.models.load_model` (its config validated,
    its tensors checked against it and the memory budget before the model is built)."""
    try:
        model, config = load_model(path)
    except ValueError as error:  # WeightsFileError, ResourceError
        raise WarmStartError(str(error)) from None
    layers = [SourceLayer(dense_weight(layer), _bias(layer), name) for name, layer in hidden_layers(model)]
    return SourceWeights(layers, model.head.weight.detach(), model.head.bias.detach(), config, path)


def _bias(layer: nn.Module) -> Optional[torch.Tensor]:
    """A layer's bias, detached (``None`` without one, e.g. a max pool)."""
    bias = getattr(layer, "bias", None)
    return bias.detach() if isinstance(bias, torch.Tensor) else None


def _from_state_dict(state: dict[str, Any], path: Path, weight_key: Optional[str], in_features: Optional[int],
                     classes: Optional[int]) -> SourceWeights:
    matrices = {key: value for key, value in state.items()
                if isinstance(value, torch.Tensor) and value.dim() == 2 and value.is_floating_point()}
    if weight_key is not None:
        if weight_key not in matrices:
            raise WarmStartError(f"{path} has no 2-D weight {weight_key!r}: its matrices are "
                                 f"{_listing(matrices)}; give one of them as weight_key", "weight_key")
        key = weight_key
    else:
        fitting = [key for key, value in matrices.items() if in_features is None or value.shape[1] == in_features]
        if classes is not None and len(fitting) > 1:  # a head that happens to read as many features
            fitting = [key for key in fitting if matrices[key].shape[0] != classes] or fitting
        if not matrices:
            raise WarmStartError(f"{path} holds no 2-D weight: save an nn.Linear's state_dict or its weight")
        if not fitting:
            raise WarmStartError(f"{path}: no 2-D weight has {in_features} columns, the features this network feeds "
                                 f"its hidden layer (its matrices: {_listing(matrices)}): choose the dataset and "
                                 "padding the weights were trained on")
        if len(fitting) > 1:
            raise WarmStartError(f"{path}: {len(fitting)} 2-D weights could be the hidden layer "
                                 f"({_listing({key: matrices[key] for key in fitting})}): give the one to use as "
                                 "weight_key", "weight_key")
        key = fitting[0]
    weight = matrices[key].detach().float()
    bias = _bias_of(state, key, weight.shape[0])
    source = SourceWeights([SourceLayer(weight, bias, key)], path=path)
    heads = [other for other, value in matrices.items()
             if other != key and classes is not None and tuple(value.shape) == (classes, weight.shape[0])]
    if len(heads) == 1:
        source.head_weight = matrices[heads[0]].detach().float()
        source.head_bias = _bias_of(state, heads[0], classes)
    else:
        source.notes.append("the file holds no classifier head of the right size: the head starts from a random draw")
    return source


def _bias_of(state: dict[str, Any], weight_key: str, size: int) -> Optional[torch.Tensor]:
    if not weight_key.endswith("weight"):
        return None
    bias = state.get(weight_key[: -len("weight")] + "bias")
    if isinstance(bias, torch.Tensor) and tuple(bias.shape) == (size,):
        return bias.detach().float()
    return None


def _listing(matrices: dict[str, torch.Tensor]) -> str:
    if not matrices:
        return "none"
    return ", ".join(f"{key} {tuple(value.shape)}" for key, value in list(matrices.items())[:8])


# ---------------------------------------------------------------- TT-SVD into a layer
def tt_svd_cores(weight: torch.Tensor, in_modes: Sequence[int], out_modes: Sequence[int],
                 ranks: Optional[Sequence[int]] = None, rel_error: Optional[float] = None) -> tuple[list[torch.Tensor], float]:
    """TT-SVD of a dense ``(M, N)`` weight (in float64): cores ``(r_{k-1}, n_k, m_k, r_k)`` with the ranks
    capped by ``ranks`` (and cut at ``rel_error`` when given) and ``||W - W_TT||_F / ||W||_F``.

    Raises:
        WarmStartError: for a weight with NaN or infinite values (no SVD of it exists).
    """
    if not bool(torch.isfinite(weight).all()):
        raise WarmStartError("the weight to compress has NaN or infinite values: a trained layer's weights are "
                             "finite (the run that wrote it may have diverged)")
    return dense_to_tt_matrix(weight.detach().double(), tuple(in_modes), tuple(out_modes), max_ranks=ranks,
                              rel_error=rel_error)


def _copy_padded(target: torch.Tensor, source: torch.Tensor) -> None:
    """Copy ``source`` into the leading corner of ``target``, zeros elsewhere (a TT core of a lower
    rank, zero-padded, gives the same matrix)."""
    target.zero_()
    target[tuple(slice(0, size) for size in source.shape)].copy_(source.to(target.dtype))


def _init_tt(layer: TTLinear, weight: torch.Tensor) -> float:
    cores, error = tt_svd_cores(weight, layer.in_modes, layer.out_modes, layer.ranks)
    for target, core in zip(layer.cores, cores):
        _copy_padded(target, core)
    return error


def _init_tt_conv(layer: TTConv2d, kernel: torch.Tensor) -> float:
    """TT-SVD of ``kernel`` ``(C_out, C_in, kh, kw)`` as the layer's ``(C_out, kh*kw*C_in)`` TT-matrix, at its ranks."""
    if not bool(torch.isfinite(kernel).all()):
        raise WarmStartError("the kernel to compress has NaN or infinite values: a trained layer's weights are finite")
    # (C_out, C_in, kh, kw) -> (C_out, kh, kw, C_in) -> (C_out, kh*kw*C_in), kernel position major (TTConv2d's layout)
    matrix = kernel.detach().double().permute(0, 2, 3, 1).reshape(kernel.shape[0], -1)
    tt_in, tt_out = conv_tt_modes(layer.in_modes, layer.out_modes, layer.kernel_size)
    tt = TTMatrix.from_dense(matrix, tt_in, tt_out, ranks=layer.ranks)
    for target, core in zip(layer.cores, tt.cores):
        _copy_padded(target, core)
    return float(tt.approximation_error)


def _init_tt4d(layer: TT4dConv2d, kernel: torch.Tensor) -> float:
    """TT-SVD of the 4-D ``kernel`` at the layer's ranks (its cores ``(r_{k-1}, n_k, r_k)``)."""
    if not bool(torch.isfinite(kernel).all()):
        raise WarmStartError("the kernel to compress has NaN or infinite values: a trained layer's weights are finite")
    tt_in, tt_out = tt4d_modes(layer.in_channels, layer.out_channels, layer.kernel_size)
    tt = TTMatrix.from_dense(kernel.detach().double().reshape(1, -1), tt_in, tt_out, ranks=layer.ranks)
    for target, core in zip(layer.cores, tt.cores):
        _copy_padded(target, core.squeeze(2))
    return float(tt.approximation_error)


def _init_layer(layer: nn.Module, weight: torch.Tensor) -> float:
    """Set ``layer``'s weights from the trained dense ``weight`` of its shape; the relative error."""
    if isinstance(layer, TTLinear):
        return _init_tt(layer, weight)
    if isinstance(layer, MatrixRankLinear):
        return _init_matrix_rank(layer, weight)
    if isinstance(layer, TTConv2d):
        return _init_tt_conv(layer, weight)
    if isinstance(layer, TT4dConv2d):
        return _init_tt4d(layer, weight)
    layer.weight.copy_(weight)
    return 0.0


def _init_matrix_rank(layer: MatrixRankLinear, weight: torch.Tensor) -> float:
    left, sigma, right = torch.linalg.svd(weight.double(), full_matrices=False)
    rank = min(layer.rank, sigma.numel())
    root = sigma[:rank].sqrt()
    _copy_padded(layer.up, left[:, :rank] * root)
    _copy_padded(layer.down, root[:, None] * right[:rank])
    norm = float(sigma.norm())
    return float(sigma[rank:].norm()) / norm if norm > 0 else 0.0


def _axes(shape: tuple[int, ...]) -> str:
    return "out x in" if len(shape) == 2 else "C_out x C_in x kh x kw"


def apply_init_from(model: nn.Sequential, config: RunConfig) -> list[float]:
    """Set ``model``'s weights from ``config.init_from`` (in place); returns each hidden layer's relative
    Frobenius error ``||W - W_layer||_F / ||W||_F`` (0 for a copy): against the source's dense weight for
    ``tt-svd``, against the source's trained TT-matrix for a TT layer of ``tt-round``.

    Raises:
        WarmStartError: when the file is gone or changed (its SHA-256 differs), or its layers do not
            fit the network (the message names the layer, both sizes and the fix).
    """
    start = config.init_from
    if start is None:
        return []
    path = Path(start.path)
    if not path.is_file():
        raise WarmStartError(f"the weights this run starts from, {path}, are gone: restore the file, or start "
                             "a new run from other weights")
    if file_sha256(path) != start.sha256:
        raise WarmStartError(f"the weights file {path} changed since this run was described (its SHA-256 differs): "
                             "describe the run again from the file as it is now")
    layers = hidden_layers(model)
    trained_modules: list[Optional[nn.Module]] = [None] * len(layers)
    if start.method == "tt-round":
        try:
            trained_model, _ = load_model(path)
        except ValueError as error:  # WeightsFileError, ResourceError
            raise WarmStartError(str(error)) from None
        trained_modules = [module for _, module in hidden_layers(trained_model)]
        # the TT layers are rounded from their modules (no W is built); the others read as tt-svd reads them
        source = SourceWeights([SourceLayer(None if spec.has_tt_cores else dense_weight(module), _bias(module), name)
                                for (name, module), spec in zip(hidden_layers(trained_model), config.layers)],
                               trained_model.head.weight.detach(), trained_model.head.bias.detach(), path=path)
    else:
        source = read_source(path, start.weight_key, config.in_features, config.num_classes)
    if len(source.layers) < len(layers):
        raise WarmStartError(f"{path} holds {len(source.layers)} hidden layer(s), this network has {len(layers)}: "
                             "start from a network with as many hidden layers")
    errors = []
    with torch.no_grad():
        for index, ((name, layer), trained) in enumerate(zip(layers, source.layers)):
            wanted = dense_shape(layer)
            if start.method == "tt-round" and config.layers[index].has_tt_cores:
                errors.append(_init_rounded(layer, trained_modules[index], start.rel_error, f"hidden layer {index + 1} of {path}"))
            else:
                if trained.shape != wanted:
                    have = "no weights" if trained.shape is None else f"{'x'.join(map(str, trained.shape))} ({_axes(trained.shape)})"
                    need = "none" if wanted is None else f"{'x'.join(map(str, wanted))} ({_axes(wanted)})"
                    raise WarmStartError(f"hidden layer {index + 1} of {path} ({trained.key or name}) has {have}, but this "
                                         f"network's needs {need}: start from a network with layers of the same kinds "
                                         "and sizes")
                if wanted is None:  # a max pool: nothing to start
                    errors.append(0.0)
                    continue
                errors.append(_init_layer(layer, trained.weight))
            if getattr(layer, "bias", None) is not None:
                if trained.bias is not None:
                    layer.bias.copy_(trained.bias)
                else:
                    layer.bias.zero_()
        if source.head_weight is not None and source.head_weight.shape == model.head.weight.shape:
            model.head.weight.copy_(source.head_weight)
            if source.head_bias is not None:
                model.head.bias.copy_(source.head_bias)
    return [error if math.isfinite(error) else float("nan") for error in errors]


def _init_rounded(layer: nn.Module, trained: Optional[nn.Module], rel_error: Optional[float], where: str) -> float:
    """``layer``'s cores from the trained TT layer ``trained`` rounded to ``layer``'s ranks (and ``rel_error``):
    each parameter copied into the leading corner, zero-padded where the rounding reached lower ranks (the
    same matrix). Returns the rounding's relative error against ``trained``'s weight."""
    if trained is None or type(trained) is not type(layer):
        raise WarmStartError(f"{where} is a {type(trained).__name__}, not a {type(layer).__name__}: tt-round starts a "
                             "TT layer from a trained TT layer of the same kind")
    for name in ("in_modes", "out_modes"):
        if getattr(trained, name, None) != getattr(layer, name, None):
            raise WarmStartError(f"{where} has {name} {getattr(trained, name, None)}, this network's layer "
                                 f"{getattr(layer, name, None)}: round a run of the same shapes")
    try:
        rounded = roundable(trained, where).rounded(max_rank=tuple(layer.ranks), rel_error=rel_error)
    except (TypeError, ValueError) as error:
        raise WarmStartError(str(error)) from None
    targets = dict(layer.named_parameters())
    for key, tensor in rounded.named_parameters():
        if key not in targets or tensor.dim() != targets[key].dim() or any(
                have > want for have, want in zip(tensor.shape, targets[key].shape)):
            raise WarmStartError(f"{where}: its rounded {key} {tuple(tensor.shape)} does not fit this network's "
                                 f"{tuple(targets[key].shape) if key in targets else 'layer'}")
        _copy_padded(targets[key], tensor.detach())
    error = rounded.approximation_error
    return float(error) if error is not None else 0.0


# ---------------------------------------------------------------- Round and continue
def continue_config(store: RunStore, run_id: str, rank: Optional[int] = None, rel_error: Optional[float] = None,
                    epochs: Optional[int] = None) -> RunConfig:
    """"Round and continue": a new run (linked to ``run_id`` by its ``init_from``) that starts from the run's
    trained TT layers rounded to max rank ``rank`` or to ``rel_error`` and trains ``epochs`` more epochs
    (default: as many as the run had), with the run's other settings and no schedule.

    Raises:
        ConfigError: field ``run`` for an unknown run, one without a weights file or without TT layers;
            ``rank``/``rel_error``/``epochs`` for a bad value (a rank that lowers no rank included).
    """
    run = store.get_run(run_id)
    if run is None:
        raise ConfigError("run", f"no run {run_id!r} in {store.path}: see 'python -m ttexplore runs list'")
    path = store.artifact_path(run.get("weights_path"))
    if path is None or not path.is_file():
        raise ConfigError("run", f"run {run_id} has no weights file ({run['status']}): resume it to the end first, "
                                 "or round a completed run")
    config = RunConfig.from_dict(run["config"])
    if not any(layer.has_tt_cores for layer in config.layers):
        raise ConfigError("run", f"run {run_id} ({config.network_text()}) has no TT layer to round: compress it by "
                                 "TT-SVD on the Compress page")
    try:
        model, _ = load_model(path)
    except ValueError as error:
        raise ConfigError("run", f"run {run_id}'s weights cannot be read: {error}") from None
    base = config.replace(init_from=None, round_to=None, label=f"rounded from run {run_id}")
    start, _ = round_start(base, model, InitFrom(str(path), file_sha256(path), run=run_id), rank, rel_error)
    return start if epochs is None else start.replace(epochs=epochs)
