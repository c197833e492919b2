"""TT-rounding of a network's layers: a rank schedule's step during training, and runs that start from a
trained TT run's rounded cores ("Round and continue", compressing a TT run).

Which layers: every hidden layer whose kind has TT cores (:attr:`LayerSpec.has_tt_cores
<ttexplore.runs.kinds.LayerSpec.has_tt_cores>`; the kind is asked, never its name). What a module with
TT cores offers (:class:`RoundableLayer`): ``ranks``, ``param_count()`` and ``rounded(max_rank=...,
rel_error=...)``, a new module of its kind at the lower ranks whose ``approximation_error`` is the error
of the rounding (:meth:`TTLinear.rounded <ttexplore.nn.layers.TTLinear.rounded>`; a TT convolution joins
by offering the same).

After a rounding the optimizer is rebuilt over the network's parameters (:func:`carry_optimizer_state`):
the new cores start with fresh state (Adam moments of the old shapes mean nothing for them), every
parameter the rounding left in place (biases of rounded layers are new too, other layers and the head are
not) keeps its state, so their training goes on as it would have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Sequence

import torch
from torch import nn

from ttexplore.runs.config import ConfigError, RunConfig
from ttexplore.runs.layerspec import InitFrom
from ttexplore.runs.models import hidden_layer_params, hidden_layers
from ttexplore.runs.schedule import RoundStep

__all__ = ["RoundableLayer", "LayerRounding", "NetworkRounding", "round_network", "rounded_layers",
           "carry_optimizer_state", "roundable", "round_start", "ranks_setting"]


class RoundableLayer(Protocol):
    """What a module with TT cores offers for rounding."""

    ranks: tuple[int, ...]

    def param_count(self) -> int: ...

    def rounded(self, max_rank: Any = None, rel_error: Optional[float] = None) -> nn.Module: ...


def roundable(module: nn.Module, where: str) -> RoundableLayer:
    """``module`` when it offers rounding (:class:`RoundableLayer`), else a TypeError naming ``where``."""
    if not callable(getattr(module, "rounded", None)) or not hasattr(module, "ranks"):
        raise TypeError(f"{where} ({type(module).__name__}) has TT cores but offers no rounded(max_rank, rel_error): "
                        "give its module a rounded() returning the layer at lower ranks")
    return module  # type: ignore[return-value]


@dataclass
class LayerRounding:
    """One hidden layer's rounding: where it is, its ranks and weights before and after, the error
    ``||W - W_rounded||_F / ||W||_F`` (0 when nothing changed) and the rounded module (``None`` then)."""

    index: int
    name: str
    ranks_before: tuple[int, ...]
    ranks_after: tuple[int, ...]
    params_before: int
    params_after: int
    rel_error: float
    module: Optional[nn.Module] = field(default=None, repr=False)

    @property
    def changed(self) -> bool:
        return self.ranks_after != self.ranks_before

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "layer": self.name, "ranks_before": list(self.ranks_before),
                "ranks_after": list(self.ranks_after), "params_before": self.params_before,
                "params_after": self.params_after, "rel_error": self.rel_error}


@dataclass
class NetworkRounding:
    """A rounding of every TT layer of a network (:func:`round_network`)."""

    target: str
    layers: list[LayerRounding]
    params_before: int
    params_after: int

    @property
    def changed(self) -> bool:
        """Whether any layer's ranks went down (else the network and its optimizer are untouched)."""
        return any(layer.changed for layer in self.layers)

    def detail(self, dense_params: int) -> dict[str, Any]:
        """The ``detail`` of the rounding's metric event (see :mod:`ttexplore.runs.schedule`)."""
        return {"round": self.target, "layers": [layer.to_dict() for layer in self.layers],
                "params_before": self.params_before, "params_after": self.params_after,
                "compression_before": self.params_before / dense_params, "compression_after": self.params_after / dense_params}


def rounded_layers(model: nn.Sequential, config: RunConfig, max_rank: Any = None,
                   rel_error: Optional[float] = None) -> list[LayerRounding]:
    """Round each hidden layer of ``model`` that has TT cores (``config`` says which) to ``max_rank`` and/or
    ``rel_error``, without changing ``model``; a layer whose ranks would not go down is left as it is.

    Raises:
        TypeError: for a layer with TT cores whose module offers no ``rounded``.

    Complexity: one TT-rounding per TT layer, ``O(d n m r^3)`` each; never builds a ``W``.
    """
    roundings = []
    for index, ((name, module), spec) in enumerate(zip(hidden_layers(model), config.layers)):
        if not spec.has_tt_cores:
            continue
        layer = roundable(module, f"hidden layer {index + 1}")
        before = tuple(int(rank) for rank in layer.ranks)
        with torch.no_grad():
            candidate = layer.rounded(max_rank=max_rank, rel_error=rel_error)
        after = tuple(int(rank) for rank in candidate.ranks)
        if after == before:  # nothing dropped: keep the cores and their optimizer state
            roundings.append(LayerRounding(index, name, before, before, layer.param_count(), layer.param_count(), 0.0))
            continue
        error = candidate.approximation_error
        roundings.append(LayerRounding(index, name, before, after, layer.param_count(), candidate.param_count(),
                                       float(error) if error is not None else float("nan"), candidate))
    return roundings


