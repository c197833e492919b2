"""Measuring this machine for the cost model: the speeds a :class:`~ttexplore.costmodel.MachineModel` holds.

``python -m ttexplore bench --calibrate`` runs :func:`calibrate_machine` and
prints the result as a machine file (:func:`ttexplore.costmodel.machine_json`).
Tables come from isolated GEMMs and copies; the per-call costs and the scale
factors are fitted (non-negative least squares) to whole forwards.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from scipy.optimize import lsq_linear, nnls

from ttexplore.nn import forward as tt_forward
from ttexplore.nn.kernels import permute_copy, tt_matmul_blocked, tt_matmul_dense, tt_matmul_ltr, tt_matmul_rtl
from ttexplore.nn.layers import TTLinear
from ttexplore.tt.layout import permuted_copy_plan
from ttexplore.costmodel import MachineModel
from ttexplore.costmodel.einsum import einsum_ops
from ttexplore.costmodel.estimate import evaluate_ops, forward_seconds_by_part
from ttexplore.costmodel.ops import blocked_ops, dense_ops, rtl_sweep_ops, sweep_ops
from ttexplore.experiments.bench.harness import (RETRY_LOAD, cpu_snapshot, foreign_load, interleaved_times, machine_line,
                                                 wait_for_quiet)

__all__ = ["calibrate_machine", "fit_nonnegative", "fit_bounded", "SCALE_FIT_LAYERS", "SCALE_BOUNDS", "best_seconds",
           "three_digits"]

#: Sizes of the GEMM tables' small dimensions (1 .. 512).
GEMM_GRID = tuple(1 << power for power in range(10))

#: Working sets of the "small" (in cache) and "large" (past the last-level cache) tables.
SMALL_BYTES, LARGE_BYTES = 4 << 20, 24 << 20

#: Sizes of the batched-GEMM table's three dimensions (each product ``(m, k) @ (k, n)``).
BMM_GRID = (1, 4, 16, 64, 256, 1024)

#: The most multiply-adds one timed batched GEMM of the table does (keeps the large entries short).
BMM_MAX_MULTIPLY_ADDS = 1 << 28

#: Batches and weight sizes (elements of a square ``W``) of the stored-weight table (``F.linear``).
LINEAR_BATCHES = (1, 4, 16, 64)
LINEAR_WEIGHTS = (1 << 12, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24)

#: Contiguous block sizes and fans of the copy tables.
COPY_BLOCK_BYTES = (4, 8, 16, 32, 64, 128, 512)
COPY_FANS = (4, 16, 64)

#: Results of at least this many bytes get fresh pages from the OS (glibc's largest mmap threshold).
FAULT_BYTES = 32 << 20

#: Layers and batches whose whole forwards fit the model's scale factors.
SCALE_FIT_LAYERS = (
    ((4, 8, 8, 4), (4, 8, 8, 4), 2, 128),
    ((4, 8, 8, 4), (4, 8, 8, 4), 8, 32),
    ((4, 8, 8, 4), (4, 8, 8, 4), 8, 128),
    ((4, 7, 4, 7), (5, 5, 5, 5), 4, 128),
    ((8, 8, 8, 8), (8, 8, 8, 8), 4, 32),
    ((8, 8, 8, 8), (8, 8, 8, 8), 8, 64),
    ((2, 7, 8, 8, 7, 4), (4,) * 6, 4, 16),
)

#: The range every fitted scale factor is kept in: an operation inside a forward runs within 4x of
#: its isolated speed. Unbounded, the four factors trade off against each other on a loaded
#: machine (a fit gave plain copies 0.08 and GEMMs 1.66, another 1.17 and 1.2).
SCALE_BOUNDS = (0.25, 4.0)

#: The per-call costs, in the order :func:`_fit_call_costs` fits them.
_CALL_COSTS = ("gemm_call_s", "copy_call_s", "einsum_call_s", "merge_call_s", "forward_call_s")
_BACKWARD_CALL_COSTS = ("backward_gemm_call_s", "backward_copy_call_s")

#: A variant of a forward: a function of the input, and the operations the cost model lists for it.
Variant = tuple[Callable[[torch.Tensor], torch.Tensor], list[tuple]]


def calibrate_machine(threads: Optional[int] = None, max_wait_s: float = 0.0) -> MachineModel:
    """Measure the speeds :class:`ttexplore.costmodel.MachineModel` holds, on this machine.

    GEMM tables: float32 ``torch.mm`` at every pair of small sizes on the model's
    grid, the large dimension chosen so operands and result take ~4 MB (and
    ~24 MB for the ``_large`` tables). Copy tables: 4 MB and 24 MB swaps
    ``(p, q, block) -> (q, p, block)`` with ``q`` (passes) or ``p`` (streams)
    equal to each fan, per block size, plain and (where used) wide. Page faults: a fresh 64 MB result against one written
    into existing memory. Per-call costs: :func:`_fit_call_costs`; scale factors:
    :func:`_fit_scales`. The best of several runs counts, so background load
    biases it less; with ``max_wait_s`` each phase first waits up to that long
    for other processes to leave the CPUs idle (:func:`wait_for_quiet`), and
    every table row or fitted layer they disturbed is measured again after a
    quiet moment (:class:`_Quiet`). The result records ``threads`` (the torch
    thread count it was measured at). About a minute on a quiet machine.
    """
    if threads:
        torch.set_num_threads(threads)
    tt_forward.prime_allocator()

    def quiet() -> None:
        if max_wait_s > 0:
            wait_for_quiet(max_wait_s, window_s=3.0)

    retry = _Quiet(max_wait_s)
    quiet()
    tiny = torch.randn(2, 2)
    call_s = best_seconds(lambda: torch.mm(tiny, tiny), repeats=200, warmup=20)
    tables, large_tables = {}, {}
    for kind in ("rows", "cols", "reduce"):
        quiet()
        tables[kind] = _gemm_table(kind, SMALL_BYTES, 7, call_s, retry)
        large_tables[kind] = _gemm_table(kind, LARGE_BYTES, 3, call_s, retry)
    quiet()
    copy_tables = _copy_tables(retry)
    quiet()
    memory_speeds = _memory_speeds(retry)
    quiet()
    bmm_rates = _bmm_table(call_s, retry)
    quiet()
    linear_rates = tuple(retry.best(lambda batch=batch: _linear_row(batch)) for batch in LINEAR_BATCHES)
    measured = dict(
        gemm_grid=GEMM_GRID,
        gemm_rows=tables["rows"],
        gemm_cols=tables["cols"],
        gemm_reduce=tables["reduce"],
        gemm_rows_large=large_tables["rows"],
        gemm_cols_large=large_tables["cols"],
        gemm_reduce_large=large_tables["reduce"],
        gemm_small_bytes=SMALL_BYTES,
        gemm_large_bytes=LARGE_BYTES,
        copy_block_bytes=COPY_BLOCK_BYTES,
        copy_fans=COPY_FANS,
        copy_tables=copy_tables,
        copy_small_bytes=SMALL_BYTES,
        copy_large_bytes=LARGE_BYTES,
        **memory_speeds,
        threads=torch.get_num_threads(),
        bmm_grid=BMM_GRID,
        bmm_rates=bmm_rates,
        linear_batches=LINEAR_BATCHES,
        linear_weights=LINEAR_WEIGHTS,
        linear_rates=linear_rates,
    )
    no_calls = dict.fromkeys(_CALL_COSTS + _BACKWARD_CALL_COSTS, 0.0)
    provisional = MachineModel(description="calibrating", **measured, **no_calls)
    quiet()
    calls = _fit_call_costs(provisional, retry)
    quiet()
    scales = _fit_scales(MachineModel(description="calibrating", **measured, **calls), retry)
    return MachineModel(
        description=f"{machine_line()}; measured by ttexplore.experiments.bench.calibrate_machine",
        **measured, **calls, **scales,
    )


class _Quiet:
    """Re-measures a piece of the calibration (a table row, a layer's forwards) that other processes
    disturbed: after a try during which they kept more than :data:`~.harness.RETRY_LOAD` of the CPUs
    busy, it waits up to ``max_wait_s`` for a quiet moment (:func:`wait_for_quiet`) and tries again,
    up to ``tries`` times, keeping each entry's best value over the tries. Without ``max_wait_s``
    every piece is measured once.
    """

    def __init__(self, max_wait_s: float, tries: int = 4) -> None:
        self.max_wait_s, self.tries = max_wait_s, tries

    def best(self, measure: Callable[[], Sequence[float]], higher_is_better: bool = True) -> tuple[float, ...]:
        """``measure()``'s values (speeds, or with ``higher_is_better`` false, seconds), each the best over the tries."""
        pick = max if higher_is_better else min
        best: Optional[tuple[float, ...]] = None
        for attempt in range(self.tries if self.max_wait_s > 0 else 1):
            if attempt:
                wait_for_quiet(self.max_wait_s, window_s=2.0)
            before = cpu_snapshot()
            values = tuple(measure())
            load = foreign_load(before, cpu_snapshot())
            best = values if best is None else tuple(pick(old, new) for old, new in zip(best, values))
            if not load > RETRY_LOAD:
                break
        return best


def three_digits(value: float) -> float:
    """``value`` to three significant digits (the tables' precision)."""
    return float(f"{value:.3g}")


def best_seconds(function: Callable[[], object], repeats: int = 7, warmup: int = 2) -> float:
    """The fastest of ``repeats`` timed runs of ``function`` (after ``warmup`` untimed ones)."""
    for _ in range(warmup):
        function()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------------------- tables
def _gemm_table(kind: str, total_bytes: int, repeats: int, call_s: float, retry: _Quiet) -> tuple[tuple[float, ...], ...]:
    """FLOP/s of ``torch.mm`` at every pair of :data:`GEMM_GRID` sizes, one table of :class:`MachineModel`.

    ``kind`` "rows": ``(big, k) @ (k, n)``; "cols": ``(m, k) @ (k, big)``;
    "reduce": ``(m, big) @ (big, n)`` (the left operand read transposed); ``big``
    makes the operands and result take about ``total_bytes``. ``call_s``, the
    cost of a tiny call, is taken off each time.

    Complexity: ``len(GEMM_GRID)^2 * (repeats + 2)`` GEMMs, each on about ``total_bytes`` of operands.
    """
    return tuple(retry.best(lambda first=first: _gemm_row(kind, first, total_bytes, repeats, call_s)) for first in GEMM_GRID)


def _gemm_row(kind: str, first: int, total_bytes: int, repeats: int, call_s: float) -> list[float]:
    """One row of :func:`_gemm_table`: every ``second`` size at this ``first`` size."""
    row = []
    for second in GEMM_GRID:
        # operands and result of (big, first) @ (first, second) and the like: big * (first + second) floats
        big = max(total_bytes // 4 // (first + second), 4 * max(first, second), 256)
        if total_bytes == SMALL_BYTES:
            big = max(min(big, (1 << 23) // (2 * first * second)), 4 * max(first, second), 256)
        if kind == "rows":  # (big, k) @ (k, n)
            left, right = torch.randn(big, first), torch.randn(first, second)
        elif kind == "cols":  # (m, k) @ (k, big)
            left, right = torch.randn(second, first), torch.randn(first, big)
        else:  # (m, big) @ (big, n), the left operand read transposed
            left, right = torch.randn(big, first).t(), torch.randn(big, second)
        seconds = best_seconds(lambda: torch.mm(left, right), repeats=repeats)
        flops = 2 * big * first * second
        row.append(three_digits(flops / max(seconds - call_s, 0.2 * seconds)))
    return row


def _bmm_table(call_s: float, retry: _Quiet) -> tuple[tuple[tuple[float, ...], ...], ...]:
    """FLOP/s of ``torch.bmm`` of ``count`` products ``(m, k) @ (k, n)`` sharing the left matrix
    (expanded, as :func:`ttexplore.nn.kernels.tt_matmul_batched` runs them), at every ``m, k, n``
    of :data:`BMM_GRID`; ``count`` makes the operands take about ``SMALL_BYTES`` (at most
    :data:`BMM_MAX_MULTIPLY_ADDS` multiply-adds). ``call_s`` is taken off each time.

    Complexity: ``len(BMM_GRID)^3`` entries, 7 timed calls each.
    """
    return tuple(tuple(retry.best(lambda m=m, k=k: _bmm_row(m, k, call_s)) for k in BMM_GRID) for m in BMM_GRID)


def _bmm_row(m: int, k: int, call_s: float) -> list[float]:
    """One row of :func:`_bmm_table`: every ``n`` at these ``m`` and ``k``."""
    row = []
    for n in BMM_GRID:
        count = max(2, SMALL_BYTES // 4 // (k * n + m * n))
        count = max(1, min(count, BMM_MAX_MULTIPLY_ADDS // (m * k * n)))
        left, right = torch.randn(m, k), torch.randn(count, k, n)
        seconds = best_seconds(lambda: torch.bmm(left.expand(count, m, k), right), repeats=5)
        row.append(three_digits(2 * count * m * k * n / max(seconds - call_s, 0.2 * seconds)))
    return row


def _linear_row(batch: int) -> list[float]:
    """FLOP/s of ``F.linear(x, W, b)`` (what a stored ``W`` runs) on ``batch`` rows, for each square ``W`` of
    :data:`LINEAR_WEIGHTS` elements, called again and again on the same ``W`` as inference does."""
    row = []
    for elements in LINEAR_WEIGHTS:
        side = int(round(elements**0.5))
        weight, bias, inputs = torch.randn(side, side), torch.randn(side), torch.randn(batch, side)
        seconds = best_seconds(lambda: torch.nn.functional.linear(inputs, weight, bias), repeats=20, warmup=3)
        row.append(three_digits(2 * batch * side * side / seconds))
    return row


def _copy_tables(retry: _Quiet) -> tuple[tuple[str, tuple[tuple[float, ...], ...]], ...]:
    """Bytes/s of ``(p, q, block) -> (q, p, block)`` copies, keyed ``"<form>/<size>/<moves>"`` (see :class:`MachineModel`).

    Complexity: ``O(LARGE_BYTES)`` memory; each entry moves its working set 7 times (wide ones 14).
    """
    tables = []
    for form in ("passes", "streams"):
        for size, total_bytes in (("small", SMALL_BYTES), ("large", LARGE_BYTES)):
            plain_table, wide_table = [], []
            for fan in COPY_FANS:
                both = retry.best(lambda fan=fan: _copy_row(form, fan, total_bytes))
                plain_table.append(both[: len(COPY_BLOCK_BYTES)])
                wide_table.append(both[len(COPY_BLOCK_BYTES) :])
            tables.append((f"{form}/{size}/plain", tuple(plain_table)))
            tables.append((f"{form}/{size}/wide", tuple(wide_table)))
    return tuple(tables)


def _copy_row(form: str, fan: int, total_bytes: int) -> list[float]:
    """One row of each of :func:`_copy_tables`' plain and wide tables (every block size), the plain row first."""
    plain_row, wide_row = [], []
    for block_bytes in COPY_BLOCK_BYTES:
        block = block_bytes // 4
        other = max(1, total_bytes // 4 // (fan * block))
        shape = (other, fan, block) if form == "passes" else (fan, other, block)
        source = torch.randn(shape)
        moved = 2 * source.numel() * 4
        plain = best_seconds(lambda: source.permute(1, 0, 2).contiguous(), repeats=5)
        plain_row.append(three_digits(moved / plain))
        if permuted_copy_plan(shape, (1, 0, 2), 4).wide:
            wide = best_seconds(lambda: permute_copy(source, shape, (1, 0, 2)), repeats=5)
            wide_row.append(three_digits(moved / wide))
        else:
            wide_row.append(plain_row[-1])
    return plain_row + wide_row


def _memory_speeds(retry: _Quiet) -> dict:
    """``memory_bandwidth``, ``fault_bytes`` and ``fault_bandwidth``: a 64 MB copy into existing and into fresh memory."""
    source = torch.randn(1 << 24)  # 64 MB
    target = torch.empty_like(source)
    into_existing, into_fresh = retry.best(lambda: (best_seconds(lambda: target.copy_(source), repeats=5),
                                                   best_seconds(lambda: source.clone(), repeats=5)),
                                           higher_is_better=False)
    bandwidth = 2 * source.numel() * 4 / into_existing
    fault_bandwidth = source.numel() * 4 / max(into_fresh - into_existing, 1e-6)
    return {
        "memory_bandwidth": three_digits(bandwidth),
        "fault_bytes": FAULT_BYTES,
        "fault_bandwidth": three_digits(fault_bandwidth),
    }


# ---------------------------------------------------------------------------- fits
def fit_bounded(features: Sequence[Sequence[float]], targets: Sequence[float], low: float, high: float) -> list[float]:
    """Coefficients ``low <= c <= high`` minimising ``sum_i (features_i . c - targets_i)^2``
    (``scipy.optimize.lsq_linear``).

    Complexity: ``O(samples * coefficients^2)`` per iteration.
    """
    result = lsq_linear(np.asarray(features, dtype=float), np.asarray(targets, dtype=float), bounds=(low, high))
    return [float(value) for value in result.x]



def fit_nonnegative(features: Sequence[Sequence[float]], targets: Sequence[float]) -> list[float]:
    """Coefficients ``c >= 0`` minimising ``sum_i (features_i . c - targets_i)^2`` (``scipy.optimize.nnls``).

    Args:
        features: ``(samples, coefficients)``.
        targets: ``(samples,)``.

    Complexity: ``O(samples * coefficients^2)`` per active-set iteration.
    """
    coefficients, _ = nnls(np.asarray(features, dtype=float), np.asarray(targets, dtype=float))
    return [float(value) for value in coefficients]


def _call_cost_variants(layer: TTLinear, batch: int) -> list[Variant]:
    """Every strategy (and a few blockings and cols orientations) on one layer, with its operation list."""
    cores = list(layer.cores)
    shapes = [tuple(core.shape) for core in cores]
    in_modes, out_modes, internal = layer.in_modes, layer.out_modes, layer.ranks
    d = len(cores)
    variants: list[Variant] = [
        (lambda x: tt_matmul_ltr(x, cores), sweep_ops(shapes, batch, "ltr", 4)),
        (lambda x: tt_matmul_rtl(x, cores), rtl_sweep_ops(shapes, batch, 4)[0]),
        (lambda x: tt_matmul_dense(x, cores), dense_ops(shapes, batch, 4)),
        (
            lambda x: tt_forward.tt_matmul_einsum(x, cores, in_modes, out_modes, internal),
            einsum_ops(in_modes, out_modes, internal, batch, 4),
        ),
    ]
    for direction in ("rtl-bmm", "ltr-bmm"):
        ops, _ = blocked_ops(shapes, batch, (1,) * d, direction, 4)
        variants.append((lambda x, direction=direction: tt_matmul_blocked(x, cores, (1,) * d, direction), ops))
    if d >= 2:
        cols = ("cols",) * d
        variants.append((lambda x: tt_matmul_rtl(x, cores, None, cols), rtl_sweep_ops(shapes, batch, 4, cols)[0]))
    if d >= 3:
        for direction in ("rtl", "ltr"):
            blocks = (2, d - 2)
            ops, _ = blocked_ops(shapes, batch, blocks, direction, 4)
            variants.append(
                (lambda x, blocks=blocks, direction=direction: tt_matmul_blocked(x, cores, blocks, direction), ops)
            )
    return variants


def _fit_call_costs(provisional: MachineModel, retry: _Quiet) -> dict[str, float]:
    """Per-call costs, fitted to tiny layers where the calls are nearly all the time.

    For every strategy (and a few blockings and orientations) on ``2^d x 2^d``
    layers of rank 2, ``d = 1..6``, batch 1 and 4, the measured time minus the
    tables' compute estimate (``provisional``: no call costs) is fitted
    (non-negative least squares) to the numbers of GEMMs, copies, opt_einsum
    steps, merged blocks and forwards; the backward's likewise to its GEMM and
    copy nodes.
    """
    kinds = ("gemm", "copy", "einsum_call", "merge_call", "forward_call")  # the order of _CALL_COSTS
    calls_of = {"bgemm": "gemm"}  # a batched GEMM is one call
    forward_features, forward_targets = [], []
    backward_features, backward_targets = [], []
    for d in range(1, 7):
        layer = TTLinear((2,) * d, (2,) * d, 2, bias=False)
        for batch in (1, 4):
            inputs = torch.randn(batch, 2**d)
            grad_inputs = inputs.clone().requires_grad_()
            variants = _call_cost_variants(layer, batch)

            def measure() -> list[float]:  # each variant's forward and forward + backward seconds
                times = []
                for run_variant, _ in variants:
                    with torch.no_grad():
                        times.append(best_seconds(lambda: run_variant(inputs), repeats=30, warmup=5))
                    times.append(best_seconds(lambda: run_variant(grad_inputs).sum().backward(), repeats=30, warmup=5))
                return times

            times = retry.best(measure, higher_is_better=False)
            for index, (_, ops) in enumerate(variants):
                ops = [("forward_call",), *ops]
                forward, total = times[2 * index], times[2 * index + 1]
                compute = evaluate_ops(ops, 4, True, provisional)
                counts = {kind: sum(1 for op in ops if calls_of.get(op[0], op[0]) == kind) for kind in kinds}
                forward_features.append([counts[kind] for kind in kinds])
                forward_targets.append(forward - compute["forward_seconds"])
                backward_features.append([counts["gemm"], counts["copy"]])
                backward_targets.append(total - forward - compute["backward_seconds"])
    forward_costs = fit_nonnegative(forward_features, forward_targets)
    backward_costs = fit_nonnegative(backward_features, backward_targets)
    fitted = {
        name: three_digits(value)
        for name, value in zip(_CALL_COSTS + _BACKWARD_CALL_COSTS, forward_costs + backward_costs)
    }
    # the kernels above run without the layer around them: a forward's fixed cost is measured on the layer
    fitted["forward_call_s"] = three_digits(max(0.0, retry.best(_layer_overhead_seconds, higher_is_better=False)[0]))
    return fitted


def _always(*args: object, **kwargs: object) -> bool:
    return True


def _layer_overhead_seconds() -> list[float]:
    """What an inference forward through ``TTLinear`` costs beyond its plan's kernels, less what one with a
    stored ``W`` costs beyond its GEMM: the ``forward_call_s`` a TT plan pays against a stored ``W``
    (:func:`ttexplore.costmodel.stored_weight_costs` charges none). Best of many calls on a tiny layer.
    """
    layer = TTLinear((2, 2, 2), (2, 2, 2), 2)
    inputs = torch.randn(1, 8)
    cores = list(layer.cores)
    plan = tt_forward.plan_forward(layer.in_modes, layer.out_modes, layer.ranks, 1, strategy="rtl")
    twin = TTLinear((2, 2, 2), (2, 2, 2), 2, strategy="rtl")
    twin.load_state_dict(layer.state_dict())
    weight = layer.to_dense().detach()
    with torch.no_grad():
        tt_layer = best_seconds(lambda: twin(inputs), repeats=200, warmup=20)
        tt_kernel = best_seconds(lambda: plan.run(inputs, cores, layer.bias), repeats=200, warmup=20)
        original = tt_forward.stored_weight_pays
        try:
            tt_forward.stored_weight_pays = _always  # the layer's stored-W path, whatever would pay
            stored_layer = best_seconds(lambda: layer(inputs), repeats=200, warmup=20)
        finally:
            tt_forward.stored_weight_pays = original
        stored_gemm = best_seconds(lambda: torch.nn.functional.linear(inputs, weight, layer.bias), repeats=200, warmup=20)
    return [(tt_layer - tt_kernel) - (stored_layer - stored_gemm)]


def _scale_fit_variants(layer: TTLinear, inputs: torch.Tensor) -> dict[str, tuple[Callable[[], object], list[tuple]]]:
    """The sweeps, several blockings and orientations, einsum and (small layers) dense, each with its operations."""
    cores = list(layer.cores)
    shapes = [tuple(core.shape) for core in cores]
    in_modes, out_modes, internal = layer.in_modes, layer.out_modes, layer.ranks
    batch, d = inputs.shape[0], len(shapes)
    variants = {
        "ltr": (lambda: tt_matmul_ltr(inputs, cores), sweep_ops(shapes, batch, "ltr", 4)),
        "rtl": (lambda: tt_matmul_rtl(inputs, cores), rtl_sweep_ops(shapes, batch, 4)[0]),
        "einsum": (
            lambda: tt_forward.tt_matmul_einsum(inputs, cores, in_modes, out_modes, internal),
            einsum_ops(in_modes, out_modes, internal, batch, 4),
        ),
    }
    if layer.in_features * layer.out_features <= 1 << 20:
        variants["dense"] = (lambda: tt_matmul_dense(inputs, cores), dense_ops(shapes, batch, 4))
    blockings = sorted({(2,) * (d // 2) + ((1,) if d % 2 else ()), (1,) * (d - 2) + (2,), (2,) + (1,) * (d - 2), (1,) * d})
    for blocks in blockings:
        for direction, orientations in (("rtl", None), ("rtl", ("cols",) * len(blocks)), ("ltr", None),
                                        ("rtl-bmm", None), ("ltr-bmm", None)):
            if blocks == (1,) * d and direction in ("rtl", "ltr") and orientations is None:
                continue  # the plain sweeps, above
            ops, _ = blocked_ops(shapes, batch, blocks, direction, 4, orientations)
            variants[f"{blocks}{direction}{orientations}"] = (
                lambda blocks=blocks, direction=direction, orientations=orientations: tt_matmul_blocked(
                    inputs, cores, blocks, direction, None, orientations
                ),
                ops,
            )
    return variants


def _fit_scales(machine: MachineModel, retry: _Quiet, repeats: int = 9) -> dict[str, float]:
    """Factors on GEMM, plain-, wide- and n-d-copy times that best fit whole forwards.

    On each of :data:`SCALE_FIT_LAYERS`, the variants of :func:`_scale_fit_variants`
    run interleaved; the best times are fitted, as relative errors, by
    least squares within :data:`SCALE_BOUNDS` to the estimate's GEMM, plain-copy,
    wide-copy and n-d-copy parts (the call costs are kept as fitted on tiny layers).
    """
    parts_order = ("gemm", "plain", "wide", "nd")
    features, targets = [], []
    for in_modes, out_modes, ranks, batch in SCALE_FIT_LAYERS:
        layer = TTLinear(in_modes, out_modes, ranks, bias=False)
        inputs = torch.randn(batch, layer.in_features)
        variants = _scale_fit_variants(layer, inputs)

        def measure() -> list[float]:  # the least disturbed run of each variant: background load only ever adds
            with torch.no_grad():
                times = interleaved_times({name: run for name, (run, _) in variants.items()}, repeats, 2)
            return [min(times[name]) for name in variants]

        best = dict(zip(variants, retry.best(measure, higher_is_better=False)))
        for name, (_, ops) in variants.items():
            measured = best[name]
            parts = forward_seconds_by_part(ops, 4, machine)
            total = evaluate_ops([("forward_call",), *ops], 4, False, machine)["forward_seconds"]
            calls = total - sum(parts.values())
            features.append([parts[part] / measured for part in parts_order])
            targets.append(1.0 - calls / measured)
    gemm_scale, plain_scale, wide_scale, nd_scale = fit_bounded(features, targets, *SCALE_BOUNDS)
    return {
        "gemm_scale": three_digits(gemm_scale),
        "plain_copy_scale": three_digits(plain_scale),
        "wide_copy_scale": three_digits(wide_scale),
        "nd_copy_scale": three_digits(nd_scale),
    }
