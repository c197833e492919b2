"""Inside the TT cores of a run: per-core norms while it trains, the spectra of the trained layers at its end.

Two records, both about the network's TT layers (the hidden layers whose kind ``has_tt_cores``):

* :func:`core_norms`, at every metric event of :func:`~ttexplore.runs.fit.fit` (it travels in the
  event as ``"cores"`` and the store keeps it in that event's row, so a resumed run's series drops and
  redoes exactly what its metrics do): per TT layer, the Frobenius norm of each core and of its gradient
  from the last optimizer step (``None`` before the first step). A few norms of tensors of a few
  thousand entries: nothing next to a training step (measured in BENCHMARKS.md).
* :func:`layer_spectra`, once at the end (:func:`record_spectra`, called by the lifecycle when it saves
  the final weights; :func:`ttexplore.presenters.cores.spectra_for` has it computed once from the weights
  or the checkpoint of a run that ended without it, e.g. a server killed mid-run): per TT layer, the singular values of each
  unfolding of its trained ``W`` (:meth:`~ttexplore.nn.ttmatrix.TTMatrix.singular_values`, from the
  cores, never building ``W``), the ranks in use, the maximal useful ones and the effective ranks at
  :data:`TOLERANCES`. Kept as ``<artifacts>/spectra/<run id>.json`` beside the run's weights, so a page
  reads it instead of recomputing it.

Event form (JSON-ready)::

    "cores": [{"layer": 0, "weight": [1.02, 0.98, 1.01, 0.97], "grad": [0.011, 0.020, 0.019, 0.012]}]

``layer`` is the 0-based index of the hidden layer (``Hidden layer 1`` is 0).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Optional, Sequence

import torch
from torch import nn

from ttexplore.nn.layers import TTLinear
from ttexplore.nn.tt4d import TT4dConv2d
from ttexplore.nn.ttconv import TTConv2d
from ttexplore.runs.config import RunConfig
from ttexplore.runs.models import build_model, hidden_layers
from ttexplore.runs.store import RunStore
from ttexplore.tt import ttmath
from ttexplore.tt.atomic import write_atomic

__all__ = ["TOLERANCES", "SPECTRA_FORMAT", "TT_MODULES", "tt_layer_modules", "core_norms", "layer_spectra", "record_spectra",
           "record_spectra_from_state", "read_spectra"]

log = logging.getLogger(__name__)

#: Relative errors at which the effective TT ranks are given (``||W - W_r|| / ||W||``).
TOLERANCES = (1e-1, 1e-2, 1e-3)

SPECTRA_FORMAT = "ttexplore.spectra/1"

#: The modules whose TT cores are followed: each keeps them as ``cores`` (a list of tensors) and gives its
#: weight as a :class:`~ttexplore.nn.ttmatrix.TTMatrix` (``tt_matrix()``): a TT convolution's is its kernel's
#: ``d + 1`` cores (the spatial core first), a 4-D TT convolution's its four cores.
TT_MODULES = (TTLinear, TTConv2d, TT4dConv2d)


def tt_layer_modules(model: nn.Module, config: RunConfig) -> list[tuple[int, nn.Module]]:
    """``(index, module)`` of each hidden layer of ``model`` whose kind has TT cores (the kind is asked, by
    its position in ``config.layers``) and whose module is one of :data:`TT_MODULES` (TT layers and TT
    convolutions), first to last."""
    modules = [module for _, module in hidden_layers(model)]
    return [(index, modules[index]) for index, layer in enumerate(config.layers)
            if layer.has_tt_cores and index < len(modules) and isinstance(modules[index], TT_MODULES)]


@torch.no_grad()
def core_norms(layers: Sequence[tuple[int, nn.Module]]) -> list[dict[str, Any]]:
    """The Frobenius norm of every core of each layer and of its gradient (the last backward's; ``None``
    before any), as plain floats: ``[{"layer", "weight": [d floats], "grad": [d floats] | None}]``.

    One device-to-host copy per layer (the norms are stacked first), so a GPU run syncs once per layer
    and event. Complexity: ``O(params)`` per call.
    """
    records = []
    for index, module in layers:
        cores = list(module.cores)
        weight = torch.stack([torch.linalg.vector_norm(core.detach()) for core in cores]).tolist()
        grads = [core.grad for core in cores]
        grad = (torch.stack([torch.linalg.vector_norm(each.detach()) for each in grads]).tolist()
                if all(each is not None for each in grads) else None)
        records.append({"layer": index, "weight": weight, "grad": grad})
    return records


def layer_spectra(layers: Sequence[tuple[int, nn.Module]], tolerances: Sequence[float] = TOLERANCES) -> list[dict[str, Any]]:
    """Per TT layer: the singular values of each of the ``d - 1`` unfoldings of its ``W`` (decreasing,
    float64, from the cores: :meth:`~ttexplore.nn.ttmatrix.TTMatrix.singular_values`), the ranks in use,
    the maximal useful ranks and the effective ranks at each tolerance
    (:func:`~ttexplore.tt.ttmath.ranks_for_error`: the smallest rank of each boundary whose own cut stays
    within ``tolerance / sqrt(d - 1)``).

    Returns:
        ``[{"layer", "in_modes", "out_modes", "ranks", "max_useful", "singular_values": [[...], ...],
        "effective_ranks": {"0.1": [...], ...}}]`` (JSON-ready).

    Complexity: ``O(d n m r^3)`` per layer (one orthogonalisation and one SVD sweep of the cores).
    """
    records = []
    for index, module in layers:
        matrix = module.tt_matrix()
        spectra = [values.tolist() for values in matrix.singular_values()]
        records.append({
            "layer": index, "in_modes": list(matrix.in_modes), "out_modes": list(matrix.out_modes),
            "ranks": list(matrix.ranks), "max_useful": list(ttmath.max_useful_ranks(matrix.in_modes, matrix.out_modes)),
            "singular_values": spectra,
            "effective_ranks": {f"{tolerance:g}": list(ttmath.ranks_for_error(spectra, tolerance)) for tolerance in tolerances},
        })
    return records


def record_spectra(store: RunStore, run_id: str, config: RunConfig, model: nn.Module, source: str) -> Optional[dict]:
    """Compute :func:`layer_spectra` of ``model`` and keep it with the run (written whole or not at all).

    Args:
        source: where the weights come from, in words (``"final weights"``, ``"checkpoint after epoch 3"``).

    Returns:
        The record (``{"format", "run_id", "source", "tolerances", "layers"}``), or ``None`` for a network
        without a TT layer (nothing is written).
    """
    layers = tt_layer_modules(model, config)
    if not layers:
        return None
    record = {"format": SPECTRA_FORMAT, "run_id": run_id, "source": source, "tolerances": list(TOLERANCES),
              "layers": layer_spectra(layers)}
    path = store.spectra_path_for(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(record).encode("utf-8"))
    return record


def read_spectra(store: RunStore, run_id: str) -> Optional[dict]:
    """The spectra kept with the run, or ``None`` when there are none (or the file is not one)."""
    path = store.spectra_path_for(run_id)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == SPECTRA_FORMAT else None


def record_spectra_from_state(store: RunStore, run_id: str, config: RunConfig, state: dict, source: str) -> Optional[dict]:
    """:func:`record_spectra` of the network ``config`` describes with the weights ``state`` (a ``state_dict``:
    a checkpoint's model or a weights file's), for a run that ended without its spectra."""
    model = build_model(config)
    model.load_state_dict(state)
    return record_spectra(store, run_id, config, model, source)
