"""What a forward plan is and how it runs: the dispatch from a concrete strategy to its kernel.

:mod:`ttexplore.nn.forward` decides which plan a forward gets and caches it;
this module only turns a decision into a call (:func:`make_plan`), or, while
``torch.compile`` / ``torch.export`` trace, a plan's plain values into one
(:func:`run_plan_spec`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

from ttexplore import costmodel
from ttexplore.nn.einsum_kernel import replay_einsum, tt_matmul_einsum
from ttexplore.nn.kernels import tt_matmul_blocked, tt_matmul_dense, tt_matmul_ltr, tt_matmul_rtl

__all__ = ["ForwardPlan", "make_plan", "run_plan_spec"]


@dataclass(frozen=True)
class ForwardPlan:
    """A concrete way to compute one forward, chosen once and reused.

    Attributes:
        strategy: the concrete strategy.
        blocks: block lengths (``"blocked"`` only, else ``()``).
        direction: ``"ltr"`` or ``"rtl"`` (``"blocked"`` only, else ``""``).
        source: ``"fixed"`` (asked for by name), ``"model"`` or ``"timing"``.
        run: ``run(inputs (B, N), cores, bias) -> (B, M)``.
        orientations: per-step GEMM orientations of a right-to-left sweep
            (see :func:`ttexplore.nn.kernels.tt_matmul_rtl`), else ``()``.
        chunk: input rows swept at a time by a chunked ``"rtl-bmm"`` blocked plan, else 0 (all).
    """

    strategy: str
    blocks: tuple[int, ...]
    direction: str
    source: str
    run: Callable[[torch.Tensor, Sequence[torch.Tensor], Optional[torch.Tensor]], torch.Tensor]
    orientations: tuple[str, ...] = ()
    chunk: int = 0


def make_plan(
    strategy: str,
    costs: dict[str, dict],
    in_modes: tuple[int, ...],
    out_modes: tuple[int, ...],
    ranks: tuple[int, ...],
    source: str,
) -> ForwardPlan:
    """The :class:`ForwardPlan` of a concrete ``strategy``, its structure (blocks, orientations) from ``costs``
    (:func:`ttexplore.costmodel.strategy_costs`)."""
    if strategy == "ltr":
        return ForwardPlan("ltr", (), "", source, lambda x, cores, bias: tt_matmul_ltr(x, cores, bias))
    if strategy == "rtl":
        orientations = costs["rtl"]["orientations"]
        return ForwardPlan(
            "rtl", (), "rtl", source, lambda x, cores, bias: tt_matmul_rtl(x, cores, bias, orientations), orientations
        )
    if strategy == "dense":
        return ForwardPlan("dense", (), "", source, lambda x, cores, bias: tt_matmul_dense(x, cores, bias))
    if strategy == "blocked":
        blocked = costs["blocked"]
        blocks, direction, orientations = blocked["blocks"], blocked["direction"], blocked["orientations"]
        chunk = blocked.get("chunk", 0)
        return ForwardPlan(
            "blocked",
            blocks,
            direction,
            source,
            lambda x, cores, bias: tt_matmul_blocked(x, cores, blocks, direction, bias, orientations, chunk),
            orientations,
            chunk,
        )
    if strategy == "einsum":
        return ForwardPlan(
            "einsum",
            (),
            "",
            source,
            lambda x, cores, bias: tt_matmul_einsum(x, cores, in_modes, out_modes, ranks, bias),
        )
    raise ValueError(f"strategy {strategy!r} is unknown: use one of {', '.join(costmodel.CONCRETE_STRATEGIES)}")



def run_plan_spec(
    spec: tuple,
    inputs: torch.Tensor,
    cores: Sequence[torch.Tensor],
    in_modes: tuple[int, ...],
    bias: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``inputs @ W^T (+ bias)`` along a :func:`traced_plan_spec`; only traceable torch calls.

    Complexity: that of the spec's strategy (:func:`ttexplore.costmodel.strategy_costs`).
    """
    strategy, blocks, direction, orientations, steps = spec
    if strategy == "ltr":
        return tt_matmul_ltr(inputs, cores, bias)
    if strategy == "rtl":
        return tt_matmul_rtl(inputs, cores, bias, orientations)
    if strategy == "blocked":
        return tt_matmul_blocked(inputs, cores, blocks, direction, bias, orientations)
    if strategy == "einsum":
        return replay_einsum(steps, inputs, cores, in_modes, bias)
    return tt_matmul_dense(inputs, cores, bias)