def round_network(model: nn.Sequential, config: RunConfig, step: RoundStep) -> NetworkRounding:
    """One step of a rank schedule: every TT layer of ``model`` rounded to ``step``'s rank or relative error,
    its module replaced in place (same child name and position, same device; new parameters).

    Complexity: :func:`rounded_layers`.
    """
    params_before = hidden_layer_params(model)
    roundings = rounded_layers(model, config, max_rank=step.rank, rel_error=step.rel_error)
    for rounding in roundings:
        if rounding.module is not None:
            setattr(model, rounding.name, rounding.module)
    return NetworkRounding(step.target, roundings, params_before, hidden_layer_params(model))


def carry_optimizer_state(old: torch.optim.Optimizer, new: torch.optim.Optimizer) -> int:
    """Give ``new`` (an optimizer just built over a network's parameters after a rounding) the state ``old``
    held for every parameter both optimize (the same tensor: not rounded); the new cores keep none, so
    their state starts afresh at their first step (Adam: moments and step count from zero). Returns how
    many parameters kept their state."""
    kept = 0
    current = {id(parameter) for group in new.param_groups for parameter in group["params"]}
    for parameter, state in old.state.items():
        if id(parameter) in current:
            new.state[parameter] = state
            kept += 1
    return kept


# ---------------------------------------------------------------- runs that start from rounded cores
def round_start(base: RunConfig, trained: nn.Sequential, start: InitFrom, rank: Optional[int] = None,
                rel_error: Optional[float] = None) -> tuple[RunConfig, list[LayerRounding]]:
    """A run that starts from the TT layers of ``trained`` (the network of ``base``, loaded from the file
    ``start`` names) rounded to max rank ``rank`` or to ``rel_error``: ``base`` with each TT layer at the
    ranks the rounding reaches and ``init_from`` = ``start`` as ``tt-round`` (other layers, biases and the
    head copied; no schedule). Its epochs, seed and training settings are ``base``'s.

    Returns:
        The config and each TT layer's rounding (ranks, weights before and after, error).

    Raises:
        ConfigError: naming ``rank`` or ``rel_error``: not exactly one given, out of range, or a
            rounding that would lower no rank (the fix says below what).
    """
    if (rank is None) == (rel_error is None):
        raise ConfigError("rank", "give a rank (e.g. 4) or a relative error (e.g. 0.1) to round to, one of the two")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise ConfigError("rank", f"rank {rank!r} must be a whole number of 1 or more, e.g. 4")
    if rel_error is not None and not (isinstance(rel_error, (int, float)) and 0 < rel_error < 1):
        raise ConfigError("rel_error", f"relative error {rel_error!r} must be between 0 and 1 (both excluded), e.g. 0.1")
    if not any(layer.has_tt_cores for layer in base.layers):
        raise ConfigError("run", f"{base.network_text()} has no TT layer to round: compress a dense run by TT-SVD instead")
    roundings = rounded_layers(trained, base, max_rank=rank, rel_error=rel_error)
    if not any(rounding.changed for rounding in roundings):
        top = max((max(rounding.ranks_before, default=0) for rounding in roundings), default=0)
        asked = f"rank {rank}" if rank is not None else f"relative error {rel_error:g}"
        raise ConfigError("rank" if rank is not None else "rel_error",
                          f"{asked} lowers no rank of the trained TT layers (at most {top} now): "
                          + (f"choose a rank below {top}" if rank is not None else "allow a larger error"))
    layers = list(base.layers)
    for rounding in roundings:
        layers[rounding.index] = layers[rounding.index].with_ranks(ranks_setting(rounding.ranks_after, rank))
    values = {**start.to_dict(), "method": "tt-round", "rank": rank, "rel_error": rel_error}
    config = base.replace(layers=layers, init_from={key: value for key, value in values.items() if value is not None},
                          round_to=None)
    return config, roundings


def ranks_setting(ranks: Sequence[int], asked: Optional[int]) -> Any:
    """How a config writes ranks a rounding reached: the one number asked when every rank is it (``4``,
    as the train command writes it), else one per boundary (``(2, 4, 2)``)."""
    ranks = tuple(ranks)
    return asked if asked is not None and ranks and all(rank == asked for rank in ranks) else ranks
