"""FLOPs, memory and estimated time of operation lists, and the choice among strategies.

:func:`strategy_costs` lists every concrete strategy's operations
(:mod:`ttexplore.costmodel.ops`, :mod:`ttexplore.costmodel.einsum`) and prices
them with a :class:`~ttexplore.costmodel.machine.MachineModel`;
:func:`best_strategy` picks the fastest. Pure Python.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

from ttexplore.tt.ttmath import RanksLike, check_modes, full_ranks, plan_ranks, prod
from ttexplore.costmodel.einsum import EINSUM_OPTIMIZE, einsum_ops
from ttexplore.costmodel.machine import MachineModel, default_machine
from ttexplore.costmodel.blocking import BlockingSearch
from ttexplore.costmodel.ops import (
    BLOCKED_DIRECTIONS,
    CoreShape,
    block_shapes,
    blocked_ops,
    chunk_sizes,
    dense_ops,
    rtl_sweep_ops,
    sweep_ops,
)

__all__ = [
    "COLS_ORIENTATION_MARGIN",
    "MERGE_MARGIN",
    "evaluate_ops",
    "forward_seconds_by_part",
    "strategy_costs",
    "stored_weight_costs",
    "best_strategy",
]

#: A right-to-left step is done "cols"-wise only when that is estimated at most
#: this fraction of the "rows" way: at small sizes the estimate favours "cols" by
#: a few percent that the 4-axis copy's extra per-call cost takes back (measured
#: 0.083 vs 0.072 ms for 1024x1024 r=2 at batch 1, estimated 0.061 vs 0.064).
COLS_ORIENTATION_MARGIN = 0.9

#: How a plan describes each direction of the blocked strategy.
DIRECTION_TEXT = {
    "rtl": "last block first",
    "ltr": "first block first",
    "rtl-bmm": "last block first, batched GEMMs",
    "ltr-bmm": "first block first, batched GEMMs",
}

#: The blocked strategy merges cores only when that is estimated at most this
#: fraction of the best core-by-core sweep: within a few percent the estimate
#: cannot tell them apart (1024x1024 r=8 at batch 1: blocks 2+1+1 estimated
#: level with the sweeps, measured 12% slower).
MERGE_MARGIN = 0.95


# ------------------------------------------------------------------ pricing one operation
def _needs_grad(kind: str, input_grad: bool) -> bool:
    return input_grad if kind in ("input", "input_copy") else True


def _gemm_seconds(m: int, k: int, n: int, element_bytes: int, machine: MachineModel) -> float:
    """Estimated seconds of one ``(m, k) @ (k, n)`` GEMM (its call cost excluded)."""
    traffic = (m * k + k * n + m * n) * element_bytes
    rate = machine.gemm_rate(m, k, n, traffic) / (machine.float64_slowdown if element_bytes >= 8 else 1.0)
    seconds = max(2.0 * m * k * n / rate, _streaming_seconds(traffic, machine))
    return machine.gemm_scale * seconds + _fault_seconds(m * n * element_bytes, machine)


def _streaming_seconds(traffic: int, machine: MachineModel) -> float:
    """The least time ``traffic`` bytes of operands take from main memory: only beyond the large GEMM tables'
    working set (``gemm_large_bytes``); smaller ones are measured by the tables themselves, mostly in cache
    (a layer's 4 MB stored ``W`` stays there from one inference to the next)."""
    return traffic / machine.memory_bandwidth if traffic > machine.gemm_large_bytes else 0.0


def _bgemm_seconds(count: int, m: int, k: int, n: int, element_bytes: int, machine: MachineModel) -> float:
    """Estimated seconds of one batched GEMM: ``count`` products ``(m, k) @ (k, n)`` sharing the left matrix."""
    traffic = (m * k + count * (k * n + m * n)) * element_bytes
    rate = machine.bmm_rate(m, k, n) or machine.gemm_rate(m, k, count * n, traffic)
    rate /= machine.float64_slowdown if element_bytes >= 8 else 1.0
    seconds = max(2.0 * count * m * k * n / rate, _streaming_seconds(traffic, machine))
    return machine.gemm_scale * seconds + _fault_seconds(count * m * n * element_bytes, machine)


def _copy_seconds(
    elements: int, block_bytes: int, wide: bool, form: str, fan: int, element_bytes: int, machine: MachineModel
) -> float:
    """Estimated seconds of one permuted copy (its call cost excluded)."""
    total = elements * element_bytes
    if form == "nd":
        scale, form = machine.nd_copy_scale, "passes"
    else:
        scale = machine.wide_copy_scale if wide else machine.plain_copy_scale
    return scale * 2.0 * total / machine.copy_rate(block_bytes, wide, total, form, fan) + _fault_seconds(total, machine)


def _fault_seconds(result_bytes: int, machine: MachineModel) -> float:
    """Extra time of a result big enough to get fresh pages from the OS."""
    return result_bytes / machine.fault_bandwidth if result_bytes >= machine.fault_bytes else 0.0


# ------------------------------------------------------------------ pricing a list
def evaluate_ops(ops: Sequence[tuple], element_bytes: int, input_grad: bool, machine: MachineModel) -> dict:
    """FLOPs, memory and estimated seconds of one operation list (:mod:`ttexplore.costmodel.ops`).

    Returns:
        ``flops``, ``backward_flops``, ``peak_bytes``, ``saved_bytes``,
        ``forward_seconds`` and ``backward_seconds`` (see :func:`strategy_costs`).
    """
    flops = backward_flops = 0
    peak = saved = 0
    forward_s = backward_s = 0.0
    for op in ops:
        if op[0] == "gemm":
            _, m, k, n, left, right = op
            product_flops = 2 * m * k * n
            flops += product_flops
            live = m * n + (m * k if left != "input" else 0) + (k * n if right != "input" else 0)
            forward_s += machine.gemm_call_s + _gemm_seconds(m, k, n, element_bytes, machine)
            grad_left, grad_right = _needs_grad(left, input_grad), _needs_grad(right, input_grad)
            backward_s += machine.backward_gemm_call_s
            if grad_left:  # d left = d out (m, n) @ right^T (n, k)
                backward_flops += product_flops
                backward_s += _gemm_seconds(m, n, k, element_bytes, machine)
                saved += k * n if right != "input" else 0
            if grad_right:  # d right = left^T (k, m) @ d out (m, n)
                backward_flops += product_flops
                backward_s += _gemm_seconds(k, m, n, element_bytes, machine)
                saved += m * k if left != "input" else 0
        elif op[0] == "bgemm":
            _, count, m, k, n, left, right = op
            product_flops = 2 * count * m * k * n
            flops += product_flops
            live = count * m * n + m * k + (count * k * n if right != "input" else 0)
            forward_s += machine.gemm_call_s + _bgemm_seconds(count, m, k, n, element_bytes, machine)
            backward_s += machine.backward_gemm_call_s
            if _needs_grad(left, input_grad):
                # d left = sum over the count of d out (m, n) @ right^T (n, k): a batched GEMM, then its sum
                backward_flops += product_flops
                backward_s += _bgemm_seconds(count, m, n, k, element_bytes, machine)
                backward_s += count * m * k * element_bytes / machine.memory_bandwidth
                saved += count * k * n if right != "input" else 0
            if _needs_grad(right, input_grad):  # d right = left^T (k, m) @ d out (m, n), per product
                backward_flops += product_flops
                backward_s += _bgemm_seconds(count, k, m, n, element_bytes, machine)
                saved += m * k
        elif op[0] == "copy":
            _, elements, block_bytes, wide, source, form, fan = op
            live = 2 * elements
            seconds = _copy_seconds(elements, block_bytes, wide, form, fan, element_bytes, machine)
            forward_s += machine.copy_call_s + seconds
            if _needs_grad(source, input_grad):
                backward_s += machine.backward_copy_call_s + seconds
        elif op[0] == "einsum_call":
            live = 0
            forward_s += machine.einsum_call_s
        elif op[0] == "merge_call":
            live = 0
            forward_s += machine.merge_call_s
        elif op[0] == "forward_call":
            live = 0
            forward_s += machine.forward_call_s
        else:
            raise ValueError(f"unknown operation {op[0]!r}")
        peak = max(peak, live)
    return {
        "flops": flops,
        "backward_flops": backward_flops,
        "peak_bytes": peak * element_bytes,
        "saved_bytes": saved * element_bytes,
        "forward_seconds": forward_s,
        "backward_seconds": backward_s,
    }


def forward_seconds_by_part(ops: Sequence[tuple], element_bytes: int, machine: MachineModel) -> dict[str, float]:
    """Estimated forward seconds of ``ops`` that each of the machine's scale factors multiplies.

    Returns:
        ``{"gemm": s, "plain": s, "wide": s, "nd": s}``: GEMMs (``gemm_scale``),
        two-axis plain and wide copies (``plain_copy_scale``, ``wide_copy_scale``)
        and copies permuting more axes (``nd_copy_scale``); per-call costs are
        in none of them.
    """
    parts = {"gemm": 0.0, "plain": 0.0, "wide": 0.0, "nd": 0.0}
    for op in ops:
        if op[0] == "gemm":
            _, m, k, n, _, _ = op
            parts["gemm"] += _gemm_seconds(m, k, n, element_bytes, machine)
        elif op[0] == "bgemm":
            _, count, m, k, n, _, _ = op
            parts["gemm"] += _bgemm_seconds(count, m, k, n, element_bytes, machine)
        elif op[0] == "copy":
            _, elements, block_bytes, wide, _, form, fan = op
            part = "nd" if form == "nd" else ("wide" if wide else "plain")
            parts[part] += _copy_seconds(elements, block_bytes, wide, form, fan, element_bytes, machine)
    return parts


# ------------------------------------------------------------------ every strategy
def strategy_costs(
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: RanksLike,
    batch: int = 1,
    dtype_bytes: int = 4,
    training: bool = False,
    input_grad: bool = True,
    machine: Optional[MachineModel] = None,
) -> dict[str, dict]:
    """FLOPs, activation memory and estimated time of every concrete forward strategy.

    Each strategy's operations are listed call for call as :mod:`ttexplore.nn.kernels` and
    :mod:`ttexplore.nn.forward` perform them, then costed with ``machine`` (by
    default :func:`~ttexplore.costmodel.machine.default_machine`, measured on the
    2-core benchmark machine).

    Args:
        in_modes, out_modes, ranks: the layer (ranks as for :func:`plan_ranks`).
        batch: rows of the input.
        dtype_bytes: 4 for float32, 8 for float64.
        training: rank by forward plus backward time instead of forward time.
        input_grad: whether the backward also computes the input's gradient.
        machine: the speeds to estimate time with.

    Returns:
        ``{strategy: costs}`` for ``ltr``, ``rtl``, ``blocked``, ``einsum`` (when
        opt_einsum is installed) and ``dense``; ``costs`` has

        * ``flops`` / ``backward_flops``: multiply-adds counted twice, as
          ``torch.utils.flop_counter.FlopCounterMode`` counts them;
        * ``peak_bytes``: the most bytes of intermediates one forward step holds
          (its operands and result, layer input and parameters excluded);
        * ``saved_bytes``: bytes of intermediates autograd keeps for the backward;
        * ``forward_seconds`` / ``backward_seconds`` and ``seconds`` (the one
          ``training`` ranks by): estimates, not measurements;
        * ``plan``: a short description; ``blocked`` also has ``blocks`` (block
          lengths; merged blocks only when estimated :data:`MERGE_MARGIN` of the
          best core-by-core sweep), ``direction`` (one of
          :data:`~ttexplore.costmodel.ops.BLOCKED_DIRECTIONS`), ``chunk`` (input
          rows per chunk of a chunked ``rtl-bmm`` sweep, 0 for all) and ``candidates``
          (operation lists its search priced); ``rtl`` and ``blocked``
          have ``orientations`` (per-step GEMM orientations of a right-to-left
          sweep, see :data:`COLS_ORIENTATION_MARGIN`).

    Complexity: ``O(d^4)`` list operations (``blocked``'s search prices ``O(d^3)``
    steps of ``O(d)`` operations: :class:`~ttexplore.costmodel.blocking.BlockingSearch`),
    plus opt_einsum's path search; results are cached.
    """
    in_modes, out_modes = check_modes(in_modes, out_modes)
    internal = plan_ranks(in_modes, out_modes, ranks).ranks
    return _strategy_costs(
        in_modes, out_modes, internal, int(batch), int(dtype_bytes), bool(training), bool(input_grad),
        machine or default_machine(),
    )


class _Pricer:
    """Prices operation lists of one layer setting (element size, training or not, input gradient, machine)."""

    def __init__(self, dtype_bytes: int, training: bool, input_grad: bool, machine: MachineModel) -> None:
        self.dtype_bytes, self.training, self.input_grad, self.machine = dtype_bytes, training, input_grad, machine

    def seconds(self, ops: Sequence[tuple]) -> float:
        """The time :func:`strategy_costs` ranks by: forward, plus backward when training."""
        result = evaluate_ops(ops, self.dtype_bytes, self.input_grad, self.machine)
        return result["forward_seconds"] + (result["backward_seconds"] if self.training else 0.0)

    def costed(self, ops: Sequence[tuple], plan: str) -> dict:
        """:func:`evaluate_ops` of one whole forward, with its ``seconds`` and ``plan``."""
        result = evaluate_ops([("forward_call",), *ops], self.dtype_bytes, self.input_grad, self.machine)
        result["seconds"] = result["forward_seconds"] + (result["backward_seconds"] if self.training else 0.0)
        result["plan"] = plan
        return result

    def choose_orientation(self, rows_ops: list[tuple], cols_ops: list[tuple]) -> str:
        """A right-to-left step's orientation (see :data:`COLS_ORIENTATION_MARGIN`)."""
        return "cols" if self.seconds(cols_ops) < COLS_ORIENTATION_MARGIN * self.seconds(rows_ops) else "rows"


@functools.lru_cache(maxsize=1024)
def _strategy_costs(
    in_modes: tuple[int, ...],
    out_modes: tuple[int, ...],
    ranks: tuple[int, ...],
    batch: int,
    dtype_bytes: int,
    training: bool,
    input_grad: bool,
    machine: MachineModel,
) -> dict[str, dict]:
    r = full_ranks(ranks)
    shapes = [(r[k], n, m, r[k + 1]) for k, (n, m) in enumerate(zip(in_modes, out_modes))]
    pricer = _Pricer(dtype_bytes, training, input_grad, machine)
    rtl_ops, rtl_orientations = rtl_sweep_ops(shapes, batch, dtype_bytes, choose=pricer.choose_orientation)
    results = {
        "ltr": pricer.costed(sweep_ops(shapes, batch, "ltr", dtype_bytes), "core by core, first core first"),
        "rtl": pricer.costed(rtl_ops, "core by core, last core first"),
    }
    results["rtl"]["orientations"] = rtl_orientations
    results["blocked"] = _best_blocking(shapes, batch, pricer)
    try:
        einsum = einsum_ops(in_modes, out_modes, ranks, batch, dtype_bytes)
    except ImportError:
        einsum = None
    if einsum is not None:
        results["einsum"] = pricer.costed(einsum, f"opt_einsum '{EINSUM_OPTIMIZE}' path")
    results["dense"] = pricer.costed(dense_ops(shapes, batch, dtype_bytes), "rebuild W, one GEMM")
    return results


def _best_blocking(shapes: Sequence[CoreShape], batch: int, pricer: _Pricer) -> dict:
    """The ``blocked`` entry of :func:`strategy_costs`: the best blocking and direction.

    In each direction of :data:`~ttexplore.costmodel.ops.BLOCKED_DIRECTIONS`, the
    best blocking with merged blocks is found by dynamic programming over block
    boundaries (:class:`~ttexplore.costmodel.blocking.BlockingSearch`: ``O(d^3)``
    priced steps, not every one of the ``2^(d-1)`` blockings); merged blocks win
    only when :data:`MERGE_MARGIN` faster than the best core-by-core sweep (every
    block one core, in any direction). Its ``peak_bytes`` include the merged
    cores; ``candidates`` counts the operation lists priced. The ``rtl-bmm`` sweep is
    also priced on chunks of every power-of-two number of rows below the batch
    (``chunk``: rows per chunk, 0 for the whole batch), ``O(log B)`` searches more.
    """
    d = len(shapes)
    dtype_bytes = pricer.dtype_bytes
    priced = 0

    def costed(blocks: tuple[int, ...], direction: str, chunk: int) -> dict:
        nonlocal priced
        ops, orientations = blocked_ops(shapes, batch, blocks, direction, dtype_bytes, choose=pricer.choose_orientation,
                                        chunk=chunk)
        priced += 1
        text = f"blocks {'+'.join(map(str, blocks))}, {DIRECTION_TEXT[direction]}"
        candidate = pricer.costed(ops, text + (f", {chunk} rows at a time" if 0 < chunk < batch else ""))
        candidate["blocks"], candidate["direction"], candidate["orientations"] = blocks, direction, orientations
        candidate["chunk"] = chunk if 0 < chunk < batch else 0
        return candidate

    singles, merged = [], []
    for direction in BLOCKED_DIRECTIONS:
        # the batched right-to-left sweep may also run a few rows at a time (its states then stay in cache)
        for chunk in chunk_sizes(batch) if direction == "rtl-bmm" else [batch]:
            singles.append(costed((1,) * d, direction, chunk))
            search = BlockingSearch(shapes, batch, dtype_bytes, pricer.seconds, pricer.choose_orientation, chunk)
            found = search.best_merged(direction)
            priced += search.priced
            if found is not None:
                merged.append(costed(found[1], direction, chunk))
    best_single = min(singles, key=lambda candidate: candidate["seconds"])  # the first of equals
    best_merged = min(merged, key=lambda candidate: candidate["seconds"]) if merged else None
    if best_merged is not None and best_merged["seconds"] <= MERGE_MARGIN * best_single["seconds"]:
        best = best_merged
    else:
        best = best_single
    merged_bytes = sum(prod(s) for s in block_shapes(shapes, best["blocks"])) * dtype_bytes if d > 1 else 0
    best["peak_bytes"] += merged_bytes if any(length > 1 for length in best["blocks"]) else 0
    best["candidates"] = priced
    return best


def best_strategy(costs: dict[str, dict]) -> str:
    """The strategy with the smallest estimated ``seconds`` in a :func:`strategy_costs` result."""
    return min(costs, key=lambda name: costs[name]["seconds"])


#: Estimates within this factor of the best count as a near tie: at inference on the CPU ``auto`` times the
#: tied strategies once and keeps the fastest (:func:`ttexplore.nn.forward.plan_forward`,
#: :func:`ttexplore.nn.forward.stored_weight_pays`). Over the benchmark's cases the estimates put the fastest
#: strategy within 1.2x of the model's pick, and a stored ``W`` (a batch-1 GEMV) within 1.6x of the TT
#: forward it replaces.
NEAR_TIE_BAND = 1.5


def near_ties(costs: dict[str, dict]) -> list[str]:
    """The strategies of a :func:`strategy_costs` result whose estimated ``seconds`` are within
    :data:`NEAR_TIE_BAND` of the best: those an inference forward of ``auto`` may end up using."""
    best = min(cost["seconds"] for cost in costs.values())
    return [name for name, cost in costs.items() if cost["seconds"] <= NEAR_TIE_BAND * best]


def stored_weight_costs(
    in_features: int, out_features: int, batch: int = 1, dtype_bytes: int = 4, machine: Optional[MachineModel] = None
) -> dict:
    """Estimated cost of an inference forward by a stored dense ``W``: one ``(B, N) @ (N, M)`` GEMM.

    What ``auto`` weighs at inference against the best strategy of
    :func:`strategy_costs` (:func:`ttexplore.nn.forward.stored_weight_pays`):
    the rebuild of ``W`` is paid once and not counted; no per-forward fixed cost
    (``forward_call_s``: planning, the sweep's reshapes) is either. Timed by the
    machine's ``linear_rates`` (``F.linear`` itself, measured) where it has them.

    Returns:
        :func:`evaluate_ops`' keys for that GEMM, ``seconds`` (= ``forward_seconds``)
        and ``weight_bytes`` (what keeping ``W`` costs in memory).

    Complexity: ``O(1)``.
    """
    machine = machine or default_machine()
    result = evaluate_ops(
        [("gemm", int(batch), int(in_features), int(out_features), "input", "core")], int(dtype_bytes), False, machine,
    )
    rate = machine.linear_rate(int(batch), int(in_features) * int(out_features))
    if rate:  # measured: F.linear by a W kept in cache (the GEMM tables time other layouts)
        rate /= machine.float64_slowdown if dtype_bytes >= 8 else 1.0
        traffic = (batch * in_features + in_features * out_features + batch * out_features) * dtype_bytes
        result["forward_seconds"] = max(result["flops"] / rate, _streaming_seconds(traffic, machine))
    result["seconds"] = result["forward_seconds"]
    result["weight_bytes"] = int(in_features) * int(out_features) * int(dtype_bytes)
    return result
