"""Forward strategies of the TT layer, and the cost model that picks one.

Strategies (all give the same result, forward and backward):

* ``"ltr"``: core by core from the first core, one GEMM each (:func:`ttexplore.tt.tt_matmul_ltr`).
* ``"rtl"``: core by core from the last core (:func:`ttexplore.tt.tt_matmul_rtl`).
* ``"dense"``: rebuild ``W`` from the cores, then one ``F.linear``; cheapest for
  small layers and large batches.
* ``"auto"``: the cheapest of the above by :func:`choose_strategy`'s FLOP count.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from . import ttmath
from .tt import tt_matmul_ltr, tt_matmul_rtl, tt_to_dense

__all__ = ["STRATEGIES", "check_strategy", "strategy_flops", "choose_strategy", "tt_linear"]

#: Strategy names a ``TTLinear`` accepts.
STRATEGIES = ("auto", "ltr", "rtl", "dense")


def check_strategy(strategy: str) -> None:
    """Raise a ``ValueError`` naming the choices when ``strategy`` is unknown."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is unknown: use one of {', '.join(STRATEGIES)}")


def strategy_flops(
    in_modes: Sequence[int], out_modes: Sequence[int], ranks: ttmath.RanksLike, batch: int = 1
) -> dict[str, int]:
    """FLOPs of one forward by each concrete strategy, for a batch of ``batch`` rows."""
    return {
        "ltr": ttmath.tt_sweep_flops(in_modes, out_modes, ranks, batch, "ltr"),
        "rtl": ttmath.tt_sweep_flops(in_modes, out_modes, ranks, batch, "rtl"),
        "dense": ttmath.tt_rebuild_flops(in_modes, out_modes, ranks, batch),
    }


def choose_strategy(in_modes: Sequence[int], out_modes: Sequence[int], ranks: ttmath.RanksLike, batch: int) -> str:
    """The concrete strategy with the fewest FLOPs (ties go to the core-by-core sweeps)."""
    flops = strategy_flops(in_modes, out_modes, ranks, batch)
    return min(flops, key=flops.get)


def tt_linear(
    inputs: torch.Tensor,
    cores: Sequence[torch.Tensor],
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: Sequence[int],
    strategy: str = "auto",
) -> torch.Tensor:
    """``inputs @ W^T`` for a TT-matrix ``W`` given by ``cores``; ``inputs`` is ``(B, N)``."""
    if strategy == "auto":
        strategy = choose_strategy(in_modes, out_modes, ranks, inputs.shape[0])
    if strategy == "ltr":
        return tt_matmul_ltr(inputs, cores)
    if strategy == "rtl":
        return tt_matmul_rtl(inputs, cores)
    if strategy == "dense":
        return F.linear(inputs, tt_to_dense(cores))
    check_strategy(strategy)
    raise AssertionError(f"strategy {strategy!r} is listed but not dispatched")
